"""Ranking building blocks shared by every search mode (all public, array based).

BM25 finds candidates; ``lexical_evidence`` re-weighs them with what BM25 ignores: how
much of the query's weight a passage covers, and whether query words stand together (as
phrases or within a few words). ``smooth`` lets neighbouring windows of one moment lend
each other score; ``moment_quote`` turns a chosen window into the quote shown; ``repeats``
and ``next_start`` keep results from showing the same words twice.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from retrieval.index import Index
from retrieval.links import moment_url
from retrieval.model import Hit, Passage, SourceInfo
from retrieval.text import merge_spans


@dataclass(frozen=True, slots=True)
class RankParams:
    """Re-ranking weights: final = bm25 * (1 + coverage_w * coverage^2 + phrase_w * phrase + near_w * near)."""

    depth: int = 50
    coverage_w: float = 1.0
    phrase_w: float = 0.5
    near_w: float = 0.3
    near_window: int = 8
    # A window also earns this share of its better neighbour's score: evidence spread
    # over two overlapping windows belongs to one moment.
    neighbour_w: float = 0.3
    # A question turn lends this share of its score to the other speaker's turn that
    # answers it, and keeps only (1 - share) itself: the answer is what the user wants.
    answer_w: float = 0.6
    # A shown quote runs on past its window to the end of the last sentence that fits
    # in this many characters, and never into the next speaker's turn.
    show_chars: int = 600
    # How far before its window a shown quote may start, so the sentences that match sit
    # inside it rather than at its very end.
    lead_chars: int = 240
    # A window of another speaker this short (a listener's "Yes. Yes.") between two windows of
    # one speaker leaves them neighbours for ``neighbour_w``.
    interjection: int = 5
    # Pseudo-relevance feedback (lexical mode): the words of the ``fb_docs`` best passages
    # (at most ``fb_terms`` of them, none in more than ``fb_max_df`` of all passages) join
    # the query at up to ``fb_weight``. 0 passages: off (it lost more than it won on held-out questions).
    fb_docs: int = 0
    fb_terms: int = 10
    fb_weight: float = 0.5
    fb_max_df: float = 0.05
    # A passage spoken by a person the question names ("what did Ann say about X") scores
    # (1 + speaker_w) times as much.
    speaker_w: float = 1.0


def top(scores: np.ndarray, depth: int) -> np.ndarray:
    """Document numbers of the ``depth`` highest positive scores, unordered."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) <= depth:
        return positive
    part = np.argpartition(scores[positive], -depth)[-depth:]
    return positive[part]


@dataclass(frozen=True, slots=True)
class Events:
    """Query-term occurrences in candidate passages, in passage then position order."""

    doc: np.ndarray  # candidate number
    slot: np.ndarray  # which distinct query term
    key: np.ndarray  # doc * stride + position: sorted, and windows never cross passages
    stride: int


def events(index: Index, cand: np.ndarray, q: list[int], window: int) -> Events:
    """Where each of the distinct query terms ``q`` occurs in the candidates."""
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
    return Events(doc, order[np.searchsorted(qs, flat[where])], doc * stride + (where - firsts[doc]), stride)


def query_weights(index: Index, ids: list[int], weights: dict[int, float] | None = None) -> np.ndarray:
    """The idf of each distinct query term (times its weight, for near matches)."""
    idf = index.a["idf"]
    q = list(dict.fromkeys(ids))
    return np.array([float(idf[t]) * (weights or {}).get(t, 1.0) for t in q])


def lexical_evidence(index: Index, ids: list[int], cand: np.ndarray, base: np.ndarray, params: RankParams,
                     weights: dict[int, float] | None = None) -> np.ndarray:
    """``base`` (BM25) scaled up by coverage, phrase and proximity evidence, for every candidate."""
    r = params
    q = list(dict.fromkeys(ids))
    slot = {t: i for i, t in enumerate(q)}
    qw = query_weights(index, ids, weights)
    total = float(qw.sum()) or 1.0
    pairs = [(slot[a], slot[b]) for a, b in itertools.pairwise(ids) if a != b]
    pair_total = sum(float(qw[a] + qw[b]) for a, b in pairs) or 1.0
    ev = events(index, cand, q, r.near_window)
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


