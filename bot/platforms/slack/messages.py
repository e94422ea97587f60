"""Slash commands and events (mentions, DMs) -> ``Request`` for the core -> the answer, sent back."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import parse, strip_mention
from bot.core import QuoteBot
from bot.platforms.slack.origin import Origin
from bot.platforms.slack.posting import Outbox
from bot.reply import Reply, Request, Via

log = logging.getLogger(__name__)

_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_LINK = re.compile(r"<(https?://[^<>|]+)(?:\|[^<>]*)?>")


class Messages:
    """Answers slash commands (on their response_url), mentions (in their thread) and DMs."""

    def __init__(self, core: QuoteBot, outbox: Outbox, commands: dict[str, str]) -> None:
        self.core = core
        self.outbox = outbox
        self._by_command = {cmd: name for name, cmd in commands.items()}
        self._names = tuple(commands.items())  # help lists these, not the console's words

    async def on_slash(self, body: dict[str, Any], origin: Origin) -> None:
        name = self._by_command.get(body.get("command", ""), "ask")
        try:
            client = self.outbox.web_for(origin.bot_token)
            if name == "admin":
                reply = await self._admin(client, body, origin)
                await self.outbox.respond(origin.response_url or body["response_url"], reply, ephemeral=True)
                return
            user, channel = origin.user_id, origin.channel_id
            manage, tz = await permissions(client, user, channel) if name == "daily" else (False, None)
            request = Request(
                text=clean_text(body.get("text", "")), user_id=user,
                channel_id=self.outbox.qualify(origin.team_id, channel, origin.enterprise_id), platform="slack",
                via=Via.SLASH, command=name, can_manage=manage, guild_id=origin.team_id, default_timezone=tz,
                command_names=self._names,
            )
            reply = await self.core.handle(request)
            url = origin.response_url or body["response_url"]
            if not await self.outbox.respond(url, reply, ephemeral=reply.ephemeral):
                await self.outbox.tell_rate_limited(client, channel, user)
        except Exception:
            log.exception("slack: answering %s failed", body.get("command"))

    async def _admin(self, client: AsyncWebClient, body: dict[str, Any], origin: Origin) -> Reply:
        """``/quote-admin feed …``: workspace admins and owners only (checked here with users.info)."""
        raw = _LINK.sub(r"\1", body.get("text", ""))  # a pasted URL keeps its address, not its label
        verb, _, rest = clean_text(raw).partition(" ")
        if verb.lower() != "feed":
            return Reply(text="Usage: /quote-admin feed add URL [name] | feed list | feed remove URL-or-name | "
                              "feed refresh", ephemeral=True)
        if not await workspace_admin(client, origin.user_id):
            return Reply(text="Only workspace admins and owners can change the podcast feeds.", ephemeral=True)
        request = Request(text=rest, user_id=origin.user_id, channel_id=self.outbox.qualify(origin.team_id,
                          origin.channel_id), platform="slack", via=Via.SLASH, command="feed",
                          guild_id=origin.team_id)
        return await self.core.handle(request)

    async def on_mention(self, body: dict[str, Any], origin: Origin) -> None:
        event = body.get("event") or {}
        thread = event.get("thread_ts") or event.get("ts")
        await self._answer(event, origin, Via.MENTION, thread)

    async def on_message(self, body: dict[str, Any], origin: Origin) -> None:
        event = body.get("event") or {}
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        await self._answer(event, origin, Via.DM, event.get("thread_ts"))

    async def _answer(self, event: dict[str, Any], origin: Origin, via: Via, thread: str | None) -> None:
        try:
            client = self.outbox.web_for(origin.bot_token)
            text = clean_text(strip_mention(event.get("text", "")))
            user, channel = origin.user_id, origin.channel_id
            manage, tz = (False, None)
            if parse(text).name == "daily":
                manage, tz = await permissions(client, user, channel)
            request = Request(
                text=text, user_id=user, channel_id=self.outbox.qualify(origin.team_id, channel, origin.enterprise_id),
                platform="slack", via=via, can_manage=manage, guild_id=origin.team_id, default_timezone=tz,
                command_names=self._names,
            )
            reply = await self.core.handle(request)
            try:
                await self.outbox.send(client, channel, reply, thread=thread, user=user)
            except SlackApiError as e:
                if e.response.status_code != 429:
                    raise
                log.warning("slack: the answer to a %s stayed rate limited; telling the asker", via.value)
                await self.outbox.tell_rate_limited(client, channel, user)
        except Exception:
            log.exception("slack: answering a %s failed", via.value)


async def permissions(client: AsyncWebClient, user: str, channel: str) -> tuple[bool, str | None]:
    """(may manage daily posts here, user's time zone): admins, owners, the channel's creator, own DM."""
    manage, tz = False, None
    try:
        info = (await client.users_info(user=user)).get("user") or {}
        tz = info.get("tz")
        manage = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
    except SlackApiError as e:
        log.warning("slack: users.info failed (%s)", e.response.get("error"))
    if manage or channel.startswith("D"):
        return True, tz
    try:
        conv = (await client.conversations_info(channel=channel)).get("channel") or {}
        manage = conv.get("creator") == user or bool(conv.get("is_im"))
    except SlackApiError as e:
        log.warning("slack: conversations.info failed (%s)", e.response.get("error"))
    return manage, tz


async def workspace_admin(client: AsyncWebClient, user: str) -> bool:
    """Whether ``user`` is an admin or owner of the workspace (False when Slack cannot say)."""
    try:
        info = (await client.users_info(user=user)).get("user") or {}
    except SlackApiError as e:
        log.warning("slack: users.info failed (%s)", e.response.get("error"))
        return False
    return bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))


def clean_text(text: str) -> str:
    """Slack message text -> what the user typed: markup reduced to labels, entities decoded.

    ``<https://x|label>`` becomes ``label``, ``<https://x>`` the URL, user/channel/broadcast
    tokens (``<@U1>``, ``<#C1|general>``, ``<!here>``) are dropped or reduced to their label.
    """

    def swap(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if label:
            return label
        return "" if target[:1] in ("@", "#", "!") else target

    text = _MARKUP.sub(swap, text)
    return " ".join(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())
