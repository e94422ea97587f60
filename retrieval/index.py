"""The BM25 index: built from a corpus, saved as plain arrays, loaded memory-mapped.

Postings hold precomputed BM25 contributions (idf x saturated tf), term by term, so a
query is a handful of vectorised adds. Each passage's term sequence is kept too, for the
phrase/proximity re-ranking. Passage texts live in one UTF-8 blob and are decoded only
for the hits shown.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retrieval.analyze import Analyzer
from retrieval.corpus import Corpus
from retrieval.model import Passage, SourceInfo
from retrieval.segment import segment

FORMAT_VERSION = 6
_ARRAYS = (
    "indptr", "docs", "vals", "idf", "doc_len", "tok_ptr", "tok_ids", "tok_cs", "tok_ce",
    "p_src", "p_cstart", "p_cend", "p_start", "p_pos", "p_speaker", "text_ptr",
)


@dataclass(frozen=True, slots=True)
class BM25Params:
    """``idf="lucene"`` is log(1 + (N - n + .5)/(n + .5)), never negative; ``"robertson"``
    is log((N - n + .5)/(n + .5)) clamped at 0, as rank-bm25's BM25Okapi(epsilon=0)."""

    k1: float = 1.2
    b: float = 0.75
    idf: str = "lucene"


class Index:
    """A loaded (or freshly built) index. Read-only; safe to share between threads."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict, text_blob: np.ndarray | bytes,
                 source_text: Callable[[str], str | None], folder: Path | None = None,
                 quote_rows: Callable[[], list[dict]] | None = None) -> None:
        self.a = arrays
        self.folder = folder  # where a loaded index lives (None while only in memory)
        self.meta = meta
        self.vocab: dict[str, int] = meta["vocab"]
        self.sources = [SourceInfo(**{**s, "speakers": tuple(s["speakers"])}) for s in meta["sources"]]
        self.speakers: list[str] = meta["speakers"]
        self.glossary: dict[str, list[str]] = meta["glossary"]
        self.params = BM25Params(**meta["params"])
        self._blob = text_blob
        self._source_text = source_text
        self._quote_rows = quote_rows or (lambda: meta["quotes"])

    @functools.cached_property
    def quotes(self) -> list[Passage]:
        """Stand-alone quote candidates; read on first use (they are not needed to search)."""
        return [Passage(**q) for q in self._quote_rows()]

    @property
    def size(self) -> int:
        return len(self.a["doc_len"])

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    def source_text(self, source_id: str) -> str | None:
        return self._source_text(source_id)

    def term_ids(self, terms: list[str]) -> list[int]:
        """Vocabulary ids of ``terms`` (unknown terms dropped, order and repeats kept)."""
        return [self.vocab[t] for t in terms if t in self.vocab]

    def scores(self, term_ids: list[int]) -> np.ndarray:
        """BM25 score of every passage for the query terms (repeats count again)."""
        out = np.zeros(self.size, dtype=np.float32)
        indptr, docs, vals = self.a["indptr"], self.a["docs"], self.a["vals"]
        weights: dict[int, int] = {}
        for t in term_ids:
            weights[t] = weights.get(t, 0) + 1
        for t, w in weights.items():
            s, e = int(indptr[t]), int(indptr[t + 1])
            out[docs[s:e]] += vals[s:e] if w == 1 else w * vals[s:e]
        return out

    def term_mask(self, term_ids: list[int]) -> np.ndarray:
        """A lookup table: ``mask[tok_id]`` is True for the given terms (and False for -1, stopwords)."""
        mask = np.zeros(len(self.vocab) + 1, dtype=bool)
        mask[term_ids] = True
        return mask

    def tokens_of(self, doc: int) -> np.ndarray:
        """Term ids of a passage in text order (-1 for stopwords)."""
        return self.a["tok_ids"][int(self.a["tok_ptr"][doc]) : int(self.a["tok_ptr"][doc + 1])]

    def passage(self, doc: int) -> Passage:
        a = self.a
        s, e = int(a["text_ptr"][doc]), int(a["text_ptr"][doc + 1])
        start = float(a["p_start"][doc])
        spk = int(a["p_speaker"][doc])
        return Passage(
            pid=doc,
            source_id=self.sources[int(a["p_src"][doc])].source_id,
            text=bytes(self._blob[s:e]).decode("utf-8"),
            char_start=int(a["p_cstart"][doc]),
            char_end=int(a["p_cend"][doc]),
            start=None if math.isnan(start) else start,
            speaker=self.speakers[spk] if spk >= 0 else None,
            position=float(a["p_pos"][doc]),
        )

    def source(self, source_id: str) -> SourceInfo | None:
        return next((s for s in self.sources if s.source_id == source_id), None)

    def passages_of(self, source_id: str) -> np.ndarray:
        """Document numbers of one source's passages, in text order."""
        idx = next((i for i, s in enumerate(self.sources) if s.source_id == source_id), -1)
        return np.flatnonzero(np.asarray(self.a["p_src"]) == idx)


