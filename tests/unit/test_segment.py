"""Passages: bounded, whole words and sentences, overlapping, with honest start times."""

import itertools
import math

import pytest

from retrieval.formats import parse_file
from retrieval.model import Transcript, Utterance
from retrieval.segment import MAX_CHARS, join, segment
from tests.conftest import BUNDLED


@pytest.fixture(scope="module")
def seed000() -> Transcript:
    return parse_file(BUNDLED / "000_d3f1fd2ce462c45b.txt", "yc")


@pytest.fixture(scope="module")
def seed002() -> Transcript:
    return parse_file(BUNDLED / "002_9f98e31768688821.txt", "lex")


def test_passages_are_bounded_and_cut_at_word_boundaries(seed000, seed002):
    for t in (seed000, seed002):
        seg = segment(t)
        assert seg.passages
        for p in seg.passages:
            assert 0 < len(p.text) <= MAX_CHARS
            assert seg.text[p.char_start : p.char_end] == p.text  # a verbatim span of the transcript
            before = seg.text[p.char_start - 1 : p.char_start]
            after = seg.text[p.char_end : p.char_end + 1]
            # English words are never cut in half (CJK text has no spaces to respect)
            if before.isascii() and before.isalnum():
                assert not p.text[0].isascii() or not p.text[0].isalnum()
            if after.isascii() and after.isalnum():
                assert not p.text[-1].isascii() or not p.text[-1].isalnum()


def test_english_passages_start_and_end_at_sentences(seed000):
    seg = segment(seed000)
    english = [p for p in seg.passages if p.text.isascii()]
    assert english
    ends = sum(p.text.rstrip()[-1] in ".?!" for p in english)
    starts = sum(p.text[0].isupper() for p in english)
    # the rest are run-on ASR sentences longer than a window, cut between words
    assert ends / len(english) > 0.8 and starts / len(english) > 0.8


def test_windows_overlap_so_every_sentence_is_covered_twice_mostly(seed002):
    seg = segment(seed002)
    ps = seg.passages
    # Windows overlap inside one speaker's run; a turn change starts a fresh window.
    same_run = [(a, b) for a, b in itertools.pairwise(ps) if a.speaker == b.speaker]
    overlapping = sum(1 for a, b in same_run if b.char_start < a.char_end)
    assert overlapping / len(same_run) > 0.8
    covered = [False] * len(seg.text)
    for p in ps:
        covered[p.char_start : p.char_end] = [True] * (p.char_end - p.char_start)
    assert sum(covered) / len(seg.text) > 0.99


def test_seed000_link_time_lies_in_its_section_and_not_after_its_first_word(seed000):
    seg = segment(seed000)
    _text, spans = join(seed000)
    for p in seg.passages:
        k = max(i for i, (a, _) in enumerate(spans) if a <= p.char_start)
        u = seed000.utterances[k]
        a, b = spans[k]
        end = u.section_end if u.section_end is not None else u.section_start + 10_000
        assert u.section_start <= p.start <= end
        if u.section_end is not None:
            first_word = u.section_start + (p.char_start - a) / (b - a) * (u.section_end - u.section_start)
            assert p.start <= first_word
            assert p.start == math.floor(p.start)  # whole seconds: the link never lands after the words


def test_last_section_without_an_end_uses_the_median_rate(seed000):
    seg = segment(seed000)
    last_start = seed000.utterances[-1].section_start
    tail = [p for p in seg.passages if p.start is not None and p.start >= last_start]
    assert len(tail) > 2
    assert tail[-1].start > tail[0].start  # later passages of the last section get later times


def test_untimed_text_has_no_times_but_a_position(seed002):
    seg = segment(seed002)
    assert all(p.start is None for p in seg.passages)
    positions = [p.position for p in seg.passages]
    assert positions == sorted(positions) and 0 <= positions[0] < 0.01 and positions[-1] > 0.95


def test_exact_times_come_from_the_utterance():
    t = Transcript("x", "x.srt", [Utterance("First words here.", 1.5, 3.0), Utterance("Then more words.", 65.25, 70)],
                   timing="exact")
    seg = segment(t, target=3)
    assert [(p.text, p.start) for p in seg.passages][:2] == [("First words here.", 1.5), ("Then more words.", 65.25)]


def test_a_passage_never_spans_two_speakers():
    t = Transcript("x", "x.txt", [Utterance("Hello there my friend.", speaker="A"),
                                  Utterance("How are you today?", speaker="A"),
                                  Utterance("Hi.", speaker="B"),
                                  Utterance("Unlabelled words follow here.", speaker=None)], turn_marker="- ")
    seg = segment(t, target=100)
    assert [(p.text, p.speaker) for p in seg.passages] == [
        ("Hello there my friend. - How are you today?", "A"),
        ("Hi.", "B"),
        ("Unlabelled words follow here.", None),
    ]
    # Without speakers nothing is cut: the window spans the utterances.
    plain = Transcript("y", "y.txt", [Utterance("Hello there my friend."), Utterance("Hi.")], turn_marker="- ")
    assert [p.text for p in segment(plain, target=100).passages] == ["Hello there my friend. - Hi."]


def test_passages_carry_the_chapter_they_start_in():
    t = Transcript("c", "c.vtt", [Utterance("Intro words here.", 0.0, 5.0), Utterance("Main topic now.", 65.0, 70.0)],
                   timing="exact", chapters=((0.0, "Intro"), (60.0, "Main part")))
    seg = segment(t, target=3)
    assert [(p.start, p.chapter) for p in seg.passages] == [(0.0, "Intro"), (65.0, "Main part")]


def test_stand_alone_quotes_are_whole_sentences_of_one_turn(seed002):
    seg = segment(seed002)
    _, spans = join(seed002)
    assert len(seg.quotes) > 50
    for q in seg.quotes:
        assert any(a <= q.char_start and q.char_end <= b for a, b in spans)  # never crosses a speaker turn
        assert 80 <= len(q.text) <= 400
        assert q.text.rstrip()[-1] in ".!。！…"
        assert not q.text.startswith(("and ", "but ", "so ", "uh", "um"))
