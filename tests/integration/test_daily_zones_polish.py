"""``daily subscribe 08:00 berlin``: a city that names exactly one IANA zone is that zone, not a topic."""

from __future__ import annotations

import pytest

from bot.core import CoreOptions, QuoteBot
from bot.daily import DailyService
from bot.daily.zones import zone_for_city
from bot.reply import Request, Via
from bot.store import open_store
from config.settings import Settings
from tests.integration.daily_support import StandInQuotes


@pytest.fixture
async def bot(tmp_path):
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'daily.sqlite3'}")
    core = QuoteBot(StandInQuotes(), CoreOptions(rate_per_minute=1000, rate_burst=1000),
                    daily=DailyService(store, StandInQuotes(), Settings(timezone="UTC")))
    yield core, store
    core.close()
    await store.close()


def subscribe(text: str) -> Request:
    return Request(text=text, user_id="u1", channel_id="c1", platform="discord", via=Via.MENTION, can_manage=True,
                   guild_id="g1")


@pytest.mark.parametrize(("words", "zone", "topic"), [
    ("08:00 berlin", "Europe/Berlin", None),
    ("08:00 BERLIN physics", "Europe/Berlin", "physics"),
    ("07:30 new_york", "America/New_York", None),
    ("08:00 physics", "UTC", "physics"),  # not a city: the topic
])
async def test_a_city_name_is_its_time_zone(bot, words, zone, topic):
    core, store = bot
    reply = await core.handle(subscribe(f"daily subscribe {words}"))
    assert "Daily quote on" in reply.text, reply.text
    sub = await store.subscription("discord", "c1")
    assert (sub.tz, sub.topic or None) == (zone, topic)


def test_only_unambiguous_cities_count():
    assert zone_for_city("Berlin") == "Europe/Berlin"
    assert zone_for_city("cordoba") is None  # America/Cordoba and America/Argentina/Cordoba
    assert zone_for_city("rockets") is None
