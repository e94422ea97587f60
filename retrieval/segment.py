"""Utterances -> passages: overlapping windows over sentences, with times and speakers.

A transcript's utterances are joined into one text (so passages and context are spans of
it). Sentences are packed into windows of about ``target`` units (an English word is one
unit, a CJK character 0.6) and at most ``max_chars`` characters; a window prefers to end at
an utterance boundary once it is past half full, always ends where the speaker changes
(a passage never mixes two speakers), and the next window starts about half-way through
the previous one, or at the new speaker's first sentence after a turn.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from dataclasses import dataclass

import numpy as np

from retrieval.model import Passage, Transcript, chapter_at
from retrieval.text import CJK

MAX_CHARS = 600
TARGET_UNITS = 60.0
# Links land this many seconds before the interpolated start of the words.
LEAD_SECONDS = 2

SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+|(?<=[。！？])[」』”）]*\s*")
# SENTENCE_END's cuts, each found with the punctuation before it (a match's cut starts one
# character in): a pattern that starts with a character set is scanned for quickly, where a
# look-behind is tried at every position. The cuts are the same.
_SENTENCE_CUT = re.compile(r"([.!?…][\"'”’)]*\s+|[。！？][」』”）]*\s*)")
_ASCII_SENTENCE_CUT = re.compile(r"([.!?][\"')]*\s+)")  # the same on ASCII text, where the rest cannot occur
_CLAUSE_END = re.compile(r"(?<=[,;:，；、])\s*")
# what a too-long clause is cut between: CJK text (no spaces) by characters, other text by words
_CUT_UNIT = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|\S+")
_WORD = re.compile(r"\S+")
_BRACKET = re.compile(r"[\[\]()]")
_FILLER_START = re.compile(r"^(and|but|so|or|because|uh|um|yeah|well|like|i mean|oh|okay|right)\b", re.I)


@dataclass(frozen=True, slots=True)
class Sentence:
    start: int  # span in the joined text
    end: int
    utt: int  # index of its utterance
    units: float


@dataclass(slots=True)
class Segmented:
    """A transcript cut into passages, with the joined text they are spans of."""

    text: str
    passages: list[Passage]
    quotes: list[Passage]


def units(text: str) -> float:
    cjk = len(CJK.findall(text))
    words = len(_WORD.findall(CJK.sub(" ", text)))
    return words + 0.6 * cjk


class Units:
    """``units(text[s:e])`` for spans of one text, from prefix counts made in one pass.

    A word is a run of characters that are neither whitespace (``str.isspace``, as ``\\S``
    means) nor CJK; a span counts each run it touches, so a run cut by the span's start
    counts too, exactly as ``units`` of the slice does.
    """

    def __init__(self, text: str) -> None:
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
        space = _space_table()[np.minimum(codes, 0xFFFF)]  # no whitespace lies beyond the BMP
        cjk = ((codes >= 0x3400) & (codes <= 0x9FFF)) | ((codes >= 0xF900) & (codes <= 0xFAFF))
        self.space = space
        self._word = word = ~space & ~cjk
        starts = word.copy()
        starts[1:] &= ~word[:-1]
        count = np.int32 if len(codes) < 2**31 else np.int64
        self._starts = np.zeros(len(codes) + 1, count)
        np.cumsum(starts, out=self._starts[1:])
        self._cjk = np.zeros(len(codes) + 1, count)
        np.cumsum(cjk, out=self._cjk[1:])

    def span(self, s: int, e: int) -> float:
        if e <= s:
            return 0.0
        words = int(self._starts[e] - self._starts[s + 1]) + int(self._word[s])
        return words + 0.6 * int(self._cjk[e] - self._cjk[s])

    def spans(self, s: np.ndarray, e: np.ndarray) -> list[float]:
        """``span`` of each (s[i], e[i]), every e[i] > s[i]."""
        words = self._starts[e] - self._starts[s + 1] + self._word[s]
        return (words + 0.6 * (self._cjk[e] - self._cjk[s])).tolist()


@functools.cache
def _space_table() -> np.ndarray:
    return np.fromiter((chr(c).isspace() for c in range(0x10000)), bool, 0x10000)


def join(t: Transcript) -> tuple[str, list[tuple[int, int]]]:
    """The transcript's utterances as one text, and each utterance's span in it."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for i, u in enumerate(t.utterances):
        lead = "" if i == 0 else " " + t.turn_marker
        parts.append(lead)
        pos += len(lead)
        parts.append(u.text)
        spans.append((pos, pos + len(u.text)))
        pos += len(u.text)
    return "".join(parts), spans


@dataclass(slots=True)
class Sentences:
    """Sentences as columns, in text order (what ``sentences`` makes ``Sentence`` objects of)."""

    start: list[int]
    end: list[int]
    utt: list[int]
    units: list[float]


