"""YouTube SubViewer (.sbv) captions -> Transcript: ``H:MM:SS.mmm,H:MM:SS.mmm`` then text lines.

YouTube Studio exports captions this way. A cue whose end is before its start (seen in
real exports) keeps its start and is given no end, rather than losing its words.
"""

from __future__ import annotations

import re

from retrieval.formats import cues as cuelib
from retrieval.formats.errors import TranscriptError
from retrieval.formats.speakers import apply_labels
from retrieval.model import Transcript, Utterance

_NEWLINE = re.compile(r"\r\n|\r|\n")
_STAMP = r"(\d{1,3}):([0-5]\d):([0-5]\d)\.(\d{3})"
_TIMING = re.compile(rf"^\s*{_STAMP},{_STAMP}\s*$")
_LOOSE = re.compile(r"^\s*\d+:[\w:.]+,[\w:.]+\s*$")


def parse(text: str, path: str, source_id: str) -> Transcript:
    """Parse SBV text; raises TranscriptError naming the line of a malformed timing line."""
    lines = _NEWLINE.split(text.removeprefix("\ufeff"))
    cues: list[cuelib.Cue] = []
    for i, line in enumerate(lines):
        m = _TIMING.match(line)
        if m:
            g = [int(x) for x in m.groups()]
            start = ((g[0] * 60 + g[1]) * 60 + g[2]) + g[3] / 1000
            end = ((g[4] * 60 + g[5]) * 60 + g[6]) + g[7] / 1000
            cues.append(cuelib.Cue(round(start, 3), round(end, 3)))
        elif _LOOSE.match(line) and (i == 0 or not lines[i - 1].strip()):
            raise TranscriptError(path, i + 1, f"caption timing '{line.strip()}' is not H:MM:SS.mmm,H:MM:SS.mmm")
        elif line.strip():
            if not cues:
                raise TranscriptError(path, i + 1, f"expected a caption timing line 'H:MM:SS.mmm,H:MM:SS.mmm', "
                                                   f"got '{line.strip()[:60]}'")
            words = " ".join(line.split())
            cues[-1].lines.append(cuelib.Line(words, None, i + 1))
            cues[-1].runs.append((None, words + " ", i + 1))
    if not cues:
        raise TranscriptError(path, 1, "no caption timing line 'H:MM:SS.mmm,H:MM:SS.mmm' in this file")
    utterances = [u if u.end is None or u.end >= (u.start or 0) else
                  Utterance(u.text, u.start, None, u.speaker, u.line) for u in cuelib.utterances(cues)]
    utterances, _ = apply_labels(utterances)
    utterances.sort(key=lambda u: u.start or 0.0)
    speakers = tuple(dict.fromkeys(u.speaker for u in utterances if u.speaker))
    return Transcript(source_id, path, utterances, speakers=speakers, timing="exact")
