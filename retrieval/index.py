"""The BM25 index: per-source segments merged into one set of flat arrays, memory-mapped.

Postings hold precomputed BM25 contributions (idf x saturated tf), term by term, so a
query is a handful of vectorised adds; the raw tf is kept beside them, so a new build can
recompute every contribution from the new global statistics (idf, average length) without
re-analysing anything. Each passage's term sequence is kept too, for the phrase/proximity
re-ranking and highlights. Sources' texts live in one UTF-8 blob; a passage is a byte span
of its source's text, decoded only for hits.

A build on disk (a *generation*) is a folder of raw little-endian arrays plus
``meta.json``; ``meta["lengths"]`` says how many items of each array belong to it. A
*full* generation is written from scratch (``write_generation``): unchanged sources of the
previous one are copied slice by slice with their term ids (the vocabulary only ever grows
between full builds), so they are never analysed again. A *delta* generation
(``write_delta``) changes a few sources of a large index in well under a second: the
per-passage, token and text arrays are hard links to the previous generation's files with
the new sources appended past the previous lengths (readers of the previous generation
never look past theirs); the big term-ordered postings are shared as they are, the new
passages get small postings of their own, and the passages of replaced or removed sources
become *dead*: no source owns them (``p_src`` -1) and they score -1. Document frequencies,
the live passage count and the total length are kept exactly, so every score equals that of
a full rebuild. ``IndexStore`` publishes generations and keeps them alive while any process
reads them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import math
import mmap
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
from retrieval.segments import SourceSegment, analyse_many, analyse_source, worker_count

FORMAT_VERSION = 12
# name -> dtype. Per token: tok_ids are uint16 (stopwords NO_TERM) while the vocabulary has fewer than
# 65,535 terms, else int32 (stopwords -1); tok_step is its start minus the previous token's start in
# its passage (the first token's: its start in the passage), tok_len its length in characters. Each
# of the three is stored as int32 once a value does not fit its narrow type.
_DTYPES = {
    "p_cstart": np.int64, "p_cend": np.int64, "p_start": np.float64, "p_pos": np.float32,
    "p_speaker": np.int32, "doc_len": np.int32, "tok_ptr": np.int64, "p_bstart": np.int64, "p_bend": np.int64,
    "tok_ids": np.uint16, "tok_step": np.int8, "tok_len": np.uint8, "src_text": np.uint8, "quotes": np.uint8,
    "indptr": np.int64, "docs": np.int32, "tf": np.uint16, "vals": np.float32,
    "p_src": np.int32, "src_doc": np.int64, "src_txt": np.int64, "src_quo": np.int64,
    "idf": np.float32, "df": np.int64, "dead": np.int32, "d_indptr": np.int64, "d_docs": np.int32, "d_tf": np.uint16,
}
# Append-only in delta generations: what one passage or source adds goes past the previous end.
APPENDED = ("p_cstart", "p_cend", "p_start", "p_pos", "p_speaker", "doc_len", "tok_ptr", "p_bstart", "p_bend",
            "tok_ids", "tok_step", "tok_len", "src_text", "quotes")
# The postings of the last full generation, shared unchanged by the delta generations after it.
BASE_POSTINGS = ("indptr", "docs", "tf", "vals")
_WIDE = {"tok_step", "tok_len", "tok_ids"}
NO_TERM = 0xFFFF  # a stopword in 2-byte term ids


def term_ids_of(stored: np.ndarray) -> np.ndarray:
    """Stored term ids as int64, stopwords -1, whichever width they were stored in."""
    ids = np.asarray(stored, np.int64)
    if np.asarray(stored).dtype == np.uint16:
        ids[ids == NO_TERM] = -1
    return ids


def _too_wide(name: str, dtype: type, arr: np.ndarray) -> bool:
    """Whether ``arr`` (term ids with -1 stopwords, or token steps or lengths) does not fit ``dtype``."""
    if not len(arr) or np.dtype(dtype) == np.int32:
        return False
    if name == "tok_ids":
        return int(arr.max()) >= NO_TERM
    info = np.iinfo(dtype)
    return int(arr.min()) < info.min or int(arr.max()) > info.max


@dataclass(frozen=True, slots=True)
class BM25Params:
    """``idf="lucene"`` is log(1 + (N - n + .5)/(n + .5)), never negative; ``"robertson"``
    is log((N - n + .5)/(n + .5)) clamped at 0, as rank-bm25's BM25Okapi(epsilon=0)."""

    k1: float = 1.2
    b: float = 0.75
    idf: str = "lucene"


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """Part of one source's text: ``text`` begins at character ``start`` of a text ``length`` long."""

    text: str
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


