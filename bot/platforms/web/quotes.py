"""Finding the quote behind a permalink key (``bot.reply.quote_key``: ``<passage key>+<length>``)."""

from __future__ import annotations

from dataclasses import replace

from bot.core import card
from bot.reply import QuoteCard
from retrieval.links import moment_url
from retrieval.model import Hit
from retrieval.retriever import Retriever

MAX_QUOTE_CHARS = 4000


def split_key(key: str) -> tuple[str, int | None] | None:
    """``(passage key, length or None)`` of a permalink key; None when it is malformed."""
    passage, plus, length = key.rpartition("+")
    if not plus:
        passage, length = key, ""
    if "@" not in passage or not passage.rpartition("@")[2].isdigit():
        return None
    if length and not (length.isdigit() and 0 < int(length) <= MAX_QUOTE_CHARS):
        return None
    return passage, int(length) if length else None


def quote_card(searcher: Retriever, key: str) -> QuoteCard | None:
    """The card of the quote a permalink names: the same words a result showed when its link was made
    (while the transcript is unchanged), with that passage's speaker and time; None when it is unknown.

    ``searcher.context(passage_key, radius)`` returns the text around the passage starting at that key,
    widened to sentence edges; asked with the quote's length as radius, it contains the whole quote.
    """
    parts = split_key(key)
    if parts is None:
        return None
    passage_key, length = parts
    base = searcher.context(passage_key, 0)
    if base is None:
        return None
    at = int(passage_key.rpartition("@")[2])
    if length is None:
        return card(base)
    around: Hit | None = searcher.context(passage_key, length)
    if around is None:
        return None
    offset = at - around.passage.char_start
    text = around.passage.text[offset : offset + length]
    if offset < 0 or not text.strip():
        return None
    passage = replace(base.passage, text=text, char_start=at, char_end=at + len(text))
    hit = replace(base, passage=passage, url=moment_url(base.source.url, passage.start), highlights=())
    return card(hit)
