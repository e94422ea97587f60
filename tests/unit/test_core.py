"""The platform-neutral core: parsing, paging, context, limits, and the apology path."""

import asyncio
import logging
import random

import pytest

from bot.commands import parse, strip_mention, strip_prefix
from bot.core import CoreOptions, QuoteBot
from bot.reply import ActionKind, Request, Via, permalink


@pytest.fixture
def searcher(bundled_searcher):
    return bundled_searcher


@pytest.fixture
def core(searcher):
    bot = QuoteBot(searcher, CoreOptions(rate_per_minute=600, rate_burst=100), rng=random.Random(7))
    yield bot
    bot.close()


def ask(text: str, user: str = "u1", **kw) -> Request:
    return Request(text=text, user_id=user, platform="test", via=Via.MENTION, **kw)


def action(reply, kind):
    return next(a for a in reply.actions if a.kind is kind)


def test_parsing_prefix_mention_bare_and_slash():
    assert strip_prefix("!ask fermi paradox", "!") == "ask fermi paradox"
    assert strip_prefix("hello", "!") is None
    assert strip_mention("<@1234567> what about mars?") == "what about mars?"
    assert strip_mention("<@U024BE7LH|bot>: what about mars?") == "what about mars?"
    assert parse("ask fermi paradox") == parse("fermi paradox") == parse("/ask  fermi   paradox")
    assert parse("fermi paradox").name == "ask" and parse("fermi paradox").arg == "fermi paradox"
    assert (parse("quote mars").name, parse("quote mars").arg) == ("quote", "mars")
    assert parse("sources").name == "sources" and parse("").name == "help"
    assert (parse("mars colony", command="quote").name, parse("mars colony", command="quote").arg) == ("quote",
                                                                                                     "mars colony")
    assert parse("subscribe 09:00 Europe/Berlin", command="daily").arg == "subscribe 09:00 Europe/Berlin"


async def test_ask_returns_three_distinct_cards_with_links_and_buttons(core):
    reply = await core.handle(ask("what did elon say about the fermi paradox"))
    assert reply.kind == "answer" and len(reply.cards) == 3
    keys = [c.passage_key for c in reply.cards]
    assert len(set(keys)) == 3
    top = reply.cards[0]
    assert "paradox" in top.text.lower()
    assert any("paradox" in top.text[a:b].lower() for a, b in top.highlights)
    timed = [c for c in reply.cards if c.url and "&t=" in c.url]
    assert timed and timed[0].time_label.count(":") >= 1
    assert timed[0].thumbnail_url == "https://i.ytimg.com/vi/cFIlta1GkiE/hqdefault.jpg"
    assert {a.kind for a in reply.actions} == {ActionKind.MORE, ActionKind.CONTEXT, ActionKind.POST}
    assert all(len(a.payload) <= 90 and a.payload.isascii() for a in reply.actions)


async def test_more_pages_to_the_next_three_distinct_passages(core):
    first = await core.handle(ask("war and peace"))
    second = await core.handle_action(action(first, ActionKind.MORE).payload, ask(""))
    assert second.kind == "answer" and len(second.cards) == 3
    assert "Results 4–6" in second.text
    seen = {c.passage_key for c in first.cards}
    assert not seen & {c.passage_key for c in second.cards}
    third = await core.handle_action(action(second, ActionKind.MORE).payload, ask(""))
    assert "Results 7–9" in third.text


async def test_more_runs_out_politely(core):
    reply = await core.handle(ask("kadesv"))
    payload = action(reply, ActionKind.MORE).payload if any(a.kind is ActionKind.MORE for a in reply.actions) else None
    while payload:
        reply = await core.handle_action(payload, ask(""))
        more = [a for a in reply.actions if a.kind is ActionKind.MORE]
        payload = more[0].payload if more else None
        if not reply.cards:
            break
    last = await core.handle_action(payload or "more:" + "0" * 16 + ":999", ask(""))
    assert last.text  # never an empty message


async def test_context_widens_the_passage(core):
    reply = await core.handle(ask("tiny candle in a vast darkness"))
    ctx = await core.handle_action(action(reply, ActionKind.CONTEXT).payload, ask(""))
    assert ctx.kind == "context" and len(ctx.cards) == 1
    assert len(ctx.cards[0].text) > len(reply.cards[0].text) - 1
    assert reply.cards[0].text[:80] in ctx.cards[0].text


