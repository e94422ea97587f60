"""Plain-text transcripts: hard-wrapped lines, ``- `` speaker turns, optional ``[name]`` tags.

No times. Wrapped lines are joined; a ``- `` at a line start or after white space begins a
new turn; a leading ``[lex]`` style tag names the speaker of its turn (resolved through
the manifest's speaker map) and is removed from the quote text.
"""

from __future__ import annotations

import itertools
import re

from retrieval.formats.errors import TranscriptError
from retrieval.model import Transcript, Utterance

TURN = re.compile(r"(?:^|(?<=\s))- (?=\S)")
TAG = re.compile(r"^\[(?P<tag>[^\]\s]{1,40})\]\s*")


def parse(text: str, path: str, source_id: str, speaker_tags: dict[str, str] | None = None) -> Transcript:
    """Parse untimed plain text into turn utterances."""
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise TranscriptError(path, line, "contains a NUL byte: not a text transcript")
    tags = {k.casefold(): v for k, v in (speaker_tags or {}).items()}
    utterances: list[Utterance] = []
    # Join wrapped lines, remembering the line where each character came from.
    flat: list[str] = []
    line_of: list[int] = []
    for no, raw in enumerate(text.splitlines(), 1):
        piece = raw.strip()
        if not piece:
            continue
        if flat:
            flat.append(" ")
            line_of.append(no)
        flat.append(piece)
        line_of.extend([no] * len(piece))
    joined = "".join(flat)
    if not joined.strip():
        raise TranscriptError(path, 1, "file is empty")
    bounds = [m.start() for m in TURN.finditer(joined)]
    if not bounds or bounds[0] != 0:
        bounds.insert(0, 0)
    bounds.append(len(joined))
    for a, b in itertools.pairwise(bounds):
        chunk = joined[a:b]
        turn = chunk.startswith("- ")
        body = chunk[2:] if turn else chunk
        speaker = None
        m = TAG.match(body)
        if m:
            speaker = tags.get(m.group("tag").casefold())
            if speaker is None and m.group("tag").isalpha():
                speaker = m.group("tag").capitalize()
            body = body[m.end() :]
        body = " ".join(body.split())
        if body:
            utterances.append(Utterance(body, speaker=speaker, line=line_of[min(a, len(line_of) - 1)]))
    return Transcript(source_id=source_id, path=path, utterances=utterances, timing="none", turn_marker="- ")
