"""Incremental updates, rebuilds under a serving searcher, and index folders shared by processes."""

import gc
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import bm25s
import numpy as np

from retrieval.analyze import Analyzer
from retrieval.corpus import load_corpus
from retrieval.index import BM25Params, IndexStore, build
from retrieval.library import update_index
from retrieval.search import open_searcher
from tests.conftest import ROOT, run_cli

EPISODE = ("1\n00:00:02,000 --> 00:00:06,000\nToday we talk about glaciers and the ice sheets of Greenland.\n\n"
           "2\n00:00:06,500 --> 00:00:12,000\nThe glaciers melt faster every summer, the ice shelf breaks apart.\n")


def _open(corpus: Path, index_dir: Path):
    return open_searcher(corpus, corpus / "corpus.toml", index_dir)


def _env(corpus: Path, index_dir: Path) -> dict[str, str]:
    return {"QUOTEBOT_CORPUS": str(corpus), "QUOTEBOT_INDEX_DIR": str(index_dir), "QUOTEBOT_SEARCH_MODE": "lexical",
            "HF_HUB_OFFLINE": "1"}


def test_an_added_episode_is_seen_by_a_running_searcher_and_nothing_else_is_analysed(small_corpus, tmp_path):
    s = _open(small_corpus, tmp_path / "ix")
    before = s.index
    talk_before = [before.passage(d).text for d in before.source_docs("talk")]
    assert not s.search("glaciers greenland")
    (small_corpus / "ice.srt").write_text(EPISODE, encoding="utf-8")
    report = update_index(small_corpus, small_corpus / "corpus.toml", IndexStore(tmp_path / "ix"))
    assert report.built and report.analysed == 1 and report.reused == 2
    assert s.refresh() is True  # the generation published beside it is picked up
    hit = s.search("glaciers greenland")[0]
    assert "Greenland" in hit.text and hit.passage.start == 2.0
    assert [s.index.passage(d).text for d in s.index.source_docs("talk")] == talk_before
    assert s.index.source_keys["talk"] == before.source_keys["talk"]  # same content key: cacheable per source
    assert s.index.source_keys["ice"] not in before.source_keys.values()
    assert "Raptor engine" in s.search("raptor methane")[0].text


def _reference_scores(index, analyzer: Analyzer, queries: list[str]) -> dict[str, dict[str, float]]:
    docs = []
    for d in range(index.size):
        toks = analyzer.document_tokens(index.passage(d).text)
        docs.append([t.term for t in toks if not analyzer.is_stopword(t.term)])
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(docs, show_progress=False)
    keys = [index.passage(d).key for d in range(index.size)]
    out = {}
    for q in queries:
        terms = [t for t in analyzer.query_terms(q) if t in index.vocab]
        out[q] = dict(zip(keys, (np.asarray(ref.get_scores(terms)) * 2.2).tolist(), strict=True))
    return out


def test_scores_after_incremental_updates_equal_a_full_rebuild_and_the_reference(small_corpus, tmp_path):
    s = _open(small_corpus, tmp_path / "ix")
    (small_corpus / "ice.srt").write_text(EPISODE, encoding="utf-8")
    assert s.refresh() is True
    chat = small_corpus / "chat.txt"
    chat.write_text(chat.read_text(encoding="utf-8") + "- and glaciers? - [guest] the ice is old and deep.\n",
                    encoding="utf-8")
    assert s.refresh() is True
    (small_corpus / "talk.srt").unlink()
    assert s.refresh() is True
    index = s.index
    assert sorted(x.source_id for x in index.sources) == ["chat", "ice"]
    full = build(load_corpus(small_corpus, small_corpus / "corpus.toml"), Analyzer({"fermi": ("foamy paradox",)}),
                 BM25Params())
    analyzer = s.analyzer
    queries = ["glaciers ice", "ocean deep fish", "mars cold", "ice shelf summer"]
    ref = _reference_scores(full, analyzer, queries)
    for q in queries:
        ids = index.term_ids(analyzer.query_terms(q))
        ours = dict(zip((index.passage(d).key for d in range(index.size)), index.scores(ids).tolist(), strict=True))
        fids = full.term_ids(analyzer.query_terms(q))
        rebuilt = dict(zip((full.passage(d).key for d in range(full.size)), full.scores(fids).tolist(), strict=True))
        assert ours.keys() == rebuilt.keys() == ref[q].keys()
        for k in ours:
            assert abs(ours[k] - rebuilt[k]) < 1e-4 and abs(ours[k] - ref[q][k]) < 1e-3, (q, k)
        assert max(ours.values()) > 0


