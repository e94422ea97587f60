"""Reply -> console text, wrapped with ``textwrap`` at the terminal width.

Lines break only between words (never inside a word or a URL: a URL longer than the width stands whole on its
own line), wrapped lines keep their indent, and matched words are bolded after wrapping so escape codes never
count towards the width. Cards are numbered from ``Reply.first_number`` ("Results 4–6" shows 4., 5., 6.).
"""

from __future__ import annotations

import textwrap

from bot.plaintext import BOLD, RESET, attribution, mark
from bot.reply import QuoteCard, Reply

Spans = tuple[tuple[int, int], ...]


def render(reply: Reply, width: int | None = None, ansi: bool = False) -> str:
    """The whole reply; ``width`` None leaves lines unwrapped (output to a pipe or file)."""
    blocks = [_paragraphs(reply.text, width)] if reply.text else []
    numbered = len(reply.cards) > 1 or reply.first_number > 1
    for i, c in enumerate(reply.cards):
        blocks.append(render_card(c, reply.first_number + i if numbered else None, width, ansi))
    return "\n\n".join(blocks)


def render_card(card: QuoteCard, number: int | None, width: int | None, ansi: bool) -> str:
    head = f"{number}. " if number is not None else ""
    quote = f"{head}“{card.text}”"
    shift = len(head) + 1
    spans = tuple((s + shift, e + shift) for s, e in card.highlights) if ansi else ()
    lines = wrap(quote, width, " " * 3, spans)
    lines += wrap(f"   — {attribution(card)}", width, " " * 5)
    if card.url:
        lines.append(f"   {card.url}")
    return "\n".join(lines)


def wrap(text: str, width: int | None, indent: str = "", spans: Spans = ()) -> list[str]:
    """``text`` (one paragraph) as lines of at most ``width`` columns where words allow, later lines indented by
    ``indent``; ``spans`` of ``text`` are bolded."""
    if width is None or len(text) <= width:
        return [mark(text, spans, BOLD, RESET) if spans else text]
    wrapper = textwrap.TextWrapper(width=width, subsequent_indent=indent, break_long_words=False,
                                   break_on_hyphens=False, expand_tabs=False)
    # replace_whitespace turns each white-space character into one space, so every wrapped line is found
    # again, at its offset, in this copy of the text: the spans are then moved onto the lines.
    flat = "".join(" " if ch.isspace() else ch for ch in text)
    lines, pos = [], 0
    for n, line in enumerate(wrapper.wrap(text)):
        body = line[len(indent):] if n else line
        start = flat.find(body, pos)
        if start < 0:  # cannot happen with the options above; show the line unmarked rather than fail
            lines.append(line)
            continue
        end = start + len(body)
        pos = end
        inner = tuple((max(s, start) - start, min(e, end) - start) for s, e in spans if s < end and e > start)
        lines.append(line[: len(line) - len(body)] + (mark(body, inner, BOLD, RESET) if inner else body))
    return lines


def _paragraphs(text: str, width: int | None) -> str:
    """Each line of a notice wrapped on its own, continuing under its own indent (list items under their text)."""
    out: list[str] = []
    for line in text.splitlines():
        lead = len(line) - len(line.lstrip())
        indent = " " * (lead + (2 if line.lstrip().startswith("• ") else 2 if lead else 0))
        out += wrap(line, width, indent) if line.strip() else [""]
    return "\n".join(out)
