"""Autocomplete for slash command options: ``/quote topic`` (source titles and frequent topic terms) and
``/daily subscribe timezone`` (IANA zones, matched by any part, e.g. "berl" -> Europe/Berlin).

Pure lookups over cached lists, quick enough for Discord's 3-second autocomplete deadline.
"""

from __future__ import annotations

import functools
import random
from zoneinfo import available_timezones

from retrieval.retriever import Retriever

MAX_CHOICES = 25  # Discord shows at most 25 suggestions
MAX_CHOICE_CHARS = 100  # a choice's name and value
TOPIC_TERMS = 60


class TopicChoices:
    """Suggested ``/quote`` topics: the corpus's source titles and frequent topic terms, refreshed when the
    searched passages change."""

    def __init__(self, searcher: Retriever) -> None:
        self.searcher = searcher
        self._cached: tuple[int, list[str]] | None = None

    def candidates(self) -> list[str]:
        size = self.searcher.size
        if self._cached is None or self._cached[0] != size:
            terms = self.searcher.suggestions(random.Random(0), TOPIC_TERMS)
            titles = [s.title for s in self.searcher.sources() if s.title]
            seen: dict[str, str] = {}
            for t in [*terms, *titles]:
                seen.setdefault(t.casefold(), t[:MAX_CHOICE_CHARS])
            self._cached = (size, list(seen.values()))
        return self._cached[1]

    def matching(self, typed: str) -> list[str]:
        """Up to 25 topics for what the user typed so far: words starting with it first, then containing it."""
        return best_matches(self.candidates(), typed)


def zone_matching(typed: str) -> list[str]:
    """Up to 25 IANA zones for what the user typed (any part of the name, case-insensitive; cities first)."""
    return best_matches(_zones(), typed.replace(" ", "_"))


def best_matches(options: list[str], typed: str) -> list[str]:
    needle = typed.strip().casefold()
    if not needle:
        return options[:MAX_CHOICES]
    starts, contains = [], []
    for option in options:
        folded = option.casefold()
        words = folded.replace("/", " ").replace("_", " ").split()
        if folded.startswith(needle) or any(w.startswith(needle) for w in words):
            starts.append(option)
        elif needle in folded:
            contains.append(option)
    return (starts + contains)[:MAX_CHOICES]


@functools.cache
def _zones() -> list[str]:
    # the city part first (Europe/Berlin before Etc/...), then the rest, each alphabetically
    names = sorted(available_timezones())
    return [z for z in names if "/" in z and not z.startswith(("Etc/", "SystemV/"))] + \
        [z for z in names if "/" not in z or z.startswith("Etc/")]
