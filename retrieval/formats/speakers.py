"""``Name:`` turn labels in subtitle and plain-text transcripts.

Many podcast transcripts mark a turn by starting it with the speaker's name and a colon
(``Bekah: Hello``, ``[SPEAKER_00]: Bonjour``) and leave the following cues of the same turn
unlabelled. A prefix counts as a label only when it looks like a name (1-4 words, each
capitalised or a ``SPEAKER_nn`` tag), is not a common sentence opener, and the same name
opens at least two turns in the file, so a one-off "Note: ..." is never taken for a
speaker; once a file is labelled that way, other labels of the same form count too, and so
does a full name whose first name labels turns (the turns of both then carry the full name).
Labels are removed from the text; unlabelled utterances carry the last label
forward; utterances before the first label have no speaker.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from retrieval.model import Utterance

_WORD = r"[A-Z\u00c0-\u024f][\w'’.\-\u00c0-\u024f]*"
_LABEL = re.compile(
    rf"^(?:>>\s*)?(?:\[(?P<tag>[A-Za-z][\w .'-]{{0,38}})\]|(?P<name>{_WORD}(?:[ ](?:{_WORD}|de|van|von|da|del|"
    rf"la|le|bin|al))*?(?:[ ]{_WORD})?))\s*:[ \t]+(?=\S)"
)
# Sentence openers and note words that are followed by a colon without naming anyone.
_NOT_NAMES = frozenset(
    "so and but well yes no note notes okay ok now then here there this that example update edit ps tip warning "
    "important also again remember step question answer chapter part http https www intro outro summary "
    "transcript transcription music applause laughter".split()
)
MAX_WORDS = 4


def label_of(text: str) -> tuple[str, int] | None:
    """The ``Name:`` label opening ``text`` (name, length of the prefix), if it looks like one."""
    m = _LABEL.match(text)
    if not m:
        return None
    name = " ".join((m["tag"] or m["name"]).split())
    words = name.split()
    if len(words) > MAX_WORDS or len(name) > 40 or words[0].casefold().strip(".") in _NOT_NAMES:
        return None
    if name.endswith((".", "-")) or re.fullmatch(r"[\d\W_]+", name):
        return None
    return name, m.end()


def consistent_names(found: list[tuple[str, int] | None]) -> set[str]:
    """The label names to trust: none unless some name opens two turns; then every label of that form."""
    counts = Counter(f[0] for f in found if f)
    repeated = {n for n, c in counts.items() if c >= 2}
    if not repeated:
        return set()
    tagged = {n.startswith("SPEAKER") or " " not in n for n in repeated}
    trusted = {n for n in counts if n in repeated or (n.startswith("SPEAKER") or " " not in n) in tagged}
    # a full name used once, whose first name labels turns of its own ("Bekah Hawrot Weigel:"
    # introducing the show, "Bekah:" after that)
    first_names = {n for n in trusted if " " not in n and not n.startswith("SPEAKER")}
    return trusted | {n for n in counts if " " in n and n.split()[0] in first_names}


def full_names(names: set[str]) -> dict[str, str]:
    """Each first name among ``names`` that exactly one full name of ``names`` begins with -> that full name."""
    by_first: dict[str, set[str]] = {}
    for n in names:
        if " " in n:
            by_first.setdefault(n.split()[0], set()).add(n)
    return {first: next(iter(full)) for first, full in by_first.items() if len(full) == 1 and first in names}


def apply_labels(utterances: list[Utterance]) -> tuple[list[Utterance], bool]:
    """Utterances with ``Name:`` labels turned into speakers (carried forward); True when labels were found.

    Utterances that already have a speaker are left alone, and so is a file whose
    candidate labels are not consistent (no name opening two turns).
    """
    found = [label_of(u.text) for u in utterances]
    names = consistent_names(found)
    if not names or any(u.speaker for u in utterances):
        return utterances, False
    full = full_names(names)  # one person, one name: "Bekah" turns are Bekah Hawrot Weigel's
    out: list[Utterance] = []
    current: str | None = None
    for u, f in zip(utterances, found, strict=True):
        text = u.text
        if f and f[0] in names:
            current = f[0]
            text = text[f[1]:].lstrip()
        for piece_speaker, piece in _split_inner(text, names, current):
            current = piece_speaker
            if piece:
                out.append(replace(u, text=piece, speaker=full.get(current, current) if current else None))
    return out, True


_INNER = re.compile(r"(?<=[.!?…\"”')\]])\s+(?=(?:\[)?[A-Z])")


def _split_inner(text: str, names: set[str], current: str | None) -> list[tuple[str | None, str]]:
    """Split an utterance where a known label starts a new sentence inside it (``... thanks. Dan: Hi``)."""
    pieces: list[tuple[str | None, str]] = []
    start = 0
    speaker = current
    for m in _INNER.finditer(text):
        f = label_of(text[m.end():])
        if f and f[0] in names:
            pieces.append((speaker, text[start:m.start()].strip()))
            speaker = f[0]
            start = m.end() + f[1]
    pieces.append((speaker, text[start:].strip()))
    return pieces
