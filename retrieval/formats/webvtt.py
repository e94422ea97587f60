"""WebVTT transcripts (including yt-dlp's rolling YouTube captions) -> Transcript.

Blocks are read as the WebVTT spec's parser reads them: a block is a cue when its first or
second line holds ``-->``; a ``-->`` line further down (with no blank line before it)
starts the next cue; blocks without a timing line (NOTE, STYLE, REGION, stray text) are
skipped; lines holding only spaces are cue text; ``-->`` needs no spaces around it and
settings may follow the end time directly. In ``MM:SS.mmm`` the minutes may have any
number of digits and run past 59 (``120:00.000`` is two hours; vtt.js reads 120 hours).
Two deliberate departures, so words are never lost without a message: a cue whose
timing line does not parse, or ends before it starts, is reported with its line instead
of being dropped; and cue text is only its visible words (tags removed, character
references decoded).

``<v Speaker>`` gives the speaker and carries to later cues without a voice (Podcasting
2.0 marks only the changes); files without voices may mark turns with ``Name:`` labels.
A header line ``WEBVTT - Title`` or a link in it gives the title or link.
"""

from __future__ import annotations

import html
import re

from retrieval.formats import cues as cuelib
from retrieval.formats.errors import TranscriptError
from retrieval.formats.speakers import apply_labels
from retrieval.model import Transcript

_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINK = re.compile(r"https?://[^\s<>\"]+")


def parse(text: str, path: str, source_id: str) -> Transcript:
    """Parse WebVTT text; raises TranscriptError naming the line of malformed input.

    A file without the ``WEBVTT`` line is read as header-less cues when its first line
    (after an optional cue id) is a cue timing line.
    """
    lines = _NEWLINE.split(text.removeprefix("\ufeff").replace("\x00", "\ufffd"))
    header = lines[0]
    has_header = header.startswith("WEBVTT") and (len(header) == 6 or header[6] in " \t")
    if not has_header:
        at = 1 if lines[0].strip() and "-->" not in lines[0] and len(lines) > 1 else 0  # after a cue id
        if "-->" not in lines[at] or not parse_timing(lines[at]):
            raise TranscriptError(path, 1, f"missing 'WEBVTT' header, file starts with '{lines[0][:40]}'")
    cues = _read_cues(lines, path, has_header)
    _carry_voices(cues)
    utterances = cuelib.utterances(cues)
    utterances, _ = apply_labels(utterances)
    utterances.sort(key=lambda u: u.start or 0.0)
    speakers = tuple(dict.fromkeys(u.speaker for u in utterances if u.speaker))
    title, url = _header_meta(header[6:] if has_header else "")
    return Transcript(source_id, path, utterances, title=title, url=url, speakers=speakers, timing="exact")


def seconds(timestamp: str) -> float:
    """``HH:MM:SS.mmm`` or ``MM:SS.mmm`` -> seconds, computed from whole milliseconds."""
    clock, millis = timestamp.split(".")
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return (total * 1000 + int(millis)) / 1000


_STAMP = re.compile(r"(\d+):(\d+)(?::(\d+))?\.(\d+)")


def _timestamp(s: str, pos: int) -> tuple[float, int] | None:
    """The spec's 'collect a WebVTT timestamp' at ``pos``: (seconds, end position) or None."""
    m = _STAMP.match(s, pos)
    if not m:
        return None
    a, b, c, frac = m.groups()
    if c is None:  # MM:SS.mmm; minutes may run past 59 (``120:00.000`` is two hours)
        hours, minutes, secs = 0, int(a), b
    else:
        hours, minutes, secs = int(a), b, c
        if len(minutes) != 2:
            return None
        minutes = int(minutes)
        if minutes > 59:
            return None
    if len(secs) != 2 or len(frac) != 3 or int(secs) > 59:
        return None
    return ((hours * 3600 + minutes * 60 + int(secs)) * 1000 + int(frac)) / 1000, m.end()


def parse_timing(line: str) -> tuple[float, float] | None:
    """Start and end of a cue timing line (settings ignored), or None when it does not parse."""
    pos = len(line) - len(line.lstrip(" \t"))
    first = _timestamp(line, pos)
    if first is None:
        return None
    pos = first[1]
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    if not line.startswith("-->", pos):
        return None
    pos += 3
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    second = _timestamp(line, pos)
    if second is None:
        return None
    return first[0], second[0]


