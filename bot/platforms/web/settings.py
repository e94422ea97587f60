"""The web page's own settings (``QUOTEBOT_WEB*``, ``QUOTEBOT_PUBLIC_URL``), read through ``EnvReader``."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import EnvReader


@dataclass(frozen=True)
class WebSettings:
    """``enabled``: serve the search page with the other platforms on ``HOST``:``PORT``.

    ``public_url`` is the address people reach the page at (``https://quotes.example.com``, no
    trailing slash); permalinks and OpenGraph ``og:url`` use it, else the request's own host.
    ``trust_proxy``: take the client address from the last ``X-Forwarded-For`` hop (behind a
    reverse proxy), for the per-client rate limit.
    """

    enabled: bool = False
    public_url: str | None = None
    trust_proxy: bool = False


def read_web_settings(r: EnvReader) -> WebSettings:
    """``WebSettings`` from the environment; ``SettingsError`` names a malformed variable."""
    public = r.url("QUOTEBOT_PUBLIC_URL", None, ("http", "https"))
    return WebSettings(
        enabled=r.flag("QUOTEBOT_WEB", False),
        public_url=public.rstrip("/") if public else None,
        trust_proxy=r.flag("QUOTEBOT_WEB_TRUST_PROXY", False),
    )
