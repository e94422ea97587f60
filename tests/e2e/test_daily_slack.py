"""Daily posts through the real Slack adapter against the local Slack API server: a lost answer after Slack stored
the message (HTTP 500, or the connection dropped) still posts exactly once; ``daily subscribe`` is refused where the
bot cannot post, with how to fix it; losing access later turns the subscription off and tells the subscriber once;
uninstalling (or revoking the bot token) pauses the workspace's subscriptions; Enterprise Grid installations post.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import pytest_asyncio

from bot.daily import DailyScheduler, SendLimits
from bot.reply import Reply
from bot.store import SENT
from tests.e2e.slack_api_server import BOT_USER, TEAM, SlackApiServer
from tests.e2e.slack_helpers import SignedClient, SlackBotProcess, bot_env, free_port, make_corpus

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = "UADMIN"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("daily-slack-corpus")
    return {"QUOTEBOT_CORPUS": str(make_corpus(tmp / "corpus")), "QUOTEBOT_INDEX_DIR": str(tmp / "index")}


@pytest_asyncio.fixture(loop_scope="module")
async def slack(tmp_path_factory, corpus):
    server = SlackApiServer(users={ADMIN: {"is_admin": True, "tz": "UTC"}},
                            channels={"GSECRET": {"is_channel": False, "is_group": True, "is_private": True,
                                                  "is_member": False, "name": "secret"}})
    await server.start()
    tmp = tmp_path_factory.mktemp("daily-slack")
    port = free_port()
    proc = SlackBotProcess(bot_env(tmp, server.api_url, port, **corpus), port, log_path=tmp / "bot.log")
    await proc.start(in_process=True)
    yield proc, server
    await proc.stop()
    await server.stop()


async def command(proc: SlackBotProcess, server: SlackApiServer, text: str, channel: str, user: str = ADMIN):
    rid = uuid.uuid4().hex
    async with aiohttp.ClientSession() as session:
        status, _ = await SignedClient(proc.base, session).slash(
            "/quote-daily", text, server.response_url(rid), user=user, channel=channel
        )
    assert status == 200
    [call] = await server.wait_for(lambda c: c.path == rid)
    return call.block_text


def scheduler(proc: SlackBotProcess) -> DailyScheduler:
    return DailyScheduler(proc.extra["store"], proc.extra["searcher"], {"slack": proc.adapter},
                          limits={"slack": SendLimits(concurrency=4, channel_interval=0)})


def next_nine() -> datetime:
    now = datetime.now(UTC)
    due = now.replace(hour=9, minute=0, second=0, microsecond=0)
    return due if due > now else due + timedelta(days=1)


@pytest.mark.parametrize("how", ["500", "drop"])
async def test_a_lost_answer_after_slack_stored_the_message_posts_exactly_once(slack, how: str) -> None:
    proc, server = slack
    channel = f"CLOST{how.upper()}"
    assert "Daily quote on" in await command(proc, server, "subscribe 09:00 UTC", channel)
    server.fail_after_store(how)
    due = next_nine()
    outcomes = await scheduler(proc).tick(due + timedelta(minutes=1))
    assert [o.result for o in outcomes] == ["sent"]
    for later in (2, 5, 30):  # later ticks neither resend nor need to
        assert await scheduler(proc).tick(due + timedelta(minutes=later)) == []
    [message] = server.posted(channel)
    sub = await proc.extra["store"].subscription("slack", channel)
    [post] = await proc.extra["store"].posts_of(sub.id)
    assert post.status == SENT
    assert message["metadata"]["event_type"] == "quotebot_daily"
    assert message["metadata"]["event_payload"]["key"].startswith(f"qd{post.id}-")
    # The platform was asked, not guessed: one conversations.history look-up, and a single chat.postMessage.
    assert len([c for c in server.of("chat.postMessage", None) if c.body.get("channel") == channel]) == 1
    assert [c.body.get("channel") for c in server.of("conversations.history")].count(channel) == 1


async def test_a_send_that_did_not_arrive_is_retried_once_it_is_known_to_be_missing(slack) -> None:
    proc, server = slack
    channel = "CNOTSTORED"
    assert "Daily quote on" in await command(proc, server, "subscribe 09:00 UTC", channel)
    server.rate_limit_next("chat.postMessage", times=5)  # 429s: Slack did not take the message
    due = next_nine()
    s = DailyScheduler(proc.extra["store"], proc.extra["searcher"], {"slack": proc.adapter},
                       retry_base_seconds=60, limits={"slack": SendLimits(4, 0)})
    assert [o.result for o in await s.tick(due + timedelta(minutes=1))] == ["retry"]
    server.rate_limit_next("chat.postMessage", times=0)
    assert [o.result for o in await s.tick(due + timedelta(minutes=2, seconds=1))] == ["sent"]
    assert len(server.posted(channel)) == 1


async def test_subscribe_is_refused_where_the_bot_cannot_post_and_says_how_to_fix_it(slack) -> None:
    proc, server = slack
    private = await command(proc, server, "subscribe 09:00 UTC", "GSECRET")
    assert "can't post the daily quote in this channel" in private and "/invite @quotebot" in private
    assert "Nothing was changed" in private
    assert await proc.extra["store"].subscription("slack", "GSECRET") is None
    server.gone_channels.add("CVANISHED")
    gone = await command(proc, server, "subscribe 09:00 UTC", "CVANISHED")
    assert "can't see this channel" in gone and await proc.extra["store"].subscription("slack", "CVANISHED") is None
    # Once invited, the same command works.
    server.channels["GSECRET"]["is_member"] = True
    assert "Daily quote on" in await command(proc, server, "subscribe 09:00 UTC", "GSECRET")


async def test_losing_access_later_turns_the_subscription_off_and_tells_the_subscriber_once(slack) -> None:
    proc, server = slack
    assert "Daily quote on" in await command(proc, server, "subscribe 09:00 UTC", "CKICKED")
    server.gone_channels.add("CKICKED")
    due = next_nine()
    assert [o.result for o in await scheduler(proc).tick(due + timedelta(minutes=1))] == ["gone"]
    await scheduler(proc).tick(due + timedelta(days=1, minutes=1))
    sub = await proc.extra["store"].subscription("slack", "CKICKED")
    assert not sub.enabled and "channel_not_found" in sub.disabled_reason
    told = [c for c in server.of("chat.postMessage") if c.body.get("channel") == ADMIN]
    assert len(told) == 1 and "daily subscribe" in told[0].body["text"]


async def test_uninstalling_the_app_pauses_the_workspaces_subscriptions(slack) -> None:
    proc, server = slack
    store = proc.extra["store"]
    assert "Daily quote on" in await command(proc, server, "subscribe 09:00 UTC", "CUNINST")
    body = json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": "A1", "type": "event_callback",
                       "event": {"type": "app_uninstalled"}, "event_id": f"Ev{uuid.uuid4().hex[:10]}",
                       "event_time": int(time.time())})
    async with aiohttp.ClientSession() as session:
        status, _ = await SignedClient(proc.base, session).send(body, form=False)
    assert status == 200
    deadline = time.monotonic() + 10
    while (await store.subscription("slack", "CUNINST")).enabled and time.monotonic() < deadline:
        await server.settle(0.05)
    sub = await store.subscription("slack", "CUNINST")
    assert not sub.enabled and "uninstalled" in sub.disabled_reason
    assert await store.enabled_subscriptions(["slack"]) == []
    before = len(server.of("chat.postMessage"))
    await scheduler(proc).tick(next_nine() + timedelta(minutes=1))
    assert len(server.of("chat.postMessage")) == before


# --- many workspaces (OAuth): uninstall and token revocation delete tokens; Enterprise Grid --------------


@pytest_asyncio.fixture(loop_scope="module")
async def oauth(tmp_path_factory, corpus):
    server = SlackApiServer(users={ADMIN: {"is_admin": True, "tz": "UTC"}})
    await server.start()
    tmp = tmp_path_factory.mktemp("daily-slack-oauth")
    port = free_port()
    env = bot_env(tmp, server.api_url, port, SLACK_CLIENT_ID="111.222", SLACK_CLIENT_SECRET="oauth-secret", **corpus)
    del env["SLACK_BOT_TOKEN"]
    proc = SlackBotProcess(env, port, log_path=tmp / "bot.log")
    await proc.start(in_process=True)
    yield proc, server, tmp / "state.sqlite3"
    await proc.stop()
    await server.stop()


async def install(proc, *, enterprise: str | None, team: str | None, token: str, org_wide: bool = False) -> None:
    from slack_sdk.oauth.installation_store import Installation

    await proc.adapter.installations.store.async_save(Installation(
        app_id="A1", enterprise_id=enterprise, team_id=None if org_wide else team, user_id=ADMIN, bot_token=token,
        bot_id="BBOT", bot_user_id=BOT_USER, bot_scopes="chat:write,chat:write.public,channels:history",
        is_enterprise_install=org_wide, installed_at=time.time(),
    ))


async def test_enterprise_grid_installations_post_with_their_own_tokens(oauth) -> None:
    proc, server, _ = oauth
    await install(proc, enterprise="E1", team="T1", token="xoxb-grid-workspace")
    await install(proc, enterprise="E2", team=None, token="xoxb-grid-org", org_wide=True)
    await proc.adapter.post("E1:T1:C1", Reply(text="Quote of the day"), delivery_key="qd1-a")
    await proc.adapter.post("E2:T7:C2", Reply(text="Quote of the day"), delivery_key="qd2-a")
    tokens = {c.body["channel"]: c.token for c in server.of("chat.postMessage")}
    assert tokens == {"C1": "xoxb-grid-workspace", "C2": "xoxb-grid-org"}
    assert await proc.adapter.find_delivery("E2:T7:C2", "qd2-a") is True
    assert await proc.adapter.find_delivery("E2:T7:C2", "qd3-a") is False


async def test_uninstall_and_token_revocation_delete_the_tokens_and_pause_subscriptions(oauth) -> None:
    proc, server, db = oauth
    store = proc.extra["store"]
    await install(proc, enterprise=None, team="TGONE", token="xoxb-gone")
    await install(proc, enterprise=None, team="TREVOKED", token="xoxb-revoked")
    await install(proc, enterprise=None, team="TSTAYS", token="xoxb-stays")
    for team in ("TGONE", "TREVOKED", "TSTAYS"):
        await store.save_subscription(platform="slack", channel_id=f"{team}:C1", guild_id=team, local_time="09:00",
                                      tz="UTC", topic=None, created_by=ADMIN, now=datetime.now(UTC))
    events = [("TGONE", {"type": "app_uninstalled"}),
              ("TREVOKED", {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [BOT_USER]}})]
    async with aiohttp.ClientSession() as session:
        for team, event in events:
            body = json.dumps({"token": "legacy", "team_id": team, "api_app_id": "A1", "type": "event_callback",
                               "event": event, "event_id": f"Ev{uuid.uuid4().hex[:10]}",
                               "event_time": int(time.time()), "authorizations": [{"team_id": team}]})
            status, _ = await SignedClient(proc.base, session).send(body, form=False)
            assert status == 200
    deadline = time.monotonic() + 10
    while len(await store.enabled_subscriptions(["slack"])) > 1 and time.monotonic() < deadline:
        await server.settle(0.05)
    assert [s.channel_id for s in await store.enabled_subscriptions(["slack"])] == ["TSTAYS:C1"]
    assert "uninstalled" in (await store.subscription("slack", "TGONE:C1")).disabled_reason
    assert "revoked" in (await store.subscription("slack", "TREVOKED:C1")).disabled_reason
    with sqlite3.connect(db) as conn:
        teams = {r[0] for r in conn.execute("select team_id from slack_bots")}
    assert "TGONE" not in teams and "TREVOKED" not in teams and "TSTAYS" in teams
    # Nothing is posted for the paused teams.
    before = len(server.of("chat.postMessage"))
    outcomes = await scheduler(proc).tick(next_nine() + timedelta(minutes=1))
    assert [o.result for o in outcomes] == ["sent"]
    assert [c.token for c in server.of("chat.postMessage")[before:]] == ["xoxb-stays"]
