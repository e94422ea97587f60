"""Reading the console's input: line editing and history with ``readline`` on a terminal, plain lines otherwise.

Lines are read on a daemon thread and handed to the event loop, so a shutdown (Ctrl-C, SIGTERM) never waits for
Enter: the thread is simply left behind, and the terminal settings it may have changed are put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

HISTORY_LENGTH = 1000


class LineReader:
    """``await read(prompt)`` returns the next line without its newline, or None at end of input.

    On a terminal (stdin and stdout both TTYs) it uses GNU readline or libedit, when Python has it: arrow keys
    edit the line and walk the history, which is kept in ``history_path`` between runs.
    """

    def __init__(self, stdin: TextIO, stdout: TextIO, history_path: Path | None = None) -> None:
        self.stdin, self.stdout = stdin, stdout
        self.interactive = _isatty(stdin) and _isatty(stdout)
        self.history_path = history_path
        self._readline: Any = None
        self._terminal: Any = None
        if self.interactive:
            self._terminal = _terminal_state(stdin)
            self._readline = _load_readline(history_path)

    async def read(self, prompt: str = "") -> str | None:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str | None] = loop.create_future()

        def deliver(value: str | None, error: BaseException | None) -> None:
            if answer.done():
                return
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(value)

        def work() -> None:
            try:
                value = self._read_blocking(prompt)
                error = None
            except BaseException as e:  # handed to the loop, never lost in the thread
                value, error = None, e
            with contextlib.suppress(RuntimeError):  # the loop already closed: nobody is waiting any more
                loop.call_soon_threadsafe(deliver, value, error)

        threading.Thread(target=work, name="console-input", daemon=True).start()
        return await answer

    def _read_blocking(self, prompt: str) -> str | None:
        if self.interactive:
            try:
                return input(prompt)  # readline handles editing and history when loaded
            except EOFError:
                return None
        if prompt:
            self.stdout.write(prompt)
            self.stdout.flush()
        line = self.stdin.readline()
        return line.rstrip("\r\n") if line else None

    def close(self) -> None:
        """Save the history and put the terminal back as it was (a read may still be pending)."""
        if self._readline is not None and self.history_path is not None:
            try:
                self.history_path.parent.mkdir(parents=True, exist_ok=True)
                self._readline.write_history_file(str(self.history_path))
            except OSError as e:
                log.warning("console: history not saved to %s: %s", self.history_path, e)
        if self._terminal is not None:
            fd, saved, termios = self._terminal
            with contextlib.suppress(Exception):
                termios.tcsetattr(fd, termios.TCSANOW, saved)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _terminal_state(stream: TextIO) -> tuple[int, Any, Any] | None:
    try:
        import termios

        fd = stream.fileno()
        return fd, termios.tcgetattr(fd), termios
    except (ImportError, OSError, ValueError, AttributeError):
        return None


def _load_readline(history_path: Path | None) -> Any:
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline: plain input() still works
        return None
    readline.set_history_length(HISTORY_LENGTH)
    if history_path is not None and history_path.exists():
        try:
            readline.read_history_file(str(history_path))
        except OSError as e:
            log.warning("console: history not read from %s: %s", history_path, e)
    return readline
