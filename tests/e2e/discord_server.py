"""A local Discord for end-to-end tests: gateway (websocket) and REST API on 127.0.0.1.

The real discord.py client connects to it as it would to Discord: HELLO, heartbeat ACK,
IDENTIFY -> READY + GUILD_CREATE (a guild with a channel, a thread and roles). Tests inject
MESSAGE_CREATE and INTERACTION_CREATE events and then assert on the HTTP requests the bot
made, all of which are recorded. Every JSON answer has ``Content-Type: application/json``
exactly, as Discord's does (discord.py checks it verbatim). A route can be told to answer
one or ``times`` consecutive 429s (optionally only to requests whose body matches) with a ``Via`` header
and a JSON ``retry_after``, as Discord's rate limiter does.

Channel messages keep their ``nonce``; with ``enforce_nonce`` a repeat of a recent nonce returns the
message already stored, as Discord does. ``GET /channels/{id}/messages`` lists a channel's messages,
``fail_after_store`` makes the next message send store its message and then answer HTTP 500 or drop
the connection, and ``bot_denied`` takes permissions from the bot in a channel (Send Messages and Embed
Links in ``QUIET_CHANNEL_ID``): its interactions say so and sends there get 403.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

JSON = "application/json"
TOKEN = "test-token-for-the-local-discord"
API = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000

BOT_ID = "1100000000000000001"
APP_ID = BOT_ID
GUILD_ID = "1200000000000000001"
CHANNEL_ID = "1300000000000000001"
THREAD_ID = "1300000000000000002"
GONE_CHANNEL_ID = "1300000000000000099"
QUIET_CHANNEL_ID = "1300000000000000003"
DM_CHANNEL_ID = "1300000000000000050"
OWNER_ID = "1400000000000000009"
MOD_ROLE_ID = "1500000000000000001"
MODERATOR_ID = "1400000000000000001"
MEMBER_ID = "1400000000000000002"

# View Channels, Send Messages, Embed Links, Read Message History, Use Application Commands, Send in Threads.
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 31) | (1 << 38)
MANAGE_CHANNELS = 1 << 4
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
NONCE_SECONDS = 300  # how long enforce_nonce remembers a nonce
EPHEMERAL = 1 << 6
LOADING = 1 << 7


@dataclass
class Recorded:
    """One HTTP request the bot made, and what the server answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    headers: dict[str, str]
    message_id: str | None = None  # the message this request created or edited
    at: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


@dataclass
class Sent:
    """An event the test injected: ids to find the bot's answer by."""

    id: str
    token: str = ""

    @property
    def callback_path(self) -> str:
        return f"/interactions/{self.id}/{self.token}/callback"

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{APP_ID}/{self.token}"


@dataclass
class _Session:
    ws: web.WebSocketResponse
    shard: tuple[int, int] = (0, 1)
    seq: int = 0
    identified: bool = False
    identify: dict[str, Any] = field(default_factory=dict)


def timestamp() -> str:
    return datetime.now(UTC).isoformat()


