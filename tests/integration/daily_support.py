"""Shared pieces for the daily-post tests: databases on both backends, a controllable clock, a stand-in quote pool
and recording posters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.reply import Reply
from bot.store import open_store
from retrieval.model import Hit, Passage, SourceInfo

BACKENDS = ["sqlite", "postgresql"]

# Real sentences from the bundled Lex Fridman transcript (seed 002), as the quote pool would give them.
LEX = SourceInfo(
    source_id="002_9f98e31768688821",
    title="Lex Fridman Podcast #400: Elon Musk",
    url="https://www.youtube.com/watch?v=JN3KPFbWCy8",
    date="2023-11-09",
    speakers=("Lex Fridman", "Elon Musk"),
)
QUOTES = (
    "obviously global thermonuclear warfare has high potential to end civilization, perhaps permanently.",
    "and then like i said, once you can count on the logic as being not violating physics, then you can start to "
    "build on that, to create inventions, like invent new technologies.",
    "but if you can't, if you cannot count on the foundational physics being correct, obviously the inventions are "
    "simply wishful thinking, you know, imagination land, magic basically.",
    "and i'm pretty, you know, i really am 52, so my reflex is not what they used to be, but i have a lifetime of "
    "playing video games.",
    "i mean, you sort of killing the demons in a video game calms the demons in my mind.",
    "so underlying the humor is an aspiration to adhere to the truth of the universe as closely as possible.",
    "so that's why, you know, there's always gonna be some amount of error, but we want to aspire to be as "
    "truthful as possible about the answers with acknowledged error.",
)


def quote_hits(texts: tuple[str, ...] = QUOTES) -> list[Hit]:
    hits, at = [], 0
    for quote in texts:
        passage = Passage(pid=len(hits), source_id=LEX.source_id, text=quote, char_start=at,
                          char_end=at + len(quote), speaker="Elon Musk", position=at / 100_000)
        hits.append(Hit(passage=passage, source=LEX, score=0.0, url=LEX.url))
        at += len(quote) + 1
    return hits


class StandInQuotes:
    """The searcher's ``quote_pool`` over a fixed list of real quotes; a topic keeps quotes containing it."""

    def __init__(self, texts: tuple[str, ...] = QUOTES) -> None:
        self.hits = quote_hits(texts)
        self.calls = 0

    def quote_pool(self, topic: str | None = None) -> list[Hit]:
        self.calls += 1
        if not topic:
            return list(self.hits)
        return [h for h in self.hits if topic.casefold() in h.passage.text.casefold()]


@dataclass
class FakeClock:
    """A clock the test moves by hand; ``sleep`` advances it instead of waiting."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def at(self, text: str) -> datetime:
        self.now = utc(text)
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Recorder:
    """A platform poster that records what it was asked to post; ``failures`` are raised first, in order."""

    platform: str = "discord"
    sent: list[tuple[str, Reply]] = field(default_factory=list)
    calls: int = 0
    failures: list[BaseException] = field(default_factory=list)

    async def __call__(self, channel_id: str, reply: Reply) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((channel_id, reply))

    def texts(self, channel_id: str | None = None) -> list[str]:
        return [r.cards[0].text for c, r in self.sent if channel_id in (None, c)]


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server at ``server_url`` (the ``postgres_server`` fixture) for as
    long as the context lasts."""
    base = make_url(server_url)
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"quotebot_t_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(sql: str) -> None:
        # On a thread of its own, so this works whether or not an event loop is running here.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, admin(sql)).result()

    run(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'quotebot.sqlite3'}"


async def emptied(url: str) -> str:
    """``url`` with the daily tables emptied (a database shared by the tests of one module)."""
    store = await open_store(url)
    try:
        async with store.engine.begin() as conn:
            if store.backend == "postgresql":
                await conn.execute(text("TRUNCATE daily_posts, daily_subscriptions, memo RESTART IDENTITY CASCADE"))
            else:
                for table in ("daily_posts", "daily_subscriptions", "memo"):
                    await conn.execute(text(f"DELETE FROM {table}"))
    finally:
        await store.close()
    return url
