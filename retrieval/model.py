"""Typed data that flows through retrieval: files -> Transcript -> Passage -> Hit."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Utterance:
    """One stretch of speech as the transcript gives it.

    ``start``/``end`` are seconds from the start of the episode when the format carries
    them; ``line`` is the 1-based line in the source file where the text begins.
    """

    text: str
    start: float | None = None
    end: float | None = None
    speaker: str | None = None
    line: int = 0
    # Start of the section this utterance belongs to, for formats whose times are
    # section starts rather than utterance starts (seed 000's markdown).
    section_start: float | None = None
    section_end: float | None = None


@dataclass(slots=True)
class Transcript:
    """A parsed transcript file: metadata plus utterances in spoken order."""

    source_id: str
    path: str
    utterances: list[Utterance]
    title: str = ""
    url: str | None = None
    date: str | None = None
    speakers: tuple[str, ...] = ()
    description: str = ""
    # "exact": utterance times are their own; "section": times are section starts
    # (interpolate inside); "none": no times at all.
    timing: str = "none"
    # Written between utterances when they are shown together: "- " for formats whose
    # source marks speaker turns that way, so a passage reads as the file does.
    turn_marker: str = ""
    # Who published it (yt-dlp's uploader/channel) and its chapters as (start seconds, title).
    channel: str | None = None
    chapters: tuple[tuple[float, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a reply needs to say about a transcript: title, link, date, speakers."""

    source_id: str
    title: str
    url: str | None = None
    date: str | None = None
    speakers: tuple[str, ...] = ()
    description: str = ""
    timed: bool = False
    channel: str | None = None
    chapters: tuple[tuple[float, str], ...] = ()

    def chapter_at(self, seconds: float | None) -> str | None:
        """Title of the chapter playing at ``seconds``, if the source has chapters."""
        return chapter_at(self.chapters, seconds)


def chapter_at(chapters, seconds: float | None) -> str | None:
    """Title of the last chapter of ``chapters`` ((start, title), in order) starting at or before ``seconds``."""
    if seconds is None:
        return None
    title = None
    for start, name in chapters:
        if start > seconds + 1e-6:
            break
        title = name
    return title


def source_info(t: Transcript) -> SourceInfo:
    """What replies need to know about transcript ``t``."""
    return SourceInfo(t.source_id, t.title, t.url, t.date, t.speakers, t.description, t.timing != "none",
                      t.channel, tuple(t.chapters))


@dataclass(frozen=True, slots=True)
class Passage:
    """A window of consecutive words from one transcript, as indexed and shown.

    ``char_start``/``char_end`` locate the text inside the source's joined text, so
    neighbouring passages (context) and overlaps can be computed. ``position`` is the
    share of the episode (0..1) at which the passage begins, for untimed sources.
    """

    pid: int
    source_id: str
    text: str
    char_start: int
    char_end: int
    start: float | None = None
    speaker: str | None = None
    position: float = 0.0
    # Chapter of the source in which the passage starts (from yt-dlp chapters), if any.
    chapter: str | None = None

    @property
    def key(self) -> str:
        """A reference that survives index rebuilds while the source file is unchanged."""
        return f"{self.source_id}@{self.char_start}"


@dataclass(frozen=True, slots=True)
class Hit:
    """A ranked search result: the passage, its source, a deep link and highlights."""

    passage: Passage
    source: SourceInfo
    score: float
    url: str | None
    # (start, end) character spans inside passage.text that matched query terms.
    highlights: tuple[tuple[int, int], ...] = field(default=())

    @property
    def text(self) -> str:
        return self.passage.text
