"""End to end: ``quotebot run --platform slack`` gets real HMAC-signed Slack requests on
127.0.0.1 and its Web API calls land on a local Slack API server (tests/e2e/slack_api_server.py).
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import pytest_asyncio

from bot.daily import DailyScheduler
from bot.platform import PlatformUnavailable
from bot.reply import Reply
from tests.e2e.slack_api_server import BOT_USER, INSTALLED_TOKEN, TEAM, SlackApiServer
from tests.e2e.slack_helpers import (
    BOT_TOKEN,
    SIGNING_SECRET,
    SignedClient,
    SlackBotProcess,
    bot_env,
    event_body,
    free_port,
    make_corpus,
    slash_body,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

_users = itertools.count(1)


def new_user() -> str:
    """A fresh user per test, so the core's per-user rate limit never interferes."""
    return f"U{next(_users):04d}"


def new_ts() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 1_000_000:06d}"


def button(call, label: str) -> str:
    """The payload (value) of the button labelled ``label`` in a recorded message."""
    for block in call.blocks:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element["text"]["text"] == label:
                return element["value"]
    raise AssertionError(f"no {label!r} button in {call.block_text}")


def labels(call) -> list[str]:
    return [e["text"]["text"] for b in call.blocks if b["type"] == "actions" for e in b["elements"]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    """One test corpus and index for every bot started here (the index is built once)."""
    tmp = tmp_path_factory.mktemp("slack-corpus")
    return {"QUOTEBOT_CORPUS": str(make_corpus(tmp / "corpus")), "QUOTEBOT_INDEX_DIR": str(tmp / "index")}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slack_api():
    server = SlackApiServer(
        users={"UADMIN": {"is_admin": True, "tz": "Europe/Berlin"}},
        channels={"C1": {"creator": "UCREATOR", "name": "general"}},
    )
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(slack_api, tmp_path_factory, corpus):
    tmp = tmp_path_factory.mktemp("slack")
    port = free_port()
    proc = SlackBotProcess(bot_env(tmp, slack_api.api_url, port, **corpus), port, log_path=tmp / "bot.log")
    await proc.start()
    yield proc
    await proc.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def client(bot):
    async with aiohttp.ClientSession() as session:
        yield SignedClient(bot.base, session)


async def ask(client: SignedClient, slack_api: SlackApiServer, text: str, user: str | None = None):
    """A signed /ask; returns the message posted to its response_url."""
    rid = uuid.uuid4().hex
    status, _ = await client.slash("/ask", text, slack_api.response_url(rid), user=user or new_user())
    assert status == 200
    [call] = await slack_api.wait_for(lambda c: c.path == rid)
    return call


async def test_health_check(bot):
    async with aiohttp.ClientSession() as s, s.get(f"{bot.base}/healthz") as r:
        assert r.status == 200
        assert (await r.json())["ok"] is True


async def test_event_url_verification_challenge_is_answered(client):
    # Slack checks the Request URL this way when the app's event subscriptions are saved.
    body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"})
    status, text = await client.send(body, form=False)
    assert status == 200 and "3eZbrw1aBm2rZgRNFdxV" in text


async def test_signed_ask_is_acked_and_answer_holds_quote_and_timestamp_link(client, slack_api):
    rid = uuid.uuid4().hex
    status, body = await client.slash("/ask", "rocket engine", slack_api.response_url(rid), user=new_user())
    assert status == 200 and body == ""  # a bare ack; the answer follows on response_url
    [call] = await slack_api.wait_for(lambda c: c.path == rid)
    assert call.body["response_type"] == "ephemeral"
    assert "The *rocket engine* is the hardest part of the whole vehicle." in call.block_text
    assert "<https://www.youtube.com/watch?v=abcdefghijk&amp;t=60s|1:00>" in call.block_text
    assert "Rockets &amp; &lt;Reuse&gt;" in call.block_text  # the title is escaped too
    assert "Post to channel" in labels(call)
    assert call.body["text"]  # notification fallback


async def test_quote_and_sources_commands(client, slack_api):
    rid = uuid.uuid4().hex
    await client.slash("/quote", "kazoo", slack_api.response_url(rid), user=new_user())
    [quote] = await slack_api.wait_for(lambda c: c.path == rid)
    assert quote.body["response_type"] == "in_channel"
    assert "kazoo" in quote.block_text and labels(quote) == ["Context"]
    rid = uuid.uuid4().hex
    await client.slash("/quote-sources", "", slack_api.response_url(rid), user=new_user())
    [sources] = await slack_api.wait_for(lambda c: c.path == rid)
    assert sources.body["response_type"] == "ephemeral"
    assert "Rockets &amp; &lt;Reuse&gt; https://www.youtube.com/watch?v=abcdefghijk" in sources.block_text


async def test_app_mention_is_answered_in_its_thread(client, slack_api):
    ts = new_ts()
    event = {"type": "app_mention", "user": new_user(), "text": f"<@{BOT_USER}> how do you reuse a rocket?",
             "ts": ts, "channel": "C1", "event_ts": ts}
    status, _ = await client.event(event, f"Ev{uuid.uuid4().hex[:10]}")
    assert status == 200
    [call] = await slack_api.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == ts)
    assert call.body["channel"] == "C1"
    assert call.token == BOT_TOKEN
    assert "*Rocket reuse* is the key to making life multiplanetary." in call.block_text
    assert "Post to channel" not in labels(call)  # already public


