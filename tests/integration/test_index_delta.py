"""Delta generations: a change to a large index goes live without rewriting it, scores stay exact."""

import bm25s
import numpy as np

from retrieval.analyze import Analyzer
from retrieval.corpus import load_corpus
from retrieval.index import BM25Params, IndexStore, build, load
from retrieval.library import DeltaPolicy, merge_index, update_index
from retrieval.search import open_searcher

EPISODE = ("1\n00:00:02,000 --> 00:00:06,000\nToday we talk about glaciers and the ice sheets of Greenland.\n\n"
           "2\n00:00:06,500 --> 00:00:12,000\nThe glaciers melt faster every summer, the ice shelf breaks apart.\n")
QUERIES = ["glaciers ice", "ocean deep fish", "mars cold", "ice shelf summer", "raptor methane", "volcano spring"]


ALWAYS = DeltaPolicy(min_passages=0, merge_share=0.9, max_share=1.0)


def _update(corpus, ix, policy=ALWAYS, **kw):
    return update_index(corpus, corpus / "corpus.toml", IndexStore(ix), policy=policy, **kw)


def _by_key(index, scores) -> dict[str, float]:
    return {index.passage(d).key: float(scores[d]) for d in np.flatnonzero(index.live)}


def _assert_scores_equal_a_full_rebuild(index, corpus, analyzer) -> None:
    full = build(load_corpus(corpus, corpus / "corpus.toml"), Analyzer({"fermi": ("foamy paradox",)}), BM25Params())
    docs = [[t.term for t in analyzer.document_tokens(full.passage(d).text) if not analyzer.is_stopword(t.term)]
            for d in range(full.size)]
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(docs, show_progress=False)
    assert index.live_size == full.size
    for q in QUERIES:
        terms = analyzer.query_terms(q)
        ours = index.scores(index.term_ids(terms))
        assert np.all(ours[index.dead] == -1.0)
        ours = _by_key(index, ours)
        rebuilt = _by_key(full, full.scores(full.term_ids(terms)))
        known = [t for t in terms if t in full.vocab]
        reference = dict(zip((full.passage(d).key for d in range(full.size)),
                             (np.asarray(ref.get_scores(known)) * 2.2 if known else np.zeros(full.size)).tolist(),
                             strict=True))
        assert ours.keys() == rebuilt.keys() == reference.keys()
        for k in ours:
            assert abs(ours[k] - rebuilt[k]) < 1e-5 and abs(ours[k] - reference[k]) < 1e-3, (q, k)


def test_added_changed_and_removed_files_go_live_as_deltas_with_the_scores_of_a_full_rebuild(small_corpus, tmp_path):
    ix = tmp_path / "ix"
    s = open_searcher(small_corpus, small_corpus / "corpus.toml", ix, policy=ALWAYS)
    first = s.index
    first_texts = [first.passage(d).text for d in range(first.size)]
    (small_corpus / "ice.srt").write_text(EPISODE, encoding="utf-8")
    r = _update(small_corpus, ix, merge="never")
    assert r.delta and r.analysed == 1 and r.reused == 2 and not len(r.index.dead)
    chat = small_corpus / "chat.txt"
    chat.write_text(chat.read_text(encoding="utf-8") + "- and the volcano? - [guest] it erupts every spring.\n",
                    encoding="utf-8")
    r = _update(small_corpus, ix, merge="never")
    assert r.delta and r.analysed == 1 and len(r.index.dead) > 0
    (small_corpus / "talk.srt").unlink()
    r = _update(small_corpus, ix, merge="never")
    index = r.index
    assert r.delta and not index.meta["exact"]
    assert sorted(x.source_id for x in index.sources) == ["chat", "ice"]
    # the files a delta appends to are shared with the first generation, which reads as before
    assert [first.passage(d).text for d in range(first.size)] == first_texts
    assert [load(first.folder).passage(d).text for d in range(first.size)] == first_texts
    assert s.refresh() is True
    assert "volcano" in s.search("volcano spring")[0].text
    assert "Greenland" in s.search("glaciers greenland")[0].text
    assert not s.search("raptor methane")
    assert {h.source.source_id for q in QUERIES for h in s.search(q)} <= {"chat", "ice"}
    _assert_scores_equal_a_full_rebuild(index, small_corpus, s.analyzer)
    assert merge_index(IndexStore(ix)) is True
    merged = IndexStore(ix).load()
    assert merged.meta["exact"] and not len(merged.dead) and merged.size == index.live_size
    assert merged.fingerprint == index.fingerprint
    _assert_scores_equal_a_full_rebuild(merged, small_corpus, s.analyzer)
    assert s.refresh() is True and s.index.folder == merged.folder  # same content, the merged generation
    assert "volcano" in s.search("volcano spring")[0].text


