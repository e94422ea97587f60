"""Daily posts from real ``quotebot run --platform slack`` processes sharing one PostgreSQL database, against the
local Slack API server (whose chat.postMessage takes a moment, so a tick lasts a few seconds):

* SIGTERM in the middle of a tick with 50 due posts: the process exits promptly, the sends under way are recorded,
  the rest are handed back, and the next process posts them: 50 posts, no duplicate.
* Two instances, the one holding the posts killed with SIGKILL mid-tick: the survivor takes over after one short
  lease (``QUOTEBOT_DAILY_LEASE_SECONDS=3``), asks Slack about the sends that were under way, and every channel
  gets its post exactly once, within a minute of its time.

Posts fall due at the next full minute, so each test waits up to a minute for it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from bot.store import CLAIMED, SENDING, SENT, Store, open_store, posts, subscriptions
from tests.e2e.slack_api_server import TEAM, SlackApiServer
from tests.e2e.slack_helpers import SlackBotProcess, bot_env, free_port, make_corpus
from tests.integration.daily_support import postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def database(postgres_server: str):
    with postgres_database(postgres_server) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="module")
async def slack():
    server = SlackApiServer(post_delay=0.4)
    await server.start()
    yield server
    await server.stop()


def instance(tmp: Path, name: str, server: SlackApiServer, database: str) -> SlackBotProcess:
    folder = tmp / name
    folder.mkdir()
    port = free_port()
    env = bot_env(folder, server.api_url, port, QUOTEBOT_CORPUS=str(make_corpus(folder / "corpus")),
                  QUOTEBOT_INDEX_DIR=str(folder / "index"), DATABASE_URL=database,
                  QUOTEBOT_DAILY_LEASE_SECONDS="3", QUOTEBOT_DAILY_POLL_SECONDS="0.5",
                  QUOTEBOT_STOP_GRACE_SECONDS="10")
    return SlackBotProcess(env, port, log_path=folder / "bot.log")


async def subscribe_at_next_minute(store: Store, channels: list[str]) -> datetime:
    """Subscribe ``channels`` for the next full minute at least 5 s away (UTC); returns that instant."""
    now = datetime.now(UTC)
    due = (now + timedelta(seconds=65)).replace(second=0, microsecond=0)
    if due - now > timedelta(seconds=65):
        due -= timedelta(minutes=1)
    rows = [dict(platform="slack", channel_id=c, guild_id=TEAM, local_time=f"{due:%H:%M}", tz="UTC", topic=None,
                 enabled=True, created_by="UADMIN", active_since=now, created_at=now, updated_at=now)
            for c in channels]
    async with store.engine.begin() as conn:
        await conn.execute(subscriptions.insert().values(rows))
    return due


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def posted(server: SlackApiServer) -> list[str]:
    return [c for c, messages in server.history.items() for m in messages if m.get("metadata")]


async def statuses(store: Store) -> Counter:
    async with store.engine.connect() as conn:
        rows = await conn.exec_driver_sql("SELECT status, count(*) FROM daily_posts GROUP BY status")
        return Counter({s: n for s, n in rows})


async def test_sigterm_mid_tick_posts_all_50_exactly_once_across_a_restart(tmp_path, slack, database) -> None:
    store = await open_store(database)
    first = second = None
    try:
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql("TRUNCATE daily_posts, daily_subscriptions RESTART IDENTITY CASCADE")
        first = instance(tmp_path, "first", slack, database)
        await first.start(in_process=False)
        channels = [f"C{i:04d}" for i in range(50)]
        await subscribe_at_next_minute(store, channels)
        await wait_for(lambda: len(posted(slack)) >= 10, 90, "the first posts")
        stopped_at = time.monotonic()
        first.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.proc.wait(), 30) == 0
        assert time.monotonic() - stopped_at < 25  # well within a PaaS's 30 s grace
        done = len(posted(slack))
        assert done < 50, "the tick ended before the stop; nothing was under way"
        counts = await statuses(store)
        assert counts[SENT] == done and counts[CLAIMED] == 50 - done and sum(counts.values()) == 50
        second = instance(tmp_path, "second", slack, database)
        await second.start(in_process=False)
        await wait_for(lambda: len(posted(slack)) >= 50, 60, "the rest of the posts")
        await asyncio.sleep(1)
        assert sorted(posted(slack)) == channels  # 50 posts, none twice
        assert (await statuses(store))[SENT] == 50
    finally:
        for p in (first, second):
            if p is not None:
                await p.stop()
        await store.close()


async def test_kill_9_of_one_of_two_instances_mid_tick_still_posts_each_once_within_a_minute(
    tmp_path, slack, database
) -> None:
    store = await open_store(database)
    bots: list[SlackBotProcess] = []
    try:
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql("TRUNCATE daily_posts, daily_subscriptions RESTART IDENTITY CASCADE")
        bots = [instance(tmp_path, name, slack, database) for name in ("alpha", "beta")]
        await asyncio.gather(*(b.start(in_process=False) for b in bots))
        channels = [f"K{i:04d}" for i in range(40)]
        due = await subscribe_at_next_minute(store, channels)
        await wait_for(lambda: len(posted(slack)) >= 4, 90, "the first posts")
        # The instance holding the posts not yet sent: owner tokens start with "host:pid:".
        async with store.engine.connect() as conn:
            held_rows = await conn.execute(select(posts.c.owner).where(posts.c.status.in_([CLAIMED, SENDING]),
                                                                       posts.c.owner.is_not(None)))
            owners = held_rows.scalars().all()
        held = Counter(int(o.split(":")[1]) for o in owners)
        assert held, "nothing was held when the kill came"
        doomed = max(bots, key=lambda b: held[b.proc.pid])
        survivor = next(b for b in bots if b is not doomed)
        os.kill(doomed.proc.pid, signal.SIGKILL)
        await doomed.proc.wait()
        await wait_for(lambda: len(set(posted(slack))) >= 40, 60, "every post")
        await asyncio.sleep(4)  # a lease and more: anything that would go out twice has had its chance
        assert sorted(posted(slack)) == channels  # every channel, once
        latest = max(float(m["ts"]) for c in channels for m in slack.history[c])
        assert latest - due.timestamp() < 60, f"the last post came {latest - due.timestamp():.0f} s after its time"
        assert (await statuses(store))[SENT] == 40
        assert "taking over post" in survivor.log_text() or "left inside its send" in survivor.log_text()
    finally:
        for b in bots:
            await b.stop()
        await store.close()
