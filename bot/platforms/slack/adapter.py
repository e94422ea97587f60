"""Slack adapter: slack-bolt's AsyncApp over HTTP (on the shared aiohttp server) or Socket Mode.

Thin I/O only: Slack payloads become ``Request``s for the core (``messages``, ``actions``), ``Reply``s
go out as Block Kit (``render``, ``posting``); multi-workspace installation lives in ``install``.
Every listener acks at once and leaves the search and the answer to a background task (Bolt's
lazy-listener pattern, without its per-request deep copy; a bounded number run at once so acks never
wait behind answers). Ids (team, enterprise, user, channel, token, response_url) come from Bolt's
``context``. Slash answers go to ``response_url`` (ephemeral first, with a "Post to channel" button);
mentions are answered in their thread and DMs in the DM, through ``chat.postMessage``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import QuoteBot
from bot.daily.scheduler import SendLimits
from bot.http import HttpServer
from bot.platform import PlatformUnavailable
from bot.platforms.slack.actions import Actions
from bot.platforms.slack.daily import SlackDaily
from bot.platforms.slack.guard import RequestGuard
from bot.platforms.slack.install import Installations
from bot.platforms.slack.logs import quiet_logger
from bot.platforms.slack.messages import Messages
from bot.platforms.slack.origin import Origin
from bot.platforms.slack.posting import Outbox
from bot.platforms.slack.render import ACTION_PREFIX
from bot.platforms.slack.retry import PatientRateLimitHandler
from bot.platforms.slack.settings import SlackSettings
from bot.reply import Reply
from config.settings import SettingsError

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
TIMEOUT_RETRY_REASONS = frozenset({"http_timeout", "timeout"})
WORKERS = 4  # answers prepared at once (the core searches on 4 threads); more wait, so acks never queue
MAX_BACKLOG = 5000

Work = Callable[[dict[str, Any], Origin], Awaitable[None]]


class SlackAdapter:
    """Connects a QuoteBot to Slack. ``serve()`` runs until ``close()`` or cancellation.

    In HTTP mode the event routes are added to ``http`` when the adapter is built; the app starts
    that server. ``engine`` (the daily store's database engine, when there is one) keeps the OAuth
    installations next to the daily subscriptions.
    """

    # Daily posts: chat.postMessage allows about one message per second in a channel.
    daily_limits = SendLimits(concurrency=8, channel_interval=1.0)

    def __init__(self, core: QuoteBot, slack: SlackSettings, http: HttpServer, *, database_url: str = "",
                 engine: Any = None, store: Any = None) -> None:
        if not slack.oauth and not slack.bot_token:
            raise SettingsError("SLACK_BOT_TOKEN: required (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install "
                                "the app in many workspaces)")
        if not slack.socket_mode and not slack.signing_secret:
            raise SettingsError("SLACK_SIGNING_SECRET: required to verify Slack's HTTP requests (or set "
                                "SLACK_APP_TOKEN for Socket Mode)")
        self.core = core
        self.slack = slack
        self._sdk_log = quiet_logger("bot.platforms.slack.sdk")
        token = None if slack.oauth or not slack.bot_token else slack.bot_token.get()
        base_url = slack.api_url if slack.api_url.endswith("/") else slack.api_url + "/"
        self.client = AsyncWebClient(token=token, base_url=base_url, logger=self._sdk_log)
        self.client.retry_handlers.append(PatientRateLimitHandler())  # Retry-After, within a bounded time
        self.installations = (
            Installations(slack, database_url, engine, self.client, self._sdk_log) if slack.oauth else None
        )
        self.outbox = Outbox(self.client, self.installations, self._sdk_log)
        self.daily = SlackDaily(self.outbox, self.installations, store)
        self.messages = Messages(core, self.outbox, slack.commands)
        self.actions = Actions(core, self.outbox)
        self.app = self._build_app()
        self._seen = _SeenEvents()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(WORKERS)
        self._stopped = asyncio.Event()
        self._socket: Any = None
        self._register()
        self._http = http
        self._mount(http)

    # --- construction -------------------------------------------------------------

    def _build_app(self) -> AsyncApp:
        signing = self.slack.signing_secret.get() if self.slack.signing_secret else ""
        # process_before_response: the ack listener is awaited directly and the response
        # returned at once (instead of Bolt polling every 10 ms for the ack); the answer is
        # still prepared afterwards, in a background task.
        common: dict[str, Any] = {
            "name": "quotebot", "signing_secret": signing, "client": self.client, "logger": self._sdk_log,
            "process_before_response": True,
        }
        if self.installations is None:
            return AsyncApp(**common)
        i = self.installations
        return AsyncApp(oauth_settings=i.oauth_settings, authorize=i.authorize, **common)

    def _register(self) -> None:
        app = self.app
        app.middleware(self._drop_duplicates)
        for command in self.slack.commands.values():
            app.command(command)(self._ack_then(self.messages.on_slash))
        app.event("app_mention")(self._ack_then(self.messages.on_mention))
        app.event("message")(self._ack_then(self.messages.on_message))
        app.action(re.compile("^" + re.escape(ACTION_PREFIX)))(self._ack_then(self.actions.on_action))
        app.event("app_uninstalled")(self._ack_then(lambda body, _origin: self.daily.on_app_uninstalled(body)))
        app.event("tokens_revoked")(self._ack_then(lambda body, _origin: self.daily.on_tokens_revoked(body)))

    def _mount(self, http: HttpServer) -> None:
        """Events (and the OAuth install pages) on the shared server; in Socket Mode only its health check."""
        mode = "socket" if self.slack.socket_mode else "http"
        router = http.routes("slack", ready=False, mode=mode)
        if self.slack.socket_mode:
            return
        # Signed, well-formed and not a replay before Bolt sees it (Bolt would answer a malformed one with a 500).
        guard = RequestGuard(self.slack.signing_secret.get())  # type: ignore[union-attr]
        for route in self.app.web_app(path=EVENTS_PATH).router.routes():
            if route.method != "HEAD":
                router.add_route(route.method, route.resource.canonical, guard.wrap(route.handler))

    def _ack_then(self, work: Work) -> Callable[..., Any]:
        """A Bolt listener that acks at once and leaves ``work`` to a background task."""

        async def listener(ack: Any, body: dict[str, Any], context: Any) -> None:
            await ack()
            self._spawn(work(body, Origin.of(context)))

        return listener

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if len(self._tasks) >= MAX_BACKLOG:
            work.close()
            log.warning("slack: %d answers queued; dropping a request", len(self._tasks))
            return
        task = asyncio.get_running_loop().create_task(self._gated(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _gated(self, work: Coroutine[Any, Any, None]) -> None:
        async with self._slots:
            await work

    # --- lifecycle ----------------------------------------------------------------

    async def serve(self) -> None:
        """Serve Slack until ``close()`` is called or the task is cancelled."""
        self._stopped.clear()
        await self.outbox.open()
        try:
            if self.installations is not None:
                await self.installations.create_tables()
            else:
                await self._check_token()
            if self.slack.socket_mode:
                await self._connect_socket()
            self._http.ready("slack")
            await self._stopped.wait()
        finally:
            await self._shutdown()

    async def close(self) -> None:
        self._stopped.set()
        await self._shutdown()

    async def post(self, channel_id: str, reply: Reply, *, delivery_key: str | None = None) -> None:
        """Post ``reply`` publicly (daily quotes), ``delivery_key`` in its metadata. Raises ``ChannelGone``
        when posting is no longer possible, ``DeliveryUnknown`` when Slack's answer was lost."""
        await self.daily.post(channel_id, reply, delivery_key=delivery_key)

    async def find_delivery(self, channel_id: str, delivery_key: str) -> bool | None:
        return await self.daily.find_delivery(channel_id, delivery_key)

    async def can_post(self, channel_id: str) -> str | None:
        return await self.daily.can_post(channel_id)

    async def tell_user(self, user_id: str, channel_id: str, text: str) -> None:
        await self.daily.tell_user(user_id, channel_id, text)

    async def _check_token(self) -> None:
        try:
            me = await self.client.auth_test()
        except SlackApiError as e:
            error = e.response.get("error", "unknown error")
            if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
                raise PlatformUnavailable(f"SLACK_BOT_TOKEN: Slack rejected the token ({error})") from None
            log.warning("slack: auth.test failed (%s); continuing", error)
            return
        except aiohttp.ClientError as e:
            log.warning("slack: cannot reach the Slack API (%s); continuing", type(e).__name__)
            return
        log.info("slack: signed in to team %s as %s", me.get("team"), me.get("user"))

    async def _connect_socket(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        token = self.slack.app_token.get()  # type: ignore[union-attr]
        self._socket = AsyncSocketModeHandler(self.app, token, logger=self._sdk_log, web_client=self.client)
        await self._socket.connect_async()
        log.info("slack: connected in Socket Mode")

    async def _shutdown(self, grace: float = 5.0) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close_async()
        if self._tasks:  # answers already acked get a moment to go out
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.outbox.close()
        if self.installations is not None:
            await self.installations.close()

    # --- middleware ---------------------------------------------------------------

    async def _drop_duplicates(self, body: dict[str, Any], req: Any, next_: Any) -> BoltResponse | None:
        """Ack and drop a redelivered event: one already seen, or a retry after a timeout.

        A retry for an event this process never saw (the first delivery failed) is
        answered, so no question is lost while the bot restarts.
        """
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if event_id:
            retry = _header(req, "x-slack-retry-num")
            reason = _header(req, "x-slack-retry-reason")
            first_time = self._seen.add(str(event_id))
            if not first_time or (retry and reason in TIMEOUT_RETRY_REASONS):
                log.info("slack: dropped redelivery of event %s (retry %s, %s)", event_id, retry or 0, reason or "-")
                return BoltResponse(status=200, body="")
        await next_()
        return None


def _header(req: Any, name: str) -> str | None:
    values = (getattr(req, "headers", None) or {}).get(name)
    if not values:
        return None
    return values[0] if isinstance(values, (list, tuple)) else str(values)


class _SeenEvents:
    """Bounded memory of Events API ``event_id``s already taken."""

    def __init__(self, capacity: int = 20_000, ttl: float = 3600.0) -> None:
        self._ids: OrderedDict[str, float] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl

    def add(self, event_id: str) -> bool:
        """Remember ``event_id``; False when it was seen before."""
        now = time.monotonic()
        while self._ids and (len(self._ids) >= self._capacity or next(iter(self._ids.values())) < now - self._ttl):
            self._ids.popitem(last=False)
        if event_id in self._ids:
            return False
        self._ids[event_id] = now
        return True
