"""When the Discord connection cannot work: fatal gateway close codes, an unreachable gateway or REST API.

Each becomes ``PlatformUnavailable`` with one line naming the setting to check, so ``quotebot run`` exits
non-zero (a supervisor restarts it, or an operator reads why) instead of retrying or exiting 0. A gateway
that cannot be reached before the bot ever connected is fatal; once connected, discord.py reconnects as
usual, and its reconnect messages are logged as one line each, without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
import yarl

from bot.platform import PlatformUnavailable

# https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-close-event-codes
FATAL_CLOSES = {
    4004: "DISCORD_TOKEN: the Discord gateway rejected the token (close code 4004, authentication failed)",
    4010: "DISCORD_SHARD_IDS: the Discord gateway refused a shard id (close code 4010, invalid shard)",
    4011: "DISCORD_SHARD_COUNT: Discord requires this bot to run sharded (close code 4011, sharding required); "
          "set DISCORD_SHARD_COUNT",
    4012: "DISCORD_GATEWAY_URL: the gateway does not speak API v10 (close code 4012, invalid API version)",
    4013: "the Discord gateway refused the requested intents (close code 4013, invalid intents)",
    4014: "DISCORD_MESSAGE_CONTENT: the Message Content intent is not enabled for this bot in the Developer "
          "Portal (close code 4014); enable it there or unset DISCORD_MESSAGE_CONTENT",
}


def closed(code: int | None) -> PlatformUnavailable:
    """The error for a gateway session Discord ended with ``code`` (and discord.py would not resume)."""
    return PlatformUnavailable(FATAL_CLOSES.get(code or 0, f"the Discord gateway closed the connection "
                                                           f"(close code {code})"))


def unreachable(setting: str, url: str, error: BaseException | None) -> PlatformUnavailable:
    """The error for a Discord endpoint (``DISCORD_API_BASE`` / ``DISCORD_GATEWAY_URL``) that cannot be reached."""
    why = f" ({_describe(error)})" if error is not None else ""
    return PlatformUnavailable(f"{setting}: cannot reach Discord at {url}{why}")


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class FirstConnection:
    """Watches the first gateway connection: a disconnect before the bot ever connected means the gateway
    cannot be reached, so the client is closed and ``failed`` says so."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self.connected = False
        self.failed = False

    async def on_connect(self) -> None:
        self.connected = True

    async def on_disconnect(self) -> None:
        if not self.connected and not self.client.is_closed():
            self.failed = True
            asyncio.get_running_loop().create_task(self.client.close())


class GatewayUnreachable(Exception):
    """No shard could connect before any was ready (``FirstConnection.failed`` is set)."""


class ShardedClient(discord.AutoShardedClient):
    """``AutoShardedClient`` whose first start gives up like the unsharded client: when a shard's first
    connection fails before any shard was ever ready, the start fails (discord.py would retry it every
    5 s forever). Once a shard has been ready, failing shards keep retrying and reconnecting as usual."""

    first_tries = 1  # connection attempts per shard before giving up, while no shard was ready

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first: FirstConnection | None = None  # set by the adapter
        self._launch_tries: dict[int, int] = {}

    async def launch_shard(self, gateway: yarl.URL, shard_id: int, *, initial: bool = False) -> None:
        # discord.py retries a failed launch by calling launch_shard again: each call is one attempt.
        tries = self._launch_tries
        tries[shard_id] = tries.get(shard_id, 0) + 1
        first = self.first
        if first is not None and not first.connected and tries[shard_id] > self.first_tries:
            first.failed = True
            raise GatewayUnreachable(f"shard {shard_id}")
        await super().launch_shard(gateway, shard_id, initial=initial)


class ReconnectLine(logging.Filter):
    """discord.py logs each reconnect with a full traceback: keep it to one line with the reason."""

    MESSAGES = ("Attempting a reconnect in", "Failed to connect for shard_id")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(self.MESSAGES) and record.exc_info:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()} (gateway connection failed: {_describe(error)})" \
                if error is not None else record.getMessage()
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_reconnects() -> None:
    """Install ``ReconnectLine`` on discord.py's client logger (once)."""
    logger = logging.getLogger("discord.client")
    if not any(isinstance(f, ReconnectLine) for f in logger.filters):
        logger.addFilter(ReconnectLine())
    shards = logging.getLogger("discord.shard")
    if not any(isinstance(f, ReconnectLine) for f in shards.filters):
        shards.addFilter(ReconnectLine())
