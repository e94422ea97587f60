"""The two bundled formats: sectioned markdown (seed 000) and untimed plain text (seed 002)."""

import pytest

from retrieval.formats import TranscriptError, parse_file, parse_text

MARKDOWN = """<!-- summary -->
總結：這是編輯的摘要，不是引用。
<!-- endsummary -->

<small>原始影片：[https://www.youtube.com/watch?v=cFIlta1GkiE](https://www.youtube.com/watch?v=cFIlta1GkiE)</small>

### Elon Musk <small>[00:02]</small>
我們正處於智慧大爆炸的非常早期階段。

### Elon Musk <small>[03:08]</small>
It's so hard to be useful. Um the area under the curve.
"""


def test_markdown_sections_times_summary_and_link():
    t = parse_text(MARKDOWN, "talk.txt", "talk")
    assert t.timing == "section"
    assert t.url == "https://www.youtube.com/watch?v=cFIlta1GkiE"
    assert "編輯的摘要" in t.description
    assert all("摘要" not in u.text for u in t.utterances)  # the summary is never a quote
    assert [(u.start, u.section_end, u.speaker) for u in t.utterances] == [(2.0, 188.0, "Elon Musk"),
                                                                        (188.0, None, "Elon Musk")]
    assert t.utterances[1].text == "It's so hard to be useful. Um the area under the curve."
    assert t.utterances[1].line == 11


def test_markdown_bad_time_names_file_and_line():
    broken = MARKDOWN.replace("[03:08]", "[3:8x]")
    with pytest.raises(TranscriptError) as e:
        parse_text(broken, "talk.txt", "talk")
    assert str(e.value).startswith("talk.txt:10: ")
    assert "3:8x" in str(e.value)


def test_markdown_unclosed_summary_is_an_error():
    with pytest.raises(TranscriptError, match="summary block is never closed"):
        parse_text(MARKDOWN.replace("<!-- endsummary -->", ""), "talk.txt", "talk")


PLAIN = """- the following is a
conversation with elon musk. (elon whistling) - yeah, that's great.
- [elon] get tested grok approved. - [lex] always will exist,
- always has existed
"""


def test_plaintext_joins_wrapped_lines_and_splits_turns():
    t = parse_text(PLAIN, "pod.txt", "pod", {"lex": "Lex Fridman", "elon": "Elon Musk"})
    assert t.timing == "none" and t.turn_marker == "- "
    texts = [u.text for u in t.utterances]
    assert texts == [
        "the following is a conversation with elon musk. (elon whistling)",
        "yeah, that's great.",
        "get tested grok approved.",
        "always will exist,",
        "always has existed",
    ]
    assert [u.speaker for u in t.utterances] == [None, None, "Elon Musk", "Lex Fridman", None]
    assert [u.line for u in t.utterances] == [1, 2, 3, 3, 4]
    assert all(u.start is None for u in t.utterances)


def test_plaintext_binary_and_non_utf8_are_named(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"fine line\nsecond \x00\x01\x02\xff line\n")
    with pytest.raises(TranscriptError) as e:
        parse_file(p, "bad")
    assert str(e.value) == f"{p}:2: contains NUL bytes: a binary file, not a text transcript"
    p.write_bytes("fine line\nsecond line in cp1252: café\n".encode("cp1252"))
    assert parse_file(p, "ok").utterances[0].text.endswith("café")


def test_bundled_seeds_parse(tmp_path):
    from tests.conftest import BUNDLED

    a = parse_file(BUNDLED / "000_d3f1fd2ce462c45b.txt", "a")
    b = parse_file(BUNDLED / "002_9f98e31768688821.txt", "b", {"lex": "Lex Fridman", "elon": "Elon Musk"})
    assert a.timing == "section" and len(a.utterances) == 18
    assert a.utterances[-1].start == 48 * 60 + 13
    assert b.timing == "none" and len(b.utterances) > 500
    assert {"Lex Fridman", "Elon Musk"} <= {u.speaker for u in b.utterances}


def test_markdown_drops_a_section_start_that_repeats_the_previous_end():
    text = MARKDOWN + (
        "Going to other star systems. Um once you once you at\n\n"
        "### Elon Musk <small>[05:00]</small>\nstar systems. Um once you once you at least have two planets.\n"
    )
    t = parse_text(text, "talk.txt", "talk")
    assert t.utterances[-1].text == "least have two planets."
    assert t.utterances[-2].text.endswith("Um once you once you at")