async def test_mention_inside_a_thread_answers_in_that_thread(client, slack_api):
    parent, ts = new_ts(), new_ts()
    event = {"type": "app_mention", "user": new_user(), "text": f"<@{BOT_USER}> methane fuel", "ts": ts,
             "thread_ts": parent, "channel": "C1", "event_ts": ts}
    await client.event(event, f"Ev{uuid.uuid4().hex[:10]}")
    [call] = await slack_api.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == parent)
    assert "*Methane* is a good rocket *fuel*" in call.block_text


async def test_direct_message_is_answered_in_the_dm(client, slack_api):
    ts = new_ts()
    event = {"type": "message", "channel_type": "im", "user": new_user(), "text": "second stage recovery",
             "ts": ts, "channel": "D42", "event_ts": ts}
    await client.event(event, f"Ev{uuid.uuid4().hex[:10]}")
    [call] = await slack_api.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("channel") == "D42")
    assert "The *second stage* of the rocket is much harder to recover." in call.block_text
    assert not call.body.get("thread_ts")


async def test_post_to_channel_button_posts_publicly_and_removes_the_ephemeral(client, slack_api):
    user = new_user()
    answer = await ask(client, slack_api, "rocket booster", user)
    rid = uuid.uuid4().hex
    status, _ = await client.action(button(answer, "Post to channel"), slack_api.response_url(rid), user=user)
    assert status == 200
    calls = await slack_api.wait_for(lambda c: c.path == rid, count=2)
    public = next(c for c in calls if c.body.get("response_type") == "in_channel")
    assert "*rocket booster* flies again" in public.block_text
    assert f"Shared by <@{user}>" in public.block_text
    assert "Post to channel" not in labels(public)
    assert any(c.body.get("delete_original") is True for c in calls)


async def test_more_button_shows_the_next_results(client, slack_api):
    user = new_user()
    first = await ask(client, slack_api, "rocket", user)
    rid = uuid.uuid4().hex
    await client.action(button(first, "More"), slack_api.response_url(rid), user=user)
    [more] = await slack_api.wait_for(lambda c: c.path == rid)
    assert more.body["response_type"] == "ephemeral"
    assert "Results 4–" in more.block_text
    first_quotes = {b["text"]["text"] for b in first.blocks if b["type"] == "section"}
    more_quotes = {b["text"]["text"] for b in more.blocks if b["type"] == "section" and "Results" not in
                   b["text"]["text"]}
    assert more_quotes and not first_quotes & more_quotes


async def test_context_button_shows_the_surrounding_passage(client, slack_api):
    user = new_user()
    first = await ask(client, slack_api, "methane fuel mars", user)
    rid = uuid.uuid4().hex
    await client.action(button(first, "Context"), slack_api.response_url(rid), user=user)
    [ctx] = await slack_api.wait_for(lambda c: c.path == rid)
    assert "Methane is a good rocket fuel" in ctx.block_text.replace("*", "")


async def test_outdated_button_is_answered_politely(client, slack_api):
    rid = uuid.uuid4().hex
    await client.action("more:0000000000000000:3", slack_api.response_url(rid), user=new_user())
    [call] = await slack_api.wait_for(lambda c: c.path == rid)
    assert call.body["response_type"] == "ephemeral"
    assert "no longer have" in call.block_text and "ask again" in call.block_text


