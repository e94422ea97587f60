"""The web page: routes on the shared aiohttp server (``bot.http``) that turn GET requests into the core's
Requests and its Replies into HTML (``pages``).

``/``                      the question box; ``?q=…`` answers, ``&page=N`` pages on (plain links, no script)
``/context/<passage key>`` the text around a passage (``?q=…&page=N`` links back to the answers)
``/q/<quote key>``         a quote's permalink, with OpenGraph/Twitter card tags for unfurls
``/sources``               the transcripts searched
``/static/web.css|js``     the page's own stylesheet and script
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot import payloads
from bot.core import QuoteBot, apology, new_ref
from bot.platform import ChannelGone
from bot.platforms.web import pages
from bot.platforms.web.assets import CSS, JS, content_security_policy
from bot.platforms.web.player import player_for
from bot.platforms.web.quotes import quote_card, split_key
from bot.platforms.web.settings import WebSettings
from bot.reply import ActionKind, Reply, Request, Via

log = logging.getLogger(__name__)

PLATFORM = "web"
MAX_PAGE = 50
INTRO = ("Ask a question in your own words. Every answer is a passage quoted word for word from a transcript, "
         "with who said it, when, and a link that plays the recording from that moment.")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(Exception):
    """A request this page cannot answer (a malformed page number or key): 400 with this message."""


class WebAdapter:
    """Serves the search page on the shared HTTP server; ``serve()`` waits until ``close()``."""

    def __init__(self, core: QuoteBot, settings: WebSettings, router: web.UrlDispatcher) -> None:
        self.core = core
        self.settings = settings
        self._stopped = asyncio.Event()
        routes: list[tuple[str, Handler]] = [
            ("/", self._search),
            ("/sources", self._sources),
            ("/q/{key:.+}", self._quote),
            ("/context/{key:.+}", self._context),
            ("/static/web.css", self._asset(CSS, "text/css")),
            ("/static/web.js", self._asset(JS, "text/javascript")),
        ]
        for path, handler in routes:
            router.add_get(path, self._guarded(handler))

    # --- Adapter ------------------------------------------------------------------

    async def serve(self) -> None:
        """The routes are served by the shared HTTP server; this only waits for ``close()``."""
        self._stopped.clear()
        await self._stopped.wait()

    async def close(self) -> None:
        self._stopped.set()

    async def post(self, channel_id: str, reply: Reply) -> None:
        """The web page has no channels: a daily post can never be delivered here."""
        raise ChannelGone(f"web: no channel {channel_id!r} (the web page takes no daily posts)")

    # --- routes -------------------------------------------------------------------

    async def _search(self, request: web.Request) -> web.Response:
        query = " ".join(request.query.get("q", "").split())
        if not query:
            return _html(pages.home_page(INTRO))
        page = _page_number(request.query.get("page", "1"))
        asker = self._request(request, query)
        reply = await self.core.handle(asker)
        status = self._status(reply)
        shown = 1
        while shown < page and status == 200:
            more = next((a for a in reply.actions if a.kind is ActionKind.MORE), None)
            if more is None:
                break
            reply = await self.core.handle_action(more.payload, asker)
            status = self._status(reply)
            shown += 1
        if status != 200:
            return self._message(request, reply, status, query)
        if shown < page:
            text = f"There are only {shown} pages of answers to “{query}”."
            return _html(pages.message_page("No more answers", text, query=query), status=404)
        size = self.core.options.page_size
        has_more = any(a.kind is ActionKind.MORE for a in reply.actions)
        body = pages.results_page(query, reply.text, reply.cards, base_url=self._base(request), page=page,
                                  first=(page - 1) * size + 1, more=has_more)
        return _html(body, media=_media(reply.cards))

    async def _context(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]  # already percent-decoded by the router
        query = " ".join(request.query.get("q", "").split())
        page = _page_number(request.query.get("page", "1"))
        if "@" not in key or not key.rpartition("@")[2].isdigit():
            raise BadRequest("That is not a link to a passage.")
        limited = self._limited(request)
        if limited is not None:
            return limited
        reply = await self.core.handle_action(payloads.context(key), self._request(request, query))
        status = self._status(reply)
        if status != 200 or not reply.cards:
            return self._message(request, reply, status if status != 200 else 404, query)
        c = reply.cards[0]
        body = pages.context_page(c, base_url=self._base(request), query=query, page=page)
        return _html(body, media=_media([c]))

    async def _quote(self, request: web.Request) -> web.Response:
        # Not rate limited: unfurlers (Discordbot, Slackbot) fetch a shared link in bursts, and it is one lookup.
        key = request.match_info["key"]  # already percent-decoded by the router
        if split_key(key) is None:
            raise BadRequest("That is not a link to a quote.")
        c = await asyncio.get_running_loop().run_in_executor(None, quote_card, self.core.searcher, key)
        if c is None:
            text = "That quote is not in the transcripts any more (a transcript may have changed). Search for it:"
            return _html(pages.message_page("Quote not found", text), status=404)
        base = self._base(request)
        body = pages.quote_page(c, url=base + pages.quote_path(c), base_url=base)
        return _html(body, media=_media([c]), cache="public, max-age=300")

    async def _sources(self, request: web.Request) -> web.Response:
        return _html(pages.sources_page(self.core.searcher.sources()))

    def _asset(self, text: str, content_type: str) -> Handler:
        body = text.encode()

        async def handler(request: web.Request) -> web.Response:
            return _secured(web.Response(body=body, content_type=content_type, charset="utf-8"),
                            cache="public, max-age=3600")

        return handler

    # --- helpers ------------------------------------------------------------------

    def _guarded(self, handler: Handler) -> Handler:
        """``handler`` with its failures answered: 400 for a bad request, a short apology with a reference
        (and the traceback in the log) for anything else."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except BadRequest as e:
                log.warning("web: 400 %s: %s", request.path[:200], e)
                return _html(pages.message_page("Bad request", str(e)), status=400)
            except web.HTTPException:
                raise
            except Exception:
                ref = new_ref()
                log.exception("web: %s failed ref=%s", request.path[:200], ref)
                return _html(pages.message_page("Something went wrong", apology(ref).text), status=500)

        return guarded

    def _request(self, request: web.Request, query: str) -> Request:
        # A search is a command with its argument given explicitly, like a slash command.
        return Request(text=query, user_id=self._client(request), channel_id=PLATFORM, platform=PLATFORM,
                       via=Via.SLASH, command="ask")

    def _client(self, request: web.Request) -> str:
        """The client's address, the key of its rate limit (the last proxy hop's claim when trusted)."""
        if self.settings.trust_proxy:
            hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
            if hops:
                return hops[-1]
        return request.remote or "unknown"

    def _limited(self, request: web.Request) -> web.Response | None:
        """A 429 page when this client is over the core's per-user rate limit, else None (a token is taken)."""
        key = f"{PLATFORM}:{self._client(request)}"
        if self.core.limiter.allow(key):
            return None
        wait = self.core.limiter.retry_after(key)
        text = f"You're asking faster than I can keep up. Try again in {wait:.0f} s."
        response = _html(pages.message_page("Slow down", text), status=429)
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response

    def _status(self, reply: Reply) -> int:
        return {"rate_limited": 429, "error": 500, "stale": 404, "bad_input": 400}.get(str(reply.kind), 200)

    def _message(self, request: web.Request, reply: Reply, status: int, query: str) -> web.Response:
        titles = {429: "Slow down", 500: "Something went wrong", 404: "Not found"}
        response = _html(pages.message_page(titles.get(status, "quotebot"), reply.text, query=query), status=status)
        if status == 429:
            wait = self.core.limiter.retry_after(f"{PLATFORM}:{self._client(request)}")
            response.headers["Retry-After"] = str(max(1, round(wait)))
        return response

    def _base(self, request: web.Request) -> str:
        """Where people reach this page: ``QUOTEBOT_PUBLIC_URL``, else this request's scheme and host."""
        return self.settings.public_url or f"{request.scheme}://{request.host}"


def _page_number(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise BadRequest(f"The page number must be a whole number from 1 to {MAX_PAGE}.")
    return int(value)


def _media(cards) -> list[str]:
    """Origins of the audio/video players on a page, for its media-src."""
    players = (player_for(c) for c in cards)
    return [p.origin for p in players if p is not None and p.kind != "youtube"]


def _html(body: str, *, status: int = 200, media: list[str] | None = None, cache: str = "no-store") -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    return _secured(response, media=media or [], cache=cache)


def _secured(response: web.Response, *, media: list[str] | None = None, cache: str) -> web.Response:
    h = response.headers
    h["Content-Security-Policy"] = content_security_policy(media or [])
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "strict-origin-when-cross-origin"  # YouTube embeds need the origin
    h["X-Frame-Options"] = "DENY"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    h["Cache-Control"] = cache
    return response