def user(uid: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": uid, "username": name, "discriminator": "0", "global_name": name, "avatar": None, "bot": bot}


class LocalDiscord:
    """Gateway + REST server; start() binds a free port on 127.0.0.1."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[Recorded] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self.sessions: list[_Session] = []
        self.identifies: list[dict[str, Any]] = []
        self.close_codes: list[int | None] = []  # websocket close codes of ended gateway sessions
        self.close_on_identify: int | None = None  # answer IDENTIFY by closing with this code (e.g. 4004, 4011)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._faults: list[tuple[str, re.Pattern[str], int, dict[str, Any], dict[str, str], Callable | None]] = []
        self._interactions: dict[str, dict[str, Any]] = {}  # token -> {channel_id, answered, original}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.roles = {GUILD_ID: MEMBER_PERMISSIONS, MOD_ROLE_ID: MEMBER_PERMISSIONS | MANAGE_CHANNELS}
        self.users = {
            BOT_ID: user(BOT_ID, "quotebot", bot=True),
            MODERATOR_ID: user(MODERATOR_ID, "mod"),
            MEMBER_ID: user(MEMBER_ID, "member"),
            OWNER_ID: user(OWNER_ID, "owner"),
        }
        self.member_roles = {MODERATOR_ID: [MOD_ROLE_ID], MEMBER_ID: [], BOT_ID: [], OWNER_ID: []}
        self.bot_denied: dict[str, int] = {QUIET_CHANNEL_ID: SEND_MESSAGES | EMBED_LINKS}
        self._after_store: list[tuple[re.Pattern[str], str]] = []
        self._dms: dict[str, str] = {}  # user -> DM channel id

    # --- lifecycle ----------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        for s in list(self.sessions):
            await s.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what the test uses -------------------------------------------------------

    def snowflake(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._ids) & 0x3FFFFF))

    def mark(self) -> int:
        """Position in the request log; pass to ``wait_for`` to look only at later requests."""
        return len(self.requests)

    def rate_limit_once(self, method: str, path_regex: str, retry_after: float) -> None:
        """Answer the next matching request with a 429 carrying ``retry_after`` seconds."""
        self.rate_limit(method, path_regex, retry_after)

    def rate_limit(self, method: str, path_regex: str, retry_after: float, *, times: int = 1,
                   when: Callable[[Any], bool] | None = None) -> None:
        """Answer the next ``times`` matching requests (those whose JSON body ``when`` accepts, if given)
        with 429s carrying ``retry_after`` seconds."""
        answer = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))), "X-RateLimit-Scope": "user"}
        for _ in range(times):
            self.fail_once(method, path_regex, 429, answer, headers, when=when)

    def clear_faults(self) -> None:
        """Forget every fault not yet answered (e.g. 429s left over from a test)."""
        self._faults.clear()

    def fail_after_store(self, path_regex: str, how: str) -> None:
        """The next message POST matching ``path_regex`` stores its message, then answers HTTP 500 (``"500"``)
        or closes the connection without an answer (``"drop"``)."""
        assert how in ("500", "drop")
        self._after_store.append((re.compile(path_regex), how))

    def channel_messages(self, channel_id: str) -> list[dict[str, Any]]:
        """The messages in a channel, oldest first (what its members see)."""
        return sorted((m for m in self.messages.values() if m["channel_id"] == channel_id), key=lambda m: int(m["id"]))

    def fail_once(
        self, method: str, path_regex: str, status: int, answer: dict[str, Any], headers: dict[str, str] | None = None,
        *, when: Callable[[Any], bool] | None = None,
    ) -> None:
        """Answer the next matching request (whose body ``when`` accepts, if given) with ``status`` and
        ``answer`` instead of handling it."""
        self._faults.append((method.upper(), re.compile(path_regex), status, answer, headers or {}, when))

    async def wait_for(
        self, match: Callable[[Recorded], bool], *, after: int = 0, count: int = 1, timeout: float = 15.0
    ) -> list[Recorded]:
        """The first ``count`` recorded requests (from position ``after``) for which ``match`` is true."""

        def found() -> list[Recorded]:
            return [r for r in self.requests[after:] if match(r)]

        async def wait() -> list[Recorded]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(found()) >= count)
            return found()[:count]

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            seen = "\n  ".join(str(r) for r in self.requests[after:]) or "(none)"
            raise AssertionError(f"no matching request within {timeout} s; requests seen:\n  {seen}") from None

    async def wait_answer(self, sent: Sent, *, after: int = 0, timeout: float = 15.0) -> Recorded:
        """The first successful message the bot sent for an interaction (callback with content or follow-up)."""

        def answers(r: Recorded) -> bool:
            if r.status >= 300:
                return False
            if r.path == sent.callback_path:
                return r.body.get("type") in (4, 7)
            return r.path.startswith(sent.webhook_path) and r.method in ("POST", "PATCH")

        return (await self.wait_for(answers, after=after, timeout=timeout))[0]

    async def wait_identified(self, count: int = 1, timeout: float = 30.0) -> dict[str, Any]:
        """The IDENTIFY payload once ``count`` identifies have arrived in total."""
        await self._until(lambda: len(self.identifies) >= count, timeout, "the bot to identify on the gateway")
        return self.identifies[count - 1]

    async def wait_disconnected(self, count: int = 1, timeout: float = 15.0) -> int | None:
        """The close code once ``count`` gateway sessions have ended in total."""
        await self._until(lambda: len(self.close_codes) >= count, timeout, "the gateway session to end")
        return self.close_codes[count - 1]

    async def _until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(ready)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"gave up waiting {timeout} s for {what}") from None

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        for s in list(self.sessions):
            if s.identified and self._on_shard(s, data.get("guild_id")):
                s.seq += 1
                await s.ws.send_str(json.dumps({"op": 0, "t": event, "s": s.seq, "d": data}))

    async def slash(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        user_id: str = MEMBER_ID,
        channel_id: str = CHANNEL_ID,
    ) -> Sent:
        """A user runs ``/name`` with ``options`` (Discord's option objects)."""
        data = {"id": self._command_id(name), "name": name, "type": 1, "options": options or []}
        return await self._interaction(2, data, user_id=user_id, channel_id=channel_id)

    async def autocomplete(self, name: str, options: list[dict[str, Any]], *, user_id: str = MEMBER_ID) -> Sent:
        """A user types into an option of ``/name``: ``options`` with the one being typed marked ``focused``."""
        data = {"id": self._command_id(name), "name": name, "type": 1, "options": options}
        return await self._interaction(4, data, user_id=user_id, channel_id=CHANNEL_ID)

    async def press(self, custom_id: str, message: dict[str, Any], *, user_id: str = MEMBER_ID) -> Sent:
        """A user presses the button ``custom_id`` under ``message`` (a message payload the bot sent)."""
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interaction(
            3, data, user_id=user_id, channel_id=message.get("channel_id", CHANNEL_ID), message=message
        )

    async def say(
        self, content: str, *, user_id: str = MEMBER_ID, channel_id: str = CHANNEL_ID, mention_bot: bool = True
    ) -> Sent:
        """A user posts ``content`` in ``channel_id`` (``DM_CHANNEL_ID``: a DM); ``mention_bot`` pings the bot."""
        mid = self.snowflake()
        payload = self._message_base(mid, channel_id, content, author_id=user_id)
        if channel_id != DM_CHANNEL_ID:
            bot = dict(self.users[BOT_ID], member=self._member(BOT_ID, with_user=False))
            payload.update(guild_id=GUILD_ID, member=self._member(user_id, with_user=False),
                           mentions=[bot] if mention_bot else [])
        await self.dispatch("MESSAGE_CREATE", payload)
        return Sent(mid)

    def message_sent(self, recorded: Recorded) -> dict[str, Any]:
        """The stored message a recorded bot request created or edited."""
        assert recorded.message_id, f"{recorded} created no message"
        return self.messages[recorded.message_id]

    # --- gateway ------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoclose=False)
        await ws.prepare(request)
        session = _Session(ws)
        self.sessions.append(session)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        code: int | None = None
        try:
            async for msg in ws:
                if msg.type == WSMsgType.CLOSE:
                    code = msg.data  # the code the client closed with (its first close frame)
                    await ws.close()
                    break
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2 and self.close_on_identify is not None:
                    code = self.close_on_identify
                    await ws.close(code=code, message=b"closed by the test")
                    break
                elif op == 2:
                    await self._ready(session, frame["d"])
                elif op == 6:
                    session.identified = True
                    session.seq = frame["d"].get("seq") or 0
                    session.seq += 1
                    await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": session.seq, "d": {}}))
        finally:
            self.sessions.remove(session)
            async with self._changed:
                self.close_codes.append(code if code is not None else ws.close_code)
                self._changed.notify_all()
        return ws

    async def _ready(self, session: _Session, identify: dict[str, Any]) -> None:
        shard = tuple(identify.get("shard") or (0, 1))
        session.shard = (int(shard[0]), int(shard[1]))
        session.identify = identify
        guilds = [{"id": GUILD_ID, "unavailable": True}] if self._on_shard(session, GUILD_ID) else []
        ready = {
            "v": 10,
            "user": self.users[BOT_ID],
            "guilds": guilds,
            "session_id": f"session-{next(self._ids)}",
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard),
            "application": {"id": APP_ID, "flags": 0},
        }
        session.seq += 1
        await session.ws.send_str(json.dumps({"op": 0, "t": "READY", "s": session.seq, "d": ready}))
        session.identified = True
        if guilds:
            session.seq += 1
            frame = {"op": 0, "t": "GUILD_CREATE", "s": session.seq, "d": self._guild()}
            await session.ws.send_str(json.dumps(frame))
        async with self._changed:
            self.identifies.append(identify)
            self._changed.notify_all()

    def _on_shard(self, session: _Session, guild_id: str | None) -> bool:
        if guild_id is None:
            return session.shard[0] == 0
        return (int(guild_id) >> 22) % session.shard[1] == session.shard[0]

    def _guild(self) -> dict[str, Any]:
        channel = self._channel(CHANNEL_ID)
        thread = {
            **self._channel(THREAD_ID),
            "type": 11,
            "parent_id": CHANNEL_ID,
            "owner_id": MEMBER_ID,
            "message_count": 1,
            "member_count": 2,
            "rate_limit_per_user": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": timestamp(),
                "locked": False,
            },
        }
        roles = [
            {"id": rid, "name": "@everyone" if rid == GUILD_ID else "Moderators", "permissions": str(perms),
             "position": 0 if rid == GUILD_ID else 1, "color": 0, "hoist": False, "managed": False,
             "mentionable": False, "flags": 0}
            for rid, perms in self.roles.items()
        ]
        return {
            "id": GUILD_ID,
            "name": "Test guild",
            "owner_id": OWNER_ID,
            "member_count": 4,
            "roles": roles,
            "channels": [channel, self._channel(QUIET_CHANNEL_ID)],
            "threads": [thread],
            "members": [self._member(BOT_ID)],
            "emojis": [],
            "stickers": [],
            "features": [],
            "unavailable": False,
            "large": False,
            "joined_at": timestamp(),
        }

    def _channel(self, cid: str) -> dict[str, Any]:
        denied = self.bot_denied.get(cid, 0)
        overwrites = [{"id": BOT_ID, "type": 1, "allow": "0", "deny": str(denied)}] if denied else []
        return {"id": cid, "type": 0, "guild_id": GUILD_ID, "name": f"channel-{cid[-2:]}", "position": 0,
                "permission_overwrites": overwrites, "nsfw": False, "parent_id": None, "topic": None}

    def _member(self, uid: str, *, with_user: bool = True) -> dict[str, Any]:
        m: dict[str, Any] = {"roles": self.member_roles.get(uid, []), "joined_at": timestamp(), "deaf": False,
                             "mute": False, "flags": 0}
        if with_user:
            m["user"] = self.users[uid]
        return m

    def _permissions(self, uid: str) -> int:
        perms = self.roles[GUILD_ID]
        for rid in self.member_roles.get(uid, []):
            perms |= self.roles[rid]
        return perms

    def _command_id(self, name: str) -> str:
        for c in self.commands:
            if c["name"] == name:
                return c["id"]
        return self.snowflake()

    async def _interaction(
        self, kind: int, data: dict[str, Any], *, user_id: str, channel_id: str, message: dict | None = None
    ) -> Sent:
        iid, token = self.snowflake(), f"token-{next(self._ids)}"
        channel = self._channel(channel_id)
        if channel_id == THREAD_ID:
            channel.update(type=11, parent_id=CHANNEL_ID)
        payload: dict[str, Any] = {
            "id": iid,
            "application_id": APP_ID,
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": GUILD_ID,
            "channel_id": channel_id,
            "channel": channel,
            "member": {**self._member(user_id), "permissions": str(self._permissions(user_id))},
            "app_permissions": str(self._permissions(BOT_ID) & ~self.bot_denied.get(channel_id, 0)),
            "data": data,
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": GUILD_ID},
            "context": 0,
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = message
        self._interactions[token] = {"channel_id": channel_id, "answered": False, "original": None, "user": user_id}
        await self.dispatch("INTERACTION_CREATE", payload)
        return Sent(iid, token)

    # --- REST ---------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body: Any = None
        raw = await request.read()
        if raw:
            body = self._multipart_json(raw) if request.content_type == "multipart/form-data" else json.loads(raw)
        record = Recorded(request.method, path, dict(request.query), body, 0, dict(request.headers))
        status, answer, extra = self._fault(request.method, path, body)
        needs_auth = not path.startswith(("/interactions/", "/webhooks/"))
        if status is None and needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
            status, answer = 401, {"message": "401: Unauthorized", "code": 0}
        if status is None:
            status, answer = self._route(request.method, path, body, record)
        lost = self._lost_answer(request.method, path, status)
        if lost == "500":
            status, answer = 500, {"message": "500: Internal Server Error", "code": 0}
        record.status = status
        if lost == "drop":
            async with self._changed:
                self.requests.append(record)
                self._changed.notify_all()
            request.transport.close()  # the message is stored; the answer never comes
            return web.Response(status=200)
        async with self._changed:
            self.requests.append(record)
            self._changed.notify_all()
        if status == 204:
            return web.Response(status=204, headers=extra)
        return web.Response(status=status, body=json.dumps(answer).encode(), headers={"Content-Type": JSON, **extra})

    @staticmethod
    def _multipart_json(raw: bytes) -> Any:
        text = raw.decode("utf-8", "replace")
        m = re.search(r'name="payload_json"\r\n(?:[^\r\n]+\r\n)*\r\n(.*?)\r\n--', text, re.S)
        return json.loads(m.group(1)) if m else None

    def _lost_answer(self, method: str, path: str, status: int) -> str | None:
        if method != "POST" or status != 200 or not path.endswith("/messages"):
            return None
        for i, (pattern, how) in enumerate(self._after_store):
            if pattern.search(path):
                del self._after_store[i]
                return how
        return None

    def _fault(self, method: str, path: str, body: Any) -> tuple[int | None, Any, dict[str, str]]:
        for i, (m, pattern, status, answer, headers, when) in enumerate(self._faults):
            if m == method and pattern.search(path) and (when is None or when(body)):
                del self._faults[i]
                return status, answer, headers
        return None, None, {}

    def _route(self, method: str, path: str, body: Any, record: Recorded) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        problem = _invalid_message(body.get("data") if parts[-1:] == ["callback"] and body else body)
        if method in ("POST", "PATCH") and problem:
            return 400, {"message": "Invalid Form Body", "code": 50035, "errors": {"_problem": problem}}
        if method == "GET" and path == "/users/@me":
            return 200, self.users[BOT_ID]
        if method == "GET" and path == "/oauth2/applications/@me":
            return 200, self._application()
        if method == "GET" and path in ("/gateway", "/gateway/bot"):
            limits = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            return 200, {"url": f"ws://127.0.0.1:{self.port}/gateway", "shards": 1, "session_start_limit": limits}
        if parts[:1] == ["applications"] and parts[2:] == ["commands"]:
            if method == "PUT":
                self.commands = [
                    {**c, "id": self.snowflake(), "application_id": APP_ID, "version": self.snowflake()} for c in body
                ]
            return 200, self.commands
        if method == "POST" and parts[:1] == ["channels"] and parts[2:] == ["messages"]:
            if parts[1] == GONE_CHANNEL_ID:
                return 404, {"message": "Unknown Channel", "code": 10003}
            if self.bot_denied.get(parts[1], 0) & SEND_MESSAGES:
                return 403, {"message": "Missing Permissions", "code": 50013}
            nonce = (body or {}).get("nonce")
            if nonce is not None and (body or {}).get("enforce_nonce"):
                for m in self.channel_messages(parts[1]):
                    recent = time.time() - datetime.fromisoformat(m["timestamp"]).timestamp() < NONCE_SECONDS
                    if m.get("nonce") == str(nonce) and m["author"]["id"] == BOT_ID and recent:
                        record.message_id = m["id"]
                        return 200, m  # the message this nonce already made
            msg = self._store(parts[1], body, record)
            if nonce is not None:
                msg["nonce"] = str(nonce)
            return 200, msg
        if method == "GET" and parts[:1] == ["channels"] and parts[2:] == ["messages"]:
            if parts[1] == GONE_CHANNEL_ID:
                return 404, {"message": "Unknown Channel", "code": 10003}
            limit = int(record.query.get("limit") or 50)
            return 200, list(reversed(self.channel_messages(parts[1])))[:limit]
        if method == "POST" and path == "/users/@me/channels":
            uid = str(body["recipient_id"])
            cid = self._dms.setdefault(uid, self.snowflake())
            return 200, {"id": cid, "type": 1, "recipients": [self.users[uid]], "last_message_id": None}
        if method == "GET" and parts[:1] == ["users"] and len(parts) == 2 and parts[1] in self.users:
            return 200, self.users[parts[1]]
        if method == "POST" and parts[:1] == ["interactions"] and parts[3:] == ["callback"]:
            return self._callback(parts[1], parts[2], body, record)
        if parts[:1] == ["webhooks"] and len(parts) >= 3:
            return self._webhook(method, parts[2], parts[3:], body, record)
        return 404, {"message": "404: Not Found", "code": 0}

    def _application(self) -> dict[str, Any]:
        return {"id": APP_ID, "name": "quotebot", "description": "", "icon": None, "bot_public": True,
                "bot_require_code_grant": False, "owner": self.users[OWNER_ID], "verify_key": "0" * 64,
                "flags": 0, "summary": ""}

    def _message_base(self, mid: str, channel_id: str, content: str, *, author_id: str) -> dict[str, Any]:
        return {"id": mid, "channel_id": channel_id, "author": self.users[author_id], "content": content,
                "timestamp": timestamp(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
                "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": False, "type": 0,
                "flags": 0, "components": []}

    def _store(self, channel_id: str, body: dict[str, Any] | None, record: Recorded, *, flags: int = 0,
               mid: str | None = None) -> dict[str, Any]:
        body = body or {}
        mid = mid or self.snowflake()
        msg = self._message_base(mid, channel_id, body.get("content") or "", author_id=BOT_ID)
        msg.update(embeds=body.get("embeds") or [], components=body.get("components") or [],
                   flags=(body.get("flags") or 0) | flags, guild_id=GUILD_ID)
        if channel_id != CHANNEL_ID and channel_id != THREAD_ID:
            msg.pop("guild_id")
        self.messages[mid] = msg
        record.message_id = mid
        return msg

    def _callback(self, iid: str, token: str, body: dict[str, Any], record: Recorded) -> tuple[int, Any]:
        state = self._interactions.get(token)
        if state is None:
            return 404, {"message": "Unknown interaction", "code": 10062}
        if state["answered"]:
            return 400, {"message": "Interaction has already been acknowledged.", "code": 40060}
        state["answered"] = True
        kind, data = body["type"], body.get("data") or {}
        info: dict[str, Any] = {"id": iid, "type": 2}
        answer: dict[str, Any] = {"interaction": info}
        if kind in (4, 5):
            flags = (data.get("flags") or 0) | (LOADING if kind == 5 else 0)
            msg = self._store(state["channel_id"], data, record, flags=flags)
            msg["interaction_metadata"] = {"id": iid, "type": 2, "user": self.users[state["user"]],
                                           "authorizing_integration_owners": {}}
            state["original"] = msg["id"]
            info.update(response_message_id=msg["id"], response_message_loading=kind == 5,
                        response_message_ephemeral=bool(flags & EPHEMERAL))
            answer["resource"] = {"type": kind, "message": msg}
        return 200, answer

    def _webhook(self, method: str, token: str, rest: list[str], body: Any, record: Recorded) -> tuple[int, Any]:
        state = self._interactions.get(token)
        if state is None or not state["answered"]:
            return 404, {"message": "Unknown Webhook", "code": 10015}
        if not rest and method == "POST":
            original = state["original"]
            if original and self.messages[original]["flags"] & LOADING:
                # The first follow-up after a "thinking" defer replaces the loading message.
                flags = self.messages[original]["flags"] & EPHEMERAL
                return 200, self._store(state["channel_id"], body, record, flags=flags, mid=original)
            return 200, self._store(state["channel_id"], body, record)
        if rest[:1] == ["messages"] and len(rest) == 2:
            mid = state["original"] if rest[1] == "@original" else rest[1]
            if mid not in self.messages:
                return 404, {"message": "Unknown Message", "code": 10008}
            if method == "DELETE":
                del self.messages[mid]
                return 204, None
            if method == "PATCH":
                old = self.messages[mid]
                merged = {**{k: old[k] for k in ("content", "embeds", "components")}, **(body or {})}
                return 200, self._store(state["channel_id"], merged, record, flags=old["flags"] & EPHEMERAL, mid=mid)
            return 200, self.messages[mid]
        return 404, {"message": "404: Not Found", "code": 0}


def _invalid_message(body: Any) -> str | None:
    """Why Discord would refuse this message payload (size limits), or None."""
    if not isinstance(body, dict):
        return None
    if len(body.get("content") or "") > 2000:
        return "content longer than 2000"
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        return "more than 10 embeds"
    total = 0
    for e in embeds:
        title, desc = e.get("title") or "", e.get("description") or ""
        foot = (e.get("footer") or {}).get("text") or ""
        if len(title) > 256 or len(desc) > 4096 or len(foot) > 2048:
            return "embed title/description/footer too long"
        total += len(title) + len(desc) + len(foot)
    if total > 6000:
        return "embeds longer than 6000 in total"
    rows = body.get("components") or []
    if len(rows) > 5 or any(len(r.get("components", [])) > 5 for r in rows):
        return "too many components"
    for row in rows:
        for c in row.get("components", []):
            if len(c.get("custom_id") or "") > 100 or len(c.get("label") or "") > 80:
                return "component custom_id or label too long"
    return None
