"""Everything the Slack adapter sends: response_url answers, chat.postMessage / postEphemeral (daily posts:
``bot.platforms.slack.daily``)."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.platforms.slack.install import Installations
from bot.platforms.slack.render import render
from bot.platforms.slack.retry import PatientRateLimitHandler
from bot.reply import Reply

log = logging.getLogger(__name__)

RATE_LIMITED_NOTICE = ("Slack is limiting how fast I can post right now, so my answer did not go out. "
                       "Please ask again in a minute.")


class Outbox:
    """Sends replies to Slack over one aiohttp session (opened by ``open``, closed by ``close``).

    In multi-workspace mode (``installations`` given) channel ids carry their team (``T123:C456``, or
    ``E1:T123:C456`` in an Enterprise Grid organisation), so a daily post finds the team's token.
    """

    def __init__(self, client: AsyncWebClient, installations: Installations | None, logger: logging.Logger) -> None:
        self.client = client
        self.installations = installations
        self._sdk_log = logger
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def qualify(self, team: str | None, channel: str, enterprise: str | None = None) -> str:
        """The channel id the core sees: ``team:channel`` in multi-workspace mode (``enterprise:team:channel``
        in an Enterprise Grid organisation), else the channel."""
        if self.installations is None or not team:
            return channel
        return f"{enterprise}:{team}:{channel}" if enterprise else f"{team}:{channel}"

    def web_for(self, token: str | None, *, retries: list[Any] | None = None) -> AsyncWebClient:
        """A Web client with the request's bot token (the team's, in multi-workspace mode); ``retries``
        replaces the default retry handlers."""
        return AsyncWebClient(
            token=token, base_url=self.client.base_url, session=self._session, logger=self._sdk_log,
            retry_handlers=self.client.retry_handlers.copy() if retries is None else retries,
        )

    async def respond(self, url: str, reply: Reply, *, ephemeral: bool, shared_by: str | None = None,
                      replace: bool = False) -> bool:
        """Post ``reply`` to a response_url: ephemeral to the asker, or in the channel (``replace``: in place of
        the message whose button was pressed). False when Slack kept refusing it (rate limited)."""
        message = render(reply, public=not ephemeral, shared_by=shared_by)
        body = {
            "response_type": "ephemeral" if ephemeral else "in_channel",
            "replace_original": replace,
            **message.payload(),
        }
        return await self.post_response(url, body)

    async def post_response(self, url: str, body: dict[str, Any]) -> bool:
        """POST ``body`` to a response_url, retrying 429s as Slack asks; False when it was not accepted."""
        hook = AsyncWebhookClient(
            url, session=self._session, logger=self._sdk_log, retry_handlers=[PatientRateLimitHandler()],
        )
        response = await hook.send_dict(body)
        if response.status_code != 200:
            # The URL is a credential: log the status only.
            log.warning("slack: response_url answered %s (%s)", response.status_code, response.body[:100])
        return response.status_code == 200

    async def tell_rate_limited(self, client: AsyncWebClient, channel: str, user: str) -> None:
        """Tell ``user`` (only them) that their answer could not be posted because Slack kept rate-limiting it."""
        try:
            await client.chat_postEphemeral(channel=channel, user=user, text=RATE_LIMITED_NOTICE)
        except Exception as e:  # nothing more can be done; the log says so
            log.warning("slack: could not tell %s that the answer was rate limited: %s", user, type(e).__name__)

    async def send(
        self, client: AsyncWebClient, channel: str, reply: Reply, *, thread: str | None, user: str,
        force_ephemeral: bool = False,
    ) -> None:
        """Answer in a channel: a notice only the asker sees, or a public message (in ``thread``)."""
        message = render(reply, public=True)
        private_notice = reply.ephemeral and not reply.cards and not channel.startswith("D")
        if force_ephemeral or private_notice:
            await client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread, text=message.text, blocks=message.blocks
            )
            return
        await client.chat_postMessage(
            channel=channel, thread_ts=thread, text=message.text, blocks=message.blocks,
            unfurl_links=False, unfurl_media=False,
        )
