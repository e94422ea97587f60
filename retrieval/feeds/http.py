"""Polite HTTP for feeds: conditional GETs, a User-Agent naming quotebot, timeouts, a size cap.

Redirects are followed; a chain made only of permanent ones (301, 308) is reported so the
caller can store the new address. Every failure is a ``FetchError`` whose message says what
happened in words a user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import aiohttp

PERMANENT = (301, 308)
MAX_REDIRECTS = 10


def user_agent() -> str:
    """``quotebot/VERSION (podcast transcript indexer)``."""
    try:
        version = metadata.version("quotebot")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"quotebot/{version} (podcast transcript indexer)"


class FetchError(Exception):
    """A download that failed; ``retry_after`` is the server's Retry-After in seconds, when it sent one."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response: ``body`` is None for 304 Not Modified."""

    status: int
    body: bytes | None
    url: str  # where the content came from, after redirects
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None  # set when every redirect on the way was permanent
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class HttpOptions:
    timeout_seconds: float = 30.0
    max_bytes: int = 16 * 1024 * 1024
    user_agent: str = ""


class Fetcher:
    """One aiohttp session for a round of fetches; use as ``async with Fetcher(options) as f``."""

    def __init__(self, options: HttpOptions) -> None:
        self.options = options
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        t = self.options.timeout_seconds
        timeout = aiohttp.ClientTimeout(total=t, connect=min(t, 15.0), sock_read=t)
        self._session = aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": self.options.user_agent or user_agent()},
            auto_decompress=True)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                  accept: str = "*/*") -> Fetched:
        """GET ``url`` (conditionally when ``etag``/``last_modified`` are given); raises FetchError."""
        assert self._session is not None, "use Fetcher as an async context manager"
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        cap = self.options.max_bytes
        try:
            async with self._session.get(url, headers=headers, allow_redirects=True,
                                         max_redirects=MAX_REDIRECTS) as resp:
                moved = None
                if resp.history and all(r.status in PERMANENT for r in resp.history):
                    moved = str(resp.url)
                if resp.status == 304:
                    return Fetched(304, None, str(resp.url), etag, last_modified, moved)
                if resp.status >= 400:
                    raise FetchError(f"HTTP {resp.status} {resp.reason or ''}".strip(), status=resp.status,
                                     retry_after=_retry_after(resp.headers.get("Retry-After")))
                if resp.status != 200:
                    raise FetchError(f"unexpected HTTP {resp.status} {resp.reason or ''}".strip(), status=resp.status)
                length = resp.content_length
                if length is not None and length > cap:
                    raise FetchError(f"{_size(length)} is more than the {_size(cap)} allowed "
                                     "(QUOTEBOT_FEED_MAX_MB)")
                chunks: list[bytes] = []
                got = 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    got += len(chunk)
                    if got > cap:
                        raise FetchError(f"more than the {_size(cap)} allowed (QUOTEBOT_FEED_MAX_MB)")
                    chunks.append(chunk)
                return Fetched(200, b"".join(chunks), str(resp.url), resp.headers.get("ETag"),
                               resp.headers.get("Last-Modified"), moved, resp.headers.get("Content-Type", ""))
        except FetchError:
            raise
        except aiohttp.TooManyRedirects:
            raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
        except TimeoutError:
            raise FetchError(f"no answer within {self.options.timeout_seconds:g} s (timed out)") from None
        except aiohttp.InvalidURL:
            raise FetchError("not a valid URL") from None
        except aiohttp.ClientConnectorError as e:
            raise FetchError(f"cannot connect to {e.host}:{e.port} ({e.os_error.strerror or e.os_error})") from None
        except aiohttp.ClientPayloadError as e:
            raise FetchError(f"the download broke off ({e})") from None
        except aiohttp.ClientError as e:
            raise FetchError(f"download failed ({type(e).__name__}: {e})") from None


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    return f"{n / 1024:.0f} kB" if n >= 1024 else f"{n} bytes"