async def test_post_to_channel_is_public_and_has_no_post_button(core):
    reply = await core.handle(ask("raw materials cost of a rocket"))
    assert reply.ephemeral
    posted = await core.handle_action(action(reply, ActionKind.POST).payload, ask(""))
    assert not posted.ephemeral and [c.passage_key for c in posted.cards] == [c.passage_key for c in reply.cards]
    assert all(a.kind is not ActionKind.POST for a in posted.actions)


async def test_stale_buttons_answer_politely(core):
    for payload in ("more:ffffffffffffffff:3", "ctx:gone-source@10", "bogus"):
        reply = await core.handle_action(payload, ask(""))
        assert reply.kind == "stale" and "ask again" in reply.text


async def test_nothing_found_suggests_topics(core):
    reply = await core.handle(ask("xyzzy plugh"))
    assert not reply.cards and "found nothing" in reply.text and "sources" in reply.text
    assert "Try a topic such as" in reply.text


async def test_quote_sources_help_and_daily_unconfigured(core):
    q = await core.handle(ask("quote"))
    assert q.kind == "quote" and len(q.cards) == 1 and 80 <= len(q.cards[0].text) <= 400
    topical = await core.handle(ask("quote aliens"))
    assert "alien" in topical.cards[0].text.lower()
    src = await core.handle(ask("sources"))
    assert "https://www.youtube.com/watch?v=JN3KPFbWCy8" in src.text and "2025-06-17" in src.text
    assert "ask <question>" in (await core.handle(ask("help"))).text
    assert "not configured" in (await core.handle(ask("daily status"))).text


async def test_long_question_is_cut_with_a_notice(core):
    long_q = "fermi paradox " + "and also something else entirely " * 12
    assert len(long_q) > 300
    reply = await core.handle(ask(long_q))
    assert "longer than 300 characters" in reply.text
    assert reply.cards and len(reply.extra["query"]) <= 300


async def test_rate_limit_per_user(searcher):
    bot = QuoteBot(searcher, CoreOptions(rate_per_minute=0.01, rate_burst=2))
    try:
        replies = [await bot.handle(ask("mars", user="fast")) for _ in range(3)]
        assert [r.kind for r in replies] == ["answer", "answer", "rate_limited"]
        assert "Try again in" in replies[2].text
        assert (await bot.handle(ask("mars", user="other"))).kind == "answer"
    finally:
        bot.close()


class EngineDown:
    """A search engine whose server stopped answering mid-way (as an external engine's would):
    every search raises, everything else is answered by the real searcher."""

    def __init__(self, searcher):
        self._searcher = searcher

    def __getattr__(self, name):
        return getattr(self._searcher, name)

    def search(self, query, k=5, offset=0):
        raise ConnectionError("search engine at 10.0.0.9:9200 refused the connection")


async def test_a_failing_command_becomes_an_apology_and_the_bot_keeps_serving(searcher, caplog):
    bot = QuoteBot(EngineDown(searcher))
    try:
        with caplog.at_level(logging.ERROR):
            sorry = await bot.handle(ask("fermi paradox"))
        assert sorry.kind == "error" and sorry.error_ref and sorry.error_ref in sorry.text
        assert sorry.text.startswith("Sorry") and not sorry.cards
        assert sorry.error_ref in caplog.text and "Traceback" in caplog.text
        assert "10.0.0.9" not in sorry.text  # internals stay in the log
        again = await bot.handle(ask("sources"))
        assert again.kind == "sources" and "Lex Fridman" in again.text
    finally:
        bot.close()


async def test_slow_searches_do_not_block_the_event_loop(core):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    t = asyncio.create_task(ticker())
    await asyncio.gather(*(core.handle(ask(q)) for q in ("mars", "rockets", "grok", "war", "aliens", "tesla")))
    t.cancel()
    assert ticks > 0  # the loop kept running while the searches ran on threads


async def test_cards_link_to_their_web_permalink_when_a_public_url_is_set(searcher):
    bot = QuoteBot(searcher, CoreOptions(public_url="https://quotes.example.com"))
    try:
        reply = await bot.handle(ask("fermi paradox"))
        assert reply.cards
        for c in reply.cards:
            assert c.permalink == permalink("https://quotes.example.com", c)
            assert c.permalink.startswith("https://quotes.example.com/q/")
    finally:
        bot.close()
    plain = QuoteBot(searcher)
    try:
        assert all(c.permalink is None for c in (await plain.handle(ask("fermi paradox"))).cards)
    finally:
        plain.close()
