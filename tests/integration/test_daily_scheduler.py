"""The daily scheduler on real SQLite and PostgreSQL with a hand-driven clock: on time in each channel's zone,
across DST changes, no repeats, retries, grace window, crashes and two instances at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.core import QuoteBot
from bot.daily import ChannelGone, DailyScheduler, DeliveryUnknown, SendLimits, delivery_key
from bot.reply import Request
from bot.store import CLAIMED, FAILED, SENDING, SENT, SKIPPED, UNKNOWN, Store, open_store
from config.settings import BUNDLED_CORPUS, BUNDLED_MANIFEST
from retrieval.search import open_searcher
from tests.integration.daily_support import (
    QUOTES,
    AfterStore,
    FakeClock,
    Recorder,
    StandInQuotes,
    add_subscriptions,
    utc,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def store(db_url: str):
    s = await open_store(db_url)
    yield s
    await s.close()


async def subscribe(store: Store, channel: str, local_time: str, tz: str, *, since: str = "2024-01-01 00:00",
                    topic: str | None = None, platform: str = "discord") -> int:
    sub = await store.save_subscription(platform=platform, channel_id=channel, guild_id="g", local_time=local_time,
                                        tz=tz, topic=topic, created_by="admin", now=utc(since))
    return sub.id


def scheduler(store: Store, clock: FakeClock, poster: Recorder, source: StandInQuotes | None = None,
              **options) -> DailyScheduler:
    # No spacing between posts to one channel: the hand-driven clock jumps days between ticks.
    options.setdefault("limits", {poster.platform: SendLimits(concurrency=8, channel_interval=0)})
    return DailyScheduler(store, source or StandInQuotes(), {poster.platform: poster}, clock,
                          options.pop("grace_minutes", 180), options.pop("poll_seconds", 30.0), **options)


async def test_a_quote_is_posted_once_at_the_channels_local_time(store: Store) -> None:
    await subscribe(store, "c1", "09:00", "Europe/Berlin")
    clock, poster = FakeClock(utc("2024-06-01 06:59")), Recorder()
    s = scheduler(store, clock, poster)
    assert await s.tick(clock()) == []
    outcomes = await s.tick(clock.at("2024-06-01 07:00"))  # 09:00 CEST
    assert [o.result for o in outcomes] == ["sent"]
    for later in ("2024-06-01 07:00:30", "2024-06-01 09:00", "2024-06-01 21:59"):
        await s.tick(clock.at(later))
    assert len(poster.sent) == 1
    channel, reply = poster.sent[0]
    assert channel == "c1" and reply.kind == "daily" and reply.text == "Quote of the day"
    card = reply.cards[0]
    assert card.text in QUOTES and card.speaker == "Elon Musk" and card.title.startswith("Lex Fridman")
    assert reply.actions[0].payload == f"ctx:{card.passage_key}"


@pytest.mark.parametrize(
    ("tz", "expected_utc"),
    [
        ("Europe/Berlin", ["2024-03-30 08:00", "2024-03-31 07:00", "2024-04-01 07:00",
                           "2024-10-26 07:00", "2024-10-27 08:00", "2024-10-28 08:00"]),
        ("America/New_York", ["2024-03-09 14:00", "2024-03-10 13:00", "2024-03-11 13:00",
                              "2024-11-02 13:00", "2024-11-03 14:00", "2024-11-04 14:00"]),
    ],
)
async def test_nine_oclock_posts_stay_at_nine_local_across_dst_changes(
    store: Store, tz: str, expected_utc: list[str]
) -> None:
    await subscribe(store, "c1", "09:00", tz)
    clock, poster = FakeClock(utc("2024-03-01 00:00")), Recorder()
    s = scheduler(store, clock, poster, grace_minutes=30)
    posted_at = []
    for instant in map(utc, expected_utc):
        before = len(poster.sent)
        await s.tick(clock.at(str(instant - timedelta(minutes=1))[:19]))
        assert len(poster.sent) == before, f"posted before {instant}"
        await s.tick(clock.at(str(instant)[:19]))
        assert len(poster.sent) == before + 1, f"nothing posted at {instant}"
        posted_at.append(instant)
        # The old offset's 09:00 an hour later does not post again.
        await s.tick(clock.at(str(instant + timedelta(hours=1))[:19]))
        assert len(poster.sent) == before + 1
    assert len(poster.sent) == len(expected_utc)


async def test_a_time_lost_to_spring_forward_posts_at_the_first_minute_after_the_gap(store: Store) -> None:
    await subscribe(store, "c1", "02:30", "Europe/Berlin")
    clock, poster = FakeClock(utc("2024-03-31 00:59")), Recorder()
    s = scheduler(store, clock, poster)
    await s.tick(clock())
    assert poster.sent == []
    await s.tick(clock.at("2024-03-31 01:00"))  # 03:00 CEST, the first minute that exists after 02:00 CET
    await s.tick(clock.at("2024-03-31 01:30"))
    assert len(poster.sent) == 1
    await s.tick(clock.at("2024-04-01 00:30"))  # the next day 02:30 exists again (CEST)
    assert len(poster.sent) == 2


async def test_a_time_that_happens_twice_posts_once_at_the_first_occurrence(store: Store) -> None:
    await subscribe(store, "c1", "02:30", "Europe/Berlin")
    clock, poster = FakeClock(utc("2024-10-27 00:29")), Recorder()
    s = scheduler(store, clock, poster)
    await s.tick(clock())
    assert poster.sent == []
    await s.tick(clock.at("2024-10-27 00:30"))  # 02:30 CEST
    assert len(poster.sent) == 1
    await s.tick(clock.at("2024-10-27 01:30"))  # 02:30 CET, the same wall time again
    await s.tick(clock.at("2024-10-27 02:00"))
    assert len(poster.sent) == 1


async def test_no_quote_repeats_in_a_channel_until_the_pool_is_used_up(store: Store) -> None:
    await subscribe(store, "c1", "09:00", "UTC")
    await subscribe(store, "c2", "09:00", "UTC")
    clock, poster = FakeClock(utc("2024-06-01 09:00")), Recorder()
    s = scheduler(store, clock, poster)
    n = len(QUOTES)
    for day in range(2 * n + 2):
        await s.tick(clock.at(f"2024-06-{day + 1:02d} 09:00"))
    for channel in ("c1", "c2"):
        texts = poster.texts(channel)
        assert len(texts) == 2 * n + 2
        assert sorted(texts[:n]) == sorted(QUOTES)  # every quote once before any repeats
        assert sorted(texts[n : 2 * n]) == sorted(QUOTES)  # then a second round, again without repeats
        assert len(set(texts[2 * n :])) == 2
    # Channels draw independently (seeded by channel and date), so they are not in lockstep.
    assert poster.texts("c1") != poster.texts("c2")


async def test_the_same_date_and_channel_give_the_same_quote(store: Store, tmp_path: Path) -> None:
    # Two independent databases with the same history pick the same quote for the same channel and date.
    other = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        picks = []
        for st in (store, other):
            await subscribe(st, "c1", "09:00", "UTC")
            clock, poster = FakeClock(utc("2024-06-01 09:00")), Recorder()
            s = scheduler(st, clock, poster)
            for day in (1, 2, 3):
                await s.tick(clock.at(f"2024-06-0{day} 09:00"))
            picks.append(poster.texts())
        assert picks[0] == picks[1]
        assert len(set(picks[0])) == 3
    finally:
        await other.close()


async def test_a_topic_keeps_to_its_quotes_and_repeats_only_after_they_are_used_up(store: Store) -> None:
    await subscribe(store, "c1", "09:00", "UTC", topic="physics")
    clock, poster = FakeClock(utc("2024-06-01 09:00")), Recorder()
    s = scheduler(store, clock, poster)
    for day in (1, 2, 3, 4):
        await s.tick(clock.at(f"2024-06-0{day} 09:00"))
    texts = poster.texts()
    physics = [q for q in QUOTES if "physics" in q]
    assert len(physics) == 2
    assert sorted(texts[:2]) == sorted(physics) and sorted(texts[2:]) == sorted(physics)
    assert poster.sent[0][1].text == "Quote of the day · physics"


async def test_after_downtime_a_missed_post_comes_once_within_the_grace_window_else_it_is_skipped(
    store: Store,
) -> None:
    await subscribe(store, "late", "09:00", "UTC")
    await subscribe(store, "too-late", "06:00", "UTC")
    clock, poster = FakeClock(utc("2024-06-01 00:00")), Recorder()
    s = scheduler(store, clock, poster, grace_minutes=180)
    # The bot was down until 11:30: 09:00 is 150 min ago (within 180), 06:00 is 330 min ago.
    outcomes = await s.tick(clock.at("2024-06-01 11:30"))
    assert [c for c, _ in poster.sent] == ["late"]
    assert len(outcomes) == 1
    await s.tick(clock.at("2024-06-01 11:31"))
    assert [c for c, _ in poster.sent] == ["late"]
    too_late = await store.subscription("discord", "too-late")
    skipped = await store.post(too_late.id, date(2024, 6, 1))
    assert skipped.status == SKIPPED and "not posted" in skipped.last_error
    # The next day both post on time again.
    await s.tick(clock.at("2024-06-02 06:00"))
    await s.tick(clock.at("2024-06-02 09:00"))
    assert [c for c, _ in poster.sent] == ["late", "too-late", "late"]


async def test_a_channel_subscribed_after_todays_time_starts_tomorrow(store: Store) -> None:
    await subscribe(store, "c1", "09:00", "UTC", since="2024-06-01 10:00")
    clock, poster = FakeClock(utc("2024-06-01 10:01")), Recorder()
    s = scheduler(store, clock, poster)
    await s.tick(clock())
    assert poster.sent == []
    await s.tick(clock.at("2024-06-02 09:00"))
    assert len(poster.sent) == 1


async def test_a_failed_send_is_retried_with_backoff_and_delivered_once(store: Store) -> None:
    sid = await subscribe(store, "c1", "09:00", "UTC")
    clock = FakeClock(utc("2024-06-01 09:00"))
    poster = Recorder(failures=[ConnectionResetError("reset by peer"), OSError("network unreachable")])
    s = scheduler(store, clock, poster, retry_base_seconds=60)
    assert [o.result for o in await s.tick(clock())] == ["retry"]
    post = await store.post(sid, date(2024, 6, 1))
    assert (post.status, post.attempts, post.owner) == (CLAIMED, 1, None)
    assert "reset by peer" in post.last_error
    assert await s.tick(clock.at("2024-06-01 09:00:59")) == []  # first backoff: 60 s
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:01:00"))] == ["retry"]
    assert await s.tick(clock.at("2024-06-01 09:02:59")) == []  # second backoff: 120 s
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:03:00"))] == ["sent"]
    await s.tick(clock.at("2024-06-01 10:00"))
    assert poster.calls == 3 and len(poster.sent) == 1
    post = await store.post(sid, date(2024, 6, 1))
    assert (post.status, post.attempts, post.last_error) == (SENT, 3, None)
    # Every attempt offered the same quote under the same delivery key.
    assert poster.keys == [("c1", delivery_key(post))] and poster.sent[0][1].extra["nonce"] == delivery_key(post)


async def test_a_send_that_keeps_failing_is_marked_failed_and_left_alone(store: Store) -> None:
    sid = await subscribe(store, "c1", "09:00", "UTC")
    clock = FakeClock(utc("2024-06-01 09:00"))
    poster = Recorder(failures=[RuntimeError(f"HTTP 500 #{i}") for i in range(10)])
    s = scheduler(store, clock, poster, retry_base_seconds=60, max_attempts=3)
    for later in ("09:00", "09:01", "09:03", "09:07", "09:15", "10:00", "11:30"):
        await s.tick(clock.at(f"2024-06-01 {later}"))
    post = await store.post(sid, date(2024, 6, 1))
    assert (post.status, post.attempts) == (FAILED, 3) and "HTTP 500 #2" in post.last_error
    assert poster.calls == 3 and poster.sent == []


async def test_an_adapter_that_times_out_on_its_own_has_not_sent_and_is_retried(store: Store) -> None:
    sid = await subscribe(store, "c1", "09:00", "UTC")
    clock = FakeClock(utc("2024-06-01 09:00"))
    poster = Recorder(failures=[TimeoutError("not connected to the gateway yet")])
    s = scheduler(store, clock, poster, retry_base_seconds=60)
    assert [o.result for o in await s.tick(clock())] == ["retry"]
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:01"))] == ["sent"]
    assert (await store.post(sid, date(2024, 6, 1))).status == SENT and len(poster.sent) == 1


async def test_a_deleted_channel_disables_its_subscription_and_says_why(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sid = await subscribe(store, "gone", "09:00", "UTC")
    await subscribe(store, "fine", "09:00", "UTC")
    clock = FakeClock(utc("2024-06-01 09:00"))

    class GoneChannel(Recorder):
        async def post(self, channel_id, reply, *, delivery_key=None) -> None:
            if channel_id == "gone":
                self.calls += 1
                raise ChannelGone("Unknown Channel (10003)")
            await super().post(channel_id, reply, delivery_key=delivery_key)

    poster = GoneChannel()
    s = scheduler(store, clock, poster)
    with caplog.at_level(logging.WARNING, logger="bot.daily"):
        outcomes = await s.tick(clock())
    assert sorted(o.result for o in outcomes) == ["gone", "sent"]
    sub = await store.subscription("discord", "gone")
    assert not sub.enabled and "Unknown Channel (10003)" in sub.disabled_reason
    assert any("disabled subscription" in r.getMessage() and "Unknown Channel" in r.getMessage()
               for r in caplog.records)
    assert (await store.post(sid, date(2024, 6, 1))).status == FAILED
    # The subscriber is told, once.
    [(user, channel, text)] = poster.told
    assert (user, channel) == ("admin", "gone") and "daily subscribe" in text and "Unknown Channel" in text
    await s.tick(clock.at("2024-06-02 09:00"))
    assert poster.calls == 3 and [c for c, _ in poster.sent] == ["fine", "fine"]
    assert len(poster.told) == 1


async def test_a_send_that_hangs_is_asked_about_and_never_resent_while_unknown(store: Store) -> None:
    sid = await subscribe(store, "c1", "09:00", "UTC")
    clock = FakeClock(utc("2024-06-01 09:00"))
    calls = []

    async def hanging(channel_id, reply) -> None:  # a bare function: it cannot look its deliveries up
        calls.append(channel_id)
        await asyncio.Event().wait()

    s = DailyScheduler(store, StandInQuotes(), {"discord": hanging}, clock, 180, 30.0, send_timeout=0.05,
                       check_minutes=15)
    assert [o.result for o in await s.tick(clock())] == ["checking"]
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:10"))] == ["checking"]
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:16"))] == ["unknown"]
    await s.tick(clock.at("2024-06-01 10:00"))
    assert calls == ["c1"]
    post = await store.post(sid, date(2024, 6, 1))
    assert post.status == UNKNOWN and "not resent" in post.last_error


async def test_channels_of_a_platform_this_instance_does_not_serve_are_left_alone(store: Store) -> None:
    sid = await subscribe(store, "C0SLACK", "09:00", "UTC", platform="slack")
    clock, poster = FakeClock(utc("2024-06-01 09:00")), Recorder(platform="discord")
    await scheduler(store, clock, poster).tick(clock())
    assert poster.calls == 0 and await store.posts_of(sid) == []
    slack = Recorder(platform="slack")
    await scheduler(store, clock, slack).tick(clock())
    assert [c for c, _ in slack.sent] == ["C0SLACK"]


async def test_a_claim_left_by_a_crashed_instance_is_posted_once_after_its_lease(store: Store) -> None:
    # Exactly the state an instance leaves when killed after the claim insert and before the send.
    sid = await subscribe(store, "c1", "09:00", "UTC")
    claimed_at = utc("2024-06-01 09:00")
    await store.claim(sid, date(2024, 6, 1), now=claimed_at, owner="dead-host:4242:abcdef#1",
                      lease_until=claimed_at + timedelta(seconds=300))
    clock, poster = FakeClock(utc("2024-06-01 09:01")), Recorder()
    s = scheduler(store, clock, poster, lease_seconds=300)
    await s.tick(clock())  # restarted within the lease: the claim may still be in good hands
    assert poster.sent == []
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:05"))] == ["sent"]
    for later in ("2024-06-01 09:06", "2024-06-01 09:20", "2024-06-01 11:00"):
        await s.tick(clock.at(later))
    assert len(poster.sent) == 1
    assert (await store.post(sid, date(2024, 6, 1))).status == SENT


async def _left_inside_the_send(store: Store) -> tuple[int, str]:
    """The state an instance leaves when it dies inside the platform call: 'sending', its lease running out."""
    sid = await subscribe(store, "c1", "09:00", "UTC")
    claimed_at = utc("2024-06-01 09:00")
    post = await store.claim(sid, date(2024, 6, 1), now=claimed_at, owner="dead#1",
                             lease_until=claimed_at + timedelta(seconds=30))
    key = StandInQuotes().hits[3].passage.key
    await store.transition(post.id, now=claimed_at, from_status=[CLAIMED], owner_is="dead#1", status=SENDING,
                           passage_key=key, add_attempt=True)
    return sid, delivery_key(post)


async def test_a_send_cut_short_by_a_crash_that_arrived_is_recorded_sent_and_not_resent(store: Store) -> None:
    sid, key = await _left_inside_the_send(store)
    poster = Recorder(keys=[("c1", key)])  # the platform has the message
    clock = FakeClock(utc("2024-06-01 09:00:20"))
    s = scheduler(store, clock, poster)
    assert await s.tick(clock()) == []  # the dead owner's lease still runs
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:00:31"))] == ["sent"]
    await s.tick(clock.at("2024-06-01 10:00"))
    assert poster.calls == 0 and poster.lookups == 1
    assert (await store.post(sid, date(2024, 6, 1))).status == SENT


async def test_a_send_cut_short_by_a_crash_that_did_not_arrive_is_sent_once_with_the_same_quote(
    store: Store,
) -> None:
    sid, key = await _left_inside_the_send(store)
    poster = Recorder(unseen=False)
    clock = FakeClock(utc("2024-06-01 09:00:31"))
    s = scheduler(store, clock, poster)
    assert [o.result for o in await s.tick(clock())] == ["sent"]
    await s.tick(clock.at("2024-06-01 10:00"))
    assert poster.keys == [("c1", key)]
    assert poster.sent[0][1].cards[0].passage_key == StandInQuotes().hits[3].passage.key
    post = await store.post(sid, date(2024, 6, 1))
    assert (post.status, post.attempts) == (SENT, 2)


async def test_a_send_cut_short_by_a_crash_the_platform_cannot_account_for_is_never_resent(store: Store) -> None:
    sid, _ = await _left_inside_the_send(store)
    poster = Recorder(unseen=None)
    clock = FakeClock(utc("2024-06-01 09:01"))
    s = scheduler(store, clock, poster, check_minutes=15)
    for later in ("09:01", "09:05", "09:10", "09:17", "10:00"):
        await s.tick(clock.at(f"2024-06-01 {later}"))
    # Asked at 09:01, 09:05, 09:10 and 09:17, then given up: 16 minutes without an answer.
    assert poster.calls == 0 and poster.lookups == 4
    settled = await store.post(sid, date(2024, 6, 1))
    assert settled.status == UNKNOWN and "not resent" in settled.last_error
    # The next day is posted normally, and not with the quote that may have gone out.
    await s.tick(clock.at("2024-06-02 09:00"))
    assert len(poster.sent) == 1 and poster.sent[0][1].cards[0].passage_key != settled.passage_key


async def test_a_lost_answer_after_the_platform_stored_the_message_posts_exactly_once(store: Store) -> None:
    sid = await subscribe(store, "c1", "09:00", "UTC")
    clock = FakeClock(utc("2024-06-01 09:00"))
    poster = Recorder(failures=[AfterStore(DeliveryUnknown("HTTP 500 after the message was stored"))])
    s = scheduler(store, clock, poster)
    assert [o.result for o in await s.tick(clock())] == ["sent"]
    for later in ("09:01", "09:05", "10:00", "12:30"):
        await s.tick(clock.at(f"2024-06-01 {later}"))
    assert poster.calls == 1 and len(poster.sent) == 1 and poster.lookups == 1
    assert (await store.post(sid, date(2024, 6, 1))).status == SENT


async def test_a_send_known_not_to_have_arrived_is_retried_and_posted_once(store: Store) -> None:
    sid = await subscribe(store, "c1", "09:00", "UTC")
    clock = FakeClock(utc("2024-06-01 09:00"))
    poster = Recorder(failures=[DeliveryUnknown("connection reset before an answer")], unseen=False)
    s = scheduler(store, clock, poster, retry_base_seconds=60)
    assert [o.result for o in await s.tick(clock())] == ["retry"]
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:01"))] == ["sent"]
    await s.tick(clock.at("2024-06-01 10:00"))
    assert poster.calls == 2 and len(poster.sent) == 1
    post = await store.post(sid, date(2024, 6, 1))
    assert post.status == SENT and post.attempts == 2


async def test_an_unknown_send_found_on_a_later_look_is_recorded_sent_without_a_resend(store: Store) -> None:
    sid = await subscribe(store, "c1", "09:00", "UTC")
    clock = FakeClock(utc("2024-06-01 09:00"))
    poster = Recorder(failures=[DeliveryUnknown("timeout")], unseen=None)
    s = scheduler(store, clock, poster, check_every_seconds=60)
    assert [o.result for o in await s.tick(clock())] == ["checking"]
    checking = await store.post(sid, date(2024, 6, 1))
    assert checking.status == "checking" and checking.unknown_since == utc("2024-06-01 09:00")
    assert await s.tick(clock.at("2024-06-01 09:00:30")) == []  # next look in 60 s
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:01"))] == ["checking"]
    poster.keys.append(("c1", delivery_key(checking)))  # the platform's history catches up
    assert [o.result for o in await s.tick(clock.at("2024-06-01 09:02"))] == ["sent"]
    assert poster.calls == 1 and poster.lookups == 3
    assert (await store.post(sid, date(2024, 6, 1))).status == SENT


async def test_an_error_inside_a_tick_never_stops_the_loop(store: Store) -> None:
    sid = await subscribe(store, "c1", "09:00", "UTC", since="2024-06-01 08:00")

    class FlakySource(StandInQuotes):
        def quote_pool(self, topic=None):
            if self.calls == 0:
                self.calls += 1
                raise RuntimeError("index is being rebuilt")
            return super().quote_pool(topic)

    clock, poster = FakeClock(utc("2024-06-01 08:58")), Recorder()
    stop = asyncio.Event()

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        if clock() >= utc("2024-06-01 09:20"):
            stop.set()
            await asyncio.Event().wait()

    s = DailyScheduler(store, FlakySource(), {"discord": poster}, clock, 180, 60.0, lease_seconds=300,
                       send_timeout=30, sleep=sleep)
    task = asyncio.create_task(s.run())
    await asyncio.wait_for(stop.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The first attempt failed inside the tick; the claim's lease ran out and the post went out once.
    assert len(poster.sent) == 1
    [post] = await store.posts_of(sid)
    assert post.status == SENT and post.sent_at >= utc("2024-06-01 09:05")


async def test_a_week_of_real_quotes_from_the_bundled_transcripts(store: Store, tmp_path: Path) -> None:
    searcher = open_searcher(BUNDLED_CORPUS, BUNDLED_MANIFEST, tmp_path / "index")
    await subscribe(store, "c1", "09:00", "UTC")
    clock, poster = FakeClock(utc("2024-06-01 09:00")), Recorder()
    s = DailyScheduler(store, searcher, {"discord": poster}, clock)
    for day in range(1, 8):
        await s.tick(clock.at(f"2024-06-0{day} 09:00"))
    keys = [r.cards[0].passage_key for _, r in poster.sent]
    assert len(keys) == 7 == len(set(keys))
    assert all(80 <= len(r.cards[0].text) <= 400 for _, r in poster.sent)
    # The Context button under a daily post opens the passage around it.
    core = QuoteBot(searcher)
    try:
        context = await core.handle_action(poster.sent[0][1].actions[0].payload, Request(text="", platform="discord"))
    finally:
        core.close()
    assert context.kind == "context" and poster.sent[0][1].cards[0].text[:60] in context.cards[0].text


async def test_two_instances_on_one_database_post_exactly_once_per_channel_and_day(db_url: str) -> None:
    first, second = await open_store(db_url), await open_store(db_url)
    try:
        zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
        channels = [f"c{i}" for i in range(20)]
        for i, channel in enumerate(channels):
            await subscribe(first, channel, f"{6 + i % 4:02d}:{(i * 7) % 60:02d}", zones[i % len(zones)],
                            since="2024-03-30 00:00")
        clock = FakeClock(utc("2024-03-30 00:00"))
        class Yielding(Recorder):
            async def post(self, channel_id, reply, *, delivery_key=None) -> None:
                await asyncio.sleep(0)  # let the other instance run in between
                await super().post(channel_id, reply, delivery_key=delivery_key)

        posters = [Yielding(), Yielding()]
        instances = [
            DailyScheduler(st, StandInQuotes(), {"discord": rec}, clock, 180, 30.0, instance_id=name)
            for st, rec, name in ((first, posters[0], "alpha"), (second, posters[1], "beta"))
        ]
        # Two days across Berlin's spring forward, both instances ticking at the same moments.
        while clock() < utc("2024-04-01 00:00"):
            await asyncio.gather(*(s.tick(clock()) for s in instances))
            clock.advance(minutes=30)
        sent = [(c, r.extra["nonce"]) for rec in posters for c, r in rec.sent]
        assert len(sent) == len(set(sent))
        per_channel = {c: sum(1 for ch, _ in sent if ch == c) for c in channels}
        # Every channel got one post for each local day whose time fell inside the run.
        for channel in channels:
            sub = await first.subscription("discord", channel)
            rows = await first.posts_of(sub.id)
            assert [p.status for p in rows] == [SENT] * len(rows)
            assert per_channel[channel] == len(rows) >= 2
        assert posters[0].sent and posters[1].sent  # both instances did part of the work
    finally:
        await first.close()
        await second.close()


class Gated(Recorder):
    """A platform whose sends wait until the test opens the gate; ``started`` is set when the first one waits."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def post(self, channel_id, reply, *, delivery_key=None) -> None:
        self.started.set()
        await self.gate.wait()
        await super().post(channel_id, reply, delivery_key=delivery_key)


