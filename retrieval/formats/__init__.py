"""Transcript formats: detect a file's format by extension and content, parse it to a Transcript."""

from __future__ import annotations

import json
import re
from pathlib import Path

from retrieval.formats import markdown, plaintext
from retrieval.formats.errors import TranscriptError
from retrieval.model import Transcript

__all__ = ["SUFFIXES", "TranscriptError", "decode", "parse_file", "parse_text"]

SUFFIXES = (".txt", ".md", ".markdown", ".vtt", ".srt", ".json")
_SRT_START = re.compile(r"^\s*(?:\d+\s*\n)?\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}\s*-->", re.M)


def decode(data: bytes, path: str) -> str:
    """UTF-8 (optionally with BOM) to text; an undecodable byte is reported by line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise TranscriptError(path, line, f"not UTF-8 text (byte 0x{data[e.start]:02x})") from None


def parse_text(text: str, path: str, source_id: str, speaker_tags: dict[str, str] | None = None) -> Transcript:
    """Parse ``text`` (the content of ``path``) with the parser its extension and content call for."""
    suffix = Path(path).suffix.lower()
    head = text.lstrip()[:200]
    if suffix == ".vtt" or head.startswith("WEBVTT"):
        from retrieval.formats import webvtt

        return webvtt.parse(text, path, source_id)
    if suffix == ".json" or head.startswith(("{", "[")):
        from retrieval.formats import jsonformats

        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise TranscriptError(path, e.lineno, f"invalid JSON: {e.msg}") from None
        return jsonformats.parse_data(data, text, path, source_id)
    if suffix == ".srt" or _SRT_START.match(text[:500]):
        from retrieval.formats import srt

        return srt.parse(text, path, source_id)
    if markdown.looks_like(text):
        return markdown.parse(text, path, source_id)
    return plaintext.parse(text, path, source_id, speaker_tags)


def parse_file(path: Path, source_id: str, speaker_tags: dict[str, str] | None = None) -> Transcript:
    """Read and parse one transcript file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TranscriptError(str(path), 0, f"cannot read: {e.strerror}") from None
    return parse_text(decode(data, str(path)), str(path), source_id, speaker_tags)