def _read_cues(lines: list[str], path: str, has_header: bool) -> list[cuelib.Cue]:
    cues: list[cuelib.Cue] = []
    i = 1 if has_header else 0
    if has_header:  # the header block runs to a blank line, or up to a timing line
        while i < len(lines) and lines[i] and "-->" not in lines[i]:
            i += 1
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        i = _block(lines, i, path, cues)
    return cues


def _block(lines: list[str], i: int, path: str, cues: list[cuelib.Cue]) -> int:
    """Read the block starting at line index ``i``; append its cue if it is one; return the next index."""
    timing_at = None
    count = 0
    j = i
    while j < len(lines) and lines[j]:
        count += 1
        if "-->" in lines[j]:
            if timing_at is None and count <= 2:
                timing_at = j
            else:
                break  # a timing line inside a cue starts the next cue
        j += 1
    if timing_at is None:
        return j  # NOTE, STYLE, REGION or stray text: not a cue
    times = parse_timing(lines[timing_at])
    payload = lines[timing_at + 1 : j]
    if times is None:
        if any(line.strip() for line in payload):
            raise TranscriptError(path, timing_at + 1, f"cue timing '{lines[timing_at].strip()}' is not "
                                                       "HH:MM:SS.mmm --> HH:MM:SS.mmm")
        return j
    start, end = times
    if end < start:
        raise TranscriptError(path, timing_at + 1, f"cue ends ({_clock(end)}) before it starts ({_clock(start)})")
    cues.append(_cue(start, end, payload, timing_at + 1))
    return j


def _clock(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _cue(start: float, end: float, payload: list[str], number: int) -> cuelib.Cue:
    cue = cuelib.Cue(start, end)
    voice: str | None = None  # a voice span ends with its cue
    for offset, raw in enumerate(payload, start=1):
        line_voice = voice
        visible: list[str] = []
        for kind, value in _tokens(raw):
            if kind == "text":
                visible.append(_visible(value))
                cue.runs.append((voice, visible[-1], number + offset))
                continue
            voice, timed = _apply_tag(value, voice)
            cue.word_timed |= timed
            cue.voiced |= value[:1] == "v" or value[:2] == "/v"
            if not "".join(visible).strip():
                line_voice = voice
        cue.runs.append((voice, " ", number + offset))
        cue.lines.append(cuelib.Line(" ".join("".join(visible).split()), line_voice, number + offset))
    cue.voice_after = voice
    return cue


def _tokens(raw: str) -> list[tuple[str, str]]:
    """Cue text as ("text", …) and ("tag", …) tokens; a '<' with no '>' runs to the end as a tag."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(raw):
        lt = raw.find("<", pos)
        if lt < 0:
            out.append(("text", raw[pos:]))
            break
        if lt > pos:
            out.append(("text", raw[pos:lt]))
        gt = raw.find(">", lt + 1)
        out.append(("tag", raw[lt + 1 : gt if gt >= 0 else len(raw)]))
        pos = gt + 1 if gt >= 0 else len(raw)
    return out


def _visible(fragment: str) -> str:
    return html.unescape(fragment).replace("\u200e", "").replace("\u200f", "").replace("\xa0", " ")


def _apply_tag(tag: str, voice: str | None) -> tuple[str | None, bool]:
    """Return the voice in effect after ``<tag>`` and whether the tag was a word timestamp."""
    if tag[:1].isdigit():
        return voice, True
    name, _, annotation = tag.replace("\t", " ").partition(" ")
    name = name.split(".", 1)[0]
    if name == "v":
        return " ".join(annotation.split()) or None, False
    if name == "/v":
        return None, False
    return voice, False


def _carry_voices(cues: list[cuelib.Cue]) -> None:
    """A cue without any voice tag continues the voice left open by the last voiced cue (Podcasting 2.0)."""
    current: str | None = None
    for cue in cues:
        if cue.voiced:
            current = cue.voice_after
        elif current is not None:
            cue.runs = [(current, text, n) for _, text, n in cue.runs]
            cue.lines = [cuelib.Line(line.text, current, line.number) for line in cue.lines]


def _header_meta(rest: str) -> tuple[str, str | None]:
    """Title and link from the text after ``WEBVTT`` on the header line."""
    rest = rest.strip(" \t-–—:")
    link = _LINK.search(rest)
    url = link.group(0).rstrip(".,;)") if link else None
    title = _LINK.sub("", rest).strip(" \t-–—:|") if rest else ""
    if re.match(r"(?i)^(kind|language|x-timestamp-map)\b", title):
        title = ""
    return title, url
