"""The Discord bot end to end: the real discord.py client against a local Discord on 127.0.0.1.

The bot runs as ``quotebot run --platform discord`` with DISCORD_API_BASE / DISCORD_GATEWAY_URL
pointing at ``LocalDiscord``; tests inject what users do (slash commands, mentions, button
presses) and assert on the HTTP requests the bot really sent. The local server refuses
payloads over Discord's size limits with a 400, as Discord does.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.e2e.discord_harness import (
    TOKEN,
    BotInProcess,
    BotProcess,
    Discord,
    bot_env,
    buttons,
    cli_ready,
    custom_id_of,
    message_data,
    start_bot,
    write_corpus,
)
from tests.e2e.discord_server import (
    BOT_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    EPHEMERAL,
    GONE_CHANNEL_ID,
    GUILD_ID,
    MEMBER_ID,
    MODERATOR_ID,
    THREAD_ID,
    LocalDiscord,
    Recorded,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUPPRESS_EMBEDS = 1 << 2
APOLOGY = "Sorry, something went wrong on my side"
# What the log shows when an exception escaped every handler.
UNHANDLED = ("Task exception was never retrieved", "Ignoring exception", "failed; the bot keeps running")
INTENT_GUILDS, INTENT_GUILD_MESSAGES, INTENT_DMS, INTENT_CONTENT = 1 << 0, 1 << 9, 1 << 12, 1 << 15


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def discord(corpus: Path, workdir: Path):
    """One local Discord and one bot shared by the tests that do not restart or reconfigure it."""
    server = LocalDiscord()
    await server.start()
    bot = start_bot(server, bot_env(server, corpus, workdir), workdir)
    await bot.start()
    yield Discord(server, bot)
    code = await bot.stop()
    await server.close()
    if cli_ready():
        # SIGTERM ends the bot cleanly, and nothing the tests did escaped the handlers.
        assert code == 0, bot.output
        assert not [w for w in UNHANDLED if w in bot.output], bot.output


@pytest_asyncio.fixture(loop_scope="module")
async def fresh(corpus: Path, workdir: Path, tmp_path: Path):
    """Start a bot with extra settings on its own local Discord: ``await fresh(KEY="value")``."""
    started: list[Discord] = []

    async def start(server: LocalDiscord | None = None, **extra: str) -> Discord:
        if server is None:
            server = LocalDiscord()
            await server.start()
        bot = start_bot(server, bot_env(server, corpus, workdir, **extra), tmp_path)
        await bot.start()
        started.append(Discord(server, bot))
        return started[-1]

    yield start
    for d in started:
        await d.bot.stop()
    for server in {id(d.server): d.server for d in started}.values():
        await server.close()


def embeds(recorded: Recorded) -> list[dict]:
    return message_data(recorded).get("embeds") or []


def plain(markdown: str) -> str:
    """Embed markdown without the bold marks, for comparing texts."""
    return markdown.replace("**", "")


def pings_nobody(allowed_mentions: dict) -> bool:
    """allowed_mentions that let no one be pinged: no parse types, no users, no roles, no reply ping."""
    return allowed_mentions.get("parse") == [] and not any(
        allowed_mentions.get(k) for k in ("users", "roles", "replied_user")
    )


# --- start-up -------------------------------------------------------------------------------


async def test_bot_logs_in_identifies_and_syncs_slash_commands(discord: Discord) -> None:
    server = discord.server
    me = next(r for r in server.requests if r.path == "/users/@me")
    assert me.headers["Authorization"] == f"Bot {TOKEN}"
    intents = server.identifies[0]["intents"]
    assert intents & INTENT_GUILDS and intents & INTENT_GUILD_MESSAGES and intents & INTENT_DMS
    assert not intents & INTENT_CONTENT, "the privileged message_content intent must be off unless configured"
    (put,) = [r for r in server.requests if r.method == "PUT" and r.path.endswith("/commands")]
    commands = {c["name"]: c for c in put.body}
    assert set(commands) == {"ask", "quote", "sources", "help", "daily", "quote-admin"}
    assert int(commands["quote-admin"]["default_member_permissions"]) == 32  # Manage Server
    question = commands["ask"]["options"][0]
    assert question["name"] == "question" and question["required"] is True and question["type"] == 3
    assert {o["name"] for o in commands["daily"]["options"]} == {"subscribe", "off", "status", "now"}
    if cli_ready():
        output = discord.bot.output
        assert "prefix commands" in output and "message_content intent is not enabled" in output
        assert TOKEN not in output, "the token must never appear in the log"


async def test_rejected_token_is_named_and_never_shown(corpus: Path, workdir: Path, tmp_path: Path) -> None:
    server = LocalDiscord()
    await server.start()
    wrong = "wrong-token-abc123"
    env = bot_env(server, corpus, workdir, DISCORD_TOKEN=wrong)
    try:
        if cli_ready():
            bot = BotProcess(server, env, tmp_path)
            assert await bot.run_to_end() != 0
            assert "DISCORD_TOKEN: Discord rejected the token" in bot.output
            assert wrong not in bot.output
        else:
            from bot.app import build_searcher, core_options
            from bot.core import QuoteBot
            from bot.platform import PlatformUnavailable
            from bot.platforms.discord.adapter import DiscordAdapter
            from config.settings import load_settings

            settings = load_settings(env, dotenv_path=None)
            core = QuoteBot(build_searcher(settings), core_options(settings))
            adapter = DiscordAdapter(core, settings, settings.platforms["discord"])
            routing = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
            try:
                with pytest.raises(PlatformUnavailable, match="DISCORD_TOKEN: Discord rejected the token") as caught:
                    await adapter.serve()
            finally:
                Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = routing
            assert wrong not in str(caught.value)
        (login,) = server.requests
        assert login.path == "/users/@me" and login.status == 401
    finally:
        await server.close()


# --- slash commands -------------------------------------------------------------------------


async def test_ask_answers_privately_with_timestamp_link_bold_words_and_buttons(discord: Discord) -> None:
    _, answer = await discord.ask("reusable rocket")
    assert answer.body["type"] == 4, "answered at once, not deferred"
    data = message_data(answer)
    assert data["flags"] & EPHEMERAL
    assert pings_nobody(data["allowed_mentions"])
    first = embeds(answer)[0]
    assert first["title"] == r"Rockets, Mars and the \*future\* of everything"
    link = re.fullmatch(r"https://www\.youtube\.com/watch\?v=abcdefghijk&t=(\d+)s", first["url"])
    assert link, first["url"]
    minutes, seconds = map(int, re.search(r"(\d+):(\d\d)$", first["footer"]["text"]).groups())
    assert int(link.group(1)) <= minutes * 60 + seconds, "the link starts at or before the quoted moment"
    assert re.search(r"\*\*[Rr]ocket\*\*", first["description"]), first["description"]
    assert "A reusable rocket changes everything" in plain(first["description"])
    assert first["thumbnail"]["url"] == "https://i.ytimg.com/vi/abcdefghijk/hqdefault.jpg"
    found = buttons(data)
    assert set(found) == {"More", "Context 1", "Context 2", "Context 3", "Post to channel"}  # Context on each
    assert all(cid.startswith("qb:") for cid in found.values())


async def test_slow_answer_is_deferred_then_followed_up(fresh) -> None:
    d = await fresh(QUOTEBOT_DEFER_AFTER="0.001")  # the smallest accepted: a search takes longer
    after = d.server.mark()
    sent = await d.server.slash("ask", [{"name": "question", "type": 3, "value": "landing the rocket on the ship"}])
    follow_up = await d.server.wait_answer(sent, after=after)
    requests = d.server.requests[after:]
    (callback,) = [r for r in requests if r.path == sent.callback_path]
    assert callback.body["type"] == 5, "deferred (thinking) first"
    assert callback.body["data"]["flags"] & EPHEMERAL
    assert requests.index(callback) < requests.index(follow_up)
    assert follow_up.method == "POST" and follow_up.path.startswith(sent.webhook_path)
    assert "Landing the rocket back on the ship" in plain(embeds(follow_up)[0]["description"])
    assert pings_nobody(follow_up.body["allowed_mentions"])
    assert "More" in buttons(follow_up.body) or "Context 1" in buttons(follow_up.body)

    # A /quote is deferred publicly when it is slow; when its answer turns out private (nothing found), it
    # stays private: the public "thinking…" is replaced by a note and deleted. An empty topic search can take
    # under a millisecond, so it may also be answered at once, privately.
    after = d.server.mark()
    sent = await d.server.slash("quote", [{"name": "topic", "type": 3, "value": "zebras"}])
    (first,) = await d.server.wait_for(lambda r: r.path == sent.callback_path, after=after)
    if first.body["type"] == 5:
        assert not first.body.get("data", {}).get("flags", 0) & EPHEMERAL
        await d.server.wait_for(lambda r: r.method == "DELETE" and r.path.startswith(sent.webhook_path), after=after)
        mine = [r for r in d.server.requests[after:] if sent.token in r.path]
        (private,) = [r for r in mine if r.method == "POST" and r.path == sent.webhook_path]
        private_body = private.body
    else:
        mine = [first]
        assert first.body["type"] == 4
        private_body = first.body["data"]
    assert private_body["flags"] & EPHEMERAL and "found nothing" in private_body["content"]
    assert "zebras" not in json.dumps([r.body for r in mine if r.method == "PATCH"]), "nothing private shown publicly"
    assert all(m["flags"] & EPHEMERAL for m in d.server.messages.values() if "zebras" in json.dumps(m))


async def test_quote_and_sources_and_help(discord: Discord) -> None:
    after = discord.server.mark()
    sent = await discord.server.slash("quote", [{"name": "topic", "type": 3, "value": "rocket"}])
    quote = await discord.server.wait_answer(sent, after=after)
    assert "rocket" in plain(embeds(quote)[0]["description"]).lower()
    assert not message_data(quote).get("flags", 0) & EPHEMERAL, "a /quote is for the channel"
    sent = await discord.server.slash("sources")
    sources = await discord.server.wait_answer(sent, after=after)
    assert "Rockets, Mars and the \\*future\\* of everything" in message_data(sources)["content"]
    assert message_data(sources)["flags"] & SUPPRESS_EMBEDS, "no link previews under the list"
    sent = await discord.server.slash("help")
    help_ = await discord.server.wait_answer(sent, after=after)
    assert "verbatim" in message_data(help_)["content"]
    assert message_data(help_)["flags"] & EPHEMERAL


async def test_quote_that_says_everyone_pings_nobody(discord: Discord) -> None:
    _, answer = await discord.ask("fermi paradox aliens")
    text = json.dumps(answer.body, ensure_ascii=False)
    assert "@\u200beveryone" in text
    assert not re.search("@everyone", text), "the raw @everyone must not reach Discord"
    assert pings_nobody(message_data(answer)["allowed_mentions"])
    after = discord.server.mark()
    said = await discord.server.say(f"<@{BOT_ID}> what about the fermi paradox")
    (reply,) = await discord.server.wait_for(lambda r: r.path == f"/channels/{CHANNEL_ID}/messages", after=after)
    assert pings_nobody(reply.body["allowed_mentions"])
    assert "@everyone" not in json.dumps(reply.body, ensure_ascii=False)
    assert str(reply.body["message_reference"]["message_id"]) == said.id


# --- mentions and prefix commands -----------------------------------------------------------


async def test_mention_in_a_thread_is_answered_in_that_thread(discord: Discord) -> None:
    after = discord.server.mark()
    said = await discord.server.say(f"<@{BOT_ID}> tunnels under cities", channel_id=THREAD_ID)
    (reply,) = await discord.server.wait_for(lambda r: r.path.startswith("/channels/"), after=after)
    assert reply.path == f"/channels/{THREAD_ID}/messages"
    assert reply.status == 200
    assert "Tunnels under cities could fix traffic" in plain(reply.body["embeds"][0]["description"])
    assert str(reply.body["message_reference"]["message_id"]) == said.id
    assert pings_nobody(reply.body["allowed_mentions"])
    assert "Post to channel" not in buttons(reply.body), "a public answer has nothing to post"


async def test_direct_message_is_answered_in_the_dm(discord: Discord) -> None:
    after = discord.server.mark()
    await discord.server.say("what about solar power", channel_id=DM_CHANNEL_ID, mention_bot=False)
    (reply,) = await discord.server.wait_for(lambda r: r.path.startswith("/channels/"), after=after)
    assert reply.path == f"/channels/{DM_CHANNEL_ID}/messages" and reply.status == 200
    assert "Solar power plus batteries" in plain(reply.body["embeds"][0]["description"])


async def test_prefix_command_is_ignored_without_message_content_intent(discord: Discord) -> None:
    after = discord.server.mark()
    await discord.server.say("!ask rocket", mention_bot=False)
    said = await discord.server.say(f"<@{BOT_ID}> rocket")
    (first,) = await discord.server.wait_for(lambda r: r.path.startswith("/channels/"), after=after)
    # Events are handled in order: the prefix message came first and got no answer.
    assert str(first.body["message_reference"]["message_id"]) == said.id


async def test_prefix_command_works_with_message_content_intent(fresh) -> None:
    d = await fresh(DISCORD_MESSAGE_CONTENT="true", DISCORD_PREFIX="!")
    assert d.server.identifies[-1]["intents"] & INTENT_CONTENT
    after = d.server.mark()
    said = await d.server.say("!quote rocket", mention_bot=False)
    (reply,) = await d.server.wait_for(lambda r: r.path == f"/channels/{CHANNEL_ID}/messages", after=after)
    assert str(reply.body["message_reference"]["message_id"]) == said.id
    assert "rocket" in plain(reply.body["embeds"][0]["description"]).lower()


# --- buttons --------------------------------------------------------------------------------


async def test_more_button_pages_and_context_button_widens(discord: Discord) -> None:
    _, answer = await discord.ask("rocket")
    first_page = [plain(e["description"]) for e in embeds(answer)]
    assert len(first_page) == 3
    _, more = await discord.press(answer, "More")
    assert more.body["type"] == 4
    assert "Results 4" in message_data(more)["content"]
    assert not set(plain(e["description"]) for e in embeds(more)) & set(first_page), "the next page is new"
    _, context = await discord.press(answer, "Context 1")
    widened = plain(embeds(context)[0]["description"])
    assert first_page[0].rstrip("…") in widened and len(widened) > len(first_page[0])
    assert message_data(context)["flags"] & EPHEMERAL


async def test_post_to_channel_posts_the_answer_publicly(discord: Discord) -> None:
    _, answer = await discord.ask("solar power batteries")
    _, posted = await discord.press(answer, "Post to channel")
    data = message_data(posted)
    assert posted.body["type"] == 4
    assert not data.get("flags", 0) & EPHEMERAL, "posted for everyone to see"
    assert [e["description"] for e in data["embeds"]] == [e["description"] for e in embeds(answer)]
    assert "Post to channel" not in buttons(data)
    assert pings_nobody(data["allowed_mentions"])


async def test_stale_button_answers_politely(discord: Discord) -> None:
    _, answer = await discord.ask("rocket")
    message = discord.server.message_sent(answer)
    stale = dict(message, components=[{"type": 1, "components": [
        {"type": 2, "style": 2, "label": "More", "custom_id": "qb:more:0123456789abcdef:3"}]}])
    after = discord.server.mark()
    sent = await discord.server.press("qb:more:0123456789abcdef:3", stale)
    reply = await discord.server.wait_answer(sent, after=after)
    assert "no longer have" in message_data(reply)["content"]
    assert message_data(reply)["flags"] & EPHEMERAL


async def test_restart_keeps_buttons_working_and_does_not_resync(fresh) -> None:
    first = await fresh()
    server = first.server
    assert [r for r in server.requests if r.method == "PUT" and r.path.endswith("/commands")]
    _, answer = await first.ask("rocket")
    code = await first.bot.stop()
    # A close frame, not a dropped connection (discord.py's reader sends 4000 while its close() sends 1000).
    assert await server.wait_disconnected() in (1000, 4000), "closed the gateway with a close frame"
    if cli_ready():
        assert code == 0, first.bot.output
        assert "Traceback" not in first.bot.output and "Discord client closed" in first.bot.output
    after = server.mark()
    second = await fresh(server)
    assert not [r for r in server.requests[after:] if r.path.endswith("/commands")], "commands unchanged: no sync"
    _, more = await second.press(answer, "More")
    if cli_ready():
        assert "Results 4" in message_data(more)["content"], "the button state survived the restart"
    else:
        assert "no longer have" in message_data(more)["content"]
    _, context = await second.press(answer, "Context 1")
    assert embeds(context) and message_data(context)["flags"] & EPHEMERAL


# --- limits, rate limits, failures ----------------------------------------------------------


@pytest.mark.parametrize("where", ["channel message", "interaction callback"])
async def test_429_is_retried_after_retry_after(discord: Discord, where: str) -> None:
    server = discord.server
    after = server.mark()
    if where == "channel message":
        path = re.escape(f"/channels/{CHANNEL_ID}/messages")
        server.rate_limit_once("POST", f"^{path}$", 0.4)
        await server.say(f"<@{BOT_ID}> batteries")
        tries = await server.wait_for(lambda r: re.fullmatch(path, r.path) is not None, after=after, count=2)
    else:
        server.rate_limit_once("POST", r"^/interactions/.*/callback$", 0.4)
        sent = await server.slash("ask", [{"name": "question", "type": 3, "value": "batteries"}])
        tries = await server.wait_for(lambda r: r.path == sent.callback_path, after=after, count=2)
    limited, retried = tries
    assert (limited.status, retried.status) == (429, 200)
    assert retried.body == limited.body
    assert retried.at - limited.at >= 0.4, "waited retry_after before retrying"


async def test_failed_send_is_answered_with_apology_and_bot_keeps_serving(discord: Discord) -> None:
    server = discord.server
    server.fail_once("POST", r"^/interactions/.*/callback$", 400, {"message": "Invalid Form Body", "code": 50035})
    after = server.mark()
    sent = await server.slash("ask", [{"name": "question", "type": 3, "value": "batteries"}])
    failed, apology = await server.wait_for(lambda r: r.path == sent.callback_path, after=after, count=2)
    assert failed.status == 400 and apology.status == 200
    data = message_data(apology)
    assert data["content"].startswith(APOLOGY) and data["flags"] & EPHEMERAL
    if cli_ready():
        ref = re.search(r"Reference: ([0-9a-f]{8})", data["content"]).group(1)
        assert f"discord /ask failed ref={ref}" in discord.bot.output, "logged with the same reference"
    _, answer = await discord.ask("batteries")
    assert any("Batteries have improved every year" in plain(e["description"]) for e in embeds(answer))


async def test_sharded_bot_identifies_its_shard_and_answers(fresh) -> None:
    shard = (int(GUILD_ID) >> 22) % 2
    d = await fresh(DISCORD_SHARD_COUNT="2", DISCORD_SHARD_IDS=str(shard))
    assert d.server.identifies[-1]["shard"] == [shard, 2]
    _, answer = await d.ask("tunnels")
    assert embeds(answer)


async def test_moderator_may_manage_daily_posts_and_member_may_not(discord: Discord) -> None:
    if not cli_ready():
        pytest.skip("daily posts are wired by bot.app, which runs with the CLI")
    # Twelve hours away, so no post falls due while the other tests run.
    hhmm = (datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(hours=12)).strftime("%H:%M")
    after = discord.server.mark()
    options = [{"name": "subscribe", "type": 1, "options": [
        {"name": "time", "type": 3, "value": hhmm}, {"name": "timezone", "type": 3, "value": "Europe/Berlin"}]}]
    sent = await discord.server.slash("daily", options, user_id=MEMBER_ID)
    refused = await discord.server.wait_answer(sent, after=after)
    assert "Manage Channels" in message_data(refused)["content"]
    assert message_data(refused)["flags"] & EPHEMERAL
    sent = await discord.server.slash("daily", options, user_id=MODERATOR_ID)
    allowed = await discord.server.wait_answer(sent, after=after)
    assert f"{hhmm} Europe/Berlin" in message_data(allowed)["content"]
    sent = await discord.server.slash("daily", [{"name": "status", "type": 1, "options": []}], user_id=MEMBER_ID)
    status = await discord.server.wait_answer(sent, after=after)
    assert f"{hhmm} Europe/Berlin" in message_data(status)["content"]
    assert "Next post" in message_data(status)["content"]


# --- in-process: a searcher that misbehaves on purpose --------------------------------------


def _tricky_searcher(settings):
    """The real searcher, except that "explode" raises and "longwinded" returns huge passages."""
    from bot.app import build_searcher
    from retrieval.search import Searcher

    base = build_searcher(settings)

    class Tricky(Searcher):
        def search(self, query: str, k: int = 5, offset: int = 0):
            if "explode" in query:
                raise RuntimeError("searcher failure for the test")
            if "longwinded" in query:
                hits = super().search("rocket", k, offset)
                return [replace(h, passage=replace(h.passage, text=(h.text + " ") * 40)) for h in hits]
            return super().search(query, k, offset)

    return Tricky(base.index, base.analyzer)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tricky(corpus: Path, workdir: Path):
    server = LocalDiscord()
    await server.start()
    bot = BotInProcess(server, bot_env(server, corpus, workdir), _tricky_searcher)
    await bot.start()
    yield Discord(server, bot)
    await bot.stop()
    await server.close()


async def test_handler_exception_is_answered_with_apology_and_bot_keeps_serving(tricky: Discord) -> None:
    _, answer = await tricky.ask("explode please")
    data = message_data(answer)
    assert data["content"].startswith(APOLOGY) and re.search(r"Reference: [0-9a-f]{8}\.", data["content"])
    assert data["flags"] & EPHEMERAL
    after = tricky.server.mark()
    await tricky.server.say(f"<@{BOT_ID}> explode again")
    (reply,) = await tricky.server.wait_for(lambda r: r.path.startswith("/channels/"), after=after)
    assert reply.body["content"].startswith(APOLOGY)
    assert pings_nobody(reply.body["allowed_mentions"])
    _, fine = await tricky.ask("tunnels")
    assert "Tunnels under cities" in plain(embeds(fine)[0]["description"])


async def test_over_long_passages_are_trimmed_within_discord_limits(tricky: Discord) -> None:
    _, answer = await tricky.ask("longwinded rocket")
    assert answer.status == 200, "Discord would have refused an over-long message"
    descriptions = [e["description"] for e in embeds(answer)]
    assert len(descriptions) == 3
    assert all(len(d) <= 4096 and d.endswith("…") for d in descriptions)
    total = sum(len(e["title"]) + len(e["description"]) + len(e["footer"]["text"]) for e in embeds(answer))
    assert total <= 6000
    assert min(len(d) for d in descriptions) > 1000, "each quote keeps a fair share"
    assert custom_id_of(message_data(answer), "Context 1").startswith("qb:ctx:")


async def test_daily_post_renders_through_post_and_gone_channel_is_reported(tricky: Discord) -> None:
    from bot.daily import ChannelGone, daily_reply

    hit = tricky.bot.adapter.core.searcher.search("fermi paradox", 1)[0]
    reply = daily_reply(hit, None, nonce="qd1")
    after = tricky.server.mark()
    await tricky.bot.adapter.post(CHANNEL_ID, reply)
    (sent,) = await tricky.server.wait_for(lambda r: r.path.startswith("/channels/"), after=after)
    assert sent.path == f"/channels/{CHANNEL_ID}/messages" and sent.status == 200
    assert sent.body["content"] == "Quote of the day"
    (embed,) = sent.body["embeds"]
    assert re.search(r"&t=\d+s$", embed["url"]) and "Fermi paradox" in plain(embed["description"])
    assert "@\u200beveryone" in embed["description"] and pings_nobody(sent.body["allowed_mentions"])
    assert "flags" not in sent.body or not sent.body["flags"] & EPHEMERAL
    assert set(buttons(sent.body)) == {"Context"}
    with pytest.raises(ChannelGone):
        await tricky.bot.adapter.post(GONE_CHANNEL_ID, reply)
