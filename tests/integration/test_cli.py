"""The command-line contract other tools script against (design.md)."""

import json
import os
import subprocess
import sys

from tests.conftest import run_cli

FIELDS = {"text": str, "source_id": str, "title": str, "score": float}


def test_search_json_streams_one_flushed_line_per_query():
    p = subprocess.Popen([sys.executable, "-m", "bot.cli", "search", "--json", "--top-k", "3"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        answers = []
        for q in ("what did elon say about the fermi paradox", "", "馬斯克1995年在史丹佛讀什麼博士"):
            p.stdin.write(q + "\n")
            p.stdin.flush()
            answers.append(json.loads(p.stdout.readline()))  # arrives before stdin is closed
        p.stdin.close()
        assert p.wait(timeout=60) == 0
        assert p.stdout.read() == ""
    finally:
        p.kill()
    first, empty, chinese = answers
    assert first["query"] == "what did elon say about the fermi paradox"
    assert 1 <= len(first["results"]) <= 3
    for r in first["results"]:
        for name, kind in FIELDS.items():
            assert isinstance(r[name], kind), name
        assert len(r["text"]) <= 600
        assert r["speaker"] is None or isinstance(r["speaker"], str)
        assert r["start"] is None or isinstance(r["start"], float)
    assert any("paradox" in r["text"].lower() for r in first["results"])
    yc = [r for r in first["results"] if r["source_id"] == "yc-ai-school-2025"]
    assert yc and yc[0]["url"].startswith("https://www.youtube.com/watch?v=cFIlta1GkiE&t=")
    assert empty == {"query": "", "results": []}
    assert chinese["results"] and "博士" in chinese["results"][0]["text"]


def test_search_with_query_argument_prints_one_line():
    r = run_cli("search", "--json", "--top-k", "2", "kardashev", "scale")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["query"] == "kardashev scale" and len(data["results"]) == 2
    assert any(k in data["results"][0]["text"].lower() for k in ("kadesv", "car shift", "cev scale", "kv 3"))


def test_ask_prints_quote_speaker_and_timestamp_link():
    r = run_cli("ask", "what did elon say about the fermi paradox")
    assert r.returncode == 0, r.stderr
    assert "youtube.com/watch?v=cFIlta1GkiE&t=" in r.stdout
    assert "paradox" in r.stdout.lower()


def test_run_console_answers_each_line_and_exits_at_eof():
    r = run_cli("run", stdin="what did elon say about the fermi paradox\nsources\n")
    assert r.returncode == 0, r.stderr
    assert "youtube.com/watch?v=cFIlta1GkiE&t=" in r.stdout
    assert "Transcripts I search:" in r.stdout
    assert "Lex Fridman Podcast #400" in r.stdout


def test_index_reports_bad_transcript_and_keeps_previous_index(small_corpus, tmp_path):
    env = {"QUOTEBOT_INDEX_DIR": str(tmp_path / "ix")}
    ok = run_cli("--corpus", str(small_corpus), "index", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "indexed 2 transcripts" in ok.stdout
    live = os.readlink(tmp_path / "ix" / "current")
    verify = run_cli("--corpus", str(small_corpus), "index", env=env)
    assert verify.returncode == 0 and "index is up to date" in verify.stdout
    assert os.readlink(tmp_path / "ix" / "current") == live
    bad = small_corpus / "late.vtt"
    bad.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfine\n\n00:00:03.000 --> 00:00:0x.000\nbroken\n",
                   encoding="utf-8")
    r = run_cli("index", "--corpus", str(small_corpus), env=env)
    assert r.returncode == 1
    # the broken file is named with its line; the other files stay indexed
    assert f"{bad}:6: " in r.stderr, r.stderr
    # searching still answers from the previous index
    s = run_cli("--corpus", str(small_corpus), "search", "--json", "raptor", env=env)
    assert s.returncode == 0 and json.loads(s.stdout)["results"]


def test_bad_setting_names_the_variable_and_hides_secrets():
    r = run_cli("search", "--json", "x", env={"DISCORD_SHARD_COUNT": "many", "DISCORD_TOKEN": "sekrit-token-value"})
    assert r.returncode == 2
    assert "DISCORD_SHARD_COUNT" in r.stderr and "many" in r.stderr
    assert "sekrit-token-value" not in r.stderr + r.stdout
    r = run_cli("run", "--platform", "discord")
    assert r.returncode == 2 and "DISCORD_TOKEN" in r.stderr


def test_missing_corpus_folder_is_a_clear_error(tmp_path):
    r = run_cli("--corpus", str(tmp_path / "nope"), "search", "--json", "x")
    assert r.returncode == 2 and "is not a folder" in r.stderr
