"""Daily posts on Discord: exactly once, and only where the bot may post.

* Each daily message is sent with its delivery key as the message ``nonce`` (discord.py adds
  ``enforce_nonce``), so Discord itself answers a repeat of the same send within a few minutes with the
  message it already has instead of a second one. That makes discord.py's own retries after a 5xx, and
  one more try after a connection lost before the answer, harmless.
* ``find_delivery`` looks for the nonce among the bot's own messages seen on the gateway and in the
  channel's recent messages.
* ``can_post`` reads the bot's permissions in the channel (from the interaction, else the gateway cache):
  View Channel, Send Messages and Embed Links are needed (Send Messages in Threads in a thread).
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import discord

log = logging.getLogger(__name__)

HISTORY_LIMIT = 50
NEEDED = (("view_channel", "View Channel"), ("send_messages", "Send Messages"), ("embed_links", "Embed Links"))
IN_THREADS = ("send_messages_in_threads", "Send Messages in Threads")


def missing_permissions(perms: discord.Permissions, *, thread: bool = False) -> list[str]:
    """The names of the permissions a daily post needs that ``perms`` lacks."""
    needed = [*NEEDED, IN_THREADS] if thread else list(NEEDED)
    if thread:
        needed = [n for n in needed if n[0] != "send_messages"]
    return [label for attr, label in needed if not getattr(perms, attr)]


def cannot_post_reason(missing: list[str]) -> str | None:
    if not missing:
        return None
    names = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    return (f"I don't have the {names} permission{'s' if len(missing) > 1 else ''} here. Ask someone who manages "
            "this channel to grant them to me (Edit Channel → Permissions), then run `/daily subscribe` again.")


class Bounded(OrderedDict):
    """A small LRU memory: the newest ``capacity`` entries."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def remember(self, key: object, value: object = True) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


async def nonce_in_history(channel: discord.abc.Messageable, me: int, nonce: str) -> bool | None:
    """Whether one of the bot's recent messages in ``channel`` carries ``nonce`` (None: cannot read them)."""
    try:
        async for m in channel.history(limit=HISTORY_LIMIT):
            if m.author.id == me and m.nonce is not None and str(m.nonce) == nonce:
                return True
    except (discord.Forbidden, discord.NotFound):
        return None
    except discord.HTTPException as exc:
        log.warning("discord: could not read recent messages (%s)", exc.status)
        return None
    return False
