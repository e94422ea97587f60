"""A real scheduler process killed with SIGKILL after claiming a day: after a restart the day is posted exactly once
when the kill came before the send, and never twice when it came during the send.

Run as a module (``python -m tests.integration.test_daily_crash URL MODE NOW``) this file is the doomed process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import date, datetime
from pathlib import Path

from bot.daily import DailyScheduler
from bot.store import CLAIMED, SENDING, SENT, UNKNOWN, Store, open_store
from tests.integration.daily_support import (
    FakeClock,
    Recorder,
    StandInQuotes,
    utc,
)

ROOT = Path(__file__).resolve().parents[2]
DUE = "2024-06-01 09:00"
LEASE_SECONDS = 300


async def _run_and_kill(url: str, mode: str) -> str:
    """Start the doomed scheduler, wait until it says where it is, SIGKILL it; returns what it said."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.test_daily_crash", url, mode, DUE,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line:
            raise AssertionError((await proc.stderr.read()).decode()[-2000:])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    return line.decode().strip()


async def _restart(store: Store) -> tuple[FakeClock, Recorder, DailyScheduler]:
    clock, poster = FakeClock(utc("2024-06-01 09:01")), Recorder()
    return clock, poster, DailyScheduler(store, StandInQuotes(), {"discord": poster}, clock, 180, 30.0,
                                         lease_seconds=LEASE_SECONDS, instance_id="restarted")


async def test_killed_between_claim_and_send_posts_exactly_once_after_restart(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        sub = await store.save_subscription(platform="discord", channel_id="c1", guild_id="g", local_time="09:00",
                                            tz="UTC", topic=None, created_by="admin", now=utc("2024-06-01 08:00"))
        assert await _run_and_kill(db_url, "claim") == "choosing"
        left = await store.post(sub.id, date(2024, 6, 1))
        assert left.status == CLAIMED and left.owner.startswith("doomed#") and left.passage_key is None

        clock, poster, restarted = await _restart(store)
        await restarted.tick(clock())  # within the dead instance's lease: nothing yet
        assert poster.sent == []
        for later in ("2024-06-01 09:05", "2024-06-01 09:06", "2024-06-01 10:00", "2024-06-02 08:59"):
            await restarted.tick(clock.at(later))
        assert [c for c, _ in poster.sent] == ["c1"]
        done = await store.post(sub.id, date(2024, 6, 1))
        assert done.status == SENT and done.owner.startswith("restarted#")
    finally:
        await store.close()


async def test_killed_during_the_send_is_never_sent_again(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        sub = await store.save_subscription(platform="discord", channel_id="c1", guild_id="g", local_time="09:00",
                                            tz="UTC", topic=None, created_by="admin", now=utc("2024-06-01 08:00"))
        assert await _run_and_kill(db_url, "send") == "sending"
        left = await store.post(sub.id, date(2024, 6, 1))
        assert left.status == SENDING and left.passage_key is not None

        clock, poster, restarted = await _restart(store)
        for later in ("2024-06-01 09:01", "2024-06-01 09:05", "2024-06-01 10:00"):
            await restarted.tick(clock.at(later))
        assert poster.calls == 0
        settled = await store.post(sub.id, date(2024, 6, 1))
        assert settled.status == UNKNOWN
        await restarted.tick(clock.at("2024-06-02 09:00"))  # the next day is unaffected
        assert [c for c, _ in poster.sent] == ["c1"]
    finally:
        await store.close()


# --- the doomed process ------------------------------------------------------------------------


class _StuckWhileChoosing(StandInQuotes):
    """Stops the process right after its claim: it says so, then never returns the quote pool."""

    def quote_pool(self, topic=None):
        print("choosing", flush=True)
        time.sleep(3600)
        return []


async def _doomed(url: str, mode: str, now: datetime) -> None:
    store = await open_store(url)

    async def stuck_poster(channel_id: str, reply) -> None:
        print("sending", flush=True)
        await asyncio.Event().wait()

    source = _StuckWhileChoosing() if mode == "claim" else StandInQuotes()
    scheduler = DailyScheduler(store, source, {"discord": stuck_poster}, lambda: now, 180, 30.0,
                               lease_seconds=LEASE_SECONDS, send_timeout=LEASE_SECONDS - 1, instance_id="doomed")
    await scheduler.tick(now)


if __name__ == "__main__":
    asyncio.run(_doomed(sys.argv[1], sys.argv[2], utc(sys.argv[3])))
