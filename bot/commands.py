"""Turning what a user typed into a command name and its argument."""

from __future__ import annotations

import re
from dataclasses import dataclass

COMMANDS = ("ask", "quote", "sources", "help", "daily", "feed", "more", "context")
_ALIASES = {"q": "ask", "search": "ask", "source": "sources", "list": "sources", "?": "help"}
_MENTION = re.compile(r"^\s*(<@!?\d+>|<@[A-Z0-9]+(\|[^>]*)?>)\s*[:,]?\s*")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arg: str = ""


def strip_prefix(text: str, prefix: str) -> str | None:
    """Text after ``prefix`` when the message starts with it, else None."""
    if prefix and text.startswith(prefix) and len(text) > len(prefix):
        return text[len(prefix) :]
    return None


def strip_mention(text: str) -> str:
    """Remove a leading Discord (``<@123>``) or Slack (``<@U123>``) mention."""
    return _MENTION.sub("", text, count=1)


def parse(text: str, command: str | None = None) -> Command:
    """Parse ``text`` into a Command.

    With ``command`` given (a slash command), ``text`` is its argument. Otherwise the
    first word names a known command (``quote mars``), or the whole text is a bare
    question for ``ask``.
    """
    text = " ".join(text.split())
    if command:
        name = _ALIASES.get(command.lower(), command.lower())
        return Command(name if name in COMMANDS else "ask", text)
    if not text:
        return Command("help")
    head, _, rest = text.partition(" ")
    head = head.lower().lstrip("/")
    name = _ALIASES.get(head, head)
    rest = rest.strip()
    if name in COMMANDS and takes(name, rest):
        return Command(name, rest)
    return Command("ask", text)


DAILY_VERBS = ("help", "?", "status", "subscribe", "on", "off", "unsubscribe", "stop", "now")
FEED_VERBS = ("add", "list", "ls", "remove", "rm", "delete", "refresh")
_BARE = ("help", "sources", "more")  # commands that take no argument


def takes(name: str, arg: str) -> bool:
    """Whether ``name arg`` is that command with its proper arguments (else the whole text is a question).

    "help me find the part about rockets", "list the risks of ai" and "more about ai" are questions:
    ``help``, ``sources`` and ``more`` count only alone, ``context`` only with a quote number, ``daily``
    and ``feed`` only with one of their verbs; ``ask`` and ``quote`` take any text.
    """
    first = arg.split(" ", 1)[0].lower()
    if name in _BARE:
        return not arg
    if name == "context":
        return not arg or arg.isdigit()
    if name == "daily":
        return not arg or first in DAILY_VERBS
    if name == "feed":
        return not arg or first in FEED_VERBS
    return True
