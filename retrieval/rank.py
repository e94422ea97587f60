"""Ranking building blocks shared by every search mode (all public, array based).

BM25 finds candidates; ``lexical_evidence`` re-weighs them with what BM25 ignores: how
much of the query's weight a passage covers, and whether query words stand together (as
phrases or within a few words). ``smooth`` lets neighbouring windows of one moment lend
each other score; ``moment`` turns a chosen window into the quote shown and its highlights.
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass, replace

import numpy as np

from retrieval.index import Index, SourceSpan
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
    # A window of a question turn this many windows before its last one also asks, when it
    # holds a question mark itself (see ``answer_turns``).
    question_reach: int = 1
    # A shown quote runs on past its window to the end of the last sentence that fits
    # in this many characters, and never into the next speaker's turn.
    show_chars: int = 600
    # ... except that a quote whose speaker's turn ends before it reaches this many characters
    # ("No, I mean soma from Brave New World.") runs on into the reply, marked as the other's words.
    reply_chars: int = 100
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
    # A window of a transcript with speaker labels in which none of the people the question
    # names ever speaks scores this share: their words are in the episodes they took part in.
    absent_w: float = 0.5


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
    ptr = index.a["tok_ptr"]
    starts = ptr[cand]
    lens = ptr[cand + 1] - starts
    ends = np.cumsum(lens)
    firsts = ends - lens
    flat = index.gather("tok_ids", starts, starts + lens)
    order = np.argsort(q)
    qs = np.asarray(q)[order]
    # a few terms: comparing with each is cheaper than np.isin's sort
    hit = np.logical_or.reduce([flat == t for t in qs.tolist()]) if 0 < len(qs) <= 8 else np.isin(flat, qs)
    where = np.flatnonzero(hit)
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
    a = index.a
    src, spk, ptr = a["p_src"], a["p_speaker"], a["tok_ptr"]
    n = index.size
    cand = np.asarray(cand, np.int64)
    by_doc = np.argsort(cand, kind="stable")
    docs, vals = cand[by_doc], np.asarray(final, np.float64)[by_doc]

    def score_of(d: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(docs, d), len(docs) - 1)
        return np.where(docs[at] == d, vals[at], 0.0)

    my_src, my_spk = src[cand], spk[cand]
    best = np.zeros(len(cand))
    for step in (-1, 1):
        d = cand + step
        ok = (d >= 0) & (d < n)
        d = np.minimum(np.maximum(d, 0), n - 1)
        ok &= src[d] == my_src
        best = np.where(ok, np.maximum(best, score_of(d)), best)
        if interjection > 0:
            far = d + step
            ok &= (spk[d] != my_spk) & (my_spk >= 0) & (far >= 0) & (far < n)
            far = np.minimum(np.maximum(far, 0), n - 1)
            ok &= (src[far] == my_src) & (spk[far] == my_spk) & (ptr[d + 1] - ptr[d] <= interjection)
            best = np.where(ok, np.maximum(best, score_of(far)), best)
    return np.asarray(final, np.float64) + weight * best


def answer_turns(index: Index, cand: np.ndarray, final: np.ndarray, share: float,
                 reach: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Question turns hand ``share`` of their score to the turn that answers them.

    A candidate asks a question when its speaker's turn ends, at most ``reach`` windows
    later in the same source, with a question mark and the next window is another
    speaker's; when the turn runs on past the candidate, the candidate's own text must hold
    a question mark too (a long question spans windows, and the one with its words need not
    be the last). The answer turn joins the candidates (if it was not one) and gains
    ``share`` of the score of each window that asks it; each of those keeps ``1 - share``.
    Without speaker labels nothing changes.
    """
    if share <= 0 or not len(cand):
        return cand, final
    src, spk = np.asarray(index.a["p_src"]), np.asarray(index.a["p_speaker"])
    last = cand.copy()  # the last window of each candidate's turn, within reach
    for _ in range(max(0, reach)):
        nxt = np.minimum(last + 1, index.size - 1)
        last = np.where((nxt != last) & (src[nxt] == src[last]) & (spk[nxt] == spk[last]), nxt, last)
    nxt = np.minimum(last + 1, index.size - 1)
    turn = (nxt != last) & (src[nxt] == src[last]) & (spk[nxt] != spk[last]) & (spk[cand] >= 0)
    if not turn.any():
        return cand, final
    asks = np.zeros(len(cand), dtype=bool)
    for i in np.flatnonzero(turn).tolist():
        d, e = int(cand[i]), int(last[i])
        asks[i] = ends_question(index, e) and (d == e or holds_question(index, d))
    if not asks.any():
        return cand, final
    scores = dict(zip(cand.tolist(), final.tolist(), strict=True))
    for d, a in zip(cand[asks].tolist(), nxt[asks].tolist(), strict=True):
        lent = share * scores[d]
        scores[a] = scores.get(a, 0.0) + lent
        scores[d] -= lent
    keys = np.fromiter(scores, np.int64, len(scores))
    return keys, np.fromiter(scores.values(), np.float64, len(scores))


