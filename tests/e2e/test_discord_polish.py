"""Discord UX details, end to end (``quotebot run --platform discord`` against the local Discord):
admin ``/daily`` needs Manage Channels, autocomplete for ``/quote`` topics and ``/daily`` time zones,
``/sources`` in pages turned with Previous/Next, Context on every quote, "Post to channel" shows the
question, help names the slash commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.discord_harness import Discord, bot_env, buttons, message_data, start_bot, write_corpus
from tests.e2e.discord_server import MANAGE_CHANNELS, LocalDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_corpus(tmp_path_factory.mktemp("corpus"))
    for i in range(14):
        (folder / f"garden{i:02d}.txt").write_text(f"- episode {i}: compost, seeds and a greenhouse.\n")
    return folder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def discord(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("work")
    server = LocalDiscord()
    await server.start()
    bot = start_bot(server, bot_env(server, corpus, workdir), workdir)
    await bot.start()
    yield Discord(server, bot)
    await bot.stop()
    await server.close()


def content(recorded) -> str:
    data = message_data(recorded)
    return (data.get("content") or "") + "".join(
        (e.get("description") or "") + (e.get("footer") or {}).get("text", "") for e in data.get("embeds") or [])


async def synced_commands(server: LocalDiscord) -> dict:
    [put] = await server.wait_for(lambda r: r.method == "PUT" and r.path.endswith("/commands"))
    return {c["name"]: c for c in put.body}


async def test_daily_is_offered_only_to_members_who_can_manage_channels(discord: Discord):
    commands = await synced_commands(discord.server)
    assert int(commands["daily"]["default_member_permissions"]) == MANAGE_CHANNELS
    assert commands["ask"].get("default_member_permissions") is None  # everyone may ask


async def autocomplete(discord: Discord, name: str, options: list[dict]) -> list[dict]:
    after = discord.server.mark()
    sent = await discord.server.autocomplete(name, options)
    [answer] = await discord.server.wait_for(lambda r: r.path == sent.callback_path, after=after)
    assert answer.body["type"] == 8  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
    return answer.body["data"]["choices"]


async def test_quote_topics_and_daily_time_zones_autocomplete(discord: Discord):
    topics = await autocomplete(discord, "quote", [{"type": 3, "name": "topic", "value": "rock", "focused": True}])
    assert topics and all("rock" in c["name"].lower() for c in topics)
    assert any(c["value"].startswith("Rockets, Mars") for c in topics)  # a source title
    zones = await autocomplete(discord, "daily", [{"type": 1, "name": "subscribe", "options": [
        {"type": 3, "name": "timezone", "value": "berl", "focused": True}]}])
    assert [c["value"] for c in zones][:1] == ["Europe/Berlin"]
    assert len(await autocomplete(discord, "daily", [{"type": 1, "name": "subscribe", "options": [
        {"type": 3, "name": "timezone", "value": "", "focused": True}]}])) == 25


async def test_sources_are_paged_with_previous_and_next(discord: Discord):
    server = discord.server
    after = server.mark()
    sent = await server.slash("sources")
    first = await server.wait_answer(sent, after=after)
    assert "1–10 of 15" in content(first) and set(buttons(message_data(first))) == {"Next"}
    _, second = await discord.press(first, "Next")
    assert second.body["type"] == 7  # UPDATE_MESSAGE: the page replaces the one shown
    assert "11–15 of 15" in content(second) and set(buttons(message_data(second))) == {"Previous"}
    shown = content(first) + content(second)
    assert all(f"garden{i:02d}" in shown for i in range(14))


async def test_every_quote_has_context_and_a_shared_answer_shows_the_question(discord: Discord):
    _, answer = await discord.ask("rocket")
    labels = set(buttons(message_data(answer)))
    assert {"Context 1", "Context 2", "Context 3"} <= labels
    footers = [e["footer"]["text"] for e in message_data(answer)["embeds"]]
    assert [f.split(".")[0] for f in footers] == ["1", "2", "3"]
    third = message_data(answer)["embeds"][2]["description"].replace("*", "").replace("\\", "")[:40]
    _, ctx = await discord.press(answer, "Context 3")
    assert third in content(ctx).replace("*", "").replace("\\", "")
    _, shared = await discord.press(answer, "Post to channel")
    assert "“rocket”" in content(shared)


async def test_help_lists_the_slash_commands(discord: Discord):
    server = discord.server
    after = server.mark()
    sent = await server.slash("help")
    text = content(await server.wait_answer(sent, after=after))
    assert "/sources" in text and "/daily" in text and "/quote" in text
    assert "  sources " not in text and "context N" not in text
