"""Reply -> Slack Block Kit blocks plus a plain ``text`` fallback.

Pure functions. Every piece of transcript or user text is escaped (``&``, ``<``, ``>``)
and sent with ``verbatim`` mrkdwn, so no quote can become ``<!channel>``, a user
mention or a link. Output stays inside Slack's limits: 3,000 characters per section,
50 blocks per message, and a total text budget well below the ~12k where posts fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.reply import Action, ActionKind, QuoteCard, Reply
from retrieval.text import merge_spans

SECTION_LIMIT = 3000
CONTEXT_LIMIT = 3000
BLOCK_LIMIT = 50
TEXT_BUDGET = 10_000
FALLBACK_LIMIT = 600
BUTTON_TEXT_LIMIT = 75
TITLE_LIMIT = 150
ACTION_PREFIX = "qb:"

Block = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message body for chat.postMessage / response_url: blocks plus fallback text."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control sequences in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: str) -> str:
    """``<url|label>`` for an http(s) url, else the escaped label alone."""
    if not url or urlsplit(url).scheme.lower() not in ("http", "https"):
        return escape(label)
    safe_url = escape(url).replace("|", "%7C").replace(" ", "%20")
    return f"<{safe_url}|{escape(label).replace('|', '¦')}>"


def highlighted(text: str, highlights: tuple[tuple[int, int], ...] = ()) -> str:
    """Escaped mrkdwn of ``text`` with the highlighted spans in bold."""
    spans = _word_spans(text, highlights)
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(escape(text[pos:start]))
        out.append(f"*{escape(text[start:end])}*")
        pos = end
    out.append(escape(text[pos:]))
    return "".join(out)


def _word_spans(text: str, highlights: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    """Highlights widened to whole words, merged, and kept only where bold will render.

    Slack only renders ``*bold*`` when the asterisks touch a non-space inside and no
    word character outside, so spans are widened to word edges and trimmed of spaces;
    spans only white space apart become one (``*two words*``, not ``*two* *words*``).
    """
    n = len(text)
    words: list[tuple[int, int]] = []
    for start, end in highlights:
        start, end = max(0, start), min(n, end)
        while start > 0 and start < end and text[start - 1].isalnum():
            start -= 1
        while start < end < n and text[end].isalnum():
            end += 1
        while start < end and not text[start].isalnum():
            start += 1
        while end > start and not text[end - 1].isalnum():
            end -= 1
        if "*" not in text[start:end]:
            words.append((start, end))
    bridged = [(s, e + 1) if text[e : e + 1].isspace() else (s, e) for s, e in merge_spans(words)]
    return [(s, e - (e > s and text[e - 1].isspace())) for s, e in merge_spans(bridged)]


def fit(text: str, highlights: tuple[tuple[int, int], ...], limit: int) -> str:
    """``highlighted`` cut at a word boundary (with an ellipsis) so it fits ``limit``."""
    full = highlighted(text, highlights)
    if len(full) <= limit:
        return full
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix whose rendering fits
        mid = (lo + hi + 1) // 2
        if len(_cut(text, highlights, mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return _cut(text, highlights, lo)


def _cut(text: str, highlights: tuple[tuple[int, int], ...], n: int) -> str:
    head = text[:n]
    if n < len(text) and " " in head:
        head = head.rsplit(" ", 1)[0]
    kept = tuple((s, min(e, len(head))) for s, e in highlights if s < len(head))
    return highlighted(head.rstrip(), kept) + "…"


def plain(text: str, limit: int) -> str:
    """Escaped plain text cut to ``limit`` characters."""
    return fit(text, (), limit)


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def notice_block(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(plain(text, SECTION_LIMIT))}


def card_blocks(card: QuoteCard, limit: int = SECTION_LIMIT, number: int | None = None) -> list[Block]:
    """A section with the quote (matched words bold) and a context line under it; ``number`` leads the quote
    when the answer's quotes are numbered (their Context buttons say which)."""
    head = f"{number}. " if number is not None else ""
    if has_formatting(card.text):
        blocks: list[Block] = [literal_quote(card.text, card.highlights, limit - 2 - len(head), head)]
    else:
        quote = fit(card.text, card.highlights, limit - 2 - len(head))
        blocks = [{"type": "section", "text": _mrkdwn(f"{head}“{quote}”")}]
    if has_formatting(f"{card.speaker or ''}{card.title}"):
        blocks.append({"type": "context", "elements": literal_context(card)})
    else:
        blocks.append({"type": "context", "elements": [_mrkdwn(context_line(card))]})
    return blocks


# mrkdwn has no escape for its formatting characters (only &, < and > are escaped), so text holding any of
# them is sent as rich_text, whose text elements are shown literally with explicit styles (Block Kit's
# recommended way to show user-provided text).
FORMATTING = frozenset("*_~`")


def has_formatting(text: str) -> bool:
    """True when ``text`` holds a character mrkdwn would read as formatting."""
    return any(ch in FORMATTING for ch in text)


