"""Start-up failures of the real ``quotebot run`` exit non-zero with one clear line and no traceback, so a
supervisor that restarts on failure does, and an operator reads what to fix: a port in use, a HOST that
does not resolve, an unreachable Discord gateway (sharded or not), and gateway closes that cannot be retried (4004 bad
token, 4011 sharding required) from the local Discord server."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.discord_harness import BotProcess, bot_env, write_corpus
from tests.e2e.discord_server import LocalDiscord
from tests.e2e.slack_helpers import BOT_TOKEN, SIGNING_SECRET, make_corpus

QUOTEBOT = Path(sys.executable).with_name("quotebot")
ROOT = Path(__file__).resolve().parents[2]


def assert_one_clear_line(output: str, expected: str) -> None:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("quotebot: ")]
    assert len(lines) == 1 and expected in lines[0], output


async def run_slack(tmp: Path, **env: str) -> tuple[int, str]:
    """``quotebot run --platform slack`` until it exits by itself (60 s at most)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "QUOTEBOT_"))}
    full.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL="http://127.0.0.1:9/api/",
                QUOTEBOT_CORPUS=str(make_corpus(tmp / "corpus")), QUOTEBOT_INDEX_DIR=str(tmp / "index"),
                DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'db.sqlite3'}", QUOTEBOT_DOTENV="",
                QUOTEBOT_SEARCH_MODE="lexical", LOG_LEVEL="INFO", HOST="127.0.0.1", PORT="0")
    full.update(env)
    proc = await asyncio.create_subprocess_exec(
        str(QUOTEBOT), "run", "--platform", "slack", cwd=str(ROOT), env=full, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("quotebot kept running") from None
    return proc.returncode, out.decode("utf-8", "replace")


async def test_a_port_in_use_exits_non_zero_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = await run_slack(tmp_path, PORT=str(port))
    assert code != 0
    assert_one_clear_line(output, f"HOST/PORT: cannot listen on 127.0.0.1:{port}")


async def test_a_host_that_does_not_resolve_exits_non_zero_with_one_line(tmp_path):
    code, output = await run_slack(tmp_path, HOST="no-such-host.invalid", PORT="8765")
    assert code != 0
    assert_one_clear_line(output, "HOST/PORT: cannot listen on no-such-host.invalid:8765")


@pytest_asyncio.fixture
async def discord_server():
    server = LocalDiscord()
    await server.start()
    yield server
    await server.close()


async def run_discord(server: LocalDiscord, tmp: Path, **extra: str) -> tuple[int, str]:
    bot = BotProcess(server, bot_env(server, write_corpus(tmp / "corpus"), tmp, **extra), tmp)
    code = await bot.run_to_end(timeout=60)
    return code, bot.output


async def test_an_unreachable_gateway_exits_non_zero_with_one_line(discord_server, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    url = f"ws://127.0.0.1:{closed}/gateway"
    code, output = await run_discord(discord_server, tmp_path, DISCORD_GATEWAY_URL=url)
    assert code != 0
    assert_one_clear_line(output, f"DISCORD_GATEWAY_URL: cannot reach Discord at {url}")


@pytest.mark.parametrize(("close", "expected"), [
    (4004, "DISCORD_TOKEN: the Discord gateway rejected the token (close code 4004"),
    (4011, "DISCORD_SHARD_COUNT: Discord requires this bot to run sharded (close code 4011"),
])
async def test_a_fatal_gateway_close_exits_non_zero_with_one_line(discord_server, tmp_path, close, expected):
    discord_server.close_on_identify = close
    code, output = await run_discord(discord_server, tmp_path)
    assert code != 0
    assert_one_clear_line(output, expected)
    assert "test-token" not in output.lower() and discord_server.token not in output  # the token is never shown


async def test_a_sharded_start_with_an_unreachable_gateway_exits_non_zero_with_one_line(discord_server, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    url = f"ws://127.0.0.1:{closed}/gateway"
    code, output = await run_discord(discord_server, tmp_path, DISCORD_GATEWAY_URL=url, DISCORD_SHARD_COUNT="2")
    assert code != 0
    assert_one_clear_line(output, f"DISCORD_GATEWAY_URL: cannot reach Discord at {url}")
    assert not discord_server.identifies  # no shard ever reached a gateway
