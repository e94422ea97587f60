"""The web page: a search page, quote permalinks that unfurl in chat, and the sources list, served on the
shared HTTP server (``adapter``); HTML built from Replies (``pages``), players (``player``), permalink
lookups (``quotes``), the page's stylesheet, script and Content-Security-Policy (``assets``), and the
``QUOTEBOT_WEB*`` settings (``settings``)."""

from __future__ import annotations

from bot.platform import Adapter, PlatformContext, PlatformSpec
from bot.platforms.web.settings import WebSettings, read_web_settings


def build(ctx: PlatformContext[WebSettings]) -> Adapter:
    from bot.platforms.web.adapter import PLATFORM, WebAdapter

    router = ctx.http.routes(PLATFORM, pages="/")
    return WebAdapter(ctx.core, ctx.platform_settings, router)


SPEC = PlatformSpec(
    name="web",
    summary="a search page with quote permalinks, on HOST:PORT (beside Slack's HTTP endpoint)",
    read_settings=read_web_settings,
    build=build,
    needs="QUOTEBOT_WEB=true",
    managers="nobody (the web page takes no daily posts)",
    daily_posts=False,
)
