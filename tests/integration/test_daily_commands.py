"""The ``daily`` commands through the real core and a real database: who may change what, what people are told."""

from __future__ import annotations

from datetime import date

import pytest

from bot.core import CoreOptions, QuoteBot
from bot.daily import DailyScheduler, DailyService
from bot.reply import Request, Via
from bot.store import CLAIMED, FAILED, SENT, Store, open_store
from config.settings import Settings
from tests.integration.daily_support import (
    QUOTES,
    FakeClock,
    Recorder,
    StandInQuotes,
    utc,
)


@pytest.fixture
async def store(db_url: str):
    s = await open_store(db_url)
    yield s
    await s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc("2024-06-01 06:00"))


@pytest.fixture
def bot(store: Store, clock: FakeClock) -> QuoteBot:
    service = DailyService(store, StandInQuotes(), Settings(timezone="Europe/Berlin"), clock=clock)
    core = QuoteBot(StandInQuotes(), CoreOptions(rate_per_minute=1000, rate_burst=1000), daily=service)
    yield core
    core.close()


def ask(text: str, *, manage: bool = True, platform: str = "discord", channel: str = "c1",
        zone: str | None = None) -> Request:
    return Request(text=text, user_id="u1", channel_id=channel, platform=platform, via=Via.MENTION,
                   can_manage=manage, guild_id="g1", default_timezone=zone)


async def test_members_without_permission_are_refused_and_nothing_changes(bot: QuoteBot, store: Store) -> None:
    reply = await bot.handle(ask("daily subscribe 08:00", manage=False))
    assert reply.text == "Only members with the Manage Channels permission can change this channel's daily quote."
    assert reply.ephemeral and reply.kind == "refused"
    reply = await bot.handle(ask("daily subscribe", manage=False, platform="slack", channel="C1"))
    assert "Only workspace admins or the channel's creator" in reply.text
    assert await store.subscription("discord", "c1") is None
    assert await store.subscription("slack", "C1") is None
    # With a subscription in place, off and now are refused too, and status is open to everyone.
    await bot.handle(ask("daily subscribe"))
    for command in ("daily off", "daily now"):
        assert (await bot.handle(ask(command, manage=False))).kind == "refused"
    assert (await store.subscription("discord", "c1")).enabled
    assert "Next post" in (await bot.handle(ask("daily status", manage=False))).text


async def test_subscribe_uses_nine_oclock_and_the_servers_zone_by_default(bot: QuoteBot, store: Store) -> None:
    reply = await bot.handle(ask("daily subscribe"))
    assert reply.kind == "daily" and not reply.ephemeral
    assert reply.text == ("Daily quote on: every day at 09:00 Europe/Berlin.\n"
                          "Next post: Sat 01 Jun 2024, 09:00 CEST (07:00 UTC)")
    sub = await store.subscription("discord", "c1")
    assert (sub.local_time, sub.tz, sub.topic, sub.guild_id, sub.created_by) == ("09:00", "Europe/Berlin", None,
                                                                               "g1", "u1")
    # The guild's or workspace's own zone, when the adapter knows it, wins over the bot's setting.
    await bot.handle(ask("daily subscribe", channel="c2", zone="America/New_York"))
    assert (await store.subscription("discord", "c2")).tz == "America/New_York"


async def test_subscribe_takes_a_time_a_zone_and_a_topic(bot: QuoteBot, store: Store) -> None:
    reply = await bot.handle(ask("daily subscribe 7:30pm asia/tokyo physics"))
    assert reply.text.startswith("Daily quote on: every day at 19:30 Asia/Tokyo, about “physics”.")
    status = await bot.handle(ask("daily status"))
    assert status.text == ("Daily quote: every day at 19:30 Asia/Tokyo, about “physics”.\n"
                           "Next post: Sat 01 Jun 2024, 19:30 JST (10:30 UTC)")
    sub = await store.subscription("discord", "c1")
    assert (sub.local_time, sub.tz, sub.topic) == ("19:30", "Asia/Tokyo", "physics")