async def test_bad_signature_and_old_request_get_401_and_no_post(client, slack_api):
    bad, old = uuid.uuid4().hex, uuid.uuid4().hex
    status, _ = await client.send(slash_body("/ask", "rocket", slack_api.response_url(bad)), form=True,
                                  secret="not-the-signing-secret")
    assert status == 401
    six_minutes_ago = int(time.time()) - 6 * 60
    status, _ = await client.send(slash_body("/ask", "rocket", slack_api.response_url(old)), form=True,
                                  timestamp=six_minutes_ago)
    assert status == 401
    ts = new_ts()
    event = {"type": "app_mention", "user": new_user(), "text": f"<@{BOT_USER}> rocket", "ts": ts, "channel": "C1"}
    status, _ = await client.send(event_body(event, "EvForged"), form=False, secret="forged")
    assert status == 401
    # A rejected request never reaches a listener; a later good request is answered normally.
    await ask(client, slack_api, "rocket")
    assert not [c for c in slack_api.calls if c.path in (bad, old) or c.body.get("thread_ts") == ts]


async def test_retried_event_is_answered_once(client, slack_api, bot):
    ts = new_ts()
    event_id = f"Ev{uuid.uuid4().hex[:10]}"
    event = {"type": "app_mention", "user": new_user(), "text": f"<@{BOT_USER}> rocket pad landing", "ts": ts,
             "channel": "C1", "event_ts": ts}

    def answers():
        return [c for c in slack_api.of("chat.postMessage") if c.body.get("thread_ts") == ts]

    assert (await client.event(event, event_id))[0] == 200
    await slack_api.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == ts)
    for n, reason in ((1, "http_timeout"), (2, "http_error")):
        status, _ = await client.event(event, event_id, {"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": reason})
        assert status == 200
    # A later event is answered, so the retries were processed (and dropped) before it.
    later = new_ts()
    await client.event({**event, "ts": later, "event_ts": later}, f"Ev{uuid.uuid4().hex[:10]}")
    await slack_api.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == later)
    assert len(answers()) == 1


async def test_retry_of_an_event_never_received_is_answered(client, slack_api):
    ts = new_ts()
    event = {"type": "app_mention", "user": new_user(), "text": f"<@{BOT_USER}> rocket fuel", "ts": ts,
             "channel": "C1", "event_ts": ts}
    headers = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
    assert (await client.event(event, f"Ev{uuid.uuid4().hex[:10]}", headers))[0] == 200
    await slack_api.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == ts)


async def test_channel_broadcast_in_a_transcript_arrives_escaped(client, slack_api):
    call = await ask(client, slack_api, "mute the kazoo solo")
    raw = json.dumps(call.body, ensure_ascii=False)
    assert "the moderator said: &lt;!channel&gt; please mute" in call.block_text.replace("*", "")
    assert "<!channel>" not in raw and "<!" not in raw
    assert "&amp; keep quiet" in call.block_text


async def test_web_api_429_is_retried_after_retry_after(client, slack_api):
    slack_api.rate_limit_next("chat.postMessage")
    ts = new_ts()
    event = {"type": "app_mention", "user": new_user(), "text": f"<@{BOT_USER}> rocket engine stand", "ts": ts,
             "channel": "C1", "event_ts": ts}
    await client.event(event, f"Ev{uuid.uuid4().hex[:10]}")
    await slack_api.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == ts)
    limited = [c for c in slack_api.of("chat.postMessage", status=429) if c.body.get("thread_ts") == ts]
    assert len(limited) == 1


async def test_empty_ask_gets_a_usage_hint(client, slack_api):
    call = await ask(client, slack_api, "   ")
    assert "Ask me something" in call.block_text


async def test_user_text_is_decoded_once_and_escaped_once(client, slack_api):
    # Slack sends "&", "<", ">" in typed text as entities; the echo must show them as typed, never as markup.
    call = await ask(client, slack_api, "zzqx &amp; &lt;!here&gt; qqzx")
    assert "“zzqx &amp; &lt;!here&gt; qqzx”" in call.block_text
    assert "&amp;amp;" not in call.block_text and "<!here>" not in call.block_text


async def test_log_shows_what_happened_but_no_credentials(bot):
    log = bot.log_text()
    assert "POST /slack/events 401" in log and "dropped redelivery of event" in log
    for secret in (BOT_TOKEN, SIGNING_SECRET, "/response/", "response%2F", "kazoo solo"):
        assert secret not in log


