"""Slack adapter: slack-bolt's AsyncApp over HTTP (aiohttp) or Socket Mode.

Thin I/O only: Slack payloads become ``Request``s for the core, ``Reply``s go out as
Block Kit (``bot.platforms.slack.render``). Every listener acks at once and leaves the search and
the answer to a background task (Bolt's lazy-listener pattern, without its per-request
deep copy; a bounded number run at once so acks never wait behind answers). Slash
answers go to ``response_url`` (ephemeral first, with a "Post to channel" button);
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
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.commands import parse, strip_mention
from bot.core import QuoteBot
from bot.daily import ChannelGone
from bot.platforms.slack.render import ACTION_PREFIX, render
from bot.reply import Reply, Request, Via
from config.settings import Settings, SettingsError

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# Web API errors meaning the bot can no longer post to a channel.
GONE_ERRORS = frozenset({
    "channel_not_found", "is_archived", "not_in_channel", "account_inactive", "token_revoked",
    "invalid_auth", "team_access_not_granted", "ekm_access_denied", "restricted_action",
})
BOT_SCOPES = (
    "app_mentions:read", "chat:write", "chat:write.public", "commands", "im:history", "im:read",
    "users:read", "channels:read", "groups:read",
)
TIMEOUT_RETRY_REASONS = frozenset({"http_timeout", "timeout"})
WORKERS = 4  # answers prepared at once (the core searches on 4 threads); more wait, so acks never queue
MAX_BACKLOG = 5000
_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


class SlackAdapter:
    """Connects a QuoteBot to Slack. ``run()`` serves until ``close()`` or cancellation."""

    def __init__(self, core: QuoteBot, settings: Settings, *, daily: Any = None) -> None:
        self.core = core
        self.settings = settings
        self.daily = daily
        self.socket_mode = bool(settings.slack_app_token)
        self.oauth = bool(settings.slack_client_id and settings.slack_client_secret)
        if not self.oauth and not settings.slack_bot_token:
            raise SettingsError("SLACK_BOT_TOKEN: required (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install "
                                "the app in many workspaces)")
        if not self.socket_mode and not settings.slack_signing_secret:
            raise SettingsError("SLACK_SIGNING_SECRET: required to verify Slack's HTTP requests (or set "
                                "SLACK_APP_TOKEN for Socket Mode)")
        self._sdk_log = _quiet_logger("bot.platforms.slack.sdk")
        token = None if self.oauth or not settings.slack_bot_token else settings.slack_bot_token.get()
        base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
        self.client = AsyncWebClient(token=token, base_url=base_url, logger=self._sdk_log)
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
        self._engine: Any = None
        self._owns_engine = False
        self._installations: Any = None
        self._stores: list[Any] = []
        self.app = self._build_app()
        self._by_command = {cmd: name for name, cmd in settings.slack_commands.items()}
        self._seen = _SeenEvents()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(WORKERS)
        self._stopped = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._socket: Any = None
        self._register()

    # --- construction -------------------------------------------------------------

    def _build_app(self) -> AsyncApp:
        signing = self.settings.slack_signing_secret.get() if self.settings.slack_signing_secret else ""
        # process_before_response: the ack listener is awaited directly and the response
        # returned at once (instead of Bolt polling every 10 ms for the ack); the answer is
        # still prepared afterwards, in a background task.
        common: dict[str, Any] = {
            "name": "quotebot", "signing_secret": signing, "client": self.client, "logger": self._sdk_log,
            "process_before_response": True,
        }
        if not self.oauth:
            return AsyncApp(**common)
        from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
        from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
        from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
        from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

        self._engine, self._owns_engine = _shared_engine(self.settings, self.daily)
        client_id = str(self.settings.slack_client_id)
        self._installations = AsyncSQLAlchemyInstallationStore(client_id, self._engine, logger=self._sdk_log)
        states = AsyncSQLAlchemyOAuthStateStore(600, self._engine, logger=self._sdk_log)
        self._stores = [self._installations, states]
        oauth = AsyncOAuthSettings(
            client_id=client_id,
            client_secret=self.settings.slack_client_secret.get(),  # type: ignore[union-attr]
            scopes=list(BOT_SCOPES),
            installation_store=self._installations,
            state_store=states,
            logger=self._sdk_log,
        )
        # Bolt's default authorize calls auth.test on every request; cache its answer per token.
        authorize = AsyncInstallationStoreAuthorize(
            logger=self._sdk_log, installation_store=self._installations, client_id=client_id,
            client_secret=self.settings.slack_client_secret.get(),  # type: ignore[union-attr]
            cache_enabled=True, client=self.client,
        )
        return AsyncApp(oauth_settings=oauth, authorize=authorize, **common)

    def _register(self) -> None:
        app = self.app
        app.middleware(self._drop_duplicates)
        for command in self.settings.slack_commands.values():
            app.command(command)(self._ack_then(self._on_slash))
        app.event("app_mention")(self._ack_then(self._on_mention))
        app.event("message")(self._ack_then(self._on_message))
        app.action(re.compile("^" + re.escape(ACTION_PREFIX)))(self._ack_then(self._on_action))

    def _ack_then(self, work: Callable[[dict[str, Any], str | None], Awaitable[None]]) -> Callable[..., Any]:
        """A Bolt listener that acks at once and leaves ``work`` to a background task."""

        async def listener(ack: Any, body: dict[str, Any], context: Any) -> None:
            await ack()
            self._spawn(work(body, context.get("bot_token") or context.get("token")))

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

    async def run(self) -> None:
        """Serve Slack until ``close()`` is called or the task is cancelled."""
        self._stopped.clear()
        self._session = aiohttp.ClientSession()
        try:
            for store in self._stores:
                await store.create_tables()
            if not self.oauth:
                await self._check_token()
            await self._serve_http()
            if self.socket_mode:
                await self._connect_socket()
            await self._stopped.wait()
        finally:
            await self._shutdown()

    async def close(self) -> None:
        self._stopped.set()
        await self._shutdown()

    async def _check_token(self) -> None:
        try:
            me = await self.client.auth_test()
        except SlackApiError as e:
            error = e.response.get("error", "unknown error")
            if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
                raise SettingsError(f"SLACK_BOT_TOKEN: Slack rejected the token ({error})") from None
            log.warning("slack: auth.test failed (%s); continuing", error)
            return
        except aiohttp.ClientError as e:
            log.warning("slack: cannot reach the Slack API (%s); continuing", type(e).__name__)
            return
        log.info("slack: signed in to team %s as %s", me.get("team"), me.get("user"))

    async def _serve_http(self) -> None:
        # In Socket Mode events arrive over the websocket; HTTP serves the health check only.
        web_app = web.Application() if self.socket_mode else self.app.web_app(path=EVENTS_PATH)
        web_app.router.add_get(HEALTH_PATH, self._healthz)
        self._runner = web.AppRunner(web_app, access_log_class=_PathOnlyAccessLogger)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        mode = "Socket Mode (health check only)" if self.socket_mode else EVENTS_PATH
        log.info("slack: listening on http://%s:%s %s", self.settings.host, self.settings.port, mode)

    async def _connect_socket(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        token = self.settings.slack_app_token.get()  # type: ignore[union-attr]
        self._socket = AsyncSocketModeHandler(self.app, token, logger=self._sdk_log, web_client=self.client)
        await self._socket.connect_async()
        log.info("slack: connected in Socket Mode")

    async def _shutdown(self, grace: float = 5.0) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close_async()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._tasks:  # answers already acked get a moment to go out
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        engine, self._engine = self._engine, None
        if engine is not None and self._owns_engine:
            await engine.dispose()

    async def _healthz(self, request: web.Request) -> web.Response:
        mode = "socket" if self.socket_mode else "http"
        return web.json_response({"ok": True, "platform": "slack", "mode": mode})

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

    # --- work done after the ack (background tasks) ---------------------------------

    async def _on_slash(self, body: dict[str, Any], token: str | None) -> None:
        name = self._by_command.get(body.get("command", ""), "ask")
        try:
            client = self._web_for(token)
            text = clean_text(body.get("text", ""))
            user, channel, team = body.get("user_id", ""), body.get("channel_id", ""), body.get("team_id")
            manage, tz = await self._permissions(client, user, channel) if name == "daily" else (False, None)
            request = Request(
                text=text, user_id=user, channel_id=self._qualify(team, channel), platform="slack",
                via=Via.SLASH, command=name, can_manage=manage, guild_id=team, default_timezone=tz,
            )
            reply = await self.core.handle(request)
            await self._respond(body["response_url"], reply, ephemeral=reply.ephemeral)
        except Exception:
            log.exception("slack: answering %s failed", body.get("command"))

    async def _on_mention(self, body: dict[str, Any], token: str | None) -> None:
        event = body.get("event") or {}
        thread = event.get("thread_ts") or event.get("ts")
        await self._answer_message(event, body, self._web_for(token), Via.MENTION, thread)

    async def _on_message(self, body: dict[str, Any], token: str | None) -> None:
        event = body.get("event") or {}
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        await self._answer_message(event, body, self._web_for(token), Via.DM, event.get("thread_ts"))

    async def _answer_message(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, via: Via, thread: str | None
    ) -> None:
        try:
            text = clean_text(strip_mention(event.get("text", "")))
            user, channel = event.get("user", ""), event.get("channel", "")
            team = body.get("team_id") or event.get("team")
            manage, tz = (False, None)
            if parse(text).name == "daily":
                manage, tz = await self._permissions(client, user, channel)
            request = Request(
                text=text, user_id=user, channel_id=self._qualify(team, channel), platform="slack", via=via,
                can_manage=manage, guild_id=team, default_timezone=tz,
            )
            reply = await self.core.handle(request)
            await self._send(client, channel, reply, thread=thread, user=user)
        except Exception:
            log.exception("slack: answering a %s failed", via.value)

    async def _on_action(self, body: dict[str, Any], token: str | None) -> None:
        try:
            client = self._web_for(token)
            action = next((a for a in body.get("actions") or () if a.get("action_id", "").startswith(ACTION_PREFIX)),
                          None)
            if action is None:
                return
            payload = action.get("value") or action.get("action_id", "")[len(ACTION_PREFIX):]
            user = (body.get("user") or {}).get("id", "")
            container = body.get("container") or {}
            channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
            team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
            request = Request(
                text="", user_id=user, channel_id=self._qualify(team, channel), platform="slack", via=Via.BUTTON,
                guild_id=team,
            )
            reply = await self.core.handle_action(payload, request)
            await self._answer_action(body, client, payload, reply, user=user, channel=channel)
        except Exception:
            log.exception("slack: a button action failed")

    async def _answer_action(
        self, body: dict[str, Any], client: AsyncWebClient, payload: str, reply: Reply, *, user: str, channel: str
    ) -> None:
        url = body.get("response_url")
        container = body.get("container") or {}
        from_ephemeral = bool(container.get("is_ephemeral"))
        if reply.ephemeral or reply.kind in ("stale", "error", "rate_limited"):
            if url:
                await self._respond(url, reply, ephemeral=True)
            else:
                await self._send(client, channel, reply, thread=None, user=user, force_ephemeral=True)
            return
        if payload.startswith("post:") and url:
            await self._respond(url, reply, ephemeral=False, shared_by=user)
            if from_ephemeral:
                await self._post_response(url, {"delete_original": True})
            return
        message = body.get("message") or {}
        thread = message.get("thread_ts") or message.get("ts")
        if from_ephemeral and url:
            await self._respond(url, reply, ephemeral=False)
        else:
            await self._send(client, channel, reply, thread=thread, user=user)

    # --- output -------------------------------------------------------------------

    async def _respond(self, url: str, reply: Reply, *, ephemeral: bool, shared_by: str | None = None) -> None:
        """Post ``reply`` to a response_url: ephemeral to the asker, or in the channel."""
        message = render(reply, public=not ephemeral, shared_by=shared_by)
        body = {
            "response_type": "ephemeral" if ephemeral else "in_channel",
            "replace_original": False,
            **message.payload(),
        }
        await self._post_response(url, body)

    async def _post_response(self, url: str, body: dict[str, Any]) -> None:
        hook = AsyncWebhookClient(
            url, session=self._session, logger=self._sdk_log,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
        )
        response = await hook.send_dict(body)
        if response.status_code != 200:
            # The URL is a credential: log the status only.
            log.warning("slack: response_url answered %s (%s)", response.status_code, response.body[:100])

    async def _send(
        self, client: AsyncWebClient, channel: str, reply: Reply, *, thread: str | None, user: str,
        force_ephemeral: bool = False,
    ) -> None:
        """Answer in a channel: a notice only the asker sees, or a public message (in ``thread``)."""
        private_notice = reply.ephemeral and not reply.cards and not channel.startswith("D")
        if force_ephemeral or private_notice:
            message = render(reply, public=True)
            await client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread, text=message.text, blocks=message.blocks
            )
            return
        message = render(reply, public=True)
        await client.chat_postMessage(
            channel=channel, thread_ts=thread, text=message.text, blocks=message.blocks,
            unfurl_links=False, unfurl_media=False,
        )

    async def post(self, channel_id: str, reply: Reply) -> None:
        """Post ``reply`` publicly (daily quotes). Raises ``ChannelGone`` when posting is no longer possible."""
        team, _, channel = channel_id.rpartition(":")
        message = render(reply, public=True)
        try:
            client = await self._client_for(team or None)
            await client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False, unfurl_media=False
            )
        except SlackApiError as e:
            error = e.response.get("error", "")
            if error in GONE_ERRORS:
                raise ChannelGone(f"slack channel {channel_id}: {error}") from None
            raise

    async def _client_for(self, team: str | None) -> AsyncWebClient:
        """The Web client for ``team``: the single bot token, or the team's installation."""
        if not self.oauth:
            return self._web_for(self.client.token)
        bot = await self._installations.async_find_bot(enterprise_id=None, team_id=team)
        if bot is None or not bot.bot_token:
            raise ChannelGone(f"slack team {team}: the app is not installed")
        return self._web_for(bot.bot_token)

    def _web_for(self, token: str | None) -> AsyncWebClient:
        """A Web client with the request's bot token (the team's, in multi-workspace mode)."""
        return AsyncWebClient(
            token=token, base_url=self.client.base_url, session=self._session, logger=self._sdk_log,
            retry_handlers=self.client.retry_handlers.copy(),
        )

    # --- helpers ------------------------------------------------------------------

    def _qualify(self, team: str | None, channel: str) -> str:
        """Channel ids carry their team in multi-workspace mode (``T123:C456``) so ``post`` finds the token."""
        return f"{team}:{channel}" if self.oauth and team else channel

    async def _permissions(self, client: AsyncWebClient, user: str, channel: str) -> tuple[bool, str | None]:
        """(may manage daily posts here, user's time zone): admins, owners, the channel's creator, own DM."""
        manage, tz = False, None
        try:
            info = (await client.users_info(user=user)).get("user") or {}
            tz = info.get("tz")
            manage = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
        except SlackApiError as e:
            log.warning("slack: users.info failed (%s)", e.response.get("error"))
        if manage or channel.startswith("D"):
            return True, tz
        try:
            conv = (await client.conversations_info(channel=channel)).get("channel") or {}
            manage = conv.get("creator") == user or bool(conv.get("is_im"))
        except SlackApiError as e:
            log.warning("slack: conversations.info failed (%s)", e.response.get("error"))
        return manage, tz


