"""Discord's own settings (``DISCORD_*``), read through ``config.settings.EnvReader``."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import EnvReader, Secret, SettingsError

DISCORD_API_BASE = "https://discord.com/api/v10"


@dataclass(frozen=True)
class DiscordSettings:
    """The bot token, where discord.py connects (REST base, gateway: a proxy, or a local server in tests),
    sharding, and the prefix commands (which need the privileged message_content intent)."""

    token: Secret | None = None
    api_base: str = DISCORD_API_BASE
    gateway_url: str | None = None
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    prefix: str = "!"
    message_content: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.token)


def read_discord_settings(r: EnvReader) -> DiscordSettings:
    """``DiscordSettings`` from the environment; ``SettingsError`` names a bad variable."""
    s = DiscordSettings(
        token=r.secret("DISCORD_TOKEN"),
        api_base=r.url("DISCORD_API_BASE", DISCORD_API_BASE, ("http", "https")).rstrip("/"),
        gateway_url=r.url("DISCORD_GATEWAY_URL", None, ("ws", "wss")),
        shard_count=r.optional_int("DISCORD_SHARD_COUNT", minimum=1),
        shard_ids=r.int_list("DISCORD_SHARD_IDS"),
        prefix=r.text("DISCORD_PREFIX", "!"),
        message_content=r.flag("DISCORD_MESSAGE_CONTENT", False),
    )
    if s.shard_ids is not None:
        if s.shard_count is None:
            raise SettingsError("DISCORD_SHARD_IDS: needs DISCORD_SHARD_COUNT to be set as well")
        bad = [i for i in s.shard_ids if i >= s.shard_count]
        if bad:
            raise SettingsError(f"DISCORD_SHARD_IDS: shard {bad[0]} is not below DISCORD_SHARD_COUNT")
    return s
