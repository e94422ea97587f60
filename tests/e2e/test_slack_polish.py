"""``quotebot run --platform slack`` against hostile and unlucky requests, and the Slack UX details.

Malformed timestamps, signatures and bodies (signed or not) get 400/401 and one short log line; a signed
slash command or button replayed within five minutes is answered once; lone surrogates are answered, not
apologised for; an answer survives a burst of 429s and past the retry budget the asker is told; a stopped
database never stops an answer; transcript text with ``_ ~ ` *`` is shown literally; help names Slack's
own commands; the list of sources comes in pages.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.slack_api_server import BOT_USER, SlackApiServer
from tests.e2e.slack_helpers import (
    SIGNING_SECRET,
    SignedClient,
    SlackBotProcess,
    action_body,
    bot_env,
    free_port,
    make_corpus,
    slash_body,
)
from tests.postgres_server import throwaway_postgres

pytestmark = pytest.mark.asyncio(loop_scope="module")

LITERAL = "the zorblax setting is snake_case_name with ~tilde~ and `backtick` and *star* in it"


def write_corpus(folder):
    make_corpus(folder)
    (folder / "symbols.txt").write_text(f"- {LITERAL}.\n", encoding="utf-8")
    for i in range(12):
        (folder / f"episode{i:02d}.txt").write_text(f"- episode {i} is about gardening and compost heaps.\n",
                                                    encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("slack-polish-corpus")
    return {"QUOTEBOT_CORPUS": str(write_corpus(tmp / "corpus")), "QUOTEBOT_INDEX_DIR": str(tmp / "index")}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slack_api():
    server = SlackApiServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(slack_api, tmp_path_factory, corpus):
    tmp = tmp_path_factory.mktemp("slack-polish")
    port = free_port()
    proc = SlackBotProcess(bot_env(tmp, slack_api.api_url, port, QUOTEBOT_RATE_PER_MINUTE="0", **corpus), port,
                           log_path=tmp / "bot.log")
    await proc.start(in_process=False)
    yield proc
    await proc.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def client(bot):
    async with aiohttp.ClientSession() as session:
        yield SignedClient(bot.base, session)


async def raw_post(bot, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as s, s.post(f"{bot.base}/slack/events", data=body, headers=headers) as r:
        return r.status


def signature(body: bytes, ts: str) -> str:
    return "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()


async def test_hostile_requests_get_400_or_401_and_one_log_line_each(bot):
    now = str(int(time.time()))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = [
        (b"command=%2Fask&text=x", form, 401),  # unsigned
        (b"command=%2Fask&text=x", {**form, "X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=zz"}, 401),
        (b"command=%2Fask&text=x", {**form, "X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=1"}, 401),
        (b"x", {**form, "X-Slack-Request-Timestamp": "9" * 30, "X-Slack-Signature": "v0=" + "0" * 64}, 401),
        (b"x", {**form, "X-Slack-Request-Timestamp": "-5", "X-Slack-Signature": "v0=" + "0" * 64}, 401),
        (b"x", {**form, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": "not even v0"}, 401),
    ]
    for body in (b"\xff\xfe\x00broken", b"payload=%7Bnot+json", b"foo=bar", b"payload=%5B1%2C2%5D"):
        cases.append((body, {**form, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": signature(body, now)},
                      400))
    json_body = b"[1, 2, 3]"
    cases.append((json_body, {"Content-Type": "application/json", "X-Slack-Request-Timestamp": now,
                              "X-Slack-Signature": signature(json_body, now)}, 400))
    before = bot.log_text()
    for body, headers, expected in cases:
        assert await raw_post(bot, body, headers) == expected, (body, headers)
    new = bot.log_text()[len(before):]
    refused = [line for line in new.splitlines() if "refused a request" in line]
    assert len(refused) == len(cases), new
    assert "Traceback" not in new and " ERROR " not in new
    assert all(len(line) < 250 for line in refused)


async def test_a_replayed_slash_command_or_button_is_answered_once(client, slack_api, bot):
    rid = uuid.uuid4().hex
    body = slash_body("/ask", "rocket engine", slack_api.response_url(rid), user="UREPLAY")
    headers = {"X-Slack-Request-Timestamp": str(int(time.time()))}
    first = await client.send(body, form=True, headers=headers)
    again = await client.send(body, form=True, headers=headers)  # the same signed request, replayed
    assert first[0] == again[0] == 200
    [answer] = await slack_api.wait_for(lambda c: c.path == rid)
    more = next(e["value"] for b in answer.blocks if b["type"] == "actions" for e in b["elements"]
                if e["text"]["text"] == "More")
    await slack_api.settle(1.0)
    assert len([c for c in slack_api.calls if c.path == rid]) == 1
    rid2 = uuid.uuid4().hex
    press = action_body(more, slack_api.response_url(rid2), user="UREPLAY")
    for _ in range(3):
        assert (await client.send(press, form=True))[0] == 200
    await slack_api.wait_for(lambda c: c.path == rid2)
    await slack_api.settle(1.0)
    assert len([c for c in slack_api.calls if c.path == rid2]) == 1
    assert bot.log_text().count("dropped a replayed request") >= 3


async def test_lone_surrogates_are_answered_not_apologised_for(client, slack_api):
    ts = f"{int(time.time())}.{uuid.uuid4().int % 10**6:06d}"
    event = {"type": "app_mention", "user": "USURR", "text": f"<@{BOT_USER}> rocket \ud800 engine \udfff",
             "ts": ts, "channel": "C1", "event_ts": ts}
    await client.event(event, f"Ev{uuid.uuid4().hex[:10]}")
    [call] = await slack_api.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == ts)
    assert "rocket engine" in call.block_text.lower() and "went wrong" not in call.block_text


async def test_an_answer_survives_429s_and_past_the_budget_the_asker_is_told(client, slack_api):
    slack_api.rate_limit_next("chat.postMessage", 4)  # the SDK's built-in handler gave up after 3
    ts = f"{int(time.time())}.{uuid.uuid4().int % 10**6:06d}"
    event = {"type": "app_mention", "user": "U429", "text": f"<@{BOT_USER}> methane fuel", "ts": ts,
             "channel": "C1", "event_ts": ts}
    await client.event(event, f"Ev{uuid.uuid4().hex[:10]}")
    [call] = await slack_api.wait_for(lambda c: c.method == "chat.postMessage" and c.body.get("thread_ts") == ts,
                                      timeout=30)
    assert "Methane" in call.block_text
    slack_api.rate_limit_next("chat.postMessage", 1000)
    ts = f"{int(time.time())}.{uuid.uuid4().int % 10**6:06d}"
    event = {**event, "ts": ts, "event_ts": ts, "user": "U430"}
    await client.event(event, f"Ev{uuid.uuid4().hex[:10]}")
    [told] = await slack_api.wait_for(lambda c: c.method == "chat.postEphemeral" and c.body.get("user") == "U430",
                                      timeout=60)
    slack_api.rate_limit_next("chat.postMessage", 0)
    assert "limiting how fast I can post" in told.body["text"]


async def test_transcript_formatting_characters_are_shown_literally(client, slack_api):
    rid = uuid.uuid4().hex
    await client.slash("/ask", "zorblax setting", slack_api.response_url(rid), user="ULIT")
    [call] = await slack_api.wait_for(lambda c: c.path == rid)
    rich = [b for b in call.blocks if b["type"] == "rich_text"]
    assert rich, call.blocks
    shown = "".join(e["text"] for b in rich for s in b["elements"] for e in s["elements"])
    assert LITERAL in shown  # every _ ~ ` * as transcribed, in literal text elements
    assert any(e.get("style", {}).get("bold") for b in rich for s in b["elements"] for e in s["elements"])
    mrkdwn = [b["text"]["text"] for b in call.blocks if b["type"] == "section" and b["text"]["type"] == "mrkdwn"]
    assert not any("snake_case" in t for t in mrkdwn)


async def test_help_names_slacks_own_commands(client, slack_api):
    ts = f"{int(time.time())}.{uuid.uuid4().int % 10**6:06d}"
    event = {"type": "app_mention", "user": "UHELP", "text": f"<@{BOT_USER}> help", "ts": ts, "channel": "C1",
             "event_ts": ts}
    await client.event(event, f"Ev{uuid.uuid4().hex[:10]}")
    [call] = await slack_api.wait_for(lambda c: c.body.get("user") == "UHELP" or c.body.get("thread_ts") == ts)
    text = call.body.get("text", "") + call.block_text
    assert "/quote-sources" in text and "/quote-daily" in text and "/ask" in text
    assert "  sources " not in text


async def test_sources_come_in_pages_with_next_and_previous(client, slack_api):
    rid = uuid.uuid4().hex
    await client.slash("/quote-sources", "", slack_api.response_url(rid), user="USRC")
    [first] = await slack_api.wait_for(lambda c: c.path == rid)
    assert "1–10 of 15" in first.block_text
    nxt = next(e["value"] for b in first.blocks if b["type"] == "actions" for e in b["elements"]
               if e["text"]["text"] == "Next")
    rid2 = uuid.uuid4().hex
    await client.action(nxt, slack_api.response_url(rid2), user="USRC")
    [second] = await slack_api.wait_for(lambda c: c.path == rid2)
    assert second.body["replace_original"] is True and "11–15 of 15" in second.block_text
    labels = [e["text"]["text"] for b in second.blocks if b["type"] == "actions" for e in b["elements"]]
    assert labels == ["Previous"]


async def test_a_stopped_database_never_stops_an_answer(slack_api, tmp_path, corpus):
    with throwaway_postgres() as url:
        port = free_port()
        proc = SlackBotProcess(bot_env(tmp_path, slack_api.api_url, port, DATABASE_URL=url, **corpus), port,
                               log_path=tmp_path / "bot.log")
        await proc.start(in_process=False)
    try:  # the database server is stopped now; the bot keeps running
        async with aiohttp.ClientSession() as session:
            client = SignedClient(proc.base, session)
            rid = uuid.uuid4().hex
            status, _ = await client.slash("/ask", "rocket engine", slack_api.response_url(rid), user="UDB")
            assert status == 200
            [call] = await slack_api.wait_for(lambda c: c.path == rid, timeout=30)
        assert "*rocket engine*" in call.block_text and "went wrong" not in call.block_text
        labels = [e["text"]["text"] for b in call.blocks if b["type"] == "actions" for e in b["elements"]]
        assert labels and all(label.startswith("Context") for label in labels)  # no buttons that need the store
        assert "button memo unavailable" in proc.log_text()
    finally:
        await proc.stop()
    log = proc.log_text()
    assert "command failed" not in log and "answering /ask failed" not in log  # the answer path never failed