def test_a_forced_rebuild_by_another_process_never_disturbs_a_serving_searcher(small_corpus, tmp_path):
    ix = tmp_path / "ix"
    s = _open(small_corpus, ix)
    serving = s.index.folder
    stop = threading.Event()
    seen: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        while not stop.is_set():
            try:
                hits = s.search("raptor methane")
                seen.append(hits[0].text)
                assert s.context(hits[0].passage.key) is not None
            except BaseException as e:  # reported by the assertions below
                errors.append(e)
                return

    worker = threading.Thread(target=ask)
    worker.start()
    try:
        for _ in range(2):
            r = run_cli("index", "--force", env=_env(small_corpus, ix))
            assert r.returncode == 0, r.stderr
            assert r.stdout.startswith("indexed 2 transcripts (2 analysed, 0 unchanged)")
    finally:
        stop.set()
        worker.join()
    assert not errors and seen and all("Raptor engine" in t for t in seen)
    assert serving.is_dir()  # still leased by this process: not pruned
    assert s.refresh() is True and s.index.folder != serving  # the newest build, picked up
    assert "Raptor engine" in s.search("raptor methane")[0].text
    gc.collect()
    r = run_cli("index", "--force", env=_env(small_corpus, ix))
    assert r.returncode == 0, r.stderr
    assert not serving.exists()  # released, so the next build removed it
    assert s.index.folder.is_dir() and s.search("raptor methane")


def test_two_processes_building_into_one_folder_take_turns(small_corpus, tmp_path):
    ix = tmp_path / "ix"
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from retrieval.index import IndexStore
        from retrieval.library import update_index
        corpus = Path({str(small_corpus)!r})
        for _ in range(3):
            r = update_index(corpus, corpus / "corpus.toml", IndexStore(Path({str(ix)!r})), force=True)
            assert r.index.size > 0
        print("ok")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o[0].strip() for o in outs] == ["ok", "ok"]
    builds = sorted(p.name for p in (ix / "builds").iterdir())
    assert not [b for b in builds if b.startswith((".tmp", ".trash"))]
    assert (ix / "current").resolve().name in builds
    s = _open(small_corpus, ix)
    assert "Raptor engine" in s.search("raptor methane")[0].text
    assert s.refresh() is False  # up to date: nothing rebuilt


def write_chaptered_episode(corpus: Path) -> Path:
    """A yt-dlp style episode (video id in the name) with an ``.info.json`` giving its channel and two chapters."""
    import json

    corpus.mkdir()
    (corpus / "Rockets Explained [dQw4w9WgXcQ].en.vtt").write_text(
        "WEBVTT\n\n00:00.000 --> 00:05.000\nWelcome to the show about rockets. "
        + "We talk about launches and orbits and all the missions of the year. " * 8 + "\n\n"
        "01:05.000 --> 01:10.000\n" + "Engines burn methane with liquid oxygen in the chamber. " * 8
        + "The turbopump feeds the combustion chamber.\n", encoding="utf-8")
    (corpus / "Rockets Explained [dQw4w9WgXcQ].info.json").write_text(json.dumps({
        "id": "dQw4w9WgXcQ", "title": "Rockets Explained", "uploader": "Space Channel",
        "chapters": [{"start_time": 0.0, "end_time": 60.0, "title": "Intro"},
                     {"start_time": 60.0, "end_time": 120.0, "title": "Engines"}]}), encoding="utf-8")
    return corpus


def test_chapters_and_channel_reach_the_hit_from_a_saved_index(tmp_path):
    corpus = write_chaptered_episode(tmp_path / "c")
    open_searcher(corpus, None, tmp_path / "ix")
    s = open_searcher(corpus, None, tmp_path / "ix")  # loaded from disk this time
    hit = s.search("turbopump combustion")[0]
    assert hit.source.channel == "Space Channel"
    assert hit.source.chapters == ((0.0, "Intro"), (60.0, "Engines"))
    assert hit.passage.chapter == "Engines" == hit.source.chapter_at(hit.passage.start)
    assert s.search("welcome show")[0].passage.chapter == "Intro"


async def test_a_card_is_labelled_with_its_chapter(tmp_path):
    from bot.core import QuoteBot
    from bot.reply import Request, Via

    corpus = write_chaptered_episode(tmp_path / "c")
    bot = QuoteBot(open_searcher(corpus, None, tmp_path / "ix"))
    try:
        reply = await bot.handle(Request(text="turbopump methane", via=Via.CONSOLE))
        assert reply.cards[0].title == "Rockets Explained · Engines"
        assert "t=65s" in reply.cards[0].url
    finally:
        bot.close()