async def test_rejected_bot_token_is_reported_by_name_without_its_value(tmp_path_factory, corpus):
    server = SlackApiServer(revoked_tokens={"xoxb-revoked-secret"})
    await server.start()
    port = free_port()
    tmp = tmp_path_factory.mktemp("slack-revoked")
    env = bot_env(tmp, server.api_url, port, SLACK_BOT_TOKEN="xoxb-revoked-secret", **corpus)
    proc = SlackBotProcess(env, port)
    try:
        with pytest.raises(PlatformUnavailable) as failure:
            await proc.start(in_process=True)
        assert str(failure.value) == "SLACK_BOT_TOKEN: Slack rejected the token (invalid_auth)"
    finally:
        await proc.stop()
        await server.stop()


# --- daily posts through SlackAdapter.post() (in-process: the test drives the real scheduler) -----------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local_bot(slack_api, tmp_path_factory, corpus):
    tmp = tmp_path_factory.mktemp("slack-local")
    port = free_port()
    proc = SlackBotProcess(bot_env(tmp, slack_api.api_url, port, **corpus), port)
    await proc.start(in_process=True)
    yield proc
    await proc.stop()


async def daily_command(local_bot, slack_api, text: str, user: str, channel: str = "C1"):
    rid = uuid.uuid4().hex
    async with aiohttp.ClientSession() as session:
        status, _ = await SignedClient(local_bot.base, session).slash(
            "/quote-daily", text, slack_api.response_url(rid), user=user, channel=channel
        )
    assert status == 200
    [call] = await slack_api.wait_for(lambda c: c.path == rid)
    return call


async def test_daily_subscribe_needs_admin_or_channel_creator(local_bot, slack_api):
    refused = await daily_command(local_bot, slack_api, "subscribe 09:00", user=new_user())
    assert "Only workspace admins or the channel's creator can change" in refused.block_text
    creator = await daily_command(local_bot, slack_api, "subscribe 09:00 UTC", user="UCREATOR")
    assert "Daily quote on: every day at 09:00 UTC" in creator.block_text
    # An admin's own time zone (users.info tz) is the default when none is given.
    admin = await daily_command(local_bot, slack_api, "subscribe 07:30", user="UADMIN", channel="C2")
    assert "every day at 07:30 Europe/Berlin" in admin.block_text


async def test_daily_quote_is_posted_through_the_adapter(local_bot, slack_api):
    on = await daily_command(local_bot, slack_api, "subscribe 09:00 UTC kazoo", user="UADMIN", channel="C7")
    assert "Daily quote on" in on.block_text
    await daily_command(local_bot, slack_api, "subscribe 09:00 UTC", user="UADMIN", channel="C8")
    slack_api.gone_channels.add("C8")  # deleted after the subscription
    store = local_bot.extra["store"]
    scheduler = DailyScheduler.from_settings(
        store, local_bot.extra["searcher"], {"slack": local_bot.adapter.post}, local_bot.extra["settings"]
    )
    now = datetime.now(UTC)
    due = now.replace(hour=9, minute=0, second=0, microsecond=0)
    if due <= now:
        due += timedelta(days=1)
    outcomes = {o.subscription_id: o.result for o in await scheduler.tick(due + timedelta(minutes=1))}
    c7, c8 = await store.subscription("slack", "C7"), await store.subscription("slack", "C8")
    assert outcomes[c7.id] == "sent"
    [post] = [c for c in slack_api.of("chat.postMessage") if c.body.get("channel") == "C7"]
    assert post.token == BOT_TOKEN
    assert "Quote of the day · kazoo" in post.block_text
    assert "the moderator said: &lt;!channel&gt; please mute" in post.block_text.replace("*", "")
    assert "<!channel>" not in json.dumps(post.body)
    assert labels(post) == ["Context"]
    # C8 answers channel_not_found: post() raises ChannelGone and the subscription is disabled.
    assert outcomes[c8.id] == "gone"
    assert not (await store.subscription("slack", "C8")).enabled


# --- Socket Mode ------------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def socket_bot(tmp_path_factory, corpus):
    server = SlackApiServer()
    await server.start()
    tmp = tmp_path_factory.mktemp("slack-socket")
    port = free_port()
    env = bot_env(tmp, server.api_url, port, SLACK_APP_TOKEN="xapp-1-A1-test-secret", **corpus)
    proc = SlackBotProcess(env, port)
    await proc.start(in_process=True)
    yield proc, server
    await proc.stop()
    await server.stop()


