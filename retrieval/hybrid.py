"""Hybrid search: BM25 candidates and sentence-embedding candidates, fused and re-ranked.

Embedding units are smaller than the BM25 windows: runs of whole sentences of about
``unit_words`` words, one starting at every sentence, each mapped to the passages it lies
in. A passage's semantic score blends its best unit with the passage as a whole, so one
sentence that answers the question lifts the passage without the rest diluting it.

The candidates of both stages are pooled; each gets its re-ranked lexical score (zero when
no query word occurs in it) and its semantic score, both scaled per query, and the final
score is their convex combination. The semantic weight falls when the lexical evidence is
strong (the best candidate covers most of the query's weight), so exact names and
numbers stay on top while paraphrases are lifted by meaning.

Vectors are computed when an index build is written (``embedding_extra``) and stored in
the build folder, memory-mapped on load; a build without them (or with another model)
gets them computed on first use and saved beside it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from retrieval.analyze import Analyzer
from retrieval.index import Index
from retrieval.search import RankParams, Searcher, _extend, _top
from retrieval.semantic import Embedder

log = logging.getLogger(__name__)

UNITS_VERSION = 1
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+|(?<=[。！？])[」』”）]*\s*")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORDISH = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|\S+")


@dataclass(frozen=True, slots=True)
class HybridParams:
    """How units are cut and how the two stages are combined (measured on the bundled corpus)."""

    unit_words: float = 30.0  # target size of an embedding unit, in words (a CJK character is 0.6)
    unit_share: float = 0.7  # passage semantic score = share * best unit + (1 - share) * whole passage
    depth: int = 50  # candidates taken from each stage
    sem_weight: float = 0.6  # semantic weight in the fusion when lexical evidence is weak
    sem_weight_strong: float = 0.3  # ... and when the best lexical candidate covers the whole query
    fusion: str = "convex"  # "convex" (scaled scores) or "rrf" (reciprocal ranks)
    rrf_k: float = 60.0
    lex_norm: str = "max"
    lex_scale: float = 2.0
    sem_norm: str = "span"
    doc_text: str = "window"  # "window" (the BM25 passage) or "shown" (extended as displayed)
    unit_map: str = "window"

    def units_key(self) -> str:
        return f"u{UNITS_VERSION}-w{self.unit_words:g}"


# --- units --------------------------------------------------------------------------------


@dataclass(slots=True)
class Units:
    """Embedding units of an index: text spans and the passages each belongs to."""

    src: np.ndarray  # source number of each unit
    cstart: np.ndarray
    cend: np.ndarray
    pair_unit: np.ndarray  # (unit, passage) membership pairs
    pair_doc: np.ndarray

    def texts(self, index: Index) -> list[str]:
        out = []
        for s, a, b in zip(self.src.tolist(), self.cstart.tolist(), self.cend.tolist(), strict=True):
            text = index.source_text(index.sources[s].source_id) or ""
            out.append(text[a:b])
        return out


def _units_of(text: str) -> float:
    cjk = len(_CJK.findall(text))
    return len(_WORDISH.findall(text)) - 0.4 * cjk


def _sentences(text: str, lo: int, hi: int, max_units: float) -> list[tuple[int, int, float]]:
    """Sentence spans inside [lo, hi); a sentence longer than ``max_units`` is cut at words."""
    spans: list[tuple[int, int]] = []
    start = lo
    for m in _SENTENCE_END.finditer(text, lo, hi):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < hi:
        spans.append((start, hi))
    out: list[tuple[int, int, float]] = []
    for s, e in spans:
        while e > s and text[e - 1].isspace():
            e -= 1
        if e <= s:
            continue
        n = _units_of(text[s:e])
        if n <= max_units:
            out.append((s, e, n))
            continue
        cur_s, cur_e, cur_n = s, s, 0.0
        for w in _WORDISH.finditer(text, s, e):
            u = 0.6 if _CJK.match(w.group(0)) else 1.0
            if cur_e > cur_s and cur_n + u > max_units:
                out.append((cur_s, cur_e, cur_n))
                cur_s, cur_n = w.start(), 0.0
            cur_e = w.end()
            cur_n += u
        if cur_e > cur_s:
            out.append((cur_s, cur_e, cur_n))
    return out


def shown_ends(index: Index, show_chars: int) -> np.ndarray:
    """Where each passage's quote ends as shown (run on to whole sentences, see Searcher)."""
    return np.asarray([_extend(index, index.passage(d), show_chars).char_end if show_chars > 0 else 0
                       for d in range(index.size)], np.int64)


