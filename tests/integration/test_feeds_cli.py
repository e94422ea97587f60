"""Podcast feeds through the real command line and the real running bot (console), against a local HTTP server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.integration.feeds_support import write_local_corpus

QUOTEBOT = shutil.which("quotebot", path=str(Path(sys.executable).parent)) or "quotebot"
WAIT = 60.0  # a safety net for a hung process, not a speed check


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    corpus = write_local_corpus(tmp_path / "corpus")
    out = {k: v for k, v in os.environ.items() if not k.startswith(("QUOTEBOT_", "DISCORD_", "SLACK_"))}
    out.update(QUOTEBOT_CORPUS=str(corpus), QUOTEBOT_INDEX_DIR=str(tmp_path / "idx"), QUOTEBOT_DOTENV="",
               QUOTEBOT_SEARCH_MODE="lexical", HF_HUB_OFFLINE="1", QUOTEBOT_FEED_TIMEOUT_SECONDS="5")
    return out


async def quotebot(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    p = await asyncio.create_subprocess_exec(QUOTEBOT, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    out, err = await asyncio.wait_for(p.communicate(), WAIT)
    return p.returncode, out.decode(), err.decode()


async def test_cli_feed_add_then_search_json_finds_every_episode_with_titles_and_links(site, env):
    code, out, err = await quotebot(env, "feed", "add", f"{site.base}/feed.xml")
    assert code == 0, err
    assert "Harbour Lights" in out and "3 new episode(s)" in out
    assert "new: Episode 1: The Last Lighthouse Keeper" in out

    code, out, err = await quotebot(env, "search", "--json", "--top-k", "1", "foghorn")
    assert code == 0, err
    [hit] = json.loads(out)["results"]
    assert hit["title"] == "Episode 1: The Last Lighthouse Keeper — Harbour Lights"
    assert hit["speaker"] == "Tobias Wren" and hit["start"] == 23.25
    assert hit["url"] == f"{site.base}/media/ep1.mp3#t=23"
    for query, title in (("breakwater honey summer storm", "Episode 2: Bees on the Breakwater — Harbour Lights"),
                         ("sourdough stoneware crock", "Episode 3: Sourdough at Sea — Harbour Lights")):
        code, out, _ = await quotebot(env, "search", "--json", "--top-k", "1", query)
        assert json.loads(out)["results"][0]["title"] == title

    code, out, _ = await quotebot(env, "feed", "list")
    assert code == 0
    assert f"Harbour Lights — {site.base}/feed.xml (added)" in out
    assert "3 episode(s) stored" in out and "1 item(s) offer no transcript" in out

    code, out, _ = await quotebot(env, "feed", "add", f"{site.base}/feed.xml")
    assert code == 0 and "already followed" in out

    code, out, _ = await quotebot(env, "feed", "refresh")
    assert code == 0 and "not modified since the last fetch (HTTP 304)" in out

    site.fail("/missing.xml", 404)
    code, out, err = await quotebot(env, "feed", "add", f"{site.base}/missing.xml")
    assert code == 1 and f"{site.base}/missing.xml: HTTP 404 Not Found" in err and "not added" in err

    code, out, err = await quotebot(env, "feed", "remove", "Harbour", "Lights")
    assert code == 0 and "3 episode(s) removed" in out
    code, out, _ = await quotebot(env, "search", "--json", "foghorn")
    assert json.loads(out)["results"] == []
    code, _, err = await quotebot(env, "feed", "remove", "Harbour Lights")
    assert code == 1 and "no followed feed is called 'Harbour Lights'" in err


async def test_feed_settings_are_checked(env):
    code, _, err = await quotebot({**env, "QUOTEBOT_FEED_REFRESH_MINUTES": "soon"}, "feed", "list")
    assert code == 2 and "QUOTEBOT_FEED_REFRESH_MINUTES: expected a number" in err
    code, _, err = await quotebot({**env, "QUOTEBOT_FEED_MAX_MB": "0"}, "feed", "list")
    assert code == 2 and "QUOTEBOT_FEED_MAX_MB" in err


async def _line_with(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), WAIT)).decode()
        if not line:
            raise AssertionError(f"stream ended before {needle!r}; got:\n{''.join(seen)}")
        seen.append(line)
        if needle in line:
            return line


async def _until(condition) -> None:
    for _ in range(int(WAIT * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_running_bot_adds_a_feed_from_the_console_and_indexes_a_new_episode_on_schedule(site, env):
    env = {**env, "QUOTEBOT_FEED_REFRESH_MINUTES": "0.02"}  # a refresh every 1.2 s
    bot = await asyncio.create_subprocess_exec(QUOTEBOT, "run", "--platform", "console", env=env,
                                               stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                               stderr=asyncio.subprocess.PIPE)
    out: list[str] = []
    logs: list[str] = []
    try:
        bot.stdin.write(f"feed add {site.base}/feed.xml\n".encode())
        await bot.stdin.drain()
        await _line_with(bot.stdout, "Following Harbour Lights", out)
        await _line_with(bot.stdout, "indexed and searchable now", out)
        bot.stdin.write(b"foghorn\n")
        await bot.stdin.drain()
        await _line_with(bot.stdout, "Episode 1: The Last Lighthouse Keeper — Harbour Lights", out)
        await _until(lambda: site.conditional["/feed.xml"] >= 1)  # a scheduled, conditional fetch

        site.harbour(new_item=True)
        await _line_with(bot.stderr, "new: Episode 4: Where Icebergs Are Born", logs)
        await _line_with(bot.stderr, "feeds: new episodes indexed", logs)
        bot.stdin.write(b"iceberg calve thunder\n")
        await bot.stdin.drain()
        line = await _line_with(bot.stdout, "Where Icebergs Are Born", out)
        assert "Harbour Lights" in line
        await _line_with(bot.stdout, f"{site.base}/media/ep4.mp3#t=", out)

        bot.stdin.write(b"feed list\n")
        await bot.stdin.drain()
        await _line_with(bot.stdout, "4 episode(s) stored", out)
    finally:
        if bot.returncode is None:
            bot.stdin.close()
            try:
                await asyncio.wait_for(bot.wait(), WAIT)
            except TimeoutError:
                bot.kill()
    assert bot.returncode == 0
    assert not any("Traceback" in line for line in logs)