async def test_socket_mode_acks_envelopes_and_answers(socket_bot):
    _proc, server = socket_bot
    [opened] = await server.wait_for(lambda c: c.method == "apps.connections.open")
    assert opened.token == "xapp-1-A1-test-secret"
    rid = uuid.uuid4().hex
    command = {"command": "/ask", "text": "rocket engine", "user_id": new_user(), "channel_id": "C1",
               "team_id": "T0TEST", "response_url": server.response_url(rid), "api_app_id": "A1"}
    await server.send_envelope("slash_commands", command, "env-1")
    assert (await server.wait_socket_ack("env-1"))["envelope_id"] == "env-1"
    [answer] = await server.wait_for(lambda c: c.path == rid)
    assert "The *rocket engine* is the hardest part" in answer.block_text

    ts = new_ts()
    event = json.loads(event_body({"type": "app_mention", "user": new_user(), "text": f"<@{BOT_USER}> rocket fuel",
                                   "ts": ts, "channel": "C1", "event_ts": ts}, "EvSock1"))
    await server.send_envelope("events_api", event, "env-2")
    await server.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == ts)
    await server.send_envelope("events_api", event, "env-3", retry_attempt=1)
    await server.wait_socket_ack("env-3")
    later = new_ts()
    event2 = json.loads(event_body({**event["event"], "ts": later, "event_ts": later}, "EvSock2"))
    await server.send_envelope("events_api", event2, "env-4")
    await server.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == later)
    assert len([c for c in server.of("chat.postMessage") if c.body.get("thread_ts") == ts]) == 1



# --- multi-workspace install (OAuth) ------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def oauth_bot(tmp_path_factory, corpus):
    server = SlackApiServer()
    await server.start()
    tmp = tmp_path_factory.mktemp("slack-oauth")
    port = free_port()
    env = bot_env(
        tmp, server.api_url, port, SLACK_CLIENT_ID="111.222", SLACK_CLIENT_SECRET="oauth-client-secret", **corpus
    )
    del env["SLACK_BOT_TOKEN"]
    proc = SlackBotProcess(env, port, log_path=tmp / "bot.log")
    await proc.start(in_process=True)
    yield proc, server, tmp
    await proc.stop()
    await server.stop()


async def test_oauth_install_stores_the_team_token_in_the_shared_database(oauth_bot):
    proc, server, tmp = oauth_bot

    async def install(s: aiohttp.ClientSession, code: str) -> int:
        async with s.get(f"{proc.base}/slack/install") as r:
            assert r.status == 200
            page = await r.text()
            cookie = r.headers["Set-Cookie"].split(";")[0]  # a Secure cookie: sent back by hand over http
        assert "client_id=111.222" in page and "scope=app_mentions:read,chat:write," in page
        state = re.search(r"state=([A-Za-z0-9_-]+)", page).group(1)
        params = {"code": code, "state": state}
        async with s.get(f"{proc.base}/slack/oauth_redirect", params=params, headers={"Cookie": cookie}) as r:
            return r.status

    async with aiohttp.ClientSession() as s:
        assert await install(s, "bad-code") >= 400  # the code is refused: nothing installed
        assert await install(s, "good-code") == 200
    with sqlite3.connect(tmp / "state.sqlite3") as db:  # the same database as the daily posts
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
        assert {"slack_bots", "slack_installations", "slack_oauth_states", "daily_posts"} <= tables
        assert db.execute("select team_id from slack_bots").fetchall() == [(TEAM,)]

    # Requests from the installed team are answered with the team's own token.
    async with aiohttp.ClientSession() as session:
        client = SignedClient(proc.base, session)
        ts = new_ts()
        event = {"type": "app_mention", "user": new_user(), "text": f"<@{BOT_USER}> rocket engine", "ts": ts,
                 "channel": "C1", "event_ts": ts}
        assert (await client.event(event, f"Ev{uuid.uuid4().hex[:10]}"))[0] == 200
    [answer] = await server.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == ts)
    assert answer.token == INSTALLED_TOKEN
    # The team's authorization is looked up once, not with an auth.test call per request.
    checks = len(server.of("auth.test"))
    async with aiohttp.ClientSession() as session:
        ts2 = new_ts()
        await SignedClient(proc.base, session).event({**event, "ts": ts2, "event_ts": ts2}, "EvOauth2")
    await server.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == ts2)
    assert len(server.of("auth.test")) == checks
    # Daily posts name the team in the channel id, so post() finds the team's token.
    await proc.adapter.post(f"{TEAM}:C5", Reply(text="Quote of the day", kind="daily"))
    [daily] = await server.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("channel") == "C5")
    assert daily.token == INSTALLED_TOKEN
    log = proc.log_text()
    assert "Failed to fetch oauth.v2.access" in log
    for secret in (INSTALLED_TOKEN, "oauth-client-secret", "good-code", "bad-code"):
        assert secret not in log
