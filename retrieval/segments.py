"""One transcript analysed: its passages, their tokens and postings, ready to merge.

A ``SourceSegment`` is what an index build keeps per source. It is made once per content
key (the file's content hash plus the analysis settings) and carried unchanged into later
builds while the file does not change, so an unchanged source is never analysed again.

The whole joined text of a source is analysed in one pass (``Analyzer.text_tokens``);
each passage's tokens are then a slice of it. A passage whose edge falls inside a token
(a hyphenated compound, a glossary alias or a CJK run cut at the edge) is analysed on its
own instead, so every passage gets exactly ``Analyzer.document_tokens(passage.text)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from retrieval.analyze import Analyzer, TermTable
from retrieval.model import Passage, SourceInfo, Transcript, source_info
from retrieval.segment import windows


@dataclass(slots=True)
class SourceSegment:
    """A source's passages as arrays; term ids are those of the build's ``TermTable``."""

    info: SourceInfo
    key: str
    name: str  # the file, relative to the corpus folder ('' when not from a folder)
    text: str  # the joined text passages are spans of
    quote_json: bytes  # the stand-alone quote candidates, as stored (UTF-8 JSON rows)
    speakers: list[str | None]  # per passage
    cstart: np.ndarray
    cend: np.ndarray
    start: np.ndarray  # seconds, NaN when untimed
    pos: np.ndarray
    doc_len: np.ndarray  # non-stopword tokens per passage
    tok_ptr: np.ndarray  # local: tok_ptr[0] == 0
    tok_ids: np.ndarray  # -1 for stopwords
    tok_step: np.ndarray  # a token's start less the previous token's (its passage's first: its start in the passage)
    tok_len: np.ndarray  # its length in characters
    bstart: np.ndarray  # each passage's span in ``text`` encoded as UTF-8 (byte offsets)
    bend: np.ndarray
    post_term: np.ndarray  # postings of this source: term, local passage, tf; by term then passage
    post_doc: np.ndarray
    post_tf: np.ndarray

    @property
    def size(self) -> int:
        return len(self.cstart)

    @property
    def quotes(self) -> list[Passage]:
        return [Passage(**q) for q in json.loads(self.quote_json.decode("utf-8"))]


def _quote_row(p: Passage) -> dict:
    return {"pid": p.pid, "source_id": p.source_id, "text": p.text, "char_start": p.char_start,
            "char_end": p.char_end, "start": p.start, "speaker": p.speaker, "position": p.position,
            "chapter": p.chapter}


def analysis_key(analyzer_version: str, glossary: dict[str, tuple[str, ...]]) -> str:
    """What document analysis depends on besides a file's content: code version and glossary."""
    h = hashlib.sha256(analyzer_version.encode())
    for term in sorted(glossary):
        h.update(b"\0" + term.encode() + b"\1" + "\1".join(glossary[term]).encode())
    return h.hexdigest()[:16]


