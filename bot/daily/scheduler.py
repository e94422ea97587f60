"""Claim-then-post scheduling of daily quotes: each (subscription, local date) is posted exactly once.

* **Claim.** A tick inserts the (subscription, local date) rows of everything due under a unique constraint, many
  rows per statement (``Store.claim_many``); only the instance whose insert succeeded works on a row, holding a
  lease (a token unique to the claim + an expiry). Every later step is a compare-and-set on that token, so an
  instance that stalls past its lease cannot act twice.
* **Lease.** Leases are short (``lease_seconds``, 30 s by default) and renewed by a heartbeat while the instance
  holds them, so when an instance dies its rows are free again within one lease and any other instance carries
  on: a crashed instance's posts still go out within about a minute of their time.
* **Send.** The owner records ``sending`` (with the chosen quote) and calls ``target.post(channel, reply,
  delivery_key=key)``; the key (``delivery_key``) is the same for every attempt at the row, and the platform
  carries it with the message (Discord's nonce, Slack's message metadata). A send is bounded by ``send_timeout``
  (shorter than the lease, so the row cannot be taken over while its send may still be under way). Afterwards
  ``sent`` (written in batches; should that write be lost, the row is still ``sending`` and its look-up finds the
  message). ``ChannelGone`` marks the day ``failed`` and turns the subscription off; any other error is a failed
  attempt, retried with backoff (same quote, same key) up to ``max_attempts`` and within the grace window.
* **Unknown delivery is resolved, not guessed.** When the outcome is unknown (``DeliveryUnknown``: timeout, 5xx,
  connection lost; our own deadline; or the owner died inside the send, found as a ``sending`` row whose lease ran
  out), the scheduler asks ``target.find_delivery(channel, key)``: True: it arrived (``sent``); False: known not
  to have arrived, so it is sent again; None: the row waits as ``checking`` and is asked again on later ticks,
  for ``check_minutes`` at most, then recorded ``unknown`` and never resent.
* **Graceful stop.** ``stop()`` (SIGTERM/SIGINT) stops claiming, hands back the rows not yet started (another
  instance may post them at once), lets the sends under way finish for up to ``stop_grace`` seconds and records
  their real outcome, then ``run()`` returns.
* **Scale.** Sends run concurrently within each platform's limits (``SendLimits``: a bounded number at once, one
  at a time per channel with a minimum interval), and the per-post look-ups are fetched for the whole tick at once.

The ``daily now`` command (``bot.daily.commands``) claims the day through the same rows and tokens and answers
with the quote itself, so a day posted by hand is not posted again by the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.daily.picking import QuotePicker, QuoteSource, daily_reply
from bot.daily.schedule import Clock, due_at, local_day, utc_now
from bot.platform import ChannelGone, DeliveryUnknown
from bot.reply import Reply
from bot.store import (
    CHECKING,
    CLAIMED,
    FAILED,
    SENDING,
    SENT,
    SKIPPED,
    UNKNOWN,
    Claim,
    Post,
    Store,
    Subscription,
)
from config.settings import Settings
from retrieval.model import Hit

log = logging.getLogger(__name__)

Poster = Callable[[str, Reply], Awaitable[None]]

__all__ = ["ChannelGone", "DailyScheduler", "DailyTarget", "DeliveryUnknown", "LeaseTokens", "Outcome", "Poster",
           "SendLimits", "TickStats", "as_target", "delivery_key"]


@runtime_checkable
class DailyTarget(Protocol):
    """The part of ``bot.platform.ChannelPoster`` the scheduler itself calls."""

    async def post(self, channel_id: str, reply: Reply, *, delivery_key: str | None = None) -> None: ...

    async def find_delivery(self, channel_id: str, delivery_key: str) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class SendLimits:
    """How fast daily posts may go out on one platform: ``concurrency`` sends at once, and at least
    ``channel_interval`` seconds between two posts to the same channel (one at a time per channel).
    An adapter may declare its own as a ``daily_limits`` attribute."""

    concurrency: int = 8
    channel_interval: float = 1.0


class _FunctionTarget:
    """A bare posting function (``post(channel, reply)``) as a target that cannot look deliveries up."""

    def __init__(self, fn: Callable[..., Awaitable[None]]) -> None:
        self.fn = fn
        try:
            self.takes_key = "delivery_key" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            self.takes_key = False
        self.daily_limits = getattr(getattr(fn, "__self__", None), "daily_limits", None)

    async def post(self, channel_id: str, reply: Reply, *, delivery_key: str | None = None) -> None:
        if self.takes_key:
            await self.fn(channel_id, reply, delivery_key=delivery_key)
        else:
            await self.fn(channel_id, reply)

    async def find_delivery(self, channel_id: str, delivery_key: str) -> bool | None:
        return None


def as_target(target: Any) -> DailyTarget:
    """An adapter with ``post`` and ``find_delivery`` as it is; otherwise its ``post`` (or the function itself)
    wrapped as a target whose deliveries cannot be looked up."""
    if callable(getattr(target, "post", None)) and callable(getattr(target, "find_delivery", None)):
        return target
    fn = getattr(target, "post", target)
    if not callable(fn):
        raise TypeError(f"not a daily post target: {target!r}")
    return _FunctionTarget(fn)


def delivery_key(post: Post) -> str:
    """The idempotency key sent with every attempt at ``post`` (at most 25 characters, as Discord's nonce)."""
    return f"qd{post.id}-{int(post.claimed_at.timestamp()):x}"


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
    """What one tick did with one post: sent, retry, failed, gone, checking, unknown, skipped, released (handed
    back at a stop), lost (someone else has it) or error."""

    post_id: int
    subscription_id: int
    local_date: date
    result: str


@dataclass(frozen=True, slots=True)
class TickStats:
    """What the last tick did: rows claimed (new and taken over) and looked into, seconds spent claiming (from
    the start of the tick until every row was held) and in all."""

    claimed: int
    resolved: int
    claim_seconds: float
    total_seconds: float


@dataclass(slots=True)
class _Job:
    post: Post
    sub: Subscription
    token: str
    resolve: bool = False  # the last send's outcome is unknown: ask the platform before anything else


@dataclass(slots=True)
class _Tick:
    at: Clock
    pools: dict[str | None, list[Hit]] = field(default_factory=dict)
    counts: dict[int, dict[str, int]] = field(default_factory=dict)
    # Posts delivered but not yet recorded 'sent' (written in batches; until then their lease is renewed).
    sent: list[tuple[_Job, datetime]] = field(default_factory=list)
    sent_since: float = 0.0
    queued: set[str] = field(default_factory=set)  # tokens of the posts in ``sent``


SENT_BATCH = 200  # delivered posts recorded 'sent' per statement batch
SENT_WAIT = 0.5  # seconds a delivered post may wait for its batch


class _Lane:
    """One platform's send limits: a bounded number of sends at once, one at a time per channel, spaced."""

    def __init__(self, limits: SendLimits) -> None:
        self.limits = limits
        self.slots = asyncio.Semaphore(max(1, limits.concurrency))
        self.locks: dict[str, asyncio.Lock] = {}
        self.last: dict[str, float] = {}

    @contextlib.asynccontextmanager
    async def slot(self, channel: str) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        lock = self.locks.setdefault(channel, asyncio.Lock())
        try:
            async with lock:
                wait = self.last.get(channel, float("-inf")) + self.limits.channel_interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                async with self.slots:
                    try:
                        yield
                    finally:
                        self.last[channel] = loop.time()
        finally:
            if not lock.locked() and self.locks.get(channel) is lock:
                del self.locks[channel]
                if self.last.get(channel, 0) + self.limits.channel_interval < loop.time():
                    self.last.pop(channel, None)


class DailyScheduler:
    """Posts due daily quotes through the platform targets, exactly once per subscription and local date."""

    def __init__(
        self,
        store: Store,
        searcher: QuoteSource,
        targets: Mapping[str, Any],
        clock: Clock = utc_now,
        grace_minutes: int = 180,
        poll_seconds: float = 30.0,
        *,
        lease_seconds: float = 30.0,
        send_timeout: float | None = None,
        max_attempts: int = 5,
        retry_base_seconds: float = 60.0,
        check_minutes: float = 15.0,
        check_every_seconds: float | None = None,
        stop_grace_seconds: float = 20.0,
        limits: Mapping[str, SendLimits] | None = None,
        instance_id: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        send_timeout = lease_seconds * 2 / 3 if send_timeout is None else send_timeout
        if send_timeout >= lease_seconds:
            raise ValueError("send_timeout must be shorter than lease_seconds")
        self.store = store
        self.picker = QuotePicker(store, searcher)
        self.targets: dict[str, DailyTarget] = {p: as_target(t) for p, t in targets.items()}
        self.clock = clock
        self.grace = timedelta(minutes=grace_minutes)
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.send_timeout = send_timeout
        self.max_attempts = max_attempts
        self.retry_base = timedelta(seconds=retry_base_seconds)
        self.check_window = timedelta(minutes=check_minutes)
        self.check_every = timedelta(seconds=check_every_seconds if check_every_seconds is not None
                                     else max(poll_seconds, 5.0))
        self.stop_grace = stop_grace_seconds
        self.tokens = LeaseTokens(instance_id)
        self._sleep = sleep
        limits = dict(limits or {})
        self._lanes = {
            p: _Lane(limits.get(p) or getattr(t, "daily_limits", None) or SendLimits())
            for p, t in self.targets.items()
        }
        self._held: set[str] = set()  # tokens of the rows this instance holds right now
        self.last_tick: TickStats | None = None
        self._stopping = asyncio.Event()

    @classmethod
    def from_settings(
        cls, store: Store, searcher: QuoteSource, targets: Mapping[str, Any], settings: Settings
    ) -> DailyScheduler:
        return cls(store, searcher, targets, utc_now, settings.daily_grace_minutes, settings.daily_poll_seconds,
                   lease_seconds=settings.daily_lease_seconds, stop_grace_seconds=settings.stop_grace_seconds)

    # --- the loop -----------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Tick every ``poll_seconds`` until ``stop()`` (or cancellation, which stops the same graceful way);
        a failing tick is logged and the loop goes on."""
        log.info("daily scheduler %s running for %s (lease %.0f s)", self.tokens.instance_id,
                 ", ".join(sorted(self.targets)), self.lease.total_seconds())
        heartbeat = asyncio.create_task(self._heartbeat(), name="daily-heartbeat")
        try:
            while not self.stopping:
                tick = asyncio.ensure_future(self._safe_tick())
                try:
                    await self._until_stopped(tick)
                except asyncio.CancelledError:
                    self._stopping.set()
                    await self._drain(tick)
                    raise
                if not tick.done():
                    await self._drain(tick)
                    break
                pause = asyncio.ensure_future(self._sleep(self.poll_seconds))
                try:
                    await self._until_stopped(pause)
                finally:
                    pause.cancel()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        log.info("daily scheduler %s stopped", self.tokens.instance_id)

    def stop(self) -> None:
        """Stop claiming; ``run()`` hands back what it has not started, waits (up to ``stop_grace`` seconds) for
        the sends under way, records their outcome and returns."""
        if not self.stopping:
            log.info("daily: stopping; %d posts held", len(self._held))
        self._stopping.set()

    async def _until_stopped(self, task: asyncio.Future[Any]) -> None:
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()

    async def _drain(self, tick: asyncio.Future[Any]) -> None:
        _, pending = await asyncio.wait({tick}, timeout=self.stop_grace)
        if pending:
            log.warning("daily: %d sends still under way after %.0f s; leaving them to their leases",
                        len(self._held), self.stop_grace)
            tick.cancel()
            await asyncio.gather(tick, return_exceptions=True)

    async def _heartbeat(self) -> None:
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                await self.renew()
            except Exception:
                log.exception("daily: renewing %d leases failed", len(self._held))

    async def renew(self) -> int:
        """Extend the lease of every row this instance holds (the heartbeat, every third of a lease)."""
        if not self._held:
            return 0
        now = self.clock()
        return await self.store.renew_leases(set(self._held), now + self.lease, now=now)

    async def _safe_tick(self) -> None:
        try:
            await self.tick()
        except Exception:
            log.exception("daily: tick failed; trying again in %.0f s", self.poll_seconds)

    # --- one tick -------------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> list[Outcome]:
        """Claim and post everything due at ``now`` (default: the clock); resolve sends of unknown outcome."""
        if self.stopping:
            return []
        fixed = now
        now = now or self.clock()
        # Leases and send times read the clock afresh, unless the caller fixed the tick's time.
        at: Clock = (lambda: fixed) if fixed is not None else self.clock
        loop = asyncio.get_running_loop()
        started = loop.time()
        jobs = await self._unsure_rows(now)
        jobs += await self._claim_due(now)
        jobs += await self._take_over(now)
        if not jobs:
            return []
        self._held.update(j.token for j in jobs)
        claimed = loop.time()
        ctx = _Tick(at, counts=await self.store.key_counts_many({j.sub.id for j in jobs}))
        outcomes = list(await asyncio.gather(*(self._run(job, ctx) for job in jobs)))
        await self._record_sent(ctx)
        resolved = sum(1 for j in jobs if j.resolve)
        self.last_tick = TickStats(len(jobs) - resolved, resolved, claimed - started, loop.time() - started)
        log.info("daily: tick took %d posts (%d to look up) in %.2f s, done in %.2f s", len(jobs) - resolved,
                 resolved, self.last_tick.claim_seconds, self.last_tick.total_seconds)
        return outcomes

    async def _unsure_rows(self, now: datetime) -> list[_Job]:
        """Rows whose send's outcome is unknown and which nobody holds: a ``sending`` row whose owner stopped
        inside the send, and ``checking`` rows due to be asked about again."""
        jobs = []
        for post, sub in await self.store.expired(now, self.targets, [SENDING, CHECKING], enabled_only=False):
            token = self.tokens.new()
            since = post.unknown_since or now
            taken = await self.store.transition(
                post.id, now=now, from_status=[post.status], lease_expired=True, status=CHECKING, owner=token,
                lease_until=now + self.lease, unknown_since=since,
            )
            if taken:
                if post.status == SENDING:
                    log.warning("daily: post %d (subscription %d, %s) was left inside its send by %s; asking %s "
                                "whether it arrived", post.id, sub.id, post.local_date, post.owner, sub.platform)
                jobs.append(_Job(_with(post, owner=token, status=CHECKING, unknown_since=since), sub, token, True))
        return jobs

    async def _claim_due(self, now: datetime) -> list[_Job]:
        subs = await self.store.enabled_subscriptions(self.targets)
        if not subs:
            return []
        existing = await self.store.existing_dates((now - self.grace - timedelta(days=2)).date())
        claims: list[Claim] = []
        late: list[Claim] = []
        by_id = {}
        for sub in subs:
            try:
                tz = ZoneInfo(sub.tz)
            except (ZoneInfoNotFoundError, ValueError):
                log.error("daily: subscription %d has an unknown time zone %r", sub.id, sub.tz)
                continue
            by_id[sub.id] = sub
            day = local_day(now - self.grace, tz) - timedelta(days=1)
            last = local_day(now, tz)
            while day <= last:
                if (sub.id, day) not in existing:
                    due = due_at(day, sub.local_time, tz)
                    if sub.active_since <= due <= now:
                        if now - due > self.grace:
                            why = f"not posted: the bot was not running within {self._grace_text()} of {due:%H:%M} UTC"
                            late.append(Claim(sub.id, day, status=SKIPPED, last_error=why))
                        else:
                            claims.append(Claim(sub.id, day, owner=self.tokens.new(), lease_until=now + self.lease))
                day += timedelta(days=1)
        for post in await self.store.claim_many(late, now=now):
            sub = by_id[post.subscription_id]
            log.warning("daily: skipped subscription %d (%s channel %s) for %s: %s", sub.id, sub.platform,
                        sub.channel_id, post.local_date, post.last_error)
        return [_Job(p, by_id[p.subscription_id], p.owner) for p in await self.store.claim_many(claims, now=now)]

    async def _take_over(self, now: datetime) -> list[_Job]:
        jobs = []
        for post, sub in await self.store.ready_claims(now, self.targets):
            token = self.tokens.new()
            taken = await self.store.transition(
                post.id, now=now, from_status=[CLAIMED], lease_expired=True, owner=token,
                lease_until=now + self.lease,
            )
            if taken:
                if post.owner:
                    log.warning("daily: taking over post %d (subscription %d, %s) left claimed by %s",
                                post.id, sub.id, post.local_date, post.owner)
                jobs.append(_Job(_with(post, owner=token), sub, token))
        return jobs

    async def _run(self, job: _Job, ctx: _Tick) -> Outcome:
        post, sub = job.post, job.sub
        try:
            async with self._lanes[sub.platform].slot(sub.channel_id):
                if self.stopping:
                    result = await self._release(job, ctx.at())
                elif job.resolve:
                    result = await self._resolve(job, ctx)
                else:
                    result = await self._deliver(job, ctx)
        except Exception:
            # The row keeps its lease; when it runs out another tick settles it.
            log.exception("daily: post %d (subscription %d) hit an error", post.id, sub.id)
            result = "error"
        finally:
            if job.token not in ctx.queued:
                self._held.discard(job.token)
        if ctx.sent and (len(ctx.sent) >= SENT_BATCH or asyncio.get_running_loop().time() - ctx.sent_since > SENT_WAIT):
            await self._record_sent(ctx)
        return Outcome(post.id, sub.id, post.local_date, result)

    async def _record_sent(self, ctx: _Tick) -> None:
        """Write the batch of delivered posts as 'sent'. Should it fail, the rows stay 'sending' and, once their
        lease runs out, are settled by asking the platform (which finds them)."""
        batch, ctx.sent = ctx.sent, []
        if not batch:
            return
        try:
            await self.store.mark_sent([(job.post.id, job.token, at) for job, at in batch])
        except Exception:
            log.exception("daily: recording %d delivered posts failed; they will be looked up", len(batch))
        finally:
            for job, _ in batch:
                ctx.queued.discard(job.token)
                self._held.discard(job.token)

    async def _release(self, job: _Job, now: datetime) -> str:
        """Hand a row not yet started back at a stop, free for any instance at once."""
        await self.store.transition(job.post.id, now=now, from_status=[CLAIMED, CHECKING], owner_is=job.token,
                                    owner=None, lease_until=now)
        return "released"

    # --- sending --------------------------------------------------------------------------------

    async def _deliver(self, job: _Job, ctx: _Tick) -> str:
        post, sub, token = job.post, job.sub, job.token
        now = ctx.at()
        due = due_at(post.local_date, sub.local_time, ZoneInfo(sub.tz))
        if now - due > self.grace:
            await self.store.transition(
                post.id, now=now, from_status=[CLAIMED], owner_is=token, status=SKIPPED, lease_until=None,
                last_error=f"not posted: more than {self._grace_text()} late",
            )
            log.warning("daily: skipped post %d (subscription %d, %s): past the grace window", post.id, sub.id,
                        post.local_date)
            return "skipped"
        hit = await self.picker.pick(sub, post.local_date, post.passage_key, ctx.pools, counts=ctx.counts.get(sub.id))
        if hit is None:
            return await self._failed_attempt(job, now, due, "no quotes available", from_status=CLAIMED)
        shown = ctx.counts.setdefault(sub.id, {})  # a second day posted in this tick sees this one
        shown[hit.passage.key] = shown.get(hit.passage.key, 0) + 1
        now = ctx.at()
        started = await self.store.transition(
            post.id, now=now, from_status=[CLAIMED], owner_is=token, status=SENDING, passage_key=hit.passage.key,
            lease_until=now + self.lease, add_attempt=True,
        )
        if not started:
            return "lost"
        attempts = post.attempts + 1
        key = delivery_key(post)
        target = self.targets[sub.platform]
        deadline = asyncio.timeout(self.send_timeout)
        try:
            async with deadline:
                await target.post(sub.channel_id, daily_reply(hit, sub.topic, nonce=key), delivery_key=key)
        except ChannelGone as exc:
            return await self._channel_gone(job, ctx.at(), str(exc))
        except DeliveryUnknown as exc:
            return await self._unsure(job, ctx, due, attempts, f"delivery unknown: {exc}")
        except TimeoutError as exc:
            if deadline.expired():
                return await self._unsure(job, ctx, due, attempts,
                                          f"the send did not finish within {self.send_timeout:.0f} s")
            # The adapter's own timeout: it reports the message as not sent.
            return await self._failed_attempt(job, ctx.at(), due, f"TimeoutError: {exc}", from_status=SENDING,
                                              attempts=attempts)
        except Exception as exc:
            return await self._failed_attempt(job, ctx.at(), due, f"{type(exc).__name__}: {exc}",
                                              from_status=SENDING, attempts=attempts)
        if not ctx.sent:
            ctx.sent_since = asyncio.get_running_loop().time()
        ctx.sent.append((job, ctx.at()))
        ctx.queued.add(job.token)
        log.info("daily: posted to %s channel %s for %s (post %d)", sub.platform, sub.channel_id, post.local_date,
                 post.id)
        return "sent"

    async def _sent(self, job: _Job, now: datetime, from_status: list[str], how: str = "posted") -> str:
        post, sub = job.post, job.sub
        await self.store.transition(
            post.id, now=now, from_status=from_status, owner_is=job.token, status=SENT, lease_until=None,
            sent_at=now, last_error=None,
        )
        log.info("daily: %s to %s channel %s for %s (post %d)", how, sub.platform, sub.channel_id, post.local_date,
                 post.id)
        return "sent"

    async def _unsure(self, job: _Job, ctx: _Tick, due: datetime, attempts: int, why: str) -> str:
        """The send's outcome is unknown: ask the platform; resend only what is known not to have arrived."""
        post, sub = job.post, job.sub
        log.warning("daily: post %d (subscription %d): %s; asking %s whether it arrived", post.id, sub.id, why,
                    sub.platform)
        found = await self._ask(job)
        now = ctx.at()
        if found is True:
            return await self._sent(job, now, [SENDING], how="found the post already")
        if found is False:
            return await self._failed_attempt(job, now, due, f"{why}; it did not arrive", from_status=SENDING,
                                              attempts=attempts)
        return await self._keep_checking(job, now, now, [SENDING], why)

    async def _resolve(self, job: _Job, ctx: _Tick) -> str:
        """A row of unknown outcome taken over (``checking``): ask again; send it if it is known not to have
        arrived, give up asking (``unknown``) after ``check_window``."""
        post, sub, token = job.post, job.sub, job.token
        found = await self._ask(job)
        now = ctx.at()
        if found is True:
            return await self._sent(job, now, [CHECKING], how="found the post already")
        since = post.unknown_since or now
        if found is None:
            return await self._keep_checking(job, now, since, [CHECKING], post.last_error or "delivery unknown")
        # Known not to have arrived: it is an ordinary claimed row again, and this instance sends it now.
        back = await self.store.transition(post.id, now=now, from_status=[CHECKING], owner_is=token, status=CLAIMED,
                                           lease_until=now + self.lease, unknown_since=None)
        if not back:
            return "lost"
        log.info("daily: post %d (subscription %d) did not arrive; sending it", post.id, sub.id)
        if not sub.enabled:
            await self.store.transition(post.id, now=now, from_status=[CLAIMED], owner_is=token, status=FAILED,
                                        lease_until=None, last_error="not resent: the subscription is off")
            return "failed"
        return await self._deliver(_Job(_with(post, status=CLAIMED, unknown_since=None), sub, token), ctx)

    async def _ask(self, job: _Job) -> bool | None:
        sub = job.sub
        try:
            async with asyncio.timeout(self.send_timeout):
                return await self.targets[sub.platform].find_delivery(sub.channel_id, delivery_key(job.post))
        except Exception as exc:
            log.warning("daily: could not look up post %d in %s channel %s: %s: %s", job.post.id, sub.platform,
                        sub.channel_id, type(exc).__name__, exc)
            return None

    async def _keep_checking(self, job: _Job, now: datetime, since: datetime, from_status: list[str],
                             why: str) -> str:
        post, sub = job.post, job.sub
        if now - since >= self.check_window:
            await self.store.transition(
                post.id, now=now, from_status=from_status, owner_is=job.token, status=UNKNOWN, lease_until=None,
                last_error=f"{why}; {sub.platform} could not say within {self.check_window.total_seconds() / 60:.0f} "
                           "minutes whether it arrived, so it is not resent",
            )
            log.error("daily: post %d (subscription %d) may or may not have arrived; not resending it", post.id,
                      sub.id)
            return "unknown"
        await self.store.transition(
            post.id, now=now, from_status=from_status, owner_is=job.token, status=CHECKING, owner=None,
            lease_until=now + self.check_every, unknown_since=since, last_error=why,
        )
        return "checking"

    async def _failed_attempt(
        self, job: _Job, now: datetime, due: datetime, error: str, *, from_status: str, attempts: int | None = None,
    ) -> str:
        post, sub, token = job.post, job.sub, job.token
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

    async def _channel_gone(self, job: _Job, now: datetime, why: str) -> str:
        post, sub = job.post, job.sub
        reason = f"channel gone: {why or 'the channel was deleted or the bot lost access'}"
        await self.store.transition(post.id, now=now, from_status=[SENDING], owner_is=job.token, status=FAILED,
                                    lease_until=None, last_error=reason)
        if await self.store.disable_subscription(sub.id, reason, now):
            log.warning("daily: disabled subscription %d (%s channel %s): %s", sub.id, sub.platform, sub.channel_id,
                        reason)
            await self._tell_subscriber(sub, why)
        return "gone"

    async def _tell_subscriber(self, sub: Subscription, why: str) -> None:
        """Tell whoever subscribed that the daily quote stopped (once: only when this call disabled it)."""
        tell = getattr(self.targets[sub.platform], "tell_user", None)
        if tell is None:
            return
        text = (f"I can no longer post the daily quote in <#{sub.channel_id.rpartition(':')[2]}> ({why}), so it is "
                "turned off. Invite me back or give me permission to post there, then run `daily subscribe` again.")
        try:
            await tell(sub.created_by, sub.channel_id, text)
        except Exception as exc:
            log.info("daily: could not tell %s that subscription %d stopped: %s", sub.created_by, sub.id, exc)

    def _grace_text(self) -> str:
        return f"{self.grace.total_seconds() / 60:.0f} minutes"


def _with(post: Post, **changes: Any) -> Post:
    values = {name: getattr(post, name) for name in Post.__slots__}
    values.update(changes)
    return Post(**values)
