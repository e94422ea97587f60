"""A small podcast host for feed tests: a real aiohttp server on 127.0.0.1 serving feeds and transcripts.

Every response carries an ETag (a hash of its body) and a Last-Modified; a conditional GET that
matches gets 304. Paths can be made to fail (any status), to hang (longer than the client's
timeout), or to redirect. ``hits`` counts requests per path, ``conditional`` those sent with
If-None-Match or If-Modified-Since, ``agents`` the User-Agents seen.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

DATA = Path(__file__).resolve().parents[1] / "data" / "feeds"
LAST_MODIFIED = "Wed, 03 Apr 2024 06:00:00 GMT"

TYPES = {".xml": "application/rss+xml; charset=utf-8", ".vtt": "text/vtt; charset=utf-8",
         ".srt": "application/srt; charset=utf-8", ".json": "application/json", ".html": "text/html; charset=utf-8"}

NEW_ITEM = """    <item>
      <title>Episode 4: Where Icebergs Are Born</title>
      <guid isPermaLink="false">harbour-ep-4</guid>
      <link>{base}/show/4</link>
      <pubDate>Wed, 17 Apr 2024 06:00:00 GMT</pubDate>
      <enclosure url="{base}/media/ep4.mp3" length="4194304" type="audio/mpeg"/>
      <podcast:transcript url="{base}/t/ep4.vtt" type="text/vtt"/>
    </item>
"""


@dataclass(slots=True)
class Route:
    body: bytes = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    hang: float = 0.0  # seconds to wait before answering
    location: str | None = None  # for redirects


class FeedSite:
    """Feeds and transcripts served from memory; ``start()`` returns the base URL."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.conditional: Counter[str] = Counter()
        self.agents: set[str] = set()
        self.base = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- content ---------------------------------------------------------------------

    def put(self, path: str, body: bytes | str, content_type: str | None = None, status: int = 200,
            hang: float = 0.0) -> None:
        data = body.encode() if isinstance(body, str) else body
        kind = content_type or TYPES.get(Path(path).suffix, "application/octet-stream")
        self.routes[path] = Route(data, kind, status, hang)

    def fail(self, path: str, status: int) -> None:
        self.routes[path] = Route(f"error {status}".encode(), "text/plain", status)

    def hang(self, path: str, seconds: float) -> None:
        self.routes[path].hang = seconds

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        self.routes[path] = Route(b"", "text/plain", status, location=to)

    def harbour(self, path: str = "/feed.xml", new_item: bool = False) -> None:
        """The Harbour Lights feed (three episodes with transcripts, a trailer without) and its transcripts."""
        xml = (DATA / "harbour.xml").read_text(encoding="utf-8")
        if new_item:
            xml = xml.replace("    <item>", NEW_ITEM + "    <item>", 1)
        self.put(path, xml.replace("{base}", self.base))
        for name in ("ep1.vtt", "ep1.srt", "ep2.json", "ep2.srt", "ep3.html", "ep4.vtt"):
            self.put(f"/t/{name}", (DATA / name).read_bytes())

    # --- serving -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        self.agents.add(request.headers.get("User-Agent", ""))
        route = self.routes.get(path)
        if route is None:
            return web.Response(status=404, text="not found")
        if route.hang:
            await asyncio.sleep(route.hang)
        if route.location is not None:
            return web.Response(status=route.status, headers={"Location": route.location})
        if route.status != 200:
            return web.Response(status=route.status, body=route.body, content_type="text/plain")
        etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
        if "If-None-Match" in request.headers or "If-Modified-Since" in request.headers:
            self.conditional[path] += 1
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
        return web.Response(status=200, body=route.body,
                            headers={"Content-Type": route.content_type, "ETag": etag,
                                     "Last-Modified": LAST_MODIFIED})


def write_local_corpus(folder: Path) -> Path:
    """A corpus folder holding one local note; followed feeds store their episodes beside it."""
    folder.mkdir()
    (folder / "notes.txt").write_text("A local note about kazoos and harmonicas in the marching band.\n")
    return folder
