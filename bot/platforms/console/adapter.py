"""The terminal adapter: a chat on stdin/stdout, scriptable when stdin is not a TTY."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TextIO

from bot import payloads
from bot.commands import parse
from bot.core import QuoteBot
from bot.platforms.console import layout
from bot.platforms.console.lineedit import LineReader
from bot.reply import ActionKind, Reply, ReplyKind, Request, Via
from config.settings import PROJECT_ROOT, Settings

BANNER = "quotebot: ask a question about the transcripts (help for commands, more / context N after an answer, "\
         "quit to leave)."
HISTORY_FILE = "console-history"


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
        self.reader = LineReader(self.stdin, self.stdout, history_path(settings))

    def _request(self, text: str) -> Request:
        return Request(text=text, via=Via.CONSOLE, can_manage=True, default_timezone=self.settings.timezone)

    async def serve(self) -> None:
        interactive = self.stdin.isatty()
        if interactive:
            self._write(BANNER)
        try:
            while not self._closed:
                line = await self.reader.read("> " if interactive else "")
                if line is None:
                    return
                text = line.strip()
                if not text:
                    continue
                if text.lower() in ("quit", "exit", ":q"):
                    return
                reply = await self._answer(text)
                on_terminal = interactive and self.stdout.isatty()
                width = shutil.get_terminal_size().columns - 1 if on_terminal else None
                hint = "".join(line + "\n" for line in layout.wrap(self._hint(reply), width) if line)
                self._write(layout.render(reply, width, ansi=on_terminal) + "\n" + hint)
        finally:
            self.reader.close()

    async def _answer(self, text: str) -> Reply:
        command = parse(text)  # "more about ai" is a question, "more" alone pages on
        last = self._last
        if command.name == "more" and last is not None:
            action = next((a for a in last.actions if a.kind is ActionKind.MORE), None)
            if action is None:
                return Reply(text="There are no more results for that question.")
            reply = await self.core.handle_action(action.payload, self._request(text))
        elif command.name == "context" and last is not None and last.cards:
            first = last.first_number
            n = int(command.arg) if command.arg else first
            if not first <= n < first + len(last.cards):
                return Reply(text=f"Pick a quote between {first} and {first + len(last.cards) - 1}.")
            card = last.cards[n - first]
            reply = await self.core.handle_action(payloads.context(card.passage_key), self._request(text))
        else:
            reply = await self.core.handle(self._request(text))
        if reply.cards and reply.kind in (ReplyKind.ANSWER, ReplyKind.QUOTE, ReplyKind.DAILY):
            self._last = reply
        return reply

    @staticmethod
    def _hint(reply: Reply) -> str:
        """What the console's words do next, under an answer (the buttons of the chat platforms)."""
        if reply.kind is not ReplyKind.ANSWER or not reply.cards:
            return ""
        has_more = any(a.kind is ActionKind.MORE for a in reply.actions)
        widen = "context N to widen one" if len(reply.cards) > 1 or reply.first_number > 1 else "context to widen it"
        return f"Type more for the next {_count(len(reply.cards))}, {widen}." if has_more else f"Type {widen}."

    async def post(self, channel_id: str, reply: Reply) -> None:
        """Print a scheduled post (the console has one channel)."""
        self._write(layout.render(reply))

    async def close(self) -> None:
        self._closed = True
        self.reader.close()

    def _write(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()


def history_path(settings: Settings) -> Path:
    """The console's line history: next to the index when it is configured, else ``.cache/``."""
    base = Path(settings.index_dir).parent if settings.index_dir is not None else PROJECT_ROOT / ".cache"
    return base / HISTORY_FILE


def _count(n: int) -> str:
    return {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}.get(n, str(n))
