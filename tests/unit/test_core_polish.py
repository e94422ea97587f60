"""Core behaviour users meet in every platform: command words never eat questions, every quote has its
Context, shared answers carry their question, help speaks the platform's words, the console is never
rate-limited and has a ``daily now``, sources come in pages, broken text and a broken database never
cost an answer."""

from __future__ import annotations

import random
import sqlite3

import pytest

from bot import payloads
from bot.app import core_options
from bot.commands import parse
from bot.core import CoreOptions, QuoteBot, feeds_admin_only
from bot.reply import ActionKind, ReplyKind, Request, Via
from bot.store import SqlMemo, open_store
from config.settings import load_settings
from retrieval.search import open_searcher


@pytest.fixture
def searcher(bundled_searcher):
    return bundled_searcher


@pytest.fixture
def core(searcher):
    bot = QuoteBot(searcher, CoreOptions(rate_per_minute=600, rate_burst=100), rng=random.Random(3))
    yield bot
    bot.close()


def chat(text: str, user: str = "u1", **kw) -> Request:
    return Request(text=text, user_id=user, platform="test", via=Via.MENTION, **kw)


@pytest.mark.parametrize("text", [
    "help me find the part about rockets", "list the risks of ai", "more about ai", "sources of energy on mars",
    "context of the fermi paradox", "daily routines of engineers", "feed the world",
])
def test_a_message_that_starts_with_a_command_word_is_a_question(text):
    assert parse(text).name == "ask" and parse(text).arg == text


@pytest.mark.parametrize(("text", "name", "arg"), [
    ("help", "help", ""), ("sources", "sources", ""), ("list", "sources", ""), ("more", "more", ""),
    ("context 2", "context", "2"), ("quote mars", "quote", "mars"), ("daily status", "daily", "status"),
    ("daily", "daily", ""), ("ask help me", "ask", "help me"), ("feed list", "feed", "list"),
])
def test_a_command_alone_or_with_its_arguments_is_still_a_command(text, name, arg):
    assert (parse(text).name, parse(text).arg) == (name, arg)


async def test_help_me_find_is_answered_with_quotes(core):
    reply = await core.handle(chat("help me find the part about the fermi paradox"))
    assert reply.kind is ReplyKind.ANSWER and reply.cards
    assert "paradox" in " ".join(c.text.lower() for c in reply.cards)


async def test_every_quote_of_an_answer_has_its_own_context_button(core, searcher):
    reply = await core.handle(chat("fermi paradox"))
    contexts = [a for a in reply.actions if a.kind is ActionKind.CONTEXT]
    assert [a.label for a in contexts] == [f"Context {i}" for i in range(1, len(reply.cards) + 1)]
    assert len(reply.cards) == 3
    third = await core.handle_action(contexts[2].payload, chat(""))
    assert third.kind is ReplyKind.CONTEXT
    assert reply.cards[2].text[:60] in third.cards[0].text  # the context is around the third quote, not the first
    more = await core.handle_action(next(a for a in reply.actions if a.kind is ActionKind.MORE).payload, chat(""))
    assert more.first_number == 4
    assert next(a.label for a in more.actions if a.kind is ActionKind.CONTEXT) == "Context 4"


async def test_post_to_channel_shows_the_question(core):
    reply = await core.handle(chat("what did he say about the fermi paradox"))
    post = next(a for a in reply.actions if a.kind is ActionKind.POST)
    shared = await core.handle_action(post.payload, chat(""))
    assert shared.shared and not shared.ephemeral
    assert "“what did he say about the fermi paradox”" in shared.text


async def test_help_lists_the_platforms_own_command_names(core):
    slack = chat("help", command_names=(("ask", "/ask"), ("quote", "/quote"), ("sources", "/quote-sources"),
                                        ("daily", "/quote-daily")))
    text = (await core.handle(slack)).text
    assert "/quote-sources" in text and "/ask <question>" in text
    assert "  sources " not in text and "/quote-daily" not in text  # no daily service on this bot: not listed
    console = (await core.handle(Request(text="help", via=Via.CONSOLE))).text
    assert "more" in console and "context N" in console and "daily now" in console and "/quote" not in console


