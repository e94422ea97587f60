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
_CLAUSE_END = re.compile(r"(?<=[,;:，；、])\s*")
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
        self._word = word = ~space & ~cjk
        starts = word.copy()
        starts[1:] &= ~word[:-1]
        self._starts = np.zeros(len(codes) + 1, np.int64)
        np.cumsum(starts, out=self._starts[1:])
        self._cjk = np.zeros(len(codes) + 1, np.int64)
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


def sentences(text: str, spans: list[tuple[int, int]], max_units: float, max_chars: int,
              counts: Units | None = None) -> list[Sentence]:
    """Sentences of each utterance; over-long ones are cut at clauses, then words."""
    counts = counts or Units(text)
    u = counts.span
    pieces = [(s, e, ui) for ui, (a, b) in enumerate(spans) for s, e in _split(text, a, b, SENTENCE_END)]
    if not pieces:
        return []
    ps, pe, _ = (np.asarray(c, np.int64) for c in zip(*pieces, strict=True))
    out: list[Sentence] = []
    for (s, e, ui), n in zip(pieces, counts.spans(ps, pe), strict=True):
        if n <= max_units and e - s <= max_chars:
            out.append(Sentence(s, e, ui, n))
            continue
        for cs, ce in _pack(text, _split(text, s, e, _CLAUSE_END), max_units, max_chars, u):
            out.append(Sentence(cs, ce, ui, u(cs, ce)))
    return out


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
          u) -> list[tuple[int, int]]:
    """Join clause pieces into chunks within the limits; cut a too-long piece at words."""
    chunks: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    for s, e in pieces:
        for ps, pe in _cut_words(text, s, e, max_units, max_chars, u):
            if cur and u(cur[0], pe) <= max_units and pe - cur[0] <= max_chars:
                cur = (cur[0], pe)
            else:
                if cur:
                    chunks.append(cur)
                cur = (ps, pe)
    if cur:
        chunks.append(cur)
    return chunks


def _cut_words(text: str, s: int, e: int, max_units: float, max_chars: int, units_of) -> list[tuple[int, int]]:
    if units_of(s, e) <= max_units and e - s <= max_chars:
        return [(s, e)]
    out = []
    cur_start, cur_end, cur_units = s, s, 0.0
    # CJK text has no spaces: cut it by characters; other text by words.
    for m in re.finditer(r"[\u3400-\u9fff\uf900-\ufaff]|\S+", text[s:e]):
        ws, we = s + m.start(), s + m.end()
        u = units_of(ws, we)
        if cur_end > cur_start and (cur_units + u > max_units or we - cur_start > max_chars):
            out.append((cur_start, cur_end))
            cur_start, cur_units = ws, 0.0
        cur_end = we
        cur_units += u
    if cur_end > cur_start:
        out.append((cur_start, cur_end))
    return out


def segment(t: Transcript, target: float = TARGET_UNITS, max_chars: int = MAX_CHARS, first_pid: int = 0) -> Segmented:
    """Cut a transcript into overlapping passages (and stand-alone quote candidates)."""
    text, spans = join(t)
    sents = sentences(text, spans, target, max_chars)
    spans = _Spans(spans)
    times = _Timer(t, text, spans)
    passages: list[Passage] = []
    speaker = [u.speaker for u in t.utterances]
    i = 0
    while i < len(sents):
        j = i
        total = sents[i].units
        turn = False
        while j + 1 < len(sents):
            nxt = sents[j + 1]
            if speaker[nxt.utt] != speaker[sents[j].utt]:
                turn = True
                break  # a passage never spans two speakers
            if total >= target or nxt.end - sents[i].start > max_chars:
                break
            if nxt.utt != sents[j].utt and total >= 0.6 * target:
                break  # end at a turn once the window is well filled
            j += 1
            total += nxt.units
        passages.append(_passage(t, text, spans, times, sents[i].start, sents[j].end, first_pid + len(passages)))
        if j + 1 >= len(sents):
            break
        if turn:
            i = j + 1  # the next speaker's words start the next window
            continue
        # Next window starts about half-way into this one (50% overlap), always moving on.
        half = sents[i].start + (sents[j].end - sents[i].start) // 2
        k = i + 1
        while k <= j and sents[k].start < half:
            k += 1
        i = k if k <= j else (j if j > i else i + 1)
    return Segmented(text, passages, _quotes(t, text, spans, times, sents))


def _passage(t: Transcript, text: str, spans, times: _Timer, cs: int, ce: int, pid: int) -> Passage:
    first = _utt_at(spans, cs)
    last = _utt_at(spans, ce - 1)
    if first == last:
        speaker = t.utterances[first].speaker
    else:
        speakers = {t.utterances[k].speaker for k in range(first, last + 1)}
        speaker = speakers.pop() if len(speakers) == 1 else None
    start = times.at(cs, first)
    return Passage(
        pid=pid,
        source_id=t.source_id,
        text=text[cs:ce],
        char_start=cs,
        char_end=ce,
        start=start,
        speaker=speaker,
        position=cs / max(1, len(text)),
        chapter=chapter_at(t.chapters, start) if t.chapters else None,
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


def _quotes(t: Transcript, text: str, spans, times: _Timer, sents: list[Sentence]) -> list[Passage]:
    """Stand-alone quotes: 1-3 whole sentences of one utterance, 80-400 characters."""
    out: list[Passage] = []
    i = 0
    while i < len(sents):
        best = None
        for j in range(i, min(i + 3, len(sents))):
            if sents[j].utt != sents[i].utt:
                break
            n = sents[j].end - sents[i].start
            if n > 400:
                break
            if n >= 80:
                best = j
                break
        if best is not None:
            body = text[sents[i].start : sents[best].end]
            if _reads_alone(body):
                out.append(_passage(t, text, spans, times, sents[i].start, sents[best].end, -1 - len(out)))
            i = best + 1
        else:
            i += 1
    return out


def _reads_alone(body: str) -> bool:
    if _FILLER_START.match(body) or body.rstrip().endswith("?") or _BRACKET.search(body):
        return False
    last = body.rstrip()[-1:]
    return last in ".!。！…" and not body.startswith(("-", "...", "…"))
