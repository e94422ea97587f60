"""When daily quotes are due: parsing the user's time and zone, and the local-date ↔ UTC-instant math (zoneinfo)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.daily.zones import zone_for_city
from bot.store import Subscription

Clock = Callable[[], datetime]


class BadInput(ValueError):
    """A user's time or zone could not be understood; the message says what to type instead."""


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    """An IANA name, UTC/GMT, or a city that names exactly one zone (``berlin``), not a topic word."""
    return "/" in token or token.upper() in ("UTC", "GMT") or zone_for_city(token) is not None


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
    found = _zones_by_casefold().get(name.casefold()) or zone_for_city(name)
    if found is None:
        raise BadInput(f"Unknown time zone “{name}”. Use an IANA name such as Europe/Berlin, America/New_York or UTC.")
    return found


@functools.lru_cache(maxsize=8192)  # many channels share a time and zone; a tick asks for each of them
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
