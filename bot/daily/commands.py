"""The ``daily`` chat commands: subscribe, off, status and now, for people who manage a channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.daily.picking import QuotePicker, QuoteSource, daily_reply
from bot.daily.schedule import (
    BadInput,
    Clock,
    describe_instant,
    local_day,
    looks_like_time,
    looks_like_zone,
    next_post_at,
    parse_time,
    resolve_zone,
    utc_now,
)
from bot.daily.scheduler import LeaseTokens, delivery_key
from bot.platforms import spec
from bot.reply import Reply, ReplyKind, Request
from bot.store import CLAIMED, FAILED, SENT, SKIPPED, UNKNOWN, Post, Store, Subscription
from config.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIME = "09:00"
MAX_TOPIC_CHARS = 100

HELP = """Daily quote for this channel ({who}):
  daily subscribe [HH:MM] [Area/City] [topic]  post a quote here every day (default {time}, {zone})
  daily off      stop the daily quote
  daily status   when the next quote comes, in the channel's zone and UTC
  daily now      post today's quote right away (it counts as today's)
Example: daily subscribe 08:30 Europe/Berlin mars"""


def who_may(platform: str) -> str:
    """Who may change a channel's daily quote on ``platform``, as its registry entry words it."""
    try:
        return spec(platform).managers
    except KeyError:
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
        self.tokens = LeaseTokens(instance_id)
        self._checks: dict[str, Callable[[str], Awaitable[str | None]]] = {}

    def use_platforms(self, adapters: Mapping[str, Any]) -> None:
        """The running adapters: ``daily subscribe`` asks each one's ``can_post`` (when it has one) first."""
        self._checks = {name: a.can_post for name, a in adapters.items() if callable(getattr(a, "can_post", None))}

    async def _cannot_post(self, request: Request) -> str | None:
        check = self._checks.get(request.platform)
        if check is None:
            return None
        try:
            async with asyncio.timeout(10):
                return await check(request.channel_id)
        except Exception:
            log.warning("daily: could not check whether I can post in %s channel %s; allowing it", request.platform,
                        request.channel_id, exc_info=True)
            return None

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
                    f"Only {who_may(request.platform)} can change this channel's daily quote.", kind=ReplyKind.REFUSED
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
        text = HELP.format(who=f"changes by {who_may(request.platform)}", time=self.default_time,
                           zone=self._zone_for(request))
        return _notice(text, kind=ReplyKind.DAILY)

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
            return _notice(f"{exc} Nothing was changed.", kind=ReplyKind.BAD_INPUT)
        topic = " ".join(words) or None
        if topic and len(topic) > MAX_TOPIC_CHARS:
            return _notice(f"That topic is longer than {MAX_TOPIC_CHARS} characters. Nothing was changed.",
                           kind=ReplyKind.BAD_INPUT)
        if topic and not await self.picker.pool(topic):
            return _notice(f"I have no quotes about “{topic}”, so nothing was changed. Try another topic, or none.",
                           kind=ReplyKind.BAD_INPUT)
        why = await self._cannot_post(request)
        if why:
            return _notice(f"I can't post the daily quote in this channel: {why} Nothing was changed.",
                           kind=ReplyKind.REFUSED)
        now = self.clock()
        sub = await self.store.save_subscription(
            platform=request.platform, channel_id=request.channel_id, guild_id=request.guild_id, local_time=hhmm,
            tz=zone, topic=topic, created_by=request.user_id, now=now,
        )
        log.info("daily: %s subscribed %s channel %s at %s %s", request.user_id, request.platform,
                 request.channel_id, hhmm, zone)
        about = f", about “{topic}”" if topic else ""
        nxt = describe_instant(await self._next(sub, now), ZoneInfo(zone))
        return Reply(text=f"Daily quote on: every day at {hhmm} {zone}{about}.\nNext post: {nxt}", kind=ReplyKind.DAILY)

    async def _off(self, request: Request) -> Reply:
        sub = await self.store.subscription(request.platform, request.channel_id)
        if sub is None or not sub.enabled:
            return _notice("This channel has no daily quote to turn off.", kind=ReplyKind.DAILY)
        await self.store.disable_subscription(sub.id, f"turned off by {request.user_id}", self.clock())
        log.info("daily: %s turned off %s channel %s", request.user_id, request.platform, request.channel_id)
        return Reply(text="Daily quote turned off for this channel. `daily subscribe` starts it again.",
                     kind=ReplyKind.DAILY)

    async def _status(self, request: Request) -> Reply:
        sub = await self.store.subscription(request.platform, request.channel_id)
        if sub is None:
            return _notice("This channel has no daily quote. Start one with "
                           "`daily subscribe [HH:MM] [Area/City] [topic]`.", kind=ReplyKind.DAILY)
        if not sub.enabled:
            return _notice(f"The daily quote here is off ({sub.disabled_reason or 'turned off'}). "
                           "`daily subscribe` starts it again.", kind=ReplyKind.DAILY)
        about = f", about “{sub.topic}”" if sub.topic else ""
        nxt = await self._next(sub, self.clock())
        return _notice(
            f"Daily quote: every day at {sub.local_time} {sub.tz}{about}.\n"
            f"Next post: {describe_instant(nxt, ZoneInfo(sub.tz))}",
            kind=ReplyKind.DAILY,
        )

    async def _next(self, sub: Subscription, now: datetime) -> datetime:
        since = (now - self.grace - timedelta(days=2)).date()
        taken = {d for (sid, d) in await self.store.existing_dates(since) if sid == sub.id}
        return next_post_at(sub, now, taken, self.grace)

    async def _now(self, request: Request) -> Reply:
        sub = await self.store.subscription(request.platform, request.channel_id)
        if sub is None or not sub.enabled:
            return _notice("This channel has no daily quote yet. Start one with `daily subscribe` first.",
                           kind=ReplyKind.DAILY)
        now = self.clock()
        today = local_day(now, ZoneInfo(sub.tz))
        token = self.tokens.new()
        post = await self.store.claim(sub.id, today, now=now, owner=token, lease_until=now + self.lease)
        if post is None:
            post = await self.store.post(sub.id, today)
            if post is None:
                return _notice("Today's quote is being handled right now; try again in a moment.", kind=ReplyKind.DAILY)
            if post.status in (FAILED, SKIPPED):
                taken = await self.store.transition(
                    post.id, now=now, from_status=[FAILED, SKIPPED], status=CLAIMED, owner=token,
                    lease_until=now + self.lease,
                )
                if not taken:
                    return _notice("Today's quote is being handled right now; try again in a moment.")
            else:
                return await self._already(sub, post)
        hit = await self.picker.pick(sub, today, post.passage_key)
        if hit is None:
            await self.store.transition(post.id, now=now, from_status=[CLAIMED], owner_is=token, status=FAILED,
                                        last_error="no quotes available")
            return _notice("I have no quotes to post right now.", kind=ReplyKind.DAILY)
        # The reply goes straight back to the channel, so the day counts as sent from here.
        sent = await self.store.transition(
            post.id, now=now, from_status=[CLAIMED], owner_is=token, status=SENT, passage_key=hit.passage.key,
            sent_at=now, lease_until=None, add_attempt=True,
        )
        if not sent:
            return _notice("Today's quote is being handled right now; try again in a moment.", kind=ReplyKind.DAILY)
        log.info("daily: %s posted today's quote in %s channel %s by hand", request.user_id, sub.platform,
                 sub.channel_id)
        return daily_reply(hit, sub.topic, nonce=delivery_key(post))

    async def _already(self, sub: Subscription, post: Post) -> Reply:
        if post.status in (SENT, UNKNOWN) and post.passage_key:
            hit = await self.picker.pick(sub, post.local_date, post.passage_key)
            if hit is not None and hit.passage.key == post.passage_key:
                shown = daily_reply(hit, sub.topic, nonce=delivery_key(post))
                return Reply(text="Today's quote was already posted here. Here it is again, just for you:",
                             cards=shown.cards, actions=shown.actions, ephemeral=True, kind=ReplyKind.DAILY)
            return _notice("Today's quote was already posted here.", kind=ReplyKind.DAILY)
        return _notice("Today's quote is on its way to this channel.", kind=ReplyKind.DAILY)


def _notice(text: str, kind: ReplyKind = ReplyKind.DAILY) -> Reply:
    return Reply(text=text, ephemeral=True, kind=kind)

