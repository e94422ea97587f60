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


def card_blocks(card: QuoteCard, limit: int = SECTION_LIMIT) -> list[Block]:
    """A section with the quote (matched words bold) and a context line under it."""
    quote = fit(card.text, card.highlights, limit - 2)
    blocks: list[Block] = [{"type": "section", "text": _mrkdwn(f"“{quote}”")}]
    blocks.append({"type": "context", "elements": [_mrkdwn(context_line(card))]})
    return blocks


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
        budget -= len(block["text"]["text"])
    actions = [a for a in reply.actions if not (public and a.kind is ActionKind.POST)]
    reserve = (1 if actions else 0) + (1 if shared_by else 0) + 1
    left_out = 0
    for card in reply.cards:
        if len(blocks) + 2 + reserve > BLOCK_LIMIT or budget < 200:
            left_out += 1
            continue
        part = card_blocks(card, min(SECTION_LIMIT, budget - 150))
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
    if "text" in block:
        return block["text"]["text"]
    return "".join(e.get("text", "") for e in block.get("elements", ()) if isinstance(e.get("text"), str))
