"""The ``feed`` command (``add URL [name]``, ``list``, ``remove URL-or-name``, ``refresh``) for the console,
chat admins and the command line, over ``retrieval.feeds``.

Following a feed changes what everyone searches, so the core accepts it only from the console and
from a platform's admin command (each platform checks its own admin permission first).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from config.settings import Settings
from retrieval.feeds.http import HttpOptions
from retrieval.feeds.manager import FeedManager, FeedNotFound, FeedOptions, FeedReport
from retrieval.feeds.parse import FeedError
from retrieval.feeds.state import FeedRecord

log = logging.getLogger(__name__)

USAGE = """Podcast feeds (episodes with transcripts are downloaded and indexed):
  feed add URL [name]        follow a feed (fetched now, then every refresh period)
  feed list                  the feeds followed, their episodes and last fetch
  feed remove URL-or-name    stop following a feed and drop its episodes
  feed refresh [URL-or-name] fetch now instead of waiting"""


def feed_options(settings: Settings) -> FeedOptions:
    """Feed fetching as the settings configure it."""
    return FeedOptions(
        refresh_minutes=settings.feed_refresh_minutes,
        http=HttpOptions(timeout_seconds=settings.feed_timeout_seconds,
                         max_bytes=int(settings.feed_max_mb * 1024 * 1024)),
    )


def feed_manager(settings: Settings) -> FeedManager:
    """The feeds of the configured corpus folder."""
    return FeedManager(settings.corpus_dir, settings.manifest_path, feed_options(settings))


def list_text(manager: FeedManager, now: float | None = None) -> str:
    """Every followed feed, with where it comes from, its episodes and how its last fetch went."""
    records = manager.records()
    if not records:
        return "No podcast feeds are followed. Add one with: feed add https://example.com/feed.xml"
    lines = []
    for rec in sorted(records.values(), key=lambda r: r.display_name.casefold()):
        lines.append(_describe(rec, manager))
    return "\n".join(lines)


def _describe(rec: FeedRecord, manager: FeedManager) -> str:
    origin = "corpus.toml" if rec.origin == "manifest" else "added"
    head = f"• {rec.display_name} — {rec.url} ({origin})"
    out = [head]
    if rec.url != rec.config_url:
        out.append(f"  moved permanently from {rec.config_url}" +
                   ("; update its [[feed]] url in corpus.toml" if rec.origin == "manifest" else ""))
    where = manager.feeds_dir / rec.slug if rec.slug else None
    stored = f"{len(rec.episodes)} episode(s) stored" + (f" in {where}" if where else "")
    if rec.without_transcript:
        stored += f"; {rec.without_transcript} item(s) offer no transcript"
    out.append(f"  {stored}")
    if rec.last_fetch is None:
        out.append("  not fetched yet")
    else:
        out.append(f"  last fetch {_when(rec.last_fetch)}: {rec.last_status or 'ok'}")
    if rec.errors:
        out.append(f"  {rec.errors} failed fetch(es) in a row; next try {_when(rec.next_fetch)}")
    out += [f"  left out: {x.title}: {x.reason}" for x in rec.left_out.values()]
    return "\n".join(out)


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


class FeedCommands:
    """Runs ``feed …`` commands and answers in plain text; ``after_change`` re-indexes (a running bot)."""

    def __init__(self, manager: FeedManager,
                 after_change: Callable[[list[FeedReport]], Awaitable[None]] | None = None) -> None:
        self.manager = manager
        self.after_change = after_change

    async def handle(self, arg: str) -> str:
        """The answer to ``feed ARG``; never raises for bad input."""
        verb, _, rest = " ".join(arg.split()).partition(" ")
        verb = verb.lower()
        try:
            if verb == "add" and rest:
                url, _, name = rest.partition(" ")
                report = await self.manager.add(url, name or None)
                return await self._changed([report], "Following " if report.status != "already followed" else "")
            if verb in ("list", "ls", ""):
                return list_text(self.manager) if verb else USAGE + "\n\n" + list_text(self.manager)
            if verb in ("remove", "rm", "delete") and rest:
                rec, deleted = self.manager.remove(rest)
                text = f"Stopped following {rec.display_name} ({rec.url}); {deleted} episode(s) removed."
                await self._changed([], "")
                return text
            if verb == "refresh":
                reports = await self.manager.refresh(force=True, only=rest or None)
                if not reports:
                    return "No podcast feeds are followed."
                return await self._changed(reports, "")
        except (FeedError, FeedNotFound, ValueError) as e:
            return str(e)
        return USAGE

    async def _changed(self, reports: list[FeedReport], prefix: str) -> str:
        text = prefix + "\n".join(r.summary() for r in reports)
        if self.after_change is not None and (any(r.changed for r in reports) or not reports):
            await self.after_change(reports)
            if any(r.changed for r in reports):
                text += "\nThe new episodes are indexed and searchable now."
        return text