def analyse_source(t: Transcript, analyzer: Analyzer, table: TermTable, key: str = "", name: str = "") -> SourceSegment:
    """Segment and analyse one transcript."""
    seg = windows(t)
    text = seg.text
    info = source_info(t)
    n = len(seg.char_start)
    cs = np.asarray(seg.char_start, np.int64).reshape(n)
    ce = np.asarray(seg.char_end, np.int64).reshape(n)
    toks = analyzer.text_tokens(text, table)
    ids, t_start, t_end = toks.ids, toks.start, toks.end
    lo = np.searchsorted(toks.anchor, cs, side="left")
    hi = np.searchsorted(toks.anchor, ce, side="left")
    counts = hi - lo
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    take = np.repeat(lo - first, counts) + np.arange(total)
    base = np.repeat(cs, counts)
    p_ids, p_cs, p_ce = ids[take], t_start[take] - base, t_end[take] - base
    dirty = _edges_inside_tokens(cs, ce, t_start, t_end)
    if dirty:
        pieces = []  # the clean passages between dirty ones go in as one block each
        done = 0
        for d in dirty:
            if done < d:
                s, e = int(first[done]), int(first[d])
                pieces.append((p_ids[s:e], p_cs[s:e], p_ce[s:e]))
            own = analyzer.document_tokens(text[cs[d] : ce[d]])
            pieces.append((np.asarray([table.term_id(x.term) for x in own], np.int64),
                           np.asarray([x.start for x in own], np.int64),
                           np.asarray([x.end for x in own], np.int64)))
            counts[d] = len(own)
            done = d + 1
        if done < n:
            s = int(first[done])
            pieces.append((p_ids[s:], p_cs[s:], p_ce[s:]))
        p_ids = np.concatenate([p[0] for p in pieces])
        p_cs = np.concatenate([p[1] for p in pieces])
        p_ce = np.concatenate([p[2] for p in pieces])
    stop = table.stop_mask()
    is_stop = stop[p_ids] if len(p_ids) else np.zeros(0, bool)
    tok_ids = np.where(is_stop, -1, p_ids).astype(np.int32)
    doc_of = np.repeat(np.arange(n, dtype=np.int64), counts)
    content = ~is_stop
    doc_len = np.bincount(doc_of[content], minlength=n).astype(np.int32)
    keys = p_ids[content] * max(1, n) + doc_of[content]
    uniq, tf = np.unique(keys, return_counts=True)
    tok_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=tok_ptr[1:])
    byte_at = _byte_offsets(text)
    return SourceSegment(
        info=info, key=key, name=name, text=text,
        quote_json=json.dumps([_quote_row(q) for q in seg.quotes], ensure_ascii=False).encode("utf-8"),
        speakers=seg.speaker,
        cstart=cs, cend=ce,
        start=np.fromiter((math.nan if x is None else x for x in seg.start), np.float64, n),
        pos=np.asarray(seg.position, np.float32).reshape(n),
        doc_len=doc_len, tok_ptr=tok_ptr, tok_ids=tok_ids,
        tok_step=token_steps(tok_ptr, p_cs).astype(np.int32), tok_len=(p_ce - p_cs).astype(np.int32),
        bstart=byte_at[cs], bend=byte_at[ce],
        post_term=(uniq // max(1, n)).astype(np.int32), post_doc=(uniq % max(1, n)).astype(np.int32),
        post_tf=tf.astype(np.uint16),
    )


def token_steps(tok_ptr: np.ndarray, tok_cs: np.ndarray) -> np.ndarray:
    """``tok_step`` of tokens starting at ``tok_cs`` in their passages (``tok_ptr``: each passage's first token)."""
    cs = np.asarray(tok_cs, np.int64)
    step = np.diff(cs, prepend=0)
    firsts = np.asarray(tok_ptr[:-1], np.int64) - int(tok_ptr[0])
    firsts = firsts[firsts < len(cs)]
    step[firsts] = cs[firsts]
    return step


def _byte_offsets(text: str) -> np.ndarray:
    """``out[i]`` is ``len(text[:i].encode("utf-8"))``, for every i up to ``len(text)``."""
    out = np.zeros(len(text) + 1, np.int64)
    if text.isascii():
        out[1:] = np.arange(1, len(text) + 1)
        return out
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    width = 1 + (codes >= 0x80).astype(np.int64) + (codes >= 0x800) + (codes >= 0x10000)
    np.cumsum(width, out=out[1:])
    return out


def _edges_inside_tokens(cs: np.ndarray, ce: np.ndarray, t_start: np.ndarray, t_end: np.ndarray) -> list[int]:
    """Passages with an edge strictly inside some token of the whole-text analysis, in order."""
    edges = np.unique(np.concatenate([cs, ce]))
    inside = np.searchsorted(edges, t_start, side="right") < np.searchsorted(edges, t_end, side="left")
    s, e = t_start[inside], t_end[inside]
    found = []
    for arr in (cs, ce):
        a, b = np.searchsorted(arr, s, side="right"), np.searchsorted(arr, e, side="left")
        n = np.maximum(b - a, 0)
        found.append(np.repeat(a, n) + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
    return np.unique(np.concatenate(found)).tolist()


# --- analysing many sources in worker processes ----------------------------------------------

# Below this much transcript text (characters, about 4,000 passages) sources are analysed in
# this process: a small build does not pay back starting workers and shipping results.
PARALLEL_MIN_CHARS = 600_000

# On two or three cores, two forked workers (which find their jobs in inherited memory) paid
# from about 3,000 synthetic passages on a quiet 2-core machine: 0.15 s against 0.19 s for one
# process at 3,000, 0.33 s against 0.50 s at 10,000, 27 s against 46 s at 1,000,000, for about
# a fifth more CPU. Workers started by a fork server (the process runs threads: a bot
# rebuilding while it answers) cost a start-up and the jobs' pickling, and pay only for large builds.
FEW_CORES = 4
FEW_CORES_MIN_CHARS = 6_000_000  # with a fork server
log = logging.getLogger(__name__)
_worker: dict = {}
# The jobs of the pool being started with fork: its workers find them in the memory they
# inherit and are sent only their numbers (a Transcript in memory pickles at about 10 MB/s).
_forked_jobs: list = []


def _start_worker(analyzer: Analyzer) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the build (it cancels the jobs not
    # begun and waits for the few under way); a worker killed by it would print a traceback and
    # break the pool while the parent is shutting it down. Forked with SIGINT held back
    # (``_ctrl_c_held``), a worker ignores it before letting it through.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _worker["analyzer"] = analyzer
    _worker["table"] = TermTable()
    _worker["sent"] = 0  # terms of the worker's table already shipped to the parent


@contextlib.contextmanager
def _ctrl_c_held():
    """SIGINT held back in this (main) thread while the body forks, delivered after it."""
    hold = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if hold:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if hold:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _analyse_in_worker(job) -> tuple[SourceSegment, int, int, list[str]] | str:
    """One job in a worker: a Transcript, or a loader call that makes one (its TranscriptError
    comes back as its message). Term ids are the worker's own; the terms it numbered since its
    last job come along, with the worker's pid and the id of the first of them."""
    load, args, key, name = _forked_jobs[job] if isinstance(job, int) else job
    try:
        t = load(*args) if load is not None else args
    except ValueError as e:  # TranscriptError is a ValueError
        return str(e)
    table: TermTable = _worker["table"]
    seg = analyse_source(t, _worker["analyzer"], table, key, name)
    first = _worker["sent"]
    _worker["sent"] = len(table.terms)
    return seg, os.getpid(), first, table.terms[first:]


class _WorkerIds:
    """One worker's term ids mapped to the parent table's, grown as its new terms arrive."""

    def __init__(self) -> None:
        self.lut = np.full(1024, -1, np.int32)
        self.size = 0

    def add(self, first: int, terms: list[str], table: TermTable) -> np.ndarray:
        """The map so far, one longer: id -1 (a stopword) indexes its last entry, which is -1."""
        if first != self.size:  # a worker's results are consumed in the order it made them
            raise RuntimeError(f"worker terms out of order: {first} after {self.size}")
        end = first + len(terms)
        if end + 1 > len(self.lut):
            grown = np.full(max(end + 1, 2 * len(self.lut)), -1, np.int32)
            grown[:first] = self.lut[:first]
            self.lut = grown
        self.lut[first:end] = [table.term_id(t) for t in terms]
        self.size = end
        return self.lut[: end + 1]


def _into_table(seg: SourceSegment, lut: np.ndarray) -> SourceSegment:
    """A worker's segment with its term ids replaced through ``lut`` (postings stay grouped by term)."""
    seg.tok_ids = lut[seg.tok_ids]
    seg.post_term = lut[seg.post_term]
    return seg


def _start_method() -> str:
    """How workers start: forked while this process runs one thread (forking a threaded
    process can copy a held lock), else from a fork server, else spawned."""
    method = "fork" if threading.active_count() == 1 else "forkserver"
    return method if method in mp.get_all_start_methods() else "spawn"


def worker_count(total_chars: int, sources: int) -> int:
    """Worker processes worth starting for a build of this size (0: analyse here)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    # From four cores on the workers leave one for the parent; on fewer, two workers cost more
    # CPU in all (shipping segments, cold caches) but save wall time (see FEW_CORES_MIN_CHARS).
    if sources < 2 or total_chars < PARALLEL_MIN_CHARS or cores < 2:
        return 0
    if cores < FEW_CORES:
        return min(2, sources) if _start_method() == "fork" or total_chars >= FEW_CORES_MIN_CHARS else 0
    return min(cores - 1, sources)


def analyse_many(jobs: list, analyzer: Analyzer, table: TermTable, workers: int) -> Iterator[SourceSegment | str]:
    """Segments of ``jobs`` ((loader or None, args or Transcript, key, name) each), in order,
    analysed in ``workers`` processes; a job whose loader raised gives its message instead.

    Workers are forked when this process runs one thread (cheap, nothing re-imported; they read
    the jobs from the memory they inherit, so only job numbers are sent), else started by a
    fork server. Should the pool break, the remaining jobs are analysed here.
    """
    method = _start_method()
    done = 0
    workers_ids: dict[int, _WorkerIds] = {}
    if method == "fork":
        _forked_jobs[:] = jobs
    try:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context(method), initializer=_start_worker,
                                 initargs=(analyzer,)) as pool:
            sent = range(len(jobs)) if method == "fork" else jobs
            with _ctrl_c_held():  # map submits every job now, starting the workers
                outs = pool.map(_analyse_in_worker, sent, chunksize=1)
            for out in outs:
                done += 1
                if isinstance(out, str):
                    yield out
                    continue
                seg, pid, first, terms = out
                yield _into_table(seg, workers_ids.setdefault(pid, _WorkerIds()).add(first, terms, table))
    except BrokenProcessPool:
        log.warning("index build: worker processes failed; analysing the remaining %d sources here",
                    len(jobs) - done)
    finally:
        _forked_jobs.clear()
    for load, args, key, name in jobs[done:]:
        try:
            t = load(*args) if load is not None else args
        except ValueError as e:
            yield str(e)
            continue
        yield analyse_source(t, analyzer, table, key, name)
