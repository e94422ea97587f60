"""Podcast feeds against a real HTTP server on 127.0.0.1: fetching, storing, indexing, and every way a feed fails."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest

from retrieval.feeds.http import HttpOptions
from retrieval.feeds.manager import FeedManager, FeedOptions
from retrieval.feeds.parse import FeedError
from retrieval.index import IndexStore
from retrieval.library import open_searcher, update_index
from tests.integration.feeds_support import DATA, write_local_corpus

EP1 = "Episode 1: The Last Lighthouse Keeper — Harbour Lights"
EP2 = "Episode 2: Bees on the Breakwater — Harbour Lights"
EP3 = "Episode 3: Sourdough at Sea — Harbour Lights"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_local_corpus(tmp_path / "corpus")


def manager(corpus: Path, *, timeout: float = 5.0, max_bytes: int = 1024 * 1024) -> FeedManager:
    options = FeedOptions(refresh_minutes=60, http=HttpOptions(timeout_seconds=timeout, max_bytes=max_bytes))
    return FeedManager(corpus, corpus / "corpus.toml", options)


def searcher_for(corpus: Path, index_dir: Path):
    return open_searcher(corpus, corpus / "corpus.toml", index_dir)


def stored_files(corpus: Path) -> dict[str, int]:
    """Name -> mtime_ns of every episode file under feeds/."""
    return {p.relative_to(corpus).as_posix(): p.stat().st_mtime_ns
            for p in (corpus / "feeds").rglob("*") if p.is_file() and not p.name.startswith(".")}


async def test_first_fetch_stores_each_episode_best_transcript_with_titles_and_links(site, corpus, tmp_path):
    report = await manager(corpus).add(f"{site.base}/feed.xml")
    assert report.new == ["Episode 3: Sourdough at Sea", "Episode 2: Bees on the Breakwater",
                          "Episode 1: The Last Lighthouse Keeper"]
    # VTT over SRT, JSON over SRT, the HTML one; the trailer offers no transcript
    assert site.hits["/t/ep1.vtt"] == 1 and site.hits["/t/ep1.srt"] == 0
    assert site.hits["/t/ep2.json"] == 1 and site.hits["/t/ep2.srt"] == 0
    suffixes = sorted(Path(n).suffix for n in stored_files(corpus) if not n.endswith(".episode.json"))
    assert suffixes == [".html", ".json", ".vtt"]
    assert any(ua.startswith("quotebot/") for ua in site.agents)

    searcher = searcher_for(corpus, tmp_path / "idx")
    hit = searcher.search("foghorn")[0]
    assert hit.source.title == EP1 and hit.passage.speaker == "Tobias Wren"
    assert hit.source.channel == "Harbour Lights" and hit.source.date == "2024-03-06"
    assert hit.url == f"{site.base}/media/ep1.mp3#t=23"
    honey = searcher.search("breakwater honey summer storm")[0]
    assert honey.source.title == EP2 and honey.passage.speaker == "Ines Falk"
    assert honey.url == f"{site.base}/media/ep2.mp3#t=19"
    bread = searcher.search("sourdough starter stoneware crock")[0]
    assert bread.source.title == EP3 and bread.passage.speaker == "Oskar Lind"
    assert bread.url.startswith(f"{site.base}/media/ep3.mp3#t=")

    # a restart needs no network: the server is gone, a fresh index still has every episode
    await site.close()
    again = searcher_for(corpus, tmp_path / "idx-after-restart")
    assert {s.title for s in again.sources()} >= {EP1, EP2, EP3}
    assert again.search("foghorn")[0].url == f"{site.base}/media/ep1.mp3#t=23"


async def test_second_fetch_is_conditional_gets_304_and_changes_nothing(site, corpus):
    m = manager(corpus)
    await m.add(f"{site.base}/feed.xml")
    before = stored_files(corpus)
    hits_before = dict(site.hits)
    [report] = await m.refresh(force=True)
    assert report.status == "not modified" and not report.changed
    assert site.conditional["/feed.xml"] == 1
    assert site.hits["/feed.xml"] == hits_before["/feed.xml"] + 1
    assert {k: v for k, v in site.hits.items() if k != "/feed.xml"} == \
        {k: v for k, v in hits_before.items() if k != "/feed.xml"}  # no transcript fetched again
    assert stored_files(corpus) == before
    # not due yet: a scheduled round does not even ask
    assert await m.refresh() == []


async def test_new_episode_is_searchable_after_one_refresh_while_queries_keep_being_answered(site, corpus, tmp_path):
    m = manager(corpus)
    await m.add(f"{site.base}/feed.xml")
    store = IndexStore(tmp_path / "idx")
    searcher = searcher_for(corpus, tmp_path / "idx")
    assert searcher.search("iceberg calve thunder") == []

    answers: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                hits = searcher.search("foghorn")
                (answers if hits and hits[0].source.title == EP1 else failures).append("x")
            except Exception as e:  # pragma: no cover - reported below
                failures.append(repr(e))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        site.harbour(new_item=True)
        [report] = await m.refresh(force=True)
        assert report.new == ["Episode 4: Where Icebergs Are Born"]
        # only the new file is analysed; the other sources are carried over as they are
        built = await asyncio.to_thread(update_index, corpus, corpus / "corpus.toml", store)
        assert built.built and built.analysed == 1 and built.reused == 4
        assert await asyncio.to_thread(searcher.refresh)
        during = len(answers)
        while len(answers) < during + 3:  # the asker keeps being answered after the swap too
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        asker.join()
    assert failures == []
    hit = searcher.search("iceberg calve thunder")[0]
    assert hit.source.title == "Episode 4: Where Icebergs Are Born — Harbour Lights"
    assert hit.url.startswith(f"{site.base}/media/ep4.mp3#t=")


@pytest.mark.parametrize(("break_feed", "expected"), [
    (lambda s: s.fail("/feed.xml", 404), "HTTP 404"),
    (lambda s: s.fail("/feed.xml", 500), "HTTP 500"),
    (lambda s: s.hang("/feed.xml", 5), "timed out"),
    (lambda s: s.put("/feed.xml", '<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Harbour Lights'
                     "</title><description>Coasts & kitchens</description></channel>"), "malformed XML"),
], ids=["404", "500", "timeout", "malformed-xml"])
async def test_a_failing_feed_is_reported_and_keeps_its_episodes(site, corpus, tmp_path, break_feed, expected):
    m = manager(corpus, timeout=0.5)
    await m.add(f"{site.base}/feed.xml")
    before = stored_files(corpus)
    break_feed(site)
    t0 = time.time()
    [report] = await m.refresh(force=True)
    assert report.status == "error" and expected in report.error
    assert "3 stored episode(s) stay searchable" in report.summary()
    assert stored_files(corpus) == before
    rec = m.find("Harbour Lights")
    assert rec.errors == 1 and expected in rec.last_error
    assert rec.next_fetch >= t0 + m.options.interval  # backoff: not before the next period
    [again] = await m.refresh(force=True)
    assert again.status == "error"
    assert m.find("Harbour Lights").next_fetch >= t0 + 2 * m.options.interval  # doubled
    assert searcher_for(corpus, tmp_path / "idx").search("foghorn")[0].source.title == EP1


async def test_a_feed_that_cannot_be_read_is_not_added(site, corpus):
    site.fail("/gone.xml", 404)
    m = manager(corpus)
    with pytest.raises(FeedError, match=r"HTTP 404.*not added"):
        await m.add(f"{site.base}/gone.xml")
    site.put("/page.xml", "<html><body><p>Not a feed at all <b>unclosed</p>")
    with pytest.raises(FeedError, match="not added"):
        await m.add(f"{site.base}/page.xml")
    assert m.records() == {}
    assert not (corpus / "feeds").exists() or stored_files(corpus) == {}
    with pytest.raises(FeedError, match="not an http"):
        await m.add("ftp://example.com/feed.xml")


async def test_a_transcript_that_fails_to_parse_leaves_only_that_episode_out(site, corpus, tmp_path):
    site.put("/t/ep2.json", '{"version": "1.0.0", "segments": [{"startTime": 0, "body": ')
    site.put("/t/ep2.srt", (DATA / "broken.srt").read_bytes())
    report = await manager(corpus).add(f"{site.base}/feed.xml")
    assert report.new == ["Episode 3: Sourdough at Sea", "Episode 1: The Last Lighthouse Keeper"]
    [left] = report.left_out
    assert left.startswith("Episode 2: Bees on the Breakwater: JSON transcript ")
    assert f"{site.base}/t/ep2.srt:6: " in left  # the SRT fallback's line and reason
    searcher = searcher_for(corpus, tmp_path / "idx")
    assert searcher.search("foghorn")[0].source.title == EP1
    assert EP2 not in {s.title for s in searcher.sources()}
    rec = manager(corpus).find("Harbour Lights")
    assert [x.title for x in rec.left_out.values()] == ["Episode 2: Bees on the Breakwater"]


async def test_an_oversized_transcript_falls_back_or_is_left_out(site, corpus):
    big = "WEBVTT\n\n" + "".join(f"00:00:{i % 60:02d}.000 --> 00:00:{i % 60:02d}.500\nword {i}\n\n"
                                  for i in range(4000))
    site.put("/t/ep1.vtt", big)  # over the cap; the SRT beside it is small
    site.put("/t/ep2.json", '{"segments": [' + ",".join('{"startTime": 1, "body": "x"}' for _ in range(5000)) + "]}")
    site.put("/t/ep2.srt", "1\n00:00:00,000 --> 00:00:01,000\n" + "honey " * 20000)
    report = await manager(corpus, max_bytes=64 * 1024).add(f"{site.base}/feed.xml")
    assert "Episode 1: The Last Lighthouse Keeper" in report.new
    assert any(n.endswith(".srt") for n in stored_files(corpus))  # ep1 from its SRT
    [left] = report.left_out
    assert left.startswith("Episode 2: Bees on the Breakwater: ")
    assert left.count("allowed (QUOTEBOT_FEED_MAX_MB)") == 2


async def test_a_permanent_redirect_updates_the_stored_url_and_a_temporary_one_does_not(site, corpus):
    site.redirect("/old.xml", f"{site.base}/feed.xml", 301)
    m = manager(corpus)
    report = await m.add(f"{site.base}/old.xml")
    assert report.moved_to == f"{site.base}/feed.xml"
    assert len(report.new) == 3
    rec = m.find(f"{site.base}/old.xml")
    assert rec.url == f"{site.base}/feed.xml" and rec.config_url == f"{site.base}/old.xml"
    await m.refresh(force=True)
    assert site.hits["/old.xml"] == 1  # fetched at the new address since

    site.put("/other.xml", (DATA / "harbour.xml").read_text().replace("{base}", site.base)
             .replace("<title>Harbour Lights</title>", "<title>Harbour Lights Mirror</title>", 1))
    site.redirect("/tmp.xml", f"{site.base}/other.xml", 302)
    report = await m.add(f"{site.base}/tmp.xml")
    assert report.moved_to is None
    assert m.find(f"{site.base}/tmp.xml").url == f"{site.base}/tmp.xml"


async def test_feeds_in_corpus_toml_are_followed_and_not_removed_by_command(site, corpus, tmp_path):
    (corpus / "corpus.toml").write_text(f'[[feed]]\nurl = "{site.base}/feed.xml"\nname = "The Harbour Show"\n')
    m = manager(corpus)
    assert [r.display_name for r in m.due()] == ["The Harbour Show"]
    [report] = await m.refresh()
    assert len(report.new) == 3
    hit = searcher_for(corpus, tmp_path / "idx").search("foghorn")[0]
    assert hit.source.title == "Episode 1: The Last Lighthouse Keeper — The Harbour Show"
    with pytest.raises(ValueError, match=r"\[\[feed\]\] in .*corpus.toml"):
        m.remove("The Harbour Show")
    state = json.loads((corpus / "feeds" / ".feeds.json").read_text())
    assert state["feeds"][f"{site.base}/feed.xml"]["origin"] == "manifest"


async def test_remove_stops_following_and_drops_the_episodes(site, corpus, tmp_path):
    m = manager(corpus)
    await m.add(f"{site.base}/feed.xml")
    rec, deleted = m.remove("harbour lights")
    assert deleted == 3 and rec.url == f"{site.base}/feed.xml"
    assert m.records() == {}
    assert stored_files(corpus) == {}
    assert searcher_for(corpus, tmp_path / "idx").search("foghorn") == []