def rich_text(pieces: list[tuple[str, bool]]) -> Block:
    """A rich_text block of literal ``(text, bold)`` pieces."""
    elements: list[Block] = []
    for text, bold in pieces:
        if text:
            elements.append({"type": "text", "text": text, **({"style": {"bold": True}} if bold else {})})
    return {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": elements}]}


def literal_quote(text: str, highlights: tuple[tuple[int, int], ...], limit: int, head: str = "") -> Block:
    """The quote, exactly as transcribed, matched words bold, cut at a word boundary to ``limit`` characters."""
    shown, cut = text, False
    if len(text) > limit:
        shown = text[: max(limit - 1, 0)]
        if " " in shown:
            shown = shown.rsplit(" ", 1)[0]
        shown, cut = shown.rstrip(), True
    pieces, pos = [(head + "“", False)], 0
    for s, e in sorted((max(0, s), min(len(shown), e)) for s, e in highlights):
        s = max(s, pos)
        if s < e:
            pieces += [(shown[pos:s], False), (shown[s:e], True)]
            pos = e
    pieces.append((shown[pos:] + ("…" if cut else "") + "”", False))
    return rich_text(pieces)


def literal_context(card: QuoteCard) -> list[Block]:
    """The context line as elements: speaker and title as literal plain text, the time as a link."""
    parts: list[Block] = []
    if card.speaker:
        parts.append({"type": "plain_text", "text": card.speaker[:100], "emoji": False})
    label = card.time_label or ("Open" if card.url else "")
    if label:
        parts.append(_mrkdwn(link(card.url, label)))
    if card.title:
        parts.append({"type": "plain_text", "text": card.title[:TITLE_LIMIT], "emoji": False})
    if card.permalink:
        parts.append(_mrkdwn(link(card.permalink, "Link to this quote")))
    return parts or [_mrkdwn("transcript")]


def context_line(card: QuoteCard) -> str:
    """``*speaker* · <url|12:34> · title`` with every part escaped."""
    parts: list[str] = []
    if card.speaker:
        parts.append(f"*{plain(card.speaker.replace('*', ''), 100)}*")
    label = card.time_label or ("Open" if card.url else "")
    if label:
        parts.append(link(card.url, label))
    if card.title:
        parts.append(plain(card.title, TITLE_LIMIT))
    if card.permalink:
        parts.append(link(card.permalink, "Link to this quote"))
    return " · ".join(parts) or "transcript"


def button(action: Action, index: int) -> Block:
    """A button whose value is the core's payload; ``action_id`` starts with ``qb:``."""
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": action.label[:BUTTON_TEXT_LIMIT] or "…", "emoji": False},
        "action_id": f"{ACTION_PREFIX}{action.kind.value}:{index}",
        "value": action.payload,
    }
    if action.kind is ActionKind.POST:
        element["style"] = "primary"
    return element


def render(reply: Reply, *, public: bool = False, shared_by: str | None = None) -> SlackMessage:
    """Block Kit for ``reply``.

    ``public`` drops the "Post to channel" button (the message is already public).
    ``shared_by`` (a Slack user id) adds a "Shared by" line to a post made public.
    """
    blocks: list[Block] = []
    budget = TEXT_BUDGET
    if reply.text:
        block = notice_block(reply.text)
        blocks.append(block)
        budget -= len(_block_text(block))
    actions = [a for a in reply.actions if not (public and a.kind is ActionKind.POST)]
    reserve = (1 if actions else 0) + (1 if shared_by else 0) + 1
    left_out = 0
    numbered = len(reply.cards) > 1 or reply.first_number > 1
    for card in reply.cards:
        if len(blocks) + 2 + reserve > BLOCK_LIMIT or budget < 200:
            left_out += 1
            continue
        number = reply.first_number + reply.cards.index(card) if numbered else None
        part = card_blocks(card, min(SECTION_LIMIT, budget - 150), number)
        budget -= sum(len(_block_text(b)) for b in part)
        blocks.extend(part)
    if left_out:
        blocks.append({"type": "context", "elements": [_mrkdwn(f"({left_out} more not shown)")]})
    if shared_by:
        who = "".join(c for c in shared_by if c.isalnum())
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Shared by <@{who}>"}]})
    if actions:
        blocks.append({"type": "actions", "elements": [button(a, i) for i, a in enumerate(actions[:25])]})
    return SlackMessage(text=fallback_text(reply), blocks=blocks)


def fallback_text(reply: Reply) -> str:
    """Plain notification text: the notice, else the first quote with its speaker."""
    if reply.text:
        return plain(reply.text, FALLBACK_LIMIT)
    if reply.cards:
        c = reply.cards[0]
        who = f" — {c.speaker}" if c.speaker else ""
        return plain(f"“{c.text}”{who}", FALLBACK_LIMIT)
    return "(empty reply)"


def _block_text(block: Block) -> str:
    if block.get("type") == "rich_text":
        return "".join(e.get("text", "") for s in block["elements"] for e in s["elements"])
    if "text" in block:
        return block["text"]["text"]
    return "".join(e.get("text", "") for e in block.get("elements", ()) if isinstance(e.get("text"), str))