def sentences(text: str, spans: list[tuple[int, int]], max_units: float, max_chars: int,
              counts: Units | None = None) -> list[Sentence]:
    """Sentences of each utterance; over-long ones are cut at clauses, then words."""
    c = sentence_columns(text, spans, max_units, max_chars, counts)
    return [Sentence(*row) for row in zip(c.start, c.end, c.utt, c.units, strict=True)]


def sentence_columns(text: str, spans: list[tuple[int, int]], max_units: float, max_chars: int,
                     counts: Units | None = None) -> Sentences:
    """``sentences`` as columns, made with one regex pass over the whole text."""
    counts = counts or Units(text)
    ps, pe, pu = _sentence_pieces(text, spans, counts)
    if not len(ps):
        return Sentences([], [], [], [])
    n = counts.spans(ps, pe)
    too_long = np.flatnonzero((np.asarray(n) > max_units) | (pe - ps > max_chars)).tolist()
    starts, ends, utts = ps.tolist(), pe.tolist(), pu.tolist()
    if not too_long:
        return Sentences(starts, ends, utts, n)
    out = Sentences([], [], [], [])
    u = counts.span
    done = 0
    for k in too_long:
        out.start += starts[done:k]
        out.end += ends[done:k]
        out.utt += utts[done:k]
        out.units += n[done:k]
        for cs, ce in _pack(text, _split(text, starts[k], ends[k], _CLAUSE_END), max_units, max_chars, counts):
            out.start.append(cs)
            out.end.append(ce)
            out.utt.append(utts[k])
            out.units.append(u(cs, ce))
        done = k + 1
    out.start += starts[done:]
    out.end += ends[done:]
    out.utt += utts[done:]
    out.units += n[done:]
    return out


