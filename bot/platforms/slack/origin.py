"""Who and where a Slack request came from, as Bolt's ``context`` resolved it from the payload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Origin:
    """The ids Bolt's context carries for one request (slash command, event or action)."""

    user_id: str
    channel_id: str
    team_id: str | None = None
    enterprise_id: str | None = None
    bot_token: str | None = None
    response_url: str | None = None

    @classmethod
    def of(cls, context: Any) -> Origin:
        """From a Bolt ``(Async)BoltContext``."""
        return cls(
            user_id=context.user_id or "",
            channel_id=context.channel_id or "",
            team_id=context.team_id,
            enterprise_id=context.enterprise_id,
            bot_token=context.bot_token or context.token,
            response_url=context.response_url,
        )
