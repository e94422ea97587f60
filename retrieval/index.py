"""The BM25 index: per-source segments merged into one set of flat arrays, memory-mapped.

Postings hold precomputed BM25 contributions (idf x saturated tf), term by term, so a
query is a handful of vectorised adds; the raw tf is kept beside them, so a new build can
recompute every contribution from the new global statistics (idf, average length) without
re-analysing anything. Each passage's term sequence is kept too, for the phrase/proximity
re-ranking and highlights. Passage texts live in one UTF-8 blob, decoded only for hits.

A build on disk (a *generation*) is a folder of raw little-endian arrays plus
``meta.json``. It is written once and never changed. A new generation is made from the
previous one plus the sources that changed (``update``): unchanged sources are copied
array slice by array slice, with their term ids (the vocabulary only ever grows between
full builds), so they are never analysed again. ``IndexStore`` publishes generations and
keeps them alive while any process reads them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import math
import os
import shutil
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retrieval.analyze import Analyzer, TermTable
from retrieval.corpus import Corpus
from retrieval.model import Passage, SourceInfo
from retrieval.segments import SourceSegment, analyse_source

FORMAT_VERSION = 8
# name -> dtype; tok_cs/tok_ce are uint16 unless a passage is longer than 65,535 characters
_DTYPES = {
    "p_src": np.int32, "p_cstart": np.int64, "p_cend": np.int64, "p_start": np.float64, "p_pos": np.float32,
    "p_speaker": np.int32, "doc_len": np.int32, "tok_ptr": np.int64, "text_ptr": np.int64,
    "tok_ids": np.int32, "tok_cs": np.uint16, "tok_ce": np.uint16, "texts": np.uint8,
    "src_doc_ptr": np.int64, "src_text": np.uint8, "src_text_ptr": np.int64, "quotes": np.uint8,
    "quotes_ptr": np.int64,
    "indptr": np.int64, "docs": np.int32, "tf": np.uint16, "vals": np.float32, "idf": np.float32,
}
_WIDE = {"tok_cs", "tok_ce"}


@dataclass(frozen=True, slots=True)
class BM25Params:
    """``idf="lucene"`` is log(1 + (N - n + .5)/(n + .5)), never negative; ``"robertson"``
    is log((N - n + .5)/(n + .5)) clamped at 0, as rank-bm25's BM25Okapi(epsilon=0)."""

    k1: float = 1.2
    b: float = 0.75
    idf: str = "lucene"


