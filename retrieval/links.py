"""Deep links to a moment: YouTube ``&t=Ns``, other media ``#t=N``, nothing when unknown."""

from __future__ import annotations

import functools
import math
import re
from urllib.parse import parse_qs, urlsplit

_YT_ID = re.compile(r"^[A-Za-z0-9_-]{6,20}$")


@functools.lru_cache(maxsize=4096)  # every hit's link asks again for its source's URL
def youtube_id(url: str | None) -> str | None:
    """The video id of a youtube.com/watch, youtu.be, /shorts/ or /embed/ URL."""
    if not url:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    vid = None
    if host == "youtu.be":
        vid = parts.path.strip("/").split("/")[0]
    elif host in ("youtube.com", "music.youtube.com", "youtube-nocookie.com"):
        if parts.path == "/watch":
            vid = (parse_qs(parts.query).get("v") or [None])[0]
        elif parts.path.startswith(("/shorts/", "/embed/", "/live/", "/v/")):
            vid = parts.path.split("/")[2]
    return vid if vid and _YT_ID.match(vid) else None


def normalize_url(url: str | None) -> str | None:
    """Canonical form for a source URL: YouTube links become ``youtube.com/watch?v=ID``."""
    if not url:
        return None
    url = url.strip()
    vid = youtube_id(url)
    if vid:
        return f"https://www.youtube.com/watch?v={vid}"
    if not re.match(r"^https?://", url, re.I):
        raise ValueError(f"url {url!r} is not an http(s) URL")
    return url


def moment_url(url: str | None, seconds: float | None) -> str | None:
    """A link that starts playback at ``seconds`` (floored: never after the words)."""
    if not url:
        return None
    if seconds is None:
        return url
    t = max(0, math.floor(seconds))
    vid = youtube_id(url)
    if vid:
        return f"https://www.youtube.com/watch?v={vid}&t={t}s"
    return f"{url.split('#', 1)[0]}#t={t}"


def thumbnail_url(url: str | None) -> str | None:
    """The video thumbnail for a YouTube source, else None."""
    vid = youtube_id(url)
    return f"https://i.ytimg.com/vi/{vid}/hqdefault.jpg" if vid else None