def build_units(index: Index, unit_words: float, ends: np.ndarray | None = None) -> Units:
    """Runs of whole sentences of about ``unit_words`` words, one starting at every sentence."""
    cp_src, cp_s, cp_e = (np.asarray(index.a[k]) for k in ("p_src", "p_cstart", "p_cend"))
    if ends is not None:
        cp_e = np.maximum(cp_e, ends)
    src: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    pu: list[int] = []
    pd: list[int] = []
    for si, info in enumerate(index.sources):
        text = index.source_text(info.source_id) or ""
        docs = np.flatnonzero(cp_src == si)
        if not len(docs):
            continue
        d_s, d_e = cp_s[docs], cp_e[docs]
        sents = _sentences(text, int(d_s.min()), int(d_e.max()), unit_words)
        seen: set[tuple[int, int]] = set()
        for i in range(len(sents)):
            j, total = i, sents[i][2]
            while j + 1 < len(sents) and total + sents[j + 1][2] <= unit_words:
                j += 1
                total += sents[j][2]
            span = (sents[i][0], sents[j][1])
            if span in seen:
                continue
            seen.add(span)
            a, b = span
            overlap = np.minimum(d_e, b) - np.maximum(d_s, a)
            inside = docs[overlap * 2 >= (b - a)]
            if not len(inside):
                inside = docs[[int(np.argmax(overlap))]]
            u = len(starts)
            src.append(si)
            starts.append(a)
            ends.append(b)
            pu.extend([u] * len(inside))
            pd.extend(inside.tolist())
    return Units(np.asarray(src, np.int32), np.asarray(starts, np.int64), np.asarray(ends, np.int64),
                 np.asarray(pu, np.int32), np.asarray(pd, np.int32))


# --- stored vectors --------------------------------------------------------------------------


@dataclass(slots=True)
class SemanticIndex:
    """Unit and passage vectors of one index build for one model."""

    units: Units
    unit_vecs: np.ndarray  # n_units x dim, unit length
    doc_vecs: np.ndarray  # n_passages x dim, unit length

    def passage_scores(self, q: np.ndarray, unit_share: float) -> np.ndarray:
        """Cosine of every passage to the query vector: best unit blended with the whole."""
        doc = self.doc_vecs @ q
        if unit_share <= 0 or not len(self.units.pair_unit):
            return doc
        unit = self.unit_vecs @ q
        best = np.full(len(doc), -1.0, dtype=np.float32)
        np.maximum.at(best, self.units.pair_doc, unit[self.units.pair_unit])
        best = np.where(best < -0.5, doc, best)
        return unit_share * best + (1.0 - unit_share) * doc


def _folder_name(model_key: str, params: HybridParams) -> str:
    return f"semantic-{model_key}-{params.units_key()}"


def compute_semantic(index: Index, embedder: Embedder, params: HybridParams) -> SemanticIndex:
    """Cut units and embed them and every passage (the slow part of an index build)."""
    ends = shown_ends(index, 600)
    units = build_units(index, params.unit_words, ends if params.unit_map == "shown" else None)
    unit_vecs = embedder.embed_documents(units.texts(index))
    if params.doc_text == "shown":
        docs = [_extend(index, index.passage(d), 600).text for d in range(index.size)]
    else:
        docs = [index.passage(d).text for d in range(index.size)]
    doc_vecs = embedder.embed_documents(docs)
    return SemanticIndex(units, unit_vecs, doc_vecs)


