"""Daily quote posts: the ``daily`` commands, due-time math, and claim-then-post scheduling.

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
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import random
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.core import card
from bot.reply import Action, ActionKind, Reply, Request
from bot.store import CLAIMED, FAILED, SENDING, SENT, SKIPPED, UNKNOWN, Post, Store, Subscription
from config.settings import Settings
from retrieval.model import Hit

log = logging.getLogger(__name__)

Poster = Callable[[str, Reply], Awaitable[None]]
Clock = Callable[[], datetime]
DEFAULT_TIME = "09:00"
MAX_TOPIC_CHARS = 100


class ChannelGone(Exception):
    """Raised by an adapter's ``post()`` when the channel was deleted or the bot lost access to it."""


class BadInput(ValueError):
    """A user's time or zone could not be understood; the message says what to type instead."""


class QuoteSource(Protocol):
    """What daily posts need from the searcher."""

    def quote_pool(self, topic: str | None) -> list[Hit]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- time ------------------------------------------------------------------------------------

_TIME = re.compile(r"^(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm)?$", re.IGNORECASE)
_TIME_LIKE = re.compile(r"^\d{1,2}([:.h]\S*|\s*(am|pm))?$", re.IGNORECASE)


def looks_like_time(token: str) -> bool:
    return bool(_TIME_LIKE.match(token))


def parse_time(token: str) -> str:
    """``"9"``, ``"9:05"``, ``"09:05"``, ``"9am"``, ``"5:30pm"`` -> ``"HH:MM"`` (24-hour)."""
    m = _TIME.match(token.strip())
    hour, minute = (int(m[1]), int(m[2] or 0)) if m else (99, 99)
    if m and m[3]:
        hour = hour % 12 + (12 if m[3].lower() == "pm" else 0) if 1 <= hour <= 12 else 99
    if hour > 23 or minute > 59:
        raise BadInput(f"“{token}” is not a time of day. Use HH:MM on a 24-hour clock, e.g. 09:00 or 17:30.")
    return f"{hour:02d}:{minute:02d}"


def looks_like_zone(token: str) -> bool:
    return "/" in token or token.upper() in ("UTC", "GMT")


@functools.lru_cache(maxsize=1)
def _zones_by_casefold() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def resolve_zone(name: str) -> str:
    """The canonical IANA name for ``name`` (any letter case), or BadInput."""
    try:
        ZoneInfo(name)
        return name
    except (ZoneInfoNotFoundError, ValueError):
        pass
    found = _zones_by_casefold().get(name.casefold())
    if found is None:
        raise BadInput(f"Unknown time zone “{name}”. Use an IANA name such as Europe/Berlin, America/New_York or UTC.")
    return found


def due_at(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    """The UTC instant of local ``hhmm`` on local date ``day``, converted afresh for that day.

    A wall time that does not exist (spring forward) is due at the first valid minute after the gap; one that
    exists twice (fall back) is due at its first occurrence.
    """
    wall = datetime.combine(day, time.fromisoformat(hhmm))
    before = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    after = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if before == after:
        return before
    if before.astimezone(tz).replace(tzinfo=None) == wall:
        return min(before, after)
    return _gap_end(min(before, after), max(before, after), wall, tz)


def _gap_end(lo: datetime, hi: datetime, wall: datetime, tz: ZoneInfo) -> datetime:
    # Inside [lo, hi] local time jumps over ``wall``: find the first instant whose local time is past it.
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    while lo_s < hi_s:
        mid = (lo_s + hi_s) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) > wall:
            hi_s = mid
        else:
            lo_s = mid + 1
    end = datetime.fromtimestamp(hi_s, UTC)
    return end if end.second == 0 else end.replace(second=0) + timedelta(minutes=1)


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def next_post_at(sub: Subscription, now: datetime, taken: set[date], grace: timedelta) -> datetime:
    """When the subscription's next post is due: the earliest local day not yet handled and still postable."""
    tz = ZoneInfo(sub.tz)
    day = local_day(now - grace, tz) - timedelta(days=1)
    while True:
        due = due_at(day, sub.local_time, tz)
        if day not in taken and due >= sub.active_since and now - due <= grace:
            return max(due, now)
        day += timedelta(days=1)


def describe_instant(instant: datetime, tz: ZoneInfo) -> str:
    local = instant.astimezone(tz)
    utc = instant.astimezone(UTC)
    utc_part = utc.strftime("%H:%M UTC") if utc.date() == local.date() else utc.strftime("%a %d %b %H:%M UTC")
    return f"{local.strftime('%a %d %b %Y, %H:%M %Z')} ({utc_part})"