def holds_question(index: Index, doc: int) -> bool:
    """Whether the text of window ``doc`` holds a question mark."""
    a = index.a
    raw = bytes(index.read("src_text", int(a["p_bstart"][doc]), int(a["p_bend"][doc])))
    return b"?" in raw or "？".encode() in raw


def ends_question(index: Index, doc: int) -> bool:
    """Whether the text of window ``doc`` ends with a question mark (trailing spaces aside)."""
    a = index.a
    s, e = int(a["p_bstart"][doc]), int(a["p_bend"][doc])
    # the last few bytes (a character cut at their start is dropped) hold the last non-space character
    tail = bytes(index.read("src_text", max(s, e - 32), e)).decode("utf-8", "ignore").rstrip()
    if not tail and e - s > 32:
        tail = bytes(index.read("src_text", s, e)).decode("utf-8").rstrip()
    return tail.endswith(("?", "？"))


def interjects(index: Index, w: int, limit: int) -> bool:
    """Whether window ``w`` is a named listener's interjection of at most ``limit`` tokens
    ("Yeah.", "Mm-hmm."): another speaker's window with one speaker's windows on both sides.
    (``interjecting`` is the same test over many windows; this one is for single windows on
    hot paths.)"""
    a = index.a
    if limit <= 0 or w <= 0 or w + 1 >= index.size:
        return False
    src, spk = a["p_src"], a["p_speaker"]
    return bool(spk[w] >= 0 and spk[w - 1] >= 0 and spk[w - 1] == spk[w + 1] != spk[w]
                and src[w - 1] == src[w] == src[w + 1]
                and int(a["tok_ptr"][w + 1]) - int(a["tok_ptr"][w]) <= limit)


def interjecting(index: Index, docs: np.ndarray, limit: int) -> np.ndarray:
    """``interjects`` for each window of ``docs``, in one pass."""
    a = index.a
    docs = np.asarray(docs, np.int64)
    if limit <= 0 or not len(docs) or index.size < 3:
        return np.zeros(len(docs), bool)
    inner = (docs > 0) & (docs + 1 < index.size)
    d = np.minimum(np.maximum(docs, 1), index.size - 2)
    src, spk, ptr = np.asarray(a["p_src"]), np.asarray(a["p_speaker"]), np.asarray(a["tok_ptr"])
    return (inner & (spk[d] >= 0) & (spk[d - 1] >= 0) & (spk[d - 1] == spk[d + 1]) & (spk[d + 1] != spk[d])
            & (src[d - 1] == src[d]) & (src[d] == src[d + 1]) & (ptr[d + 1] - ptr[d] <= limit))


TURN_REACH = 64  # windows looked through for a turn's start or end


