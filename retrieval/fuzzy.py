"""Query words the corpus never uses -> close words it does (ASR robustness without a glossary).

Speech recognition writes what it heard: "cobalt" for COBOL, "Octoberfest" for
Hacktoberfest. A query word absent from the index vocabulary is compared with the
vocabulary's words by normalised edit similarity (rapidfuzz's Indel ratio) on the stemmed
forms; the few closest above a cutoff stand in for it, each weighted by how close it is.
A glossary in the manifest still overrides: its aliases are indexed as the canonical term,
so those words are in the vocabulary and never reach this step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from retrieval.index import Index


@dataclass(frozen=True, slots=True)
class FuzzyParams:
    min_len: int = 5  # shorter words have too many near neighbours to guess from
    cutoff: float = 80.0  # Indel similarity (0-100) a vocabulary word needs
    # ... and this much unless it starts with the same letter and is no mere part of the word
    # (a word with a prefix or suffix cut off is another word, "founder" / "under", not a mishearing)
    sure: float = 88.0
    limit: int = 2  # vocabulary words taken per unknown query word
    # weight of a stand-in = ((similarity - cutoff) / (100 - cutoff)) scaled into [low, high]
    low: float = 0.4
    high: float = 0.8
    # a stand-in must be at least this rare: one in more passages than this share is no topic word
    max_df: float = 0.02


@dataclass(frozen=True, slots=True)
class Variant:
    word: str  # the query's term
    term: str  # the corpus term standing in for it
    weight: float


class FuzzyVocabulary:
    """Close vocabulary terms for query terms the index does not know; one per index."""

    def __init__(self, index: Index, params: FuzzyParams | None = None) -> None:
        self.params = params or FuzzyParams()
        p = self.params
        n = max(1, index.size)
        df = np.asarray(index.doc_freq)
        self._terms = [t for t, i in index.vocab.items()
                       if len(t) >= p.min_len - 1 and t.isalpha() and t.isascii() and df[i] <= p.max_df * n]
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[Variant, ...]] = {}

    def variants(self, term: str) -> tuple[Variant, ...]:
        """Stand-ins for one unknown query term (stemmed), best first; () when none is close."""
        p = self.params
        if len(term) < p.min_len or not term.isalpha() or not term.isascii():
            return ()
        with self._lock:
            hit = self._cache.get(term)
        if hit is not None:
            return hit
        found = process.extract(term, self._terms, scorer=fuzz.ratio, limit=p.limit + 3, score_cutoff=p.cutoff)
        found = [(t, s, i) for t, s, i in found if s >= p.sure or _plausible(term, t)][: p.limit]
        out = tuple(Variant(term, t, p.low + (p.high - p.low) * (s - p.cutoff) / (100.0 - p.cutoff))
                    for t, s, _ in found)
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[term] = out
        return out


def _plausible(word: str, other: str) -> bool:
    """A mishearing keeps the first sound and is not the word with a part cut off."""
    return word[0] == other[0] and word not in other and other not in word
