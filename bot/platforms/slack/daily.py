"""Daily posts on Slack: exactly once, and only where the bot may post.

* Each daily message carries its delivery key in message ``metadata`` (event type ``quotebot_daily``), so
  ``find_delivery`` can tell from ``conversations.history`` whether a send whose answer was lost arrived.
  The send itself is never retried on a lost connection (that could post twice); only a 429 is retried.
* ``can_post`` asks ``conversations.info``: a member may post anywhere, a non-member only in public channels
  (``chat:write.public``); otherwise it says how to invite the bot.
* ``app_uninstalled`` and ``tokens_revoked`` delete the installation's tokens and pause its subscriptions.
* Channel ids are ``[enterprise:]team:channel`` in multi-workspace mode, so an Enterprise Grid installation
  (one per workspace, or one for the whole organisation) is found by enterprise and team.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.platform import ChannelGone, DeliveryUnknown
from bot.platforms.slack.render import render
from bot.reply import Reply

if TYPE_CHECKING:
    from bot.platforms.slack.install import Installations
    from bot.platforms.slack.posting import Outbox
    from bot.store import Store

log = logging.getLogger(__name__)

EVENT_TYPE = "quotebot_daily"
HISTORY_HOURS = 6  # how far back find_delivery looks (the grace window for a daily post is 3 hours)
# Web API errors meaning the bot can no longer post to a channel.
GONE_ERRORS = frozenset({
    "channel_not_found", "is_archived", "not_in_channel", "account_inactive", "token_revoked",
    "invalid_auth", "team_access_not_granted", "ekm_access_denied", "restricted_action",
})
INVITE = "Invite me with `/invite @quotebot` in the channel, then run `daily subscribe` again."


def split_channel(channel_id: str) -> tuple[str | None, str | None, str]:
    """``[enterprise:][team:]channel`` -> (enterprise, team, channel)."""
    parts = channel_id.split(":")
    channel = parts[-1]
    team = parts[-2] if len(parts) >= 2 and parts[-2] else None
    enterprise = parts[-3] if len(parts) >= 3 and parts[-3] else None
    return enterprise, team, channel


class SlackDaily:
    """The daily-post hooks of the Slack adapter (``post``, ``find_delivery``, ``can_post``, ``tell_user``)
    and the installation lifecycle events."""

    def __init__(self, outbox: Outbox, installations: Installations | None, store: Store | None) -> None:
        self.outbox = outbox
        self.installations = installations
        self.store = store

    async def client_for(self, channel_id: str) -> tuple[AsyncWebClient, str]:
        """(a Web client with the channel's bot token that retries only 429s, the bare channel id)."""
        enterprise, team, channel = split_channel(channel_id)
        if self.installations is None:
            token = self.outbox.client.token
        else:
            token = await self._installed_token(enterprise, team)
            if token is None:
                raise ChannelGone(f"slack team {team or enterprise}: the app is not installed")
        return self.outbox.web_for(token, retries=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)]), channel

    async def _installed_token(self, enterprise: str | None, team: str | None) -> str | None:
        assert self.installations is not None
        # A workspace installation (within a Grid organisation or not), then an organisation-wide one.
        token = await self.installations.bot_token(team, enterprise)
        if token is None and enterprise is not None:
            found = await self.installations.store.async_find_bot(enterprise_id=enterprise, team_id=None,
                                                                  is_enterprise_install=True)
            token = found.bot_token if found is not None else None
        return token

    async def post(self, channel_id: str, reply: Reply, *, delivery_key: str | None = None) -> None:
        """Post publicly with the delivery key in the metadata. ``ChannelGone``: the bot cannot post there;
        ``DeliveryUnknown``: Slack's answer was lost (5xx, connection dropped, timeout)."""
        client, channel = await self.client_for(channel_id)
        message = render(reply, public=True)
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"key": delivery_key}} if delivery_key else None
        try:
            await client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks,
                                          unfurl_links=False, unfurl_media=False, metadata=metadata)
        except SlackApiError as e:
            error = e.response.get("error", "")
            if error in GONE_ERRORS:
                raise ChannelGone(f"slack channel {channel_id}: {error}") from None
            if e.response.status_code >= 500:
                raise DeliveryUnknown(f"slack answered HTTP {e.response.status_code} ({error})") from None
            raise
        except aiohttp.ClientConnectorError:
            raise  # never connected: nothing was sent
        except (TimeoutError, aiohttp.ClientError) as e:
            raise DeliveryUnknown(f"slack: {type(e).__name__} before an answer") from None

    async def find_delivery(self, channel_id: str, delivery_key: str) -> bool | None:
        """Whether a message carrying ``delivery_key`` is in the channel's recent history (None: cannot say)."""
        client, channel = await self.client_for(channel_id)
        oldest = f"{time.time() - HISTORY_HOURS * 3600:.6f}"
        cursor = None
        for _ in range(5):
            try:
                page = await client.conversations_history(channel=channel, oldest=oldest, limit=200, cursor=cursor,
                                                          include_all_metadata=True)
            except (TimeoutError, SlackApiError, aiohttp.ClientError) as e:
                log.warning("slack: conversations.history failed for %s: %s", channel_id, _why(e))
                return None
            for m in page.get("messages") or ():
                meta = m.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == EVENT_TYPE and payload.get("key") == delivery_key:
                    return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return False
        return None

    async def can_post(self, channel_id: str) -> str | None:
        """None when the bot can post in the channel, else what to do about it."""
        if split_channel(channel_id)[2].startswith("D"):
            return None
        try:
            client, channel = await self.client_for(channel_id)
            info = (await client.conversations_info(channel=channel)).get("channel") or {}
        except ChannelGone:
            return "I am not installed in this workspace any more. Reinstall the app, then try again."
        except SlackApiError as e:
            error = e.response.get("error", "")
            if error in ("channel_not_found", "not_in_channel"):
                return f"I can't see this channel. {INVITE}"
            log.warning("slack: conversations.info failed for %s (%s); allowing the subscription", channel_id, error)
            return None
        if info.get("is_archived"):
            return "This channel is archived, so I can't post here."
        if info.get("is_member") or info.get("is_im") or info.get("is_mpim"):
            return None
        if info.get("is_channel") and not info.get("is_private"):
            return None  # chat:write.public: public channels without joining
        return f"I'm not a member of this private channel. {INVITE}"

    async def tell_user(self, user_id: str, channel_id: str, text: str) -> None:
        """A direct message to ``user_id`` (in the workspace of ``channel_id``)."""
        client, _ = await self.client_for(channel_id)
        await client.chat_postMessage(channel=user_id, text=text)

    # --- installation lifecycle -----------------------------------------------------------------

    async def on_app_uninstalled(self, body: dict[str, Any]) -> None:
        enterprise, team, org_wide = _installation_of(body)
        if self.installations is not None:
            await self.installations.store.async_delete_bot(enterprise_id=enterprise, team_id=None if org_wide
                                                            else team)
            await self.installations.store.async_delete_installation(enterprise_id=enterprise, team_id=None
                                                                     if org_wide else team)
        await self._pause(enterprise, team, org_wide, "paused: the app was uninstalled")

    async def on_tokens_revoked(self, body: dict[str, Any]) -> None:
        enterprise, team, org_wide = _installation_of(body)
        tokens = (body.get("event") or {}).get("tokens") or {}
        where = dict(enterprise_id=enterprise, team_id=None if org_wide else team)
        if self.installations is not None:
            for user in tokens.get("oauth") or ():
                await self.installations.store.async_delete_installation(**where, user_id=user)
            if tokens.get("bot"):
                await self.installations.store.async_delete_bot(**where)
        if tokens.get("bot"):
            await self._pause(enterprise, team, org_wide, "paused: the app's bot token was revoked")

    async def _pause(self, enterprise: str | None, team: str | None, org_wide: bool, reason: str) -> None:
        if self.store is None:
            return
        prefixes = [f"{enterprise}:"] if org_wide and enterprise else []
        paused = await self.store.pause_subscriptions("slack", reason, datetime.now(UTC),
                                                      guild_ids=[team] if team else [], channel_prefixes=prefixes)
        log.warning("slack: %s (team %s, enterprise %s): %d daily subscriptions paused", reason, team or "-",
                    enterprise or "-", len(paused))


def _installation_of(body: dict[str, Any]) -> tuple[str | None, str | None, bool]:
    """(enterprise id, team id, whether it is an organisation-wide installation) of an Events API body."""
    auth = (body.get("authorizations") or [{}])[0]
    enterprise = body.get("enterprise_id") or auth.get("enterprise_id")
    team = body.get("team_id") or auth.get("team_id")
    org_wide = bool(body.get("is_enterprise_install") or auth.get("is_enterprise_install"))
    return enterprise, team, org_wide


def _why(e: BaseException) -> str:
    if isinstance(e, SlackApiError):
        return str(e.response.get("error", "error"))
    return type(e).__name__