def coverage(index: Index, ids: list[int], docs: np.ndarray, weights: dict[int, float] | None = None,
             missing_idf: float = 0.0, n_missing: int = 0) -> np.ndarray:
    """Share of the query's idf weight that each passage in ``docs`` contains.

    ``n_missing`` query words found nowhere in the corpus count ``missing_idf`` each in the total.
    """
    if not len(docs):
        return np.zeros(0)
    total_missing = missing_idf * n_missing
    if not ids:
        return np.zeros(len(docs))
    q = list(dict.fromkeys(ids))
    qw = query_weights(index, ids, weights)
    ev = events(index, np.asarray(docs, np.int64), q, 1)
    has = np.zeros((len(docs), len(q)), dtype=bool)
    has[ev.doc, ev.slot] = True
    return has @ qw / (float(qw.sum()) + total_missing or 1.0)


def smooth(index: Index, cand: np.ndarray, final: np.ndarray, weight: float, interjection: int = 0) -> np.ndarray:
    """Each candidate plus ``weight`` x the higher score of its neighbouring windows.

    With ``interjection`` > 0, a window of another speaker with at most that many tokens
    ("Yes. Yes.") between two windows of one speaker does not part them: the windows on
    either side of it are neighbours too, as one turn that a listener briefly interrupted.
    """
    if weight <= 0 or len(cand) < 2:
        return final
    score = dict(zip(cand.tolist(), final.tolist(), strict=True))
    src, spk = np.asarray(index.a["p_src"]), np.asarray(index.a["p_speaker"])
    n = index.size
    out = np.empty(len(cand), dtype=np.float64)
    for i, c in enumerate(cand.tolist()):
        best = 0.0
        for step in (-1, 1):
            d = c + step
            if not 0 <= d < n or src[d] != src[c]:
                continue
            best = max(best, score.get(d, 0.0))
            far = d + step
            if interjection > 0 and spk[d] != spk[c] and spk[c] >= 0 and 0 <= far < n and src[far] == src[c] \
                    and spk[far] == spk[c] and passage_tokens(index, d) <= interjection:
                best = max(best, score.get(far, 0.0))
        out[i] = score[c] + weight * best
    return out


def passage_tokens(index: Index, doc: int) -> int:
    """How many tokens window ``doc`` holds."""
    ptr = index.a["tok_ptr"]
    return int(ptr[doc + 1]) - int(ptr[doc])


