"""Reply -> Discord message parts (content, embeds, buttons), always within Discord's limits.

Pure functions: nothing here talks to Discord. Transcript and user text is escaped
(markdown and mentions) before matched words are marked bold, so a quote can never
ping ``@everyone`` or break the formatting around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.reply import ActionKind, QuoteCard, Reply
from retrieval.text import merge_spans

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FOOTER_LIMIT = 256  # Discord allows 2,048; a speaker and a time never need more
TOTAL_LIMIT = 6000
EMBED_LIMIT = 10
BUTTON_LIMIT = 25
LABEL_LIMIT = 80
CUSTOM_ID_LIMIT = 100
CUSTOM_ID_PREFIX = "qb:"
EMBED_COLOUR = 0x3B82F6
NO_SPEAKER = "speaker not marked"
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    """One button: its label, the custom_id Discord hands back, and whether it stands out."""

    label: str
    custom_id: str
    primary: bool = False


@dataclass(frozen=True)
class DiscordMessage:
    """Everything needed to send one Discord message."""

    content: str
    embeds: tuple[discord.Embed, ...]
    buttons: tuple[ButtonSpec, ...]
    ephemeral: bool


def size(text: str) -> int:
    """Length as Discord counts it, taken conservatively (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Markdown and mentions escaped, so text shows literally and pings nobody."""
    return escape_mentions(escape_markdown(text))


def trim_words(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` (Discord-counted) characters at a word boundary, with an ellipsis."""
    if size(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = _prefix_within(text, limit - 1)
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def marked(text: str, highlights: tuple[tuple[int, int], ...] = (), limit: int = DESCRIPTION_LIMIT) -> str:
    """``text`` escaped with highlight spans in bold, trimmed at a word boundary to fit ``limit``."""
    raw_limit = min(len(text), limit)
    while True:
        shown = trim_words(text, raw_limit)
        cut = len(shown) - (1 if shown.endswith(ELLIPSIS) and shown != text else 0)
        out = _bold_spans(text[:cut], highlights) + shown[cut:]
        over = size(out) - limit
        if over <= 0:
            return out
        raw_limit -= max(over, 1)
        if raw_limit <= 0:
            return ""


def footer(card: QuoteCard) -> str:
    """``"speaker · time label"``; footers show text literally, so it is not escaped."""
    parts = [card.speaker or NO_SPEAKER]
    if card.time_label:
        parts.append(card.time_label)
    return trim_words(" · ".join(parts), FOOTER_LIMIT)


def render(reply: Reply, *, public: bool = False) -> DiscordMessage:
    """The Discord message for ``reply``.

    ``public`` is for messages everyone in the channel sees (mentions, prefix
    commands, posts): they are never ephemeral and carry no "Post to channel" button.
    """
    text = escape(reply.text.strip())
    content, lead = (text, "") if size(text) <= CONTENT_LIMIT else ("", text)
    cards = reply.cards[: EMBED_LIMIT - (1 if lead else 0)]
    first = reply.first_number if len(cards) > 1 or reply.first_number > 1 else None
    embeds = _embeds(lead, cards, first)
    if not content and not embeds:
        content = "(nothing to show)"
    buttons = tuple(
        ButtonSpec(trim_words(a.label, LABEL_LIMIT), CUSTOM_ID_PREFIX + a.payload, a.kind is ActionKind.POST)
        for a in reply.actions
        if not (public and a.kind is ActionKind.POST) and len(CUSTOM_ID_PREFIX + a.payload) <= CUSTOM_ID_LIMIT
    )[:BUTTON_LIMIT]
    ephemeral = reply.ephemeral and not public
    return DiscordMessage(content=content, embeds=tuple(embeds), buttons=buttons, ephemeral=ephemeral)


def payload_of(custom_id: str) -> str | None:
    """The Action payload inside one of our custom_ids, else None."""
    if custom_id.startswith(CUSTOM_ID_PREFIX):
        return custom_id[len(CUSTOM_ID_PREFIX) :]
    return None


def total_size(embeds: tuple[discord.Embed, ...] | list[discord.Embed]) -> int:
    """Characters Discord counts against the 6,000 limit across a message's embeds."""
    total = 0
    for e in embeds:
        total += size(e.title or "") + size(e.description or "") + size(e.footer.text or "")
        total += size(e.author.name or "") + sum(size(f.name or "") + size(f.value or "") for f in e.fields)
    return total


# --- internals --------------------------------------------------------------------


def _prefix_within(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose Discord-counted size is at most ``limit``."""
    if size(text) <= limit:
        return text
    count = 0
    for i, ch in enumerate(text):
        count += 2 if ord(ch) > 0xFFFF else 1
        if count > limit:
            return text[:i]
    return text


def _bold_spans(text: str, highlights: tuple[tuple[int, int], ...]) -> str:
    spans = merge_spans((max(0, a), min(len(text), b)) for a, b in highlights)
    out, pos = [], 0
    for a, b in spans:
        out.append(escape(text[pos:a]))
        word = text[a:b]
        inner = word.strip()
        if inner:
            lead = word[: len(word) - len(word.lstrip())]
            tail = word[len(word.rstrip()) :]
            out.append(f"{escape(lead)}**{escape(inner)}**{escape(tail)}")
        else:
            out.append(escape(word))
        pos = b
    out.append(escape(text[pos:]))
    return "".join(out)


def _embeds(lead: str, cards: tuple[QuoteCard, ...], first: int | None = None) -> list[discord.Embed]:
    # numbered quotes ("4. speaker · 1:02") match their "Context 4" buttons
    fixed = [(trim_words(escape(c.title or c.source_id), TITLE_LIMIT),
              footer(c) if first is None else trim_words(f"{first + i}. {footer(c)}", FOOTER_LIMIT))
             for i, c in enumerate(cards)]
    fixed_cost = sum(size(t) + size(f) for t, f in fixed)
    wants = ([size(lead)] if lead else []) + [size(marked(c.text, c.highlights)) for c in cards]
    budgets = _share(wants, TOTAL_LIMIT - fixed_cost, DESCRIPTION_LIMIT)
    embeds: list[discord.Embed] = []
    if lead:
        embeds.append(discord.Embed(description=trim_words(lead, budgets[0]), colour=EMBED_COLOUR))
        budgets = budgets[1:]
    for c, (title, foot), budget in zip(cards, fixed, budgets, strict=True):
        share = f"\n[Link to this quote]({c.permalink})" if c.permalink else ""
        text = marked(c.text, c.highlights, budget - size(share))
        e = discord.Embed(title=title, url=c.url or None, description=(text + share) or None)
        e.colour = EMBED_COLOUR
        e.set_footer(text=foot)
        if c.thumbnail_url:
            e.set_thumbnail(url=c.thumbnail_url)
        embeds.append(e)
    return embeds


def _share(wants: list[int], available: int, cap: int) -> list[int]:
    """Split ``available`` characters among descriptions wanting ``wants``, fairly, none above ``cap``."""
    wants = [min(w, cap) for w in wants]
    if sum(wants) <= available:
        return wants
    budgets = [0] * len(wants)
    left, remaining = sorted(range(len(wants)), key=lambda i: wants[i]), max(available, 0)
    while left:
        share = remaining // len(left)
        i = left[0]
        if wants[i] <= share:
            budgets[i] = wants[i]
        else:
            for j in left:
                budgets[j] = share
            break
        remaining -= budgets[i]
        left.pop(0)
    return budgets
