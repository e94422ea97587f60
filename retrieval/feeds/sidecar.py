"""The episode sidecar: ``<name>.episode.json`` beside a transcript downloaded from a feed.

It holds what the feed said about the episode (title, podcast, date, episode page, media URL),
so the corpus reader titles and links the transcript without the network. The link a card
gives is the episode's YouTube page when it has one, else its media file (``#t=N`` then starts
playback at the moment), else the episode page.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from retrieval.formats.errors import TranscriptError
from retrieval.formats.metadata import SourceMeta
from retrieval.links import youtube_id

EPISODE_SUFFIX = ".episode.json"
MAX_SIDECAR_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EpisodeMeta:
    """What a feed item says about one episode."""

    title: str
    podcast: str = ""
    date: str | None = None
    link: str | None = None  # the episode's web page
    media_url: str | None = None  # the enclosure (audio or video file)
    guid: str = ""
    feed_url: str = ""
    transcript_url: str = ""
    transcript_type: str = ""

    @property
    def source_url(self) -> str | None:
        """The URL a quote links to: YouTube page, else media file, else episode page."""
        if self.link and youtube_id(self.link):
            return self.link
        return self.media_url or self.link

    @property
    def display_title(self) -> str:
        """``Episode title — Podcast`` (the podcast left out when the title already names it)."""
        if self.podcast and self.podcast.casefold() not in self.title.casefold():
            return f"{self.title} — {self.podcast}"
        return self.title


def sidecar_for(transcript: Path) -> Path:
    """The sidecar path of a transcript file: ``ep.vtt`` -> ``ep.episode.json``."""
    return transcript.with_name(transcript.stem + EPISODE_SUFFIX)


def write_episode_json(path: Path, meta: EpisodeMeta) -> None:
    """Write the sidecar atomically (a hidden temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(meta), ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_episode(path: Path) -> EpisodeMeta:
    """Read a sidecar; raises TranscriptError naming the file for a broken one."""
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise TranscriptError(str(path), 0, "episode metadata file is larger than 1 MB")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise TranscriptError(str(path), 0, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise TranscriptError(str(path), 0, "episode metadata file is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise TranscriptError(str(path), e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("title"), str):
        raise TranscriptError(str(path), 1, "episode metadata must be a JSON object with a \"title\"")
    fields = EpisodeMeta.__dataclass_fields__
    return EpisodeMeta(**{k: v for k, v in data.items() if k in fields and (v is None or isinstance(v, str))})


def read_episode_json(path: Path) -> SourceMeta:
    """The sidecar as the corpus reader's metadata: title with the podcast's name, link, date, podcast."""
    meta = read_episode(path)
    url = meta.source_url
    if url and not url.lower().startswith(("http://", "https://")):
        url = None
    return SourceMeta(title=meta.display_title or None, url=url, date=meta.date, channel=meta.podcast or None)
