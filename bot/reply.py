"""Platform-neutral requests and replies: what adapters hand the core and get back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote


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
    ``command_names`` maps core commands to how this platform invokes them (``("sources", "/quote-sources")``),
    so help lists the platform's own commands.
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
    command_names: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class QuoteCard:
    """One verbatim passage as shown to a user.

    ``highlights`` are (start, end) spans of ``text`` that matched the query;
    renderers mark them (bold) after escaping. ``time_label`` is ``"12:34"`` for a
    timed moment, ``"about 37% in"`` for untimed text, or empty. ``permalink`` is set by the
    core when ``QUOTEBOT_PUBLIC_URL`` is: chat cards then link to the quote's own page.
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
    # the quote's page on the web platform (``permalink``), when a public base URL is set
    permalink: str | None = None


class ActionKind(StrEnum):
    """How a button looks and where it goes (``POST`` is the primary "Post to channel")."""

    MORE = "more"
    CONTEXT = "context"
    POST = "post"
    PAGE = "page"


class ReplyKind(StrEnum):
    """What a reply is; adapters choose where it goes by it (e.g. apologies and stale buttons stay private)."""

    NOTICE = "notice"
    ANSWER = "answer"
    QUOTE = "quote"
    CONTEXT = "context"
    SOURCES = "sources"
    HELP = "help"
    DAILY = "daily"
    REFUSED = "refused"
    BAD_INPUT = "bad_input"
    STALE = "stale"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Action:
    """A button under a reply. ``payload`` is opaque (made by ``bot.payloads``), at most 90 ASCII
    characters, and is handed back unchanged to ``QuoteBot.handle_action``; it carries all the
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
    ``shared`` marks an earlier private answer made public by its asker ("Post to channel").
    ``first_number`` is the number of the first card when cards are numbered (4 on the page "Results 4–6").
    ``replaces`` says a button's answer should take the place of the message it was pressed on (pages of sources).
    """

    text: str = ""
    cards: tuple[QuoteCard, ...] = ()
    actions: tuple[Action, ...] = ()
    ephemeral: bool = False
    error_ref: str | None = None
    kind: ReplyKind = ReplyKind.NOTICE
    extra: dict[str, str] = field(default_factory=dict)
    shared: bool = False
    first_number: int = 1
    replaces: bool = False


def quote_key(card: QuoteCard) -> str:
    """The key of the quote on ``card``: its passage key and the length of the shown text (``ep12@3140+412``)."""
    return f"{card.passage_key}+{len(card.text)}"


def permalink(base_url: str, card: QuoteCard) -> str:
    """The web page's permanent link to the quote on ``card`` (``{base_url}/q/{quote_key}``); it unfurls
    in Discord and Slack with the quote and, for YouTube sources, the video's thumbnail."""
    return f"{base_url.rstrip('/')}/q/{quote(quote_key(card), safe='@+')}"
