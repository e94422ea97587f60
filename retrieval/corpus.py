"""A corpus: a folder of transcripts plus an optional ``corpus.toml`` manifest.

The manifest gives each file an id, title, URL, date and speakers, and holds the
corpus glossary (canonical term -> ASR aliases). Files without an entry still index:
title, link, date, channel and chapters then come from a yt-dlp ``.info.json`` beside
the file, the file's own header, or the file name (yt-dlp's ``Title [VIDEO_ID]``).

``scan_corpus`` lists a folder cheaply; ``load_source`` parses one file; ``load_corpus``
does both for the whole folder, leaving broken files out (``Corpus.left_out``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from retrieval.feeds.sidecar import EPISODE_SUFFIX, read_episode_json
from retrieval.formats import SUFFIXES, TranscriptError, parse_file
from retrieval.formats.metadata import INFO_SUFFIX, SourceMeta, from_name, media_stem, read_info_json, readable_title
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
class FeedEntry:
    """A podcast feed to follow (``[[feed]]`` in corpus.toml); ``name`` overrides the feed's own title."""

    url: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    sources: dict[str, SourceEntry] = field(default_factory=dict)
    glossary: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # speaker -> other ways questions name them (other scripts, surnames)
    speaker_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    feeds: tuple[FeedEntry, ...] = ()