async def test_the_console_is_never_rate_limited_but_chat_users_are(searcher):
    bot = QuoteBot(searcher, CoreOptions(rate_per_minute=1, rate_burst=2))
    try:
        console = [await bot.handle(Request(text=f"mars {i}", via=Via.CONSOLE)) for i in range(8)]
        assert all(r.kind is not ReplyKind.RATE_LIMITED for r in console)
        chats = [await bot.handle(chat(f"mars {i}", user="busy")) for i in range(3)]
        assert chats[-1].kind is ReplyKind.RATE_LIMITED
    finally:
        bot.close()


async def test_daily_in_the_console_shows_todays_quote_and_explains_subscriptions(searcher):
    # the options as the app builds them: the registered platforms with channels name themselves
    options = core_options(load_settings(environ={}, dotenv_path=""))
    assert options.channel_platforms == ("Discord", "Slack")
    core = QuoteBot(searcher, options, rng=random.Random(3))
    try:
        first = await core.handle(Request(text="daily now", via=Via.CONSOLE))
        again = await core.handle(Request(text="daily now", via=Via.CONSOLE))
        assert first.cards and first.text == "Quote of the day"
        assert first.cards[0].passage_key == again.cards[0].passage_key  # one quote per day
        sub = await core.handle(Request(text="daily subscribe 09:00", via=Via.CONSOLE))
        assert not sub.cards and "Discord and Slack" in sub.text and "daily now" in sub.text
        assert "not configured" not in sub.text
        assert "Discord and Slack channels" in (await core.handle(Request(text="help", via=Via.CONSOLE))).text
        refusal = feeds_admin_only(options.feed_admins)
        assert "Manage Server on Discord" in refusal and "workspace admins on Slack" in refusal
    finally:
        core.close()


async def test_lone_surrogates_in_a_message_are_answered_not_apologised_for(core):
    reply = await core.handle(chat("fermi \ud800 paradox \udcff"))
    assert reply.kind is ReplyKind.ANSWER and reply.cards and reply.error_ref is None


async def test_sources_come_in_pages_that_show_every_source(tmp_path):
    corpus = tmp_path / "many"
    corpus.mkdir()
    for i in range(25):
        (corpus / f"talk{i:02d}.txt").write_text(f"episode {i} talks about rockets and the ocean number {i}.\n")
    many = open_searcher(corpus, None, tmp_path / "ix")
    bot = QuoteBot(many)
    try:
        page = await bot.handle(Request(text="sources", via=Via.SLASH, command="sources", platform="test"))
        seen, pages = [], 0
        while True:
            pages += 1
            assert len(page.text) <= 1800
            seen += [line for line in page.text.splitlines() if line.startswith("• ")]
            nxt = [a for a in page.actions if a.label == "Next"]
            if pages > 1:
                assert any(a.label == "Previous" for a in page.actions) and page.replaces
            if not nxt:
                break
            page = await bot.handle_action(nxt[0].payload, chat(""))
        assert pages == 3 and len(seen) == len(set(seen)) == 25
        assert "21–25 of 25" in page.text
        console = await bot.handle(Request(text="sources", via=Via.CONSOLE))
        assert console.text.count("• ") == 25 and not console.actions
    finally:
        bot.close()


async def test_a_broken_database_never_stops_an_answer(searcher, tmp_path):
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'state.sqlite3'}")
    bot = QuoteBot(searcher, memo=SqlMemo(store))
    try:
        working = await bot.handle(chat("fermi paradox"))
        more = next(a for a in working.actions if a.kind is ActionKind.MORE)
        with sqlite3.connect(tmp_path / "state.sqlite3") as db:  # the memo table is gone under the running bot
            db.execute("DROP TABLE memo")
        reply = await bot.handle(chat("fermi paradox"))
        assert reply.kind is ReplyKind.ANSWER and len(reply.cards) == 3
        assert {a.kind for a in reply.actions} == {ActionKind.CONTEXT}  # no buttons that need the memo
        pressed = await bot.handle_action(more.payload, chat(""))
        assert pressed.error_ref is None and "unavailable" in pressed.text
        assert payloads.decode(reply.actions[0].payload) is not None
    finally:
        bot.close()
        await store.close()
