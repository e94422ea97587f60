"""Feed bytes -> the podcast's name and its episodes, each with its transcript links, best first.

feedparser reads titles, dates, links and enclosures of RSS and Atom feeds. It keeps only the last
``<podcast:transcript>`` of an item, so transcript links are read from the XML itself (by
namespace, whatever prefix the feed uses) and matched to feedparser's entries by guid, then by
position. When the XML is not well formed but feedparser still recovered entries, its one link
per item is used.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import feedparser

# Podcasting 2.0 namespace URIs seen in feeds (the spec's, and the repository link some hosts use).
_PODCAST_NS = ("podcastindex.org/namespace", "podcast-namespace")
# Transcript kinds, best first: word or segment timed JSON, WebVTT, SRT, HTML, plain text.
KINDS = ("json", "vtt", "srt", "html", "txt")
_TYPES = {
    "application/json": "json", "application/x-json": "json", "text/json": "json",
    "text/vtt": "vtt", "text/webvtt": "vtt", "application/vtt": "vtt",
    "application/srt": "srt", "application/x-subrip": "srt", "text/srt": "srt", "application/x-srt": "srt",
    "text/x-srt": "srt", "text/x-subrip": "srt",
    "text/html": "html", "application/xhtml+xml": "html",
    "text/plain": "txt",
}
_EXTENSIONS = {".json": "json", ".vtt": "vtt", ".srt": "srt", ".html": "html", ".htm": "html", ".txt": "txt"}


# What feedparser flags about a feed it read fine: a charset or content type that the XML itself overrides.
_BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


class FeedError(Exception):
    """A feed that cannot be read; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class TranscriptLink:
    url: str
    kind: str  # one of KINDS
    type: str = ""  # the MIME type the feed gave
    language: str = ""


@dataclass(frozen=True, slots=True)
class Episode:
    """One feed item."""

    guid: str
    title: str
    date: str | None = None
    link: str | None = None
    media_url: str | None = None
    transcripts: tuple[TranscriptLink, ...] = ()  # best first


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    link: str | None
    episodes: list[Episode]
    warning: str | None = None  # feedparser's complaint about a feed it could still read


def transcript_kind(mime: str, url: str) -> str | None:
    """Which of KINDS a transcript link is, by its MIME type, else by the URL's extension."""
    base = mime.split(";", 1)[0].strip().lower()
    if base in _TYPES:
        return _TYPES[base]
    if base.endswith("+json"):
        return "json"
    path = urlsplit(url).path.lower()
    for ext, kind in _EXTENSIONS.items():
        if path.endswith(ext):
            return kind
    return None


def best_first(links: list[TranscriptLink]) -> tuple[TranscriptLink, ...]:
    """Links ordered by KINDS (stable within a kind); duplicates dropped."""
    seen: set[str] = set()
    out = []
    for link in sorted(links, key=lambda x: KINDS.index(x.kind)):
        if link.url not in seen:
            seen.add(link.url)
            out.append(link)
    return tuple(out)


def parse_feed(data: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """Parse a feed document fetched from ``url``; raises FeedError when it holds no feed at all."""
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(data, response_headers=headers)
    entries = parsed.entries
    warning = None
    if parsed.bozo and not isinstance(parsed.get("bozo_exception"), _BENIGN):
        reason = _reason(parsed.get("bozo_exception"))
        if not entries:
            raise FeedError(f"not a readable feed: malformed XML ({reason})")
        warning = f"the feed's XML is not well formed ({reason}); read what could be recovered"
    if not entries and not parsed.feed.get("title") and parsed.get("version", "") == "":
        raise FeedError("not an RSS or Atom feed (no channel, no items)")
    links = _transcript_links(data, url)
    episodes = []
    for i, e in enumerate(entries):
        guid = str(e.get("id") or e.get("link") or _media(e) or e.get("title") or f"item-{i}").strip()
        found = links.get(("guid", guid))
        if found is None:
            found = links.get(("pos", i), [])
            if not found and isinstance(e.get("podcast_transcript"), dict):
                found = _one_link(e["podcast_transcript"], url)
        episodes.append(Episode(
            guid=guid,
            title=" ".join(str(e.get("title") or "").split()) or f"Episode {len(entries) - i}",
            date=_date(e),
            link=_http(urljoin(url, e["link"])) if e.get("link") else None,
            media_url=_media(e),
            transcripts=best_first(found),
        ))
    title = " ".join(str(parsed.feed.get("title") or "").split())
    link = parsed.feed.get("link")
    return ParsedFeed(title=title, link=_http(link) if link else None, episodes=episodes, warning=warning)


def _reason(exc) -> str:
    text = " ".join(str(exc or "unknown error").split())
    return text[:200]


def _http(url: str | None) -> str | None:
    return url if url and url.lower().startswith(("http://", "https://")) else None


def _media(e) -> str | None:
    """The item's enclosure: the first audio or video one, else the first at all."""
    enclosures = [x for x in e.get("enclosures", []) if x.get("href")]
    for x in enclosures:
        if str(x.get("type", "")).startswith(("audio/", "video/")):
            return _http(x["href"])
    return _http(enclosures[0]["href"]) if enclosures else None


def _date(e) -> str | None:
    for key in ("published_parsed", "updated_parsed"):
        value = e.get(key)
        if value:
            return time.strftime("%Y-%m-%d", value)
    return None


def _one_link(attrs: dict, base: str) -> list[TranscriptLink]:
    href = attrs.get("url")
    if not href:
        return []
    full = urljoin(base, href)
    kind = transcript_kind(attrs.get("type", ""), full)
    if kind is None or not _http(full):
        return []
    return [TranscriptLink(full, kind, attrs.get("type", ""), attrs.get("language", ""))]


def _transcript_links(data: bytes, base: str) -> dict[tuple[str, object], list[TranscriptLink]]:
    """``("guid", g)`` and ``("pos", i)`` -> the item's transcript links, read from the XML."""
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError):
        return {}
    out: dict[tuple[str, object], list[TranscriptLink]] = {}
    items = [el for el in root.iter() if _local(el.tag) in ("item", "entry")]
    for i, item in enumerate(items):
        links: list[TranscriptLink] = []
        guid = None
        for child in item:
            name = _local(child.tag)
            if name == "transcript" and _is_podcast_ns(child.tag):
                links += _one_link(dict(child.attrib), base)
            elif name in ("guid", "id") and child.text and guid is None:
                guid = child.text.strip()
        out[("pos", i)] = links
        if guid:
            out[("guid", guid)] = links
    return out


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _is_podcast_ns(tag: str) -> bool:
    return tag.startswith("{") and any(ns in tag for ns in _PODCAST_NS)