# --- quote choice ----------------------------------------------------------------------------


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
        self, sub: Subscription, day: date, keep_key: str | None = None, cache: dict | None = None
    ) -> Hit | None:
        hits = await self.pool(sub.topic, cache)
        if not hits and sub.topic:
            log.warning("daily: no quotes about %r for subscription %d; using the whole pool", sub.topic, sub.id)
            hits = await self.pool(None, cache)
        by_key = {h.passage.key: h for h in hits}
        if keep_key in by_key:
            return by_key[keep_key]
        if not by_key:
            return None
        shown = await self.store.key_counts(sub.id)
        least = min(shown.get(k, 0) for k in by_key)
        fresh = sorted(k for k in by_key if shown.get(k, 0) == least)
        rng = random.Random(f"{sub.platform}:{sub.channel_id}:{day.isoformat()}")
        return by_key[rng.choice(fresh)]


def daily_reply(hit: Hit, topic: str | None, nonce: str) -> Reply:
    """The message posted for a day: one quote card with a Context button."""
    key = hit.passage.key
    actions = (Action(ActionKind.CONTEXT, "Context", f"ctx:{key}"),) if len(key) <= 86 else ()
    title = f"Quote of the day · {topic}" if topic else "Quote of the day"
    return Reply(text=title, cards=(card(hit),), actions=actions, kind="daily", extra={"nonce": nonce})


def _instance_id() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class _Tokens:
    """Owner tokens, unique per claim, so a lease taken over and given back is never mistaken for one's own."""

    def __init__(self, instance_id: str | None) -> None:
        self.instance_id = (instance_id or _instance_id())[:50]
        self._n = itertools.count(1)

    def new(self) -> str:
        return f"{self.instance_id}#{next(self._n)}"


# --- commands --------------------------------------------------------------------------------

HELP = """Daily quote for this channel ({who}):
  daily subscribe [HH:MM] [Area/City] [topic]  post a quote here every day (default {time}, {zone})
  daily off      stop the daily quote
  daily status   when the next quote comes, in the channel's zone and UTC
  daily now      post today's quote right away (it counts as today's)
Example: daily subscribe 08:30 Europe/Berlin mars"""


def _who_may(platform: str) -> str:
    if platform == "discord":
        return "members with the Manage Channels permission"
    if platform == "slack":
        return "workspace admins or the channel's creator"
    return "people who can manage the channel"


