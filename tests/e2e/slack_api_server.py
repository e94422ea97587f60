"""A local stand-in for the Slack Web API (and response_url, Socket Mode) on 127.0.0.1.

It records every call so tests can assert what the bot sent. It answers the methods
the bot uses: auth.test, chat.postMessage, chat.postEphemeral, users.info,
conversations.info, oauth.v2.access (for the code ``good-code``), apps.connections.open
(plus a websocket for Socket Mode), and ``POST /response/<id>`` for response URLs.
``rate_limit_next`` makes the next call of a method answer 429 with ``Retry-After``.
Posted messages are kept per channel with their ``metadata`` and listed by conversations.history;
``fail_after_store`` makes the next chat.postMessage store its message and then answer HTTP 500 or
drop the connection, as a lost answer looks to the bot.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_USER = "UBOT"
TEAM = "T0TEST"
INSTALLED_TOKEN = "xoxb-installed-by-oauth-secret"


@dataclass
class Call:
    """One request the bot made: ``method`` is the API method or ``response_url``."""

    method: str
    body: dict[str, Any]
    token: str | None = None
    path: str = ""
    status: int = 200
    at: float = field(default_factory=time.perf_counter)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.body.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else blocks

    @property
    def block_text(self) -> str:
        """All text inside the blocks, joined (what a user would read)."""
        return json.dumps(self.blocks, ensure_ascii=False)


@dataclass
class SlackApiServer:
    """The fake server. ``users``/``channels`` shape users.info and conversations.info."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    gone_channels: set[str] = field(default_factory=set)
    revoked_tokens: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    post_delay: float = 0.0  # seconds chat.postMessage takes to answer, after storing the message

    def __post_init__(self) -> None:
        self.history: dict[str, list[dict[str, Any]]] = {}  # channel -> messages posted there, oldest first
        self._after_store: list[str] = []
        self._rate_limits: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ready = asyncio.Event()
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{rid}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, rid: str) -> str:
        return f"http://127.0.0.1:{self.port}/response/{rid}"

    # --- test controls ----------------------------------------------------------------

    def rate_limit_next(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get HTTP 429 with ``Retry-After: 0``."""
        self._rate_limits[method] = times

    def fail_after_store(self, how: str) -> None:
        """The next chat.postMessage stores its message, then answers HTTP 500 (``"500"``) or closes the
        connection without an answer (``"drop"``)."""
        assert how in ("500", "drop")
        self._after_store.append(how)

    def posted(self, channel: str) -> list[dict[str, Any]]:
        """The messages posted in ``channel`` (what its members see), oldest first."""
        return list(self.history.get(channel, []))

    def of(self, method: str, status: int | None = 200) -> list[Call]:
        return [c for c in self.calls if c.method == method and (status is None or c.status == status)]

    async def wait_for(
        self, predicate: Callable[[Call], bool], count: int = 1, timeout: float = 10.0
    ) -> list[Call]:
        """Wait until ``count`` recorded calls match ``predicate``; returns them."""

        def found() -> list[Call]:
            return [c for c in self.calls if c.status == 200 and predicate(c)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), timeout)
        return found()

    async def settle(self, seconds: float = 0.3) -> None:
        """Give the bot time to make calls it should NOT make (used before asserting absence)."""
        await asyncio.sleep(seconds)

    async def send_envelope(self, kind: str, payload: dict[str, Any], envelope_id: str,
                            retry_attempt: int = 0) -> None:
        """Push a Socket Mode envelope to the connected bot."""
        await asyncio.wait_for(self._socket_ready.wait(), 10)
        message = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        await self._sockets[-1].send_str(json.dumps(message))

    async def wait_socket_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: any(a.get("envelope_id") == envelope_id for a in self.socket_acks)),
                timeout,
            )
        return next(a for a in self.socket_acks if a.get("envelope_id") == envelope_id)

    # --- handlers ---------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body.update(await request.json())
        elif request.method == "POST":
            body.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") or body.get("token")
        if self._rate_limits.get(method):
            self._rate_limits[method] -= 1
            await self._record(Call(method, body, token, status=429))
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "0"})
        await self._record(Call(method, body, token))
        if token in self.revoked_tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        answer = self._answer(method, body, request)
        if method == "chat.postMessage" and self.post_delay:
            await asyncio.sleep(self.post_delay)
        if method == "chat.postMessage" and answer.get("ok") and self._after_store:
            how = self._after_store.pop(0)
            if how == "drop":
                request.transport.close()
                return web.Response()
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        return web.json_response(answer)

    def _answer(self, method: str, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.example/", "team": "Test", "user": "quotebot",
                    "team_id": TEAM, "user_id": BOT_USER, "bot_id": "BBOT", "is_enterprise_install": False}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            channel = str(body.get("channel", ""))
            if channel in self.gone_channels:
                return {"ok": False, "error": "channel_not_found"}
            ts = f"{time.time():.0f}.{next(self._ts):06d}"
            if method == "chat.postEphemeral":
                return {"ok": True, "message_ts": ts}
            message = {"type": "message", "user": BOT_USER, "bot_id": "BBOT", "text": body.get("text", ""), "ts": ts}
            metadata = body.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            if metadata:
                message["metadata"] = metadata
            self.history.setdefault(channel, []).append(message)
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "conversations.history":
            channel = str(body.get("channel", ""))
            if channel in self.gone_channels:
                return {"ok": False, "error": "channel_not_found"}
            oldest = float(body.get("oldest") or 0)
            messages = [dict(m) for m in reversed(self.history.get(channel, [])) if float(m["ts"]) > oldest]
            if str(body.get("include_all_metadata", "")).lower() not in ("1", "true"):
                for m in messages:
                    m.pop("metadata", None)
            limit = int(body.get("limit") or 100)
            return {"ok": True, "messages": messages[:limit], "has_more": len(messages) > limit,
                    "response_metadata": {"next_cursor": ""}}
        if method == "users.info":
            user = self.users.get(str(body.get("user")))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": body.get("user"), "team_id": TEAM, **user}}
        if method == "conversations.info":
            # Any other C… channel is a public channel the bot is in; ``channels`` describes the rest.
            channel = str(body.get("channel"))
            if channel in self.gone_channels or (channel not in self.channels and not channel.startswith("C")):
                return {"ok": False, "error": "channel_not_found"}
            info = {"id": channel, "is_channel": True, "is_private": False, "is_member": True, "is_archived": False}
            return {"ok": True, "channel": {**info, **self.channels.get(channel, {})}}
        if method == "oauth.v2.access":
            if body.get("code") != "good-code":
                return {"ok": False, "error": "invalid_code"}
            return {"ok": True, "app_id": "A1", "authed_user": {"id": "UADMIN"}, "scope": "chat:write,commands",
                    "token_type": "bot", "access_token": INSTALLED_TOKEN, "bot_user_id": BOT_USER,
                    "team": {"id": TEAM, "name": "Test"}, "enterprise": None, "is_enterprise_install": False}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        return {"ok": False, "error": "unknown_method"}

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self._record(Call("response_url", body, path=request.match_info["rid"]))
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self._socket_ready.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                async with self._changed:
                    self.socket_acks.append(json.loads(msg.data))
                    self._changed.notify_all()
        self._sockets.remove(ws)
        return ws
