"""Time zones named by their city: ``berlin`` -> ``Europe/Berlin``, when exactly one IANA zone has that city."""

from __future__ import annotations

import functools
from zoneinfo import available_timezones

_NOT_CITIES = ("Etc/", "SystemV/")


@functools.cache
def _by_city() -> dict[str, tuple[str, ...]]:
    found: dict[str, set[str]] = {}
    for name in available_timezones():
        if "/" not in name or name.startswith(_NOT_CITIES):
            continue
        city = name.rsplit("/", 1)[1].casefold()
        found.setdefault(city, set()).add(name)
    return {city: tuple(sorted(zones)) for city, zones in found.items()}


def zone_for_city(word: str) -> str | None:
    """The one IANA zone whose last part is ``word`` (any letter case; spaces or underscores, e.g.
    ``new_york``); None when no zone, or more than one, has that city."""
    key = word.strip().replace(" ", "_").casefold()
    zones = _by_city().get(key, ()) if key else ()
    return zones[0] if len(zones) == 1 else None
