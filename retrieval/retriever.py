"""The contract between the bot and search: what any search engine behind quotebot provides.

``retrieval.search.Searcher`` implements it over the local index (lexical or hybrid); an
external engine (see ``docs/opensearch.md``) would be one more class with these methods.
The bot depends on this Protocol only, never on a concrete searcher.
"""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

from retrieval.model import Hit, SourceInfo


@runtime_checkable
class Retriever(Protocol):
    """Search over one corpus of transcripts. Methods may block: call them from a worker thread."""

    @property
    def mode(self) -> str:
        """A short name of how it ranks ("lexical", "hybrid", ...)."""
        ...

    @property
    def size(self) -> int:
        """How many passages it searches."""
        ...

    def describe(self) -> str:
        """One line on how it ranks, for logs and status messages."""
        ...

    def search(self, query: str, k: int = 5, offset: int = 0) -> list[Hit]:
        """The ``k`` best distinct moments after skipping ``offset``; [] when nothing answers ``query``."""
        ...

    def closest(self, query: str, k: int = 3) -> list[Hit]:
        """The nearest passages even when ``search`` abstained: "closest mentions", to be labelled as such."""
        ...

    def context(self, key: str, radius: int = 450) -> Hit | None:
        """The text around the passage with ``Passage.key`` ``key``; None when the key is stale."""
        ...

    def quote_pool(self, topic: str | None = None) -> list[Hit]:
        """Stand-alone quotes (whole sentences), about ``topic`` when given."""
        ...

    def random_quote(self, rng: random.Random, topic: str | None = None) -> Hit | None:
        """One stand-alone quote chosen with ``rng``, about ``topic`` when given."""
        ...

    def sources(self) -> list[SourceInfo]:
        """Every transcript searched."""
        ...

    def suggestions(self, rng: random.Random, n: int = 5) -> list[str]:
        """Up to ``n`` topics worth trying, for a reply that found nothing."""
        ...

    def refresh(self) -> bool:
        """Pick up corpus changes; True when the data searched changed."""
        ...
