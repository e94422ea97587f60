"""Real scheduler processes stopped in the middle of their work, on SQLite and PostgreSQL.

* SIGKILL after claiming a day: after a restart the day is posted exactly once; SIGKILL inside the send: the
  restarted instance asks the platform, sends only what did not arrive, and never resends what it cannot account for.
* SIGTERM in the middle of a tick with 50 due posts: the sends under way finish and are recorded, the rest are handed
  back, and another instance posts them: 50 posts, no duplicate.
* Two instances sharing the database, one SIGKILLed mid-tick: the survivor takes over within one short lease;
  every post arrives once, within a minute of its time.

Run as a module (``python -m tests.integration.test_daily_crash URL MODE NOW [PLATFORM_URL OFFSET NAME]``) this
file is the scheduler process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot.daily import DailyScheduler, SendLimits
from bot.store import CHECKING, CLAIMED, SENDING, SENT, UNKNOWN, Store, open_store
from tests.integration.daily_support import (
    ChatServer,
    FakeClock,
    HttpTarget,
    Recorder,
    StandInQuotes,
    add_subscriptions,
    utc,
)

ROOT = Path(__file__).resolve().parents[2]
DUE = "2024-06-01 09:00"
LEASE_SECONDS = 300
SHORT_LEASE = 3.0  # the scheduler processes of the SIGTERM and SIGKILL tests
POLL = 0.3


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.test_daily_crash", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _run_and_kill(url: str, mode: str) -> str:
    """Start the doomed scheduler, wait until it says where it is, SIGKILL it; returns what it said."""
    proc = await _spawn(url, mode, DUE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line:
            raise AssertionError((await proc.stderr.read()).decode()[-2000:])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    return line.decode().strip()


async def _restart(store: Store, poster: Recorder) -> tuple[FakeClock, DailyScheduler]:
    clock = FakeClock(utc("2024-06-01 09:01"))
    return clock, DailyScheduler(store, StandInQuotes(), {"discord": poster}, clock, 180, 30.0,
                                 lease_seconds=LEASE_SECONDS, instance_id="restarted")


async def _one_subscription(store: Store) -> int:
    sub = await store.save_subscription(platform="discord", channel_id="c1", guild_id="g", local_time="09:00",
                                        tz="UTC", topic=None, created_by="admin", now=utc("2024-06-01 08:00"))
    return sub.id


async def test_killed_between_claim_and_send_posts_exactly_once_after_restart(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        sid = await _one_subscription(store)
        assert await _run_and_kill(db_url, "claim") == "choosing"
        left = await store.post(sid, date(2024, 6, 1))
        assert left.status == CLAIMED and left.owner.startswith("doomed#") and left.passage_key is None

        poster = Recorder()
        clock, restarted = await _restart(store, poster)
        await restarted.tick(clock())  # within the dead instance's lease: nothing yet
        assert poster.sent == []
        for later in ("2024-06-01 09:05", "2024-06-01 09:06", "2024-06-01 10:00", "2024-06-02 08:59"):
            await restarted.tick(clock.at(later))
        assert [c for c, _ in poster.sent] == ["c1"]
        done = await store.post(sid, date(2024, 6, 1))
        assert done.status == SENT and done.owner.startswith("restarted#")
    finally:
        await store.close()


async def test_killed_during_a_send_that_did_not_arrive_is_sent_once_after_restart(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        sid = await _one_subscription(store)
        assert await _run_and_kill(db_url, "send") == "sending"
        left = await store.post(sid, date(2024, 6, 1))
        assert left.status == SENDING and left.passage_key is not None

        poster = Recorder(unseen=False)  # the platform never got the message
        clock, restarted = await _restart(store, poster)
        for later in ("2024-06-01 09:01", "2024-06-01 09:05", "2024-06-01 10:00"):
            await restarted.tick(clock.at(later))
        assert [c for c, _ in poster.sent] == ["c1"] and poster.sent[0][1].cards[0].passage_key == left.passage_key
        assert (await store.post(sid, date(2024, 6, 1))).status == SENT
    finally:
        await store.close()


async def test_killed_during_a_send_the_platform_cannot_account_for_is_never_sent_again(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        sid = await _one_subscription(store)
        assert await _run_and_kill(db_url, "send") == "sending"
        poster = Recorder(unseen=None)
        clock, restarted = await _restart(store, poster)
        for later in ("2024-06-01 09:01", "2024-06-01 09:05", "2024-06-01 09:10"):
            await restarted.tick(clock.at(later))
        assert (await store.post(sid, date(2024, 6, 1))).status == CHECKING  # still being asked about
        await restarted.tick(clock.at("2024-06-01 10:00"))
        assert poster.calls == 0 and poster.lookups == 3
        assert (await store.post(sid, date(2024, 6, 1))).status == UNKNOWN
        await restarted.tick(clock.at("2024-06-02 09:00"))  # the next day is unaffected
        assert [c for c, _ in poster.sent] == ["c1"]
    finally:
        await store.close()


def _fake_start(lead: float) -> tuple[float, float]:
    """(offset, real due time): the scheduler processes run ``offset`` seconds ahead of the wall clock, so that
    DUE comes ``lead`` seconds from now."""
    due = utc(DUE).timestamp()
    offset = due - lead - time.time()
    return offset, due - offset


async def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


async def _settled(store: Store, ids: list[int]) -> Counter:
    statuses: Counter = Counter()
    for sid in ids:
        statuses.update(p.status for p in await store.posts_of(sid) if p.local_date == date(2024, 6, 1))
    return statuses


async def test_sigterm_mid_tick_finishes_what_is_under_way_and_another_instance_posts_the_rest(db_url: str) -> None:
    platform = ChatServer(delay=0.15)
    await platform.start()
    store = await open_store(db_url)
    try:
        channels = [f"c{i:02d}" for i in range(50)]
        ids = await add_subscriptions(store, channels, since=utc("2024-06-01 08:00"))
        offset, _ = _fake_start(lead=0.5)
        proc = await _spawn(db_url, "run", DUE, platform.url, str(offset), "first")
        await _wait_for(lambda: len(platform.messages) >= 8, 60, "the first posts")
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
        first = len(platform.messages)
        assert 8 <= first < 50
        statuses = await _settled(store, ids)
        # Every send that started was recorded with its real outcome; the others were handed back.
        assert statuses[SENT] == first and statuses[CLAIMED] == 50 - first and sum(statuses.values()) == 50

        second = await _spawn(db_url, "run", DUE, platform.url, str(offset), "second")
        await _wait_for(lambda: len(platform.messages) >= 50, 60, "the rest of the posts")
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.communicate(), 30)
        assert sorted(platform.channels()) == channels  # 50 posts, none twice
        assert (await _settled(store, ids))[SENT] == 50
    finally:
        await store.close()
        await platform.stop()


async def test_killing_one_of_two_instances_mid_tick_still_posts_everything_once_within_a_minute(
    db_url: str,
) -> None:
    platform = ChatServer(delay=0.2)
    await platform.start()
    store = await open_store(db_url)
    procs = []
    try:
        channels = [f"c{i:02d}" for i in range(40)]
        ids = await add_subscriptions(store, channels, since=utc("2024-06-01 08:00"))
        offset, real_due = _fake_start(lead=3.0)
        procs = [await _spawn(db_url, "run", DUE, platform.url, str(offset), name) for name in ("alpha", "beta")]
        await _wait_for(lambda: len(platform.messages) >= 4, 60, "the first posts")
        # Kill the instance holding the most posts not yet sent.
        rows = [p for sid in ids for p in await store.posts_of(sid)]
        held = Counter(p.owner.split("#")[0] for p in rows if p.status in (CLAIMED, SENDING) and p.owner)
        doomed, survivor = (0, 1) if held["alpha"] >= held["beta"] else (1, 0)
        os.kill(procs[doomed].pid, signal.SIGKILL)
        await procs[doomed].wait()
        await _wait_for(lambda: len(set(platform.channels())) >= 40, 60, "every post")
        await asyncio.sleep(SHORT_LEASE + 1)  # time for anything that would go out twice
        procs[survivor].send_signal(signal.SIGTERM)
        await asyncio.wait_for(procs[survivor].communicate(), 30)
        assert sorted(platform.channels()) == channels  # every channel once
        senders = Counter(m["sender"] for m in platform.messages)
        assert held[("alpha", "beta")[doomed]] > 0 and senders[("alpha", "beta")[survivor]] > 0
        latest = max(m["arrived"] for m in platform.messages)
        assert latest - real_due < 60, f"the last post came {latest - real_due:.1f} s after its time"
        assert (await _settled(store, ids))[SENT] == 40
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await store.close()
        await platform.stop()


# --- the scheduler process -----------------------------------------------------------------------


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


async def _serve(url: str, platform_url: str, offset: float, name: str) -> None:
    """A scheduler like ``quotebot run``'s: short leases, SIGTERM/SIGINT stop it gracefully."""
    store = await open_store(url)
    target = HttpTarget(platform_url, name)
    scheduler = DailyScheduler(
        store, StandInQuotes(), {"discord": target}, lambda: datetime.now(UTC) + timedelta(seconds=offset),
        180, POLL, lease_seconds=SHORT_LEASE, stop_grace_seconds=10, check_every_seconds=1,
        limits={"discord": SendLimits(concurrency=2, channel_interval=0)}, instance_id=name,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, scheduler.stop)
    try:
        await scheduler.run()
    finally:
        await target.close()
        await store.close()


if __name__ == "__main__":
    if sys.argv[2] == "run":
        asyncio.run(_serve(sys.argv[1], sys.argv[4], float(sys.argv[5]), sys.argv[6]))
    else:
        asyncio.run(_doomed(sys.argv[1], sys.argv[2], utc(sys.argv[3])))
