"""Plain-text transcripts: hard-wrapped lines, ``- `` speaker turns, optional ``[name]`` tags.

A file whose lines open with ``Name:`` labels (the same name at least twice, see
formats.speakers) is read as labelled turns instead: each label starts a turn, other
lines continue it. No times. Wrapped lines are joined; a ``- `` at a line start or after white space begins a
new turn; a leading ``[lex]`` style tag names the speaker of its turn (resolved through
the manifest's speaker map) and is removed from the quote text.
"""

from __future__ import annotations

import itertools
import re

from retrieval.formats.errors import TranscriptError
from retrieval.formats.speakers import consistent_names, label_of
from retrieval.model import Transcript, Utterance

TURN = re.compile(r"(?:^|(?<=\s))- (?=\S)")
TAG = re.compile(r"^\[(?P<tag>[^\]\s]{1,40})\]\s*")


def parse(text: str, path: str, source_id: str, speaker_tags: dict[str, str] | None = None) -> Transcript:
    """Parse untimed plain text into turn utterances."""
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise TranscriptError(path, line, "contains a NUL byte: not a text transcript")
    labelled = _labelled_turns(text)
    if labelled:
        return Transcript(source_id=source_id, path=path, utterances=labelled, timing="none",
                          speakers=tuple(dict.fromkeys(u.speaker for u in labelled if u.speaker)))
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


def _labelled_turns(text: str) -> list[Utterance]:
    """Turns of a ``Name: words`` transcript, or [] when its lines carry no consistent labels."""
    lines = [(no, raw.strip()) for no, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    found = [label_of(line) for _, line in lines]
    names = consistent_names(found)
    labelled = sum(1 for f in found if f and f[0] in names)
    if not names or labelled < max(2, len(lines) // 20):
        return []
    turns: list[list] = []  # [speaker, line, words]
    for (no, line), f in zip(lines, found, strict=True):
        if f and f[0] in names:
            turns.append([f[0], no, [line[f[1]:].strip()]])
        elif turns:
            turns[-1][2].append(line)
        else:
            turns.append([None, no, [line]])
    return [Utterance(" ".join(" ".join(words).split()), speaker=speaker, line=no)
            for speaker, no, words in turns if " ".join(words).strip()]
