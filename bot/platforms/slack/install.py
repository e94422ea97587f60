"""Installation in many workspaces: Bolt's OAuth flow, the installation and state stores, per-team tokens.

Used when ``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET`` are set. The stores share the daily store's
database engine when there is one, else open their own on ``DATABASE_URL``.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.platforms.slack.settings import SlackSettings

BOT_SCOPES = (
    "app_mentions:read", "chat:write", "chat:write.public", "commands", "im:history", "im:read",
    "users:read", "channels:read", "groups:read", "channels:history", "groups:history",
)


class Installations:
    """The OAuth settings and authorizer for Bolt, and the bot token of each installed team."""

    def __init__(self, slack: SlackSettings, database_url: str, engine: Any, client: AsyncWebClient,
                 logger: logging.Logger) -> None:
        from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
        from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
        from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
        from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

        self._owns_engine = engine is None
        if engine is None:
            from sqlalchemy.ext.asyncio import create_async_engine

            from bot.store import normalize_url

            engine = create_async_engine(normalize_url(database_url))
        self.engine = engine
        client_id, secret = str(slack.client_id), slack.client_secret.get()  # type: ignore[union-attr]
        self.store = AsyncSQLAlchemyInstallationStore(client_id, engine, logger=logger)
        states = AsyncSQLAlchemyOAuthStateStore(600, engine, logger=logger)
        self._tables = (self.store, states)
        self.oauth_settings = AsyncOAuthSettings(
            client_id=client_id, client_secret=secret, scopes=list(BOT_SCOPES), installation_store=self.store,
            state_store=states, logger=logger,
        )
        # Bolt's default authorize calls auth.test on every request; cache its answer per token.
        self.authorize = AsyncInstallationStoreAuthorize(
            logger=logger, installation_store=self.store, client_id=client_id, client_secret=secret,
            cache_enabled=True, client=client,
        )

    async def create_tables(self) -> None:
        for store in self._tables:
            await store.create_tables()

    async def bot_token(self, team_id: str | None, enterprise_id: str | None = None) -> str | None:
        """The bot token installed for ``team_id``, or None when the app is not installed there."""
        bot = await self.store.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
        return bot.bot_token if bot is not None and bot.bot_token else None

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()
