"""Transcripts as real tools write them: detection by content, new formats, encodings, speakers, limits, sidecars."""

import json

import pytest

from retrieval.corpus import load_corpus
from retrieval.formats import TranscriptError, detect, parse_file, parse_text


def rows(t):
    return [(u.text, u.start, u.end, u.speaker) for u in t.utterances]


# --- speakers ---------------------------------------------------------------------------------------------------

LABELLED_SRT = (
    "1\n00:00:01,000 --> 00:00:02,000\nAda: Welcome to the show,\n\n"
    "2\n00:00:02,000 --> 00:00:03,000\neveryone listening.\n\n"
    "3\n00:00:03,000 --> 00:00:04,000\nBo Lee: Thanks Ada.\n\n"
    "4\n00:00:04,000 --> 00:00:05,000\nAda: So, Bo.\n\n"
    "5\n00:00:05,000 --> 00:00:06,000\nNote: this is not a name.\n\n"
    "6\n00:00:06,000 --> 00:00:07,000\nBo Lee: Right.\n"
)


def test_srt_name_labels_become_speakers_carried_across_cues_and_leave_the_text():
    t = parse_text(LABELLED_SRT, "ep.srt", "ep")
    assert rows(t) == [
        ("Welcome to the show,", 1.0, 2.0, "Ada"),
        ("everyone listening.", 2.0, 3.0, "Ada"),
        ("Thanks Ada.", 3.0, 4.0, "Bo Lee"),
        ("So, Bo.", 4.0, 5.0, "Ada"),
        ("Note: this is not a name.", 5.0, 6.0, "Ada"),  # a one-off 'Note:' is words, not a speaker
        ("Right.", 6.0, 7.0, "Bo Lee"),
    ]
    assert t.speakers == ("Ada", "Bo Lee")


def test_a_full_name_that_opens_the_show_once_is_the_same_speaker_as_its_first_name_later():
    cues = ["Ada Byron King: Hello and welcome to the show.", "Bo: Thanks Ada.", "Ada: So, Bo, tell us about it.",
            "Bo: Sure, it started with a notebook.", "Ada: And then?", "Cy Young: Unrelated one-off."]
    text = "\n".join(f"{i}\n00:00:0{i},000 --> 00:00:0{i},900\n{c}\n" for i, c in enumerate(cues, 1))
    t = parse_text(text, "ep.srt", "ep")
    assert [u.speaker for u in t.utterances][:5] == ["Ada Byron King", "Bo", "Ada Byron King", "Bo", "Ada Byron King"]
    assert t.utterances[0].text == "Hello and welcome to the show."
    # a full name whose first name labels nothing is no label: those words stay the speaker's
    assert t.utterances[-1].speaker == "Ada Byron King" and t.utterances[-1].text == "Cy Young: Unrelated one-off."


def test_a_single_colon_prefix_is_not_taken_for_a_speaker():
    t = parse_text("1\n00:00:01,000 --> 00:00:02,000\nWarning: hot coffee.\n\n"
                   "2\n00:00:02,000 --> 00:00:03,000\nDrink slowly.\n", "a.srt", "a")
    assert [u.speaker for u in t.utterances] == [None, None]
    assert t.utterances[0].text == "Warning: hot coffee."


def test_vtt_voice_carries_forward_until_the_next_voice():
    text = ("WEBVTT\n\n00:00.000 --> 00:01.000\n<v Sarah>In today's episode\n\n"
            "00:01.000 --> 00:02.000\nwe talk trailers.\n\n"
            "00:02.000 --> 00:03.000\n<v Gillian>Hi there.\n\n"
            "00:03.000 --> 00:04.000\nMy question is simple.\n")
    assert [u.speaker for u in parse_text(text, "p.vtt", "p").utterances] == ["Sarah", "Sarah", "Gillian", "Gillian"]


def test_plain_text_and_markdown_name_turns():
    plain = "[SPEAKER_00]: Bonjour à tous.\n[SPEAKER_01]: Salut.\n[SPEAKER_00]: On commence.\n"
    assert rows(parse_text(plain, "w.txt", "w")) == [
        ("Bonjour à tous.", None, None, "SPEAKER_00"), ("Salut.", None, None, "SPEAKER_01"),
        ("On commence.", None, None, "SPEAKER_00")]
    md = ("Show notes with a [link](https://example.org).\n\n**Chris Adams:** Hello and welcome.\n\n"
          "More from Chris in a second paragraph.\n\n**Kate:** Thanks **Chris**.\n\n**Chris Adams:** Bye.\n\n"
          "**Kate:** Bye.\n")
    t = parse_text(md, "ep.md", "ep")
    assert rows(t)[:3] == [("Hello and welcome.", None, None, "Chris Adams"),
                           ("More from Chris in a second paragraph.", None, None, "Chris Adams"),
                           ("Thanks Chris.", None, None, "Kate")]
    assert "Show notes with a link." in t.description  # show notes are never quotes


