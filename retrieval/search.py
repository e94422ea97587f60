"""Query -> ranked, distinct, highlighted moments (or nothing, when nothing answers).

A question is planned once (``QueryPlan``): its content terms, stand-ins for words the
corpus never uses (``retrieval.fuzzy``), and the speakers it names. A ``CandidateRanker``
(lexical here, hybrid in ``retrieval.hybrid``) scores candidate windows; the searcher then
prefers the named speakers' turns, hands a question turn's score on to the turn that
answers it, lets neighbouring windows of one moment share evidence, and asks the
abstention policy (``retrieval.abstain``) whether the best of them answers at all. Each
chosen window becomes a quote centred on what matched (``retrieval.rank.moment``).
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from retrieval.abstain import AbstainParams, answers
from retrieval.analyze import Analyzer
from retrieval.corpus import read_manifest
from retrieval.fuzzy import FuzzyVocabulary, Variant
from retrieval.index import Index
from retrieval.model import Hit, SourceInfo
from retrieval.rank import (
    Matches,
    RankParams,
    answer_turns,
    interjecting,
    lexical_evidence,
    make_hit,
    moment,
    quote_opening,
    sentence_end,
    sentence_start,
    smooth,
    top,
)

log = logging.getLogger(__name__)

ANALYZER_VERSION = "a7"
_NAME_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """What a question asks for, in the terms of one index."""

    text: str
    terms: list[str]  # content terms the index knows, in query order, stand-ins included
    ids: list[int]
    weights: dict[int, float]  # below 1 for stand-ins of unknown words
    missing: tuple[str, ...]  # content terms the corpus never uses and that nothing stands in for
    variants: tuple[Variant, ...]
    speakers: frozenset[int]  # index speaker numbers the question names
    names: tuple[str, ...]  # the words that named them
    unknown: tuple[str, ...] = ()  # the question's own spelling of each word the index lacks (stand-ins or not)
    keywords: bool = False  # a list of content words, not a question (``Analyzer.is_keyword_query``)

    @property
    def semantic_text(self) -> str:
        """The question for an embedding model: named speakers left out, stand-ins noted."""
        text = self.text
        for w in self.names:
            text = re.sub(rf"\b{re.escape(w)}(?:['’]s)?\b", " ", text, flags=re.IGNORECASE)
        text = " ".join(text.split())
        if not re.search(r"\w", text):
            text = self.text
        notes = dict.fromkeys(v.term for v in self.variants)
        return f"{text} ({', '.join(notes)})" if notes else text


@dataclass(slots=True)
class Ranked:
    """Candidate windows and their scores (parallel arrays), with the evidence behind them."""

    cand: np.ndarray
    final: np.ndarray
    cosine: np.ndarray | None = None  # semantic similarity of each candidate, when known
    stats: dict[str, float] = field(default_factory=dict)  # e.g. the cosine distribution over all passages
    rerank: np.ndarray | None = None  # re-ranker score of each candidate (NaN where not re-scored), when known


class CandidateRanker(Protocol):
    """Scores candidate windows for a planned query (see LexicalRanker, retrieval.hybrid.HybridRanker)."""

    mode: str

    def describe(self) -> str: ...

    def rank(self, index: Index, plan: QueryPlan, depth: int) -> Ranked: ...

    def topic_gain(self, index: Index, plan: QueryPlan, doc: int) -> float | None:
        """How much closer window ``doc`` is to the question than to the same question about
        unrelated things in place of its rare unknown words (``retrieval.abstain``); None when
        not measured."""

    def forget(self) -> None:
        """Drop what was computed for earlier indexes (called when a new one is swapped in)."""


def weighted_scores(index: Index, plan: QueryPlan) -> np.ndarray:
    """BM25 of every passage, stand-ins for unknown words counting their weight."""
    exact = [t for t in plan.ids if plan.weights.get(t, 1.0) >= 1.0]
    out = index.scores(exact) if exact else np.zeros(index.size, np.float32)
    for t in dict.fromkeys(t for t in plan.ids if plan.weights.get(t, 1.0) < 1.0):
        out = out + plan.weights[t] * index.scores([t])
    return out


def feedback_scores(index: Index, plan: QueryPlan, scores: np.ndarray, params: RankParams) -> np.ndarray:
    """``scores`` plus BM25 of the words the best passages share (pseudo-relevance feedback, RM3 style).

    The ``fb_docs`` best passages vote for their terms (term frequency / length, times the
    passage's share of their total score); the ``fb_terms`` terms with most votes that the
    question lacks, and that are neither rare slips (one passage) nor everywhere
    (``fb_max_df``), join the query with ``fb_weight`` x their vote relative to the top vote.
    """
    r = params
    if r.fb_docs <= 0 or r.fb_terms <= 0 or not plan.ids:
        return scores
    best = top(scores, r.fb_docs)
    if not len(best):
        return scores
    share = scores[best].astype(np.float64)
    share = share / (share.sum() or 1.0)
    votes: dict[int, float] = {}
    for d, w in zip(best.tolist(), share.tolist(), strict=True):
        ids = index.tokens_of(d)
        ids = ids[ids >= 0]
        if not len(ids):
            continue
        u, c = np.unique(ids, return_counts=True)
        for t, n in zip(u.tolist(), (c / len(ids)).tolist(), strict=True):
            votes[t] = votes.get(t, 0.0) + w * n
    df = index.doc_freq
    asked = set(plan.ids)
    limit = r.fb_max_df * max(1, index.size)
    ranked = sorted(((v, t) for t, v in votes.items() if t not in asked and 1 < df[t] <= limit), reverse=True)
    if not ranked:
        return scores
    top_vote = ranked[0][0]
    out = scores.astype(np.float32, copy=True)
    for v, t in ranked[: r.fb_terms]:
        out += np.float32(r.fb_weight * v / top_vote) * index.scores([t])
    return out


def lexical_candidates(index: Index, plan: QueryPlan, scores: np.ndarray, depth: int) -> np.ndarray:
    """The BM25 top ``depth``, plus the best windows spoken by the people the question names."""
    cand = top(scores, depth)
    if plan.speakers:
        spoken = np.isin(np.asarray(index.a["p_speaker"]), list(plan.speakers))
        cand = np.union1d(cand, top(np.where(spoken, scores, 0.0), depth))
    return cand


class LexicalRanker:
    """BM25 top candidates re-ranked with coverage, phrase and proximity evidence."""

    mode = "lexical"

    def __init__(self, params: RankParams | None = None) -> None:
        self.params = params or RankParams()

    def describe(self) -> str:
        return "lexical (BM25 + phrase/proximity re-ranking)"

    def forget(self) -> None:
        """Nothing is kept per index."""

    def topic_gain(self, index: Index, plan: QueryPlan, doc: int) -> float | None:
        """Not measured without embeddings."""
        return None

    def rank(self, index: Index, plan: QueryPlan, depth: int) -> Ranked:
        if not plan.ids:
            return Ranked(np.zeros(0, np.int64), np.zeros(0))
        scores = feedback_scores(index, plan, weighted_scores(index, plan), self.params)
        cand = lexical_candidates(index, plan, scores, depth)
        return Ranked(cand, lexical_evidence(index, plan.ids, cand, scores[cand], self.params, plan.weights))


class Searcher:
    """Answers queries over one corpus; reloads itself when the corpus changes.

    ``ranker`` picks and scores candidates (lexical by default); ``abstain`` decides when
    the best of them does not answer.
    """

    def __init__(self, index: Index, analyzer: Analyzer, rank: RankParams | None = None,
                 refresh: Callable[[], tuple[Index, Analyzer] | None] | None = None, *,
                 ranker: CandidateRanker | None = None, abstain: AbstainParams | None = None) -> None:
        self._state = (index, analyzer)
        self.rank = rank or RankParams()
        self.ranker: CandidateRanker = ranker or LexicalRanker(self.rank)
        self.abstain = abstain or AbstainParams()
        self._refresh = refresh
        self._lock = threading.Lock()
        self._quote_cache: tuple[Index, list[frozenset[str]]] | None = None
        self._per_index: _Lookups | None = None

    @property
    def index(self) -> Index:
        return self._state[0]

    @property
    def analyzer(self) -> Analyzer:
        return self._state[1]

    @property
    def mode(self) -> str:
        return self.ranker.mode

    @property
    def size(self) -> int:
        """Passages searched."""
        return self.index.size

    def describe(self) -> str:
        """How this searcher ranks, for logs and status lines."""
        return self.ranker.describe()

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
            # per-index caches would keep the old generation mapped and leased (never pruned)
            self._quote_cache = self._per_index = None
            self.ranker.forget()
            return True

    # --- search ---------------------------------------------------------------------

    def plan(self, query: str, index: Index | None = None, analyzer: Analyzer | None = None) -> QueryPlan:
        """The question's content terms, stand-ins for unknown words, and the speakers it names."""
        if index is None or analyzer is None:
            index, analyzer = self._state
        found = self._lookups(index)
        fuzzy, names = found.fuzzy, found.names
        named: set[int] = set()
        name_words: list[str] = []
        name_terms: set[str] = set()
        spelled: dict[str, str] = {}
        for tok in analyzer.tokens(query):
            spelled.setdefault(tok.term, query[tok.start : tok.end])
            ids = names.get(tok.term)
            if ids and not analyzer.is_stopword(tok.term):
                named |= ids
                name_words.append(query[tok.start : tok.end])
                name_terms.add(tok.term)
        terms = [t for t in analyzer.query_terms(query) if t not in name_terms] or analyzer.query_terms(query)
        known: list[str] = []
        weights: dict[int, float] = {}
        missing: list[str] = []
        variants: list[Variant] = []
        for t in terms:
            if t in index.vocab:
                known.append(t)
                continue
            found = fuzzy.variants(t)
            if not found:
                missing.append(t)
            for v in found:
                known.append(v.term)
                variants.append(v)
                tid = index.vocab[v.term]
                weights[tid] = max(weights.get(tid, 0.0), v.weight)
        ids = [index.vocab[t] for t in known]
        for t in terms:  # a word typed as is outweighs the same term as a stand-in
            if t in index.vocab:
                weights.pop(index.vocab[t], None)
        unknown = (spelled.get(t, t) for t in terms if t not in index.vocab)
        return QueryPlan(query, known, ids, weights, tuple(dict.fromkeys(missing)), tuple(variants),
                         frozenset(named), tuple(dict.fromkeys(name_words)), tuple(dict.fromkeys(unknown)),
                         analyzer.is_keyword_query(query))

    def _lookups(self, index: Index) -> _Lookups:
        cached = self._per_index
        if cached is None or cached.index is not index:
            cached = self._per_index = _Lookups(index, FuzzyVocabulary(index), speaker_words(index))
        return cached

    def search(self, query: str, k: int = 5, offset: int = 0) -> list[Hit]:
        """The ``k`` best distinct moments for ``query`` after skipping ``offset``; none when
        nothing in the corpus answers it (see ``retrieval.abstain``)."""
        return self._search(query, k, offset, abstain=True)

    def closest(self, query: str, k: int = 3) -> list[Hit]:
        """The passages nearest to ``query`` even when ``search`` found that none answers it:
        for a reply's "closest mentions", labelled as such."""
        return self._search(query, k, 0, abstain=False)

    def _search(self, query: str, k: int, offset: int, abstain: bool) -> list[Hit]:
        index, analyzer = self._state
        if not index.size or not query.strip():
            return []
        plan = self.plan(query, index, analyzer)
        want = offset + k
        ranked = self.ranker.rank(index, plan, max(self.rank.depth, want * 8))
        if not len(ranked.cand):
            return []
        cand, final = self._moments(index, plan, ranked)
        order = cand[np.argsort(-final, kind="stable")]
        if abstain and not answers(index, plan, ranked, int(order[0]), self.abstain,
                                   lambda: self.ranker.topic_gain(index, plan, int(order[0]))):
            return []
        fin = dict(zip(cand.tolist(), final.tolist(), strict=True))
        chosen = distinct(index, order, want, self.rank.show_chars)
        return self._hits(index, plan, chosen, offset, fin)

    def _hits(self, index: Index, plan: QueryPlan, chosen: list[int], offset: int, score: dict[int, float]
              ) -> list[Hit]:
        """The hits for the ``chosen`` windows from ``offset`` on: each one's moment and link."""
        mask = index.term_mask(plan.ids)
        shown = self._layout(index, chosen)[offset:]
        hits = []
        for (d, stop, floor, opening), found in zip(shown, Matches.many(index, chosen[offset:], mask), strict=True):
            p, spans = moment(index, d, mask, self.rank, stop, floor, opening, found)
            hits.append(make_hit(index, p, score[d], spans))
        return hits

    def _moments(self, index: Index, plan: QueryPlan, ranked: Ranked) -> tuple[np.ndarray, np.ndarray]:
        """Candidate scores with the question-to-answer hand-over, speaker preference and neighbour sharing;
        a listener's interjection scores for the speaker's window it interrupts."""
        r = self.rank
        cand, final = ranked.cand, ranked.final.astype(np.float64)
        # the hand-over comes first, so that the named person's answer to a question on the
        # topic earns their preference along with what the question lent it
        cand, final = answer_turns(index, cand, final, r.answer_w, r.question_reach)
        if plan.speakers and r.speaker_w > 0:
            spoken = np.isin(np.asarray(index.a["p_speaker"])[cand], list(plan.speakers))
            final = final * np.where(spoken, 1.0 + r.speaker_w, 1.0)
        if plan.speakers and r.absent_w < 1:
            away = self._lookups(index).sources().without(plan.speakers)
            if away:
                final = final * np.where(np.isin(index.a["p_src"][cand], away), r.absent_w, 1.0)
        final = smooth(index, cand, final, r.neighbour_w, r.interjection)
        # a listener's "Burn out." is no moment of its own: its score goes to the window of the
        # speaker it interrupted, whose quote runs on across it and shows it as theirs
        inter = interjecting(index, cand, r.interjection)
        if not inter.any():
            return cand, final
        scores = dict(zip(cand[~inter].tolist(), final[~inter].tolist(), strict=True))
        for d, v in zip(cand[inter].tolist(), final[inter].tolist(), strict=True):
            scores[d - 1] = max(scores.get(d - 1, 0.0), v)
        return np.fromiter(scores, np.int64, len(scores)), np.fromiter(scores.values(), np.float64, len(scores))

    def _layout(self, index: Index, chosen: list[int]) -> list[tuple[int, int | None, int, int]]:
        """Each chosen window with where its quote must stop, where it may start at the earliest,
        and where it opens (``quote_opening``): it stops where the next chosen window of the same
        source opens, and starts after the previous one's quote, which runs on at most
        ``show_chars``. A quote whose sentence began before the previous chosen window opens
        with its own window instead."""
        at = np.asarray(chosen, np.int64)
        src, starts = index.a["p_src"][at].tolist(), index.a["p_cstart"][at].tolist()
        opening = {d: quote_opening(index, d, self.rank) for d in chosen}
        by_source: dict[int, list[tuple[int, int]]] = {}
        for d, sn, st in zip(chosen, src, starts, strict=True):
            by_source.setdefault(sn, []).append((st, d))
        bounds: dict[int, tuple[int | None, int]] = {}
        for rows in by_source.values():
            rows.sort()
            for i in range(1, len(rows)):
                if opening[rows[i][1]] <= rows[i - 1][0]:
                    opening[rows[i][1]] = rows[i][0]
            for i, (_, d) in enumerate(rows):
                stop = opening[rows[i + 1][1]] if i + 1 < len(rows) else None
                floor = min(rows[i - 1][0] + self.rank.show_chars, opening[d]) if i else 0
                bounds[d] = (stop, floor)
        return [(d, *bounds[d], opening[d]) for d in chosen]

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
        lo = sentence_start(text, lo, base.char_start)
        hi = sentence_end(text, hi, base.char_end)
        first = index.passage(int(docs[max(0, int(np.searchsorted(starts, lo, side="right")) - 1)]))
        widened = replace(base, text=text[lo:hi], char_start=lo, char_end=hi,
                          start=first.start if lo < base.char_start else base.start,
                          position=lo / max(1, len(text)))
        return make_hit(index, widened, 0.0)

    def quote_pool(self, topic: str | None = None) -> list[Hit]:
        """Stand-alone quotes (whole sentences, 80-400 chars), about ``topic`` when given."""
        index, analyzer = self._state
        quotes = index.quotes
        if topic:
            terms = set(analyzer.query_terms(topic))
            quotes = [q for q, qt in zip(quotes, self._quote_terms(index, analyzer), strict=True) if terms & qt]
        return [make_hit(index, q, 0.0) for q in quotes]

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
        return make_hit(index, rng.choice(index.quotes), 0.0)

    def sources(self) -> list[SourceInfo]:
        """Every transcript searched, with title, link, date and speakers."""
        return list(self.index.sources)

    def suggestions(self, rng: random.Random, n: int = 5) -> list[str]:
        """Topics worth trying: canonical glossary terms of this corpus."""
        terms = sorted(self.index.glossary)
        return rng.sample(terms, min(n, len(terms)))


def distinct(index: Index, order: np.ndarray, want: int, shown: int) -> list[int]:
    """The first ``want`` windows of ``order`` (best first) that repeat no better one's words.

    A chosen window's quote may run on to ``shown`` characters; a window before it is fine,
    since its own quote stops where the chosen one begins."""
    a = index.a
    rows = zip(order.tolist(), a["p_src"][order].tolist(), a["p_cstart"][order].tolist(),
               a["p_cend"][order].tolist(), strict=True)
    chosen: list[int] = []
    shown_by_source: dict[int, list[tuple[int, int]]] = {}  # per source: (start, reach) of chosen windows
    for d, sn, s, e in rows:
        if any(s < reach and c0 < e for c0, reach in shown_by_source.get(sn, ())):
            continue
        chosen.append(d)
        if len(chosen) >= want:
            break
        shown_by_source.setdefault(sn, []).append((s, max(e, s + shown)))
    return chosen


@dataclass(frozen=True, slots=True)
class SpeakerSources:
    """Which transcripts each speaker takes part in, and which transcripts label speakers at all."""

    by_speaker: dict[int, frozenset[int]]
    labelled: frozenset[int]

    @classmethod
    def of(cls, index: Index) -> SpeakerSources:
        """Read from the index's passages (one pass, kept per index)."""
        spk = np.asarray(index.a["p_speaker"])
        named = spk >= 0
        if not named.any():
            return cls({}, frozenset())
        pairs = np.unique(np.stack([spk[named], np.asarray(index.a["p_src"])[named]]), axis=1)
        by: dict[int, set[int]] = {}
        for sp, src in pairs.T.tolist():
            by.setdefault(sp, set()).add(src)
        return cls({k: frozenset(v) for k, v in by.items()}, frozenset(pairs[1].tolist()))

    def without(self, speakers: frozenset[int]) -> list[int]:
        """The labelled transcripts in which none of ``speakers`` speaks."""
        theirs = set().union(*(self.by_speaker.get(s, ()) for s in speakers))
        return sorted(self.labelled - theirs)


@dataclass(frozen=True, slots=True)
class _Lookups:
    index: Index
    fuzzy: FuzzyVocabulary
    names: dict[str, frozenset[int]]
    _sources: list[SpeakerSources] = field(default_factory=list)

    def sources(self) -> SpeakerSources:
        """Read on the first speaker question only: a pass over every passage."""
        if not self._sources:
            self._sources.append(SpeakerSources.of(self.index))
        return self._sources[0]


def speaker_words(index: Index) -> dict[str, frozenset[int]]:
    """Each name word (stemmed like query words) of the index's speaker labels -> the speakers it names."""
    out: dict[str, set[int]] = {}
    for i, label in enumerate(index.speakers):
        for w in _NAME_WORD.findall(label):
            for tok in Analyzer.tokens(w):
                out.setdefault(tok.term, set()).add(i)
    return {t: frozenset(s) for t, s in out.items()}


# --- opening a corpus: retrieval.library, re-exported for callers of this module ---------

from retrieval.library import (  # noqa: E402
    build_and_publish,
    default_index_dir,
    open_searcher,
)

__all__ = ["CandidateRanker", "LexicalRanker", "QueryPlan", "RankParams", "Ranked", "Searcher", "build_and_publish",
           "default_index_dir", "open_searcher", "read_manifest"]
