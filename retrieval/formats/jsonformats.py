"""JSON transcripts -> Transcript: Whisper, youtube-transcript-api raw data, Podcasting 2.0.

- Whisper: ``{"text", "language", "segments": [{"start", "end", "text", "words"?, "speaker"?}]}``
- youtube-transcript-api: ``[{"text", "start", "duration"}]``; durations overlap the next
  snippet, so a snippet ends where the next one starts when that is earlier.
- Podcasting 2.0: ``{"version", "segments": [{"speaker"?, "startTime", "endTime", "body"}]}``
- youtube-transcript-api's CLI ``--format json`` (a list of such lists, one per video) and a
  ``FetchedTranscript`` as a dict (``{"snippets": [...], "video_id", "language", ...}``).
- whisper.cpp ``-oj``: ``{"transcription": [{"offsets": {"from", "to"} (ms), "text"}]}``.

Errors name the line of the offending segment, found by walking the raw text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from retrieval.formats.errors import TranscriptError
from retrieval.model import Transcript, Utterance

Parser = Callable[[str, str, str], Transcript]


@dataclass(slots=True)
class _Doc:
    """The raw text a JSON value came from, to give segments and errors their line."""

    text: str
    path: str
    _lines: tuple[int, list[int]] | None = None
    # Where the items are: the member holding the array, and whether it sits in a one-item outer list.
    array_key: str = "segments"
    nested: bool = False

    def line(self, index: int | None) -> int:
        """1-based line of segment ``index``; of the segments array when ``index`` is None or unknown."""
        if self._lines is None:
            self._lines = _segment_lines(self.text.removeprefix("\ufeff"), self.array_key, self.nested)
        array_line, lines = self._lines
        return lines[index] if index is not None and index < len(lines) else array_line

    def fail(self, index: int | None, reason: str) -> TranscriptError:
        return TranscriptError(self.path, self.line(index), reason)


def parse(text: str, path: str, source_id: str) -> Transcript:
    """Parse any of the three JSON formats, telling them apart by content."""
    return parse_data(_load(text, path), text, path, source_id)


def parse_whisper(text: str, path: str, source_id: str) -> Transcript:
    return _whisper(_load(text, path), _Doc(text, path), source_id)


def parse_youtube(text: str, path: str, source_id: str) -> Transcript:
    return _youtube(_load(text, path), _Doc(text, path), source_id)


def parse_podcast(text: str, path: str, source_id: str) -> Transcript:
    return _podcast(_load(text, path), _Doc(text, path), source_id)


def parse_whispercpp(text: str, path: str, source_id: str) -> Transcript:
    return _whispercpp(_load(text, path), _Doc(text, path), source_id)


def sniff_json(data: Any) -> Parser | None:
    """Which parser fits decoded JSON ``data``: Whisper, youtube-transcript-api, Podcasting 2.0, or None."""
    if isinstance(data, list):
        first = data[0] if data else {}
        if isinstance(first, list) and len(data) == 1:  # the CLI's one list per video, for one video
            first = first[0] if first else {}
        return parse_youtube if isinstance(first, dict) and first.keys() & {"text", "start", "duration"} else None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("snippets"), list):
        return parse_youtube
    if isinstance(data.get("transcription"), list):
        return parse_whispercpp
    segments = data.get("segments")
    first = next((s for s in segments if isinstance(s, dict)), {}) if isinstance(segments, list) else {}
    if first.keys() & {"startTime", "endTime", "body"}:
        return parse_podcast
    if first.keys() & {"start", "end", "text"}:
        return parse_whisper
    if "version" in data:
        return parse_podcast
    if data.keys() & {"language", "text"}:
        return parse_whisper
    return None


def parse_data(data: Any, text: str, path: str, source_id: str) -> Transcript:
    """Parse already-decoded JSON ``data`` (from ``text``), choosing the format with sniff_json."""
    parser = sniff_json(data)
    if parser is None:
        raise TranscriptError(path, 1, "JSON is not a Whisper, youtube-transcript-api or Podcasting 2.0 transcript")
    build = {parse_whisper: _whisper, parse_youtube: _youtube, parse_podcast: _podcast,
             parse_whispercpp: _whispercpp}[parser]
    return build(data, _Doc(text, path), source_id)


def _load(text: str, path: str) -> Any:
    try:
        return json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as e:
        raise TranscriptError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    except RecursionError:
        raise TranscriptError(path, 1, "JSON is nested too deeply to be a transcript") from None


def _whisper(data: Any, doc: _Doc, source_id: str) -> Transcript:
    utterances = []
    for i, seg in enumerate(_segments(data, doc)):
        start = _time(seg, "start", i, doc, required=True)
        end = _time(seg, "end", i, doc)
        utterances.append(_utterance(seg, "text", start, end, i, doc))
    return _transcript(utterances, doc, source_id)


def _podcast(data: Any, doc: _Doc, source_id: str) -> Transcript:
    utterances = []
    for i, seg in enumerate(_segments(data, doc)):
        start = _time(seg, "startTime", i, doc, required=True)
        end = _time(seg, "endTime", i, doc)
        utterances.append(_utterance(seg, "body", start, end, i, doc))
    return _transcript(utterances, doc, source_id)


def _youtube(data: Any, doc: _Doc, source_id: str) -> Transcript:
    if isinstance(data, dict) and isinstance(data.get("snippets"), list):
        doc.array_key = "snippets"
        data = data["snippets"]
    elif isinstance(data, list) and len(data) == 1 and isinstance(data[0], list):
        doc.nested = True
        data = data[0]
    if not isinstance(data, list):
        raise doc.fail(None, "youtube-transcript-api JSON must be a list of {text, start, duration}")
    snippets = [_object(item, i, doc) for i, item in enumerate(data)]
    starts = [_time(item, "start", i, doc, required=True) for i, item in enumerate(snippets)]
    utterances = []
    for i, item in enumerate(snippets):
        duration = _time(item, "duration", i, doc)
        end = None if duration is None else round(starts[i] + duration, 3)
        if end is not None and i + 1 < len(starts) and starts[i] <= starts[i + 1] < end:
            end = starts[i + 1]
        utterances.append(_utterance(item, "text", starts[i], end, i, doc))
    return _transcript(utterances, doc, source_id)


def _whispercpp(data: Any, doc: _Doc, source_id: str) -> Transcript:
    doc.array_key = "transcription"
    utterances = []
    for i, seg in enumerate(_object(item, i, doc) for i, item in enumerate(data["transcription"])):
        offsets = seg.get("offsets")
        if not isinstance(offsets, dict):
            raise doc.fail(i, f"segment {i + 1} has no 'offsets' {{from, to}} in milliseconds")
        start = _time(offsets, "from", i, doc, required=True)
        end = _time(offsets, "to", i, doc)
        utterances.append(_utterance(seg, "text", start / 1000, None if end is None else end / 1000, i, doc))
    return _transcript(utterances, doc, source_id)


def _segments(data: Any, doc: _Doc) -> list[dict]:
    segments = data.get("segments") if isinstance(data, dict) else None
    if not isinstance(segments, list):
        raise doc.fail(None, "transcript JSON has no 'segments' array")
    return [_object(seg, i, doc) for i, seg in enumerate(segments)]


def _object(item: Any, i: int, doc: _Doc) -> dict:
    if not isinstance(item, dict):
        raise doc.fail(i, f"segment {i + 1} is not an object")
    return item


def _time(seg: dict, key: str, i: int, doc: _Doc, *, required: bool = False) -> float | None:
    value = seg.get(key)
    if value is None:
        if required:
            raise doc.fail(i, f"segment {i + 1} has no start time ('{key}')")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise doc.fail(i, f"segment {i + 1} '{key}' is {json.dumps(value)[:40]}, not a number of seconds")
    return float(value)


def _utterance(seg: dict, key: str, start: float | None, end: float | None, i: int, doc: _Doc) -> Utterance:
    text = seg.get(key, "")
    if not isinstance(text, str):
        raise doc.fail(i, f"segment {i + 1} '{key}' is not a string")
    if start is not None and end is not None and end < start:
        raise doc.fail(i, f"segment {i + 1} ends ({end:g}) before it starts ({start:g})")
    speaker = seg.get("speaker")
    speaker = (" ".join(speaker.split()) or None) if isinstance(speaker, str) else None
    return Utterance(" ".join(text.split()), start, end, speaker, doc.line(i))


def _transcript(utterances: list[Utterance], doc: _Doc, source_id: str) -> Transcript:
    kept = sorted((u for u in utterances if u.text), key=lambda u: u.start or 0.0)
    speakers = tuple(dict.fromkeys(u.speaker for u in kept if u.speaker))
    return Transcript(source_id, doc.path, kept, speakers=speakers, timing="exact")


def _segment_lines(text: str, key: str = "segments", nested: bool = False) -> tuple[int, list[int]]:
    """1-based lines of the items array (top-level list or ``key`` member) and of each element."""
    try:
        array_at, items = _segment_offsets(text, key, nested)
    except (ValueError, TypeError, RecursionError):  # text that does not decode: no positions to give
        return 1, []
    lines, line, previous = [], text.count("\n", 0, array_at) + 1, array_at
    array_line = line
    for at in items:
        line += text.count("\n", previous, at)
        lines.append(line)
        previous = at
    return array_line, lines


def _segment_offsets(text: str, key: str, nested: bool) -> tuple[int, list[int]]:
    decoder = json.JSONDecoder()
    pos: int | None = _skip(text, 0)
    if nested and text.startswith("[", pos):
        pos = _skip(text, pos + 1)
    if text.startswith("{", pos):
        pos = _member(text, pos, key, decoder)
    if pos is None or not text.startswith("[", pos):
        raise ValueError("no segments array")
    array_at, items = pos, []
    pos = _skip(text, pos + 1)
    while not text.startswith("]", pos):
        items.append(pos)
        pos = _skip(text, decoder.raw_decode(text, pos)[1])
        pos = _skip(text, pos + 1) if text.startswith(",", pos) else pos
    return array_at, items


def _member(text: str, pos: int, key: str, decoder: json.JSONDecoder) -> int | None:
    """Offset of the value of ``key`` in the object starting at ``pos`` (the last one, as json.loads keeps)."""
    found = None
    pos = _skip(text, pos + 1)
    while text.startswith('"', pos):
        name, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, _skip(text, pos) + 1)
        if name == key:
            found = pos
        pos = _skip(text, decoder.raw_decode(text, pos)[1])
        pos = _skip(text, pos + 1) if text.startswith(",", pos) else pos
    return found


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
