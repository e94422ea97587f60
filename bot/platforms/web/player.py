"""Where a quote can be played from its moment: a YouTube embed (``start=N``) or an HTML5 ``<audio>``/``<video>``
element (``#t=N``). Nothing here is loaded by the page until the reader asks for it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from bot.reply import QuoteCard
from retrieval.links import youtube_id

YOUTUBE_EMBED = "https://www.youtube-nocookie.com"
AUDIO = (".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac")
VIDEO = (".mp4", ".m4v", ".webm", ".ogv", ".mov")
_SECONDS = re.compile(r"^(\d+)s?$")


@dataclass(frozen=True, slots=True)
class Player:
    """``kind`` is ``"youtube"``, ``"audio"`` or ``"video"``; ``src`` the embed or media URL, starting at
    ``start`` seconds; ``origin`` the scheme and host it loads from (for the Content-Security-Policy)."""

    kind: str
    src: str
    start: int
    origin: str


def start_seconds(url: str | None) -> int | None:
    """The moment a deep link starts at: YouTube's ``t=123s`` or a media fragment's ``#t=123``; None without one."""
    if not url:
        return None
    parts = urlsplit(url)
    values = parse_qs(parts.query).get("t", []) + parse_qs(parts.fragment).get("t", [])
    for value in values:
        m = _SECONDS.match(value.strip())
        if m:
            return int(m.group(1))
    return None


def player_for(card: QuoteCard) -> Player | None:
    """The player for ``card``'s source, or None when its link is not a YouTube video or a media file."""
    if not card.url or urlsplit(card.url).scheme.lower() not in ("http", "https"):
        return None
    start = start_seconds(card.url) or 0
    vid = youtube_id(card.url)
    if vid:
        src = f"{YOUTUBE_EMBED}/embed/{vid}?start={start}&autoplay=1"
        return Player("youtube", src, start, YOUTUBE_EMBED)
    parts = urlsplit(card.url)
    path = parts.path.lower()
    kind = "audio" if path.endswith(AUDIO) else "video" if path.endswith(VIDEO) else None
    if kind is None:
        return None
    media = card.url.split("#", 1)[0] + f"#t={start}"
    return Player(kind, media, start, f"{parts.scheme.lower()}://{parts.netloc.lower()}")
