"""SubRip (.srt) subtitles -> Transcript with exact cue times.

Each subtitle is an optional index line, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, text lines and
a blank line. A cue's text runs to the next timing line, so a missing index or a blank line
inside the text does not break parsing; a number standing alone after a blank line is the
index of an empty subtitle, not text. ``<i>``/``<b>``/``<font>`` tags and ``{\\an8}``
position codes are removed; ``\\N``/``\\n`` (line break) and ``\\h`` (hard space) escapes
left by ASS converters become spaces. yt-dlp rolling captions converted to SRT are
de-duplicated as in WebVTT, and ``Name:`` turn labels give speakers.
"""

from __future__ import annotations

import html
import re

from retrieval.formats import cues as cuelib
from retrieval.formats.errors import TranscriptError
from retrieval.formats.speakers import apply_labels
from retrieval.model import Transcript

_NEWLINE = re.compile(r"\r\n|\r|\n")
_TIMESTAMP = r"(?:\d{1,3}:)?[0-5]?\d:[0-5]\d[,.]\d{3}"
_TIMING = re.compile(rf"[ \t]*({_TIMESTAMP})[ \t]*-->[ \t]*({_TIMESTAMP})(?:[ \t].*)?")
_MARKUP = re.compile(r"</?[A-Za-z][^<>]*>|\{\\[^{}]*\}")
_ESCAPES = re.compile(r"\\[Nnh]")


def parse(text: str, path: str, source_id: str) -> Transcript:
    """Parse SRT text; raises TranscriptError naming the line of malformed input."""
    lines = _NEWLINE.split(text.removeprefix("\ufeff"))
    timings = [i for i, line in enumerate(lines) if "-->" in line]
    if not timings:
        raise TranscriptError(path, 1, "no subtitle timing line 'HH:MM:SS,mmm --> HH:MM:SS,mmm' in this file")
    _check_preamble(lines[: timings[0]], path)
    cues: list[cuelib.Cue] = []
    for n, at in enumerate(timings):
        start, end = _times(lines[at], at + 1, path)
        stop = timings[n + 1] if n + 1 < len(timings) else len(lines)
        if stop < len(lines) and stop - 1 > at and lines[stop - 1].strip().isdigit():
            stop -= 1  # the next subtitle's index line
        cue = cuelib.Cue(start, end)
        after_blank = False
        for i in range(at + 1, stop):
            raw = lines[i]
            if not raw.strip():
                after_blank = True
                continue
            if after_blank and raw.strip().isdigit():
                continue  # the index of a subtitle that has no timing or text
            visible = " ".join(html.unescape(_MARKUP.sub("", _ESCAPES.sub(" ", raw))).split())
            cue.lines.append(cuelib.Line(visible, None, i + 1))
            cue.runs.append((None, visible + " ", i + 1))
        cues.append(cue)
    utterances, _ = apply_labels(cuelib.utterances(cues))
    utterances.sort(key=lambda u: u.start or 0.0)
    speakers = tuple(dict.fromkeys(u.speaker for u in utterances if u.speaker))
    return Transcript(source_id, path, utterances, speakers=speakers, timing="exact")


def seconds(timestamp: str) -> float:
    """``HH:MM:SS,mmm`` (or ``MM:SS,mmm``) -> seconds, computed from whole milliseconds."""
    clock, millis = re.split("[,.]", timestamp)
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return (total * 1000 + int(millis)) / 1000


def _times(line: str, number: int, path: str) -> tuple[float, float]:
    match = _TIMING.fullmatch(line)
    if not match:
        raise TranscriptError(path, number, f"subtitle timing '{line.strip()}' is not HH:MM:SS,mmm --> HH:MM:SS,mmm")
    start, end = seconds(match[1]), seconds(match[2])
    if end < start:
        raise TranscriptError(path, number, f"subtitle ends ({match[2]}) before it starts ({match[1]})")
    return start, end


def _check_preamble(lines: list[str], path: str) -> None:
    """Before the first timing line only blank lines and one index may appear."""
    for number, line in enumerate(lines, start=1):
        if line.strip() and not line.strip().isdigit():
            raise TranscriptError(path, number, f"expected a subtitle number or timing line, got '{line.strip()[:60]}'")
