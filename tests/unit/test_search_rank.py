"""Ranking details: neighbour smoothing, overlap collapse, quotes running on to the answer."""

import itertools

import numpy as np

from retrieval.analyze import Analyzer
from retrieval.corpus import Corpus
from retrieval.index import build
from retrieval.model import Transcript, Utterance
from retrieval.rank import smooth
from retrieval.search import Searcher

SENTENCES = [f"Sentence number {i} talks about topic{i} at some length here." for i in range(40)]


def _index(*transcripts: Transcript):
    return build(Corpus(list(transcripts), {}, "fp"), Analyzer())


def _talk(sid: str) -> Transcript:
    utts = [Utterance(s, float(i * 10), float(i * 10 + 9)) for i, s in enumerate(SENTENCES)]
    return Transcript(sid, f"{sid}.srt", utts, title=sid, timing="exact")


def test_neighbours_lend_a_share_of_their_score_within_one_source():
    index = _index(_talk("a"), _talk("b"))
    per_source = index.size // 2
    cand = np.array([per_source, 0, 1, per_source - 1])
    final = np.array([16.0, 1.0, 2.0, 8.0])
    out = smooth(index, cand, final, 0.5)
    # 0 borrows from 1, 1 from 0 (2 is no candidate); the last window of source a and the
    # first of source b are not neighbours.
    np.testing.assert_allclose(out, [16.0, 1.0 + 1.0, 2.0 + 0.5, 8.0])


def test_results_are_distinct_moments_and_run_on_to_whole_sentences():
    s = Searcher(_index(_talk("a")), Analyzer())
    hits = s.search("sentence talks length", k=10)
    assert len(hits) >= 2
    spans = sorted((h.passage.char_start, h.passage.char_end) for h in hits)
    for (_, a1), (b0, _) in itertools.pairwise(spans):
        assert a1 <= b0  # no two results show the same words
    for h in hits:
        window = s.index.passage(h.passage.pid)
        assert len(h.text) <= 600 and h.text.endswith(".")
        assert h.passage.char_start == window.char_start and h.passage.char_end >= window.char_end


def test_stored_highlights_match_a_fresh_analysis_of_the_shown_text(tmp_path):
    from retrieval.rank import merge_spans
    from retrieval.search import open_searcher
    from tests.conftest import BUNDLED, ROOT

    s = open_searcher(BUNDLED, ROOT / "config" / "corpus.toml", tmp_path / "ix")
    for query in ("fermi paradox", "kardashev scale energy", "火箭 發射 失敗", "un-regretted minutes", "raw materials"):
        terms = set(s.analyzer.query_terms(query))
        for hit in s.search(query, k=5):
            fresh = [(t.start, t.end) for t in s.analyzer.document_tokens(hit.text) if t.term in terms]
            assert hit.highlights == merge_spans(fresh), (query, hit.text[:80])
            assert hit.highlights  # every hit shows why it matched


def test_a_listeners_short_interjection_does_not_part_one_speakers_windows():
    long_a = " ".join(SENTENCES[:6])
    long_b = " ".join(SENTENCES[6:12])
    utts = [Utterance(long_a, 0.0, 30.0, speaker="Ann"), Utterance("Yes. Yes.", 30.0, 31.0, speaker="Bob"),
            Utterance(long_b, 31.0, 60.0, speaker="Ann")]
    index = _index(Transcript("t", "t.srt", utts, title="t", timing="exact"))
    spk = [index.speakers[i] if i >= 0 else None for i in np.asarray(index.a["p_speaker"])]
    mid = spk.index("Bob")
    before, after = mid - 1, mid + 1
    assert spk[before] == spk[after] == "Ann"
    cand = np.array([before, after])
    final = np.array([10.0, 4.0])
    # without the rule the two windows are not neighbours (Bob's window sits between them)
    np.testing.assert_allclose(smooth(index, cand, final, 0.5), [10.0, 4.0])
    np.testing.assert_allclose(smooth(index, cand, final, 0.5, interjection=5), [10.0 + 2.0, 4.0 + 5.0])
    # a longer turn of the other speaker does part them
    np.testing.assert_allclose(smooth(index, cand, final, 0.5, interjection=1), [10.0, 4.0])


def test_a_turn_runs_on_past_a_listeners_short_interjection_in_both_directions():
    from retrieval.rank import turn_end, turn_start

    long_a, long_b = " ".join(SENTENCES[:6]), " ".join(SENTENCES[6:12])
    utts = [Utterance(long_a, 0.0, 30.0, speaker="Ann"), Utterance("Yes. Yes.", 30.0, 31.0, speaker="Bob"),
            Utterance(long_b, 31.0, 60.0, speaker="Ann"), Utterance(" ".join(SENTENCES[12:18]), 60.0, 90.0,
                                                                      speaker="Bob")]
    index = _index(Transcript("t", "t.srt", utts, title="t", timing="exact"))
    spk = [index.speakers[i] for i in np.asarray(index.a["p_speaker"])]
    cs = np.asarray(index.a["p_cstart"])
    mid = spk.index("Bob")
    after = mid + 1
    bob_turn = mid + 1 + spk[mid + 1 :].index("Bob")
    # without the rule Bob's "Yes. Yes." ends and starts Ann's turns
    assert turn_end(index, 0) == cs[mid] and turn_start(index, after) == cs[after]
    # with it, Ann's turn runs from the first window to Bob's real turn
    assert turn_end(index, 0, interjection=5) == cs[bob_turn]
    assert turn_start(index, after, interjection=5) == cs[0]
    # Bob's longer turn is a turn of its own
    assert turn_end(index, after, interjection=5) == cs[bob_turn]


def test_a_chinese_question_is_not_answered_by_its_function_words_alone():
    talk = Transcript("zh", "zh.srt", [
        Utterance("他们那么早就到了，我们一起吃的早饭。", 0.0, 5.0),
        Utterance("火箭发动机燃烧甲烷和液氧。", 5.0, 9.0),
    ], title="zh", timing="exact")
    s = Searcher(_index(talk), Analyzer())
    # "how did they get enough power for the cluster so fast?": only 他们 / 那么 / 的电 are shared
    assert s.search("他们怎么那么快就弄到足够的电力？", k=3) == []
    assert "甲烷" in s.search("火箭发动机烧什么燃料？", k=1)[0].text
