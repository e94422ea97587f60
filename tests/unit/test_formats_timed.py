"""Timed transcript formats: WebVTT (incl. yt-dlp rolling captions), SRT and the three JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.formats import jsonformats, parse_text, srt, webvtt
from retrieval.formats.errors import TranscriptError

DATA = Path(__file__).resolve().parents[1] / "data" / "formats"


def rows(transcript):
    return [(u.text, u.start, u.end, u.speaker) for u in transcript.utterances]


def error_of(parser, text: str, path: str) -> str:
    with pytest.raises(TranscriptError) as caught:
        parser(text, path, "src")
    return str(caught.value)


# --- WebVTT -----------------------------------------------------------------------------------------------------

def test_ytdlp_rolling_captions_give_each_line_once_at_its_first_time():
    path = DATA / "ytdlp_rolling.en.vtt"
    transcript = webvtt.parse(path.read_text(encoding="utf-8"), str(path), "yt")

    assert transcript.timing == "exact"
    assert rows(transcript) == [
        ("so the first thing I want to ask", 0.16, 2.869, None),
        ("is about the Fermi paradox", 2.879, 5.269, None),
        ("[Music]", 5.279, 7.51, None),
        # The same words spoken twice in a row stay twice: only carried-over lines are dropped.
        ("yeah yeah", 7.52, 9.19, None),
        ("yeah yeah", 9.2, 11.04, None),
        ("R&D is hard", 11.05, 62.48, None),
    ]
    # Each utterance points at the file line where its words were first written (the build-up cue).
    assert [u.line for u in transcript.utterances] == [7, 15, 23, 31, 39, 47]


def test_rolling_captions_without_word_tags_are_still_deduplicated_by_their_flash_cues():
    text = (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:03.000\n \nwe landed the booster\n\n"
        "00:00:03.000 --> 00:00:03.010\nwe landed the booster\n \n\n"
        "00:00:03.010 --> 00:00:05.000\nwe landed the booster\non the first try\n\n"
        "00:00:05.000 --> 00:00:05.010\non the first try\n \n"
    )
    assert rows(webvtt.parse(text, "flash.vtt", "f")) == [
        ("we landed the booster", 1.0, 3.0, None),
        ("on the first try", 3.01, 5.0, None),
    ]


PLAIN_VTT = """WEBVTT - Lex Fridman Podcast #400

NOTE
Edited by hand; voices checked.

STYLE
::cue(v[voice="Elon Musk"]) { color: red }

intro-1
00:01.000 --> 00:04.250 line:0 position:20%
<v Lex Fridman>The following is a conversation
with Elon Musk.

00:04.250 --> 00:07.125
<v.loud Elon Musk>Thanks for having me &amp; the team.</v>
<v Lex Fridman>Of course.

00:07.125 --> 00:08.000
<v Elon Musk>   </v>