def clean_text(text: str) -> str:
    """Slack message text -> what the user typed: markup reduced to labels, entities decoded.

    ``<https://x|label>`` becomes ``label``, ``<https://x>`` the URL, user/channel/broadcast
    tokens (``<@U1>``, ``<#C1|general>``, ``<!here>``) are dropped or reduced to their label.
    """

    def swap(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if label:
            return label
        return "" if target[:1] in ("@", "#", "!") else target

    text = _MARKUP.sub(swap, text)
    return " ".join(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())


def _header(req: Any, name: str) -> str | None:
    values = (getattr(req, "headers", None) or {}).get(name)
    if not values:
        return None
    return values[0] if isinstance(values, (list, tuple)) else str(values)


def _quiet_logger(name: str) -> logging.Logger:
    """The logger handed to Bolt and slack_sdk: no DEBUG records (they dump request bodies),
    credentials and request bodies redacted. Bolt copies its filters to its own loggers."""
    logger = logging.getLogger(name)
    logger.setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
    if not any(isinstance(f, _Redact) for f in logger.filters):
        logger.addFilter(_Redact())
    return logger


class _Redact(logging.Filter):
    """Removes tokens, response URLs and request bodies from library log records."""

    SECRET = re.compile(
        r"xox[a-z]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+"
        r"|((?:response_url[\"']?|\bcode)\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
        r"|https?(?::|%3A)(?://|%2F%2F)hooks\.slack\.com[^\s\"'&,}]*",
        re.IGNORECASE,
    )
    NOISE = ("As you gave `client` as well",)  # Bolt reads SLACK_BOT_TOKEN itself; the client is what we pass

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(self.NOISE):
            return False
        cleaned = message.split(", body: ", 1)[0] + (")" if ", body: " in message else "")
        cleaned = self.SECRET.sub(lambda m: (m.group(1) or "") + "[redacted]", cleaned)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def _shared_engine(settings: Settings, daily: Any) -> tuple[Any, bool]:
    """(engine, owned): the daily store's engine when there is one, else a new one on DATABASE_URL."""
    engine = getattr(getattr(daily, "store", None), "engine", None)
    if engine is not None:
        return engine, False
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.store import normalize_url

    return create_async_engine(normalize_url(settings.database_url)), True


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


class _PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without query strings (OAuth codes and states travel there)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, request.path, response.status, time * 1000)