def test_a_delta_that_grows_is_merged(small_corpus, tmp_path):
    ix = tmp_path / "ix"
    _update(small_corpus, ix)
    eager = DeltaPolicy(min_passages=0, merge_share=0.01, max_share=1.0)
    (small_corpus / "ice.srt").write_text(EPISODE, encoding="utf-8")
    r = _update(small_corpus, ix, eager, merge="later")
    assert r.delta and r.merge_due and not r.index.meta["exact"]  # one episode is a large share of this index
    chat = small_corpus / "chat.txt"
    chat.write_text(chat.read_text(encoding="utf-8") + "- and glaciers? - [guest] the ice is old.\n", encoding="utf-8")
    r = _update(small_corpus, ix, eager, merge="now")
    assert r.built and not r.merge_due
    assert r.index.meta["exact"] and not len(r.index.dead)
    hits = open_searcher(small_corpus, small_corpus / "corpus.toml", ix).search("the ice is old")
    assert any("ice is old" in h.text for h in hits)


def test_a_broken_new_version_keeps_its_last_good_segment_in_a_delta(small_corpus, tmp_path):
    ix = tmp_path / "ix"
    s = open_searcher(small_corpus, small_corpus / "corpus.toml", ix, policy=ALWAYS)
    talk = small_corpus / "talk.srt"
    good = talk.read_text(encoding="utf-8")
    (small_corpus / "ice.srt").write_text(EPISODE, encoding="utf-8")
    talk.write_text(good.replace("00:00:04,500 --> 00:00:09,000", "00:00:04,500 --> soon")
                    .replace("Raptor", "Merlin"), encoding="utf-8")
    r = _update(small_corpus, ix, merge="never")
    assert r.delta and r.left_out and r.left_out[0].startswith(f"{talk}:")
    assert not len(r.index.dead)  # nothing replaced: the last good talk stays as it was
    assert s.refresh() is True
    assert "Raptor engine" in s.search("raptor methane")[0].text and not s.search("merlin")
    assert "Greenland" in s.search("glaciers greenland")[0].text


def test_a_running_searcher_serves_the_delta_then_the_merge_made_in_the_background(small_corpus, tmp_path):
    import time

    ix = tmp_path / "ix"
    eager = DeltaPolicy(min_passages=0, merge_share=0.01, max_share=1.0)
    s = open_searcher(small_corpus, small_corpus / "corpus.toml", ix, policy=eager)
    (small_corpus / "ice.srt").write_text(EPISODE, encoding="utf-8")
    assert s.refresh() is True  # the delta goes live at once; its merge starts in a thread
    assert "Greenland" in s.search("glaciers greenland")[0].text
    store = IndexStore(ix)
    for _ in range(600):  # the merge publishes a full generation of the same content
        meta = store.live_meta()
        if meta and meta["exact"]:
            break
        time.sleep(0.1)
    assert store.live_meta()["exact"]
    assert s.refresh() is True and s.index.meta["exact"] and not len(s.index.dead)
    assert "Greenland" in s.search("glaciers greenland")[0].text and "Raptor engine" in s.search("raptor")[0].text
    assert s.refresh() is False