async def test_the_heartbeat_keeps_queued_posts_from_being_taken_over(db_url: str) -> None:
    first, second = await open_store(db_url), await open_store(db_url)
    try:
        await add_subscriptions(first, ["c1", "c2", "c3"])
        clock = FakeClock(utc("2024-06-01 09:00"))
        slow, other = Gated(), Recorder()
        one_at_a_time = {"discord": SendLimits(concurrency=1, channel_interval=0)}
        a = DailyScheduler(first, StandInQuotes(), {"discord": slow}, clock, lease_seconds=30, send_timeout=20,
                           limits=one_at_a_time, instance_id="a")
        b = DailyScheduler(second, StandInQuotes(), {"discord": other}, clock, lease_seconds=30, instance_id="b")
        tick = asyncio.create_task(a.tick())
        await asyncio.wait_for(slow.started.wait(), 10)
        for _ in range(6):  # three minutes pass while the first send is stuck; a's heartbeat keeps beating
            clock.advance(seconds=30)
            assert await a.renew() == 3
            assert await b.tick() == []
        slow.gate.set()
        assert sorted(o.result for o in await tick) == ["sent"] * 3
        assert other.calls == 0 and sorted(c for c, _ in slow.sent) == ["c1", "c2", "c3"]
    finally:
        await first.close()
        await second.close()


