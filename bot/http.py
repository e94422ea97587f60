"""One aiohttp server shared by every platform that takes HTTP requests (Slack's events, the web page).

Platforms add their routes while they are built (``routes(name)``); the app starts the server once,
after every adapter is built, and only when some platform asked for it. ``/healthz`` is always there:
200 once every platform on the server is ready, 503 while one is still starting (e.g. checking its token).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.platform import PlatformUnavailable

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"


class HttpServer:
    """The shared ``web.Application`` on ``host``:``port``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.app = web.Application()
        self.app.router.add_get(HEALTH_PATH, self._healthz)
        self._users: dict[str, dict[str, object]] = {}
        self._starting: set[str] = set()
        self._runner: web.AppRunner | None = None

    def routes(self, platform: str, *, ready: bool = True, **health: object) -> web.UrlDispatcher:
        """The router ``platform`` adds its routes to; asking for it means the server will run.

        ``health`` items are shown under the platform's name on ``/healthz``. With ``ready=False``
        the health check answers 503 until the platform calls ``ready(platform)``.
        """
        self._users[platform] = dict(health)
        if not ready:
            self._starting.add(platform)
        return self.app.router

    def ready(self, platform: str) -> None:
        """``platform`` has started and answers requests."""
        self._starting.discard(platform)

    @property
    def wanted(self) -> bool:
        """True when some platform asked for the server."""
        return bool(self._users)

    async def start(self) -> None:
        """Listen on ``host``:``port`` (no-op when nobody asked for the server, or already started)."""
        if not self.wanted or self._runner is not None:
            return
        runner = web.AppRunner(self.app, access_log_class=PathOnlyAccessLogger)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as e:  # port in use, an address not of this machine, a host name that does not resolve
            await runner.cleanup()
            raise PlatformUnavailable(f"HOST/PORT: cannot listen on {self.host}:{self.port} "
                                      f"({e.strerror or e})") from None
        self._runner = runner
        log.info("http: listening on http://%s:%s for %s", self.host, self.port, ", ".join(self._users))

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        if self._starting:
            return web.json_response({"ok": False, "starting": sorted(self._starting)}, status=503)
        return web.json_response({"ok": True, "platforms": self._users})


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without query strings (OAuth codes and states travel there)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, request.path, response.status, time * 1000)
