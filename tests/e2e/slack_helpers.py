"""Helpers for the Slack end-to-end tests and the ack benchmark.

A tiny test corpus, Slack request signing, a client that sends signed slash commands,
events and button presses, and ``SlackBotProcess``: ``quotebot run --platform slack``
as a subprocess (or the adapter in-process while the CLI does not exist yet).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
QUOTEBOT = Path(sys.executable).with_name("quotebot")  # the console script of the running environment
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-0000-secret-token"
APP_TOKEN = "xapp-1-test-0000-secret"
VIDEO = "https://www.youtube.com/watch?v=abcdefghijk"

_ROCKET_LINES = [
    "The rocket engine is the hardest part of the whole vehicle.",
    "We test every rocket engine on the stand before it flies.",
    "A reusable rocket changes the economics of space travel completely.",
    "The rocket has to land on the pad, otherwise you throw it away.",
    "Methane is a good rocket fuel because you can make it on Mars.",
    "Each rocket booster flies again within a day if all goes well.",
    "The second stage of the rocket is much harder to recover.",
    "Rocket reuse is the key to making life multiplanetary.",
]
_FILLER = (
    "Then we talked for a while about tunnels, batteries, solar roofs, factories, production lines, "
    "supply chains, hiring great engineers and the usual weather in Texas in the summer."
)


def make_corpus(folder: Path) -> Path:
    """A timed SRT source with a YouTube link and a plain .txt source holding ``<!channel>``."""
    folder.mkdir(parents=True, exist_ok=True)
    cues = []
    # filler keeps the rocket lines apart: each is a result of its own (a quote runs on up to 600 characters)
    lines = [x for line in _ROCKET_LINES for x in (line, _FILLER, _FILLER, _FILLER)]
    for i, line in enumerate(lines):
        start, end = 60 + i * 40, 95 + i * 40
        cues.append(f"{i + 1}\n{_srt_time(start)} --> {_srt_time(end)}\n{line}\n")
    (folder / "rockets.srt").write_text("\n".join(cues), encoding="utf-8")
    (folder / "notes.txt").write_text(
        "- the moderator said: <!channel> please mute the broadcast & keep quiet during the kazoo solo.\n"
        "- everyone laughed about the kazoo and then we moved on to other topics entirely.\n",
        encoding="utf-8",
    )
    (folder / "corpus.toml").write_text(
        '[[source]]\nfile = "rockets.srt"\nid = "rockets"\ntitle = "Rockets & <Reuse>"\n'
        f'url = "{VIDEO}"\nspeakers = ["Elon Musk"]\n',
        encoding="utf-8",
    )
    return folder


def _srt_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d},000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's request signature headers: ``v0=`` HMAC-SHA256 of ``v0:{ts}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def new_trigger_id() -> str:
    """A fresh trigger_id, as Slack sends with every slash command and button press (the bot drops replays)."""
    return f"{time.time_ns()}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}"


def slash_body(command: str, text: str, response_url: str, user: str = "U1", channel: str = "C1",
               trigger_id: str | None = None) -> str:
    return urlencode({
        "token": "legacy", "team_id": "T0TEST", "team_domain": "test", "channel_id": channel,
        "channel_name": "general", "user_id": user, "user_name": "ada", "command": command, "text": text,
        "api_app_id": "A1", "response_url": response_url, "trigger_id": trigger_id or new_trigger_id(),
    })


def event_body(event: dict[str, Any], event_id: str) -> str:
    return json.dumps({
        "token": "legacy", "team_id": "T0TEST", "api_app_id": "A1", "event": event, "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0TEST", "user_id": "UBOT", "is_bot": True}],
    })


def action_body(value: str, response_url: str, *, user: str = "U1", channel: str = "C1",
                ephemeral: bool = True, message_ts: str = "1700000000.000001") -> str:
    payload = {
        "type": "block_actions", "user": {"id": user, "team_id": "T0TEST"}, "api_app_id": "A1",
        "token": "legacy", "trigger_id": new_trigger_id(), "team": {"id": "T0TEST", "domain": "test"},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": ephemeral},
        "channel": {"id": channel, "name": "general"}, "response_url": response_url,
        "actions": [{"action_id": f"qb:{value.split(':')[0]}:0", "block_id": "b1", "value": value,
                     "type": "button", "action_ts": "1700000001.0"}],
    }
    if not ephemeral:
        payload["message"] = {"type": "message", "ts": message_ts, "text": "", "blocks": []}
    return urlencode({"payload": json.dumps(payload)})


@dataclass
class SignedClient:
    """Sends signed requests to the bot's ``/slack/events``."""

    base: str
    session: aiohttp.ClientSession

    async def send(self, body: str, *, form: bool, headers: dict[str, str] | None = None,
                   timestamp: int | None = None, secret: str = SIGNING_SECRET) -> tuple[int, str]:
        h = {"Content-Type": "application/x-www-form-urlencoded" if form else "application/json"}
        h.update(sign(body, timestamp, secret))
        h.update(headers or {})
        async with self.session.post(f"{self.base}/slack/events", data=body.encode(), headers=h) as r:
            return r.status, await r.text()

    async def slash(self, command: str, text: str, response_url: str, **kw: Any) -> tuple[int, str]:
        return await self.send(slash_body(command, text, response_url, **kw), form=True)

    async def event(self, event: dict[str, Any], event_id: str, headers: dict[str, str] | None = None):
        return await self.send(event_body(event, event_id), form=False, headers=headers)

    async def action(self, value: str, response_url: str, **kw: Any) -> tuple[int, str]:
        return await self.send(action_body(value, response_url, **kw), form=True)


