"""Slack: Bolt over HTTP or Socket Mode, one workspace or many (OAuth).

``adapter`` (lifecycle, Bolt app, listener registration), ``messages`` (slash commands and events),
``actions`` (buttons), ``install`` (OAuth and installations), ``posting`` (everything sent),
``render`` (Block Kit), ``settings`` (``SLACK_*``).
"""

from __future__ import annotations

from bot.platform import Adapter, PlatformContext, PlatformSpec
from bot.platforms.slack.settings import SlackSettings, read_slack_settings


def build(ctx: PlatformContext[SlackSettings]) -> Adapter:
    from bot.platforms.slack.adapter import SlackAdapter

    engine = ctx.store.engine if ctx.store is not None else None
    return SlackAdapter(ctx.core, ctx.platform_settings, ctx.http, database_url=ctx.settings.database_url,
                        engine=engine, store=ctx.store)


SPEC = PlatformSpec(
    name="slack",
    summary="a Slack app (Bolt; HTTP events or Socket Mode)",
    read_settings=read_slack_settings,
    build=build,
    needs="SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or SLACK_APP_TOKEN)",
    managers="workspace admins or the channel's creator",
    title="Slack",
    feed_admins="workspace admins",
)
