"""Markdown transcripts with timed sections: ``### Speaker <small>[mm:ss]</small>``.

The optional ``<!-- summary --> … <!-- endsummary -->`` block is an editor's summary:
kept as the transcript's description, never as a quote. A line holding only a link is
taken as the episode URL. Section times are section starts (timing="section").
"""

from __future__ import annotations

import re

from retrieval.formats.errors import TranscriptError
from retrieval.model import Transcript, Utterance
from retrieval.text import is_cjk

HEADING = re.compile(r"^#{2,4}\s+(?P<speaker>[^<\[]*?)\s*(?:<small>)?\s*\[(?P<time>[^\]]*)\]\s*(?:</small>)?\s*$")
TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})(?:\.\d+)?$")
LINK = re.compile(r"https?://[^\s)\]<>\"]+")


def looks_like(text: str) -> bool:
    """True when the text has at least one timed section heading."""
    return any(HEADING.match(line.strip()) for line in text.splitlines()[:400] if line.startswith("#"))


def parse_time(value: str) -> float | None:
    m = TIME.match(value.strip())
    if not m:
        return None
    h, mm, ss = int(m.group(1) or 0), int(m.group(2)), int(m.group(3))
    if ss >= 60 or (m.group(1) and mm >= 60):
        return None
    return float(h * 3600 + mm * 60 + ss)


_TRIM = " \t,.;:!?，。；：！？、"


def repeated_prefix(prev: str, nxt: str, min_chars: int = 10, min_cjk: int = 6) -> int:
    """Length of the start of ``nxt`` that repeats the end of ``prev`` (0 if none).

    Chunked recognisers start each section with the last words of the one before; the
    repeat is dropped so every word appears once. Only whole words (or CJK characters)
    count, and punctuation at the seam may differ.
    """
    tail = prev.rstrip(_TRIM)
    for k in range(min(len(tail), len(nxt), 300), min(min_chars, min_cjk) - 1, -1):
        head = nxt[:k]
        if not tail.endswith(head) or k < (min_cjk if _cjk(head[0]) else min_chars):
            continue
        before = tail[-k - 1 : -k] if k < len(tail) else " "
        after = nxt[k : k + 1]
        if (not before.isalnum() or _cjk(head[0])) and (not after.isalnum() or _cjk(head[-1])):
            while k < len(nxt) and nxt[k] in _TRIM:
                k += 1
            return k
    return 0


_cjk = is_cjk


def parse(text: str, path: str, source_id: str) -> Transcript:
    """Parse a sectioned markdown transcript."""
    lines = text.splitlines()
    description: list[str] = []
    url: str | None = None
    sections: list[tuple[str, float, int, list[str]]] = []
    in_summary = False
    for no, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("<!--") and "endsummary" not in line and "summary" in line:
            in_summary = True
            continue
        if in_summary:
            if "endsummary" in line:
                in_summary = False
            elif line:
                description.append(line)
            continue
        if line.startswith("#"):
            m = HEADING.match(line)
            if not m:
                if sections:
                    sections[-1][3].append(line.lstrip("# "))
                continue
            start = parse_time(m.group("time"))
            if start is None:
                raise TranscriptError(path, no, f"section time {m.group('time')!r} is not mm:ss or hh:mm:ss")
            if sections and start < sections[-1][1]:
                raise TranscriptError(path, no, f"section time {m.group('time')} is earlier than the previous section")
            sections.append((m.group("speaker").strip() or None, start, no, []))
            continue
        if not sections:
            found = LINK.search(line)
            if found and url is None:
                url = found.group(0)
            continue
        if line:
            sections[-1][3].append(line)
    if in_summary:
        raise TranscriptError(path, len(lines), "summary block is never closed (missing <!-- endsummary -->)")
    if not sections:
        raise TranscriptError(path, 1, "no '### Speaker [mm:ss]' section headings found")
    utterances: list[Utterance] = []
    for i, (speaker, start, no, body) in enumerate(sections):
        end = sections[i + 1][1] if i + 1 < len(sections) else None
        body_text = " ".join(" ".join(body).split())
        if utterances:
            body_text = body_text[repeated_prefix(utterances[-1].text, body_text) :]
        if body_text:
            utterances.append(
                Utterance(body_text, start, end, speaker, no + 1, section_start=start, section_end=end)
            )
    return Transcript(
        source_id=source_id,
        path=path,
        utterances=utterances,
        url=url,
        description="\n".join(description),
        speakers=tuple(dict.fromkeys(s for s, *_ in sections if s)),
        timing="section",
    )


# ``**Name:** words`` or ``**Name**: words`` opening a paragraph: a speaker turn.
BOLD_TURN = re.compile(r"^\*\*(?P<name>[^*\n]{1,40}?)(?::\*\*|\*\*:)[ \t]*(?P<rest>\S.*)$")
_MD_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()\s]|\([^()\s]*\))*\)")
_EMPHASIS = re.compile(r"(\*\*|__|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w))")


def _turn_names(text: str) -> dict[str, int]:
    from retrieval.formats.speakers import label_of

    counts: dict[str, int] = {}
    for line in text.splitlines():
        m = BOLD_TURN.match(line.strip())
        if m and label_of(f"{m['name']}: {m['rest']}"):
            counts[m["name"].strip()] = counts.get(m["name"].strip(), 0) + 1
    return {n: c for n, c in counts.items() if c >= 2}


def has_bold_turns(text: str) -> bool:
    """True when paragraphs open with ``**Name:**`` labels, the same name at least twice."""
    return bool(_turn_names(text))


def parse_turns(text: str, path: str, source_id: str) -> Transcript:
    """Parse an untimed Markdown transcript of ``**Name:** text`` turns.

    Everything before the first turn (show notes, links) is the description, never a
    quote. Paragraphs without a label continue the current speaker's turn. A first-line
    ``# Heading`` is the title.
    """
    names = _turn_names(text)
    lines = text.splitlines()
    title = ""
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("# "):
        title = first[2:].strip()
    description: list[str] = []
    utterances: list[Utterance] = []
    speaker: str | None = None
    for no, raw in enumerate(lines, 1):
        line = raw.strip()
        m = BOLD_TURN.match(line)
        if m and m["name"].strip() in names:
            speaker = m["name"].strip()
            body = m["rest"]
        elif speaker is None:
            if line and not line.startswith("# "):
                description.append(_plain(line))
            continue
        else:
            body = line
        body = _plain(body)
        if body:
            utterances.append(Utterance(body, speaker=speaker, line=no))
    if not utterances:
        raise TranscriptError(path, 1, "no '**Name:** text' turns found")
    return Transcript(
        source_id=source_id,
        path=path,
        utterances=utterances,
        title=title,
        description="\n".join(d for d in description if d),
        speakers=tuple(dict.fromkeys(u.speaker for u in utterances if u.speaker)),
        timing="none",
    )


def _plain(line: str) -> str:
    """Markdown inline markup removed: links keep their text, emphasis marks go."""
    line = _MD_LINK.sub(lambda m: m.group(1), line)
    return " ".join(_EMPHASIS.sub("", line).split())


def plain_text(text: str) -> str:
    """A Markdown document as plain lines: code blocks, headings' ``#``, emphasis and link targets removed."""
    out = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else _plain(re.sub(r"^\s*#{1,6}\s+", "", line)))
    return "\n".join(out)
