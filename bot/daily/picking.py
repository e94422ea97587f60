"""Which quote a channel gets on a given day, and the message that carries it."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import date
from typing import Protocol

from bot import payloads
from bot.core import card
from bot.reply import Action, ActionKind, Reply, ReplyKind
from bot.store import Store, Subscription
from retrieval.model import Hit

log = logging.getLogger(__name__)


class QuoteSource(Protocol):
    """What daily posts need from the searcher."""

    def quote_pool(self, topic: str | None) -> list[Hit]: ...


class QuotePicker:
    """Chooses a channel's quote for a day: least shown first (no repeats until the pool is used up), then a
    choice seeded by channel and date, so the same day in the same channel always gives the same quote."""

    def __init__(self, store: Store, source: QuoteSource) -> None:
        self.store = store
        self.source = source

    async def pool(self, topic: str | None, cache: dict[str | None, list[Hit]] | None = None) -> list[Hit]:
        if cache is not None and topic in cache:
            return cache[topic]
        hits = await asyncio.to_thread(self.source.quote_pool, topic)
        if cache is not None:
            cache[topic] = hits
        return hits

    async def pick(
        self, sub: Subscription, day: date, keep_key: str | None = None, cache: dict | None = None, *,
        counts: dict[str, int] | None = None,
    ) -> Hit | None:
        """The day's quote (``keep_key``'s passage when it is still in the pool). ``counts``: how often each
        passage was shown in the channel, when the caller fetched it already (``Store.key_counts_many``)."""
        hits = await self.pool(sub.topic, cache)
        if not hits and sub.topic:
            log.warning("daily: no quotes about %r for subscription %d; using the whole pool", sub.topic, sub.id)
            hits = await self.pool(None, cache)
        by_key = {h.passage.key: h for h in hits}
        if keep_key in by_key:
            return by_key[keep_key]
        if not by_key:
            return None
        shown = counts if counts is not None else await self.store.key_counts(sub.id)
        least = min(shown.get(k, 0) for k in by_key)
        fresh = sorted(k for k in by_key if shown.get(k, 0) == least)
        rng = random.Random(f"{sub.platform}:{sub.channel_id}:{day.isoformat()}")
        return by_key[rng.choice(fresh)]


def daily_reply(hit: Hit, topic: str | None, nonce: str) -> Reply:
    """The message posted for a day: one quote card with a Context button."""
    key = hit.passage.key
    ctx = payloads.context(key)
    actions = (Action(ActionKind.CONTEXT, "Context", ctx),) if payloads.fits(ctx) else ()
    title = f"Quote of the day · {topic}" if topic else "Quote of the day"
    return Reply(text=title, cards=(card(hit),), actions=actions, kind=ReplyKind.DAILY, extra={"nonce": nonce})
