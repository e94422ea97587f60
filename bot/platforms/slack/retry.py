"""Retrying Slack's HTTP 429 answers as Slack asks: wait ``Retry-After`` seconds, within a bounded total time.

slack_sdk's built-in handler gives up after a fixed number of tries however short the waits; an answer
then vanished after three 429s. This one keeps trying while the waits Slack asks for fit in
``budget_s`` seconds in all (and at most ``max_tries`` times), so a burst of rate limiting delays an
answer instead of dropping it; past the budget the caller tells the user.
"""

from __future__ import annotations

import asyncio
import logging
import time

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

log = logging.getLogger(__name__)

BUDGET_S = 60.0
MAX_TRIES = 30
DEFAULT_WAIT_S = 1.0


class PatientRateLimitHandler(AsyncRetryHandler):
    """Retries 429s after the server's ``Retry-After`` while the total wait stays within ``budget_s``."""

    def __init__(self, budget_s: float = BUDGET_S, max_tries: int = MAX_TRIES) -> None:
        super().__init__(max_retry_count=max_tries)
        self.budget_s = budget_s

    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = state.custom_values if state.custom_values is not None else {}
        state.custom_values = values
        started = values.setdefault("rate_limited_since", time.monotonic())
        wait = retry_after(response)
        if time.monotonic() - started + wait > self.budget_s:
            log.warning("slack: still rate limited after %.0f s; giving up on this message", time.monotonic() - started)
            return False
        values["wait"] = wait
        return True

    async def prepare_for_next_attempt_async(self, *, state: RetryState, request: HttpRequest,
                                             response: HttpResponse | None = None,
                                             error: Exception | None = None) -> None:
        state.next_attempt_requested = True
        await asyncio.sleep((state.custom_values or {}).get("wait", DEFAULT_WAIT_S))
        state.increment_current_attempt()


def retry_after(response: HttpResponse) -> float:
    """Seconds the server asked to wait (``Retry-After``), 1 when it did not say or said something unreadable."""
    for name, values in (response.headers or {}).items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, (list, tuple)) and values else values
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return DEFAULT_WAIT_S
    return DEFAULT_WAIT_S
