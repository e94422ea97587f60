"""Transcript formats: detect a file's format by content (the extension breaks ties), parse it to a Transcript.

Detection, in order: a ``WEBVTT`` header; JSON (only when the text really is JSON, so a
``.txt`` opening with ``[Music]`` stays text); YouTube SBV timing lines; SRT-style cue
timing lines (also in ``.txt``/``.vtt`` files, and header-less WebVTT cues in a ``.vtt``);
timed Markdown sections; Markdown ``**Name:**`` turns; plain text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from retrieval.formats import markdown, plaintext
from retrieval.formats.encoding import decode
from retrieval.formats.errors import TranscriptError
from retrieval.model import Transcript

__all__ = ["MAX_BYTES", "SUFFIXES", "TranscriptError", "decode", "detect", "parse_file", "parse_text", "read_text"]

SUFFIXES = (".txt", ".md", ".markdown", ".vtt", ".srt", ".sbv", ".json", ".html", ".htm")
# A 10-hour episode's word-timed JSON is a few MB; beyond this a file is not a transcript.
MAX_BYTES = 32 * 1024 * 1024
_CUE_TIMING = re.compile(r"^\s*(?:\d{1,3}:)?\d{1,2}:\d{2}[,.]\d{1,3}\s*-->\s*(?:\d{1,3}:)?\d{1,2}:\d{2}[,.]\d{1,3}")
_SBV_TIMING = re.compile(r"^\s*\d{1,3}:\d{2}:\d{2}\.\d{3},\d{1,3}:\d{2}:\d{2}\.\d{3}\s*$")


def detect(text: str, suffix: str) -> str:
    """Which parser ``text`` calls for: "vtt", "json", "html", "sbv", "srt", "markdown", "turns" or "plain"."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT"):
        return "vtt"
    if head[:1] in "{[" and (suffix == ".json" or _is_json(head)):
        return "json"
    if suffix in (".html", ".htm"):
        return "html"
    lines = [line for line in head[:4000].splitlines() if line.strip()][:4]
    if any(_SBV_TIMING.match(line) for line in lines[:2]):
        return "sbv"
    timing = next((line for line in lines[:3] if "-->" in line), None)
    if timing is not None and _CUE_TIMING.match(timing):
        before = lines[: lines.index(timing)]
        if all(line.strip().isdigit() for line in before) or suffix == ".vtt":
            return "vtt" if suffix == ".vtt" and "," not in timing.split("-->")[0] else "srt"
    if suffix in (".json", ".srt", ".sbv", ".vtt"):
        return suffix[1:]
    if markdown.looks_like(text):
        return "markdown"
    if markdown.has_bold_turns(text):
        return "turns"
    return "plain"


def _is_json(head: str) -> bool:
    try:
        json.loads(head)
    except RecursionError:
        return True  # JSON, just too deep: the JSON parser says so
    except ValueError:
        return False
    return True


def parse_text(text: str, path: str, source_id: str, speaker_tags: dict[str, str] | None = None) -> Transcript:
    """Parse ``text`` (the content of ``path``) with the parser its content and extension call for.

    Raises TranscriptError for malformed input, and for a file that parses but holds no words.
    """
    t = _parse(text, path, source_id, speaker_tags)
    if not any(u.text.strip() for u in t.utterances):
        raise TranscriptError(path, 1, "no transcript text in this file (no cues or segments with words)")
    return t


def _parse(text: str, path: str, source_id: str, speaker_tags: dict[str, str] | None) -> Transcript:
    kind = detect(text, Path(path).suffix.lower())
    if kind == "vtt":
        from retrieval.formats import webvtt

        return webvtt.parse(text, path, source_id)
    if kind == "json":
        from retrieval.formats import jsonformats

        return jsonformats.parse(text, path, source_id)
    if kind == "html":
        from retrieval.formats import html

        return html.parse(text, path, source_id)
    if kind == "sbv":
        from retrieval.formats import sbv

        return sbv.parse(text, path, source_id)
    if kind == "srt":
        from retrieval.formats import srt

        return srt.parse(text, path, source_id)
    if kind == "markdown":
        return markdown.parse(text, path, source_id)
    if kind == "turns":
        return markdown.parse_turns(text, path, source_id)
    if Path(path).suffix.lower() in (".md", ".markdown"):
        text = markdown.plain_text(text)
    return plaintext.parse(text, path, source_id, speaker_tags)


def read_text(path: Path) -> str:
    """A transcript file's text, refused with a reason when too big, unreadable or not text."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise TranscriptError(str(path), 0, f"file is {size / (1024 * 1024):.0f} MB, more than the "
                                                f"{MAX_BYTES // (1024 * 1024)} MB a transcript can be")
        data = path.read_bytes()
    except OSError as e:
        raise TranscriptError(str(path), 0, f"cannot read: {e.strerror}") from None
    if not data.strip():
        raise TranscriptError(str(path), 1, "file is empty")
    return decode(data, str(path))


def parse_file(path: Path, source_id: str, speaker_tags: dict[str, str] | None = None) -> Transcript:
    """Read and parse one transcript file."""
    return parse_text(read_text(path), str(path), source_id, speaker_tags)
