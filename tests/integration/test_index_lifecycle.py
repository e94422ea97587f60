"""The saved index: built on first use, memory-mapped, rebuilt on change, swapped whole."""

import logging
import time
from pathlib import Path

import pytest

from retrieval.formats import TranscriptError
from retrieval.search import open_searcher


def _open(corpus: Path, index_dir: Path):
    return open_searcher(corpus, corpus / "corpus.toml", index_dir)


def test_built_on_first_use_then_loaded_memory_mapped(small_corpus, tmp_path):
    s = _open(small_corpus, tmp_path / "ix")
    assert (tmp_path / "ix" / "current").is_symlink()
    hits = s.search("raptor methane")
    assert hits and "Raptor engine" in hits[0].text
    again = _open(small_corpus, tmp_path / "ix")
    assert again.index.fingerprint == s.index.fingerprint
    assert isinstance(again.index.a["docs"].base, memoryview)  # a view of the mapped file: loaded, not rebuilt
    assert not again.index.a["docs"].flags.owndata and not again.index.a["docs"].flags.writeable
    assert [h.text for h in again.search("raptor methane")] == [h.text for h in hits]


def test_hits_carry_source_speaker_time_and_deep_link(small_corpus, tmp_path):
    s = _open(small_corpus, tmp_path / "ix")
    hit = s.search("fermi")[0]  # found through the glossary alias "foamy paradox"
    assert "foamy paradox" in hit.text
    assert hit.source.title == "Rocket Talk"
    assert hit.passage.start == 1.0  # the passage starts with the first cue
    assert hit.url == "https://www.youtube.com/watch?v=abcdefghijk&t=1s"
    assert [hit.text[a:b] for a, b in hit.highlights] == ["foamy paradox"]
    fish = s.search("strange fish")[0]
    assert fish.passage.start is None and fish.url is None  # untimed, no URL in the manifest
    assert "strange fish" in fish.text


def test_rebuilt_when_a_transcript_changes(small_corpus, tmp_path):
    s = _open(small_corpus, tmp_path / "ix")
    assert not s.search("volcano")
    with open(small_corpus / "chat.txt", "a", encoding="utf-8") as f:
        f.write("- and the volcano? - it erupts every spring.\n")
    assert s.refresh() is True
    assert "volcano" in s.search("volcano")[0].text
    assert s.refresh() is False  # nothing changed since


def test_rebuilt_when_the_manifest_changes(small_corpus, tmp_path):
    s = _open(small_corpus, tmp_path / "ix")
    manifest = small_corpus / "corpus.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("Rocket Talk", "Engine Talk"), encoding="utf-8")
    assert s.refresh() is True
    assert s.search("raptor")[0].source.title == "Engine Talk"


def test_broken_file_is_left_out_named_by_file_and_line_and_the_rest_still_index(small_corpus, tmp_path, caplog):
    s = _open(small_corpus, tmp_path / "ix")
    (small_corpus / "broken.srt").write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> later\nbad timing\n", encoding="utf-8"
    )
    (small_corpus / "extra.txt").write_text("Plain words about glaciers.\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="retrieval.library"):
        assert s.refresh() is True
    assert s.search("raptor methane") and "glaciers" in s.search("glaciers")[0].text
    assert [r.getMessage() for r in caplog.records].count(
        f"left out of the index: {small_corpus / 'broken.srt'}:6: subtitle timing '00:00:03,000 --> later' "
        "is not HH:MM:SS,mmm --> HH:MM:SS,mmm") == 1
    assert s.index.meta["left_out"][0].startswith(f"{small_corpus / 'broken.srt'}:6: ")
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="retrieval.library"):
        assert s.refresh() is False  # unchanged: not parsed, nor reported, again
    assert not caplog.records
    builds = [p for p in (tmp_path / "ix" / "builds").iterdir()]
    assert not any(p.name.startswith((".tmp", ".trash")) for p in builds)


def test_no_index_yet_and_every_file_broken_is_an_error(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "broken.json").write_text('{"segments": [{"start": 1.0, "end": 2.0}', encoding="utf-8")
    with pytest.raises(TranscriptError, match=r"broken\.json:1: invalid JSON"):
        open_searcher(d, None, tmp_path / "ix")


def test_a_broken_new_version_keeps_the_last_good_one_until_fixed(small_corpus, tmp_path):
    s = _open(small_corpus, tmp_path / "ix")
    talk = small_corpus / "talk.srt"
    good = talk.read_text(encoding="utf-8")
    talk.write_text(good.replace("00:00:04,500 --> 00:00:09,000", "00:00:04,500 --> soon")
                    .replace("Raptor", "Merlin"), encoding="utf-8")
    assert s.refresh() is True
    assert "Raptor engine" in s.search("raptor methane")[0].text  # the last good version
    assert not s.search("merlin")
    assert s.index.meta["left_out"][0].startswith(f"{talk}:")
    talk.write_text(good.replace("Raptor", "Merlin"), encoding="utf-8")
    assert s.refresh() is True
    assert "Merlin engine" in s.search("merlin methane")[0].text and not s.search("raptor")
    assert not s.index.meta["left_out"]


def test_files_without_manifest_entry_still_index(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "my_great-episode.txt").write_text("Plain words about submarines and sonar.\n", encoding="utf-8")
    (d / "README.md").write_text("# not a transcript\n", encoding="utf-8")
    s = open_searcher(d, None, tmp_path / "ix")
    hit = s.search("submarine sonar")[0]
    assert hit.source.title == "my great episode" and hit.url is None
    assert [src.source_id for src in s.sources()] == ["my_great-episode"]
    assert not s.search("transcript")


def test_load_is_fast_enough_to_do_per_process(small_corpus, tmp_path):
    _open(small_corpus, tmp_path / "ix")
    t0 = time.perf_counter()
    _open(small_corpus, tmp_path / "ix")
    # not a speed assertion: the second open must not rebuild (no new build folder)
    assert len(list((tmp_path / "ix" / "builds").iterdir())) == 1
    assert time.perf_counter() >= t0
