"""Reply -> plain text, for the console and for platforms' notification fallback."""

from __future__ import annotations

from bot.reply import QuoteCard, Reply
from retrieval.text import merge_spans

BOLD, RESET = "\033[1m", "\033[0m"


def mark(text: str, spans: tuple[tuple[int, int], ...], before: str, after: str, escape=lambda s: s) -> str:
    """``text`` with each highlight span (merged, clipped to ``text``) wrapped in ``before``/``after``;
    the rest escaped."""
    out, pos = [], 0
    for s, e in merge_spans((max(0, s), min(len(text), e)) for s, e in spans):
        out.append(escape(text[pos:s]))
        out.append(before + escape(text[s:e]) + after)
        pos = e
    out.append(escape(text[pos:]))
    return "".join(out)


def attribution(card: QuoteCard) -> str:
    """``Speaker · 12:34 · Title`` (parts that are known)."""
    parts = [card.speaker or "speaker not marked"]
    if card.time_label:
        parts.append(card.time_label)
    parts.append(card.title)
    return " · ".join(parts)


def render_card(card: QuoteCard, number: int | None = None, ansi: bool = False) -> str:
    quote = mark(card.text, card.highlights, BOLD, RESET) if ansi else card.text
    head = f"{number}. " if number is not None else ""
    lines = [f"{head}“{quote}”", f"   — {attribution(card)}"]
    if card.url:
        lines.append(f"   {card.url}")
    return "\n".join(lines)


def render_text(reply: Reply, ansi: bool = False) -> str:
    """The whole reply as plain text; ``ansi`` bolds the matched words for a terminal."""
    blocks = [reply.text] if reply.text else []
    numbered = len(reply.cards) > 1
    blocks += [render_card(c, i + 1 if numbered else None, ansi) for i, c in enumerate(reply.cards)]
    return "\n\n".join(blocks)