class DailyService:
    """The ``daily`` command family (``bot.core.DailyCommands``)."""

    def __init__(
        self,
        store: Store,
        source: QuoteSource,
        settings: Settings | None = None,
        *,
        default_time: str = DEFAULT_TIME,
        lease_seconds: float = 600.0,
        clock: Clock = utc_now,
        instance_id: str | None = None,
    ) -> None:
        settings = settings or Settings()
        self.store = store
        self.picker = QuotePicker(store, source)
        self.default_timezone = resolve_zone(settings.timezone)
        self.default_time = parse_time(default_time)
        self.grace = timedelta(minutes=settings.daily_grace_minutes)
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock
        self.tokens = _Tokens(instance_id)

    async def handle(self, request: Request, arg: str) -> Reply:
        words = arg.split()
        sub = words[0].lower() if words else "help"
        rest = words[1:]
        if sub in ("help", "?"):
            return self._help(request)
        if sub == "status":
            return await self._status(request)
        if sub in ("subscribe", "on", "off", "unsubscribe", "stop", "now"):
            if not request.can_manage:
                return _notice(
                    f"Only {_who_may(request.platform)} can change this channel's daily quote.", kind="refused"
                )
            if sub in ("subscribe", "on"):
                return await self._subscribe(request, rest)
            if sub == "now":
                return await self._now(request)
            return await self._off(request)
        return _notice(f"I don't know `daily {words[0]}`.\n" + self._help(request).text)

    def _zone_for(self, request: Request) -> str:
        if request.default_timezone:
            try:
                return resolve_zone(request.default_timezone)
            except BadInput:
                log.warning("daily: ignoring unknown default zone %r from %s", request.default_timezone,
                            request.platform)
        return self.default_timezone

    def _help(self, request: Request) -> Reply:
        text = HELP.format(who=f"changes by {_who_may(request.platform)}", time=self.default_time,
                           zone=self._zone_for(request))
        return _notice(text, kind="daily")

    async def _subscribe(self, request: Request, words: list[str]) -> Reply:
        hhmm, zone = self.default_time, self._zone_for(request)
        seen_time = seen_zone = False
        try:
            while words and not (seen_time and seen_zone):
                if not seen_time and looks_like_time(words[0]):
                    hhmm, seen_time = parse_time(words.pop(0)), True
                elif not seen_zone and looks_like_zone(words[0]):
                    zone, seen_zone = resolve_zone(words.pop(0)), True
                else:
                    break
        except BadInput as exc:
            return _notice(f"{exc} Nothing was changed.", kind="bad_input")
        topic = " ".join(words) or None
        if topic and len(topic) > MAX_TOPIC_CHARS:
            return _notice(f"That topic is longer than {MAX_TOPIC_CHARS} characters. Nothing was changed.",
                           kind="bad_input")
        if topic and not await self.picker.pool(topic):
            return _notice(f"I have no quotes about “{topic}”, so nothing was changed. Try another topic, or none.",
                           kind="bad_input")
        now = self.clock()
        sub = await self.store.save_subscription(
            platform=request.platform, channel_id=request.channel_id, guild_id=request.guild_id, local_time=hhmm,
            tz=zone, topic=topic, created_by=request.user_id, now=now,
        )
        log.info("daily: %s subscribed %s channel %s at %s %s", request.user_id, request.platform,
                 request.channel_id, hhmm, zone)
        about = f", about “{topic}”" if topic else ""
        nxt = describe_instant(await self._next(sub, now), ZoneInfo(zone))
        return Reply(text=f"Daily quote on: every day at {hhmm} {zone}{about}.\nNext post: {nxt}", kind="daily")

    async def _off(self, request: Request) -> Reply:
        sub = await self.store.subscription(request.platform, request.channel_id)
        if sub is None or not sub.enabled:
            return _notice("This channel has no daily quote to turn off.", kind="daily")
        await self.store.disable_subscription(sub.id, f"turned off by {request.user_id}", self.clock())
        log.info("daily: %s turned off %s channel %s", request.user_id, request.platform, request.channel_id)
        return Reply(text="Daily quote turned off for this channel. `daily subscribe` starts it again.", kind="daily")

    async def _status(self, request: Request) -> Reply:
        sub = await self.store.subscription(request.platform, request.channel_id)
        if sub is None:
            return _notice("This channel has no daily quote. Start one with "
                           "`daily subscribe [HH:MM] [Area/City] [topic]`.", kind="daily")
        if not sub.enabled:
            return _notice(f"The daily quote here is off ({sub.disabled_reason or 'turned off'}). "
                           "`daily subscribe` starts it again.", kind="daily")
        about = f", about “{sub.topic}”" if sub.topic else ""
        nxt = await self._next(sub, self.clock())
        return _notice(
            f"Daily quote: every day at {sub.local_time} {sub.tz}{about}.\n"
            f"Next post: {describe_instant(nxt, ZoneInfo(sub.tz))}",
            kind="daily",
        )

    async def _next(self, sub: Subscription, now: datetime) -> datetime:
        since = (now - self.grace - timedelta(days=2)).date()
        taken = {d for (sid, d) in await self.store.existing_dates(since) if sid == sub.id}
        return next_post_at(sub, now, taken, self.grace)

    async def _now(self, request: Request) -> Reply:
        sub = await self.store.subscription(request.platform, request.channel_id)
        if sub is None or not sub.enabled:
            return _notice("This channel has no daily quote yet. Start one with `daily subscribe` first.",
                           kind="daily")
        now = self.clock()
        today = local_day(now, ZoneInfo(sub.tz))
        token = self.tokens.new()
        post = await self.store.claim(sub.id, today, now=now, owner=token, lease_until=now + self.lease)
        if post is None:
            post = await self.store.post(sub.id, today)
            if post is None:
                return _notice("Today's quote is being handled right now; try again in a moment.", kind="daily")
            if post.status in (FAILED, SKIPPED):
                taken = await self.store.transition(
                    post.id, now=now, from_status=[FAILED, SKIPPED], status=CLAIMED, owner=token,
                    lease_until=now + self.lease,
                )
                if not taken:
                    return _notice("Today's quote is being handled right now; try again in a moment.", kind="daily")
            else:
                return await self._already(sub, post)
        hit = await self.picker.pick(sub, today, post.passage_key)
        if hit is None:
            await self.store.transition(post.id, now=now, from_status=[CLAIMED], owner_is=token, status=FAILED,
                                        last_error="no quotes available")
            return _notice("I have no quotes to post right now.", kind="daily")
        # The reply goes straight back to the channel, so the day counts as sent from here.
        sent = await self.store.transition(
            post.id, now=now, from_status=[CLAIMED], owner_is=token, status=SENT, passage_key=hit.passage.key,
            sent_at=now, lease_until=None, add_attempt=True,
        )
        if not sent:
            return _notice("Today's quote is being handled right now; try again in a moment.", kind="daily")
        log.info("daily: %s posted today's quote in %s channel %s by hand", request.user_id, sub.platform,
                 sub.channel_id)
        return daily_reply(hit, sub.topic, nonce=f"qd{post.id}")

    async def _already(self, sub: Subscription, post: Post) -> Reply:
        if post.status in (SENT, UNKNOWN) and post.passage_key:
            hit = await self.picker.pick(sub, post.local_date, post.passage_key)
            if hit is not None and hit.passage.key == post.passage_key:
                shown = daily_reply(hit, sub.topic, nonce=f"qd{post.id}")
                return Reply(text="Today's quote was already posted here. Here it is again, just for you:",
                             cards=shown.cards, actions=shown.actions, ephemeral=True, kind="daily")
            return _notice("Today's quote was already posted here.", kind="daily")
        return _notice("Today's quote is on its way to this channel.", kind="daily")


def _notice(text: str, kind: str = "daily") -> Reply:
    return Reply(text=text, ephemeral=True, kind=kind)


# --- scheduler -------------------------------------------------------------------------------


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
        self.tokens = _Tokens(instance_id)
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
