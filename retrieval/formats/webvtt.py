"""WebVTT transcripts (including yt-dlp's rolling YouTube captions) -> Transcript.

Cues become utterances with exact start/end times; ``<v Speaker>`` voice spans give the
speaker. Captions that roll (each line shown while it builds up word by word, flashed for
about 10 ms, then carried as the top line of the next cue) are reduced so every spoken
line appears once, timed by the cue in which it first appeared.
"""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass

from retrieval.formats.errors import TranscriptError
from retrieval.model import Transcript, Utterance

_NEWLINE = re.compile(r"\r\n|\r|\n")
_HEADER = re.compile(r"WEBVTT(?:[ \t].*)?")
_TIMESTAMP = r"(?:\d{2,}:)?[0-5]\d:[0-5]\d\.\d{3}"
_TIMING = re.compile(rf"[ \t]*({_TIMESTAMP})[ \t]+-->[ \t]+({_TIMESTAMP})(?:[ \t].*)?")
_TAG = re.compile(r"<([^<>\n]*)>")
_SKIPPED_BLOCKS = ("NOTE", "STYLE", "REGION")
# A cue this short that only repeats lines already on screen is a rolling-caption flash.
_FLASH_SECONDS = 0.05


@dataclass(slots=True)
class _Line:
    """One payload line of a cue: visible text (tags removed, entities decoded)."""

    text: str
    voice: str | None
    number: int


@dataclass(slots=True)
class _Cue:
    start: float
    end: float
    lines: list[_Line]
    # (voice, text, line number) runs in order, for cues read as whole utterances.
    runs: list[tuple[str | None, str, int]]
    word_timed: bool


def parse(text: str, path: str, source_id: str) -> Transcript:
    """Parse WebVTT text; raises TranscriptError naming the line of malformed input."""
    cues = _read_cues(_NEWLINE.split(text.removeprefix("\ufeff")), path)
    rolling = any(c.word_timed for c in cues) or _has_flash_cues(cues)
    utterances = _rolling_utterances(cues) if rolling else _cue_utterances(cues)
    utterances.sort(key=lambda u: u.start or 0.0)
    speakers = tuple(dict.fromkeys(u.speaker for u in utterances if u.speaker))
    return Transcript(source_id, path, utterances, speakers=speakers, timing="exact")


def seconds(timestamp: str) -> float:
    """``HH:MM:SS.mmm`` or ``MM:SS.mmm`` -> seconds, computed from whole milliseconds."""
    clock, millis = timestamp.split(".")
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return (total * 1000 + int(millis)) / 1000


def _read_cues(lines: list[str], path: str) -> list[_Cue]:
    if not _HEADER.fullmatch(lines[0]):
        raise TranscriptError(path, 1, f"missing 'WEBVTT' header, file starts with '{lines[0][:40]}'")
    cues: list[_Cue] = []
    for first, block in _blocks(lines):
        if first == 1 or (block[0].split() or [''])[0] in _SKIPPED_BLOCKS:
            continue  # the header block, comments, style sheets, regions
        timing_at = 0 if "-->" in block[0] else 1
        if timing_at >= len(block) or "-->" not in block[timing_at]:
            raise TranscriptError(path, first, f"expected a cue timing line 'HH:MM:SS.mmm --> HH:MM:SS.mmm', "
                                               f"got '{block[0]}'")
        cues.append(_cue(block[timing_at], block[timing_at + 1:], first + timing_at, path))
    return cues


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Split on empty lines (a line holding only spaces is cue text, as yt-dlp writes it)."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for number, line in enumerate(lines, start=1):
        if line:
            if not current:
                blocks.append((number, current))
            current.append(line)
        elif current:
            current = []
    return blocks


def _cue(timing: str, payload: list[str], number: int, path: str) -> _Cue:
    match = _TIMING.fullmatch(timing)
    if not match:
        raise TranscriptError(path, number, f"cue timing '{timing.strip()}' is not HH:MM:SS.mmm --> HH:MM:SS.mmm")
    start, end = seconds(match[1]), seconds(match[2])
    if end < start:
        raise TranscriptError(path, number, f"cue ends ({match[2]}) before it starts ({match[1]})")
    cue = _Cue(start, end, [], [], word_timed=False)
    voice: str | None = None
    for offset, raw in enumerate(payload, start=1):
        line_voice = voice
        pieces: list[str] = []
        position = 0
        for tag in _TAG.finditer(raw):
            pieces.append(_visible(raw[position:tag.start()]))
            cue.runs.append((voice, pieces[-1], number + offset))
            position = tag.end()
            voice, timed = _apply_tag(tag[1], voice)
            cue.word_timed |= timed
            if not "".join(pieces).strip():
                line_voice = voice
        pieces.append(_visible(raw[position:]))
        cue.runs.append((voice, pieces[-1] + " ", number + offset))
        cue.lines.append(_Line(" ".join("".join(pieces).split()), line_voice, number + offset))
    return cue


def _visible(fragment: str) -> str:
    return html.unescape(fragment).replace("\u200e", "").replace("\u200f", "")


def _apply_tag(tag: str, voice: str | None) -> tuple[str | None, bool]:
    """Return the voice in effect after ``<tag>`` and whether the tag was a word timestamp."""
    if tag[:1].isdigit():
        return voice, True
    name, _, annotation = tag.replace("\t", " ").partition(" ")
    name = name.split(".", 1)[0]
    if name == "v":
        return " ".join(annotation.split()) or None, False
    if name == "/v":
        return None, False
    return voice, False


def _has_flash_cues(cues: list[_Cue]) -> bool:
    for before, cue in itertools.pairwise(cues):
        shown = {line.text for line in before.lines}
        texts = [line.text for line in cue.lines if line.text]
        if cue.end - cue.start <= _FLASH_SECONDS and texts and all(t in shown for t in texts):
            return True
    return False


def _cue_utterances(cues: list[_Cue]) -> list[Utterance]:
    """One utterance per voice run in each cue."""
    utterances: list[Utterance] = []
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
                utterances.append(Utterance(words, cue.start, cue.end, voice, number))
    return utterances


def _rolling_utterances(cues: list[_Cue]) -> list[Utterance]:
    """Each line once: a cue's leading lines that repeat the previous cue's trailing lines are dropped."""
    utterances: list[Utterance] = []
    previous: list[str] = []
    for cue in cues:
        lines = [line for line in cue.lines if line.text]
        texts = [line.text for line in lines]
        carried = next(k for k in range(min(len(previous), len(texts)), -1, -1)
                       if k == 0 or previous[-k:] == texts[:k])
        for line in lines[carried:]:
            utterances.append(Utterance(line.text, cue.start, cue.end, line.voice, line.number))
        previous = texts
    return utterances
