"""Button presses: the core's payload (carried in the button's ``value``) -> the answer, where it belongs."""

from __future__ import annotations

import logging
from typing import Any

from bot.core import QuoteBot
from bot.platforms.slack.origin import Origin
from bot.platforms.slack.posting import Outbox
from bot.platforms.slack.render import ACTION_PREFIX
from bot.reply import Reply, ReplyKind, Request, Via

log = logging.getLogger(__name__)

PRIVATE_KINDS = frozenset({ReplyKind.STALE, ReplyKind.ERROR, ReplyKind.RATE_LIMITED})


class Actions:
    """Answers button presses: privately, shared in the channel ("Post to channel"), or in the thread."""

    def __init__(self, core: QuoteBot, outbox: Outbox) -> None:
        self.core = core
        self.outbox = outbox

    async def on_action(self, body: dict[str, Any], origin: Origin) -> None:
        try:
            action = next((a for a in body.get("actions") or () if a.get("action_id", "").startswith(ACTION_PREFIX)),
                          None)
            if action is None:
                return
            payload = action.get("value") or action.get("action_id", "")[len(ACTION_PREFIX):]
            channel = origin.channel_id or (body.get("container") or {}).get("channel_id", "")
            request = Request(
                text="", user_id=origin.user_id,
                channel_id=self.outbox.qualify(origin.team_id, channel, origin.enterprise_id),
                platform="slack", via=Via.BUTTON, guild_id=origin.team_id,
            )
            reply = await self.core.handle_action(payload, request)
            await self._answer(body, origin, channel, reply)
        except Exception:
            log.exception("slack: a button action failed")

    async def _answer(self, body: dict[str, Any], origin: Origin, channel: str, reply: Reply) -> None:
        client = self.outbox.web_for(origin.bot_token)
        url, user = origin.response_url, origin.user_id
        from_ephemeral = bool((body.get("container") or {}).get("is_ephemeral"))
        if reply.replaces and url:  # another page of the same list: in place of the page shown
            await self.outbox.respond(url, reply, ephemeral=True, replace=True)
            return
        if reply.ephemeral or reply.kind in PRIVATE_KINDS:
            if url:
                await self.outbox.respond(url, reply, ephemeral=True)
            else:
                await self.outbox.send(client, channel, reply, thread=None, user=user, force_ephemeral=True)
            return
        if reply.shared and url:
            await self.outbox.respond(url, reply, ephemeral=False, shared_by=user)
            if from_ephemeral:
                await self.outbox.post_response(url, {"delete_original": True})
            return
        message = body.get("message") or {}
        thread = message.get("thread_ts") or message.get("ts")
        if from_ephemeral and url:
            await self.outbox.respond(url, reply, ephemeral=False)
        else:
            await self.outbox.send(client, channel, reply, thread=thread, user=user)