def _sentence_pieces(text: str, spans: list[tuple[int, int]], counts: Units
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every utterance's ``_split(text, a, b, SENTENCE_END)`` pieces: (starts, ends, utterance).

    The cuts are found in the whole text at once. A cut that runs over an utterance's edge
    (say a closing quote, then the space joining the next utterance) could differ from the
    utterance's own split, so the utterances it touches are split on their own.
    """
    solid = np.flatnonzero(~counts.space)
    if not spans or not len(solid):
        empty = np.zeros(0, np.int64)
        return empty, empty, empty  # no piece has anything but whitespace
    a = np.fromiter((x for x, _ in spans), np.int64, len(spans))
    b = np.fromiter((y for _, y in spans), np.int64, len(spans))
    parts = (_ASCII_SENTENCE_CUT if text.isascii() else _SENTENCE_CUT).split(text)  # text, cut, text, ...
    edges = np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts)))
    gs = edges[0:-1:2] + 1  # a cut starts after its punctuation
    ge = edges[1::2]
    k = np.searchsorted(a, gs, side="right") - 1
    inside = gs < b[k]
    own = inside & (ge <= b[k])
    alone = np.zeros(len(spans), bool)
    # a cut that is neither inside one utterance nor in the gap between two
    for i in np.flatnonzero(~own & ((k + 1 >= len(spans)) | (ge > a[np.minimum(k + 1, len(spans) - 1)])
                                    | inside)).tolist():
        lo = int(np.searchsorted(b, gs[i], side="right"))
        hi = int(np.searchsorted(a, ge[i], side="left"))
        alone[lo:hi] = True
    keep = own & ~alone[k]
    starts = np.sort(np.concatenate([a[~alone], ge[keep]]))
    ends = np.sort(np.concatenate([gs[keep], b[~alone]]))
    # each piece without its trailing whitespace: up to the last non-space character before its end
    at = np.searchsorted(solid, ends, side="left") - 1
    last = np.where(at >= 0, solid[np.maximum(at, 0)] + 1, 0)
    stripped = np.maximum(starts, last)
    ok = stripped > starts
    ps, pe = starts[ok], stripped[ok]
    if alone.any():
        extra = [(s, e) for ui in np.flatnonzero(alone).tolist() for s, e in _split(text, *spans[ui], SENTENCE_END)]
        if extra:
            xs = np.fromiter((s for s, _ in extra), np.int64, len(extra))
            xe = np.fromiter((e for _, e in extra), np.int64, len(extra))
            order = np.argsort(np.concatenate([ps, xs]), kind="stable")
            ps, pe = np.concatenate([ps, xs])[order], np.concatenate([pe, xe])[order]
    return ps, pe, np.searchsorted(a, ps, side="right") - 1


def _split(text: str, a: int, b: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    pieces = []
    start = a
    for m in pattern.finditer(text, a, b):
        ms = m.start()
        if ms > start:
            e = ms if not text[ms - 1].isspace() else _rstrip(text, start, ms)
            if e > start:
                pieces.append((start, e))
        start = m.end()
    if start < b:
        e = _rstrip(text, start, b)
        if e > start:
            pieces.append((start, e))
    return pieces


def _rstrip(text: str, a: int, b: int) -> int:
    while b > a and text[b - 1].isspace():
        b -= 1
    return b


def _pack(text: str, pieces: list[tuple[int, int]], max_units: float, max_chars: int,
          counts: Units) -> list[tuple[int, int]]:
    """Join clause pieces into chunks within the limits; cut a too-long piece at words."""
    u = counts.span
    chunks: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    for s, e in pieces:
        for ps, pe in _cut_words(text, s, e, max_units, max_chars, counts):
            if cur and u(cur[0], pe) <= max_units and pe - cur[0] <= max_chars:
                cur = (cur[0], pe)
            else:
                if cur:
                    chunks.append(cur)
                cur = (ps, pe)
    if cur:
        chunks.append(cur)
    return chunks


def _cut_words(text: str, s: int, e: int, max_units: float, max_chars: int, counts: Units) -> list[tuple[int, int]]:
    if counts.span(s, e) <= max_units and e - s <= max_chars:
        return [(s, e)]
    found = [m.span() for m in _CUT_UNIT.finditer(text, s, e)]
    if not found:
        return []
    ws = np.fromiter((a for a, _ in found), np.int64, len(found))
    we = np.fromiter((b for _, b in found), np.int64, len(found))
    out = []
    cur_start, cur_end, cur_units = s, s, 0.0
    for (a, b), u in zip(found, counts.spans(ws, we), strict=True):
        if cur_end > cur_start and (cur_units + u > max_units or b - cur_start > max_chars):
            out.append((cur_start, cur_end))
            cur_start, cur_units = a, 0.0
        cur_end = b
        cur_units += u
    if cur_end > cur_start:
        out.append((cur_start, cur_end))
    return out


@dataclass(slots=True)
class Windows:
    """A transcript's passages as columns (``segment`` makes ``Passage`` objects of them)."""

    text: str
    char_start: list[int]
    char_end: list[int]
    start: list[float | None]
    speaker: list[str | None]
    position: list[float]
    quotes: list[Passage]


def segment(t: Transcript, target: float = TARGET_UNITS, max_chars: int = MAX_CHARS, first_pid: int = 0) -> Segmented:
    """Cut a transcript into overlapping passages (and stand-alone quote candidates)."""
    w = windows(t, target, max_chars)
    text, chapters = w.text, t.chapters
    passages = [
        Passage(pid=first_pid + k, source_id=t.source_id, text=text[cs:ce], char_start=cs, char_end=ce, start=st,
                speaker=sp, position=pos, chapter=chapter_at(chapters, st) if chapters else None)
        for k, (cs, ce, st, sp, pos) in enumerate(zip(w.char_start, w.char_end, w.start, w.speaker, w.position,
                                                      strict=True))
    ]
    return Segmented(text, passages, w.quotes)


def windows(t: Transcript, target: float = TARGET_UNITS, max_chars: int = MAX_CHARS) -> Windows:
    """``segment`` without making a ``Passage`` per window: what an index build needs."""
    text, spans = join(t)
    sents = sentence_columns(text, spans, target, max_chars, Units(text))
    ss, se, su, sn = sents.start, sents.end, sents.utt, sents.units
    codes: dict[str | None, int] = {}
    utt_code = [codes.setdefault(u.speaker, len(codes)) for u in t.utterances]
    sk = [utt_code[x] for x in su]
    n = len(ss)
    fill = 0.6 * target
    cstart: list[int] = []
    cend: list[int] = []
    i = 0
    while i < n:
        j = i
        total = sn[i]
        first = ss[i]
        turn = False
        while j + 1 < n:
            if sk[j + 1] != sk[j]:
                turn = True
                break  # a passage never spans two speakers
            if total >= target or se[j + 1] - first > max_chars:
                break
            if su[j + 1] != su[j] and total >= fill:
                break  # end at a turn once the window is well filled
            j += 1
            total += sn[j]
        cstart.append(first)
        cend.append(se[j])
        if j + 1 >= n:
            break
        if turn:
            i = j + 1  # the next speaker's words start the next window
            continue
        # Next window starts about half-way into this one (50% overlap), always moving on.
        k = bisect.bisect_left(ss, first + (se[j] - first) // 2, i + 1, j + 1)
        i = k if k <= j else (j if j > i else i + 1)
    spans = _Spans(spans)
    times = _Timer(t, text, spans)
    starts = np.asarray(spans.starts, np.int64)
    first_utt = np.maximum(0, np.searchsorted(starts, np.asarray(cstart, np.int64), side="right") - 1).tolist()
    last_utt = np.maximum(0, np.searchsorted(starts, np.asarray(cend, np.int64) - 1, side="right") - 1)
    # utterance k's speaker run: passages whose utterances share one run have one speaker
    run = np.zeros(len(utt_code), np.int64)
    if len(utt_code) > 1:
        np.cumsum(np.diff(np.asarray(utt_code)) != 0, out=run[1:])
    one = (run[first_utt] == run[last_utt]).tolist()
    names = [u.speaker for u in t.utterances]
    size = max(1, len(text))
    return Windows(
        text=text, char_start=cstart, char_end=cend,
        start=[times.at(cs, k) for cs, k in zip(cstart, first_utt, strict=True)],
        speaker=[names[k] if o else None for k, o in zip(first_utt, one, strict=True)],
        position=[cs / size for cs in cstart],
        quotes=_quotes(t, text, spans, times, sents),
    )


class _Spans(list):
    """Utterance spans, with their starts kept apart for bisection."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        super().__init__(spans)
        self.starts = [a for a, _ in spans]


def _utt_at(spans: list[tuple[int, int]], pos: int) -> int:
    """The last utterance starting at or before ``pos`` (0 when none does)."""
    starts = spans.starts if isinstance(spans, _Spans) else [a for a, _ in spans]
    return max(0, bisect.bisect_right(starts, pos) - 1)


class _Timer:
    """Start times of character positions: exact, interpolated inside sections, or none."""

    def __init__(self, t: Transcript, text: str, spans: list[tuple[int, int]]) -> None:
        self.t, self.spans = t, spans
        self.rate = self._seconds_per_char()

    def _seconds_per_char(self) -> float | None:
        rates = [
            (u.section_end - u.section_start) / max(1, len(u.text))
            for u in self.t.utterances
            if u.section_start is not None and u.section_end is not None and u.section_end > u.section_start
        ]
        return sorted(rates)[len(rates) // 2] if rates else None

    def at(self, pos: int, k: int | None = None) -> float | None:
        """``k``, when given, is ``_utt_at(spans, pos)`` already found."""
        if self.t.timing == "none":
            return None
        if k is None:
            k = _utt_at(self.spans, pos)
        u = self.t.utterances[k]
        if self.t.timing == "exact" or u.section_start is None:
            return u.start
        a, b = self.spans[k]
        end = u.section_end
        if end is None or end <= u.section_start:
            end = u.section_start + (self.rate or 0.0) * (b - a)
        est = u.section_start + (pos - a) / max(1, b - a) * (end - u.section_start)
        return float(max(u.section_start, math.floor(est) - LEAD_SECONDS))


def _quotes(t: Transcript, text: str, spans, times: _Timer, sents: Sentences) -> list[Passage]:
    """Stand-alone quotes: 1-3 whole sentences of one utterance, 80-400 characters."""
    n = len(sents.start)
    if not n:
        return []
    ss, se, su = (np.asarray(c, np.int64) for c in (sents.start, sents.end, sents.utt))
    # best[i]: the first of sentences i..i+2 (one utterance, at most 400 characters from i's
    # start) that makes at least 80 characters, else -1
    best = np.full(n, -1, np.int64)
    alive = np.ones(n, bool)
    idx = np.arange(n)
    for d in range(3):
        j = np.minimum(idx + d, n - 1)
        length = se[j] - ss
        alive &= (idx + d < n) & (su[j] == su) & (length <= 400)
        hit = alive & (length >= 80)
        best[hit] = j[hit]
        alive &= ~hit
    hits = np.flatnonzero(best >= 0).tolist()
    best_of = best.tolist()
    size = max(1, len(text))
    out: list[Passage] = []
    h = 0
    while h < len(hits):
        i = hits[h]
        b = best_of[i]
        cs, ce = sents.start[i], sents.end[b]
        body = text[cs:ce]
        if _reads_alone(body):
            k = sents.utt[i]  # all of it lies in this one utterance
            st = times.at(cs, k)
            out.append(Passage(pid=-1 - len(out), source_id=t.source_id, text=body, char_start=cs, char_end=ce,
                               start=st, speaker=t.utterances[k].speaker, position=cs / size,
                               chapter=chapter_at(t.chapters, st) if t.chapters else None))
        h = bisect.bisect_left(hits, b + 1, h + 1)  # the next candidate after this quote
    return out


def _reads_alone(body: str) -> bool:
    # (the cheap tests first)
    return (body.rstrip()[-1:] in ".!。！…" and not body.startswith(("-", "...", "…"))
            and not _FILLER_START.match(body) and not _BRACKET.search(body))