@dataclass
class SlackBotProcess:
    """The bot under test: ``quotebot run --platform slack`` (or the adapter in-process)."""

    env: dict[str, str]
    port: int
    proc: asyncio.subprocess.Process | None = None
    task: asyncio.Task | None = None
    adapter: Any = None
    log_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def cli_available() -> bool:
        return os.environ.get("QUOTEBOT_E2E_IN_PROCESS") != "1"

    async def start(self, in_process: bool | None = None) -> None:
        if in_process is None:
            in_process = not self.cli_available()
        if in_process:
            await self._start_in_process()
        else:
            await self._start_subprocess()
        await self._wait_healthy()

    async def _start_subprocess(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
        env.update(self.env)
        log = open(self.log_path or os.devnull, "wb")  # noqa: SIM115 - handed to the child process
        self.proc = await asyncio.create_subprocess_exec(
            str(QUOTEBOT), "run", "--platform", "slack", cwd=str(ROOT), env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )
        log.close()

    async def _start_in_process(self) -> None:
        """The adapter in this process, wired like ``bot.app.serve`` (store, daily service, memo)."""
        from bot.app import build_searcher, context_for, core_options
        from bot.core import QuoteBot
        from bot.daily import DailyService
        from bot.http import HttpServer
        from bot.platforms import spec
        from bot.store import SqlMemo, open_store
        from config.settings import load_settings

        settings = load_settings(environ=self.env, dotenv_path=None)
        if self.log_path is not None:
            handler = logging.FileHandler(self.log_path)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root = logging.getLogger()
            self.extra["log"] = (handler, root.level)
            root.addHandler(handler)
            root.setLevel(settings.log_level)
        searcher = build_searcher(settings)
        store = await open_store(settings.database_url)
        daily = DailyService(store, searcher, settings)
        core = QuoteBot(searcher, core_options(settings), memo=SqlMemo(store), daily=daily)
        http = HttpServer(settings.host, settings.port)
        self.adapter = spec("slack").build(context_for("slack", core, settings, http, store=store, daily=daily))
        daily.use_platforms({"slack": self.adapter})
        await http.start()
        self.extra.update(core=core, store=store, searcher=searcher, daily=daily, settings=settings, http=http)
        self.task = asyncio.create_task(self.adapter.serve())

    async def _wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.returncode is not None:
                    raise RuntimeError(f"quotebot exited with {self.proc.returncode}: {self._log_tail()}")
                if self.task is not None and self.task.done():
                    self.task.result()
                    raise RuntimeError("the Slack adapter stopped during start-up")
                try:
                    async with s.get(f"{self.base}/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"the bot did not answer /healthz within {timeout:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if "http" in self.extra:
            await self.extra.pop("http").close()
        if self.adapter is not None:
            await self.adapter.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if "core" in self.extra:
            self.extra["core"].close()
            await self.extra["store"].close()
        if "log" in self.extra:
            handler, level = self.extra.pop("log")
            logging.getLogger().removeHandler(handler)
            logging.getLogger().setLevel(level)
            handler.close()


def bot_env(tmp: Path, api_url: str, port: int, **more: str) -> dict[str, str]:
    """The environment the bot gets: tokens, the local API server, loopback HTTP, a test corpus."""
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'state.sqlite3'}",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "QUOTEBOT_SEARCH_MODE": "lexical",
        "QUOTEBOT_DOTENV": "",
    }
    env.update(more)
    if "QUOTEBOT_CORPUS" not in env:
        env["QUOTEBOT_CORPUS"] = str(make_corpus(tmp / "corpus"))
    env.setdefault("QUOTEBOT_INDEX_DIR", str(tmp / "index"))
    return env
