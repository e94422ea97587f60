"""Daily posts through the real discord.py adapter against the local Discord: a lost answer after Discord stored
the message (HTTP 500, or the connection dropped) still posts exactly once, thanks to the nonce sent with
``enforce_nonce``; ``daily subscribe`` is refused where the bot lacks Send Messages / Embed Links, saying what to
grant; losing access later turns the subscription off and tells the subscriber once by DM; removal from a server
pauses that server's subscriptions (an outage does not).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from bot.daily import DailyScheduler, SendLimits
from bot.store import SENT
from tests.e2e.discord_harness import bot_env, message_data, write_corpus
from tests.e2e.discord_server import (
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    MODERATOR_ID,
    QUIET_CHANNEL_ID,
    SEND_MESSAGES,
    LocalDiscord,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Bot:
    """The Discord adapter in this event loop, wired like ``bot.app.serve``: store, daily service, core."""

    def __init__(self, server: LocalDiscord, workdir: Path, *, search_seconds: float = 0.0) -> None:
        self.server, self.workdir, self.search_seconds = server, workdir, search_seconds

    async def start(self) -> None:
        import discord
        from discord.gateway import DiscordWebSocket

        from bot.app import build_searcher, core_options
        from bot.core import QuoteBot
        from bot.daily import DailyService
        from bot.platforms.discord.adapter import DiscordAdapter
        from bot.store import open_store
        from config.settings import load_settings

        self.routing = (discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        settings = load_settings(bot_env(self.server, write_corpus(self.workdir / "corpus"), self.workdir),
                                 dotenv_path=None)
        self.searcher = await asyncio.to_thread(build_searcher, settings)
        if self.search_seconds:
            self.searcher = SlowSearch(self.searcher, self.search_seconds)
        self.store = await open_store(settings.database_url)
        self.daily = DailyService(self.store, self.searcher, settings)
        self.core = QuoteBot(self.searcher, core_options(settings), daily=self.daily)
        self.adapter = DiscordAdapter(self.core, settings, settings.platforms["discord"], store=self.store)
        self.daily.use_platforms({"discord": self.adapter})
        self.task = asyncio.create_task(self.adapter.serve())
        await self.server.wait_identified(1)
        await asyncio.wait_for(self.adapter._logged_in.wait(), 30)

    async def stop(self) -> None:
        import discord
        from discord.gateway import DiscordWebSocket

        await self.adapter.close()
        await asyncio.wait_for(self.task, 20)
        self.core.close()
        await self.store.close()
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self.routing

    def scheduler(self) -> DailyScheduler:
        return DailyScheduler(self.store, self.searcher, {"discord": self.adapter},
                              limits={"discord": SendLimits(concurrency=4, channel_interval=0)})

    async def daily_command(self, sub: str, channel: str, *, options: list | None = None) -> str:
        after = self.server.mark()
        sent = await self.server.slash("daily", [{"name": sub, "type": 1, "options": options or []}],
                                       user_id=MODERATOR_ID, channel_id=channel)
        return message_data(await self.server.wait_answer(sent, after=after))["content"]

    async def subscribe(self, channel: str) -> str:
        return await self.daily_command("subscribe", channel, options=[
            {"name": "time", "type": 3, "value": "09:00"}, {"name": "timezone", "type": 3, "value": "UTC"}])


class SlowSearch:
    """The real searcher, taking ``seconds`` longer to search (as under load)."""

    def __init__(self, inner, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def search(self, *args, **kwargs):
        time.sleep(self.seconds)
        return self.inner.search(*args, **kwargs)


@pytest_asyncio.fixture(loop_scope="module")
async def bot(tmp_path):
    server = LocalDiscord()
    await server.start()
    b = Bot(server, tmp_path)
    await b.start()
    yield b
    await b.stop()
    await server.close()


def next_nine() -> datetime:
    now = datetime.now(UTC)
    due = now.replace(hour=9, minute=0, second=0, microsecond=0)
    return due if due > now else due + timedelta(days=1)


def daily_posts(server: LocalDiscord, channel: str) -> list[dict]:
    return [m for m in server.channel_messages(channel)
            if m["author"]["id"] == BOT_ID and m["content"].startswith("Quote of the day")]


@pytest.mark.parametrize("how", ["500", "drop"])
async def test_a_lost_answer_after_discord_stored_the_message_posts_exactly_once(bot: Bot, how: str) -> None:
    assert "Daily quote on" in await bot.subscribe(CHANNEL_ID)
    bot.server.fail_after_store(f"/channels/{CHANNEL_ID}/messages$", how)
    due = next_nine()
    outcomes = await bot.scheduler().tick(due + timedelta(minutes=1))
    assert [o.result for o in outcomes] == ["sent"]
    for later in (2, 5, 30):
        assert await bot.scheduler().tick(due + timedelta(minutes=later)) == []
    [message] = daily_posts(bot.server, CHANNEL_ID)
    sends = [r for r in bot.server.requests if r.method == "POST" and r.path == f"/channels/{CHANNEL_ID}/messages"]
    # The send was repeated with the same nonce and Discord handed back the message it had.
    assert len(sends) == 2 and {r.message_id for r in sends} == {message["id"]}
    assert all(r.body["nonce"] == message["nonce"] and r.body["enforce_nonce"] is True for r in sends)
    sub = await bot.store.subscription("discord", CHANNEL_ID)
    [post] = await bot.store.posts_of(sub.id)
    assert post.status == SENT and message["nonce"].startswith(f"qd{post.id}-")
    assert await bot.adapter.find_delivery(CHANNEL_ID, message["nonce"]) is True
    assert await bot.adapter.find_delivery(CHANNEL_ID, "qd999-0") is False


async def test_subscribe_is_refused_without_send_messages_and_embed_links_and_says_what_to_grant(bot: Bot) -> None:
    refused = await bot.subscribe(QUIET_CHANNEL_ID)
    assert "Send Messages and Embed Links" in refused and "Nothing was changed" in refused
    assert await bot.store.subscription("discord", QUIET_CHANNEL_ID) is None
    assert "Daily quote on" in await bot.subscribe(CHANNEL_ID)


async def test_losing_access_later_turns_the_subscription_off_and_tells_the_subscriber_once(bot: Bot) -> None:
    assert "Daily quote on" in await bot.subscribe(CHANNEL_ID)
    bot.server.bot_denied[CHANNEL_ID] = SEND_MESSAGES  # permission taken away after subscribing
    due = next_nine()
    assert [o.result for o in await bot.scheduler().tick(due + timedelta(minutes=1))] == ["gone"]
    await bot.scheduler().tick(due + timedelta(days=1, minutes=1))
    sub = await bot.store.subscription("discord", CHANNEL_ID)
    assert not sub.enabled and "403" in sub.disabled_reason
    dms = [r for r in bot.server.requests if r.method == "POST" and r.path == "/users/@me/channels"]
    assert [str(r.body["recipient_id"]) for r in dms] == [MODERATOR_ID]
    [told] = [m for m in bot.server.messages.values() if m["channel_id"] not in (CHANNEL_ID, QUIET_CHANNEL_ID)]
    assert "daily subscribe" in told["content"] and f"<#{CHANNEL_ID}>" in told["content"]


async def _until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting")
        await asyncio.sleep(0.05)


async def test_removal_from_a_server_pauses_its_subscriptions_but_an_outage_does_not(bot: Bot) -> None:
    assert "Daily quote on" in await bot.subscribe(CHANNEL_ID)

    async def paused() -> bool:
        return not (await bot.store.subscription("discord", CHANNEL_ID)).enabled

    await bot.server.dispatch("GUILD_DELETE", {"id": GUILD_ID, "unavailable": True})  # an outage
    await asyncio.sleep(0.5)
    assert not await paused()
    await bot.server.dispatch("GUILD_DELETE", {"id": GUILD_ID})  # the bot was removed
    await _until(paused)
    assert "removed from the server" in (await bot.store.subscription("discord", CHANNEL_ID)).disabled_reason
    before = len(bot.server.messages)
    assert await bot.scheduler().tick(next_nine() + timedelta(minutes=1)) == []
    assert len(bot.server.messages) == before


async def test_a_stop_lets_a_deferred_answer_send_its_follow_up_before_the_gateway_closes(tmp_path) -> None:
    server = LocalDiscord()
    await server.start()
    b = Bot(server, tmp_path, search_seconds=2.0)
    await b.start()
    try:
        after = server.mark()
        sent = await server.slash("ask", [{"name": "question", "type": 3, "value": "reusable rocket"}])
        await server.wait_for(lambda r: r.path == sent.callback_path and r.body.get("type") == 5, after=after)
        await b.adapter.close()  # the stop comes while the answer is still being searched
        [follow_up] = await server.wait_for(
            lambda r: r.path.startswith(sent.webhook_path) and r.method in ("POST", "PATCH"), after=after, timeout=1)
        # Already there when close() returned: the answer went out before the session closed.
        assert follow_up.status == 200 and message_data(follow_up)["embeds"]
    finally:
        await b.stop()
        await server.close()
