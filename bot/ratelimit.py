"""Per-user token buckets."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``rate_per_minute`` tokens refill each minute, up to ``burst`` saved."""

    def __init__(self, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str) -> tuple[float, float]:
        now = self.clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        return min(self.burst, tokens + (now - then) * self.rate), now

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        if self.rate <= 0:
            return True
        tokens, now = self._level(key)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > 100_000:
            self._buckets.clear()
        return True

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` has a token again."""
        tokens, _ = self._level(key)
        return 0.0 if tokens >= 1 or self.rate <= 0 else (1 - tokens) / self.rate