def answer_turns(index: Index, cand: np.ndarray, final: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Question turns hand ``share`` of their score to the turn that answers them.

    A candidate whose text ends with a question mark and whose next window is another
    speaker's turn (in the same source) is a question: the answer turn joins the
    candidates (if it was not one) and gains ``share`` of the question's score, and the
    question keeps ``1 - share``. Without speaker labels nothing changes.
    """
    if share <= 0 or not len(cand):
        return cand, final
    src, spk = np.asarray(index.a["p_src"]), np.asarray(index.a["p_speaker"])
    nxt = np.minimum(cand + 1, index.size - 1)
    turn = (nxt != cand) & (src[nxt] == src[cand]) & (spk[nxt] != spk[cand]) & (spk[cand] >= 0)
    if not turn.any():
        return cand, final
    asks = np.array([index.passage(int(d)).text.rstrip().endswith(("?", "？")) if t else False
                     for d, t in zip(cand.tolist(), turn.tolist(), strict=True)], dtype=bool)
    if not asks.any():
        return cand, final
    scores = dict(zip(cand.tolist(), final.tolist(), strict=True))
    for d, a in zip(cand[asks].tolist(), nxt[asks].tolist(), strict=True):
        lent = share * scores[d]
        scores[a] = scores.get(a, 0.0) + lent
        scores[d] -= lent
    keys = np.fromiter(scores, np.int64, len(scores))
    return keys, np.fromiter(scores.values(), np.float64, len(scores))


def repeats(index: Index, d: int, c: int, shown: int) -> bool:
    """Whether window ``d`` would repeat words that the better result ``c`` shows (``c``'s
    quote may run on to ``shown`` characters). A window before ``c`` is fine: its own quote
    stops where ``c`` begins."""
    src, cs, ce = index.a["p_src"], index.a["p_cstart"], index.a["p_cend"]
    if src[d] != src[c]:
        return False
    c0 = int(cs[c])
    return int(cs[d]) < max(int(ce[c]), c0 + shown) and c0 < int(ce[d])


def next_start(index: Index, doc: int, chosen: list[int]) -> int | None:
    """Where the next chosen result after ``doc`` in the same source begins: a shown quote
    runs on no further, so results never repeat each other's words."""
    src, cs = index.a["p_src"], index.a["p_cstart"]
    after = [int(cs[c]) for c in chosen if src[c] == src[doc] and cs[c] > cs[doc]]
    return min(after, default=None)


def turn_end(index: Index, doc: int) -> int | None:
    """Where the speaker of window ``doc`` stops talking: the start of the first later window
    in the same source with another speaker (None when speakers are unknown or never change)."""
    a = index.a
    spk = a["p_speaker"]
    me = int(spk[doc])
    src = int(a["p_src"][doc])
    for d in range(doc + 1, min(index.size, doc + 64)):
        if int(a["p_src"][d]) != src:
            return None
        if int(spk[d]) != me:
            return int(a["p_cstart"][d])
    return None


def turn_start(index: Index, doc: int) -> int:
    """Where the speaker of window ``doc`` started this turn (the earliest char a quote of it may show)."""
    a = index.a
    spk, src = a["p_speaker"], a["p_src"]
    me, s = int(spk[doc]), int(src[doc])
    d = doc
    while d > 0 and d > doc - 64 and int(src[d - 1]) == s and int(spk[d - 1]) == me:
        d -= 1
    return int(a["p_cstart"][d])


def extend(index: Index, p: Passage, limit: int, stop: int | None = None, doc: int | None = None) -> Passage:
    """``p`` with the whole sentences that follow it appended, up to ``limit`` characters,
    never past ``stop`` (where another result begins) nor into the next speaker's turn
    (found from window ``doc``, ``p.pid`` by default)."""
    text = index.source_text(p.source_id)
    if text is None:
        return p
    turn = turn_end(index, p.pid if doc is None else doc) if p.pid >= 0 else None
    hi = min(len(text), p.char_start + limit, len(text) if stop is None else stop,
             len(text) if turn is None else turn)
    if hi <= p.char_end:
        return p
    end = sentence_end(text, hi, p.char_end)
    if end == p.char_end and turn is not None and hi == turn:
        end = hi  # the turn's last words, though they end no sentence, but not the next turn's marker
        while end > p.char_end and (text[end - 1].isspace() or text[end - 1] in "-–—"):
            end -= 1
    return replace(p, text=text[p.char_start : end], char_end=end) if end > p.char_end else p


def moment_quote(index: Index, doc: int, mask: np.ndarray, params: RankParams, stop: int | None = None,
                 floor: int = 0) -> Passage:
    """The quote shown for window ``doc``: its sentences that match the query (``mask``) near
    the middle, starting at a sentence boundary, run on to whole sentences and never past the
    speaker's turn or ``stop``.

    When the window's matches sit in its second half, the quote may start up to
    ``lead_chars`` earlier (within the same turn, and not before ``floor``, where an earlier
    result's quote ends) so that what leads up to them shows too; otherwise it starts with
    the window.
    """
    p = index.passage(doc)
    if params.show_chars <= len(p.text):
        return p
    text = index.source_text(p.source_id)
    if text is None:
        return p
    spans = highlights(index, doc, p, mask)
    first = spans[0][0] if spans else 0
    shown = extend(index, p, params.show_chars, stop, doc)
    room = params.show_chars - len(shown.text)
    if room <= 0 or first < len(p.text) // 2 or params.lead_chars <= 0:
        return shown
    lo = max(floor, turn_start(index, doc), p.char_start - min(room, params.lead_chars))
    start = sentence_start(text, lo, p.char_start)
    if start >= p.char_start:
        return shown
    at = _time_at(index, doc, start)
    return replace(shown, text=text[start : shown.char_end], char_start=start,
                   start=at if at is not None else shown.start)


def _time_at(index: Index, doc: int, pos: int) -> float | None:
    """The start time of the latest window of ``doc``'s source that begins at or before ``pos``."""
    a = index.a
    src = int(a["p_src"][doc])
    d = doc
    while d > 0 and int(a["p_src"][d - 1]) == src and int(a["p_cstart"][d]) > pos:
        d -= 1
    t = float(a["p_start"][d])
    return None if np.isnan(t) else t


def make_hit(index: Index, p: Passage, score: float, spans: tuple[tuple[int, int], ...] = ()) -> Hit:
    """A Hit for passage ``p``: its source, a deep link to its start, and highlight spans."""
    source = index.source(p.source_id) or SourceInfo(p.source_id, p.source_id)
    return Hit(p, source, round(score, 4), moment_url(source.url, p.start), spans)


def highlights(index: Index, doc: int, p: Passage, mask: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Spans of ``p.text`` holding query terms (``mask``), from the token offsets stored for
    the windows that the shown text covers (``doc``, those after it, and before it when the
    quote starts earlier)."""
    a = index.a
    src_of, cs_of = a["p_src"], a["p_cstart"]
    first = doc
    while first > 0 and int(src_of[first - 1]) == int(src_of[doc]) and int(cs_of[first]) > p.char_start:
        first -= 1
    ahead = slice(first, min(index.size, doc + 8))
    srcs, starts = src_of[ahead].tolist(), cs_of[ahead].tolist()
    n = 1
    while n < len(srcs) and srcs[n] == srcs[0] and starts[n] < p.char_end:
        n += 1
    # one source's windows are consecutive, so their tokens are one slice of the arrays
    ptr = a["tok_ptr"][first : first + n + 1]
    lo, hi = int(ptr[0]), int(ptr[-1])
    hit = mask[a["tok_ids"][lo:hi]]
    if not hit.any():
        return ()
    shift = np.repeat(np.asarray(starts[:n]) - p.char_start, np.diff(ptr))[hit]
    s, e = a["tok_cs"][lo:hi][hit] + shift, a["tok_ce"][lo:hi][hit] + shift
    keep = (e <= len(p.text)) & (s >= 0)
    return merge_spans(list(zip(s[keep].tolist(), e[keep].tolist(), strict=True)))


SENTENCE_ENDS = ".!?。！？"


def sentence_start(text: str, lo: int, limit: int) -> int:
    """The first sentence start in ``[lo, limit)`` (past its leading spaces); ``limit`` when none."""
    for i in range(lo, limit):
        if i == 0 or (text[i - 1] in SENTENCE_ENDS or (text[i - 2 : i] in (". ", "? ", "! ") if i >= 2 else False)):
            while i < limit and text[i].isspace():
                i += 1
            return i
    return limit


def sentence_end(text: str, hi: int, limit: int) -> int:
    """The end of the last sentence that ends in ``(limit, hi]``; else ``hi`` at the text's end, else ``limit``."""
    last = max(text.rfind(c, limit, hi) for c in SENTENCE_ENDS)
    if last >= limit:
        return last + 1
    return hi if hi == len(text) else limit