class Index:
    """A loaded (or freshly built) index. Read-only; safe to share between threads."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict, folder: Path | None = None) -> None:
        self.a = arrays
        self.folder = folder  # where a loaded index lives (None while only in memory)
        self.meta = meta
        self.vocab: dict[str, int] = meta["vocab"]
        self.sources = [_source_info(s["info"]) for s in meta["sources"]]
        self._number = {s.source_id: i for i, s in enumerate(self.sources)}
        self.speakers: list[str] = meta["speakers"]
        self.glossary: dict[str, list[str]] = meta["glossary"]
        self.params = BM25Params(**meta["params"])
        self._texts: dict[int, str] = {}

    @functools.cached_property
    def quotes(self) -> list[Passage]:
        """Stand-alone quote candidates of every source; read on first use (not needed to search)."""
        blob, ptr = self.a["quotes"], self.a["quotes_ptr"]
        out: list[Passage] = []
        for i in range(len(self.sources)):
            s, e = int(ptr[i]), int(ptr[i + 1])
            out.extend(Passage(**q) for q in json.loads(bytes(blob[s:e]).decode("utf-8") or "[]"))
        return out

    @property
    def size(self) -> int:
        return len(self.a["doc_len"])

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    @property
    def source_keys(self) -> dict[str, str]:
        """Each source's content key: equal keys mean identical passages (and identical
        passage texts), so per-source data such as embeddings can be cached under it."""
        return {s["info"]["source_id"]: s["key"] for s in self.meta["sources"]}

    def source_docs(self, source_id: str) -> range:
        """The document numbers of one source's passages (consecutive, in text order)."""
        i = self._number.get(source_id)
        if i is None:
            return range(0)
        ptr = self.a["src_doc_ptr"]
        return range(int(ptr[i]), int(ptr[i + 1]))

    def source_text(self, source_id: str) -> str | None:
        """A source's joined text (the last few asked for are kept decoded)."""
        i = self._number.get(source_id)
        if i is None:
            return None
        cache = self._texts
        text = cache.pop(i, None)
        if text is None:
            ptr = self.a["src_text_ptr"]
            text = bytes(self.a["src_text"][int(ptr[i]) : int(ptr[i + 1])]).decode("utf-8")
            if len(cache) >= 32:
                cache.pop(next(iter(cache)))
        cache[i] = text
        return text

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
        info = self.sources[int(a["p_src"][doc])]
        start_s = None if math.isnan(start) else start
        return Passage(
            pid=doc,
            source_id=info.source_id,
            text=bytes(a["texts"][s:e]).decode("utf-8"),
            char_start=int(a["p_cstart"][doc]),
            char_end=int(a["p_cend"][doc]),
            start=start_s,
            speaker=self.speakers[spk] if spk >= 0 else None,
            position=float(a["p_pos"][doc]),
            chapter=info.chapter_at(start_s) if info.chapters else None,
        )

    def source(self, source_id: str) -> SourceInfo | None:
        i = self._number.get(source_id)
        return None if i is None else self.sources[i]

    def passages_of(self, source_id: str) -> np.ndarray:
        """Document numbers of one source's passages, in text order."""
        r = self.source_docs(source_id)
        return np.arange(r.start, r.stop)


# --- writing a generation -----------------------------------------------------------------


