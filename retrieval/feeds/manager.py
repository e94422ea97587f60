"""Following podcast feeds: add, list, remove, refresh.

A refresh fetches each due feed conditionally (ETag / Last-Modified). For every item that offers
a transcript it downloads the best one (JSON > VTT > SRT > HTML > text, falling back to the next
when one fails), checks that it parses, and stores it under ``<corpus>/feeds/<feed>/`` with an
``.episode.json`` sidecar. A feed that fails (HTTP error, timeout, malformed XML) changes nothing:
its stored episodes stay, the error is recorded and the feed is retried later with backoff.
An episode whose transcripts all fail is listed as left out; the others are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
import time
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from retrieval.feeds.http import Fetched, Fetcher, FetchError, HttpOptions
from retrieval.feeds.parse import Episode, FeedError, ParsedFeed, TranscriptLink, parse_feed
from retrieval.feeds.sidecar import EpisodeMeta, read_episode, sidecar_for, write_episode_json
from retrieval.feeds.state import FEEDS_FOLDER, FeedRecord, FeedState, LeftOut, StoredEpisode
from retrieval.formats import TranscriptError, decode, parse_text

log = logging.getLogger(__name__)

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
EXTENSIONS = {"json": ".json", "vtt": ".vtt", "srt": ".srt", "html": ".html", "txt": ".txt"}
MAX_BACKOFF = 24 * 3600.0
MAX_ATTEMPTS = 5  # downloads of one left-out episode before it waits for its links to change
GONE = (404, 410)


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """How feeds are fetched: ``refresh_minutes`` between fetches of one feed, and the HTTP limits."""

    refresh_minutes: float = 60.0
    http: HttpOptions = field(default_factory=HttpOptions)

    @property
    def interval(self) -> float:
        return self.refresh_minutes * 60.0


@dataclass(slots=True)
class FeedReport:
    """What one fetch of one feed did, for the user."""

    name: str
    url: str
    status: str  # "new", "unchanged", "not modified", "error", "already followed"
    new: list[str] = field(default_factory=list)  # titles of episodes stored for the first time
    updated: list[str] = field(default_factory=list)  # titles whose transcript was replaced
    left_out: list[str] = field(default_factory=list)  # "title: reason"
    error: str | None = None
    moved_to: str | None = None
    warning: str | None = None
    stored: int = 0  # episodes stored for this feed after the fetch

    @property
    def changed(self) -> bool:
        """Whether files in the corpus folder changed (the index then needs a refresh)."""
        return bool(self.new or self.updated)

    def summary(self) -> str:
        """One or more lines in plain words."""
        head = f"{self.name} ({self.url})"
        if self.status == "error":
            kept = f"; its {self.stored} stored episode(s) stay searchable" if self.stored else ""
            lines = [f"{head}: {self.error}{kept}"]
        elif self.status == "already followed":
            lines = [f"{head}: already followed"]
        elif self.status == "not modified":
            lines = [f"{head}: not modified since the last fetch (HTTP 304)"]
        else:
            parts = []
            if self.new:
                parts.append(f"{len(self.new)} new episode(s)")
            if self.updated:
                parts.append(f"{len(self.updated)} updated")
            parts.append(f"{self.stored} stored in all")
            lines = [f"{head}: " + ", ".join(parts)]
            lines += [f"  new: {t}" for t in self.new]
        if self.moved_to:
            lines.append(f"  moved permanently to {self.moved_to} (the stored address was updated)")
        if self.warning:
            lines.append(f"  warning: {self.warning}")
        lines += [f"  left out: {x}" for x in self.left_out]
        return "\n".join(lines)


class FeedNotFound(LookupError):
    """No followed feed has that URL or name."""


class FeedManager:
    """The feeds of one corpus folder: those added (CLI, console, chat) and ``[[feed]]`` in ``corpus.toml``."""

    def __init__(self, corpus_dir: Path, manifest_path: Path | None, options: FeedOptions | None = None,
                 clock=time.time) -> None:
        self.corpus_dir = corpus_dir
        self.manifest_path = manifest_path
        self.options = options or FeedOptions()
        self.state = FeedState(corpus_dir)
        self.clock = clock

    @property
    def feeds_dir(self) -> Path:
        return self.corpus_dir / FEEDS_FOLDER

    # --- the list of feeds ----------------------------------------------------------

    def configured(self) -> list[tuple[str, str | None]]:
        """``(url, name)`` of every ``[[feed]]`` in the manifest (none when it is missing or broken)."""
        from retrieval.corpus import read_manifest

        try:
            manifest = read_manifest(self.manifest_path)
        except TranscriptError as e:
            log.error("feeds in the manifest not read: %s", e)
            return []
        return [(f.url, f.name) for f in manifest.feeds]

    def records(self) -> dict[str, FeedRecord]:
        """Every followed feed by config URL: the state file's, plus manifest feeds never fetched yet."""
        records = self.state.load()
        for url, name in self.configured():
            rec = records.get(url)
            if rec is None:
                records[url] = FeedRecord(config_url=url, url=url, origin="manifest", name=name)
            elif rec.origin == "manifest":
                rec.name = name
        return records

    def find(self, key: str, records: dict[str, FeedRecord] | None = None) -> FeedRecord:
        """The feed named by URL (configured or current), slug, given name or podcast title."""
        records = self.records() if records is None else records
        key = key.strip()
        for rec in records.values():
            if key in (rec.config_url, rec.url):
                return rec
        folded = key.casefold()
        for rec in records.values():
            if folded in (rec.slug.casefold(), (rec.name or "").casefold(), rec.title.casefold()):
                return rec
        raise FeedNotFound(f"no followed feed is called {key!r} (see `feed list`)")

    # --- add and remove -----------------------------------------------------------------

    async def add(self, url: str, name: str | None = None) -> FeedReport:
        """Follow a feed: fetch it now and store its episodes. A feed that cannot be read is not added
        (raises FeedError with the reason); one already followed is reported as such."""
        url = check_url(url)
        records = self.records()
        for rec in records.values():
            if url in (rec.config_url, rec.url):
                return FeedReport(rec.display_name, rec.url, "already followed", stored=len(rec.episodes))
        rec = FeedRecord(config_url=url, url=url, origin="added", name=(name or "").strip() or None)
        async with Fetcher(self.options.http) as fetcher:
            report = await self._refresh_one(rec, fetcher, records, self.clock())
        if report.status == "error":
            self._discard(rec)
            raise FeedError(f"{url}: {report.error}; the feed was not added")
        with self.state.locked() as current:
            current[rec.config_url] = rec
        return report

    def remove(self, key: str, keep_episodes: bool = False) -> tuple[FeedRecord, int]:
        """Stop following a feed added with ``feed add``; its episodes are deleted unless ``keep_episodes``.

        Returns the record and how many episode files were deleted. Raises FeedNotFound, or
        ValueError for a feed configured in ``corpus.toml`` (removed by deleting its entry there).
        """
        with self.state.locked() as records:
            merged = self.records()
            rec = self.find(key, merged)
            if rec.origin == "manifest" and any(rec.config_url == u for u, _ in self.configured()):
                raise ValueError(f"{rec.display_name} is a [[feed]] in {self.manifest_path}; delete its entry there "
                                 "to stop following it")
            records.pop(rec.config_url, None)
            deleted = 0 if keep_episodes else self._discard(rec)
        return rec, deleted

    def _discard(self, rec: FeedRecord) -> int:
        """Delete a feed's folder; the number of transcripts that were in it."""
        if not rec.slug:
            return 0
        folder = self.feeds_dir / rec.slug
        count = sum(1 for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")
                    and not p.name.endswith(".episode.json")) if folder.is_dir() else 0
        shutil.rmtree(folder, ignore_errors=True)
        return count

    # --- refresh --------------------------------------------------------------------------

    def due(self, now: float | None = None) -> list[FeedRecord]:
        """Feeds whose next fetch time has come."""
        now = self.clock() if now is None else now
        return [r for r in self.records().values() if r.next_fetch <= now]

    def next_due(self) -> float | None:
        """Epoch seconds of the earliest next fetch, None when no feed is followed."""
        times = [r.next_fetch for r in self.records().values()]
        return min(times) if times else None

    async def refresh(self, *, force: bool = False, only: str | None = None) -> list[FeedReport]:
        """Fetch the feeds that are due (every one with ``force``, or just ``only``); one report each."""
        records = self.records()
        now = self.clock()
        if only is not None:
            chosen = [self.find(only, records)]
        else:
            chosen = [r for r in records.values() if force or r.next_fetch <= now]
        if not chosen:
            return []
        reports = []
        async with Fetcher(self.options.http) as fetcher:
            for rec in chosen:
                report = await self._refresh_one(rec, fetcher, records, self.clock())
                self._save(rec)
                _log(report)
                reports.append(report)
        return reports

    def _save(self, rec: FeedRecord) -> None:
        with self.state.locked() as current:
            if rec.config_url in current or rec.origin == "manifest":
                current[rec.config_url] = rec

    async def _refresh_one(self, rec: FeedRecord, fetcher: Fetcher, records: dict[str, FeedRecord],
                           now: float) -> FeedReport:
        rec.last_fetch = now
        retrying = any(x.retry for x in rec.left_out.values())
        try:
            got = await fetcher.get(rec.url, etag=None if retrying else rec.etag,
                                    last_modified=None if retrying else rec.last_modified, accept=FEED_ACCEPT)
        except FetchError as e:
            return self._failed(rec, str(e), now, e.retry_after, gone=e.status in GONE)
        moved = None
        if got.moved_to and got.moved_to != rec.url:
            moved = rec.url = got.moved_to
        if got.status == 304:
            self._succeeded(rec, now, "not modified")
            return FeedReport(rec.display_name, rec.url, "not modified", moved_to=moved, stored=len(rec.episodes))
        try:  # on a thread: a large feed takes a while to parse, and a running bot keeps answering
            parsed = await asyncio.to_thread(parse_feed, got.body or b"", got.url, got.content_type)
        except FeedError as e:
            return self._failed(rec, str(e), now, None)
        report = await self._store(rec, parsed, fetcher, records)
        report.moved_to = moved
        rec.etag, rec.last_modified = got.etag, got.last_modified
        self._succeeded(rec, now, "new episodes" if report.changed else "unchanged")
        report.status = "new" if report.changed else "unchanged"
        return report

    def _succeeded(self, rec: FeedRecord, now: float, status: str) -> None:
        rec.errors, rec.last_error, rec.last_success, rec.last_status = 0, None, now, status
        rec.next_fetch = now + self.options.interval

    def _failed(self, rec: FeedRecord, message: str, now: float, retry_after: float | None,
                gone: bool = False) -> FeedReport:
        rec.errors += 1
        rec.last_error = rec.last_status = message
        delay = min(self.options.interval * 2 ** (rec.errors - 1), MAX_BACKOFF)
        rec.next_fetch = now + max(delay, retry_after or 0.0)
        if gone:
            message += " (the feed may have moved or been taken down)"
        return FeedReport(rec.display_name, rec.url, "error", error=message, stored=len(rec.episodes))

    # --- storing episodes -------------------------------------------------------------------

    async def _store(self, rec: FeedRecord, parsed: ParsedFeed, fetcher: Fetcher,
                     records: dict[str, FeedRecord]) -> FeedReport:
        rec.title = parsed.title or rec.title
        if not rec.slug:
            rec.slug = self._new_slug(rec, parsed, records)
        folder = self.feeds_dir / rec.slug
        report = FeedReport(rec.display_name, rec.url, "unchanged", warning=parsed.warning)
        rec.without_transcript = 0
        for ep in parsed.episodes:
            if not ep.transcripts:
                rec.without_transcript += 1
                continue
            meta = self._meta(rec, ep)
            stored = rec.episodes.get(ep.guid)
            if stored is not None and (folder / stored.file).is_file():
                offered = [t.url for t in ep.transcripts]
                better = offered[: offered.index(stored.transcript_url)] if stored.transcript_url in offered \
                    else offered
                if not better:
                    self._update_sidecar(folder / stored.file, meta, stored)
                    continue
                candidates = [t for t in ep.transcripts if t.url in better]
            else:
                stored = None
                candidates = list(ep.transcripts)
            left = rec.left_out.get(ep.guid)
            if left is not None and stored is None:
                links = " ".join(t.url for t in candidates)
                if left.links != links:
                    left.attempts = 0
                elif left.attempts >= MAX_ATTEMPTS:
                    report.left_out.append(f"{ep.title}: {left.reason}")
                    continue
            result = await self._download(candidates, folder, rec, ep, fetcher)
            if isinstance(result[0], TranscriptLink):
                link, data = result
                self._write(folder, rec, ep, meta, link, data, stored)
                rec.left_out.pop(ep.guid, None)
                (report.updated if stored is not None else report.new).append(ep.title)
            elif stored is None:
                reason, retry = result
                prev = rec.left_out.get(ep.guid)
                links = " ".join(t.url for t in candidates)
                attempts = (prev.attempts if prev is not None and prev.links == links else 0) + 1
                rec.left_out[ep.guid] = LeftOut(ep.title, reason, retry and attempts < MAX_ATTEMPTS, attempts, links)
                report.left_out.append(f"{ep.title}: {reason}")
        report.stored = len(rec.episodes)
        return report

    async def _download(self, candidates: list[TranscriptLink], folder: Path, rec: FeedRecord, ep: Episode,
                        fetcher: Fetcher) -> tuple[TranscriptLink, bytes] | tuple[str, bool]:
        """The first candidate that downloads and parses: ``(link, bytes)``; else ``(reasons, retry)``."""
        reasons: list[str] = []
        retry = False
        for link in candidates:
            try:
                got = await fetcher.get(link.url)
            except FetchError as e:
                reasons.append(f"{link.kind.upper()} transcript {link.url}: {e}")
                retry = retry or e.status is None or e.status >= 500 or e.status == 429
                continue
            data = _as_utf8(got)
            try:
                await asyncio.to_thread(_check, data, link, folder)
            except TranscriptError as e:
                reasons.append(f"{link.kind.upper()} transcript {TranscriptError(link.url, e.line, e.reason)}")
                continue
            return link, data
        return "; ".join(reasons), retry

    def _write(self, folder: Path, rec: FeedRecord, ep: Episode, meta: EpisodeMeta, link: TranscriptLink,
               data: bytes, stored: StoredEpisode | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stem = Path(stored.file).stem if stored is not None else self._episode_stem(rec, ep, folder)
        name = stem + EXTENSIONS[link.kind]
        path = folder / name
        meta = _with_link(meta, link)
        # the sidecar first: a scan that sees the transcript always sees its metadata too
        write_episode_json(sidecar_for(path), meta)
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        if stored is not None and stored.file != name:
            with contextlib.suppress(FileNotFoundError):
                (folder / stored.file).unlink()
        rec.episodes[ep.guid] = StoredEpisode(name, ep.title, link.url, link.kind)

    def _update_sidecar(self, path: Path, meta: EpisodeMeta, stored: StoredEpisode) -> None:
        """Rewrite an episode's sidecar when the feed changed its title, date or links."""
        side = sidecar_for(path)
        new = _with_link(meta, TranscriptLink(stored.transcript_url, stored.kind))
        try:
            old = read_episode(side)
        except TranscriptError:
            old = None
        if old is None or (old.title, old.podcast, old.date, old.link, old.media_url) != \
                (new.title, new.podcast, new.date, new.link, new.media_url):
            write_episode_json(side, _with_link(new, TranscriptLink(stored.transcript_url, old.transcript_type
                                                                     if old else stored.kind)))
            stored.title = new.title

    def _meta(self, rec: FeedRecord, ep: Episode) -> EpisodeMeta:
        return EpisodeMeta(title=ep.title, podcast=rec.name or rec.title, date=ep.date, link=ep.link,
                           media_url=ep.media_url, guid=ep.guid, feed_url=rec.url)

    # --- names ------------------------------------------------------------------------------

    def _new_slug(self, rec: FeedRecord, parsed: ParsedFeed, records: dict[str, FeedRecord]) -> str:
        base = slugify(rec.name or parsed.title, 24) or slugify(urlsplit(rec.url).netloc, 24) or "feed"
        taken = {r.slug for r in records.values() if r is not rec}
        slug, n = base, 2
        while slug in taken or (self.feeds_dir / slug).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug

    def _episode_stem(self, rec: FeedRecord, ep: Episode, folder: Path) -> str:
        digest = hashlib.sha1(ep.guid.encode()).hexdigest()[:6]
        stem = f"{slugify(ep.title, 32) or 'episode'}-{digest}"
        taken = {Path(e.file).stem for e in rec.episodes.values()}
        n = 2
        candidate = stem
        while candidate in taken:
            candidate, n = f"{stem}-{n}", n + 1
        return candidate


def _check(data: bytes, link: TranscriptLink, folder: Path) -> None:
    """Parse a downloaded transcript under the name it will be stored with (its extension picks the parser)."""
    parse_text(decode(data, link.url), str(folder / f"check{EXTENSIONS[link.kind]}"), "feed-check")


def _with_link(meta: EpisodeMeta, link: TranscriptLink) -> EpisodeMeta:
    return replace(meta, transcript_url=link.url, transcript_type=link.type or link.kind)


def _as_utf8(got: Fetched) -> bytes:
    """The body, re-encoded as UTF-8 when the server names another charset that decodes it."""
    data = got.body or b""
    m = re.search(r"charset=\"?([\w.:-]+)", got.content_type or "", re.I)
    if not m or m.group(1).lower().replace("_", "-") in ("utf-8", "utf8"):
        return data
    try:
        return data.decode(m.group(1)).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return data


def check_url(url: str) -> str:
    """An http(s) feed URL with a host, stripped; raises FeedError naming the problem."""
    url = url.strip().strip("<>")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise FeedError(f"{url!r} is not an http(s) URL; give the feed's address, e.g. https://example.com/feed.xml")
    return url


def slugify(text: str, limit: int = 40) -> str:
    """``"Episode 12: Rockets!"`` -> ``"episode-12-rockets"`` (ASCII letters and digits, at most ``limit``)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].rstrip("-")


def _log(report: FeedReport) -> None:
    if report.status == "error":
        log.error("feed %s", report.summary())
    elif report.left_out or report.warning:
        log.warning("feed %s", report.summary())
    elif report.changed:
        log.info("feed %s", report.summary())
    else:
        log.debug("feed %s", report.summary())
