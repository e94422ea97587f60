"""A corpus: a folder of transcripts plus an optional ``corpus.toml`` manifest.

The manifest gives each file an id, title, URL, date and speakers, and holds the
corpus glossary (canonical term -> ASR aliases). Files without an entry still index,
titled from their file name, with no link.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from retrieval.formats import SUFFIXES, TranscriptError, parse_file
from retrieval.links import normalize_url
from retrieval.model import Transcript

SKIP_NAMES = re.compile(r"^(readme|license|changelog|corpus)\b", re.I)


@dataclass(frozen=True, slots=True)
class SourceEntry:
    file: str
    id: str | None = None
    title: str | None = None
    url: str | None = None
    date: str | None = None
    speakers: tuple[str, ...] = ()
    # False when the file's speaker labels are known to be wrong (e.g. every heading
    # names the guest although the host speaks too): passages then carry no speaker.
    speaker_labels: bool = True
    speaker_tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Manifest:
    sources: dict[str, SourceEntry] = field(default_factory=dict)
    glossary: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # speaker -> other ways questions name them (other scripts, surnames)
    speaker_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class Corpus:
    transcripts: list[Transcript]
    glossary: dict[str, tuple[str, ...]]
    fingerprint: str
    speaker_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def speaker_names(self) -> list[str]:
        """Every name a question may use for a speaker of this corpus."""
        names = [n for t in self.transcripts for n in t.speakers]
        names += [a for aliases in self.speaker_aliases.values() for a in aliases]
        return list(dict.fromkeys(names))


def transcript_files(corpus_dir: Path) -> list[Path]:
    """The transcript files of a folder, in name order."""
    if not corpus_dir.is_dir():
        raise TranscriptError(str(corpus_dir), 0, "corpus folder does not exist")
    return sorted(
        p for p in corpus_dir.iterdir()
        if p.is_file() and p.suffix.lower() in SUFFIXES and not SKIP_NAMES.match(p.name) and not p.name.startswith(".")
    )


def stamp(corpus_dir: Path, manifest_path: Path | None) -> tuple:
    """Names, sizes and modification times: a cheap check before hashing contents."""
    files = transcript_files(corpus_dir)
    if manifest_path is not None and manifest_path.is_file():
        files.append(manifest_path)
    return tuple((p.name, st.st_size, st.st_mtime_ns) for p in files for st in (p.stat(),))


def fingerprint(corpus_dir: Path, manifest_path: Path | None, salt: str = "") -> str:
    """A content hash of every transcript file and the manifest."""
    h = hashlib.sha256(salt.encode())
    for p in transcript_files(corpus_dir):
        h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    if manifest_path is not None and manifest_path.is_file():
        h.update(b"manifest\0" + manifest_path.read_bytes())
    return h.hexdigest()[:24]


def read_manifest(path: Path | None) -> Manifest:
    """Parse ``corpus.toml``; a missing file is an empty manifest."""
    if path is None or not path.is_file():
        return Manifest()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise TranscriptError(str(path), int(m.group(1)) if m else 0, f"invalid TOML: {e}") from None
    except UnicodeDecodeError:
        raise TranscriptError(str(path), 0, "manifest is not UTF-8 text") from None
    sources: dict[str, SourceEntry] = {}
    for i, raw in enumerate(data.get("source", [])):
        where = f"[[source]] #{i + 1}"
        if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
            raise TranscriptError(str(path), _line_of(path, where, i), f"{where} needs a file = \"name\" entry")
        try:
            entry = SourceEntry(
                file=raw["file"],
                id=_opt_str(raw, "id"),
                title=_opt_str(raw, "title"),
                url=normalize_url(_opt_str(raw, "url")),
                date=str(raw["date"]) if "date" in raw else None,
                speakers=tuple(str(s) for s in raw.get("speakers", ())),
                speaker_labels=bool(raw.get("speaker_labels", True)),
                speaker_tags={str(k): str(v) for k, v in raw.get("speaker_tags", {}).items()},
            )
        except (TypeError, ValueError, AttributeError) as e:
            raise TranscriptError(str(path), _line_of(path, raw["file"], i), f"{where}: {e}") from None
        if entry.id is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", entry.id):
            raise TranscriptError(str(path), _line_of(path, entry.id, i), f"source id {entry.id!r}: use 1-40 letters, "
                                  "digits, '.', '_' or '-'")
        sources[entry.file] = entry
    glossary: dict[str, tuple[str, ...]] = {}
    for term, aliases in data.get("glossary", {}).items():
        if isinstance(aliases, str):
            aliases = [aliases]
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise TranscriptError(str(path), _line_of(path, term, 0), f"glossary entry {term!r}: expected a list of "
                                  "alias strings")
        glossary[term] = tuple(a.strip() for a in aliases)
    speaker_aliases: dict[str, tuple[str, ...]] = {}
    for name, aliases in data.get("speakers", {}).items():
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise TranscriptError(str(path), _line_of(path, name, 0), f"speakers entry {name!r}: expected a list of "
                                  "names")
        speaker_aliases[name] = tuple(aliases)
    return Manifest(sources, glossary, speaker_aliases)


def load_corpus(corpus_dir: Path, manifest_path: Path | None, salt: str = "") -> Corpus:
    """Parse every transcript of the folder; the first broken one raises TranscriptError."""
    manifest = read_manifest(manifest_path)
    transcripts = []
    seen: dict[str, str] = {}
    for p in transcript_files(corpus_dir):
        entry = manifest.sources.get(p.name, SourceEntry(file=p.name))
        sid = entry.id or re.sub(r"[^A-Za-z0-9_.-]+", "-", p.stem)[:40]
        if sid in seen:
            raise TranscriptError(str(p), 0, f"source id {sid!r} is already used by {seen[sid]}")
        seen[sid] = p.name
        t = parse_file(p, sid, entry.speaker_tags)
        speakers = entry.speakers or t.speakers
        utterances = t.utterances if entry.speaker_labels else [replace(u, speaker=None) for u in t.utterances]
        transcripts.append(
            replace(
                t,
                utterances=utterances,
                title=entry.title or t.title or _title_from_name(p.stem),
                url=entry.url or normalize_url(t.url),
                date=entry.date or t.date,
                speakers=tuple(speakers),
            )
        )
    if not transcripts:
        raise TranscriptError(str(corpus_dir), 0, f"no transcript files ({', '.join(SUFFIXES)}) in this folder")
    fp = fingerprint(corpus_dir, manifest_path, salt)
    return Corpus(transcripts, manifest.glossary, fp, manifest.speaker_aliases)


def _title_from_name(stem: str) -> str:
    return re.sub(r"[_-]+", " ", stem).strip() or stem


def _opt_str(raw: dict, key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _line_of(path: Path, needle: str, nth: int) -> int:
    """Best-effort line number of ``needle`` in the manifest for error messages."""
    hits = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line]
    return hits[min(nth, len(hits) - 1)] if hits else 0
