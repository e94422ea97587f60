"""The platform-neutral bot: a Request in, a Reply out. No Discord or Slack here."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import payloads
from bot.commands import Command, parse
from bot.help import help_text
from bot.memo import InMemoryMemo, Memo
from bot.payloads import Intent
from bot.ratelimit import RateLimiter
from bot.reply import Action, ActionKind, QuoteCard, Reply, ReplyKind, Request, Via, permalink
from retrieval.links import thumbnail_url
from retrieval.model import Hit
from retrieval.retriever import Retriever

log = logging.getLogger(__name__)

PAGE = 3
MAX_QUERY_CHARS = 300
SOURCES_PER_PAGE = 10
SOURCES_PAGE_CHARS = 1700  # one page fits a Discord message (2,000) and a Slack section (3,000)


class DailyCommands(Protocol):
    """What the core needs from the daily-post service (``bot.daily``)."""

    async def handle(self, request: Request, arg: str) -> Reply: ...


class FeedCommands(Protocol):
    """What the core needs from the podcast-feed service (``bot.feeds``): ``feed ARG`` answered in plain text."""

    async def handle(self, arg: str) -> str: ...


FEED_VERBS = ("add", "list", "ls", "remove", "rm", "delete", "refresh")


def feeds_admin_only(admins: tuple[str, ...]) -> str:
    """The refusal for a feed change from chat by someone who may not make it."""
    who = f" ({', '.join(admins)})" if admins else ""
    return f"Only admins can change the podcast feeds: use /quote-admin feed add URL{who}, or the console."


def channel_names(platforms: tuple[str, ...]) -> str:
    """``("Discord", "Slack")`` -> ``"Discord and Slack"``; "chat" when there are none."""
    if not platforms:
        return "chat"
    return platforms[0] if len(platforms) == 1 else f"{', '.join(platforms[:-1])} and {platforms[-1]}"


@dataclass(frozen=True, slots=True)
class CoreOptions:
    """Tunable behaviour of the core, filled from settings at the entry point."""

    page_size: int = PAGE
    max_query_chars: int = MAX_QUERY_CHARS
    rate_per_minute: float = 20.0
    rate_burst: int = 5
    slash_ephemeral: bool = True
    search_threads: int = 4
    # where the web page is reached (``QUOTEBOT_PUBLIC_URL``): cards then carry their permalink
    public_url: str | None = None
    # the registered platforms with channels ("Discord"), and who may change feeds on each
    # ("Manage Server on Discord"), for replies that say where something works
    channel_platforms: tuple[str, ...] = ()
    feed_admins: tuple[str, ...] = ()


class QuoteBot:
    """Routes commands to the searcher (any ``retrieval.retriever.Retriever``) and builds platform-neutral replies."""

    def __init__(
        self,
        searcher: Retriever,
        options: CoreOptions | None = None,
        *,
        memo: Memo | None = None,
        daily: DailyCommands | None = None,
        feeds: FeedCommands | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.searcher = searcher
        self.options = options or CoreOptions()
        self.memo = memo or InMemoryMemo()
        self.daily = daily
        self.feeds = feeds
        self.rng = rng or random.Random()
        self.limiter = RateLimiter(self.options.rate_per_minute, self.options.rate_burst)
        self._pool = ThreadPoolExecutor(self.options.search_threads, thread_name_prefix="search")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _card(self, hit: Hit) -> QuoteCard:
        return card(hit, self.options.public_url)

    async def _run(self, fn, *args):
        # Retrieval is CPU work: run it on a thread so one slow query never blocks others.
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # --- entry points -------------------------------------------------------------

    async def handle(self, request: Request) -> Reply:
        """Answer one command. Never raises: failures become a short apology."""
        try:
            request = replace(request, text=clean_text(request.text))
            # The console is one trusted local user (and scripts pipe many questions into it): no limit there.
            if request.via is not Via.CONSOLE and not self.limiter.allow(f"{request.platform}:{request.user_id}"):
                wait = self.limiter.retry_after(f"{request.platform}:{request.user_id}")
                return Reply(
                    text=f"You're asking faster than I can keep up. Try again in {wait:.0f} s.",
                    ephemeral=True,
                    kind=ReplyKind.RATE_LIMITED,
                )
            return await self._dispatch(request, parse(request.text, request.command))
        except Exception:
            return self._apology(request)

    async def handle_action(self, payload: str, request: Request) -> Reply:
        """Answer a button press whose payload came from an earlier Reply."""
        try:
            return await self._action(payload, request)
        except Exception:
            return self._apology(request)

    def _apology(self, request: Request) -> Reply:
        ref = new_ref()
        log.exception("command failed ref=%s platform=%s via=%s", ref, request.platform, request.via.value)
        return apology(ref)

    # --- commands -----------------------------------------------------------------

    async def _dispatch(self, request: Request, command: Command) -> Reply:
        if command.name == "help":
            text = help_text(request, daily=self.daily is not None,
                             channels=channel_names(self.options.channel_platforms))
            return Reply(text=text, kind=ReplyKind.HELP, ephemeral=True)
        if command.name == "sources":
            return self._sources(None if request.via is Via.CONSOLE else 0)
        if command.name == "quote":
            return await self._quote(command.arg)
        if command.name == "daily":
            if self.daily is None and request.via is Via.CONSOLE:
                return await self._console_daily(request, command.arg)
            if self.daily is None:
                return Reply(text="Daily quotes are not configured on this bot.", kind=ReplyKind.DAILY,
                             ephemeral=True)
            return await self.daily.handle(request, command.arg)
        if command.name == "feed":
            return await self._feed(request, command.arg)
        if command.name in ("more", "context"):
            return Reply(text="Use the buttons under an answer for more results or context.", ephemeral=True)
        return await self._ask(request, command.arg)

    async def _ask(self, request: Request, question: str, offset: int = 0) -> Reply:
        question, notice = self._cut(question)
        if not question:
            return Reply(text="Ask me something, e.g. `ask what did he say about the Fermi paradox`.",
                         kind=ReplyKind.HELP)
        size = self.options.page_size
        hits = await self._run(self.searcher.search, question, size + 1, offset)
        if not hits:
            return self._nothing_found(question, notice, offset)
        shown, has_more = hits[:size], len(hits) > size
        qkey = await self._remember(question)
        actions = []
        if has_more and qkey:
            actions.append(Action(ActionKind.MORE, "More", payloads.more(qkey, offset + size)))
        numbered = len(shown) > 1 or offset > 0
        for i, h in enumerate(shown):
            ctx = payloads.context(h.passage.key)
            if payloads.fits(ctx):
                actions.append(Action(ActionKind.CONTEXT, f"Context {offset + i + 1}" if numbered else "Context", ctx))
        if self.options.slash_ephemeral and qkey:
            actions.append(Action(ActionKind.POST, "Post to channel", payloads.share(qkey, offset)))
        header = f"Results {offset + 1}–{offset + len(shown)} for “{question}”" if offset else ""
        return Reply(
            text="\n".join(t for t in (notice, header) if t),
            cards=tuple(self._card(h) for h in shown),
            actions=tuple(actions),
            ephemeral=self.options.slash_ephemeral,
            kind=ReplyKind.ANSWER,
            extra={"query": question},
            first_number=offset + 1,
        )

    def _nothing_found(self, question: str, notice: str, offset: int) -> Reply:
        if offset:
            return Reply(text=f"No more results for “{question}”.", kind=ReplyKind.ANSWER, ephemeral=True)
        topics = self.searcher.suggestions(self.rng, 5)
        hint = f" Try a topic such as {', '.join(topics)}," if topics else " Try other words,"
        text = f"I found nothing about “{question}” in the transcripts.{hint} or see `sources` for what I know."
        return Reply(text="\n".join(t for t in (notice, text) if t), kind=ReplyKind.ANSWER, ephemeral=True)

    async def _quote(self, topic: str) -> Reply:
        topic, notice = self._cut(topic)
        hit = await self._run(self.searcher.random_quote, self.rng, topic or None)
        if hit is None:
            return self._nothing_found(topic, notice, 0)
        actions = (Action(ActionKind.CONTEXT, "Context", payloads.context(hit.passage.key)),)
        return Reply(text=notice, cards=(self._card(hit),), actions=actions, kind=ReplyKind.QUOTE)

    def _sources(self, page: int | None) -> Reply:
        """Every source (``page`` None: the console, which has no message limits), or one page of them with
        Previous/Next buttons: each page fits one Discord or Slack message."""
        lines = []
        for s in self.searcher.sources():
            when = f" ({s.date})" if s.date else ""
            link = f" {s.url}" if s.url else ""
            lines.append(f"• {s.title}{when}{link}")
        if page is None:
            return Reply(text="Transcripts I search:\n" + "\n".join(lines), kind=ReplyKind.SOURCES, ephemeral=True)
        pages = paginate(lines, SOURCES_PER_PAGE, SOURCES_PAGE_CHARS)
        page = min(max(page, 0), len(pages) - 1)
        start = sum(len(p) for p in pages[:page])
        shown = pages[page]
        if len(pages) == 1:
            head = f"Transcripts I search ({len(lines)}):"
        else:
            head = f"Transcripts I search ({start + 1}–{start + len(shown)} of {len(lines)}, page {page + 1}/" \
                   f"{len(pages)}):"
        actions = []
        if page > 0:
            actions.append(Action(ActionKind.PAGE, "Previous", payloads.sources(page - 1)))
        if page + 1 < len(pages):
            actions.append(Action(ActionKind.PAGE, "Next", payloads.sources(page + 1)))
        return Reply(text="\n".join([head, *shown]), actions=tuple(actions), kind=ReplyKind.SOURCES, ephemeral=True)

    async def _console_daily(self, request: Request, arg: str) -> Reply:
        """``daily`` at the terminal: ``daily now [topic]`` shows today's quote (the same all day); subscriptions
        belong to chat channels, so the other subcommands say where they work."""
        verb, _, topic = arg.partition(" ")
        if verb.lower() != "now":
            return Reply(text=f"Daily posts are for {channel_names(self.options.channel_platforms)} channels: there, "
                              "`daily subscribe 09:00 Europe/Berlin` posts a quote every day. Here, `daily now` shows "
                              "today's quote.",
                         kind=ReplyKind.DAILY, ephemeral=True)
        topic, notice = self._cut(topic)
        today = datetime.now(_zone(request.default_timezone)).date().isoformat()
        hit = await self._run(self.searcher.random_quote, random.Random(f"daily:{today}:{topic}"), topic or None)
        if hit is None:
            return self._nothing_found(topic, notice, 0)
        title = f"Quote of the day · {topic}" if topic else "Quote of the day"
        actions = (Action(ActionKind.CONTEXT, "Context", payloads.context(hit.passage.key)),)
        return Reply(text="\n".join(t for t in (notice, title) if t), cards=(self._card(hit),), actions=actions,
                     kind=ReplyKind.DAILY)

    async def _feed(self, request: Request, arg: str) -> Reply:
        """Feeds change what everyone searches: changes come only from the console and from a platform's
        admin command (``Request.command == "feed"``, sent after that platform's own admin check)."""
        verb = arg.split(" ", 1)[0].lower()
        admin = request.via is Via.CONSOLE or request.command == "feed"
        if not admin and verb not in FEED_VERBS:
            return await self._ask(request, f"feed {arg}".strip())  # a question that starts with "feed"
        if self.feeds is None:
            return Reply(text="Podcast feeds are not configured on this bot.", ephemeral=True)
        if not admin and verb not in ("list", "ls"):
            return Reply(text=feeds_admin_only(self.options.feed_admins), ephemeral=True)
        return Reply(text=await self.feeds.handle(arg), ephemeral=True)

    # --- buttons ------------------------------------------------------------------

    async def _action(self, payload: str, request: Request) -> Reply:
        pressed = payloads.decode(payload)
        if pressed is None:
            return _stale()
        if pressed.intent is Intent.SOURCES:
            return replace(self._sources(pressed.offset), replaces=True)
        if pressed.intent is Intent.CONTEXT:
            hit = await self._run(self.searcher.context, pressed.passage_key)
            if hit is None:
                return _stale()
            return Reply(cards=(self._card(hit),), kind=ReplyKind.CONTEXT, ephemeral=self.options.slash_ephemeral)
        try:
            question = await self.memo.get(pressed.query_key)
        except Exception as e:  # the database is down: the button cannot work, but nothing else is wrong
            log.warning("button memo unavailable, a %s button cannot be answered: %s", pressed.intent.value,
                        type(e).__name__)
            return Reply(text="Sorry, this button is unavailable right now. Please ask the question again.",
                         ephemeral=True, kind=ReplyKind.STALE)
        if question is None:
            return _stale()
        inner = await self._ask(request, question, pressed.offset)
        if pressed.intent is Intent.MORE:
            return inner
        kept = tuple(a for a in inner.actions if a.kind is not ActionKind.POST)
        asked = f"Asked: “{question}”"
        text = "\n".join(t for t in (asked, inner.text) if t) if not pressed.offset else inner.text
        return Reply(text=text, cards=inner.cards, actions=kept, ephemeral=False, kind=inner.kind,
                     extra=inner.extra, shared=True, first_number=inner.first_number)

    # --- helpers ------------------------------------------------------------------

    def _cut(self, text: str) -> tuple[str, str]:
        text = " ".join(text.split())
        limit = self.options.max_query_chars
        if len(text) <= limit:
            return text, ""
        cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
        return cut, f"(Your question was longer than {limit} characters; I searched for its first part.)"

    async def _remember(self, question: str) -> str | None:
        """The memo key of ``question`` for its buttons; None when the memo cannot be written (the database
        is down): the answer then goes out without the buttons that need it."""
        key = hashlib.sha256(question.encode()).hexdigest()[:16]
        try:
            await self.memo.put(key, question)
        except Exception as e:
            log.warning("button memo unavailable, answering without More/Post buttons: %s", type(e).__name__)
            return None
        return key


def clean_text(text: str) -> str:
    """``text`` safe to encode: lone surrogates (from JSON ``\\ud800`` escapes or undecodable bytes) become U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def paginate(lines: list[str], per_page: int, chars: int) -> list[list[str]]:
    """``lines`` in pages of at most ``per_page`` lines and about ``chars`` characters (never an empty page)."""
    pages: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if pages[-1] and (len(pages[-1]) >= per_page or size + len(line) + 1 > chars):
            pages.append([])
            size = 0
        pages[-1].append(line)
        size += len(line) + 1
    return pages


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _stale() -> Reply:
    return Reply(
        text="That button belongs to an answer I no longer have. Please ask again.", ephemeral=True,
        kind=ReplyKind.STALE,
    )


def new_ref() -> str:
    """A short reference id for one failure, shown to the user and logged with the traceback."""
    return uuid.uuid4().hex[:8]


def apology(ref: str) -> Reply:
    """The short private apology for a failed command, with its reference id (adapters use it too)."""
    return Reply(text=f"Sorry, something went wrong on my side. Reference: {ref}.", ephemeral=True, error_ref=ref,
                 kind=ReplyKind.ERROR)


def card(hit: Hit, public_url: str | None = None) -> QuoteCard:
    """The QuoteCard for a search hit, linked to its web permalink when ``public_url`` is given."""
    p, s = hit.passage, hit.source
    if p.start is not None:
        label = clock(p.start)
    elif s.timed is False and p.position:
        label = f"about {round(p.position * 100)}% in"
    else:
        label = ""
    c = QuoteCard(
        text=p.text,
        title=f"{s.title} · {p.chapter}" if p.chapter else s.title,
        source_id=s.source_id,
        passage_key=p.key,
        speaker=p.speaker,
        time_label=label,
        url=hit.url,
        thumbnail_url=thumbnail_url(s.url),
        highlights=hit.highlights,
    )
    return replace(c, permalink=permalink(public_url, c)) if public_url else c


def clock(seconds: float) -> str:
    """``754.2`` -> ``"12:34"``; hours shown when needed."""
    s = int(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"
