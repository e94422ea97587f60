"""Shared pieces for the daily-post tests: databases on both backends, a controllable clock, a stand-in quote pool
and recording posters."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from bot.platform import DeliveryUnknown
from bot.reply import Reply
from bot.store import Store, open_store, subscriptions
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


@dataclass(frozen=True)
class AfterStore:
    """A failure the platform shows only after it stored the message (its answer was lost): a 500 after the
    store, or the connection dropped after it."""

    error: BaseException


@dataclass
class Recorder:
    """A platform target that keeps what it was asked to post, as a chat platform keeps messages.

    ``failures`` are raised first, in order (an ``AfterStore`` one stores the message, then raises).
    ``find_delivery`` finds a stored message by its delivery key; for a key it never stored it answers
    ``unseen`` (False: known not to be there; None: the platform cannot say). ``told`` keeps what
    ``tell_user`` said to whom.
    """

    platform: str = "discord"
    sent: list[tuple[str, Reply]] = field(default_factory=list)
    keys: list[tuple[str, str | None]] = field(default_factory=list)
    calls: int = 0
    lookups: int = 0
    failures: list[BaseException | AfterStore] = field(default_factory=list)
    unseen: bool | None = False
    told: list[tuple[str, str, str]] = field(default_factory=list)

    async def post(self, channel_id: str, reply: Reply, *, delivery_key: str | None = None) -> None:
        self.calls += 1
        failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, BaseException):
            raise failure
        self.sent.append((channel_id, reply))
        self.keys.append((channel_id, delivery_key))
        if failure is not None:
            raise failure.error

    async def find_delivery(self, channel_id: str, delivery_key: str) -> bool | None:
        self.lookups += 1
        return True if (channel_id, delivery_key) in self.keys else self.unseen

    async def tell_user(self, user_id: str, channel_id: str, text: str) -> None:
        self.told.append((user_id, channel_id, text))

    def texts(self, channel_id: str | None = None) -> list[str]:
        return [r.cards[0].text for c, r in self.sent if channel_id in (None, c)]


class ChatServer:
    """A stand-in chat platform over HTTP, for scheduler processes: ``POST /post`` stores a message with its
    delivery key (answering after ``delay`` seconds), ``GET /find`` looks a key up. Every stored message keeps the
    wall-clock time it arrived."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.messages: list[dict] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/post", self._post)
        app.router.add_get("/find", self._find)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.messages.append({**body, "arrived": time.time()})
        await asyncio.sleep(self.delay)
        return web.json_response({"ok": True})

    async def _find(self, request: web.Request) -> web.Response:
        channel, key = request.query["channel"], request.query["key"]
        found = any(m["channel"] == channel and m["key"] == key for m in self.messages)
        return web.json_response({"found": found})

    def channels(self) -> list[str]:
        return [m["channel"] for m in self.messages]


class HttpTarget:
    """The scheduler's target for a ``ChatServer``, as a platform adapter would be: a 5xx or a lost connection
    is a ``DeliveryUnknown``, and ``find_delivery`` asks the server."""

    def __init__(self, url: str, sender: str = "") -> None:
        self.url = url
        self.sender = sender
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, channel_id: str, reply: Reply, *, delivery_key: str | None = None) -> None:
        body = {"channel": channel_id, "key": delivery_key, "text": reply.cards[0].text, "sender": self.sender}
        try:
            async with self.session().post(f"{self.url}/post", json=body) as r:
                if r.status >= 500:
                    raise DeliveryUnknown(f"HTTP {r.status}")
                r.raise_for_status()
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise DeliveryUnknown(type(exc).__name__) from exc

    async def find_delivery(self, channel_id: str, delivery_key: str) -> bool | None:
        async with self.session().get(f"{self.url}/find", params={"channel": channel_id, "key": delivery_key}) as r:
            return bool((await r.json())["found"]) if r.status == 200 else None


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


async def add_subscriptions(
    store: Store, channels: list[str], *, local_time: str = "09:00", tz: str = "UTC", platform: str = "discord",
    since: datetime | None = None,
) -> list[int]:
    """Subscribe many channels at once (one multi-row insert); returns their ids in order."""
    since = since or utc("2024-01-01 00:00")
    rows = [dict(platform=platform, channel_id=c, guild_id="g", local_time=local_time, tz=tz, topic=None,
                 enabled=True, created_by="admin", active_since=since, created_at=since, updated_at=since)
            for c in channels]
    async with store.engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            await conn.execute(subscriptions.insert().values(rows[start : start + 1000]))
        found = await conn.execute(select(subscriptions.c.channel_id, subscriptions.c.id)
                                   .where(subscriptions.c.platform == platform))
        ids = dict(found.all())
    return [ids[c] for c in channels]


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
