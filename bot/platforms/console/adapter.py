"""The terminal adapter: a chat on stdin/stdout, scriptable when stdin is not a TTY."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot import payloads
from bot.core import QuoteBot
from bot.plaintext import render_text
from bot.reply import ActionKind, Reply, ReplyKind, Request, Via
from config.settings import Settings

BANNER = "quotebot: ask a question about the transcripts (help for commands, more / context N after an answer, "\
         "quit to leave)."


class ConsoleAdapter:
    """Reads one message per line and prints each answer; ``more`` and ``context N`` act as the buttons."""

    def __init__(self, core: QuoteBot, settings: Settings, *,
                 stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.core = core
        self.settings = settings
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self._last: Reply | None = None
        self._closed = False

    def _request(self, text: str) -> Request:
        return Request(text=text, via=Via.CONSOLE, can_manage=True, default_timezone=self.settings.timezone)

    async def serve(self) -> None:
        interactive = self.stdin.isatty()
        if interactive:
            self._write(BANNER)
        while not self._closed:
            if interactive:
                self.stdout.write("> ")
                self.stdout.flush()
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                return
            text = line.strip()
            if not text:
                continue
            if text.lower() in ("quit", "exit", ":q"):
                return
            reply = await self._answer(text)
            self._write(render_text(reply, ansi=interactive and self.stdout.isatty()) + "\n")

    async def _answer(self, text: str) -> Reply:
        word, _, arg = text.lower().partition(" ")
        last = self._last
        if word == "more" and last is not None:
            action = next((a for a in last.actions if a.kind is ActionKind.MORE), None)
            if action is None:
                return Reply(text="There are no more results for that question.")
            reply = await self.core.handle_action(action.payload, self._request(text))
        elif word == "context" and last is not None and last.cards:
            n = int(arg) if arg.strip().isdigit() else 1
            if not 1 <= n <= len(last.cards):
                return Reply(text=f"Pick a quote between 1 and {len(last.cards)}.")
            reply = await self.core.handle_action(payloads.context(last.cards[n - 1].passage_key), self._request(text))
        else:
            reply = await self.core.handle(self._request(text))
        if reply.cards and reply.kind in (ReplyKind.ANSWER, ReplyKind.QUOTE):
            self._last = reply
        return reply

    async def post(self, channel_id: str, reply: Reply) -> None:
        """Print a scheduled post (the console has one channel)."""
        self._write(render_text(reply))

    async def close(self) -> None:
        self._closed = True

    def _write(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()
