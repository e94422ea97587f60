"""Claim-then-post scheduling of daily quotes, and the ``ChannelGone`` contract for the platform posters.

Exactly-once, per subscription and local date:

* Claim: an instance inserts the (subscription, local date) row under a unique constraint before anything is sent;
  only the instance whose insert succeeds works on it, holding a lease (a token unique to this claim + expiry).
  Every later step is a compare-and-set on that token, so an instance that stalls past its lease cannot act twice.
* Send: the owner records ``sending`` (with the chosen quote) and only then calls the platform poster; afterwards
  ``sent``. A poster that raises has not delivered: the attempt is recorded and retried with backoff (same quote,
  same ``extra["nonce"]``) up to ``max_attempts`` and within the grace window, then ``failed``. ``ChannelGone``
  marks the day ``failed`` and disables the subscription.
* Killed after the claim and before ``sending`` (e.g. kill -9 while choosing the quote): the row stays ``claimed``;
  when its lease runs out any instance takes it over and posts it, so the day is posted exactly once.
* The one unavoidable window lies between recording ``sending`` and recording ``sent``: if the process dies inside
  the platform call, or the call outlives ``send_timeout``, nobody can know whether the message arrived (the
  database and the chat platform share no transaction). Such a row becomes ``unknown`` and is never resent.

So a day is never posted twice (given posters raise only when the message was not delivered), and it is posted
exactly once unless the process dies or hangs inside that one platform call, or every attempt fails within the
grace window. Adapters that support an idempotency key (Discord's message nonce) may use ``extra["nonce"]`` to make
even a retry after a lost response harmless.

The ``daily now`` command (``bot.daily.commands``) claims the day through the same claim rows and lease tokens
and answers with the quote itself, so a day posted by hand is not posted again by the scheduler.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.daily.picking import QuotePicker, QuoteSource, daily_reply
from bot.daily.schedule import Clock, due_at, local_day, utc_now
from bot.platform import ChannelGone
from bot.reply import Reply
from bot.store import CLAIMED, FAILED, SENDING, SENT, SKIPPED, UNKNOWN, Post, Store, Subscription
from config.settings import Settings
from retrieval.model import Hit

log = logging.getLogger(__name__)

Poster = Callable[[str, Reply], Awaitable[None]]


def _instance_id() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseTokens:
    """Owner tokens, unique per claim, so a lease taken over and given back is never mistaken for one's own."""

    def __init__(self, instance_id: str | None) -> None:
        self.instance_id = (instance_id or _instance_id())[:50]
        self._n = itertools.count(1)

    def new(self) -> str:
        return f"{self.instance_id}#{next(self._n)}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one tick did with one post: sent, retry, failed, gone, unknown, skipped or lost (someone else has it)."""

    post_id: int
    subscription_id: int
    local_date: date
    result: str


