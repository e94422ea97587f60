"""Platform-neutral requests and replies: what adapters hand the core and get back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Via(StrEnum):
    """How a request reached the bot; adapters set it, the core may word replies by it."""

    SLASH = "slash"
    MENTION = "mention"
    PREFIX = "prefix"
    DM = "dm"
    CONSOLE = "console"
    BUTTON = "button"
    SCHEDULE = "schedule"


@dataclass(frozen=True, slots=True)
class Request:
    """A user's command, already stripped of any prefix or mention.

    ``command`` is set for slash commands (``"ask"``, ``"quote"``, ``"sources"``,
    ``"help"``, ``"daily"``); otherwise the core parses it from ``text``.
    ``can_manage`` says whether the user may change the channel's subscriptions
    (Manage Channels on Discord, admin or channel creator on Slack).
    """

    text: str
    user_id: str = "console"
    channel_id: str = "console"
    platform: str = "console"
    via: Via = Via.CONSOLE
    command: str | None = None
    can_manage: bool = False
    guild_id: str | None = None
    default_timezone: str | None = None


@dataclass(frozen=True, slots=True)
class QuoteCard:
    """One verbatim passage as shown to a user.

    ``highlights`` are (start, end) spans of ``text`` that matched the query;
    renderers mark them (bold) after escaping. ``time_label`` is ``"12:34"`` for a
    timed moment, ``"about 37% in"`` for untimed text, or empty.
    """

    text: str
    title: str
    source_id: str
    passage_key: str
    speaker: str | None = None
    time_label: str = ""
    url: str | None = None
    thumbnail_url: str | None = None
    highlights: tuple[tuple[int, int], ...] = ()


class ActionKind(StrEnum):
    MORE = "more"
    CONTEXT = "context"
    POST = "post"


@dataclass(frozen=True, slots=True)
class Action:
    """A button under a reply. ``payload`` is opaque, at most 90 ASCII characters,
    and is handed back unchanged to ``QuoteBot.handle_action``; it carries all the
    state needed, so buttons keep working after a restart."""

    kind: ActionKind
    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What the core answers: an optional plain-text notice, quote cards, buttons.

    ``text`` is plain text (no markup): renderers escape it for their platform.
    ``ephemeral`` is a hint: answers a platform may show only to the asker.
    ``error_ref`` is set on the apology for a failed command.
    """

    text: str = ""
    cards: tuple[QuoteCard, ...] = ()
    actions: tuple[Action, ...] = ()
    ephemeral: bool = False
    error_ref: str | None = None
    kind: str = "notice"
    extra: dict[str, str] = field(default_factory=dict)