async def test_a_stop_finishes_the_send_under_way_and_hands_back_the_rest(db_url: str) -> None:
    first, second = await open_store(db_url), await open_store(db_url)
    try:
        ids = await add_subscriptions(first, [f"c{i}" for i in range(5)])
        clock = FakeClock(utc("2024-06-01 09:00"))
        slow = Gated()
        a = DailyScheduler(first, StandInQuotes(), {"discord": slow}, clock, lease_seconds=30, send_timeout=20,
                           stop_grace_seconds=10, limits={"discord": SendLimits(1, 0)}, instance_id="a")
        run = asyncio.create_task(a.run())
        await asyncio.wait_for(slow.started.wait(), 10)
        a.stop()
        assert not run.done()
        slow.gate.set()  # the send under way completes after the stop
        await asyncio.wait_for(run, 10)
        assert len(slow.sent) == 1
        rows = {p.subscription_id: p for sid in ids for p in await first.posts_of(sid)}
        assert sorted(p.status for p in rows.values()) == [CLAIMED] * 4 + [SENT]
        assert all(p.owner is None and p.lease_until <= clock() for p in rows.values() if p.status == CLAIMED)
        # Another instance posts the rest at once, and nothing twice.
        other = Recorder()
        b = DailyScheduler(second, StandInQuotes(), {"discord": other}, clock, instance_id="b")
        assert sorted(o.result for o in await b.tick()) == ["sent"] * 4
        assert sorted(c for c, _ in slow.sent + other.sent) == [f"c{i}" for i in range(5)]
    finally:
        await first.close()
        await second.close()


async def test_sends_to_one_channel_are_spaced_and_other_channels_go_at_once(store: Store) -> None:
    # Two days due in one channel (the bot was down over midnight) and one in another.
    await subscribe(store, "busy", "23:30", "UTC", since="2024-05-31 00:00")
    await subscribe(store, "quiet", "00:10", "UTC", since="2024-05-31 00:00")
    clock = FakeClock(utc("2024-06-01 00:20"))
    order = []

    class Timed(Recorder):
        async def post(self, channel_id, reply, *, delivery_key=None) -> None:
            order.append((channel_id, asyncio.get_running_loop().time()))
            await super().post(channel_id, reply, delivery_key=delivery_key)

    poster = Timed()
    s = DailyScheduler(store, StandInQuotes(), {"discord": poster}, clock,
                       limits={"discord": SendLimits(concurrency=4, channel_interval=0.3)})
    assert sorted(o.result for o in await s.tick()) == ["sent"] * 2
    await s.tick(clock.at("2024-06-01 23:30"))
    busy = [t for c, t in order if c == "busy"]
    assert [c for c, _ in order] == ["busy", "quiet", "busy"] and busy[1] - busy[0] >= 0.3
