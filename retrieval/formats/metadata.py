"""What sits beside a transcript: yt-dlp ``.info.json`` sidecars and the file name itself.

yt-dlp names subtitles ``<name>.<lang>.<ext>`` next to ``<name>.info.json``; its default
``<name>`` is ``Title [VIDEO_ID]`` (older youtube-dl: ``Title-VIDEO_ID``), and ``-o '%(id)s'``
gives a bare ``VIDEO_ID``. A YouTube id is 11 characters of ``A-Z a-z 0-9 _ -``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from retrieval.formats.errors import TranscriptError

INFO_SUFFIX = ".info.json"
# Bigger info files are not yt-dlp metadata (theirs are a few hundred kB with all formats listed).
MAX_INFO_BYTES = 8 * 1024 * 1024
# ".en", ".en-US", ".en-orig", ".pt-BR", ".zh-Hans", ".live_chat": yt-dlp's language part.
_LANG = re.compile(r"\.(?:[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*|live_chat)$")
_VIDEO_ID = r"[A-Za-z0-9_-]{11}"
_BRACKET_ID = re.compile(rf"^(?P<title>.*?)\s*\[(?P<id>{_VIDEO_ID})\]$")
_DASH_ID = re.compile(rf"^(?P<title>.+?)-(?P<id>{_VIDEO_ID})$")


@dataclass(frozen=True, slots=True)
class SourceMeta:
    """Metadata found for a transcript outside its own text; None/empty where unknown."""

    title: str | None = None
    url: str | None = None
    date: str | None = None
    channel: str | None = None
    chapters: tuple[tuple[float, str], ...] = ()
    video_id: str | None = None


def media_stem(name: str) -> str:
    """A transcript's file name without extension and yt-dlp language part: ``a [x].en.vtt`` -> ``a [x]``."""
    stem = name[: -len(INFO_SUFFIX)] if name.endswith(INFO_SUFFIX) else Path(name).stem
    return _LANG.sub("", stem)


def looks_like_video_id(text: str) -> bool:
    """An 11-character YouTube id, not an ordinary word (ids mix in digits or inner capitals)."""
    return bool(re.fullmatch(_VIDEO_ID, text)) and bool(re.search(r"[0-9]|.[A-Z]", text))


def from_name(name: str) -> SourceMeta:
    """Title and YouTube video id that a file name carries (yt-dlp naming), cleaned for reading."""
    stem = media_stem(name)
    video_id = None
    m = _BRACKET_ID.match(stem)
    if m:
        stem, video_id = m["title"], m["id"]
    elif looks_like_video_id(stem):
        video_id = stem  # the id is all there is to call it by
    else:
        m = _DASH_ID.match(stem)
        if m and looks_like_video_id(m["id"]):
            stem, video_id = m["title"], m["id"]
    title = readable_title(stem) or None
    url = f"https://www.youtube.com/watch?v={video_id}" if video_id else None
    return SourceMeta(title=title, url=url, video_id=video_id)


def readable_title(stem: str) -> str:
    """A file stem as a title: ``_``/``-`` runs become spaces; yt-dlp's full-width stand-ins become ASCII."""
    stem = stem.translate(_FULLWIDTH)
    return " ".join(re.sub(r"[_-]+", " ", stem).split())


# yt-dlp replaces characters that file systems reject with these look-alikes.
_FULLWIDTH = str.maketrans({"：": ":", "？": "?", "＂": '"', "｜": "|", "＊": "*", "⧸": "/", "⧹": "\\"})


def read_info_json(path: Path) -> SourceMeta:
    """Title, link, date, channel and chapters from a yt-dlp ``.info.json``; raises TranscriptError."""
    try:
        size = path.stat().st_size
        if size > MAX_INFO_BYTES:
            raise TranscriptError(str(path), 0, f"metadata file is {size // (1024 * 1024)} MB, more than "
                                                f"{MAX_INFO_BYTES // (1024 * 1024)} MB")
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as e:
        raise TranscriptError(str(path), 0, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise TranscriptError(str(path), 0, "metadata file is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise TranscriptError(str(path), e.lineno, f"invalid JSON: {e.msg}") from None
    except RecursionError:
        raise TranscriptError(str(path), 0, "JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise TranscriptError(str(path), 1, "yt-dlp metadata must be a JSON object")
    title = _text(data.get("title")) or _text(data.get("fulltitle"))
    url = _text(data.get("webpage_url"))
    if url and not re.match(r"^https?://", url, re.I):
        url = None
    date = _text(data.get("upload_date")) or _text(data.get("release_date"))
    if date and re.fullmatch(r"\d{8}", date):
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    channel = _text(data.get("uploader")) or _text(data.get("channel"))
    video_id = _text(data.get("id"))
    if not url and video_id and looks_like_video_id(video_id) and data.get("extractor_key", "Youtube") == "Youtube":
        url = f"https://www.youtube.com/watch?v={video_id}"
    return SourceMeta(title, url, date, channel, _chapters(data.get("chapters")), video_id)


def _chapters(raw) -> tuple[tuple[float, str], ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for ch in raw:
        if not isinstance(ch, dict):
            continue
        start, title = ch.get("start_time"), _text(ch.get("title"))
        if isinstance(start, int | float) and not isinstance(start, bool) and math.isfinite(start) and title:
            out.append((float(max(0.0, start)), title))
    return tuple(sorted(out))


def _text(value) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None
