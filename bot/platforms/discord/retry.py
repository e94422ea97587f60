"""Answers that outlast a burst of Discord 429s: more rounds of discord.py's own retries, within a bounded time.

discord.py's HTTP clients (REST and the interaction webhooks) try a request 5 times, sleeping the
``retry_after`` of each 429 between tries, then raise ``HTTPException`` (status 429) and the answer is
lost. ``patiently`` runs such a send again while the total time stays within ``budget_s`` (and at most
``max_rounds`` rounds, 5 requests each), so rate limiting delays an answer instead of dropping it; past the
bound it raises ``StillRateLimited`` and the caller tells the asker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord

log = logging.getLogger(__name__)

BUDGET_S = 60.0  # as on Slack
MAX_ROUNDS = 6  # discord.py tries 5 times per round: 30 requests at most
DEFAULT_WAIT_S = 1.0
NOTICE = ("Discord is limiting how fast I can post right now, so your answer could not be sent. "
          "Please ask again in a minute.")

T = TypeVar("T")


class StillRateLimited(Exception):
    """Discord kept answering 429 for the whole retry budget."""


def rate_limited(error: BaseException) -> bool:
    """Whether ``error`` is Discord refusing a request for rate limiting (after discord.py's own retries)."""
    return isinstance(error, discord.RateLimited) or (
        isinstance(error, discord.HTTPException) and error.status == 429)


def wait_before_next(error: BaseException) -> float:
    """Seconds to wait before another round. discord.py already slept the ``retry_after`` of Discord's own
    429s (they carry a ``Via`` header); a 429 without one (e.g. from a proxy) was raised at once, so its
    ``Retry-After`` header is honoured here."""
    if isinstance(error, discord.RateLimited):
        return max(0.0, error.retry_after)
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    if headers.get("Via"):
        return 0.0
    try:
        return max(0.0, float(headers.get("Retry-After", DEFAULT_WAIT_S)))
    except (TypeError, ValueError):
        return DEFAULT_WAIT_S


async def patiently(send: Callable[[], Awaitable[T]], what: str, *, budget_s: float = BUDGET_S,
                    max_rounds: int = MAX_ROUNDS) -> T:
    """``await send()``, again after each rate-limited round while within ``budget_s`` seconds and
    ``max_rounds`` rounds; then ``StillRateLimited``. Other errors propagate at once."""
    started = time.monotonic()
    for attempt in range(1, max_rounds + 1):
        try:
            return await send()
        except (discord.HTTPException, discord.RateLimited) as e:
            if not rate_limited(e):
                raise
            wait = wait_before_next(e)
            elapsed = time.monotonic() - started
            if attempt == max_rounds or elapsed + wait > budget_s:
                log.warning("discord: %s still rate limited after %.1f s (%d rounds); giving up on it",
                            what, elapsed, attempt)
                raise StillRateLimited(what) from e
            log.info("discord: %s rate limited (round %d); trying again", what, attempt)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")