01:02:03.004 --> 01:02:05.500
<i>Is it &lt;possible&gt;</i> to go
to <c.yellow>Mars</c>?
"""


def test_webvtt_cues_voices_entities_and_settings():
    transcript = webvtt.parse(PLAIN_VTT, "talk.vtt", "talk")

    assert rows(transcript) == [
        ("The following is a conversation with Elon Musk.", 1.0, 4.25, "Lex Fridman"),
        ("Thanks for having me & the team.", 4.25, 7.125, "Elon Musk"),
        ("Of course.", 4.25, 7.125, "Lex Fridman"),
        ("Is it <possible> to go to Mars?", 3723.004, 3725.5, None),
    ]
    assert [u.line for u in transcript.utterances] == [11, 15, 16, 22]
    assert transcript.speakers == ("Lex Fridman", "Elon Musk")


def test_webvtt_times_come_from_whole_milliseconds():
    text = "WEBVTT\n\n00:00:00.001 --> 10:00:00.999\nfirst\n\n00:59.999 --> 01:00.000\nsecond\n"
    assert rows(webvtt.parse(text, "ms.vtt", "ms")) == [
        ("first", 0.001, 36000.999, None),
        ("second", 59.999, 60.0, None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("WEBVTT\n\n00:01.5 --> x\nhello\n",
         "bad.vtt:3: cue timing '00:01.5 --> x' is not HH:MM:SS.mmm --> HH:MM:SS.mmm"),
        ("1\n00:00:01,000 --> 00:00:02,000\nhello\n",
         "bad.vtt:1: missing 'WEBVTT' header, file starts with '1'"),
        ("WEBVTT\n\nq1\n00:00:05.000 --> 00:00:04.000\nbackwards\n",
         "bad.vtt:4: cue ends (00:00:04.000) before it starts (00:00:05.000)"),
    ],
)
def test_webvtt_errors_name_file_line_and_reason(text, message):
    assert error_of(webvtt.parse, text, "bad.vtt") == message


# --- SRT --------------------------------------------------------------------------------------------------------

SRT_TEXT = (
    "\ufeff1\r\n00:00:01,000 --> 00:00:03,500\r\n<i>Hello</i> there,\r\nfriend.\r\n\r\n"
    "00:00:03,500 --> 00:00:05,000\r\n{\\an8}No index here.\r\n\r\n"
    "3\r\n00:00:05,000 --> 00:00:07,250\r\n1984\r\n\r\n"
    "4\r\n00:00:07,250 --> 00:00:08,000\r\n<b> </b>\r\n\r\n"
    "5\r\n01:00:00,001 --> 01:00:02,000 X1:100 X2:200 Y1:10 Y2:20\r\n"
    "<font color=\"#ffff00\">Last</font> one,\r\n\r\nafter a stray blank line.\r\n"
)


def test_srt_tolerates_bom_crlf_missing_index_and_tags():
    transcript = srt.parse(SRT_TEXT, "ep.srt", "ep")

    assert transcript.timing == "exact"
    assert rows(transcript) == [
        ("Hello there, friend.", 1.0, 3.5, None),
        ("No index here.", 3.5, 5.0, None),
        ("1984", 5.0, 7.25, None),
        ("Last one, after a stray blank line.", 3600.001, 3602.0, None),
    ]
    assert [u.line for u in transcript.utterances] == [3, 7, 11, 19]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:01.5 --> 00:00:02,000\nbad\n",
         "s.srt:6: subtitle timing '00:00:01.5 --> 00:00:02,000' is not HH:MM:SS,mmm --> HH:MM:SS,mmm"),
        ("Title: my talk\n1\n00:00:01,000 --> 00:00:02,000\nhello\n",
         "s.srt:1: expected a subtitle number or timing line, got 'Title: my talk'"),
        ("1\n00:00:09,000 --> 00:00:02,000\nbackwards\n",
         "s.srt:2: subtitle ends (00:00:02,000) before it starts (00:00:09,000)"),
    ],
)
def test_srt_errors_name_file_line_and_reason(text, message):
    assert error_of(srt.parse, text, "s.srt") == message


# --- JSON -------------------------------------------------------------------------------------------------------

def test_whisper_segments_become_utterances():
    path = DATA / "whisper_small.json"
    transcript = jsonformats.parse_whisper(path.read_text(encoding="utf-8"), str(path), "w")

    assert rows(transcript) == [
        ("So the first thing I want to ask", 0.0, 2.64, None),
        ("is about the Fermi paradox.", 2.64, 5.2, None),
    ]
    assert [u.line for u in transcript.utterances] == [4, 20]
    assert transcript.timing == "exact"


def test_whisperx_speaker_labels_are_kept():
    text = json.dumps({"language": "en", "segments": [
        {"start": 0.5, "end": 1.5, "text": " Hi.", "speaker": "SPEAKER_00"},
        {"start": 1.5, "end": 2.25, "text": " Hello.", "speaker": "SPEAKER_01"},
    ]})
    transcript = jsonformats.parse(text, "x.json", "x")
    assert rows(transcript) == [("Hi.", 0.5, 1.5, "SPEAKER_00"), ("Hello.", 1.5, 2.25, "SPEAKER_01")]
    assert transcript.speakers == ("SPEAKER_00", "SPEAKER_01")


YOUTUBE_JSON = """[
  {"text": "so the first thing I want to ask", "start": 0.16, "duration": 4.32},
  {"text": "is about\\nthe Fermi paradox", "start": 2.879, "duration": 4.64},
  {"text": "", "start": 7.2, "duration": 0.1},
  {"text": "[Music]", "start": 7.52, "duration": 2.0},
  {"text": "okay", "start": 12.0, "duration": 1.25}
]"""


def test_youtube_transcript_api_overlaps_end_at_the_next_start():
    transcript = jsonformats.parse_youtube(YOUTUBE_JSON, "yt.json", "yt")
    assert rows(transcript) == [
        ("so the first thing I want to ask", 0.16, 2.879, None),
        ("is about the Fermi paradox", 2.879, 7.2, None),
        ("[Music]", 7.52, 9.52, None),
        ("okay", 12.0, 13.25, None),
    ]
    assert [u.line for u in transcript.utterances] == [2, 3, 5, 6]


PODCAST_JSON = """{
  "version": "1.0.0",
  "segments": [
    {"speaker": "Lex Fridman", "startTime": 0.5, "endTime": 2.25, "body": "Welcome back."},
    {"speaker": "Elon Musk", "startTime": 2.25, "endTime": 4, "body": "Good to  be here."},
    {"startTime": 4, "endTime": 4.5, "body": "Yeah."}
  ]
}"""


def test_podcasting20_json_keeps_speakers_and_times():
    transcript = jsonformats.parse_podcast(PODCAST_JSON, "p.json", "p")
    assert rows(transcript) == [
        ("Welcome back.", 0.5, 2.25, "Lex Fridman"),
        ("Good to be here.", 2.25, 4.0, "Elon Musk"),
        ("Yeah.", 4.0, 4.5, None),
    ]
    assert transcript.speakers == ("Lex Fridman", "Elon Musk")


def test_sniff_json_tells_the_three_shapes_apart():
    assert jsonformats.sniff_json(json.loads(YOUTUBE_JSON)) is jsonformats.parse_youtube
    assert jsonformats.sniff_json(json.loads(PODCAST_JSON)) is jsonformats.parse_podcast
    whisper = json.loads((DATA / "whisper_small.json").read_text(encoding="utf-8"))
    assert jsonformats.sniff_json(whisper) is jsonformats.parse_whisper
    assert jsonformats.sniff_json({"version": "1.0.0", "segments": []}) is jsonformats.parse_podcast
    assert jsonformats.sniff_json({"items": [1, 2]}) is None
    assert jsonformats.sniff_json([1, 2]) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A segment without its start time: the line of that segment.
        ('{"segments": [\n {"start": 0, "end": 1, "text": "a"},\n {"start": 1, "end": 2, "text": "b"},\n'
         ' {"end": 3, "text": "c"}\n]}',
         "j.json:4: segment 3 has no start time ('start')"),
        ('{"version": "1.0.0",\n "segments": [\n  {"startTime": "0:01", "endTime": 2, "body": "x"}\n ]\n}',
         "j.json:3: segment 1 'startTime' is \"0:01\", not a number of seconds"),
        ('[\n {"text": "a", "start": 1.0, "duration": 1},\n {"text": 5, "start": 2.0, "duration": 1}\n]',
         "j.json:3: segment 2 'text' is not a string"),
        ('{"language": "en",\n "segments": [\n  {"start": 4, "end": 3, "text": "x"}\n ]\n}',
         "j.json:3: segment 1 ends (3) before it starts (4)"),
        ('{"language": "en",\n "segments": [\n  {"start": 0, "end": 1, "text": "x"}\n  {"start": 1}\n ]\n}',
         "j.json:4: invalid JSON: Expecting ',' delimiter"),
        ('{"language": "en", "text": "no segments here"}',
         "j.json:1: transcript JSON has no 'segments' array"),
        ('{"items": []}',
         "j.json:1: JSON is not a Whisper, youtube-transcript-api or Podcasting 2.0 transcript"),
    ],
)
def test_json_errors_name_file_line_and_reason(text, message):
    assert error_of(jsonformats.parse, text, "j.json") == message


# --- dispatch through the formats package ------------------------------------------------------------------------

def test_format_detection_routes_timed_files_to_these_parsers():
    vtt = parse_text(PLAIN_VTT, "talk.vtt", "talk")
    assert vtt.utterances[0].speaker == "Lex Fridman"
    srt_t = parse_text(SRT_TEXT.removeprefix("\ufeff"), "ep.srt", "ep")
    assert srt_t.utterances[-1].start == 3600.001
    podcast = parse_text(PODCAST_JSON, "transcript.json", "p")
    assert podcast.utterances[1].speaker == "Elon Musk"
    with pytest.raises(TranscriptError) as caught:
        parse_text('[\n {"text": "a", "start": 1.0},\n {"text": "b"}\n]', "raw.json", "r")
    assert str(caught.value) == "raw.json:3: segment 2 has no start time ('start')"
