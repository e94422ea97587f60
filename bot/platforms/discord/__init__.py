"""Discord: slash commands, mentions, DMs and prefix commands through discord.py (``adapter``),
messages built within Discord's limits (``render``), ``DISCORD_*`` settings (``settings``)."""

from __future__ import annotations

from bot.platform import Adapter, PlatformContext, PlatformSpec
from bot.platforms.discord.settings import DiscordSettings, read_discord_settings


def build(ctx: PlatformContext[DiscordSettings]) -> Adapter:
    from bot.platforms.discord.adapter import DiscordAdapter

    return DiscordAdapter(ctx.core, ctx.settings, ctx.platform_settings, store=ctx.store)


SPEC = PlatformSpec(
    name="discord",
    summary="a Discord bot (discord.py)",
    read_settings=read_discord_settings,
    build=build,
    needs="DISCORD_TOKEN",
    managers="members with the Manage Channels permission",
    title="Discord",
    feed_admins="Manage Server",
)