# --- detection by content and new formats ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "suffix", "kind"),
    [
        ("[Music]\nhello there\n", ".txt", "plain"),
        ("[sam] rockets are great\n", ".txt", "plain"),
        ("1\n00:00:01,000 --> 00:00:02,000\nhi\n", ".txt", "srt"),
        ("1\n00:00:01,000 --> 00:00:02,000\nhi\n", ".vtt", "srt"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", ".srt", "vtt"),
        ("00:00:00.500 --> 00:00:07.000\nCaption\n", ".vtt", "vtt"),
        ("0:00:00.378,0:00:11.378\nCaption\n", ".txt", "sbv"),
        ('[{"text": "a", "start": 0, "duration": 1}]', ".txt", "json"),
    ],
)
def test_format_is_detected_by_content(text, suffix, kind):
    assert detect(text, suffix) == kind


def test_headerless_vtt_cues_parse_and_other_headerless_text_is_refused():
    t = parse_text("00:00:00.500 --> 00:00:07.000\nCaption one\n\n00:07.000 --> 00:08.000\nTwo\n", "h.vtt", "h")
    assert rows(t) == [("Caption one", 0.5, 7.0, None), ("Two", 7.0, 8.0, None)]
    with pytest.raises(TranscriptError, match="missing 'WEBVTT' header"):
        parse_text("garbage vtt file\n\n00:01.000 --> 00:02.000\nx\n", "g.vtt", "g")


def test_sbv_captions_and_an_end_before_start_keeps_the_words():
    t = parse_text("0:00:00.378,0:00:11.378\nCaption text #1\n\n0:00:13.489,0:00:15.489\nline 1\nline 2\n\n"
                   "0:00:17.484,0:00:16.543\nLast one\n", "s.sbv", "s")
    assert rows(t) == [("Caption text #1", 0.378, 11.378, None), ("line 1 line 2", 13.489, 15.489, None),
                       ("Last one", 17.484, None, None)]
    with pytest.raises(TranscriptError, match=r"s\.sbv:4: caption timing '0:00:13\.f89"):
        parse_text("0:00:00.378,0:00:11.378\nok\n\n0:00:13.f89,0:00:15.489\nbad\n", "s.sbv", "s")


def test_whisper_cpp_and_youtube_transcript_api_shapes():
    cpp = {"result": {"language": "fr"}, "transcription": [
        {"timestamps": {"from": "00:00:00,400", "to": "00:00:03,660"}, "offsets": {"from": 400, "to": 3660},
         "text": " Bonjour."}]}
    assert rows(parse_text(json.dumps(cpp), "a.json", "a")) == [("Bonjour.", 0.4, 3.66, None)]
    snippets = [{"text": "Hey", "start": 0.0, "duration": 1.5}, {"text": "there", "start": 1.5, "duration": 2.0}]
    want = [("Hey", 0.0, 1.5, None), ("there", 1.5, 3.5, None)]
    assert rows(parse_text(json.dumps([snippets]), "cli.json", "c")) == want
    fetched = {"snippets": snippets, "video_id": "GJLlxj_dtq8", "language": "English", "is_generated": False}
    assert rows(parse_text(json.dumps(fetched), "f.json", "f")) == want


def test_webvtt_recovers_as_the_spec_parser_does():
    text = ("WEBVTT\nKind: captions\n00:00.000 --> 00:01.000\nno blank line before me\n\n"
            "a stray block\nwithout timing\n\n"
            "00:01.000-->00:02.000 align:start\n   \nno spaces round the arrow\n\n"
            "1\n00:02.000 --> 00:03.000\ntwo\n00:03.000 --> 00:04.000\nthree\n\n"
            "100:00.000 --> 100:01.000\nlong minutes\n")
    assert rows(parse_text(text, "r.vtt", "r")) == [
        ("no blank line before me", 0.0, 1.0, None), ("no spaces round the arrow", 1.0, 2.0, None),
        ("two", 2.0, 3.0, None), ("three", 3.0, 4.0, None), ("long minutes", 6000.0, 6001.0, None)]


def test_srt_orphan_numbers_escapes_and_rolling_captions():
    text = ("1\n00:00:01,000 --> 00:00:02,000\nfirst\\Nline\\hend\n\n2\n\n"
            "3\n00:00:03,000 --> 00:00:04,000\n42\n")
    assert rows(parse_text(text, "o.srt", "o")) == [("first line end", 1.0, 2.0, None), ("42", 3.0, 4.0, None)]
    rolling = ("1\n00:00:00,030 --> 00:00:04,700\n \nhi Leon yeah okay cool\n\n"
               "2\n00:00:04,700 --> 00:00:04,710\nhi Leon yeah okay cool\n \n\n"
               "3\n00:00:04,710 --> 00:00:07,849\nhi Leon yeah okay cool\nhow's everyone doing\n\n"
               "4\n00:00:07,849 --> 00:00:07,859\nhow's everyone doing\n \n")
    assert [u.text for u in parse_text(rolling, "r.srt", "r").utterances] == ["hi Leon yeah okay cool",
                                                                             "how's everyone doing"]


