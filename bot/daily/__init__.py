"""Daily quote posts. A channel manager subscribes with ``daily subscribe [HH:MM] [Area/City] [topic]``
(``commands``); each day's quote is due at that local time, converted afresh for each date (``schedule``), is chosen
least-shown-first and stable per channel and date (``picking``), and is posted through the platform adapters by a
claim-then-post scheduler that sends it exactly once per subscription and local date (``scheduler``, whose
docstring spells out the guarantee: short heartbeat leases, delivery keys and look-ups when a send's outcome is
unknown, graceful stops).
"""

from bot.daily.commands import DEFAULT_TIME, HELP, MAX_TOPIC_CHARS, DailyService
from bot.daily.picking import QuotePicker, QuoteSource, daily_reply
from bot.daily.schedule import (
    BadInput,
    Clock,
    describe_instant,
    due_at,
    local_day,
    looks_like_time,
    looks_like_zone,
    next_post_at,
    parse_time,
    resolve_zone,
    utc_now,
)
from bot.daily.scheduler import (
    ChannelGone,
    DailyScheduler,
    DailyTarget,
    DeliveryUnknown,
    LeaseTokens,
    Outcome,
    Poster,
    SendLimits,
    as_target,
    delivery_key,
)

__all__ = [
    "DEFAULT_TIME",
    "HELP",
    "MAX_TOPIC_CHARS",
    "BadInput",
    "ChannelGone",
    "Clock",
    "DailyScheduler",
    "DailyService",
    "DailyTarget",
    "DeliveryUnknown",
    "LeaseTokens",
    "Outcome",
    "Poster",
    "QuotePicker",
    "QuoteSource",
    "SendLimits",
    "as_target",
    "daily_reply",
    "delivery_key",
    "describe_instant",
    "due_at",
    "local_day",
    "looks_like_time",
    "looks_like_zone",
    "next_post_at",
    "parse_time",
    "resolve_zone",
    "utc_now",
]
