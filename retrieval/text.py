"""Text facts every stage shares: which characters are CJK ideographs, which texts are mostly CJK, and merging
character spans."""

from __future__ import annotations

import re
from collections.abc import Iterable

# CJK Unified Ideographs, Extension A and the Compatibility Ideographs: the characters that are
# tokenized as bigrams, weigh 0.6 of a word in window sizes, and may start or end a repeated phrase.
CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK = re.compile(f"[{CJK_RANGES}]")
CJK_RUN = re.compile(f"[{CJK_RANGES}]+")


def is_cjk(ch: str) -> bool:
    """True when ``ch`` (one character) is a CJK ideograph."""
    return CJK.match(ch) is not None


def mostly_cjk(text: str) -> bool:
    """True when most of the letters of ``text`` are CJK ideographs."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and 2 * sum(1 for c in letters if CJK.match(c)) > len(letters)


def merge_spans(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, non-overlapping spans covering the same characters (touching spans join; empty ones drop)."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if s >= e:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)
