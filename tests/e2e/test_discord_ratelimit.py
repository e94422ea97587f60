"""Discord 429s, end to end (``quotebot run --platform discord`` against the local Discord): an answer outlasts
more consecutive 429s than discord.py retries by itself (5), and when Discord keeps refusing it past the
bot's bound the asker is told (privately for slash commands, with a short reply for mentions) instead of
the answer vanishing."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.e2e.discord_harness import Discord, bot_env, message_data, start_bot, write_corpus
from tests.e2e.discord_server import CHANNEL_ID, EPHEMERAL, LocalDiscord, Recorded, Sent

pytestmark = pytest.mark.asyncio(loop_scope="module")

CALLBACK = r"^/interactions/.*/callback$"
WEBHOOK = r"^/webhooks/"
CHANNEL_MESSAGES = rf"^/channels/{CHANNEL_ID}/messages$"
NOTICE_WORDS = "limiting how fast I can post"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def discord(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("work")
    server = LocalDiscord()
    await server.start()
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"))
    bot = start_bot(server, bot_env(server, corpus, workdir), workdir)
    await bot.start()
    yield Discord(server, bot)
    await bot.stop()
    await server.close()


@pytest.fixture(autouse=True)
def no_leftover_faults(discord: Discord):
    yield
    discord.server.clear_faults()


def text_of(recorded: Recorded) -> str:
    data = message_data(recorded)
    shown = (data.get("content") or "") + "".join(
        (e.get("title") or "") + (e.get("description") or "") for e in data.get("embeds") or [])
    return shown.replace("**", "")  # the words of the question are bold in the quote


def carries_answer(body) -> bool:
    """A message payload with quote cards (the answer), not a short text such as the notice."""
    data = (body or {}).get("data", body) if isinstance(body, dict) else {}
    return bool((data or {}).get("embeds"))


def for_interaction(sent: Sent):
    return lambda r: r.path == sent.callback_path or r.path.startswith(sent.webhook_path)


async def ask(discord: Discord, question: str) -> tuple[Sent, int]:
    after = discord.server.mark()
    sent = await discord.server.slash("ask", [{"name": "question", "type": 3, "value": question}])
    return sent, after


async def test_a_slash_answer_outlasts_seven_429s(discord: Discord):
    server = discord.server
    server.rate_limit("POST", CALLBACK, 0.05, times=7)
    server.rate_limit("POST", WEBHOOK, 0.05, times=7)  # should the bot defer, its follow-up meets them too
    sent, after = await ask(discord, "reusable rocket booster")
    answer = await server.wait_answer(sent, after=after, timeout=30)
    assert "reusable rocket" in text_of(answer).lower()
    limited = [r for r in server.requests[after:] if for_interaction(sent)(r) and r.status == 429]
    assert len(limited) >= 7  # more than discord.py's own 5 tries, and still answered


async def test_a_mention_reply_outlasts_seven_429s(discord: Discord):
    server = discord.server
    server.rate_limit("POST", CHANNEL_MESSAGES, 0.05, times=7)
    after = server.mark()
    said = await server.say("<@1100000000000000001> reusable rocket booster")
    [reply] = await server.wait_for(
        lambda r: r.path == f"/channels/{CHANNEL_ID}/messages" and r.status == 200, after=after, timeout=30)
    assert "reusable rocket" in text_of(reply).lower()
    assert str((reply.body.get("message_reference") or {}).get("message_id")) == said.id
    limited = [r for r in server.requests[after:] if r.path == f"/channels/{CHANNEL_ID}/messages" and r.status == 429]
    assert len(limited) == 7


async def test_past_the_bound_the_slash_asker_is_told_privately(discord: Discord):
    server = discord.server
    server.rate_limit("POST", CALLBACK, 0.01, times=1000, when=carries_answer)
    server.rate_limit("POST", WEBHOOK, 0.01, times=1000, when=carries_answer)
    sent, after = await ask(discord, "landing on the ship in the ocean")
    told = await server.wait_answer(sent, after=after, timeout=60)
    assert NOTICE_WORDS in text_of(told)
    assert (message_data(told).get("flags") or 0) & EPHEMERAL  # only the asker sees it
    mine = [r for r in server.requests[after:] if for_interaction(sent)(r)]
    assert not [r for r in mine if r.status < 300 and carries_answer(r.body)]  # the answer never got through
    limited = [r for r in mine if r.status == 429]
    assert 5 < len(limited) < 1000  # retried beyond discord.py's own tries, then gave up


async def test_past_the_bound_a_mention_gets_a_short_reply(discord: Discord):
    server = discord.server
    server.rate_limit("POST", CHANNEL_MESSAGES, 0.01, times=1000, when=carries_answer)
    after = server.mark()
    said = await server.say("<@1100000000000000001> landing on the ship in the ocean")
    [told] = await server.wait_for(
        lambda r: r.path == f"/channels/{CHANNEL_ID}/messages" and r.status == 200, after=after, timeout=60)
    assert NOTICE_WORDS in text_of(told) and not carries_answer(told.body)
    assert str((told.body.get("message_reference") or {}).get("message_id")) == said.id
    limited = [r for r in server.requests[after:] if r.path == f"/channels/{CHANNEL_ID}/messages" and r.status == 429]
    assert 5 < len(limited) < 1000