class _Turns:
    """The turn bounds of every window of one source, for one interjection limit, in one pass.

    Listeners' interjections are left out; the windows left form runs of one speaker, and a
    window's turn is its run, bounded as ``turn_end`` and ``turn_start`` bound it (within
    ``TURN_REACH`` windows). Interjections themselves are not covered (``covered``).
    """

    def __init__(self, index: Index, interjection: int, docs: range) -> None:
        a = index.a
        d0, d1 = docs.start, docs.stop
        self.first = d0
        ids = np.arange(d0, d1)
        self.covered = ~interjecting(index, ids, interjection)
        kept = ids[self.covered]
        spk = np.asarray(a["p_speaker"][d0:d1])[self.covered]
        cs = np.asarray(a["p_cstart"][d0:d1])
        small = np.int32 if not len(cs) or int(cs.max()) < 2**31 - 1 else np.int64
        self.end = np.full(d1 - d0, -1, small)  # -1: no end (None)
        self.start = np.zeros(d1 - d0, small)
        if not len(kept):
            return
        new_run = np.ones(len(kept), bool)
        new_run[1:] = spk[1:] != spk[:-1]
        run = np.cumsum(new_run) - 1
        firsts = np.flatnonzero(new_run)  # position in ``kept`` of each run's first window
        nxt = np.append(firsts[1:], len(kept))[run]  # the next run's first window, if any
        j = kept[np.minimum(nxt, len(kept) - 1)]
        ok = (nxt < len(kept)) & (j - kept < TURN_REACH)
        self.end[kept[ok] - d0] = cs[j[ok] - d0]
        # the scan back stops after the previous run's last window, or after the previous
        # source's last window when no earlier run is in this one; else at its reach
        prev = firsts[run] - 1
        reach = np.maximum(0, kept - TURN_REACH)
        after = np.where(prev >= 0, kept[np.maximum(prev, 0)] + 1, d0)
        at = np.where(after - 1 >= reach, after, reach)
        self.start[kept - d0] = cs[np.maximum(at, d0) - d0]


_TURNS: weakref.WeakKeyDictionary[Index, dict[tuple[int, int], _Turns]] = weakref.WeakKeyDictionary()


def _turns(index: Index, doc: int, interjection: int) -> tuple[_Turns, int] | None:
    """The turn bounds of window ``doc``'s source (computed on first use) and its place there."""
    sn = int(index.a["p_src"][doc])
    if sn < 0:
        return None
    per_index = _TURNS.get(index)
    if per_index is None:
        per_index = _TURNS.setdefault(index, {})
    turns = per_index.get((interjection, sn))
    if turns is None:
        turns = per_index[(interjection, sn)] = _Turns(index, interjection,
                                                        index.source_docs(index.sources[sn].source_id))
    at = doc - turns.first
    return (turns, at) if 0 <= at < len(turns.covered) and turns.covered[at] else None


def turn_end(index: Index, doc: int, interjection: int = 0) -> int | None:
    """Where the speaker of window ``doc`` stops talking: the start of the first later window
    in the same source with another speaker (None when speakers are unknown or never change).

    With ``interjection`` > 0, a listener's window that ``interjects`` does not end the turn."""
    found = _turns(index, doc, interjection)
    if found is None:
        return _turn_end(index, doc, interjection)
    end = int(found[0].end[found[1]])
    return None if end < 0 else end


def _turn_end(index: Index, doc: int, interjection: int) -> int | None:
    a = index.a
    hi = min(index.size, doc + TURN_REACH)
    if hi <= doc + 1:
        return None
    src, spk = a["p_src"][doc + 1 : hi], a["p_speaker"][doc + 1 : hi]
    me_src = src.dtype.type(a["p_src"][doc])
    other = np.flatnonzero((src != me_src) | (spk != spk.dtype.type(a["p_speaker"][doc])))
    for j in other.tolist():
        if src[j] != me_src:
            return None
        if not interjects(index, doc + 1 + j, interjection):
            return int(a["p_cstart"][doc + 1 + j])
    return None