@dataclass(slots=True)
class Corpus:
    transcripts: list[Transcript]
    glossary: dict[str, tuple[str, ...]]
    fingerprint: str
    speaker_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Every broken file, one error each (``file:line: reason``); they are not in ``transcripts``.
    left_out: list[TranscriptError] = field(default_factory=list)
    # Files of the folder that are neither transcripts nor known sidecars.
    unsupported: list[str] = field(default_factory=list)
    # Manifest-level problems that did not stop the files from indexing.
    problems: list[TranscriptError] = field(default_factory=list)

    def speaker_names(self) -> list[str]:
        """Every name a question may use for a speaker of this corpus."""
        names = [n for t in self.transcripts for n in t.speakers]
        names += [a for aliases in self.speaker_aliases.values() for a in aliases]
        return list(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One transcript file of a corpus folder, before parsing."""

    path: Path
    source_id: str
    entry: SourceEntry
    sidecars: tuple[Path, ...] = ()
    # Path relative to the corpus folder, with '/' separators (the manifest's ``file``).
    name: str = ""

    def stamp(self) -> tuple[tuple[int, int], ...]:
        """Cheap change check: ``(size, mtime_ns)`` of the file and of each sidecar."""
        out = []
        for p in (self.path, *self.sidecars):
            try:
                st = p.stat()
                out.append((st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((-1, -1))
        return tuple(out)

    def content_hash(self) -> str:
        """sha256 of the file's bytes, its sidecars' bytes and its manifest entry."""
        h = hashlib.sha256()
        for p in (self.path, *self.sidecars):
            h.update(p.name.encode() + b"\0")
            try:
                with p.open("rb") as f:
                    h.update(hashlib.file_digest(f, "sha256").digest())
            except OSError as e:
                h.update(f"unreadable:{e.errno}".encode())
        h.update(repr(self.entry).encode())
        return h.hexdigest()


@dataclass(frozen=True, slots=True)
class CorpusScan:
    """A corpus folder listed (not parsed): its manifest, transcript files, and what else is there."""

    manifest: Manifest
    files: list[SourceFile]
    unsupported: list[str] = field(default_factory=list)
    problems: list[TranscriptError] = field(default_factory=list)


def scan_corpus(corpus_dir: Path, manifest_path: Path | None) -> CorpusScan:
    """List a corpus folder (nested folders included) without parsing any transcript.

    Raises TranscriptError when the folder does not exist. A broken manifest is one of
    ``problems`` (the files then index without it).
    """
    if not corpus_dir.is_dir():
        raise TranscriptError(str(corpus_dir), 0, "corpus folder does not exist")
    problems: list[TranscriptError] = []
    try:
        manifest = read_manifest(manifest_path)
    except TranscriptError as e:
        problems.append(e)
        manifest = Manifest()
    manifest_file = manifest_path.resolve() if manifest_path is not None else None
    transcripts: list[tuple[str, Path]] = []
    infos: dict[str, Path] = {}
    unsupported: list[str] = []
    for p in _walk(corpus_dir):
        name = p.relative_to(corpus_dir).as_posix()
        lower = p.name.lower()
        if (manifest_file is not None and p.resolve() == manifest_file) or lower == "corpus.toml":
            continue
        if lower.endswith(INFO_SUFFIX):
            infos[_sidecar_key(name)] = p
        elif lower.endswith(EPISODE_SUFFIX):  # a feed episode's metadata (retrieval.feeds)
            infos[_sidecar_key(name[: -len(EPISODE_SUFFIX)] + ".episode")] = p
        elif p.suffix.lower() in SUFFIXES and not SKIP_NAMES.match(p.name):
            transcripts.append((name, p))
        else:
            unsupported.append(str(p))
    ids = _source_ids([name for name, _ in transcripts], manifest, problems, corpus_dir)
    files = []
    for name, p in transcripts:
        entry = manifest.sources.get(name) or manifest.sources.get(p.name) or SourceEntry(file=name)
        info = infos.get(_sidecar_key(name))
        files.append(SourceFile(p, ids[name], entry, (info,) if info else (), name))
    return CorpusScan(manifest, files, unsupported, problems)


def _walk(corpus_dir: Path) -> list[Path]:
    """Every file under the folder in name order, skipping hidden files and folders."""
    out: list[Path] = []
    for root, dirs, names in os.walk(corpus_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        out.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
    return sorted(out, key=lambda p: p.relative_to(corpus_dir).as_posix())


def _sidecar_key(name: str) -> str:
    """Transcript ``a/Talk [id].en.vtt`` and sidecar ``a/Talk [id].info.json`` share this key."""
    folder, _, base = name.rpartition("/")
    return f"{folder}/{media_stem(base)}"


MAX_ID = 64


def _source_ids(names: list[str], manifest: Manifest, problems: list[TranscriptError], corpus_dir: Path
                ) -> dict[str, str]:
    """A unique id per file: the manifest's, else one made from the relative path.

    Made ids keep letters, digits, '.', '_' and '-'. Files whose ids would clash (``x.srt``
    beside ``x.vtt``, ``a/b.srt`` beside ``a-b.srt``) keep their extension; a long or still
    clashing id ends in a short hash of the path, so ids never depend on truncation luck.
    """
    ids: dict[str, str] = {}
    taken: dict[str, str] = {}
    for name in names:
        entry = manifest.sources.get(name) or manifest.sources.get(name.rpartition("/")[2])
        if entry is not None and entry.id:
            if entry.id in taken:
                problems.append(TranscriptError(str(corpus_dir / name), 0, f"source id {entry.id!r} is already used "
                                                f"by {taken[entry.id]}; this file gets an id of its own"))
                continue
            ids[name] = entry.id
            taken[entry.id] = name
    made = [n for n in names if n not in ids]
    levels = {n: 0 for n in made}
    while True:
        proposed = {n: _made_id(n, levels[n]) for n in made}
        counts: dict[str, int] = {}
        for sid in proposed.values():
            counts[sid] = counts.get(sid, 0) + 1
        clashing = [n for n, sid in proposed.items() if (counts[sid] > 1 or sid in taken) and levels[n] < 2]
        if not clashing:
            break
        for n in clashing:
            levels[n] += 1
    ids.update(proposed)
    return ids


def _made_id(name: str, level: int) -> str:
    path = Path(name)
    base = name[: -len(path.suffix)] if level == 0 and path.suffix else name
    sid = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "source"
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    if level >= 2:
        return f"{sid[: MAX_ID - 9]}-{digest}"
    if len(sid) > MAX_ID:
        return f"{sid[: MAX_ID - 9]}-{digest}"
    return sid


def transcript_files(corpus_dir: Path) -> list[Path]:
    """The transcript files of a folder (nested folders included), in name order."""
    return [f.path for f in scan_corpus(corpus_dir, None).files]


def stamp(corpus_dir: Path, manifest_path: Path | None) -> tuple:
    """Names, sizes and modification times of transcripts, sidecars and manifest: a cheap check before hashing."""
    scan = scan_corpus(corpus_dir, None)
    out = [(f.name, f.stamp()) for f in scan.files]
    if manifest_path is not None and manifest_path.is_file():
        st = manifest_path.stat()
        out.append(("manifest", ((st.st_size, st.st_mtime_ns),)))
    return tuple(out)


def fingerprint(corpus_dir: Path, manifest_path: Path | None, salt: str = "") -> str:
    """A content hash of every transcript file, its sidecars and the manifest."""
    h = hashlib.sha256(salt.encode())
    for f in scan_corpus(corpus_dir, None).files:
        h.update(f.name.encode() + b"\0" + f.content_hash().encode())
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
    return Manifest(sources, glossary, speaker_aliases, _feeds(path, data.get("feed", [])))


def _feeds(path: Path, raw_feeds) -> tuple[FeedEntry, ...]:
    """``[[feed]]`` entries: ``url`` (http or https) and an optional ``name``."""
    out: list[FeedEntry] = []
    for i, raw in enumerate(raw_feeds if isinstance(raw_feeds, list) else [raw_feeds]):
        where = f"[[feed]] #{i + 1}"
        url = raw.get("url") if isinstance(raw, dict) else None
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url.strip(), re.I):
            raise TranscriptError(str(path), _line_of(path, "[[feed]]", i), f"{where} needs url = \"https://…\" "
                                  "(the feed's http or https address)")
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            raise TranscriptError(str(path), _line_of(path, url, 0), f"{where}: name must be a string")
        out.append(FeedEntry(url.strip(), (name or "").strip() or None))
    return tuple(out)


def load_source(f: SourceFile, manifest: Manifest) -> Transcript:
    """Parse one file with its sidecars and manifest entry applied; raises TranscriptError.

    Precedence for title, link, date and channel: manifest entry, then the yt-dlp
    ``.info.json`` sidecar, then the transcript's own header, then the file name.
    """
    entry = manifest.sources.get(f.name) or manifest.sources.get(f.path.name) or f.entry
    t = parse_file(f.path, f.source_id, entry.speaker_tags)
    side = SourceMeta()
    for sidecar in f.sidecars:
        side = read_episode_json(sidecar) if sidecar.name.endswith(EPISODE_SUFFIX) else read_info_json(sidecar)
    named = from_name(f.path.name)
    speakers = entry.speakers or t.speakers
    utterances = t.utterances if entry.speaker_labels else [replace(u, speaker=None) for u in t.utterances]
    if not entry.speaker_labels:
        speakers = entry.speakers
    url = entry.url or _safe_url(side.url) or _safe_url(t.url) or named.url
    return replace(
        t,
        utterances=utterances,
        title=entry.title or side.title or t.title or named.title or _title_from_name(f.path.stem),
        url=url,
        date=entry.date or side.date or t.date,
        speakers=tuple(speakers),
        channel=side.channel or t.channel,
        chapters=side.chapters or t.chapters,
    )


def load_corpus(corpus_dir: Path, manifest_path: Path | None, salt: str = "") -> Corpus:
    """Parse every transcript of the folder; broken files are left out and listed in ``Corpus.left_out``.

    Raises TranscriptError when the folder does not exist, or when no file at all could
    be indexed (the first broken file's error, or a 'no transcript files' error).
    """
    scan = scan_corpus(corpus_dir, manifest_path)
    transcripts: list[Transcript] = []
    left_out: list[TranscriptError] = []
    for f in scan.files:
        try:
            transcripts.append(load_source(f, scan.manifest))
        except TranscriptError as e:
            left_out.append(e)
    if not transcripts:
        if left_out:
            raise left_out[0]
        raise TranscriptError(str(corpus_dir), 0, f"no transcript files ({', '.join(SUFFIXES)}) in this folder")
    fp = fingerprint(corpus_dir, manifest_path, salt)
    return Corpus(transcripts, scan.manifest.glossary, fp, scan.manifest.speaker_aliases,
                  left_out=left_out, unsupported=list(scan.unsupported), problems=list(scan.problems))


def _safe_url(url: str | None) -> str | None:
    try:
        return normalize_url(url)
    except ValueError:
        return None


def _title_from_name(stem: str) -> str:
    return readable_title(stem) or stem


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