def build(corpus: Corpus, analyzer: Analyzer, params: BM25Params | None = None,
          progress: Callable[[int, int], None] | None = None) -> Index:
    """Segment, analyse and index every transcript of a corpus, in memory."""
    params = params or BM25Params()
    sources, speakers, speaker_ix = [], [], {}
    texts: dict[str, str] = {}
    passages: list[tuple[int, Passage]] = []
    quotes: list[Passage] = []
    for si, t in enumerate(corpus.transcripts):
        seg = segment(t, first_pid=len(passages))
        texts[t.source_id] = seg.text
        passages.extend((si, p) for p in seg.passages)
        quotes.extend(seg.quotes)
        sources.append(SourceInfo(t.source_id, t.title, t.url, t.date, t.speakers, t.description, t.timing != "none"))
    vocab: dict[str, int] = {}
    tok_ids: list[int] = []
    tok_ptr = [0]
    tok_cs: list[int] = []  # each token's span inside its passage, for highlighting
    tok_ce: list[int] = []
    pair_terms: list[int] = []
    pair_docs: list[int] = []
    doc_len = np.zeros(len(passages), dtype=np.int32)
    blob = bytearray()
    text_ptr = [0]
    for d, (_, p) in enumerate(passages):
        n = 0
        for tok in analyzer.document_tokens(p.text):
            tok_cs.append(tok.start)
            tok_ce.append(tok.end)
            if analyzer.is_stopword(tok.term):
                tok_ids.append(-1)
                continue
            tid = vocab.setdefault(tok.term, len(vocab))
            tok_ids.append(tid)
            pair_terms.append(tid)
            pair_docs.append(d)
            n += 1
        doc_len[d] = n
        tok_ptr.append(len(tok_ids))
        blob += p.text.encode("utf-8")
        text_ptr.append(len(blob))
        if progress and (d % 2000 == 0 or d == len(passages) - 1):
            progress(d + 1, len(passages))
        if p.speaker is not None and p.speaker not in speaker_ix:
            speaker_ix[p.speaker] = len(speakers)
            speakers.append(p.speaker)
    arrays = _postings(np.asarray(pair_terms, np.int64), np.asarray(pair_docs, np.int64), doc_len, len(vocab), params)
    arrays.update(
        doc_len=doc_len,
        tok_ptr=np.asarray(tok_ptr, np.int64),
        tok_ids=np.asarray(tok_ids, np.int32),
        tok_cs=np.asarray(tok_cs, np.int32),
        tok_ce=np.asarray(tok_ce, np.int32),
        p_src=np.asarray([si for si, _ in passages], np.int32),
        p_cstart=np.asarray([p.char_start for _, p in passages], np.int64),
        p_cend=np.asarray([p.char_end for _, p in passages], np.int64),
        p_start=np.asarray([math.nan if p.start is None else p.start for _, p in passages], np.float64),
        p_pos=np.asarray([p.position for _, p in passages], np.float32),
        p_speaker=np.asarray([speaker_ix.get(p.speaker, -1) for _, p in passages], np.int32),
        text_ptr=np.asarray(text_ptr, np.int64),
    )
    meta = {
        "format": FORMAT_VERSION,
        "fingerprint": corpus.fingerprint,
        "params": asdict(params),
        "vocab": vocab,
        "sources": [{**asdict(s), "speakers": list(s.speakers)} for s in sources],
        "speakers": speakers,
        "quotes": [asdict(q) for q in quotes],
        "glossary": {k: list(v) for k, v in corpus.glossary.items()},
        "speaker_names": corpus.speaker_names(),
    }
    return Index(arrays, meta, bytes(blob), texts.get)


