"""The refresh loop of a running bot: fetch feeds as they fall due, then let the index pick up new files."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from retrieval.feeds.manager import FeedManager, FeedReport

log = logging.getLogger(__name__)


async def refresh_forever(manager: FeedManager, on_change: Callable[[list[FeedReport]], Awaitable[None]],
                          poll_seconds: float = 60.0) -> None:
    """Refresh due feeds until cancelled; ``on_change`` gets the reports of a round that stored new files.

    The loop looks again at least every ``poll_seconds`` (feeds added meanwhile, or a changed
    ``corpus.toml``); an error in one round is logged and the next round runs as usual.
    """
    poll = max(0.5, min(poll_seconds, manager.options.interval))
    while True:
        try:
            reports = await manager.refresh()
            if any(r.changed for r in reports):
                await on_change(reports)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("feed refresh failed; trying again at the next round")
        try:
            nxt = await asyncio.to_thread(manager.next_due)
        except Exception:
            nxt = None
        delay = poll if nxt is None else min(poll, max(0.5, nxt - time.time()))
        await asyncio.sleep(delay)