class Index:
    """A loaded (or freshly built) index. Read-only; safe to share between threads."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict, folder: Path | None = None,
                 files: dict[str, int] | None = None) -> None:
        self.a = arrays
        self._files = files or {}  # open descriptors of the arrays read by ``read`` rather than through the map
        self.folder = folder  # where a loaded index lives (None while only in memory)
        self.meta = meta
        self.vocab: dict[str, int] = meta["vocab"]
        self.sources = [_source_info(s["info"]) for s in meta["sources"]]
        self._number = {s.source_id: i for i, s in enumerate(self.sources)}
        self.speakers: list[str] = meta["speakers"]
        self.glossary: dict[str, list[str]] = meta["glossary"]
        self.params = BM25Params(**meta["params"])
        self._texts: dict[int, str] = {}
        self._lengths: dict[int, int] = {}  # characters of each source's text, as asked for
        self._src_doc = arrays["src_doc"].reshape(-1, 2)
        self._exact = bool(meta.get("exact", True))
        self.dead: np.ndarray = arrays["dead"]  # passages of replaced or removed sources (delta generations)

    @functools.cached_property
    def live(self) -> np.ndarray:
        """``live[doc]`` is False for dead passages (those no source owns any more)."""
        out = np.ones(self.size, bool)
        out[self.dead] = False
        return out

    @property
    def live_size(self) -> int:
        """Passages that belong to a source (``size`` counts dead ones too)."""
        return self.size - len(self.dead)

    @property
    def doc_freq(self) -> np.ndarray:
        """Live passages containing each term, by term id."""
        return self.a["df"]

    @functools.cached_property
    def _norm(self) -> np.ndarray:
        p = self.params
        avgdl = self.meta["len_sum"] / self.live_size if self.live_size else 1.0
        return (p.k1 * (1.0 - p.b + p.b * np.asarray(self.a["doc_len"]) / max(avgdl, 1e-9))).astype(np.float32)

    @functools.cached_property
    def quotes(self) -> list[Passage]:
        """Stand-alone quote candidates of every source; read on first use (not needed to search)."""
        blob, span = self.a["quotes"], self.a["src_quo"].reshape(-1, 2)
        out: list[Passage] = []
        for i in range(len(self.sources)):
            s, e = int(span[i, 0]), int(span[i, 1])
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
        return range(int(self._src_doc[i, 0]), int(self._src_doc[i, 1]))

    def source_text(self, source_id: str) -> str | None:
        """A source's joined text (the last few asked for are kept decoded)."""
        i = self._number.get(source_id)
        if i is None:
            return None
        cache = self._texts
        text = cache.pop(i, None)
        if text is None:
            span = self.a["src_txt"].reshape(-1, 2)
            text = bytes(self.read("src_text", int(span[i, 0]), int(span[i, 1]))).decode("utf-8")
            if len(cache) >= 32:
                cache.pop(next(iter(cache)))
        cache[i] = text
        return text

    def read(self, name: str, lo: int, hi: int) -> np.ndarray:
        """Items ``lo .. hi-1`` of array ``name``. The token and text arrays of a loaded index are
        read from their files: the kernel maps whole large page-cache folios (up to 2 MB) into a
        process that touches one byte of a mapped file, so reading a few tokens or characters
        at random through the map would soon hold all of them in this process's memory."""
        fd = self._files.get(name)
        if fd is None:
            return self.a[name][lo:hi]
        arr = self.a[name]
        size = arr.itemsize
        lo, hi = max(0, lo), min(len(arr), hi)
        if hi <= lo:
            return arr[:0]
        return np.frombuffer(os.pread(fd, (hi - lo) * size, lo * size), arr.dtype)

    def gather(self, name: str, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """Items ``starts[i] .. stops[i]-1`` of array ``name`` for every i, one after another."""
        return self.gather_many((name,), starts, stops)[0]

    def gather_many(self, names: tuple[str, ...], starts: np.ndarray, stops: np.ndarray) -> list[np.ndarray]:
        """``gather`` of several arrays of one length over the same ranges, planned once."""
        starts, stops = np.asarray(starts, np.int64), np.asarray(stops, np.int64)
        if len(starts) == 1:
            return [self.read(n, int(starts[0]), int(stops[0])) for n in names]
        lens = stops - starts
        ends = np.cumsum(lens)
        total = int(ends[-1]) if len(ends) else 0
        if not all(n in self._files for n in names):
            pick = np.repeat(starts - (ends - lens), lens) + np.arange(total)
            return [self.a[n][pick] for n in names]
        if not len(starts):
            return [self.a[n][:0] for n in names]
        # one read per run of ranges less than a few pages apart
        order = np.argsort(starts, kind="stable")
        lo, hi = starts[order], stops[order]
        reach = np.maximum.accumulate(hi)
        apart = np.ones(len(lo), bool)
        apart[1:] = lo[1:] > reach[:-1] + 1024
        first = np.flatnonzero(apart)
        last = np.empty(len(first), np.int64)
        last[:-1], last[-1] = first[1:] - 1, len(lo) - 1
        b_lo, b_hi = lo[first], reach[last]
        block = np.zeros(len(first), np.int64)  # where each run begins in the joined reads
        np.cumsum((b_hi - b_lo)[:-1], out=block[1:])
        which = np.cumsum(apart) - 1
        at = np.empty(len(starts), np.int64)  # where each range begins in the joined reads
        at[order] = block[which] + (lo - b_lo[which])
        pick = np.repeat(at - (ends - lens), lens) + np.arange(total)
        runs = list(zip(b_lo.tolist(), b_hi.tolist(), strict=True))
        out = []
        for name in names:
            fd, arr = self._files[name], self.a[name]
            size = arr.itemsize
            blob = b"".join([os.pread(fd, (e - s) * size, s * size) for s, e in runs])
            out.append(np.frombuffer(blob, arr.dtype)[pick])
        return out

    def text_near(self, doc: int, lo: int, hi: int) -> SourceSpan | None:
        """A stretch of window ``doc``'s source text holding at least characters ``lo .. hi``
        (clipped to the source), decoded from the bytes between window edges only."""
        sn = int(self.a["p_src"][doc])
        if sn < 0:
            return None
        a = self.a
        d0, d1 = (int(x) for x in self._src_doc[sn])
        b0, b1 = (int(x) for x in a["src_txt"][2 * sn : 2 * sn + 2])
        starts = a["p_cstart"][d0:d1]
        i = int(np.searchsorted(starts, lo, side="right")) - 1  # the last window starting at or before lo
        c_lo, b_lo = (int(starts[i]), int(a["p_bstart"][d0 + i])) if i >= 0 else (0, b0)
        j = int(np.searchsorted(starts, hi, side="left"))  # the first window starting at or after hi
        b_hi = int(a["p_bstart"][d0 + j]) if j < len(starts) else b1
        return SourceSpan(bytes(self.read("src_text", b_lo, b_hi)).decode("utf-8"), c_lo, self._source_length(sn))

    def _source_length(self, sn: int) -> int:
        n = self._lengths.get(sn)
        if n is None:
            a = self.a
            d0, d1 = (int(x) for x in self._src_doc[sn])
            b1 = int(a["src_txt"][2 * sn + 1])
            if d1 > d0:  # the last window's end, then whatever text follows it
                tail = self.read("src_text", int(a["p_bend"][d1 - 1]), b1)
                n = int(a["p_cend"][d1 - 1]) + len(bytes(tail).decode("utf-8"))
            else:
                n = len(bytes(self.read("src_text", int(a["src_txt"][2 * sn]), b1)).decode("utf-8"))
            self._lengths[sn] = n
        return n

    def term_ids(self, terms: list[str]) -> list[int]:
        """Vocabulary ids of ``terms`` (unknown terms dropped, order and repeats kept)."""
        return [self.vocab[t] for t in terms if t in self.vocab]

    def scores(self, term_ids: list[int]) -> np.ndarray:
        """BM25 score of every passage for the query terms (repeats count again); dead passages score -1."""
        out = np.zeros(self.size, dtype=np.float32)
        a = self.a
        weights: dict[int, int] = {}
        for t in term_ids:
            weights[t] = weights.get(t, 0) + 1
        if self._exact:
            indptr, docs, vals = a["indptr"], a["docs"], a["vals"]
            for t, w in weights.items():
                s, e = int(indptr[t]), int(indptr[t + 1])
                out[docs[s:e]] += vals[s:e] if w == 1 else w * vals[s:e]
            return out
        # statistics moved since the base postings were computed: contributions from tf, as a full build makes them
        norm, idf, c = self._norm, a["idf"], np.float32(self.params.k1 + 1.0)
        for t, w in weights.items():
            for indptr, docs, tf in ((a["indptr"], a["docs"], a["tf"]), (a["d_indptr"], a["d_docs"], a["d_tf"])):
                if t + 1 >= len(indptr):
                    continue
                s, e = int(indptr[t]), int(indptr[t + 1])
                if s == e:
                    continue
                d = docs[s:e]
                f = tf[s:e].astype(np.float32)
                v = idf[t] * f * c / (f + norm[d])
                out[d] += v if w == 1 else w * v
        out[self.dead] = -1.0
        return out

    def term_mask(self, term_ids: list[int]) -> np.ndarray:
        """A lookup table: ``mask[tok_id]`` is True for the given terms (and False for stopwords,
        -1 or NO_TERM as stored)."""
        mask = np.zeros(max(len(self.vocab), NO_TERM) + 1, dtype=bool)
        mask[term_ids] = True
        return mask

    def tokens_of(self, doc: int) -> np.ndarray:
        """Term ids of a passage in text order (-1 for stopwords)."""
        return term_ids_of(self.read("tok_ids", int(self.a["tok_ptr"][doc]), int(self.a["tok_ptr"][doc + 1])))

    def token_spans(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Character spans (starts, ends) of the tokens of windows ``lo .. hi-1``, each inside its own window."""
        a = self.a
        ptr = np.asarray(a["tok_ptr"][lo : hi + 1])
        t0, t1 = int(ptr[0]), int(ptr[-1])
        run = np.zeros(t1 - t0 + 1, np.int64)
        np.cumsum(self.read("tok_step", t0, t1), out=run[1:])
        starts = run[1:] - np.repeat(run[ptr[:-1] - t0], np.diff(ptr))  # the sum restarts in each window
        return starts, starts + self.read("tok_len", t0, t1)

    def passage(self, doc: int, text: str | None = None) -> Passage:
        """Window ``doc`` as a Passage; ``text``, when the caller has already read it, is its text."""
        a = self.a
        s, e = int(a["p_bstart"][doc]), int(a["p_bend"][doc])
        start = float(a["p_start"][doc])
        spk = int(a["p_speaker"][doc])
        sn = int(a["p_src"][doc])
        info = self.sources[sn] if sn >= 0 else _NO_SOURCE  # a dead passage (see ``live``)
        start_s = None if math.isnan(start) else start
        return Passage(
            pid=doc,
            source_id=info.source_id,
            text=bytes(self.read("src_text", s, e)).decode("utf-8") if text is None else text,
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

    def __init__(self, folder: Path | None, after: Index | None = None) -> None:
        """With ``after`` (a loaded generation), the appended arrays are hard links to its
        files, cut back to its lengths, and new items go past them; the base postings are
        linked unchanged, and every other array is written anew."""
        self.folder = folder
        self.dtypes = dict(_DTYPES)
        self.lengths = dict.fromkeys(_DTYPES, 0)
        self._mem: dict[str, list[np.ndarray]] = {k: [] for k in _DTYPES}
        self._files = {}
        self.stats: dict = {}
        if folder is None:
            return
        for k in _DTYPES:
            path = folder / f"{k}.bin"
            if after is not None and k in APPENDED + BASE_POSTINGS:
                try:
                    os.link(after.folder / f"{k}.bin", path)
                except OSError as e:  # a file system without hard links
                    self.finish()
                    raise NeedsFullBuild(f"cannot link {k}.bin: {e}") from e
                self.dtypes[k] = after.a[k].dtype.type
                self.lengths[k] = len(after.a[k])
                if k in APPENDED:
                    os.truncate(path, self.lengths[k] * after.a[k].itemsize)  # a failed build's leftovers
                    self._files[k] = path.open("ab")
            else:
                self._files[k] = path.open("wb")

    def add(self, name: str, values: np.ndarray | bytes) -> None:
        if isinstance(values, bytes | bytearray | memoryview):
            arr = np.frombuffer(values, np.uint8)
        else:
            arr = np.asarray(values)
        if name == "tok_ids":
            arr = term_ids_of(arr)
        if name in _WIDE and _too_wide(name, self.dtypes[name], arr):
            self._widen(name)
        if name == "tok_ids" and self.dtypes[name] == np.uint16:
            arr = np.where(arr < 0, NO_TERM, arr)
        arr = arr.astype(self.dtypes[name], copy=False)
        self.lengths[name] += len(arr)
        if self.folder is None:
            self._mem[name].append(arr)
        else:
            self._files[name].write(memoryview(np.ascontiguousarray(arr)).cast("B"))

    def _widen(self, name: str) -> None:
        narrow, self.dtypes[name] = self.dtypes[name], np.int32
        wide = term_ids_of if name == "tok_ids" else np.asarray
        if self.folder is None:
            self._mem[name] = [wide(a).astype(np.int32) for a in self._mem[name]]
            return
        f = self._files[name]
        f.close()
        path = self.folder / f"{name}.bin"
        old = wide(np.fromfile(path, narrow)).astype(np.int32)
        self._files[name] = path.open("wb")
        self._files[name].write(old.tobytes())

    def finish(self) -> dict[str, str]:
        for f in self._files.values():
            f.close()
        return {k: np.dtype(v).str for k, v in self.dtypes.items()}

    def widened(self, name: str, values: np.ndarray) -> bool:
        """Whether ``values`` would not fit the array's current dtype."""
        return name in _WIDE and _too_wide(name, self.dtypes[name], np.asarray(values))

    def memory_arrays(self) -> dict[str, np.ndarray]:
        return {k: (np.concatenate(v) if v else np.zeros(0, self.dtypes[k])) for k, v in self._mem.items()}


# Read with ``Index.read`` rather than through the memory map (see there).
_READ = ("tok_ids", "tok_step", "tok_len", "src_text")
# Read a few items at a time at random places: no read-ahead, so only the pages used come in.
_RANDOM_ACCESS = frozenset({"tok_ids", "tok_step", "tok_len", "src_text", "quotes", "p_bstart", "p_bend",
                            "p_cstart", "p_cend", "p_start", "p_pos", "tok_ptr"})


def _open_arrays(folder: Path, dtypes: dict[str, str], lengths: dict[str, int]) -> dict[str, np.ndarray]:
    """Memory-map every array of a generation, each to its length in this generation.

    Arrays read at random (tokens and texts of candidate passages) are advised as such, so
    the kernel reads in the pages touched rather than whole runs around them.
    """
    out = {}
    for name, dt in dtypes.items():
        dtype = np.dtype(dt)
        n = lengths[name]
        if not n:
            out[name] = np.zeros(0, dtype)
            continue
        with open(folder / f"{name}.bin", "rb") as f:
            mm = mmap.mmap(f.fileno(), n * dtype.itemsize, access=mmap.ACCESS_READ)
        if name in _RANDOM_ACCESS and hasattr(mmap, "MADV_RANDOM"):
            mm.madvise(mmap.MADV_RANDOM)
        out[name] = np.frombuffer(mm, dtype, n)
    return out


@dataclass(frozen=True, slots=True)
class Carried:
    """Sources of a previous generation that go into the next one unchanged."""

    index: Index
    numbers: list[int]  # source numbers in ``index``, in order


_NO_SOURCE = SourceInfo("", "")


def _source_info(row: dict) -> SourceInfo:
    """A SourceInfo from its JSON form (tuples come back as lists)."""
    return SourceInfo(**{**row, "speakers": tuple(row.get("speakers", ())),
                         "chapters": tuple((float(c[0]), str(c[1])) for c in row.get("chapters", ()))})


def _source_meta(info: SourceInfo, key: str, name: str) -> dict:
    return {"info": {**asdict(info), "speakers": list(info.speakers)}, "key": key, "name": name}


def _speaker_numbers(names: list[str | None], speakers: list[str], speaker_ix: dict[str, int]) -> np.ndarray:
    spk = np.empty(len(names), np.int32)
    for d, name in enumerate(names):
        if name is None:
            spk[d] = -1
        else:
            if name not in speaker_ix:
                speaker_ix[name] = len(speakers)
                speakers.append(name)
            spk[d] = speaker_ix[name]
    return spk


class _Appender:
    """Appends sources' passages, tokens and texts to a sink; records each source's spans."""

    def __init__(self, sink: Sink, speakers: list[str]) -> None:
        self.sink, self.speakers = sink, speakers
        self.speaker_ix = {s: i for i, s in enumerate(speakers)}
        n = sink.lengths
        self.n_docs, self.n_toks = n["doc_len"], n["tok_ids"]
        self.n_src_text, self.n_quotes = n["src_text"], n["quotes"]
        if n["tok_ptr"] == 0:
            sink.add("tok_ptr", np.zeros(1, np.int64))
        self.spans: list[tuple[int, int, int, int, int, int]] = []  # per source: docs, text, quotes
        self.doc_lens: list[np.ndarray] = []
        self.pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # fresh postings: term, doc, tf

    def _record(self, docs: int, src: int, quotes: int) -> None:
        self.spans.append((self.n_docs, self.n_docs + docs, self.n_src_text, self.n_src_text + src,
                           self.n_quotes, self.n_quotes + quotes))
        self.n_docs += docs
        self.n_src_text += src
        self.n_quotes += quotes

    def copy(self, ix: Index, sn: int) -> None:
        """Source ``sn`` of ``ix`` as it is (term ids included)."""
        sink, a = self.sink, ix.a
        d0, d1 = (int(x) for x in ix._src_doc[sn])
        t0, t1 = int(a["tok_ptr"][d0]), int(a["tok_ptr"][d1])
        s0, s1 = (int(x) for x in a["src_txt"].reshape(-1, 2)[sn])
        for k in ("p_cstart", "p_cend", "p_start", "p_pos", "p_speaker", "doc_len"):
            sink.add(k, a[k][d0:d1])
        self.doc_lens.append(np.asarray(a["doc_len"][d0:d1]))
        sink.add("tok_ptr", a["tok_ptr"][d0 + 1 : d1 + 1] - t0 + self.n_toks)
        sink.add("p_bstart", a["p_bstart"][d0:d1] - s0 + self.n_src_text)
        sink.add("p_bend", a["p_bend"][d0:d1] - s0 + self.n_src_text)
        for k in ("tok_ids", "tok_step", "tok_len"):
            sink.add(k, a[k][t0:t1])
        q0, q1 = (int(x) for x in a["src_quo"].reshape(-1, 2)[sn])
        sink.add("src_text", a["src_text"][s0:s1])
        sink.add("quotes", a["quotes"][q0:q1])
        self.n_toks += t1 - t0
        self._record(d1 - d0, s1 - s0, q1 - q0)

    def fresh(self, seg: SourceSegment) -> None:
        sink, n = self.sink, seg.size
        sink.add("p_cstart", seg.cstart)
        sink.add("p_cend", seg.cend)
        sink.add("p_start", seg.start)
        sink.add("p_pos", seg.pos)
        sink.add("p_speaker", _speaker_numbers(seg.speakers, self.speakers, self.speaker_ix))
        sink.add("doc_len", seg.doc_len)
        self.doc_lens.append(seg.doc_len)
        sink.add("tok_ptr", seg.tok_ptr[1:] + self.n_toks)
        sink.add("p_bstart", seg.bstart + self.n_src_text)
        sink.add("p_bend", seg.bend + self.n_src_text)
        sink.add("tok_ids", seg.tok_ids)
        sink.add("tok_step", seg.tok_step)
        sink.add("tok_len", seg.tok_len)
        src_bytes = seg.text.encode("utf-8")
        quote_bytes = seg.quote_json
        sink.add("src_text", src_bytes)
        sink.add("quotes", quote_bytes)
        self.pieces.append((seg.post_term, seg.post_doc.astype(np.int64) + self.n_docs, seg.post_tf))
        self.n_toks += len(seg.tok_ids)
        self._record(n, len(src_bytes), len(quote_bytes))

    def write_sources(self, n_docs: int) -> None:
        """The per-generation source tables: ``p_src`` (-1 for dead passages) and the spans."""
        spans = np.asarray(self.spans, np.int64).reshape(-1, 6)
        p_src = np.full(n_docs, -1, np.int32)
        for i, (d0, d1) in enumerate(spans[:, :2].tolist()):
            p_src[d0:d1] = i
        self.sink.add("p_src", p_src)
        self.sink.add("src_doc", spans[:, 0:2].ravel())
        self.sink.add("src_txt", spans[:, 2:4].ravel())
        self.sink.add("src_quo", spans[:, 4:6].ravel())


def _idf(df: np.ndarray, n_docs: int, params: BM25Params) -> np.ndarray:
    dff = df.astype(np.float64)
    if params.idf == "robertson":
        return np.maximum(0.0, np.log((n_docs - dff + 0.5) / (dff + 0.5))).astype(np.float32)
    return np.log(1.0 + (n_docs - dff + 0.5) / (dff + 0.5)).astype(np.float32)


def write_generation(sink: Sink, carried: Carried | None, fresh: Iterable[SourceSegment], table: TermTable,
                     speakers: list[str], params: BM25Params, progress: Callable[[int], None] | None = None
                     ) -> tuple[list[dict], int]:
    """A full generation: carried sources copied, then fresh ones, then postings with the new
    global statistics. Returns the per-source meta rows and the passage count; the sink's
    ``stats`` hold what ``generation_meta`` records."""
    sources: list[dict] = []
    app = _Appender(sink, speakers)
    old_sets: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    keep_doc = None
    if carried is not None and carried.numbers:
        ix, a = carried.index, carried.index.a
        keep_doc = np.full(ix.size, -1, np.int64)
        for sn in carried.numbers:
            d0, d1 = (int(x) for x in ix._src_doc[sn])
            keep_doc[d0:d1] = np.arange(app.n_docs, app.n_docs + (d1 - d0))
            app.copy(ix, sn)
            sources.append(ix.meta["sources"][sn])
        old_sets = [(a["indptr"], a["docs"], a["tf"]), (a["d_indptr"], a["d_docs"], a["d_tf"])]
    for seg in fresh:
        app.fresh(seg)
        sources.append(_source_meta(seg.info, seg.key, seg.name))
        if progress:
            progress(seg.size)
    n_docs = app.n_docs
    app.write_sources(n_docs)
    doc_len = np.concatenate(app.doc_lens) if app.doc_lens else np.zeros(0, np.int32)
    post = _postings(old_sets, keep_doc, app.pieces, doc_len, len(table.vocab), params)
    for k in ("indptr", "docs", "tf", "vals", "idf", "df"):
        sink.add(k, post[k])
    sink.add("d_indptr", np.zeros(1, np.int64))
    sink.stats = {"exact": True, "len_sum": int(doc_len.sum(dtype=np.int64)), "base_docs": n_docs}
    return sources, n_docs


def _doc_terms(ix: Index, d0: int, d1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Postings (term, doc, tf; by term then doc) of passages ``d0 .. d1-1``, from their stored tokens."""
    a = ix.a
    t0, t1 = int(a["tok_ptr"][d0]), int(a["tok_ptr"][d1])
    ids = term_ids_of(a["tok_ids"][t0:t1])
    doc = np.repeat(np.arange(d0, d1, dtype=np.int64), np.diff(np.asarray(a["tok_ptr"][d0 : d1 + 1])))
    keep = ids >= 0
    span = max(1, d1 - d0)
    keys, tf = np.unique(ids[keep] * span + (doc[keep] - d0), return_counts=True)
    return keys // span, keys % span + d0, tf


def write_delta(sink: Sink, live: Index, drop: Iterable[int], fresh: Iterable[SourceSegment], table: TermTable,
                speakers: list[str], params: BM25Params) -> tuple[list[dict], int]:
    """A delta generation on top of ``live`` (loaded from disk, ``sink`` made with ``after=live``):
    the sources numbered ``drop`` become dead, ``fresh`` ones are appended. Nothing of the
    other sources is copied or recomputed but per-source tables and the small delta postings.
    Returns the per-source meta rows and the passage count (dead passages included)."""
    a = live.a
    drop = set(drop)
    app = _Appender(sink, speakers)
    sources: list[dict] = []
    for sn in range(len(live.sources)):
        if sn not in drop:
            app.spans.append(tuple(int(x) for x in (*live._src_doc[sn], *a["src_txt"].reshape(-1, 2)[sn],
                                                    *a["src_quo"].reshape(-1, 2)[sn])))
            sources.append(live.meta["sources"][sn])
    n_terms = len(table.vocab)
    df = np.zeros(n_terms, np.int64)
    df[: len(a["df"])] = a["df"]
    len_sum = int(live.meta["len_sum"])
    dead = [np.asarray(live.dead, np.int64)]
    for sn in sorted(drop):
        d0, d1 = (int(x) for x in live._src_doc[sn])
        dead.append(np.arange(d0, d1, dtype=np.int64))
        terms, _, _ = _doc_terms(live, d0, d1)
        df -= np.bincount(terms, minlength=n_terms)
        len_sum -= int(np.asarray(a["doc_len"][d0:d1]).sum(dtype=np.int64))
    segs = list(fresh)
    for seg in segs:
        if sink.widened("tok_step", seg.tok_step) or sink.widened("tok_len", seg.tok_len):
            raise NeedsFullBuild("token offsets too far apart for their stored width")
        if sink.widened("tok_ids", seg.tok_ids):
            raise NeedsFullBuild("a vocabulary too large for the stored term ids")
    for seg in segs:
        app.fresh(seg)
        sources.append(_source_meta(seg.info, seg.key, seg.name))
        df += np.bincount(seg.post_term, minlength=n_terms)
        len_sum += int(seg.doc_len.sum(dtype=np.int64))
    n_docs = app.n_docs
    dead_docs = np.unique(np.concatenate(dead)).astype(np.int32)
    app.write_sources(n_docs)
    # delta postings: the previous ones still alive, then the fresh sources' (their docs come last)
    d_terms = np.repeat(np.arange(len(a["d_indptr"]) - 1, dtype=np.int64), np.diff(np.asarray(a["d_indptr"])))
    d_docs, d_tf = np.asarray(a["d_docs"], np.int64), np.asarray(a["d_tf"])
    alive = ~np.isin(d_docs, dead_docs)
    terms = np.concatenate([d_terms[alive], *(p[0] for p in app.pieces)]).astype(np.int64)
    docs = np.concatenate([d_docs[alive], *(p[1] for p in app.pieces)])
    tfs = np.concatenate([d_tf[alive], *(p[2] for p in app.pieces)]).astype(np.uint16)
    order = np.argsort(terms, kind="stable")
    indptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(np.bincount(terms, minlength=n_terms), out=indptr[1:])
    n_live = n_docs - len(dead_docs)
    for k, v in (("idf", _idf(df, n_live, params)), ("df", df), ("dead", dead_docs), ("d_indptr", indptr),
                 ("d_docs", docs[order]), ("d_tf", tfs[order])):
        sink.add(k, v)
    sink.stats = {"exact": False, "len_sum": len_sum, "base_docs": int(live.meta["base_docs"])}
    return sources, n_docs


class NeedsFullBuild(Exception):
    """A delta generation cannot hold this change; write a full one."""


def delta_share(ix: Index) -> float:
    """How much of an index lies outside its base postings (dead passages and passages added
    since the last full generation), as a share of its passages: merge when it grows."""
    added = ix.size - int(ix.meta["base_docs"])
    return (added + len(ix.dead)) / max(1, ix.size)


def _postings(old_sets, keep_doc, pieces, doc_len: np.ndarray, n_terms: int, params: BM25Params
              ) -> dict[str, np.ndarray]:
    """Term-ordered postings of the kept old ones (each set term-ordered, the sets in doc order)
    and the new pieces, with BM25 values from the global document frequencies and average length."""
    n_docs = len(doc_len)
    df = np.zeros(n_terms, np.int64)
    kept_sets = []
    for o_indptr, o_docs, o_tf in old_sets:
        if len(o_docs) == 0:
            continue
        new_doc = keep_doc[o_docs]
        kept = new_doc >= 0
        o_terms = np.repeat(np.arange(len(o_indptr) - 1), np.diff(o_indptr))[kept]
        old_df = np.bincount(o_terms, minlength=len(o_indptr) - 1)
        df[: len(old_df)] += old_df
        kept_sets.append((o_terms, old_df, new_doc[kept], np.asarray(o_tf)[kept]))
    for terms, _, _ in pieces:
        df += np.bincount(terms, minlength=n_terms)
    indptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(df, out=indptr[1:])
    nnz = int(indptr[-1])
    docs = np.empty(nnz, np.int32)
    tf = np.empty(nnz, np.uint16)
    fill = indptr[:-1].copy()
    for o_terms, old_df, old_docs, old_tf in kept_sets:
        kept_ptr = np.zeros(len(old_df) + 1, np.int64)
        np.cumsum(old_df, out=kept_ptr[1:])
        at = fill[o_terms] + (np.arange(len(o_terms)) - kept_ptr[o_terms])
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
    idf32 = _idf(df, n_docs, params)
    avgdl = float(doc_len.mean()) if n_docs else 1.0
    norm = (params.k1 * (1.0 - params.b + params.b * doc_len / max(avgdl, 1e-9))).astype(np.float32)
    vals = np.empty(nnz, np.float32)
    step = 1 << 22
    term_of = np.repeat(np.arange(n_terms, dtype=np.int32), df) if nnz else np.zeros(0, np.int32)
    for s in range(0, nnz, step):
        e = min(nnz, s + step)
        t = tf[s:e].astype(np.float32)
        vals[s:e] = idf32[term_of[s:e]] * t * np.float32(params.k1 + 1.0) / (t + norm[docs[s:e]])
    return {"indptr": indptr, "docs": docs, "tf": tf, "vals": vals, "idf": idf32, "df": df}


def generation_meta(sources: list[dict], table: TermTable, speakers: list[str], params: BM25Params, fingerprint: str,
                    glossary: dict, speaker_names: list[str], sink: Sink, extra: dict | None = None) -> dict:
    """meta.json of a generation whose arrays ``sink`` wrote (call after ``sink.finish()``)."""
    return {
        "format": FORMAT_VERSION, "fingerprint": fingerprint, "params": asdict(params), "vocab": table.vocab,
        "sources": sources, "speakers": speakers, "glossary": {k: list(v) for k, v in glossary.items()},
        "speaker_names": speaker_names, "dtypes": {k: np.dtype(v).str for k, v in sink.dtypes.items()},
        "lengths": dict(sink.lengths), **sink.stats, **(extra or {}),
    }


def build(corpus: Corpus, analyzer: Analyzer, params: BM25Params | None = None,
          progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> Index:
    """Segment, analyse and index every transcript of a corpus, in memory; in ``workers``
    processes (None: one per core when the corpus is large enough, 0: in this process)."""
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

    chars = sum(len(u.text) for t in corpus.transcripts for u in t.utterances)
    workers = worker_count(chars, total) if workers is None else min(workers, total)
    if workers:
        segs = analyse_many([(None, t, "", "") for t in corpus.transcripts], analyzer, table, workers)
    else:
        segs = (analyse_source(t, analyzer, table) for t in corpus.transcripts)
    sources, _ = write_generation(sink, None, segs, table, speakers, params, step)
    sink.finish()
    meta = generation_meta(sources, table, speakers, params, corpus.fingerprint, corpus.glossary,
                           corpus.speaker_names(), sink)
    return Index(sink.memory_arrays(), meta)


def save(index: Index, folder: Path) -> None:
    """Write an index into ``folder`` (which must not exist yet)."""
    folder.mkdir(parents=True)
    for name, dt in index.meta["dtypes"].items():
        np.ascontiguousarray(index.a[name], dtype=np.dtype(dt)).tofile(folder / f"{name}.bin")
    _write_meta(folder, {**index.meta, "lengths": {k: len(v) for k, v in index.a.items()}})


def _write_meta(folder: Path, meta: dict) -> None:
    (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    (folder / LEASE).touch()


def load(folder: Path) -> Index:
    """Open a saved generation; arrays and texts are memory-mapped, not read (the token and text
    arrays are then read piecewise from their open files, see ``Index.read``).

    Every file is opened here, none later, so a running process never depends on a file
    that could go away afterwards.
    """
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{folder}: index format {meta.get('format')} is not {FORMAT_VERSION}")
    arrays = _open_arrays(folder, meta["dtypes"], meta["lengths"])
    files = {name: os.open(folder / f"{name}.bin", os.O_RDONLY) for name in _READ if len(arrays[name])}
    index = Index(arrays, meta, folder, files)
    for fd in files.values():
        weakref.finalize(index, os.close, fd)
    return index


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