def _postings(terms: np.ndarray, docs: np.ndarray, doc_len: np.ndarray, n_terms: int,
              params: BM25Params) -> dict[str, np.ndarray]:
    n_docs = len(doc_len)
    if len(terms):
        keys = terms * max(1, n_docs) + docs
        uniq, tf = np.unique(keys, return_counts=True)  # sorted by term, then doc
        t_of, d_of = uniq // max(1, n_docs), uniq % max(1, n_docs)
    else:
        t_of = d_of = tf = np.zeros(0, np.int64)
    df = np.bincount(t_of, minlength=n_terms).astype(np.float64)
    if params.idf == "robertson":
        idf = np.maximum(0.0, np.log((n_docs - df + 0.5) / (df + 0.5)))
    else:
        idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
    avgdl = float(doc_len.mean()) if n_docs else 1.0
    norm = params.k1 * (1.0 - params.b + params.b * doc_len[d_of] / max(avgdl, 1e-9))
    vals = idf[t_of] * tf * (params.k1 + 1.0) / (tf + norm)
    indptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(df.astype(np.int64), out=indptr[1:])
    return {"indptr": indptr, "docs": d_of.astype(np.int32), "vals": vals.astype(np.float32),
            "idf": idf.astype(np.float32)}


def save(index: Index, folder: Path) -> None:
    """Write the index into ``folder`` (which must not exist yet)."""
    folder.mkdir(parents=True)
    for name in _ARRAYS:
        np.save(folder / f"{name}.npy", np.ascontiguousarray(index.a[name]))
    (folder / "texts.bin").write_bytes(bytes(index._blob))
    (folder / "sources").mkdir()
    for i, s in enumerate(index.sources):
        (folder / "sources" / f"{i}.txt").write_text(index.source_text(s.source_id) or "", encoding="utf-8")
    quotes = [asdict(q) for q in index.quotes]
    (folder / "quotes.json").write_text(json.dumps(quotes, ensure_ascii=False), encoding="utf-8")
    meta = {k: v for k, v in index.meta.items() if k != "quotes"}
    (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def load(folder: Path) -> Index:
    """Open a saved index; arrays and texts are memory-mapped, not read.

    The arrays are plain ndarray views of the maps: slicing an ``np.memmap`` object costs
    a Python-level ``__getitem__``/``__array_finalize__`` on every access.
    """
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{folder}: index format {meta.get('format')} is not {FORMAT_VERSION}")
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r").view(np.ndarray) for name in _ARRAYS}
    blob_path = folder / "texts.bin"
    blob = np.memmap(blob_path, dtype=np.uint8, mode="r").view(np.ndarray) if blob_path.stat().st_size else b""
    number = {s["source_id"]: i for i, s in enumerate(meta["sources"])}

    @functools.cache
    def source_text(source_id: str) -> str | None:
        i = number.get(source_id)
        return None if i is None else (folder / "sources" / f"{i}.txt").read_text(encoding="utf-8")

    def quote_rows() -> list[dict]:
        return json.loads((folder / "quotes.json").read_text(encoding="utf-8"))

    return Index(arrays, meta, blob, source_text, folder, quote_rows)


class IndexStore:
    """An index folder with builds swapped in whole: ``current`` points at the live build.

    A new build is written to its own folder, then the ``current`` link is replaced
    atomically; a failed build leaves the previous one in place.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def current(self) -> Path:
        return self.root / "current"

    def live_fingerprint(self) -> str | None:
        try:
            meta = json.loads((self.current / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta.get("fingerprint") if meta.get("format") == FORMAT_VERSION else None

    def load(self) -> Index:
        return load(self.current.resolve())

    def publish(self, index: Index, extras: tuple[Callable[[Index, Path], None], ...] = ()) -> Path:
        """Save ``index`` (and whatever ``extras`` write beside it) as a new build; make it current."""
        builds = self.root / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        tmp = builds / f".tmp-{uuid.uuid4().hex[:8]}"
        try:
            save(index, tmp)
            for extra in extras:
                extra(index, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        final = builds / f"{index.fingerprint}-{uuid.uuid4().hex[:6]}"
        tmp.rename(final)
        link = self.root / f".current-{uuid.uuid4().hex[:8]}"
        link.symlink_to(final.relative_to(self.root))
        os.replace(link, self.current)
        self._prune(keep=final)
        return final

    def _prune(self, keep: Path) -> None:
        # Old builds may still be memory-mapped by a running process; on POSIX removing
        # them is safe (the mapping stays valid until closed).
        for p in (self.root / "builds").iterdir():
            if p != keep:
                shutil.rmtree(p, ignore_errors=True)
