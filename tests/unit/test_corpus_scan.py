"""Corpus folders as users keep them: nested, mixed, partly broken, with yt-dlp sidecars, no manifest."""

import json

import pytest

from retrieval.corpus import load_corpus, load_source, scan_corpus
from retrieval.formats import TranscriptError

SRT = "1\n00:00:01,000 --> 00:00:02,000\n{text}\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_many_broken_files_are_reported_together_and_the_rest_index(tmp_path):
    write(tmp_path / "good.srt", SRT.format(text="the good words"))
    write(tmp_path / "bad1.srt", "1\n00:00:01,000 --> soon\nbad\n")
    write(tmp_path / "bad2.json", '{"segments": [')
    write(tmp_path / "bad3.vtt", "WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nbackwards\n")
    write(tmp_path / "cover.jpg", "not really a jpeg")
    corpus = load_corpus(tmp_path, None)
    assert [t.source_id for t in corpus.transcripts] == ["good"]
    reported = sorted(str(e) for e in corpus.left_out)
    assert len(reported) == 3
    assert reported[0].startswith(f"{tmp_path / 'bad1.srt'}:2: ")
    assert reported[1].startswith(f"{tmp_path / 'bad2.json'}:1: invalid JSON")
    assert reported[2].startswith(f"{tmp_path / 'bad3.vtt'}:3: ")
    assert corpus.unsupported == [str(tmp_path / "cover.jpg")]


def test_a_folder_where_nothing_indexes_is_an_error(tmp_path):
    write(tmp_path / "bad.srt", "1\n00:00:01,000 --> soon\nbad\n")
    with pytest.raises(TranscriptError, match=r"bad\.srt:2: "):
        load_corpus(tmp_path, None)
    with pytest.raises(TranscriptError, match="does not exist"):
        scan_corpus(tmp_path / "missing", None)


def test_source_ids_are_unique_for_same_stems_nested_folders_and_long_names(tmp_path):
    long_a = "a" * 60 + "-episode-one.srt"
    long_b = "a" * 60 + "-episode-two.srt"
    for name in ("x.srt", "x.vtt", "s1/ep.srt", "s1-ep.srt", long_a, long_b, "plain.srt"):
        vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\nw\n"
        write(tmp_path / name, vtt if name.endswith(".vtt") else SRT.format(text="w"))
    scan = scan_corpus(tmp_path, None)
    ids = {f.name: f.source_id for f in scan.files}
    assert len(set(ids.values())) == len(ids) == 7
    assert ids["plain.srt"] == "plain"
    assert ids["x.srt"] == "x.srt" and ids["x.vtt"] == "x.vtt"
    assert ids["s1/ep.srt"] != ids["s1-ep.srt"]
    assert all(len(sid) <= 64 for sid in ids.values())
    assert scan_corpus(tmp_path, None).files == scan.files  # stable between scans
    corpus = load_corpus(tmp_path, None)
    assert len(corpus.transcripts) == 7 and not corpus.left_out


def test_manifest_ids_win_and_a_duplicate_manifest_id_is_a_problem_not_a_stop(tmp_path):
    write(tmp_path / "a.srt", SRT.format(text="alpha"))
    write(tmp_path / "b.srt", SRT.format(text="beta"))
    manifest = write(tmp_path / "corpus.toml", '[[source]]\nfile = "a.srt"\nid = "same"\n\n'
                                               '[[source]]\nfile = "b.srt"\nid = "same"\n')
    scan = scan_corpus(tmp_path, manifest)
    assert [f.source_id for f in scan.files] == ["same", "b"]
    assert len(scan.problems) == 1 and "already used" in str(scan.problems[0])
    assert scan.unsupported == []  # the manifest is not an unsupported file


def test_stamp_and_content_hash_change_with_the_file_and_its_sidecar(tmp_path):
    sub = write(tmp_path / "Talk [dQw4w9WgXcQ].en.srt", SRT.format(text="hello"))
    info = write(tmp_path / "Talk [dQw4w9WgXcQ].info.json", json.dumps({"title": "A Talk"}))
    (f,) = scan_corpus(tmp_path, None).files
    assert f.sidecars == (info,)
    before_stamp, before_hash = f.stamp(), f.content_hash()
    info.write_text(json.dumps({"title": "Another Talk"}), encoding="utf-8")
    assert f.content_hash() != before_hash
    assert f.stamp() != before_stamp or f.content_hash() != before_hash
    write(sub, SRT.format(text="changed"))
    assert f.content_hash() != before_hash
    assert load_source(f, scan_corpus(tmp_path, None).manifest).title == "Another Talk"
