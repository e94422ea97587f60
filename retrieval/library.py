"""A corpus folder's index on disk: built, updated source by source, refreshed while serving.

``update_index`` compares the folder with the live generation: a file whose size and
modification time are unchanged keeps its recorded content hash; a file whose content key
(content hash + source id) is unchanged is carried over as it is; only new and changed
files are parsed and analysed. A file that no longer parses is left out and listed, and
its last good version, if any, stays in the index. Global statistics are recomputed for
every generation, so scores always equal those of a full rebuild.

``open_searcher`` gives a Searcher that refreshes itself from the folder (and from
generations other processes publish into the same index folder).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.analyze import Analyzer, TermTable
from retrieval.corpus import CorpusScan, SourceFile, load_source, read_manifest, scan_corpus
from retrieval.formats import TranscriptError
from retrieval.index import (
    FORMAT_VERSION,
    BM25Params,
    Carried,
    Index,
    IndexStore,
    NeedsFullBuild,
    Sink,
    delta_share,
    generation_meta,
    load,
    write_delta,
    write_generation,
)
from retrieval.segments import analyse_many, analyse_source, analysis_key, worker_count

if TYPE_CHECKING:
    from retrieval.search import Searcher

log = logging.getLogger(__name__)

Extra = Callable[[Index, Path], None]


@dataclass(frozen=True, slots=True)
class Backfill:
    """An extra that a changed index may go live without, to be run on it right after.

    Searchers must cope with a generation whose ``meta["backfill"]`` is set and whose
    files ``done`` does not find yet (hybrid search ranks the new passages lexically until
    their vectors land). ``done(build_folder)`` says whether ``write`` has run there.
    """

    write: Extra
    done: Callable[[Path], bool]

    def __call__(self, index: Index, build_folder: Path) -> None:
        self.write(index, build_folder)



@dataclass(frozen=True, slots=True)
class DeltaPolicy:
    """When a change goes live as a delta generation instead of a full one.

    Below ``min_passages`` a full generation is written (about a second at 100,000). Above
    it a delta is written, and it is due for a merge into a full generation once dead and
    added passages pass ``merge_share`` of the index; a change that would take a delta past
    ``max_share`` is written as a full generation at once.
    """

    min_passages: int = 100_000
    merge_share: float = 0.05
    max_share: float = 0.2


@dataclass(frozen=True, slots=True)
class Progress:
    """A build's progress: ``stage`` is "files" (parsed and analysed, of ``total``),
    "passages" (made so far; ``total`` 0) or "embedding" (extras, ``done`` of ``total``)."""

    stage: str
    done: int
    total: int


ProgressFn = Callable[[Progress], None]


@dataclass(slots=True)
class BuildReport:
    """What ``update_index`` did."""

    index: Index
    built: bool  # False when the live generation was already up to date
    delta: bool = False  # written as a delta generation (see retrieval.index)
    merge_due: bool = False  # a delta generation that should be merged (``merge_index``)
    analysed: int = 0  # files parsed and analysed
    reused: int = 0  # sources carried over unchanged
    seconds: float = 0.0
    left_out: list[str] = field(default_factory=list)  # "file:line: reason", one per broken file
    unsupported: list[str] = field(default_factory=list)
    backfill_due: bool = False  # published before its ``Backfill`` extras ran (``backfill_index``)


def default_index_dir(corpus_dir: Path, cache_root: Path) -> Path:
    """Where the index of a corpus folder lives by default."""
    key = hashlib.sha256(str(corpus_dir.resolve()).encode()).hexdigest()[:12]
    return cache_root / "index" / key


def analyzer_for(index: Index) -> Analyzer:
    """The query analyzer of an index (its glossary and speaker names)."""
    return Analyzer(index.glossary, index.meta["speaker_names"])


def _analysis(glossary: dict[str, tuple[str, ...]], params: BM25Params) -> str:
    from retrieval.search import ANALYZER_VERSION

    return analysis_key(f"{FORMAT_VERSION}/{ANALYZER_VERSION}/{params}", glossary)


@dataclass(slots=True)
class _State:
    """The folder as checked now: per file its stamp and content key."""

    scan: CorpusScan
    analysis: str
    checked: dict[str, dict]  # name -> {"stamp", "key"}
    fingerprint: str


def _state(scan: CorpusScan, previous: dict[str, dict], params: BM25Params) -> _State:
    akey = _analysis(scan.manifest.glossary, params)
    checked: dict[str, dict] = {}
    for f in scan.files:
        stamp = [list(s) for s in f.stamp()]
        entry = hashlib.sha256(f"{f.entry!r}\0{f.source_id}".encode()).hexdigest()[:16]
        prev = previous.get(f.name)
        if prev is not None and prev["stamp"] == stamp and prev.get("entry") == entry:
            checked[f.name] = prev  # same size, time and manifest entry: not read again
            continue
        key = hashlib.sha256(f"{f.content_hash()}\0{f.source_id}".encode()).hexdigest()[:24]
        checked[f.name] = {"stamp": stamp, "key": key, "entry": entry}
    h = hashlib.sha256(akey.encode())
    for name in sorted(checked):
        h.update(f"\0{name}\1{checked[name]['key']}".encode())
    h.update(json.dumps(scan.manifest.speaker_aliases, sort_keys=True, ensure_ascii=False).encode())
    h.update(json.dumps(sorted(scan.unsupported)).encode())
    return _State(scan, akey, checked, h.hexdigest()[:24])


def check(corpus_dir: Path, manifest: Path | None, store: IndexStore, params: BM25Params | None = None) -> bool:
    """Whether the live generation is up to date with the folder (cheap: stats, hashes only changed files)."""
    meta = store.live_meta()
    if meta is None:
        return False
    state = _state(scan_corpus(corpus_dir, manifest), meta.get("checked", {}), params or BM25Params())
    return state.fingerprint == meta["fingerprint"]


def update_index(corpus_dir: Path, manifest: Path | None, store: IndexStore, progress: ProgressFn | None = None,
                 extras: tuple[Extra, ...] = (), force: bool = False, params: BM25Params | None = None,
                 merge: str = "now", policy: DeltaPolicy = DeltaPolicy(), backfill: str = "now") -> BuildReport:
    """Bring the store's live generation up to date with the folder; returns the live Index.

    With ``force`` every file is parsed and analysed again. A change to a large index
    (``policy.min_passages`` or more, no ``extras`` run before it goes live) is published as a
    delta generation first; when that is due for a merge, ``merge`` says when: "now" (then,
    before returning), "later" (the caller runs ``merge_index``; ``merge_due`` is set) or
    "never". ``backfill="later"`` publishes a change to an existing index before its
    ``Backfill`` extras run (the caller runs ``backfill_index``; ``backfill_due`` is set).
    Raises TranscriptError when the folder does not exist or when no source at all could be indexed.
    """
    params = params or BM25Params()
    t0 = time.perf_counter()
    with store.build_lock():
        live = None
        if not force:
            try:
                live = store.load()
            except (OSError, ValueError, RuntimeError):
                live = None
        scan = scan_corpus(corpus_dir, manifest)
        state = _state(scan, live.meta.get("checked", {}) if live else {}, params)
        if live is not None and live.fingerprint == state.fingerprint:
            return BuildReport(live, False, reused=len(live.sources), left_out=list(live.meta.get("left_out", [])),
                               unsupported=list(scan.unsupported))
        reuse = live if live is not None and live.meta.get("analysis") == state.analysis else None
        later = backfill == "later" and live is not None
        report = _build(state, reuse, store, progress, extras, params, policy, later)
    report.seconds = time.perf_counter() - t0
    if report.merge_due and merge == "now":
        merge_index(store, extras, params)
        report.index, report.merge_due = store.load(), False
        report.backfill_due = False
    return report


def backfill_index(store: IndexStore, extras: tuple[Extra, ...]) -> bool:
    """Run the ``Backfill`` extras the live generation went live without (into its folder),
    again for a newer generation published meanwhile. Returns whether any ran."""
    ran = False
    seen: set[Path] = set()
    while True:
        live = store.load()
        folder = live.folder
        todo = pending_backfill(live.meta, folder, extras) if folder is not None and folder not in seen else []
        if not todo:
            return ran
        seen.add(folder)
        for extra in todo:
            extra(live, folder)
            ran = True


def pending_backfill(meta: dict, folder: Path, extras: tuple[Extra, ...]) -> list[Backfill]:
    """The ``Backfill`` extras whose files the generation in ``folder`` (with ``meta``) went
    live without and still lacks."""
    if not meta.get("backfill"):
        return []
    return [e for e in extras if isinstance(e, Backfill) and not e.done(folder)]


def merge_index(store: IndexStore, extras: tuple[Extra, ...] = (), params: BM25Params | None = None) -> bool:
    """Rewrite a live delta generation as a full one (dead passages dropped, postings exact
    again); the same content, so searchers switch to it on their next refresh. Returns
    whether it merged (False when the live generation is already full)."""
    params = params or BM25Params()
    with store.build_lock():
        live = store.load()
        if live.meta.get("exact", True):
            return False
        tmp = store.new_folder()
        try:
            sink = Sink(tmp)
            speakers = list(live.speakers)
            table = TermTable(live.vocab)
            sources, _ = write_generation(sink, Carried(live, list(range(len(live.sources)))), iter(()), table,
                                          speakers, params)
            sink.finish()
            keep = {k: live.meta[k] for k in ("analysis", "checked", "left_out") if k in live.meta}
            meta = generation_meta(sources, table, speakers, params, live.fingerprint, live.glossary,
                                   live.meta["speaker_names"], sink, keep)
            _finish(tmp, meta, extras, None)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        store.commit(tmp, live.fingerprint)
    return True


def _finish(tmp: Path, meta: dict, extras: tuple[Extra, ...], progress: ProgressFn | None) -> None:
    """Write meta and lease, then let ``extras`` add their files beside the arrays."""
    (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    (tmp / "lease").touch()
    if not extras:
        return
    built = load(tmp)
    for i, extra in enumerate(extras):
        if progress:
            progress(Progress("embedding", i, len(extras)))
        extra(built, tmp)
    if progress:
        progress(Progress("embedding", len(extras), len(extras)))


def _build(state: _State, reuse: Index | None, store: IndexStore, progress: ProgressFn | None,
           extras: tuple[Extra, ...], params: BM25Params, policy: DeltaPolicy, later: bool) -> BuildReport:
    scan = state.scan
    deferred = tuple(e for e in extras if isinstance(e, Backfill)) if later else ()
    extras = tuple(e for e in extras if e not in deferred)
    old = {s["name"]: i for i, s in enumerate(reuse.meta["sources"])} if reuse else {}
    old_keys = {s["name"]: s["key"] for s in reuse.meta["sources"]} if reuse else {}
    carry: list[int] = []
    todo: list[SourceFile] = []
    left_out: list[str] = [str(p) for p in scan.problems]
    for f in scan.files:
        key = state.checked[f.name]["key"]
        if old_keys.get(f.name) == key:
            carry.append(old[f.name])
        else:
            todo.append(f)
    carry.sort()
    table = TermTable(reuse.vocab if reuse else None)
    speakers = list(reuse.speakers) if reuse else []
    analyzer = Analyzer(scan.manifest.glossary)
    analysed = [0]
    passages = [0]

    def broken(f: SourceFile, reason: str) -> None:
        left_out.append(reason)
        if f.name in old:  # its last good version stays
            kept.append(old[f.name])

    def fresh():
        size = sum(s[0] for f in todo for s in f.stamp())
        workers = worker_count(size, len(todo))
        if workers:
            jobs = [(load_source, (f, scan.manifest), state.checked[f.name]["key"], f.name) for f in todo]
            results = analyse_many(jobs, analyzer, table, workers)
        else:
            results = (None for _ in todo)
        for i, (f, seg) in enumerate(zip(todo, results, strict=True)):
            if progress:
                progress(Progress("files", len(carry) + i + 1, len(scan.files)))
            if isinstance(seg, str):
                broken(f, seg)
                continue
            if seg is None:
                try:
                    t = load_source(f, scan.manifest)
                except TranscriptError as e:
                    broken(f, str(e))
                    continue
                seg = analyse_source(t, analyzer, table, state.checked[f.name]["key"], f.name)
            analysed[0] += 1
            yield seg

    kept: list[int] = []
    # broken files are found while writing; parse them first so their old versions are carried in order
    segs = list(fresh()) if todo else []
    carry = sorted(set(carry) | set(kept))
    if progress:
        progress(Progress("files", len(scan.files), len(scan.files)))
    if not carry and not segs:
        if left_out:
            raise TranscriptError(*_split_error(left_out[0]))
        raise TranscriptError(str(scan.files[0].path.parent) if scan.files else "corpus", 0,
                              "no transcript files in this folder")
    delta = (reuse is not None and reuse.folder is not None and not extras and reuse.size >= policy.min_passages
             and _share_after(reuse, carry, segs) <= policy.max_share)
    tmp = store.new_folder()
    try:
        def step(n: int) -> None:
            passages[0] += n
            if progress:
                progress(Progress("passages", passages[0], 0))

        sink = None
        if delta:
            try:
                sink = Sink(tmp, after=reuse)
                drop = set(range(len(reuse.sources))) - set(carry)
                sources, _ = write_delta(sink, reuse, drop, segs, table, speakers, params)
            except NeedsFullBuild:
                shutil.rmtree(tmp, ignore_errors=True)
                tmp, delta = store.new_folder(), False
        if not delta:
            sink = Sink(tmp)
            sources, _ = write_generation(sink, Carried(reuse, carry) if reuse and carry else None, iter(segs),
                                          table, speakers, params, step)
        del segs
        sink.finish()
        names = [n for s in sources for n in s["info"]["speakers"]]
        names += [a for aliases in scan.manifest.speaker_aliases.values() for a in aliases]
        meta = generation_meta(sources, table, speakers, params, state.fingerprint, scan.manifest.glossary,
                               list(dict.fromkeys(names)), sink,
                               {"analysis": state.analysis, "checked": state.checked, "left_out": left_out,
                                **({"backfill": True} if deferred else {})})
        _finish(tmp, meta, extras, progress)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    store.commit(tmp, state.fingerprint)
    index = store.load()
    return BuildReport(index, True, delta=delta, merge_due=delta and delta_share(index) > policy.merge_share,
                       analysed=analysed[0], reused=len(carry), left_out=left_out,
                       unsupported=list(scan.unsupported), backfill_due=bool(deferred))


def _share_after(live: Index, carry: list[int], segs: list) -> float:
    """``delta_share`` of the delta generation that would carry ``carry`` and add ``segs``."""
    kept = set(carry)
    dropped = sum(len(live.source_docs(s.source_id)) for i, s in enumerate(live.sources) if i not in kept)
    added = sum(seg.size for seg in segs)
    size = live.size + added
    return (size - int(live.meta["base_docs"]) + len(live.dead) + dropped) / max(1, size)


def _split_error(text: str) -> tuple[str, int, str]:
    path, _, rest = text.partition(":")
    line, _, reason = rest.partition(":")
    return (path, int(line), reason.strip()) if line.isdigit() else (text, 0, "cannot be indexed")


def build_and_publish(corpus_dir: Path, manifest: Path | None, store: IndexStore,
                      progress: ProgressFn | None = None, extras: tuple[Extra, ...] = ()) -> Index:
    """Bring the index up to date (source by source) and return the live Index. Raises TranscriptError.

    Each of ``extras`` may write more files (e.g. embeddings) into a new build's folder
    before it goes live, so they are always in step with the index.
    """
    return update_index(corpus_dir, manifest, store, progress, extras).index


def open_searcher(corpus_dir: Path, manifest: Path | None, index_dir: Path,
                  progress: ProgressFn | None = None, extras: tuple[Extra, ...] = (),
                  factory: Callable[..., Searcher] | None = None, policy: DeltaPolicy = DeltaPolicy()) -> Searcher:
    """A Searcher over ``corpus_dir``, building or updating its saved index as needed.

    Its ``refresh()`` updates the index when files changed (only those are analysed) and
    picks up generations other processes published into the same folder. Broken files are
    logged once each and left out; their last good version keeps being served. With no
    index to serve at all the TranscriptError propagates. ``extras`` write files beside a
    new build; ``factory`` makes the Searcher (a subclass, for hybrid mode). ``policy`` says
    which changes go live as delta generations; those are merged in a background thread
    when they grow. At start the index is complete before this returns; a change found by
    ``refresh()`` later goes live before its ``Backfill`` extras run, and they run right
    after in a background thread.
    """
    from retrieval.search import Searcher

    store = IndexStore(index_dir)
    reported: set[str] = set()
    serving: list[Path | None] = []  # the generation this searcher answers from

    def announce(report: BuildReport) -> None:
        for line in report.left_out:
            if line not in reported:
                reported.add(line)
                log.error("left out of the index: %s", line)
        for path in report.unsupported:
            if path not in reported:
                reported.add(path)
                log.warning("not a transcript, ignored: %s", path)

    backfilling: list[threading.Thread] = []

    def backfill(meta: dict, folder: Path | None, later: bool = True) -> None:
        if folder is None or (backfilling and backfilling[0].is_alive()) or not pending_backfill(meta, folder, extras):
            return
        if later:
            backfilling[:] = [_backfill_in_background(store, extras)]
        else:
            backfill_index(store, extras)

    def current(later: bool = True) -> tuple[Index, Analyzer] | None:
        meta = store.live_meta()
        if meta is not None:
            state = _state(scan_corpus(corpus_dir, manifest), meta.get("checked", {}), BM25Params())
            if state.fingerprint == meta["fingerprint"]:
                if serving and serving[0] == _live_folder(store):
                    backfill(meta, serving[0])  # again, when an earlier run failed
                    return None
                index = store.load()  # published by another process (or at start)
                serving[:] = [index.folder]
                backfill(index.meta, index.folder, later)  # at start: what an earlier process left undone
                return index, analyzer_for(index)
        report = update_index(corpus_dir, manifest, store, progress, extras, merge="later", policy=policy,
                              backfill="later" if later else "now")
        announce(report)
        if report.merge_due:
            _merge_in_background(store, extras)
        backfill(report.index.meta, report.index.folder)
        if serving and serving[0] == report.index.folder:
            return None
        serving[:] = [report.index.folder]
        return report.index, analyzer_for(report.index)

    try:
        fresh = current(later=False)
    except TranscriptError as e:
        if store.live_meta() is None:
            raise
        log.error("transcript error, still serving the previous index: %s", e)
        fresh = None
    if fresh is None:
        index = store.load()
        serving[:] = [index.folder]
        fresh = (index, analyzer_for(index))
    if fresh[0].meta.get("left_out") and not reported:
        for line in fresh[0].meta["left_out"]:
            reported.add(line)
            log.error("left out of the index: %s", line)
    return (factory or Searcher)(*fresh, refresh=current)


def _merge_in_background(store: IndexStore, extras: tuple[Extra, ...]) -> threading.Thread:
    """Merge the live delta generation in a thread; searchers pick the result up on refresh."""

    def run() -> None:
        try:
            merge_index(store, extras)
        except Exception:  # the delta generation keeps serving
            log.exception("merging the index in the background failed")

    worker = threading.Thread(target=run, name="quotebot-index-merge", daemon=True)
    worker.start()
    return worker


def _backfill_in_background(store: IndexStore, extras: tuple[Extra, ...]) -> threading.Thread:
    """Run the live generation's pending ``Backfill`` extras in a thread; searchers pick their files up."""

    def run() -> None:
        try:
            backfill_index(store, extras)
        except Exception:  # the generation keeps serving without them; the next refresh tries again
            log.exception("writing the index's deferred files in the background failed")

    # not a daemon: exiting waits for it (a few seconds), so files are not left half done
    worker = threading.Thread(target=run, name="quotebot-index-backfill")
    worker.start()
    return worker


def _live_folder(store: IndexStore) -> Path | None:
    try:
        return store.current.resolve(strict=True)
    except OSError:
        return None


def corpus_fingerprint(corpus_dir: Path, manifest: Path | None, store: IndexStore | None = None) -> str:
    """The fingerprint an up-to-date index of this corpus carries."""
    meta = store.live_meta() if store is not None else None
    return _state(scan_corpus(corpus_dir, manifest), (meta or {}).get("checked", {}),
                  BM25Params()).fingerprint


__all__ = ["Backfill", "BuildReport", "DeltaPolicy", "Progress", "analyzer_for", "backfill_index", "build_and_publish",
           "check", "corpus_fingerprint", "default_index_dir", "merge_index", "open_searcher", "pending_backfill",
           "read_manifest", "update_index"]
