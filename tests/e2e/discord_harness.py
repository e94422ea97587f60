"""The bot under test for the Discord end-to-end tests, connected to ``LocalDiscord``.

``BotProcess`` starts ``quotebot run --platform discord`` as a subprocess with DISCORD_TOKEN,
DISCORD_API_BASE and DISCORD_GATEWAY_URL pointing at the local server, exactly as an
operator would. ``BotInProcess`` runs the same adapter inside the test's event loop, for the
few tests that need a searcher which misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.discord_server import MEMBER_ID, TOKEN, LocalDiscord, Recorded, Sent

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("quotebot")  # the console script of the running environment

# A small timed transcript (SRT) with a YouTube link, so answers carry timestamp links. "rocket"
# turns up in passages far apart (more than one page of answers); one line pings @everyone.
_CUES = [
    "Welcome back to the show. Today we talk about the rocket that will carry people to Mars one day.",
    "The weather on the launch site was terrible, wind and rain all week, so everybody stayed indoors and waited.",
    "We spent those days going through the checklists again, line by line, until nobody could find a problem.",
    "My grandmother used to bake bread every Sunday morning and the whole house smelled wonderful for hours.",
    "Learning physics properly means reasoning from first principles instead of copying what others did before.",
    "A reusable rocket changes everything, because throwing away the booster each time is like scrapping a plane.",
    "The factory is the product, really: the machine that builds the machine matters more than any single design.",
    "People underestimate how hard manufacturing is; prototypes are easy and volume production is very hard.",
    "Batteries have improved every year, slowly but steadily, and the cost per kilowatt hour keeps falling down.",
    "Good engineers delete parts and processes first, then simplify, then speed up, and only then automate.",
    "The second rocket exploded on the pad and we learned more from that failure than from any success.",
    "Tell @everyone that the Fermi paradox worries me: where are all the aliens, and why is the sky so quiet?",
    "Maybe civilisations destroy themselves, or maybe they are just very far apart and travel is too slow.",
    "Consciousness might be rare in the universe, which makes it precious and worth protecting and extending.",
    "Artificial intelligence will be smarter than any human quite soon, and we need it to be truth seeking.",
    "Every rocket engine we build now is simpler than the last one, with fewer parts and far fewer welds.",
    "Social media can be a force for good if people can speak freely and bad ideas get answered with better ones.",
    "I read a lot of science fiction as a kid, Asimov and Douglas Adams, and that shaped how I think about life.",
    "The meaning of life is to ask better questions, to expand the scope and scale of consciousness in the universe.",
    "Tunnels under cities could fix traffic, because you can stack many layers of tunnels but only one road on top.",
    "Landing the rocket back on the ship in the ocean looked impossible until the day it simply worked.",
    "Solar power plus batteries can run the whole world; the land needed is a small corner of a desert.",
    "Kids today have access to more knowledge than any king had a century ago, which is astonishing.",
    "Thank you all for listening, and see you next time on the show, wherever you are in the world.",
]
# More rocket moments, each far enough from the others (a shown quote runs on for up to 600
# characters) to be a result of its own, so that "rocket" has a second page.
_FILLER = "Between topics we chatted about gardening, music and the best way to brew coffee in the morning."
for _line in (
    "The rocket factory in Texas builds a new upper stage every few days now.",
    "Rocket engines are tested on the stand for hours before they are allowed to fly.",
    "Fuelling the rocket takes about forty minutes and is the most dangerous part of the countdown.",
    "A rocket that lands and flies again is the only way to make space travel cheap.",
):
    _CUES += [_FILLER] * 6 + [_line]
CORPUS_TOML = """
[[source]]
file = "talk.srt"
id = "test-talk"
title = "Rockets, Mars and the *future* of everything"
url = "https://www.youtube.com/watch?v=abcdefghijk"
date = "2024-01-02"
speakers = ["Elon Musk"]
"""


def write_corpus(folder: Path) -> Path:
    """The test corpus: one SRT transcript plus its ``corpus.toml``."""
    folder.mkdir(parents=True, exist_ok=True)
    blocks = []
    for i, text in enumerate(_CUES):
        start = 30 + i * 75
        blocks.append(f"{i + 1}\n{_srt_time(start)} --> {_srt_time(start + 70)}\n{text}\n")
    (folder / "talk.srt").write_text("\n".join(blocks), encoding="utf-8")
    (folder / "corpus.toml").write_text(CORPUS_TOML, encoding="utf-8")
    return folder


def _srt_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d},000"


def bot_env(server: LocalDiscord, corpus: Path, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment an operator would give the bot, pointed at the local Discord."""
    keep = ("DISCORD_", "SLACK_", "QUOTEBOT_", "DATABASE_URL", "HOST", "PORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
    env.update(
        DISCORD_TOKEN=TOKEN,
        DISCORD_API_BASE=server.api_base,
        DISCORD_GATEWAY_URL=server.gateway_url,
        QUOTEBOT_CORPUS=str(corpus),
        QUOTEBOT_INDEX_DIR=str(workdir / "index"),
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'bot.sqlite3'}",
        QUOTEBOT_RATE_PER_MINUTE="0",
        LOG_LEVEL="INFO",
        QUOTEBOT_DOTENV="",  # a developer's .env must not leak in
        QUOTEBOT_SEARCH_MODE="lexical",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def cli_ready() -> bool:
    """Whether the tests start ``quotebot run`` (else the adapter runs in-process).

    ``QUOTEBOT_E2E_IN_PROCESS=1`` forces in-process runs, e.g. to step through the adapter in a debugger.
    """
    return os.environ.get("QUOTEBOT_E2E_IN_PROCESS") != "1"


def start_bot(server: LocalDiscord, env: dict[str, str], workdir: Path) -> BotProcess | BotInProcess:
    """The bot as an operator runs it: ``quotebot run --platform discord`` (in-process only on request)."""
    if cli_ready():
        return BotProcess(server, env, workdir)
    from bot.app import build_searcher

    return BotInProcess(server, env, build_searcher)


class BotProcess:
    """``quotebot run --platform discord`` in a subprocess; its log is kept in ``output``."""

    def __init__(self, server: LocalDiscord, env: dict[str, str], workdir: Path) -> None:
        self.server, self.env, self.workdir = server, env, workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def _spawn(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            str(CLI), "run", "--platform", "discord", env=self.env, cwd=str(self.workdir),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())

    async def start(self) -> None:
        """Start the bot and wait until it has identified on the local gateway."""
        before = len(self.server.identifies)
        await self._spawn()
        identified = asyncio.create_task(self.server.wait_identified(before + 1))
        exited = asyncio.create_task(self.proc.wait())
        await asyncio.wait({identified, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not identified.done():
            identified.cancel()
            await self._drain()
            raise AssertionError(f"the bot exited with {self.proc.returncode} before connecting:\n{self.output}")
        exited.cancel()
        identified.result()

    async def run_to_end(self, timeout: float = 30.0) -> int:
        """Start the bot and wait for it to exit by itself (e.g. on a bad setting); its exit code."""
        await self._spawn()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"the bot kept running:\n{self.output}") from None
        await self._drain()
        return self.proc.returncode  # type: ignore[return-value]

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the process to end; its exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                raise AssertionError(f"the bot did not stop within 20 s of signal {sig}:\n{self.output}") from None
        await self._drain()
        return self.proc.returncode  # type: ignore[return-value]

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    async def _drain(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


class BotInProcess:
    """The Discord adapter in this event loop, over a searcher made by ``make_searcher(settings)``.

    discord.py's REST base and gateway URL are process-wide; stopping puts back the ones in use before,
    so a bot started while another one idles hands the routing back when it stops.
    """

    def __init__(self, server: LocalDiscord, env: dict[str, str], make_searcher: Callable[[Any], Any]) -> None:
        self.server, self.env, self.make_searcher = server, env, make_searcher
        self.adapter: Any = None
        self._task: asyncio.Task | None = None
        self._core: Any = None
        self._routing: tuple[Any, Any] = (None, None)

    async def start(self) -> None:
        import discord
        from discord.gateway import DiscordWebSocket

        from bot.app import core_options
        from bot.core import QuoteBot
        from bot.platforms.discord.adapter import DiscordAdapter
        from config.settings import load_settings

        self._routing = (discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        settings = load_settings(self.env, dotenv_path=None)
        searcher = await asyncio.to_thread(self.make_searcher, settings)
        self._core = QuoteBot(searcher, core_options(settings))
        self.adapter = DiscordAdapter(self._core, settings, settings.platforms["discord"])
        before = len(self.server.identifies)
        self._task = asyncio.create_task(self.adapter.serve())
        await self.server.wait_identified(before + 1)

    async def stop(self) -> int:
        if self.adapter is not None:
            await self.adapter.close()
        if self._task is not None:
            await asyncio.wait_for(self._task, 20)
        if self._core is not None:
            self._core.close()
        import discord
        from discord.gateway import DiscordWebSocket

        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._routing
        return 0


@dataclass
class Discord:
    """A local Discord with the bot connected, and shortcuts for what users do."""

    server: LocalDiscord
    bot: Any

    async def ask(self, question: str, *, user_id: str = MEMBER_ID) -> tuple[Sent, Recorded]:
        """Run ``/ask question`` and return the bot's answer request."""
        after = self.server.mark()
        sent = await self.server.slash("ask", [{"name": "question", "type": 3, "value": question}], user_id=user_id)
        return sent, await self.server.wait_answer(sent, after=after)

    async def press(self, answer: Recorded, label: str, *, user_id: str = MEMBER_ID) -> tuple[Sent, Recorded]:
        """Press the button labelled ``label`` under the message ``answer`` created."""
        message = self.server.message_sent(answer)
        after = self.server.mark()
        sent = await self.server.press(custom_id_of(message, label), message, user_id=user_id)
        return sent, await self.server.wait_answer(sent, after=after)


def message_data(recorded: Recorded) -> dict[str, Any]:
    """The message fields of a bot request, whether an interaction callback or a plain send."""
    body = recorded.body or {}
    return body.get("data", body) if "type" in body and "data" in body else body


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """label -> custom_id for every button of a message payload."""
    return {c["label"]: c["custom_id"] for row in message.get("components") or [] for c in row["components"]}


def custom_id_of(message: dict[str, Any], label: str) -> str:
    found = buttons(message)
    assert label in found, f"no {label!r} button; buttons: {sorted(found)}"
    return found[label]
