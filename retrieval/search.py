"""Query -> ranked, distinct, highlighted hits.

BM25 finds candidates; the top ones are re-ranked with evidence BM25 ignores: how much of
the query's weight a passage covers, and whether query words stand together in it (as
phrases or within a few words). Overlapping windows are then collapsed so that every
result is a different moment.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from retrieval.analyze import Analyzer
from retrieval.corpus import read_manifest
from retrieval.index import Index
from retrieval.links import moment_url
from retrieval.model import Hit, Passage, SourceInfo

log = logging.getLogger(__name__)

ANALYZER_VERSION = "a7"


@dataclass(frozen=True, slots=True)
class RankParams:
    """Re-ranking weights: final = bm25 * (1 + coverage_w * coverage^2 + phrase_w * phrase + near_w * near)."""

    depth: int = 50
    coverage_w: float = 1.0
    phrase_w: float = 0.5
    near_w: float = 0.3
    near_window: int = 8
    # A window also earns this share of its better neighbour's score: evidence spread
    # over two overlapping windows (a question, then its answer) belongs to one moment.
    neighbour_w: float = 0.3
    # A shown quote runs on past its window to the end of the last sentence that fits
    # in this many characters: in an interview the answer follows the question.
    show_chars: int = 600


class Searcher:
    """Answers queries over one corpus; reloads itself when the corpus changes."""

    def __init__(self, index: Index, analyzer: Analyzer, rank: RankParams | None = None,
                 refresh: Callable[[], tuple[Index, Analyzer] | None] | None = None) -> None:
        self._state = (index, analyzer)
        self.rank = rank or RankParams()
        self._refresh = refresh
        self._lock = threading.Lock()
        self._quote_cache: tuple[Index, list[frozenset[str]]] | None = None

    @property
    def index(self) -> Index:
        return self._state[0]

    @property
    def analyzer(self) -> Analyzer:
        return self._state[1]

    def refresh(self) -> bool:
        """Rebuild from the corpus if it changed; True when a new index was swapped in.

        A broken transcript raises TranscriptError and the current index stays in use.
        """
        if self._refresh is None:
            return False
        with self._lock:
            new = self._refresh()
            if new is None:
                return False
            self._state = new
            return True

    # --- search ---------------------------------------------------------------------

    def search(self, query: str, k: int = 5, offset: int = 0) -> list[Hit]:
        """The ``k`` best distinct passages for ``query`` after skipping ``offset``."""
        index, analyzer = self._state
        terms = analyzer.query_terms(query)
        want = offset + k
        cand, final = self.rank_candidates(index, query, terms, max(self.rank.depth, want * 8))
        if not len(cand):
            return []
        order = cand[np.argsort(-final, kind="stable")]
        fin = dict(zip(cand.tolist(), final.tolist(), strict=True))
        chosen: list[int] = []
        for d in order.tolist():
            if not any(_repeats(index, d, c, self.rank.show_chars) for c in chosen):
                chosen.append(d)
                if len(chosen) >= want:
                    break
        mask = index.term_mask(index.term_ids(terms))
        return [self._hit(index, d, fin[d], mask, _next_start(index, d, chosen)) for d in chosen[offset:want]]

    def rank_candidates(self, index: Index, query: str, terms: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidate passages (document numbers) and their final scores, unordered.

        Lexical: the BM25 top ``depth``, re-ranked with coverage, phrase and proximity.
        Subclasses add other evidence (see ``retrieval.hybrid``).
        """
        ids = index.term_ids(terms)
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0)
        scores = index.scores(ids)
        cand = _top(scores, depth)
        final = self._rerank(index, ids, cand, scores[cand])
        return cand, _smooth(index, cand, final, self.rank.neighbour_w)

    def _rerank(self, index: Index, ids: list[int], cand: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Coverage, phrase and proximity evidence for every candidate, computed with array operations."""
        r = self.rank
        idf = index.a["idf"]
        q = list(dict.fromkeys(ids))
        slot = {t: i for i, t in enumerate(q)}
        qw = np.array([float(idf[t]) for t in q])
        total = float(qw.sum()) or 1.0
        pairs = [(slot[a], slot[b]) for a, b in itertools.pairwise(ids) if a != b]
        pair_total = sum(float(qw[a] + qw[b]) for a, b in pairs) or 1.0
        ev = _events(index, cand, q, r.near_window)
        n = len(cand)
        has = np.zeros((n, len(q)), dtype=bool)
        has[ev.doc, ev.slot] = True
        coverage = has @ qw / total
        phrase = np.zeros(n)
        by_slot = [ev.key[ev.slot == s] for s in range(len(q))]
        for a, b in pairs:  # a then b within 3 tokens
            follow = set(by_slot[b].tolist())
            if follow:
                docs = {x // ev.stride for x in by_slot[a].tolist() if {x + 1, x + 2, x + 3} & follow}
                phrase[list(docs)] += qw[a] + qw[b]
        # proximity: most distinct query terms inside a window that starts at some match
        within = np.zeros(len(ev.key), dtype=np.int64)
        for ks in by_slot:
            within += np.searchsorted(ks, ev.key + r.near_window) > np.searchsorted(ks, ev.key)
        best = np.ones(n)
        np.maximum.at(best, ev.doc, within)
        distinct = has.sum(axis=1)
        near = np.where(distinct > 1, best / np.maximum(distinct, 1), 0.0)
        return base.astype(np.float64) * (1 + r.coverage_w * coverage**2 + r.phrase_w * phrase / pair_total
                                          + r.near_w * near)

    def _hit(self, index: Index, doc: int, score: float, mask: np.ndarray, stop: int | None = None) -> Hit:
        p = index.passage(doc)
        if self.rank.show_chars > len(p.text):
            p = _extend(index, p, self.rank.show_chars, stop)
        return _make_hit(index, p, score, _highlights(index, doc, p, mask))

    # --- other lookups ----------------------------------------------------------------

    def context(self, key: str, radius: int = 450) -> Hit | None:
        """The text around a passage (by ``Passage.key``), widened to sentence edges."""
        index = self.index
        source_id, _, at = key.rpartition("@")
        text = index.source_text(source_id)
        if text is None or not at.isdigit() or int(at) >= len(text):
            return None
        docs = index.passages_of(source_id)
        starts = np.asarray(index.a["p_cstart"])[docs]
        i = int(np.searchsorted(starts, int(at), side="right")) - 1
        if i < 0:
            return None
        base = index.passage(int(docs[i]))
        lo = max(0, base.char_start - radius)
        hi = min(len(text), base.char_end + radius)
        lo = _sentence_start(text, lo, base.char_start)
        hi = _sentence_end(text, hi, base.char_end)
        first = index.passage(int(docs[max(0, int(np.searchsorted(starts, lo, side="right")) - 1)]))
        widened = replace(base, text=text[lo:hi], char_start=lo, char_end=hi,
                          start=first.start if lo < base.char_start else base.start,
                          position=lo / max(1, len(text)))
        return _make_hit(index, widened, 0.0)

    def quote_pool(self, topic: str | None = None) -> list[Hit]:
        """Stand-alone quotes (whole sentences, 80-400 chars), about ``topic`` when given."""
        index, analyzer = self._state
        quotes = index.quotes
        if topic:
            terms = set(analyzer.query_terms(topic))
            quotes = [q for q, qt in zip(quotes, self._quote_terms(index, analyzer), strict=True) if terms & qt]
        return [_make_hit(index, q, 0.0) for q in quotes]

    def _quote_terms(self, index: Index, analyzer: Analyzer) -> list[frozenset[str]]:
        """Each stand-alone quote's terms, analysed once per index rather than on every request."""
        cached = self._quote_cache
        if cached is None or cached[0] is not index:
            terms = [frozenset(t.term for t in analyzer.document_tokens(q.text)) for q in index.quotes]
            cached = self._quote_cache = (index, terms)
        return cached[1]

    def random_quote(self, rng: random.Random, topic: str | None = None) -> Hit | None:
        """One stand-alone quote, at random; about ``topic`` when given (best matches first)."""
        if topic:
            pool = self.quote_pool(topic)
            if not pool:
                hits = self.search(topic, k=3)
                return rng.choice(hits) if hits else None
            return rng.choice(pool)
        index = self.index
        if not index.quotes:
            return None
        return _make_hit(index, rng.choice(index.quotes), 0.0)

    def sources(self) -> list[SourceInfo]:
        return list(self.index.sources)

    def suggestions(self, rng: random.Random, n: int = 5) -> list[str]:
        """Topics worth trying: canonical glossary terms of this corpus."""
        terms = sorted(self.index.glossary)
        return rng.sample(terms, min(n, len(terms)))


def _top(scores: np.ndarray, depth: int) -> np.ndarray:
    positive = np.flatnonzero(scores > 0)
    if len(positive) <= depth:
        return positive
    part = np.argpartition(scores[positive], -depth)[-depth:]
    return positive[part]


@dataclass(frozen=True, slots=True)
class _Events:
    """Query-term occurrences in candidate passages, in passage then position order."""

    doc: np.ndarray  # candidate number
    slot: np.ndarray  # which distinct query term
    key: np.ndarray  # doc * stride + position: sorted, and windows never cross passages
    stride: int


def _events(index: Index, cand: np.ndarray, q: list[int], window: int) -> _Events:
    ptr, tok = index.a["tok_ptr"], index.a["tok_ids"]
    starts = ptr[cand]
    lens = ptr[cand + 1] - starts
    ends = np.cumsum(lens)
    firsts = ends - lens
    flat = tok[np.repeat(starts - firsts, lens) + np.arange(int(ends[-1]) if len(ends) else 0)]
    order = np.argsort(q)
    qs = np.asarray(q)[order]
    where = np.flatnonzero(np.isin(flat, qs))
    doc = np.searchsorted(ends, where, side="right")
    stride = int(lens.max(initial=0)) + window + 4
    return _Events(doc, order[np.searchsorted(qs, flat[where])], doc * stride + (where - firsts[doc]), stride)


def _smooth(index: Index, cand: np.ndarray, final: np.ndarray, weight: float) -> np.ndarray:
    """Each candidate plus ``weight`` x the higher score of its neighbouring windows."""
    if weight <= 0 or len(cand) < 2:
        return final
    order = np.argsort(cand)
    sc, sf = cand[order], final[order]
    src = np.asarray(index.a["p_src"])[sc]
    adjacent = (np.diff(sc) == 1) & (src[1:] == src[:-1])
    best = np.zeros(len(sc))
    best[:-1] = np.where(adjacent, sf[1:], 0.0)
    best[1:] = np.maximum(best[1:], np.where(adjacent, sf[:-1], 0.0))
    out = np.empty_like(final, dtype=np.float64)
    out[order] = sf + weight * best
    return out


def _repeats(index: Index, d: int, c: int, shown: int) -> bool:
    """Whether window ``d`` would repeat words that the better result ``c`` shows (``c``'s
    quote may run on to ``shown`` characters). A window before ``c`` is fine: its own quote
    stops where ``c`` begins."""
    src, cs, ce = index.a["p_src"], index.a["p_cstart"], index.a["p_cend"]
    if src[d] != src[c]:
        return False
    c0 = int(cs[c])
    return int(cs[d]) < max(int(ce[c]), c0 + shown) and c0 < int(ce[d])


def _next_start(index: Index, doc: int, chosen: list[int]) -> int | None:
    """Where the next chosen result after ``doc`` in the same source begins: a shown quote
    runs on no further, so results never repeat each other's words."""
    src, cs = index.a["p_src"], index.a["p_cstart"]
    after = [int(cs[c]) for c in chosen if src[c] == src[doc] and cs[c] > cs[doc]]
    return min(after, default=None)


def _make_hit(index: Index, p: Passage, score: float, spans: tuple[tuple[int, int], ...] = ()) -> Hit:
    source = index.source(p.source_id) or SourceInfo(p.source_id, p.source_id)
    return Hit(p, source, round(score, 4), moment_url(source.url, p.start), spans)


def _highlights(index: Index, doc: int, p: Passage, mask: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Spans of ``p.text`` holding query terms (``mask``), from the token offsets stored for
    ``doc`` and for the following windows that the shown text runs on into."""
    a = index.a
    # the windows the shown text reaches into: a handful after ``doc``, in the same source
    ahead = slice(doc, min(index.size, doc + 8))
    srcs, starts = a["p_src"][ahead].tolist(), a["p_cstart"][ahead].tolist()
    n = 1
    while n < len(srcs) and srcs[n] == srcs[0] and starts[n] < p.char_end:
        n += 1
    # one source's windows are consecutive, so their tokens are one slice of the arrays
    ptr = a["tok_ptr"][doc : doc + n + 1]
    lo, hi = int(ptr[0]), int(ptr[-1])
    hit = mask[a["tok_ids"][lo:hi]]
    if not hit.any():
        return ()
    shift = np.repeat(np.asarray(starts[:n]) - p.char_start, np.diff(ptr))[hit]
    starts, ends = a["tok_cs"][lo:hi][hit] + shift, a["tok_ce"][lo:hi][hit] + shift
    keep = ends <= len(p.text)
    return _merge(list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True)))


def _extend(index: Index, p: Passage, limit: int, stop: int | None = None) -> Passage:
    """``p`` with the whole sentences that follow it appended, up to ``limit`` characters
    and never past ``stop`` (where another result begins)."""
    text = index.source_text(p.source_id)
    if text is None:
        return p
    hi = min(len(text), p.char_start + limit, len(text) if stop is None else stop)
    if hi <= p.char_end:
        return p
    end = _sentence_end(text, hi, p.char_end)
    return replace(p, text=text[p.char_start : end], char_end=end) if end > p.char_end else p


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


def _sentence_start(text: str, lo: int, limit: int) -> int:
    for i in range(lo, limit):
        if i == 0 or (text[i - 1] in _ENDS or (text[i - 2 : i] in (". ", "? ", "! ") if i >= 2 else False)):
            while i < limit and text[i].isspace():
                i += 1
            return i
    return limit


_ENDS = ".!?。！？"


def _sentence_end(text: str, hi: int, limit: int) -> int:
    """The end of the last sentence that ends in ``(limit, hi]``; else ``hi`` at the text's end, else ``limit``."""
    last = max(text.rfind(c, limit, hi) for c in _ENDS)
    if last >= limit:
        return last + 1
    return hi if hi == len(text) else limit


# --- opening a corpus: retrieval.library, re-exported for callers of this module ---------

from retrieval.library import (  # noqa: E402
    analyzer_for,
    build_and_publish,
    corpus_fingerprint,
    default_index_dir,
    open_searcher,
)

_analyzer_for = analyzer_for  # (benchmarks/hybrid_speed.py)


__all__ = ["Searcher", "build_and_publish", "default_index_dir", "open_searcher", "read_manifest"]
