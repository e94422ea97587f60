"""The gate in front of Bolt for Slack's HTTP requests: hostile or broken requests are refused cheaply.

Every ``POST /slack/events`` is checked before Bolt sees it: the ``X-Slack-Request-Timestamp`` must be a
whole number of seconds within five minutes of now, the ``X-Slack-Signature`` a ``v0=`` HMAC-SHA256 of
``v0:{timestamp}:{body}`` with the signing secret, and the body UTF-8 form data (slash commands, buttons)
or a JSON object (events). A request that fails gets 401 (not signed by Slack) or 400 (signed but
malformed) and exactly one short log line, never a traceback.

A signed slash command or button press replayed within the five minutes (same ``trigger_id``; buttons
also the same ``action_ts``) is acknowledged and not answered again. Slack never retries those, so a
second copy is a replay. The record is kept per process (a replay sent to another instance behind a load
balancer is answered there once more); events are de-duplicated by ``event_id`` in the adapter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

log = logging.getLogger(__name__)

WINDOW_S = 300  # Slack's replay window for signed requests
MAX_REMEMBERED = 100_000
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """A request that must not reach Bolt: ``status`` and a short ``reason`` for the log line."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class RequestGuard:
    """Checks signed Slack requests and drops replays; ``wrap(handler)`` puts it in front of Bolt's handler."""

    def __init__(self, signing_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = signing_secret.encode()
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def wrap(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if request.method != "POST":
                return await handler(request)
            body = await request.read()
            if body.startswith(b"ssl_check=1"):  # Slack checking the certificate of a slash command URL
                return web.Response(status=200, text="")
            try:
                replay = self.check(dict(request.headers), body)
            except Refused as e:
                log.warning("slack: refused a request from %s: %s (%d)", request.remote or "?", e.reason, e.status)
                return web.Response(status=e.status, text=e.reason)
            if replay:
                log.warning("slack: dropped a replayed request (%s)", replay)
                return web.Response(status=200, text="")
            return await handler(request)

        return guarded

    def check(self, headers: dict[str, str], body: bytes) -> str | None:
        """Raise ``Refused`` for a request that is not a well-formed one signed by Slack; return a description of
        the request when it repeats one answered within the window (a replay), else None."""
        now = self._clock()
        stamp = _header(headers, "X-Slack-Request-Timestamp")
        signature = _header(headers, "X-Slack-Signature")
        if not stamp or not signature:
            raise Refused(401, "missing signature headers")
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise Refused(401, "malformed timestamp")
        if abs(now - int(stamp)) > WINDOW_S:
            raise Refused(401, "timestamp outside the 5-minute window")
        if not _SIGNATURE.fullmatch(signature):
            raise Refused(401, "malformed signature")
        expected = "v0=" + hmac.new(self._secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise Refused(401, "bad signature")
        key = replay_key(_content_type(headers), body)
        if key is None:
            return None
        return key if self._remember(key, now) else None

    def _remember(self, key: str, now: float) -> bool:
        """True when ``key`` was seen within the window (a replay); records it otherwise."""
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at <= 2 * WINDOW_S and len(self._seen) < MAX_REMEMBERED:
                break
            del self._seen[oldest]
        if key in self._seen:
            return True
        self._seen[key] = now
        return False


def replay_key(content_type: str, body: bytes) -> str | None:
    """What identifies one slash command or button press (``Refused(400)`` for a body that is not a well-formed
    Slack request); None for requests without one (events, URL verification)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None
    if content_type == "application/json":
        if not isinstance(_json(text), dict):
            raise Refused(400, "body is not a JSON object")
        return None
    if content_type not in ("application/x-www-form-urlencoded", ""):
        raise Refused(400, f"unexpected content type {content_type[:40]}")
    form = parse_qs(text, keep_blank_values=True)
    if "payload" in form:
        payload = _json(form["payload"][0])
        if not isinstance(payload, dict):
            raise Refused(400, "payload is not a JSON object")
        actions = payload.get("actions")
        if not isinstance(actions, list):
            return None  # not a button press (e.g. a view submission): Bolt decides
        trigger = payload.get("trigger_id")
        stamps = ",".join(str(a.get("action_ts", "")) for a in actions if isinstance(a, dict))
        return f"button trigger_id={trigger} action_ts={stamps}" if trigger else None
    if "command" in form:
        trigger = (form.get("trigger_id") or [""])[0]
        return f"slash command trigger_id={trigger}" if trigger else None
    raise Refused(400, "neither a slash command nor a payload")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise Refused(400, "body is not valid JSON") from None


def _header(headers: dict[str, str], name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v.strip()
    return ""


def _content_type(headers: dict[str, str]) -> str:
    return _header(headers, "Content-Type").split(";", 1)[0].strip().lower()
