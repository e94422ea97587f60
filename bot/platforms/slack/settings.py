"""Slack's own settings (``SLACK_*``), read through ``config.settings.EnvReader``."""

from __future__ import annotations

from dataclasses import dataclass, field

from config.settings import EnvReader, Secret, SettingsError

SLACK_API_URL = "https://slack.com/api/"
DEFAULT_COMMANDS = {"ask": "/ask", "quote": "/quote", "sources": "/quote-sources", "daily": "/quote-daily",
                    "admin": "/quote-admin"}


@dataclass(frozen=True)
class SlackSettings:
    """One workspace (bot token) or many (OAuth client id + secret); HTTP (signing secret) or Socket Mode
    (app token); the Web API base URL; the slash command names per core command."""

    bot_token: Secret | None = None
    signing_secret: Secret | None = None
    app_token: Secret | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    api_url: str = SLACK_API_URL
    commands: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_COMMANDS))

    @property
    def enabled(self) -> bool:
        """HTTP mode (signing secret + bot token or OAuth client) or Socket Mode (app + bot token)."""
        http = bool(self.signing_secret) and (bool(self.bot_token) or bool(self.client_id))
        return http or (bool(self.app_token) and bool(self.bot_token))

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    @property
    def oauth(self) -> bool:
        """Installed in many workspaces, each with its own bot token from the OAuth flow."""
        return bool(self.client_id and self.client_secret)


def read_slack_settings(r: EnvReader) -> SlackSettings:
    """``SlackSettings`` from the environment; ``SettingsError`` names a bad variable or a missing partner."""
    s = SlackSettings(
        bot_token=r.secret("SLACK_BOT_TOKEN"),
        signing_secret=r.secret("SLACK_SIGNING_SECRET"),
        app_token=r.secret("SLACK_APP_TOKEN"),
        client_id=r.text("SLACK_CLIENT_ID", "") or None,
        client_secret=r.secret("SLACK_CLIENT_SECRET"),
        api_url=r.url("SLACK_API_URL", SLACK_API_URL, ("http", "https")),
        commands=r.mapping("SLACK_COMMANDS", DEFAULT_COMMANDS),
    )
    if (s.bot_token or s.app_token or s.client_id) and not s.signing_secret and not s.app_token:
        raise SettingsError("SLACK_SIGNING_SECRET: required when SLACK_BOT_TOKEN or SLACK_CLIENT_ID is set")
    if s.client_id and not s.client_secret:
        raise SettingsError("SLACK_CLIENT_SECRET: required when SLACK_CLIENT_ID is set")
    if s.app_token and not s.app_token.get().startswith("xapp-"):
        raise SettingsError("SLACK_APP_TOKEN: must be an app-level token (starts with xapp-)")
    return s