def save_semantic(sem: SemanticIndex, folder: Path, meta: dict) -> None:
    """Write vectors into ``folder`` atomically (a temporary folder renamed into place)."""
    tmp = folder.with_name(f".{folder.name}-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    u = sem.units
    arrays = {"unit_src": u.src, "unit_cstart": u.cstart, "unit_cend": u.cend, "pair_unit": u.pair_unit,
              "pair_doc": u.pair_doc, "unit_vecs": sem.unit_vecs.astype(np.float32),
              "doc_vecs": sem.doc_vecs.astype(np.float32)}
    for name, arr in arrays.items():
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr))
    (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    try:
        os.rename(tmp, folder)
    except OSError:  # another process wrote the same vectors first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "meta.json").is_file():
            raise


def load_semantic(folder: Path, n_docs: int) -> SemanticIndex | None:
    """Open stored vectors (memory-mapped); None when absent or not for this build."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        a = {name: np.load(folder / f"{name}.npy", mmap_mode="r")
             for name in ("unit_src", "unit_cstart", "unit_cend", "pair_unit", "pair_doc", "unit_vecs", "doc_vecs")}
    except (OSError, ValueError):
        return None
    if meta.get("passages") != n_docs or a["doc_vecs"].shape[0] != n_docs:
        return None
    units = Units(a["unit_src"], a["unit_cstart"], a["unit_cend"], a["pair_unit"], a["pair_doc"])
    return SemanticIndex(units, a["unit_vecs"], a["doc_vecs"])


def _meta(index: Index, embedder: Embedder, params: HybridParams) -> dict:
    return {"model": embedder.info.name, "resolved": embedder.info.resolved, "dim": embedder.dim,
            "units": params.units_key(), "passages": index.size, "fingerprint": index.fingerprint}


def embedding_extra(embedder: Embedder, params: HybridParams | None = None) -> Callable[[Index, Path], None]:
    """An ``open_searcher`` extra: writes the vectors of a new index build into its folder."""
    params = params or HybridParams()

    def write(index: Index, build_folder: Path) -> None:
        sem = compute_semantic(index, embedder, params)
        save_semantic(sem, build_folder / _folder_name(embedder.info.key, params), _meta(index, embedder, params))

    return write


# --- searcher ------------------------------------------------------------------------------


class HybridSearcher(Searcher):
    """A Searcher whose candidates come from BM25 and from sentence embeddings."""

    mode = "hybrid"

    def __init__(self, index: Index, analyzer: Analyzer, rank: RankParams | None = None,
                 refresh: Callable[[], tuple[Index, Analyzer] | None] | None = None, *,
                 embedder: Embedder, params: HybridParams | None = None) -> None:
        super().__init__(index, analyzer, rank, refresh)
        self.embedder = embedder
        self.params = params or HybridParams()
        self._sem_lock = threading.Lock()
        self._sem: tuple[Index, SemanticIndex] | None = None
        self.semantic_for(index)

    def describe(self) -> str:
        return f"hybrid (BM25 + {self.embedder.info.name}, {self.embedder.dim}-d)"

    def semantic_for(self, index: Index) -> SemanticIndex:
        """The vectors of ``index``: loaded from its build folder, else computed (and saved there)."""
        with self._sem_lock:
            if self._sem is not None and self._sem[0] is index:
                return self._sem[1]
            sem = None
            folder = index.folder / _folder_name(self.embedder.info.key, self.params) if index.folder else None
            if folder is not None:
                sem = load_semantic(folder, index.size)
            if sem is None:
                log.info("embedding %d passages with %s", index.size, self.embedder.info.name)
                sem = compute_semantic(index, self.embedder, self.params)
                if folder is not None:
                    try:
                        save_semantic(sem, folder, _meta(index, self.embedder, self.params))
                    except OSError as e:
                        log.warning("could not save embeddings beside the index (%s); kept in memory", e)
            self._sem = (index, sem)
            return sem

    def rank_candidates(self, index: Index, query: str, terms: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        sem = self.semantic_for(index)
        sem_all = sem.passage_scores(self.embedder.embed_query(query), p.unit_share)
        ids = index.term_ids(terms)
        bm25 = index.scores(ids) if ids else np.zeros(index.size, np.float32)
        lex_top = _top(bm25, max(depth, p.depth))
        sem_top = np.argpartition(-sem_all, min(p.depth, index.size - 1))[: p.depth] if index.size else lex_top
        cand = np.union1d(lex_top, sem_top).astype(np.int64)
        if not len(cand):
            return cand, np.zeros(0)
        lex = self._rerank(index, ids, cand, bm25[cand]) if ids else np.zeros(len(cand))
        s = sem_all[cand].astype(np.float64)
        if p.fusion == "rrf":
            return cand, _rrf(lex, s, p.rrf_k, p.sem_weight)
        return cand, self._convex(index, ids, cand, lex, s, sem_all)

    def _convex(self, index: Index, ids: list[int], cand: np.ndarray, lex: np.ndarray, s: np.ndarray,
                sem_all: np.ndarray) -> np.ndarray:
        p = self.params
        lex_max = float(lex.max()) if len(lex) else 0.0
        if p.lex_norm == "max":
            lex_n = lex / lex_max if lex_max > 0 else np.zeros_like(lex)
        else:
            idf = index.a["idf"]
            z = sum(float(idf[t]) for t in set(ids)) * p.lex_scale
            lex_n = np.minimum(1.0, lex / z) if z > 0 else np.zeros_like(lex)
        # Semantic scores scaled from the corpus-wide mean (no evidence) to the best candidate.
        floor = float(sem_all.mean())
        top = float(s.max())
        if p.sem_norm == "span":
            sem_n = np.clip((s - floor) / (top - floor), 0.0, None) if top > floor else np.zeros_like(s)
        elif p.sem_norm == "mean":
            sem_n = np.clip(s - floor, 0.0, None)
        else:
            sem_n = s
        strength = self._coverage(index, ids, int(cand[int(np.argmax(lex))])) if lex_max > 0 else 0.0
        w = p.sem_weight + (p.sem_weight_strong - p.sem_weight) * strength
        return (1.0 - w) * lex_n + w * sem_n

    @staticmethod
    def _coverage(index: Index, ids: list[int], doc: int) -> float:
        """Share of the query's idf weight that occurs in passage ``doc``."""
        idf = index.a["idf"]
        q = set(ids)
        total = sum(float(idf[t]) for t in q)
        if total <= 0:
            return 0.0
        present = q & set(index.tokens_of(doc).tolist())
        return sum(float(idf[t]) for t in present) / total


def _rrf(lex: np.ndarray, sem: np.ndarray, k: float, sem_weight: float) -> np.ndarray:
    def ranks(x: np.ndarray) -> np.ndarray:
        r = np.empty(len(x))
        r[np.argsort(-x, kind="stable")] = np.arange(1, len(x) + 1)
        return r

    lex_part = np.where(lex > 0, 1.0 / (k + ranks(lex)), 0.0)
    return (1.0 - sem_weight) * lex_part + sem_weight / (k + ranks(sem))


@dataclass(frozen=True, slots=True)
class HybridConfig:
    """What ``open_hybrid`` needs: the model and the fusion parameters."""

    embedder: Embedder
    params: HybridParams = field(default_factory=HybridParams)

    def describe(self) -> dict:
        return {"model": self.embedder.info.name, **asdict(self.params)}