# --- encodings and limits ----------------------------------------------------------------------------------------

SAMPLE = "1\n00:00:01,000 --> 00:00:02,000\nCafé déjà vu – “quoted”\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                      "utf-32-le", "utf-32-be", "cp1252"])
def test_encodings_are_detected(tmp_path, encoding):
    p = tmp_path / "e.srt"
    p.write_bytes(SAMPLE.encode(encoding))
    assert parse_file(p, "e").utterances[0].text == "Café déjà vu – “quoted”"


@pytest.mark.parametrize("encoding", ["gb18030", "big5"])
def test_chinese_legacy_encodings_are_detected(tmp_path, encoding):
    words = "我們正處於智慧大爆炸的非常早期階段，這是一個很長的句子，用來測試編碼偵測是否正確無誤。" * 3
    p = tmp_path / "c.srt"
    p.write_bytes(f"1\n00:00:01,000 --> 00:00:02,000\n{words}\n".encode(encoding))
    assert parse_file(p, "c").utterances[0].text == words


def test_binary_huge_and_deeply_nested_files_are_refused_with_a_reason(tmp_path):
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    with pytest.raises(TranscriptError, match="binary file"):
        parse_file(binary, "b")
    deep = tmp_path / "d.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(TranscriptError, match="nested too deeply"):
        parse_file(deep, "d")
    huge = tmp_path / "h.srt"
    with huge.open("wb") as f:
        f.truncate(50 * 1024 * 1024)
    with pytest.raises(TranscriptError, match=r"h\.srt:0: file is 50 MB, more than"):
        parse_file(huge, "h")


# --- sidecars and file names -------------------------------------------------------------------------------------

def test_ytdlp_sidecar_gives_title_link_date_channel_and_chapters(tmp_path):
    (tmp_path / "Rockets Explained [dQw4w9WgXcQ].en.vtt").write_text(
        "WEBVTT\n\n00:00.000 --> 00:05.000\nintro words\n\n01:05.000 --> 01:10.000\nengine words\n", encoding="utf-8")
    (tmp_path / "Rockets Explained [dQw4w9WgXcQ].info.json").write_text(json.dumps({
        "id": "dQw4w9WgXcQ", "title": "Rockets: Explained", "webpage_url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "upload_date": "20240131", "uploader": "Space Channel",
        "chapters": [{"start_time": 0.0, "end_time": 60.0, "title": "Intro"},
                     {"start_time": 60.0, "end_time": 120.0, "title": "Engines"}]}), encoding="utf-8")
    (t,) = load_corpus(tmp_path, None).transcripts
    assert (t.title, t.url, t.date, t.channel) == ("Rockets: Explained", "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                                                   "2024-01-31", "Space Channel")
    assert t.chapters == ((0.0, "Intro"), (60.0, "Engines"))


def test_file_names_give_readable_titles_and_video_links_and_the_manifest_overrides(tmp_path):
    vtt = "WEBVTT\n\n00:00.000 --> 00:05.000\nwords\n"
    (tmp_path / "My Talk [dQw4w9WgXcQ].en.vtt").write_text(vtt, encoding="utf-8")
    (tmp_path / "JCATu2WkOq8.en.vtt").write_text(vtt, encoding="utf-8")
    (tmp_path / "season_one-episode_two.vtt").write_text(vtt, encoding="utf-8")
    (tmp_path / "header.vtt").write_text("WEBVTT - Launch Day https://example.org/launch.mp3\n\n"
                                         "00:00.000 --> 00:05.000\nwords\n", encoding="utf-8")
    got = {t.path.rsplit("/", 1)[1]: (t.title, t.url) for t in load_corpus(tmp_path, None).transcripts}
    assert got == {
        "My Talk [dQw4w9WgXcQ].en.vtt": ("My Talk", "https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
        "JCATu2WkOq8.en.vtt": ("JCATu2WkOq8", "https://www.youtube.com/watch?v=JCATu2WkOq8"),
        "season_one-episode_two.vtt": ("season one episode two", None),
        "header.vtt": ("Launch Day", "https://example.org/launch.mp3"),
    }
    manifest = tmp_path / "corpus.toml"
    manifest.write_text('[[source]]\nfile = "My Talk [dQw4w9WgXcQ].en.vtt"\ntitle = "Chosen"\n'
                        'url = "https://example.org/x"\n', encoding="utf-8")
    chosen = next(t for t in load_corpus(tmp_path, manifest).transcripts if t.title == "Chosen")
    assert chosen.url == "https://example.org/x"