class Sink:
    """Arrays appended piece by piece, into files of a folder or into memory."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.dtypes = dict(_DTYPES)
        self.lengths = dict.fromkeys(_DTYPES, 0)
        self._mem: dict[str, list[np.ndarray]] = {k: [] for k in _DTYPES}
        self._files = {k: (folder / f"{k}.bin").open("wb") for k in _DTYPES} if folder else {}

    def add(self, name: str, values: np.ndarray | bytes) -> None:
        if isinstance(values, bytes | bytearray | memoryview):
            arr = np.frombuffer(values, np.uint8)
        else:
            arr = np.asarray(values)
        if name in _WIDE and self.dtypes[name] == np.uint16 and len(arr) and int(arr.max()) > 0xFFFF:
            self._widen(name)
        arr = arr.astype(self.dtypes[name], copy=False)
        self.lengths[name] += len(arr)
        if self.folder is None:
            self._mem[name].append(arr)
        else:
            self._files[name].write(memoryview(np.ascontiguousarray(arr)).cast("B"))

    def _widen(self, name: str) -> None:
        self.dtypes[name] = np.int32
        if self.folder is None:
            self._mem[name] = [a.astype(np.int32) for a in self._mem[name]]
            return
        f = self._files[name]
        f.close()
        path = self.folder / f"{name}.bin"
        old = np.fromfile(path, np.uint16).astype(np.int32)
        self._files[name] = path.open("wb")
        self._files[name].write(old.tobytes())

    def finish(self) -> dict[str, str]:
        for f in self._files.values():
            f.close()
        return {k: np.dtype(v).str for k, v in self.dtypes.items()}

    def memory_arrays(self) -> dict[str, np.ndarray]:
        return {k: (np.concatenate(v) if v else np.zeros(0, self.dtypes[k])) for k, v in self._mem.items()}


def _open_arrays(folder: Path, dtypes: dict[str, str]) -> dict[str, np.ndarray]:
    """Memory-map every array of a generation (plain ndarray views of ``np.memmap`` objects:
    slicing an ``np.memmap`` costs a Python-level ``__array_finalize__`` on every access)."""
    out = {}
    for name, dt in dtypes.items():
        path = folder / f"{name}.bin"
        if path.stat().st_size:
            out[name] = np.memmap(path, dtype=np.dtype(dt), mode="r").view(np.ndarray)
        else:
            out[name] = np.zeros(0, np.dtype(dt))
    return out


@dataclass(frozen=True, slots=True)
class Carried:
    """Sources of a previous generation that go into the next one unchanged."""

    index: Index
    numbers: list[int]  # source numbers in ``index``, in order


def _source_info(row: dict) -> SourceInfo:
    """A SourceInfo from its JSON form (tuples come back as lists)."""
    return SourceInfo(**{**row, "speakers": tuple(row.get("speakers", ())),
                         "chapters": tuple((float(c[0]), str(c[1])) for c in row.get("chapters", ()))})


def _passage_row(p: Passage) -> dict:
    return {"pid": p.pid, "source_id": p.source_id, "text": p.text, "char_start": p.char_start,
            "char_end": p.char_end, "start": p.start, "speaker": p.speaker, "position": p.position,
            "chapter": p.chapter}


def _source_meta(info: SourceInfo, key: str, name: str) -> dict:
    return {"info": {**asdict(info), "speakers": list(info.speakers)}, "key": key, "name": name}


def write_generation(sink: Sink, carried: Carried | None, fresh: Iterable[SourceSegment], table: TermTable,
                     speakers: list[str], params: BM25Params, progress: Callable[[int], None] | None = None
                     ) -> tuple[list[dict], int]:
    """Append carried sources, then fresh ones, then postings with the new global statistics.

    Returns the per-source meta rows and the passage count.
    """
    sources: list[dict] = []
    speaker_ix = {s: i for i, s in enumerate(speakers)}
    n_docs = n_toks = n_text = n_src_text = n_quotes = 0
    doc_lens: list[np.ndarray] = []
    for name, start in (("tok_ptr", 0), ("text_ptr", 0), ("src_doc_ptr", 0), ("src_text_ptr", 0), ("quotes_ptr", 0)):
        sink.add(name, np.asarray([start], np.int64))
    old_post = None
    if carried is not None and carried.numbers:
        ix, a = carried.index, carried.index.a
        keep_doc = np.full(ix.size, -1, np.int64)
        for sn in carried.numbers:
            r = range(int(a["src_doc_ptr"][sn]), int(a["src_doc_ptr"][sn + 1]))
            d0, d1 = r.start, r.stop
            t0, t1 = int(a["tok_ptr"][d0]), int(a["tok_ptr"][d1])
            b0, b1 = int(a["text_ptr"][d0]), int(a["text_ptr"][d1])
            keep_doc[d0:d1] = np.arange(n_docs, n_docs + (d1 - d0))
            sink.add("p_src", np.full(d1 - d0, len(sources), np.int32))
            for k in ("p_cstart", "p_cend", "p_start", "p_pos", "p_speaker", "doc_len"):
                sink.add(k, a[k][d0:d1])
            doc_lens.append(np.asarray(a["doc_len"][d0:d1]))
            sink.add("tok_ptr", a["tok_ptr"][d0 + 1 : d1 + 1] - t0 + n_toks)
            sink.add("text_ptr", a["text_ptr"][d0 + 1 : d1 + 1] - b0 + n_text)
            for k in ("tok_ids", "tok_cs", "tok_ce"):
                sink.add(k, a[k][t0:t1])
            sink.add("texts", a["texts"][b0:b1])
            s0, s1 = int(a["src_text_ptr"][sn]), int(a["src_text_ptr"][sn + 1])
            q0, q1 = int(a["quotes_ptr"][sn]), int(a["quotes_ptr"][sn + 1])
            sink.add("src_text", a["src_text"][s0:s1])
            sink.add("quotes", a["quotes"][q0:q1])
            n_docs += d1 - d0
            n_toks += t1 - t0
            n_text += b1 - b0
            n_src_text += s1 - s0
            n_quotes += q1 - q0
            sink.add("src_doc_ptr", np.asarray([n_docs], np.int64))
            sink.add("src_text_ptr", np.asarray([n_src_text], np.int64))
            sink.add("quotes_ptr", np.asarray([n_quotes], np.int64))
            sources.append(ix.meta["sources"][sn])
        old_post = (a["indptr"], a["docs"], a["tf"], keep_doc)
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for seg in fresh:
        n = seg.size
        sink.add("p_src", np.full(n, len(sources), np.int32))
        sink.add("p_cstart", seg.cstart)
        sink.add("p_cend", seg.cend)
        sink.add("p_start", seg.start)
        sink.add("p_pos", seg.pos)
        spk = np.empty(n, np.int32)
        for d, name in enumerate(seg.speakers):
            if name is None:
                spk[d] = -1
            else:
                if name not in speaker_ix:
                    speaker_ix[name] = len(speakers)
                    speakers.append(name)
                spk[d] = speaker_ix[name]
        sink.add("p_speaker", spk)
        sink.add("doc_len", seg.doc_len)
        doc_lens.append(seg.doc_len)
        sink.add("tok_ptr", seg.tok_ptr[1:] + n_toks)
        sink.add("text_ptr", seg.text_ptr[1:] + n_text)
        sink.add("tok_ids", seg.tok_ids)
        sink.add("tok_cs", seg.tok_cs)
        sink.add("tok_ce", seg.tok_ce)
        sink.add("texts", seg.blob)
        src_bytes = seg.text.encode("utf-8")
        quote_bytes = json.dumps([_passage_row(q) for q in seg.quotes], ensure_ascii=False).encode("utf-8")
        sink.add("src_text", src_bytes)
        sink.add("quotes", quote_bytes)
        pieces.append((seg.post_term, seg.post_doc.astype(np.int64) + n_docs, seg.post_tf))
        n_docs += n
        n_toks += len(seg.tok_ids)
        n_text += len(seg.blob)
        n_src_text += len(src_bytes)
        n_quotes += len(quote_bytes)
        sink.add("src_doc_ptr", np.asarray([n_docs], np.int64))
        sink.add("src_text_ptr", np.asarray([n_src_text], np.int64))
        sink.add("quotes_ptr", np.asarray([n_quotes], np.int64))
        sources.append(_source_meta(seg.info, seg.key, seg.name))
        if progress:
            progress(n)
    doc_len = np.concatenate(doc_lens) if doc_lens else np.zeros(0, np.int32)
    post = _postings(old_post, pieces, doc_len, len(table.vocab), params)
    for k in ("indptr", "docs", "tf", "vals", "idf"):
        sink.add(k, post[k])
    return sources, n_docs


def _postings(old, pieces, doc_len: np.ndarray, n_terms: int, params: BM25Params) -> dict[str, np.ndarray]:
    """Term-ordered postings of the kept old ones and the new pieces, with BM25 values
    from the global document frequencies and average length."""
    n_docs = len(doc_len)
    df = np.zeros(n_terms, np.int64)
    if old is not None:
        o_indptr, o_docs, o_tf, keep_doc = old
        new_doc = keep_doc[o_docs]
        kept = new_doc >= 0
        o_terms = np.repeat(np.arange(len(o_indptr) - 1), np.diff(o_indptr))[kept]
        old_df = np.bincount(o_terms, minlength=len(o_indptr) - 1)
        df[: len(old_df)] += old_df
        old_docs, old_tf = new_doc[kept], np.asarray(o_tf)[kept]
    for terms, _, _ in pieces:
        df += np.bincount(terms, minlength=n_terms)
    indptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(df, out=indptr[1:])
    nnz = int(indptr[-1])
    docs = np.empty(nnz, np.int32)
    tf = np.empty(nnz, np.uint16)
    fill = indptr[:-1].copy()
    if old is not None and len(old_docs):
        kept_ptr = np.zeros(len(old_df) + 1, np.int64)
        np.cumsum(old_df, out=kept_ptr[1:])
        at = indptr[o_terms] + (np.arange(len(o_terms)) - kept_ptr[o_terms])
        docs[at] = old_docs
        tf[at] = old_tf
        fill[: len(old_df)] += old_df
    for terms, pdocs, ptf in pieces:
        if not len(terms):
            continue
        starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
        run = np.diff(np.r_[starts, len(terms)])
        rank = np.arange(len(terms)) - np.repeat(starts, run)
        at = fill[terms] + rank
        docs[at] = pdocs
        tf[at] = ptf
        fill[terms[starts]] += run
    dff = df.astype(np.float64)
    if params.idf == "robertson":
        idf = np.maximum(0.0, np.log((n_docs - dff + 0.5) / (dff + 0.5)))
    else:
        idf = np.log(1.0 + (n_docs - dff + 0.5) / (dff + 0.5))
    avgdl = float(doc_len.mean()) if n_docs else 1.0
    norm = (params.k1 * (1.0 - params.b + params.b * doc_len / max(avgdl, 1e-9))).astype(np.float32)
    vals = np.empty(nnz, np.float32)
    step = 1 << 22
    term_of = np.repeat(np.arange(n_terms, dtype=np.int32), df) if nnz else np.zeros(0, np.int32)
    idf32 = idf.astype(np.float32)
    for s in range(0, nnz, step):
        e = min(nnz, s + step)
        t = tf[s:e].astype(np.float32)
        vals[s:e] = idf32[term_of[s:e]] * t * np.float32(params.k1 + 1.0) / (t + norm[docs[s:e]])
    return {"indptr": indptr, "docs": docs, "tf": tf, "vals": vals, "idf": idf32}


def generation_meta(sources: list[dict], table: TermTable, speakers: list[str], params: BM25Params, fingerprint: str,
          glossary: dict, speaker_names: list[str], dtypes: dict[str, str], extra: dict | None = None) -> dict:
    return {
        "format": FORMAT_VERSION, "fingerprint": fingerprint, "params": asdict(params), "vocab": table.vocab,
        "sources": sources, "speakers": speakers, "glossary": {k: list(v) for k, v in glossary.items()},
        "speaker_names": speaker_names, "dtypes": dtypes, **(extra or {}),
    }


def build(corpus: Corpus, analyzer: Analyzer, params: BM25Params | None = None,
          progress: Callable[[int, int], None] | None = None) -> Index:
    """Segment, analyse and index every transcript of a corpus, in memory."""
    params = params or BM25Params()
    table = TermTable()
    sink = Sink(None)
    speakers: list[str] = []
    done = [0]
    total = len(corpus.transcripts)

    def step(_: int) -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    segs = (analyse_source(t, analyzer, table) for t in corpus.transcripts)
    sources, _ = write_generation(sink, None, segs, table, speakers, params, step)
    dtypes = sink.finish()
    meta = generation_meta(sources, table, speakers, params, corpus.fingerprint, corpus.glossary,
                           corpus.speaker_names(), dtypes)
    return Index(sink.memory_arrays(), meta)


def save(index: Index, folder: Path) -> None:
    """Write an index into ``folder`` (which must not exist yet)."""
    folder.mkdir(parents=True)
    for name, dt in index.meta["dtypes"].items():
        np.ascontiguousarray(index.a[name], dtype=np.dtype(dt)).tofile(folder / f"{name}.bin")
    _write_meta(folder, index.meta)


def _write_meta(folder: Path, meta: dict) -> None:
    (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    (folder / LEASE).touch()


def load(folder: Path) -> Index:
    """Open a saved generation; arrays and texts are memory-mapped, not read.

    Every file is opened here, none later, so a running process never depends on a file
    that could go away afterwards.
    """
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{folder}: index format {meta.get('format')} is not {FORMAT_VERSION}")
    return Index(_open_arrays(folder, meta["dtypes"]), meta, folder)


# --- the index folder: generations, locking, leases ---------------------------------------

LEASE = "lease"


class IndexStore:
    """An index folder shared by any number of processes.

    Layout: ``builds/<id>/`` holds generations, each written completely under a temporary
    name and renamed into place; ``current`` is a symlink to the live one, replaced
    atomically (``os.replace``), so a reader sees either the old or the new build, never
    a half-written one. Builders take an exclusive ``flock`` on ``build.lock``, one at a
    time; readers never wait for it.

    Readers hold a shared ``flock`` on the ``lease`` file of the generation they loaded
    for as long as the ``Index`` object lives. A builder deletes an old generation only
    after taking an exclusive, non-blocking lock on its lease, which succeeds only when no
    process holds it: a generation in use is never deleted, whichever process built it.
    The builder renames a generation out of ``builds/`` before deleting it, while holding
    that lock; a reader that opened the lease just before re-checks, after locking, that
    the generation is still in place, and otherwise follows ``current`` again.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def current(self) -> Path:
        return self.root / "current"

    def live_meta(self) -> dict | None:
        try:
            meta = json.loads((self.current / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if meta.get("format") == FORMAT_VERSION else None

    def live_fingerprint(self) -> str | None:
        meta = self.live_meta()
        return meta.get("fingerprint") if meta else None

    def load(self) -> Index:
        """The live generation, leased for the lifetime of the returned Index."""
        for _ in range(50):
            try:
                folder = self.current.resolve(strict=True)
            except OSError as e:
                raise FileNotFoundError(f"{self.root}: no index built yet") from e
            lease = _take_lease(folder)
            if lease is None:
                continue  # pruned just now: follow ``current`` again
            try:
                index = load(folder)
            except BaseException:
                os.close(lease)
                raise
            weakref.finalize(index, os.close, lease)
            return index
        raise RuntimeError(f"{self.root}: the live index kept changing while opening it")

    @contextlib.contextmanager
    def build_lock(self) -> Iterator[None]:
        """Exclusive across processes: one builder at a time on this folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "build.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def new_folder(self) -> Path:
        builds = self.root / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        tmp = builds / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        return tmp

    def commit(self, tmp: Path, fingerprint: str) -> Path:
        """Rename a completely written generation into place, make it current, prune unused ones."""
        final = self.root / "builds" / f"{fingerprint}-{uuid.uuid4().hex[:6]}"
        tmp.rename(final)
        link = self.root / f".current-{uuid.uuid4().hex[:8]}"
        link.symlink_to(final.relative_to(self.root))
        os.replace(link, self.current)
        self.prune(keep=final)
        return final

    def publish(self, index: Index, extras: tuple[Callable[[Index, Path], None], ...] = ()) -> Path:
        """Save an in-memory ``index`` (and whatever ``extras`` write beside it) as the live build."""
        with self.build_lock():
            tmp = self.new_folder()
            try:
                tmp.rmdir()
                save(index, tmp)
                for extra in extras:
                    extra(index, tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return self.commit(tmp, index.fingerprint)

    def prune(self, keep: Path) -> list[Path]:
        """Delete generations that are not current and that no process holds; returns them."""
        removed = []
        live = self.current.resolve()
        for p in sorted((self.root / "builds").iterdir()):
            if p in (keep, live) or p.name.startswith((".tmp-", ".trash-")):
                continue
            try:
                fd = os.open(p / LEASE, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue  # some process still reads it
                raise
            try:
                trash = p.with_name(f".trash-{p.name}")
                p.rename(trash)
                shutil.rmtree(trash, ignore_errors=True)
                removed.append(p)
            finally:
                os.close(fd)
        return removed


def _take_lease(folder: Path) -> int | None:
    try:
        fd = os.open(folder / LEASE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    if not (folder / LEASE).exists():  # renamed away for deletion while we waited
        os.close(fd)
        return None
    return fd