async def test_status_shows_the_next_post_in_local_time_across_a_dst_change(
    bot: QuoteBot, clock: FakeClock
) -> None:
    clock.at("2024-03-30 10:00")  # after Saturday's 09:00 CET; Sunday is summer time
    await bot.handle(ask("daily subscribe 09:00 Europe/Berlin"))
    status = await bot.handle(ask("daily status"))
    assert status.text.endswith("Next post: Sun 31 Mar 2024, 09:00 CEST (07:00 UTC)")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("daily subscribe 25:00", "“25:00” is not a time of day. Use HH:MM on a 24-hour clock, e.g. 09:00 or 17:30. "
                                  "Nothing was changed."),
        ("daily subscribe 08:00 Europe/Berlinn", "Unknown time zone “Europe/Berlinn”. Use an IANA name such as "
                                                  "Europe/Berlin, America/New_York or UTC. Nothing was changed."),
        ("daily subscribe 08:00 UTC knitting", "I have no quotes about “knitting”, so nothing was changed. "
                                               "Try another topic, or none."),
    ],
)
async def test_a_bad_time_zone_or_topic_is_named_and_nothing_changes(
    bot: QuoteBot, store: Store, command: str, message: str
) -> None:
    await bot.handle(ask("daily subscribe 06:45 America/New_York"))
    reply = await bot.handle(ask(command))
    assert reply.text == message and reply.ephemeral and reply.kind == "bad_input"
    sub = await store.subscription("discord", "c1")
    assert (sub.local_time, sub.tz, sub.topic) == ("06:45", "America/New_York", None)


async def test_off_stops_the_posts_and_subscribe_starts_them_again(bot: QuoteBot, store: Store,
                                                                 clock: FakeClock) -> None:
    await bot.handle(ask("daily subscribe 09:00 UTC"))
    reply = await bot.handle(ask("daily off"))
    assert reply.text == "Daily quote turned off for this channel. `daily subscribe` starts it again."
    assert (await bot.handle(ask("daily status"))).text.startswith("The daily quote here is off (turned off by u1)")
    assert (await bot.handle(ask("daily off"))).text == "This channel has no daily quote to turn off."
    poster = Recorder()
    scheduler = DailyScheduler(store, StandInQuotes(), {"discord": poster}, clock)
    await scheduler.tick(clock.at("2024-06-01 09:00"))
    assert poster.sent == []
    await bot.handle(ask("daily subscribe 10:00 UTC"))
    await scheduler.tick(clock.at("2024-06-01 10:00"))
    assert [c for c, _ in poster.sent] == ["c1"]


async def test_now_posts_todays_quote_which_then_counts_as_today(bot: QuoteBot, store: Store,
                                                                clock: FakeClock) -> None:
    assert (await bot.handle(ask("daily now"))).text.startswith("This channel has no daily quote yet.")
    await bot.handle(ask("daily subscribe 09:00 UTC"))
    reply = await bot.handle(ask("daily now"))
    assert reply.kind == "daily" and not reply.ephemeral and reply.text == "Quote of the day"
    [card] = reply.cards
    assert card.text in QUOTES
    # Asked again the same day: the same quote, shown only to the asker, not posted twice.
    again = await bot.handle(ask("daily now"))
    assert again.ephemeral and again.text.startswith("Today's quote was already posted here.")
    assert again.cards[0].passage_key == card.passage_key
    # The scheduled time passes without a second post today; tomorrow brings a different quote.
    poster = Recorder()
    scheduler = DailyScheduler(store, StandInQuotes(), {"discord": poster}, clock)
    await scheduler.tick(clock.at("2024-06-01 09:00"))
    assert poster.sent == []
    await scheduler.tick(clock.at("2024-06-02 09:00"))
    assert len(poster.sent) == 1 and poster.sent[0][1].cards[0].passage_key != card.passage_key
    sub = await store.subscription("discord", "c1")
    assert [(p.local_date, p.status) for p in await store.posts_of(sub.id)] == [(date(2024, 6, 1), SENT),
                                                                               (date(2024, 6, 2), SENT)]


async def test_now_can_post_a_day_whose_scheduled_send_failed(bot: QuoteBot, store: Store, clock: FakeClock) -> None:
    await bot.handle(ask("daily subscribe 07:00 UTC"))
    sub = await store.subscription("discord", "c1")
    post = await store.claim(sub.id, date(2024, 6, 1), now=clock(), owner="x#1", lease_until=clock())
    await store.transition(post.id, now=clock(), from_status=[CLAIMED], status=FAILED, last_error="HTTP 500")
    reply = await bot.handle(ask("daily now"))
    assert reply.kind == "daily" and reply.cards and not reply.ephemeral
    assert (await store.post(sub.id, date(2024, 6, 1))).status == SENT


async def test_help_and_unknown_subcommands_explain_the_commands(bot: QuoteBot) -> None:
    reply = await bot.handle(ask("daily"))
    assert "daily subscribe [HH:MM] [Area/City] [topic]" in reply.text and "default 09:00, Europe/Berlin" in reply.text
    assert "Manage Channels" in reply.text and reply.ephemeral
    # "daily sometimes" typed in a message is a question (a command word counts only with its own arguments);
    # as the /daily slash command, the unknown subcommand is explained.
    reply = await bot.handle(Request(text="sometimes", command="daily", user_id="u1", channel_id="c1",
                                     platform="discord", via=Via.SLASH, can_manage=True, guild_id="g1"))
    assert reply.text.startswith("I don't know `daily sometimes`.") and "daily status" in reply.text
