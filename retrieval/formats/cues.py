"""Timed cues (WebVTT, SRT, SBV) -> utterances, with yt-dlp rolling captions reduced.

Captions that roll (each line shown while it builds up word by word, flashed for about
10 ms, then carried as the top line of the next cue) are reduced so every spoken line
appears once, timed by the cue in which it first appeared. yt-dlp writes them as VTT;
``--convert-subs srt`` (ffmpeg) keeps the same cues in SRT.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from retrieval.model import Utterance

# A cue this short that only repeats lines already on screen is a rolling-caption flash.
FLASH_SECONDS = 0.05


@dataclass(slots=True)
class Line:
    """One payload line of a cue: visible text (markup removed), its voice and file line."""

    text: str
    voice: str | None
    number: int


@dataclass(slots=True)
class Cue:
    start: float
    end: float
    lines: list[Line] = field(default_factory=list)
    # (voice, text, line number) runs in order, for cues read as whole utterances.
    runs: list[tuple[str | None, str, int]] = field(default_factory=list)
    word_timed: bool = False
    # Whether the cue has a <v> tag, and the voice still open at its end (None after </v>).
    voiced: bool = False
    voice_after: str | None = None


def utterances(cues: list[Cue]) -> list[Utterance]:
    """Rolling captions line by line, once each; other cues as one utterance per voice run."""
    rolling = any(c.word_timed for c in cues) or has_flash_cues(cues)
    return rolling_utterances(cues) if rolling else cue_utterances(cues)


def has_flash_cues(cues: list[Cue]) -> bool:
    for before, cue in itertools.pairwise(cues):
        shown = {line.text for line in before.lines}
        texts = [line.text for line in cue.lines if line.text]
        if cue.end - cue.start <= FLASH_SECONDS and texts and all(t in shown for t in texts):
            return True
    return False


def cue_utterances(cues: list[Cue]) -> list[Utterance]:
    """One utterance per voice run in each cue."""
    out: list[Utterance] = []
    for cue in cues:
        groups: list[list] = []
        for voice, fragment, number in cue.runs:
            if groups and (groups[-1][0] == voice or not fragment.strip()):
                groups[-1][1] += fragment
            elif fragment.strip():
                groups.append([voice, fragment, number])
        for voice, fragment, number in groups:
            words = " ".join(fragment.split())
            if words:
                out.append(Utterance(words, cue.start, cue.end, voice, number))
    return out


def rolling_utterances(cues: list[Cue]) -> list[Utterance]:
    """Each line once: a cue's leading lines that repeat the previous cue's trailing lines are dropped."""
    out: list[Utterance] = []
    previous: list[str] = []
    for cue in cues:
        lines = [line for line in cue.lines if line.text]
        texts = [line.text for line in lines]
        carried = next(k for k in range(min(len(previous), len(texts)), -1, -1)
                       if k == 0 or previous[-k:] == texts[:k])
        for line in lines[carried:]:
            out.append(Utterance(line.text, cue.start, cue.end, line.voice, line.number))
        previous = texts
    return out