class DailyScheduler:
    """Posts due daily quotes through the platform posters, exactly once per subscription and local date."""

    def __init__(
        self,
        store: Store,
        searcher: QuoteSource,
        posters: Mapping[str, Poster],
        clock: Clock = utc_now,
        grace_minutes: int = 180,
        poll_seconds: float = 30.0,
        *,
        lease_seconds: float = 600.0,
        send_timeout: float = 180.0,
        max_attempts: int = 5,
        retry_base_seconds: float = 60.0,
        concurrency: int = 8,
        instance_id: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if send_timeout >= lease_seconds:
            raise ValueError("send_timeout must be shorter than lease_seconds")
        self.store = store
        self.picker = QuotePicker(store, searcher)
        self.posters = dict(posters)
        self.clock = clock
        self.grace = timedelta(minutes=grace_minutes)
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.send_timeout = send_timeout
        self.max_attempts = max_attempts
        self.retry_base = timedelta(seconds=retry_base_seconds)
        self.tokens = LeaseTokens(instance_id)
        self._sleep = sleep
        self._limit = asyncio.Semaphore(concurrency)

    @classmethod
    def from_settings(
        cls, store: Store, searcher: QuoteSource, posters: Mapping[str, Poster], settings: Settings
    ) -> DailyScheduler:
        return cls(store, searcher, posters, utc_now, settings.daily_grace_minutes, settings.daily_poll_seconds)

    async def run(self) -> None:
        """Tick every ``poll_seconds`` until cancelled; a failing tick is logged and the loop goes on."""
        log.info("daily scheduler %s running for %s", self.tokens.instance_id, ", ".join(sorted(self.posters)))
        while True:
            task = asyncio.ensure_future(self._safe_tick())
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                # Let sends already under way finish and be recorded before stopping.
                await asyncio.wait([task], timeout=self.send_timeout + 5)
                raise
            await self._sleep(self.poll_seconds)

    async def _safe_tick(self) -> None:
        try:
            await self.tick()
        except Exception:
            log.exception("daily: tick failed; trying again in %.0f s", self.poll_seconds)

    async def tick(self, now: datetime | None = None) -> list[Outcome]:
        """Claim and post everything due at ``now`` (default: the clock)."""
        fixed = now
        now = now or self.clock()
        # Leases and send times read the clock afresh, unless the caller fixed the tick's time.
        at: Clock = (lambda: fixed) if fixed is not None else self.clock
        await self._settle_interrupted(now)
        jobs = await self._claim_due(now) + await self._take_over(now)
        cache: dict[str | None, list[Hit]] = {}
        return list(await asyncio.gather(*(self._guarded(p, s, t, at, cache) for p, s, t in jobs)))

    async def _settle_interrupted(self, now: datetime) -> None:
        for post in await self.store.stale_sending(now):
            settled = await self.store.transition(
                post.id, now=now, from_status=[SENDING], lease_expired=True, status=UNKNOWN,
                last_error="the posting instance stopped during the send; not resent to avoid a duplicate",
            )
            if settled:
                log.warning("daily: post %d (subscription %d, %s) was interrupted during the send by %s; "
                            "not resending it", post.id, post.subscription_id, post.local_date, post.owner)

    async def _claim_due(self, now: datetime) -> list[tuple[Post, Subscription, str]]:
        subs = await self.store.enabled_subscriptions(self.posters)
        if not subs:
            return []
        existing = await self.store.existing_dates((now - self.grace - timedelta(days=2)).date())
        jobs = []
        for sub in subs:
            try:
                tz = ZoneInfo(sub.tz)
            except (ZoneInfoNotFoundError, ValueError):
                log.error("daily: subscription %d has an unknown time zone %r", sub.id, sub.tz)
                continue
            day = local_day(now - self.grace, tz) - timedelta(days=1)
            while day <= local_day(now, tz):
                due = due_at(day, sub.local_time, tz)
                if due <= now and due >= sub.active_since and (sub.id, day) not in existing:
                    job = await self._claim(sub, day, due, now)
                    if job:
                        jobs.append(job)
                day += timedelta(days=1)
        return jobs

    async def _claim(
        self, sub: Subscription, day: date, due: datetime, now: datetime
    ) -> tuple[Post, Subscription, str] | None:
        if now - due > self.grace:
            late = f"not posted: the bot was not running within {self._grace_text()} of {due:%H:%M} UTC"
            if await self.store.claim(sub.id, day, now=now, status=SKIPPED, last_error=late):
                log.warning("daily: skipped subscription %d (%s channel %s) for %s: %s", sub.id, sub.platform,
                            sub.channel_id, day, late)
            return None
        token = self.tokens.new()
        post = await self.store.claim(sub.id, day, now=now, owner=token, lease_until=now + self.lease)
        return (post, sub, token) if post else None

    async def _take_over(self, now: datetime) -> list[tuple[Post, Subscription, str]]:
        jobs = []
        for post, sub in await self.store.ready_claims(now, self.posters):
            token = self.tokens.new()
            taken = await self.store.transition(
                post.id, now=now, from_status=[CLAIMED], lease_expired=True, owner=token,
                lease_until=now + self.lease,
            )
            if taken:
                if post.owner:
                    log.warning("daily: taking over post %d (subscription %d, %s) left claimed by %s",
                                post.id, sub.id, post.local_date, post.owner)
                jobs.append((post, sub, token))
        return jobs

    async def _guarded(self, post: Post, sub: Subscription, token: str, at: Clock, cache: dict) -> Outcome:
        async with self._limit:
            try:
                result = await self._deliver(post, sub, token, at, cache)
            except Exception:
                # The row keeps its lease; when it runs out another tick settles it.
                log.exception("daily: post %d (subscription %d) hit an error", post.id, sub.id)
                result = "error"
        return Outcome(post.id, sub.id, post.local_date, result)

    async def _deliver(self, post: Post, sub: Subscription, token: str, at: Clock, cache: dict) -> str:
        now = at()
        due = due_at(post.local_date, sub.local_time, ZoneInfo(sub.tz))
        if now - due > self.grace:
            await self.store.transition(
                post.id, now=now, from_status=[CLAIMED], owner_is=token, status=SKIPPED, lease_until=None,
                last_error=f"not posted: more than {self._grace_text()} late",
            )
            log.warning("daily: skipped post %d (subscription %d, %s): past the grace window", post.id, sub.id,
                        post.local_date)
            return "skipped"
        hit = await self.picker.pick(sub, post.local_date, post.passage_key, cache)
        if hit is None:
            return await self._failed_attempt(post, sub, token, now, due, "no quotes available", from_status=CLAIMED)
        now = at()
        started = await self.store.transition(
            post.id, now=now, from_status=[CLAIMED], owner_is=token, status=SENDING, passage_key=hit.passage.key,
            lease_until=now + self.lease, add_attempt=True,
        )
        if not started:
            return "lost"
        reply = daily_reply(hit, sub.topic, nonce=f"qd{post.id}")
        deadline = asyncio.timeout(self.send_timeout)
        try:
            async with deadline:
                await self.posters[sub.platform](sub.channel_id, reply)
        except ChannelGone as exc:
            return await self._channel_gone(post, sub, token, at(), str(exc))
        except TimeoutError as exc:
            if not deadline.expired():  # the adapter's own timeout: it reports the message as not sent
                return await self._failed_attempt(post, sub, token, at(), due, f"TimeoutError: {exc}",
                                                  from_status=SENDING, attempts=post.attempts + 1)
            await self.store.transition(
                post.id, now=at(), from_status=[SENDING], owner_is=token, status=UNKNOWN,
                last_error=f"the send did not finish within {self.send_timeout:.0f} s; not resent",
            )
            log.error("daily: post %d (subscription %d) timed out; it may or may not have arrived, not resending",
                      post.id, sub.id)
            return "unknown"
        except Exception as exc:
            return await self._failed_attempt(post, sub, token, at(), due, f"{type(exc).__name__}: {exc}",
                                              from_status=SENDING, attempts=post.attempts + 1)
        now = at()
        await self.store.transition(
            post.id, now=now, from_status=[SENDING, UNKNOWN], owner_is=token, status=SENT, lease_until=None,
            sent_at=now, last_error=None,
        )
        log.info("daily: posted to %s channel %s for %s (post %d)", sub.platform, sub.channel_id, post.local_date,
                 post.id)
        return "sent"

    async def _failed_attempt(
        self, post: Post, sub: Subscription, token: str, now: datetime, due: datetime, error: str, *,
        from_status: str, attempts: int | None = None,
    ) -> str:
        attempts = post.attempts + 1 if attempts is None else attempts
        retry_at = now + self.retry_base * 2 ** (attempts - 1)
        if attempts >= self.max_attempts or retry_at - due > self.grace:
            await self.store.transition(post.id, now=now, from_status=[from_status], owner_is=token, status=FAILED,
                                        lease_until=None, last_error=error,
                                        add_attempt=from_status == CLAIMED)
            log.error("daily: giving up on post %d (subscription %d, %s) after %d attempts: %s", post.id, sub.id,
                      post.local_date, attempts, error)
            return "failed"
        await self.store.transition(post.id, now=now, from_status=[from_status], owner_is=token, status=CLAIMED,
                                    owner=None, lease_until=retry_at, last_error=error,
                                    add_attempt=from_status == CLAIMED)
        log.warning("daily: post %d (subscription %d) attempt %d failed (%s); retrying at %s", post.id, sub.id,
                    attempts, error, retry_at.isoformat(timespec="seconds"))
        return "retry"

    async def _channel_gone(self, post: Post, sub: Subscription, token: str, now: datetime, why: str) -> str:
        reason = f"channel gone: {why or 'the channel was deleted or the bot lost access'}"
        await self.store.transition(post.id, now=now, from_status=[SENDING, UNKNOWN], owner_is=token, status=FAILED,
                                    lease_until=None, last_error=reason)
        await self.store.disable_subscription(sub.id, reason, now)
        log.warning("daily: disabled subscription %d (%s channel %s): %s", sub.id, sub.platform, sub.channel_id,
                    reason)
        return "gone"

    def _grace_text(self) -> str:
        return f"{self.grace.total_seconds() / 60:.0f} minutes"
