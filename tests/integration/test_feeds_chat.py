"""``/quote-admin feed add URL`` on Slack: the real Bolt app (``quotebot run --platform slack``) against signed
requests, a local Slack Web API and a local podcast host; only workspace admins may add a feed."""

from __future__ import annotations

import uuid

import aiohttp

from tests.e2e.slack_api_server import SlackApiServer
from tests.e2e.slack_helpers import SignedClient, SlackBotProcess, bot_env, free_port
from tests.integration.feeds_support import write_local_corpus


async def test_slack_admin_adds_a_feed_and_others_are_refused(site, tmp_path):
    api = SlackApiServer(users={"UADMIN": {"is_admin": True}, "UPLAIN": {}})
    await api.start()
    corpus = write_local_corpus(tmp_path / "corpus")
    port = free_port()
    bot = SlackBotProcess(bot_env(tmp_path, api.api_url, port, QUOTEBOT_CORPUS=str(corpus),
                                  QUOTEBOT_INDEX_DIR=str(tmp_path / "idx")), port, log_path=tmp_path / "bot.log")
    await bot.start()
    try:
        async with aiohttp.ClientSession() as session:
            client = SignedClient(bot.base, session)

            async def slash(command: str, text: str, user: str):
                rid = uuid.uuid4().hex
                status, _ = await client.slash(command, text, api.response_url(rid), user=user, channel="C1")
                assert status == 200
                [call] = await api.wait_for(lambda c: c.path == rid)
                return call

            refused = await slash("/quote-admin", f"feed add <{site.base}/feed.xml>", "UPLAIN")
            assert "Only workspace admins and owners can change the podcast feeds" in refused.block_text
            assert site.hits["/feed.xml"] == 0
            added = await slash("/quote-admin", f"feed add <{site.base}/feed.xml|feed.xml>", "UADMIN")
            assert "Following Harbour Lights" in added.block_text and "3 new episode(s)" in added.block_text
            answer = await slash("/ask", "foghorn", "UPLAIN")
            assert "Episode 1: The Last Lighthouse Keeper — Harbour Lights" in answer.block_text
            assert f"{site.base}/media/ep1.mp3#t=23" in answer.block_text
    finally:
        await bot.stop()
        await api.stop()
