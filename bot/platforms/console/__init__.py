"""The console: a chat in the terminal, the platform that runs when no other one is configured."""

from __future__ import annotations

from bot.platform import Adapter, PlatformContext, PlatformSpec
from bot.platforms.console.settings import ConsoleSettings, read_console_settings


def build(ctx: PlatformContext[ConsoleSettings]) -> Adapter:
    from bot.platforms.console.adapter import ConsoleAdapter

    return ConsoleAdapter(ctx.core, ctx.settings)


SPEC = PlatformSpec(
    name="console",
    summary="chat in this terminal (the default when no platform is configured)",
    read_settings=read_console_settings,
    build=build,
    needs="nothing",
    managers="the person at the terminal",
    fallback=True,
    daily_posts=False,
)
