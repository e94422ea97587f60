"""The platform contract: what a chat platform (or the web page) provides to plug into quotebot.

A platform is one package, ``bot/platforms/<name>/``, holding its adapter, its renderer and its
settings. Its ``__init__.py`` defines ``SPEC = PlatformSpec(...)`` and must stay cheap to import
(no third-party client library at module level: ``build`` imports the adapter lazily). The
platform is then registered with one line, its package name in ``bot.platforms.REGISTRY``.
Nothing outside its package names it: ``quotebot run --platform <name>``, settings loading,
the daily-post permission text and the shutdown all iterate the registry.

Lifecycle, driven by ``bot.app.serve``:

1. ``spec.read_settings(env)`` at start-up (a bad value raises ``SettingsError`` naming the variable);
   the result is kept in ``Settings.platforms[spec.name]`` and says whether the platform is ``enabled``.
2. ``spec.build(context)`` returns an ``Adapter``; it may add routes to ``context.http`` (one aiohttp
   server shared by every platform that takes HTTP requests, on ``HOST``:``PORT``), which starts after
   every adapter is built and before any ``serve()``.
3. ``await adapter.serve()`` runs until ``close()`` or cancellation. ``post()`` is called by the daily
   scheduler (only when ``spec.daily_posts``) for a channel id the platform itself put in a ``Request``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from bot.reply import Reply

if TYPE_CHECKING:
    from bot.core import DailyCommands, QuoteBot
    from bot.http import HttpServer
    from bot.store import Store
    from config.settings import EnvReader, Settings


class PlatformError(Exception):
    """Base of the errors an adapter raises to the rest of the bot."""


class ChannelGone(PlatformError):
    """Raised by ``Adapter.post`` when the channel was deleted or the bot lost access to it for good:
    the daily scheduler then turns the channel's subscription off instead of retrying."""


class DeliveryUnknown(PlatformError):
    """Raised by ``Adapter.post`` when it cannot tell whether the message arrived (timeout, HTTP 5xx, connection
    lost after the request went out): the daily scheduler then asks ``find_delivery`` before it ever resends."""


class PlatformUnavailable(PlatformError):
    """Raised by ``Adapter.serve`` when the platform cannot run at all (e.g. its server rejects the
    credentials, or a required extra is not installed). The message names the setting to fix and never
    contains a secret; ``quotebot run`` stops and exits non-zero. Any other exception from ``post`` is
    a failed attempt that the scheduler retries."""


@runtime_checkable
class Adapter(Protocol):
    """One running platform connection."""

    async def serve(self) -> None:
        """Connect and answer requests until ``close()`` is called or the task is cancelled."""

    async def close(self) -> None:
        """Stop serving and release connections; safe to call more than once, and before ``serve``."""

    async def post(self, channel_id: str, reply: Reply) -> None:
        """Post ``reply`` publicly to ``channel_id`` (daily quotes). Returns once delivered; raises
        ``ChannelGone`` when it can never be delivered there, any other exception when it may be retried."""


@runtime_checkable
class ChannelPoster(Protocol):
    """What the daily scheduler and ``daily subscribe`` need of a platform with channels (``daily_posts``).

    ``post`` carries ``delivery_key`` with the message (Discord: nonce with ``enforce_nonce``; Slack: message
    metadata), so that a send whose outcome is unknown (``DeliveryUnknown``) can be looked up with
    ``find_delivery`` instead of being resent blindly: True when it arrived, False when it is known not to
    have, None while that cannot be told yet. ``can_post`` is None when the bot may post in the channel,
    else a short reason saying how to fix it; ``tell_user`` sends one private note (a lost channel).
    """

    async def post(self, channel_id: str, reply: Reply, *, delivery_key: str | None = None) -> None: ...

    async def find_delivery(self, channel_id: str, delivery_key: str) -> bool | None: ...

    async def can_post(self, channel_id: str) -> str | None: ...

    async def tell_user(self, user_id: str, channel_id: str, text: str) -> None: ...


class PlatformSettings(Protocol):
    """What the core needs to know of a platform's own (typed, frozen) settings."""

    @property
    def enabled(self) -> bool:
        """True when the environment configures this platform (so ``quotebot run`` starts it)."""


S = TypeVar("S", bound=PlatformSettings)


@dataclass(frozen=True, slots=True)
class PlatformContext(Generic[S]):
    """Everything a platform's ``build`` may use: the core and its shared services."""

    core: QuoteBot
    settings: Settings
    platform_settings: S
    http: HttpServer
    store: Store | None = None
    daily: DailyCommands | None = None


@dataclass(frozen=True, slots=True)
class PlatformSpec(Generic[S]):
    """One registry entry: everything the app, the CLI, settings and daily posts need to know of a platform.

    ``read_settings`` reads the platform's variables (through ``EnvReader``, so errors name them).
    ``needs`` says what enables it, for ``--platform <name>`` without it (``"DISCORD_TOKEN"``).
    ``managers`` completes "Only ... can change this channel's daily quote".
    ``fallback`` platforms run when no platform is enabled (the console).
    ``daily_posts`` is False for platforms without channels to post to (the web page).
    ``title`` is the name people know it by ("Discord"); ``feed_admins`` says who may change the podcast
    feeds there ("Manage Server"), empty where feeds cannot be changed.
    """

    name: str
    summary: str
    read_settings: Callable[[EnvReader], S]
    build: Callable[[PlatformContext[S]], Adapter]
    needs: str
    managers: str = "people who can manage the channel"
    fallback: bool = False
    daily_posts: bool = True
    title: str = ""
    feed_admins: str = ""


def platform_settings(settings: Settings, name: str) -> Any:
    """The typed settings of platform ``name`` inside ``settings`` (``KeyError`` when it is not registered)."""
    platforms: Mapping[str, Any] = settings.platforms
    return platforms[name]
