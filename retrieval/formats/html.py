"""HTML transcripts (Podcasting 2.0 ``text/html``): ``<cite>Speaker:</cite> <time>0:00</time> <p>words</p>``.

The podcast namespace's HTML transcript marks each monologue with an optional ``<cite>``
(speaker), an optional ``<time>`` (its start) and a ``<p>`` (the words). Other HTML is read as
its visible text, one utterance per block (paragraph, list item, heading, ``<br>`` line).
Times are monologue starts (timing="section", like timed Markdown) when every block has one;
otherwise the transcript is untimed. Script, style and head content is never read.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from retrieval.formats.errors import TranscriptError
from retrieval.model import Transcript, Utterance

_BLOCKS = frozenset("p div li dd dt h1 h2 h3 h4 h5 h6 blockquote section article tr pre".split())
_HIDDEN = frozenset("script style head template noscript title".split())
_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?$")


def parse_time(value: str) -> float | None:
    """``1:02``, ``01:02:03`` or ``1:02.5`` in seconds; None when it is not a time."""
    m = _TIME.match(value.strip())
    if not m:
        return None
    h, mm, ss = int(m.group(1) or 0), int(m.group(2)), int(m.group(3))
    if ss >= 60 or (m.group(1) and mm >= 60):
        return None
    frac = float(f"0.{m.group(4)}") if m.group(4) else 0.0
    return h * 3600 + mm * 60 + ss + frac


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str | None, float | None, int, str]] = []  # speaker, start, line, text
        self.speaker: str | None = None
        self.start: float | None = None
        self.bad_time: tuple[int, str] | None = None
        self._hidden = 0
        self._in: str | None = None  # "cite" or "time" while inside one
        self._small: list[str] = []
        self._text: list[str] = []
        self._line = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in ("cite", "time"):
            self._flush()
            self._in, self._small = tag, []
            if tag == "time":
                stamp = dict(attrs).get("datetime")
                if stamp and parse_time(stamp) is not None:
                    self._small = [stamp]
                    self._in = "time-attr"
        elif tag in _BLOCKS or tag == "br":
            self._flush()

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag == "br":
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "cite" and self._in == "cite":
            name = " ".join("".join(self._small).split()).rstrip(" :：").strip()
            self.speaker = name or None
            self._in = None
        elif tag == "time" and self._in in ("time", "time-attr"):
            raw = " ".join("".join(self._small).split())
            value = parse_time(raw)
            if value is None and raw and self.bad_time is None:
                self.bad_time = (self.getpos()[0], raw)
            self.start = value
            self._in = None
        elif tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._in == "time-attr":
            return
        if self._in:
            self._small.append(data)
            return
        if not self._text and data.strip():
            self._line = self.getpos()[0] + data[: len(data) - len(data.lstrip())].count("\n")
        self._text.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        self._text = []
        if text:
            self.blocks.append((self.speaker, self.start, self._line, text))
            self.start = None  # a time belongs to one monologue; a speaker carries on


def parse(text: str, path: str, source_id: str) -> Transcript:
    """Parse an HTML transcript; raises TranscriptError for a bad ``<time>`` or times that run backwards."""
    reader = _Reader()
    reader.feed(text)
    reader.close()
    reader._flush()
    if reader.bad_time is not None:
        line, raw = reader.bad_time
        raise TranscriptError(path, line, f"<time>{raw}</time> is not m:ss or h:mm:ss")
    blocks = reader.blocks
    timed = bool(blocks) and all(start is not None for _, start, _, _ in blocks)
    utterances: list[Utterance] = []
    for i, (speaker, start, line, words) in enumerate(blocks):
        if not timed:
            utterances.append(Utterance(words, None, None, speaker, line))
            continue
        if utterances and start < utterances[-1].start:
            raise TranscriptError(path, line, "monologue time is earlier than the previous one")
        end = blocks[i + 1][1] if i + 1 < len(blocks) else None
        utterances.append(Utterance(words, start, end, speaker, line, section_start=start, section_end=end))
    return Transcript(
        source_id=source_id,
        path=path,
        utterances=utterances,
        speakers=tuple(dict.fromkeys(s for s, *_ in blocks if s)),
        timing="section" if timed else "none",
    )
