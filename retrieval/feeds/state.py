"""The feeds followed and their fetch state: ``<corpus>/feeds/.feeds.json``.

It lives in the corpus folder, next to the transcripts it describes, because the two belong
together: an ETag only means "nothing new" while the episodes fetched with it are still on disk,
and a feed added from chat must survive a deleted index cache (the index folder is a cache; the
corpus folder is the data). The name starts with a dot so the corpus scan never takes it for a
transcript. Writes are atomic (a temporary file, then a rename) and read-modify-write cycles
hold a lock file, so the CLI and a running bot can both change it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

FEEDS_FOLDER = "feeds"
STATE_NAME = ".feeds.json"
VERSION = 1


@dataclass(slots=True)
class StoredEpisode:
    """An episode whose transcript is in the corpus folder."""

    file: str  # name inside the feed's folder
    title: str
    transcript_url: str
    kind: str


@dataclass(slots=True)
class LeftOut:
    """An episode whose transcripts could not be fetched or parsed; ``retry`` when the cause may pass."""

    title: str
    reason: str
    retry: bool = True
    attempts: int = 0
    links: str = ""  # the transcript URLs tried, space-separated (new links reset the attempts)


@dataclass(slots=True)
class FeedRecord:
    """One feed: where it is configured, where it is now, and how its last fetches went."""

    config_url: str  # as added or as written in corpus.toml (the feed's identity)
    url: str  # where it is fetched now (a permanent redirect changes it)
    origin: str = "added"  # "added" (CLI, console or chat) or "manifest" ([[feed]] in corpus.toml)
    name: str | None = None  # the name given when adding it, if any
    title: str = ""  # the podcast's name from the feed
    slug: str = ""  # its folder under feeds/
    etag: str | None = None
    last_modified: str | None = None
    last_fetch: float | None = None  # epoch seconds of the last attempt
    last_success: float | None = None
    last_status: str = ""  # "new episodes", "unchanged", "not modified", or the error
    errors: int = 0  # consecutive failed fetches
    last_error: str | None = None
    next_fetch: float = 0.0  # epoch seconds; 0: due now
    without_transcript: int = 0  # items of the last read that offer no transcript
    episodes: dict[str, StoredEpisode] = field(default_factory=dict)  # guid -> stored episode
    left_out: dict[str, LeftOut] = field(default_factory=dict)  # guid -> why it is not stored

    @property
    def display_name(self) -> str:
        return self.name or self.title or self.url

    @classmethod
    def from_json(cls, raw: dict) -> FeedRecord:
        raw = dict(raw)
        episodes = {g: StoredEpisode(**e) for g, e in raw.pop("episodes", {}).items()}
        left = {g: LeftOut(**e) for g, e in raw.pop("left_out", {}).items()}
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in known}, episodes=episodes, left_out=left)


class FeedState:
    """The state file of one corpus folder."""

    def __init__(self, corpus_dir: Path) -> None:
        self.folder = corpus_dir / FEEDS_FOLDER
        self.path = self.folder / STATE_NAME

    def load(self) -> dict[str, FeedRecord]:
        """Every feed record by config URL (empty when there is no state file yet)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise ValueError(f"{self.path}: feed state is unreadable ({e}); fix or delete the file") from None
        return {url: FeedRecord.from_json(r) for url, r in raw.get("feeds", {}).items()}

    def save(self, records: dict[str, FeedRecord]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"version": VERSION, "feeds": {url: asdict(r) for url, r in records.items()}}
        tmp = self.path.with_name(f"{STATE_NAME}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, FeedRecord]]:
        """The records, under an exclusive lock; saved when the block ends without an error."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".feeds.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                records = self.load()
                yield records
                self.save(records)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
