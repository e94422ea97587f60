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
    if name in COMMANDS:
        return Command(name, rest.strip())
    return Command("ask", text)