def turn_start(index: Index, doc: int, interjection: int = 0) -> int:
    """Where the speaker of window ``doc`` started this turn (the earliest char a quote of it
    may show); a listener's window that ``interjects`` does not start a new turn."""
    found = _turns(index, doc, interjection)
    return _turn_start(index, doc, interjection) if found is None else int(found[0].start[found[1]])


def _turn_start(index: Index, doc: int, interjection: int) -> int:
    a = index.a
    lo = max(0, doc - TURN_REACH)
    src, spk = a["p_src"][lo:doc], a["p_speaker"][lo:doc]
    other = np.flatnonzero((src != a["p_src"][doc]) | (spk != a["p_speaker"][doc]))
    for j in other[::-1].tolist():
        if not interjects(index, lo + j, interjection):
            return int(a["p_cstart"][lo + j + 1])
    return int(a["p_cstart"][lo])


def clip_quote(text: str, limit: int) -> str:
    """``text`` (a shown quote) in at most ``limit`` characters: cut after a whole word, and a
    speaker's mark ("[Dan: ...") that the cut leaves open closed again."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    cut = cut[: cut.rfind(" ")].rstrip() if " " in cut.strip() else cut
    opened = cut.rfind("[")
    if opened <= cut.rfind("]"):
        return cut
    if cut.endswith(":"):  # nothing of the mark's words is left: leave the mark out
        return cut[:opened].rstrip()
    return cut + "]"


UNNAMED = "another speaker"  # how a reply's words are marked when the transcript does not say whose they are


def interjections(index: Index, doc: int, p: Passage, spans: tuple[tuple[int, int], ...],
                  reply_from: int | None = None) -> tuple[Passage, tuple[tuple[int, int], ...]]:
    """``p`` (a quote of window ``doc``) with each other speaker's words inside it marked as
    theirs, "[Name: Yeah.]", so that a listener's interjection is not credited to ``doc``'s
    speaker; the highlight ``spans`` move with the text. The quote ends with its own speaker's
    words unless it runs on into the reply to them, the turn that begins at ``reply_from``
    (whose words are marked as ``UNNAMED``'s when the transcript does not name its speaker)."""
    a = index.a
    me_spk = int(a["p_speaker"][doc])
    if me_spk < 0:
        return p, spans
    src = int(a["p_src"][doc])
    lo = doc
    while lo > 0 and int(a["p_src"][lo - 1]) == src and int(a["p_cend"][lo - 1]) > p.char_start:
        lo -= 1
    hi = doc + 1
    while hi < index.size and int(a["p_src"][hi]) == src and int(a["p_cstart"][hi]) < p.char_end:
        hi += 1
    marks: list[tuple[int, int, str]] = []  # (start, end, speaker) in p.text
    for w in range(lo, hi):
        spk = int(a["p_speaker"][w])
        unnamed = spk < 0 and reply_from is not None and int(a["p_cstart"][w]) >= reply_from
        if spk != me_spk and (spk >= 0 or unnamed):
            s = max(0, int(a["p_cstart"][w]) - p.char_start)
            e = min(len(p.text), int(a["p_cend"][w]) - p.char_start)
            who = index.speakers[spk] if spk >= 0 else UNNAMED
            if s < e and marks and s <= marks[-1][1] and marks[-1][2] == who:  # windows overlap
                marks[-1] = (marks[-1][0], max(marks[-1][1], e), who)
            elif s < e and (not marks or s >= marks[-1][1]):
                marks.append((s, e, who))
    # a quote starts and ends with its own speaker's words
    if marks and not p.text[: marks[0][0]].strip():
        e = marks.pop(0)[1]
        off = e + len(p.text[e:]) - len(p.text[e:].lstrip())
        p = replace(p, text=p.text[off:], char_start=p.char_start + off)
        spans = tuple((x - off, y - off) for x, y in spans if x >= off)
        marks = [(s - off, e - off, who) for s, e, who in marks]
    if marks and reply_from is None and not p.text[marks[-1][1]:].strip():
        cut = len(p.text[: marks.pop()[0]].rstrip())
        p = replace(p, text=p.text[:cut], char_end=p.char_start + cut)
        spans = tuple((x, y) for x, y in spans if y <= cut)
    if not marks:
        return p, spans
    parts, at, inserted = [], 0, []  # inserted: (position in p.text, characters added there)
    for s, e, who in marks:
        head = f"[{who}: "
        parts += [p.text[at:s], head, p.text[s:e], "]"]
        inserted += [(s, len(head)), (e, 1)]
        at = e
    parts.append(p.text[at:])

    def moved(x: int, after: bool) -> int:
        return x + sum(n for pos, n in inserted if pos < x or (pos == x and after))

    return replace(p, text="".join(parts)), tuple((moved(s, True), moved(e, False)) for s, e in spans)


def extend(index: Index, p: Passage, limit: int, stop: int | None = None, doc: int | None = None,
           span: SourceSpan | None = None, interjection: int = 0) -> Passage:
    """``p`` with the whole sentences that follow it appended, up to ``limit`` characters,
    never past ``stop`` (where another result begins) nor into the next speaker's turn
    (found from window ``doc``, ``p.pid`` by default). ``span``, when given, is the part of
    the source's text to read (it must reach past ``p.char_start + limit`` or to the end).
    A listener's ``interjection`` (see ``turn_end``) does not end the turn."""
    win = p.pid if doc is None else doc
    if span is None:
        span = index.text_near(win, p.char_start, p.char_start + limit + 1) if win >= 0 else None
        if span is None:
            text = index.source_text(p.source_id)
            if text is None:
                return p
            span = SourceSpan(text, 0, len(text))
    text, off = span.text, span.start
    turn = turn_end(index, win, interjection) if p.pid >= 0 else None
    hi = min(span.length, p.char_start + limit, span.length if stop is None else stop,
             span.length if turn is None else turn)
    if hi <= p.char_end:
        return p
    end = sentence_end(text, hi - off, p.char_end - off) + off
    if end == p.char_end and turn is not None and hi == turn:
        end = hi  # the turn's last words, though they end no sentence, but not the next turn's marker
        while end > p.char_end and (text[end - 1 - off].isspace() or text[end - 1 - off] in "-–—"):
            end -= 1
    return replace(p, text=text[p.char_start - off : end - off], char_end=end) if end > p.char_end else p


def _matching_tokens(index: Index, mask: np.ndarray, lo: np.ndarray, hi: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The query-term tokens (``mask``) of windows ``lo[i] .. hi[i]-1`` for every i, read in one
    pass: for each token the range it came from, its window, and its source character span."""
    ptr, cs = np.asarray(index.a["tok_ptr"]), np.asarray(index.a["p_cstart"])
    t0, t1 = ptr[lo], ptr[hi]
    lens = t1 - t0
    offs = np.cumsum(lens) - lens  # where each range's tokens begin in the flat arrays
    ids, steps, tok_len = index.gather_many(("tok_ids", "tok_step", "tok_len"), t0, t1)
    at = np.flatnonzero(mask[ids])
    if not len(at):
        return at, at, at, at
    rng = np.searchsorted(offs + lens, at, side="right") if len(lo) > 1 else np.zeros(len(at), np.int64)
    win = np.searchsorted(ptr, t0[rng] + (at - offs[rng]), side="right") - 1
    run = np.zeros(int(lens.sum()) + 1, np.int64)
    np.cumsum(steps, out=run[1:])
    # a token's start: the steps summed from its window's first token, plus the window's start
    begin = run[at + 1] - run[offs[rng] + ptr[win] - t0[rng]] + cs[win]
    return rng, win, begin, begin + tok_len[at]


class Matches:
    """Query-term tokens (``mask``) of window ``doc`` and the windows around it, at source
    character offsets: read once, then cut to the highlight spans of any quote of the window."""

    AHEAD = 8  # windows read from ``doc`` on (within its source): a quote's text lies in them

    def __init__(self, index: Index, doc: int, mask: np.ndarray, end: int, starts: list[int],
                 rows: list[tuple[int, int, int]]) -> None:
        self.index, self.doc, self.mask = index, doc, mask
        self.lo, self.end = doc, end  # the windows read; the shown text's windows stop at ``end``
        self.starts = starts  # their start characters
        self.rows = rows  # (window, start, end) of each matching token

    @classmethod
    def many(cls, index: Index, docs: list[int], mask: np.ndarray) -> list[Matches]:
        """``Matches`` of each window of ``docs``, their tokens read in one pass."""
        if not docs:
            return []
        a, n = index.a, index.size
        at_doc = np.asarray(docs, np.int64)
        src, cs = a["p_src"], np.asarray(a["p_cstart"])
        ahead = at_doc[:, None] + np.arange(cls.AHEAD)
        same = (ahead < n) & (src[np.minimum(ahead, n - 1)] == src[at_doc][:, None])
        ends = at_doc + np.cumprod(same, axis=1).sum(axis=1)
        hit, win, begin, end = _matching_tokens(index, mask, at_doc, ends)
        wl, bl, el = win.tolist(), begin.tolist(), end.tolist()
        cut = np.searchsorted(hit, np.arange(len(docs) + 1)).tolist()
        return [cls(index, d, mask, e, cs[d:e].tolist(), list(zip(wl[i:j], bl[i:j], el[i:j], strict=True)))
                for d, e, i, j in zip(docs, ends.tolist(), cut[:-1], cut[1:], strict=True)]

    def _read(self, lo: int, hi: int) -> None:
        """Prepend the matching tokens of windows ``lo .. hi-1`` (just before those read so far)."""
        self.starts = self.index.a["p_cstart"][lo:hi].tolist() + self.starts
        _, win, begin, end = _matching_tokens(self.index, self.mask, np.array([lo]), np.array([hi]))
        self.rows = list(zip(win.tolist(), begin.tolist(), end.tolist(), strict=True)) + self.rows

    def spans(self, p: Passage) -> tuple[tuple[int, int], ...]:
        """Spans of ``p.text`` (a quote of the window) holding query terms, from the token
        offsets of the windows that the text covers."""
        index, doc = self.index, self.doc
        src, cs = index.a["p_src"], index.a["p_cstart"]
        first = doc
        while first > 0 and int(src[first - 1]) == int(src[doc]) and int(cs[first]) > p.char_start:
            first -= 1
        if first < self.lo:
            self._read(first, self.lo)
            self.lo = first
        last = first + 1
        while last < self.end and self.starts[last - self.lo] < p.char_end:
            last += 1
        lo, hi = p.char_start, p.char_start + len(p.text)
        return merge_spans([(s - lo, e - lo) for w, s, e in self.rows if first <= w < last and s >= lo and e <= hi])


def moment(index: Index, doc: int, mask: np.ndarray, params: RankParams, stop: int | None = None,
           floor: int = 0, opening: int | None = None, found: Matches | None = None
           ) -> tuple[Passage, tuple[tuple[int, int], ...]]:
    """The quote shown for window ``doc`` and its highlight spans: its sentences that match the
    query (``mask``) near the middle, starting at a sentence boundary, run on to whole sentences
    and never past the speaker's turn or ``stop``. A listener's short interjection does not end
    the turn; it shows as theirs (``interjections``).

    A window that opens mid-sentence (subtitle cues often end inside one) has its quote open
    where that sentence does, up to ``lead_chars`` earlier. When the window's matches sit in
    its second half, the quote may start up to ``lead_chars`` earlier still, at a sentence
    start, so that what leads up to them shows too. Neither reaches before the speaker's turn
    or ``floor``, where an earlier result's quote ends. ``opening``, when known
    (``quote_opening``), is not looked for again, nor are the window's matches when ``found``
    holds them (``Matches.many``).
    """
    quote, spans = _quote(index, doc, mask, params, stop, floor, opening, found)
    end = turn_end(index, doc, params.interjection) if quote.pid >= 0 else None
    return interjections(index, doc, quote, spans, end if end is not None and quote.char_end > end else None)


def _quote(index: Index, doc: int, mask: np.ndarray, params: RankParams, stop: int | None,
           floor: int, opening: int | None, found: Matches | None) -> tuple[Passage, tuple[tuple[int, int], ...]]:
    found = found or Matches.many(index, [doc], mask)[0]
    begin, end = int(index.a["p_cstart"][doc]), int(index.a["p_cend"][doc])
    lead = max(0, params.lead_chars)
    # two characters before the earliest start (a sentence start is read from them), one past the last end
    span = (index.text_near(doc, begin - lead - 2, begin + params.show_chars + 1)
            if params.show_chars > end - begin else None)
    if span is None:
        p = index.passage(doc)
        return p, found.spans(p)
    off = span.start
    p = index.passage(doc, span.text[begin - off : end - off])
    if opening is None:
        opening = quote_opening(index, doc, params)
    turn: int | None = None
    lo = max(floor, p.char_start - lead)
    start = p.char_start
    if opening < p.char_start:  # the window opens mid-sentence: open the quote where it does, within ``floor``
        turn = turn_start(index, doc, params.interjection)
        lo = max(lo, turn)
        start = _opening(index, doc, span, lo, lo in (turn, 0))
    if start < p.char_start:
        at = _time_at(index, doc, start)
        p = replace(p, text=span.text[start - off : p.char_end - off], char_start=start,
                    start=at if at is not None else p.start)
    shown = extend(index, p, params.show_chars, stop, doc, span, params.interjection)
    shown = _with_reply(index, doc, shown, params, stop, span)
    room = params.show_chars - len(shown.text)
    if room <= 0 or params.lead_chars <= 0:
        return shown, found.spans(shown)
    spans = found.spans(p)
    if (spans[0][0] if spans else 0) < len(p.text) // 2:
        return shown, (spans if shown is p else found.spans(shown))
    if turn is None:
        turn = turn_start(index, doc, params.interjection)
    lo = max(lo, turn, p.char_start - min(room, params.lead_chars))
    start = sentence_start(span.text, lo - off, p.char_start - off) + off
    if start >= p.char_start:
        return shown, (spans if shown is p else found.spans(shown))
    at = _time_at(index, doc, start)
    quote = replace(shown, text=span.text[start - off : shown.char_end - off], char_start=start,
                    start=at if at is not None else shown.start)
    return quote, found.spans(quote)


def _with_reply(index: Index, doc: int, shown: Passage, params: RankParams, stop: int | None,
                span: SourceSpan) -> Passage:
    """``shown`` run on into the next speaker's turn when its own speaker's turn ended it short
    of ``reply_chars``: a one-line remark means little without what it was answered with."""
    if len(shown.text) >= params.reply_chars or shown.pid < 0 or int(index.a["p_speaker"][doc]) < 0:
        return shown  # (an unnamed remark's reply could not be told apart from it)
    end = turn_end(index, doc, params.interjection)
    if end is None or (stop is not None and stop <= end) or end >= span.start + len(span.text):
        return shown
    if any(c.isalnum() for c in span.text[shown.char_end - span.start : end - span.start]):
        return shown  # something else than the turn's end cut it
    a = index.a
    reply, src = doc + 1, int(a["p_src"][doc])
    while reply < index.size and int(a["p_src"][reply]) == src and int(a["p_cstart"][reply]) < end:
        reply += 1
    if reply >= index.size or int(a["p_src"][reply]) != src:
        return shown
    return extend(index, shown, params.show_chars, stop, reply, span, params.interjection)


def quote_opening(index: Index, doc: int, params: RankParams) -> int:
    """Where the quote of window ``doc`` opens when nothing else bounds it: the start of the
    sentence the window opens in (subtitle cues often end inside one), when that is at most
    ``lead_chars`` earlier and in the same turn; else the window's start."""
    start = int(index.a["p_cstart"][doc])
    if opens_sentence(index, doc, params.interjection):
        return start
    span = index.text_near(doc, start - max(0, params.lead_chars) - 2, start + 1)
    if span is None:
        return start
    turn = turn_start(index, doc, params.interjection)
    lo = max(turn, start - max(0, params.lead_chars))
    return _opening(index, doc, span, lo, lo in (turn, 0))


def opens_sentence(index: Index, doc: int, interjection: int = 0) -> bool:
    """Whether window ``doc`` opens a sentence: its source's first words, the first words of a
    turn (after another speaker's window that is no ``interjection``), or the words after a
    sentence end (read from the few bytes before it)."""
    a = index.a
    if doc == 0 or a["p_src"][doc - 1] != a["p_src"][doc]:
        return True
    b = int(a["p_bstart"][doc])
    if a["p_speaker"][doc - 1] != a["p_speaker"][doc] and int(a["p_bend"][doc - 1]) <= b \
            and not interjects(index, doc - 1, interjection):
        return True
    tail = bytes(index.read("src_text", max(int(a["p_bstart"][doc - 1]), b - 16), b)).decode("utf-8", "ignore").rstrip()
    return not tail or tail[-1] in SENTENCE_ENDS


def _opening(index: Index, doc: int, span: SourceSpan, lo: int, lo_opens: bool) -> int:
    """``sentence_opening`` of window ``doc``'s start within ``span``, not before ``lo``, with the
    words of listeners who interjected in between left out (their "Yeah." ends no sentence
    of the speaker's)."""
    a = index.a
    start = int(a["p_cstart"][doc])
    text, off = span.text, span.start
    w = doc - 1
    while w >= 0 and a["p_src"][w] == a["p_src"][doc] and int(a["p_cend"][w]) > lo:
        if a["p_speaker"][w] != a["p_speaker"][doc]:
            s, e = max(lo, int(a["p_cstart"][w])) - off, int(a["p_cend"][w]) - off
            text = text[:s] + " " * (e - s) + text[e:]
        w -= 1
    opens = sentence_opening(text, lo - off, start - off, lo_opens)
    return start if opens is None else min(start, opens + off)


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


SENTENCE_ENDS = ".!?。！？"


def sentence_start(text: str, lo: int, limit: int) -> int:
    """The first sentence start in ``[lo, limit)`` (past its leading spaces); ``limit`` when none."""
    for i in range(lo, limit):
        if i == 0 or (text[i - 1] in SENTENCE_ENDS or (text[i - 2 : i] in (". ", "? ", "! ") if i >= 2 else False)):
            while i < limit and text[i].isspace():
                i += 1
            return i
    return limit


def sentence_opening(text: str, lo: int, pos: int, lo_opens: bool = False) -> int | None:
    """Where the sentence holding ``pos`` begins, if that is at or after ``lo``: just past the
    last sentence end before ``pos`` (and the spaces after it). When none ends in between,
    ``lo`` when it begins a sentence: ``lo_opens`` (a turn's start) or a sentence ends just
    before it; else None."""
    last = max(text.rfind(c, lo, pos) for c in SENTENCE_ENDS)
    if last < 0:
        back = lo  # a sentence that ends just before lo (spaces aside) makes lo an opening too
        while back > 0 and text[back - 1].isspace():
            back -= 1
        return lo if lo_opens or (back > 0 and text[back - 1] in SENTENCE_ENDS) else None
    i = last + 1
    while i < pos and text[i].isspace():
        i += 1
    return i


def sentence_end(text: str, hi: int, limit: int) -> int:
    """The end of the last sentence that ends in ``(limit, hi]``; else ``hi`` at the text's end, else ``limit``."""
    last = max(text.rfind(c, limit, hi) for c in SENTENCE_ENDS)
    if last >= limit:
        return last + 1
    return hi if hi == len(text) else limit
