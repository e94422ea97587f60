"""SubRip (.srt) subtitles -> Transcript with exact cue times.

Each subtitle is an optional index line, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, text lines and
a blank line. A cue's text runs to the next timing line, so a missing index or a blank line
inside the text does not break parsing. ``<i>``/``<b>``/``<font>`` tags and ``{\\an8}``
position codes are removed.
"""

from __future__ import annotations

import re

from retrieval.formats.errors import TranscriptError
from retrieval.model import Transcript, Utterance

_NEWLINE = re.compile(r"\r\n|\r|\n")
_TIMESTAMP = r"\d{1,3}:[0-5]\d:[0-5]\d[,.]\d{3}"
_TIMING = re.compile(rf"[ \t]*({_TIMESTAMP})[ \t]*-->[ \t]*({_TIMESTAMP})(?:[ \t].*)?")
_MARKUP = re.compile(r"</?[A-Za-z][^<>]*>|\{\\[^{}]*\}")


def parse(text: str, path: str, source_id: str) -> Transcript:
    """Parse SRT text; raises TranscriptError naming the line of malformed input."""
    lines = _NEWLINE.split(text.removeprefix("\ufeff"))
    timings = [i for i, line in enumerate(lines) if "-->" in line]
    _check_preamble(lines[: timings[0] if timings else len(lines)], path)
    utterances: list[Utterance] = []
    for n, at in enumerate(timings):
        start, end = _times(lines[at], at + 1, path)
        stop = timings[n + 1] if n + 1 < len(timings) else len(lines)
        if stop < len(lines) and stop - 1 > at and lines[stop - 1].strip().isdigit():
            stop -= 1  # the next subtitle's index line
        body = [(i, line) for i, line in enumerate(lines[at + 1 : stop], start=at + 2) if line.strip()]
        words = " ".join(_MARKUP.sub("", " ".join(line for _, line in body)).split())
        if words:
            utterances.append(Utterance(words, start, end, None, body[0][0]))
    utterances.sort(key=lambda u: u.start or 0.0)
    return Transcript(source_id, path, utterances, timing="exact")


def seconds(timestamp: str) -> float:
    """``HH:MM:SS,mmm`` -> seconds, computed from whole milliseconds."""
    hours, minutes, rest = timestamp.split(":")
    secs, millis = re.split("[,.]", rest)
    return ((int(hours) * 60 + int(minutes)) * 60 * 1000 + int(secs) * 1000 + int(millis)) / 1000


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
