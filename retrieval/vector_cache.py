"""Per-source embedding vectors kept beside an index folder, so unchanged sources are never embedded again.

Layout: ``<index root>/vectors/<model key>-<unit scheme>/<source digest>.npz``, one file per
source holding its passage vectors and its embedding units (character spans in the source's
text, unit vectors, and unit/passage membership pairs numbered from the source's own first
unit and first passage). The digest covers everything a source's units and embedded texts
depend on (its content key, joined text, passage spans, speaker turns and the glossary when
notes are added), so equal digests mean equal vectors.

Several processes may share the folder: files are written under a temporary name and renamed
into place, and only files unused for ``min_age`` seconds are deleted (a reader that loses a
file to pruning just embeds that source again).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.index import Index

log = logging.getLogger(__name__)

_FIELDS = ("doc_vecs", "unit_vecs", "unit_cstart", "unit_cend", "pair_unit", "pair_doc")


@dataclass(slots=True)
class SourceVectors:
    """One source's vectors and units; pairs count from the source's first unit and passage."""

    doc_vecs: np.ndarray  # n_passages x dim
    unit_vecs: np.ndarray  # n_units x dim
    unit_cstart: np.ndarray  # spans in the source's joined text
    unit_cend: np.ndarray
    pair_unit: np.ndarray
    pair_doc: np.ndarray


def index_root(build_folder: Path) -> Path | None:
    """The index folder holding a generation folder (``<root>/builds/<id>``), else None."""
    return build_folder.parent.parent if build_folder.parent.name == "builds" else None


def source_digests(index: Index, context: str) -> list[str]:
    """A digest per source (in source order) of what its embedding depends on, besides ``context``."""
    keys = index.source_keys
    a = index.a
    out = []
    for info in index.sources:
        docs = index.source_docs(info.source_id)
        sl = slice(docs.start, docs.stop)
        spk = np.asarray(a["p_speaker"][sl])
        h = hashlib.sha256(f"{context}\0{keys.get(info.source_id, '')}\0".encode())
        h.update((index.source_text(info.source_id) or "").encode())
        for arr in (np.asarray(a["p_cstart"][sl], np.int64), np.asarray(a["p_cend"][sl], np.int64),
                    (spk[1:] != spk[:-1])):
            h.update(b"\0" + np.ascontiguousarray(arr).tobytes())
        out.append(h.hexdigest()[:32])
    return out


def embedding_context(glossary: dict | None) -> str:
    """The part of a digest shared by all sources: the glossary whose notes go into embedded text."""
    return json.dumps(glossary, sort_keys=True, ensure_ascii=False) if glossary is not None else ""


class VectorStore:
    """Per-source vectors of one model and unit scheme under ``root`` (shared by processes)."""

    def __init__(self, root: Path, model_key: str, scheme: str, dim: int) -> None:
        self.folder = root / "vectors" / f"{model_key}-{scheme}"
        self.dim = dim

    def path(self, digest: str) -> Path:
        return self.folder / f"{digest}.npz"

    def load(self, digest: str, n_docs: int) -> SourceVectors | None:
        """A source's stored vectors; None when absent, unreadable or not of this shape."""
        path = self.path(digest)
        try:
            with np.load(path) as z:
                sv = SourceVectors(*(z[name] for name in _FIELDS))
        except (OSError, ValueError, KeyError, EOFError):
            return None
        if (sv.doc_vecs.shape != (n_docs, self.dim) or sv.unit_vecs.shape != (len(sv.unit_cstart), self.dim)
                or len(sv.pair_unit) != len(sv.pair_doc)):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # in use: not pruned for another ``min_age``
        return sv

    def save(self, digest: str, sv: SourceVectors) -> None:
        """Write one source's vectors atomically (temporary name, then rename)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".tmp-{uuid.uuid4().hex[:8]}.npz"
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **{name: np.ascontiguousarray(getattr(sv, name)) for name in _FIELDS})
            os.replace(tmp, self.path(digest))
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def prune(self, keep: set[str], min_age: float = 3600.0) -> int:
        """Delete files whose digest is not in ``keep`` and that were not used for ``min_age`` seconds
        (temporary files of writers that died included); returns how many."""
        now = time.time()
        removed = 0
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return 0
        for p in entries:
            if p.suffix != ".npz" or p.stem in keep:
                continue
            try:
                if now - p.stat().st_mtime < min_age:
                    continue
                p.unlink()
                removed += 1
            except OSError:
                continue
        return removed
