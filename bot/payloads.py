"""Button payloads: the core encodes what a button does into a short string and decodes it when pressed.

Adapters only carry payloads (Discord custom_ids, Slack button values, the console's ``more`` and
``context N``); they never parse them. The formats are stable, so buttons under old messages keep
working after a restart or an upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_PAYLOAD = 90  # ASCII characters; leaves room for an adapter's prefix within Discord's 100-character custom_id


class Intent(StrEnum):
    MORE = "more"
    CONTEXT = "ctx"
    SHARE = "post"
    SOURCES = "src"


@dataclass(frozen=True, slots=True)
class Decoded:
    """A pressed button: what to do, on which remembered question (``query_key``) or passage."""

    intent: Intent
    query_key: str = ""
    offset: int = 0
    passage_key: str = ""


def more(query_key: str, offset: int) -> str:
    """The next page of answers to a remembered question."""
    return f"more:{query_key}:{offset}"


def context(passage_key: str) -> str:
    """The passage around a quote."""
    return f"ctx:{passage_key}"


def share(query_key: str, offset: int) -> str:
    """The same page of answers, posted publicly by the one who asked."""
    return f"post:ask:{query_key}:{offset}"


def sources(page: int) -> str:
    """One page of the list of sources."""
    return f"src:{page}"


def fits(payload: str) -> bool:
    return len(payload) <= MAX_PAYLOAD and payload.isascii()


def decode(payload: str) -> Decoded | None:
    """What a payload made by this module asks for; None for anything else (an unknown or broken button)."""
    head, _, rest = payload.partition(":")
    if head == Intent.CONTEXT:
        return Decoded(Intent.CONTEXT, passage_key=rest) if rest else None
    if head == Intent.SOURCES:
        return Decoded(Intent.SOURCES, offset=int(rest)) if rest.isdigit() else None
    if head == Intent.SHARE:
        kind, _, rest = rest.partition(":")
        if kind != "ask":
            return None
        head = Intent.SHARE
    elif head != Intent.MORE:
        return None
    query_key, _, offset = rest.rpartition(":")
    if not query_key or not offset.isdigit():
        return None
    return Decoded(Intent(head), query_key=query_key, offset=int(offset))


def turns_page(payload: str) -> bool:
    """True for a Previous/Next button of a paged list (adapters show the page in place of the one shown)."""
    d = decode(payload)
    return d is not None and d.intent is Intent.SOURCES


def shares_publicly(payload: str) -> bool:
    """True when pressing this button posts its answer for everyone (adapters decide early how to defer)."""
    d = decode(payload)
    return d is not None and d.intent is Intent.SHARE
