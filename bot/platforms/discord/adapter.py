"""Discord adapter: discord.py client <-> QuoteBot. Thin I/O only; answers come from the core.

Slash commands (``/ask``, ``/quote``, ``/sources``, ``/help``, ``/daily ...``), ``@quotebot``
mentions, DMs and (with the message_content intent) prefix commands become a ``Request``;
the ``Reply`` is rendered by ``bot.platforms.discord.render``. Buttons carry ``qb:<payload>`` custom
ids (the core's opaque payload) and are routed from ``on_interaction``, so they keep working after a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.commands import strip_prefix
from bot.core import QuoteBot, apology, new_ref
from bot.daily.scheduler import SendLimits
from bot.payloads import shares_publicly, turns_page
from bot.platform import ChannelGone, DeliveryUnknown, PlatformUnavailable
from bot.platforms.discord import daily as daily_posts
from bot.platforms.discord import gateway
from bot.platforms.discord.autocomplete import TopicChoices, zone_matching
from bot.platforms.discord.render import ButtonSpec, DiscordMessage, payload_of, render
from bot.platforms.discord.retry import NOTICE, StillRateLimited, patiently
from bot.platforms.discord.settings import DiscordSettings
from bot.reply import Reply, Request, Via
from config.settings import PROJECT_ROOT, Settings, SettingsError

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
# how help names the commands here (slash commands, not the console's words)
COMMAND_NAMES = (("ask", "/ask"), ("quote", "/quote"), ("sources", "/sources"), ("daily", "/daily"),
                 ("help", "/help"))
ANSWER_GRACE = 5.0  # seconds a stop waits for answers under way before closing the gateway
SYNC_STATE_FILE = "discord-commands.json"


def route_to(settings: DiscordSettings) -> None:
    """Point discord.py's REST base and gateway at the configured URLs (a proxy, or a local server in tests).

    discord.py keeps both as class attributes, so this is process-wide: one Discord client per process.
    """
    discord.http.Route.BASE = settings.api_base.rstrip("/")
    if settings.gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def intents_for(settings: DiscordSettings) -> discord.Intents:
    """Guild and DM messages (mentions carry their text without the privileged intent)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = settings.message_content
    return intents


def cache_dir(settings: Settings) -> Path:
    """Where small state files live: next to the index when it is configured, else ``.cache/``."""
    if settings.index_dir is not None:
        return Path(settings.index_dir).parent
    return PROJECT_ROOT / ".cache"


class DiscordAdapter:
    """Runs one discord.py client (sharded when shard settings are given) for a ``QuoteBot``."""

    # Daily posts: well under the global 50 requests/s, and within a channel's bucket (5 messages per 5 s).
    daily_limits = SendLimits(concurrency=10, channel_interval=1.0)

    def __init__(self, core: QuoteBot, settings: Settings, discord_settings: DiscordSettings, *,
                 store: Any = None) -> None:
        if not discord_settings.token:
            raise SettingsError("DISCORD_TOKEN: required to run the Discord bot")
        self.core = core
        self.settings = settings
        self.discord = discord_settings
        self.store = store  # daily subscriptions, paused when the bot leaves a server
        self._nonces = daily_posts.Bounded(5000)  # (channel, nonce) of the bot's own messages seen on the gateway
        self._app_permissions = daily_posts.Bounded(5000)  # channel -> the bot's permissions there, from interactions
        self._answering: set[asyncio.Task[Any]] = set()  # interactions being answered (deferred ones included)
        self.client: discord.Client | None = None
        self.tree: app_commands.CommandTree | None = None
        self._logged_in = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------

    def build_client(self) -> discord.Client:
        """The configured client with its command tree and event handlers (not yet connected)."""
        s = self.discord
        route_to(s)
        # The bot never joins voice: no start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        # guild_ready_timeout: on_ready fires after this long without a new GUILD_CREATE; nothing here waits for it.
        options: dict[str, Any] = dict(intents=intents_for(s), allowed_mentions=NO_MENTIONS, guild_ready_timeout=0.5)
        if s.shard_count is not None or s.shard_ids is not None:
            ids = list(s.shard_ids) if s.shard_ids is not None else None
            client: discord.Client = gateway.ShardedClient(shard_count=s.shard_count, shard_ids=ids, **options)
        else:
            client = discord.Client(**options)
        tree = app_commands.CommandTree(client)
        self._add_commands(tree)
        tree.error(self._on_tree_error)
        client.setup_hook = self._setup_hook  # type: ignore[method-assign]
        self._first = gateway.FirstConnection(client)
        if isinstance(client, gateway.ShardedClient):
            client.first = self._first
        client.event(self._first.on_connect)
        client.event(self._first.on_disconnect)
        gateway.quiet_reconnects()
        for handler in (self.on_ready, self.on_message, self.on_interaction, self.on_error, self.on_guild_remove):
            client.event(handler)
        self.client, self.tree = client, tree
        return client

    async def serve(self) -> None:
        """Connect and serve until cancelled or ``close()``; the client is always closed on the way out."""
        client = self.client or self.build_client()
        if not self.discord.message_content:
            log.info(
                "Discord prefix commands (%s...) are off: the privileged message_content intent is not enabled "
                "(set DISCORD_MESSAGE_CONTENT=true after enabling it in the Developer Portal); "
                "slash commands, @mentions and DMs work.",
                self.discord.prefix,
            )
        try:
            async with client:
                await client.start(self.discord.token.get())  # type: ignore[union-attr]
        except discord.LoginFailure:
            raise PlatformUnavailable("DISCORD_TOKEN: Discord rejected the token (value not shown)") from None
        except discord.PrivilegedIntentsRequired:
            raise PlatformUnavailable(
                "DISCORD_MESSAGE_CONTENT: the Message Content intent is not enabled for this bot in the "
                "Developer Portal; enable it there or unset DISCORD_MESSAGE_CONTENT"
            ) from None
        except discord.ConnectionClosed as e:
            raise gateway.closed(e.code) from None
        except Exception as e:
            if self._first.failed:
                raise gateway.unreachable("DISCORD_GATEWAY_URL", self._gateway_url(), None) from None
            if not self._logged_in.is_set() and isinstance(e, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
                raise gateway.unreachable("DISCORD_API_BASE", self.discord.api_base, e) from None
            raise
        finally:
            log.info("Discord client closed")
        if self._first.failed:
            raise gateway.unreachable("DISCORD_GATEWAY_URL", self._gateway_url(), None)

    def _gateway_url(self) -> str:
        return self.discord.gateway_url or str(DiscordWebSocket.DEFAULT_GATEWAY)

    async def close(self) -> None:
        """Disconnect from the gateway and close the HTTP session; ``serve()`` then returns."""
        client = self.client
        if client is None or client.is_closed():
            return
        # discord.py's "wait for guilds, then dispatch ready" task would fire after the close and log a
        # traceback when the bot stops right after connecting; it has nothing left to do, so end it first.
        state = getattr(client, "_connection", None)
        pending = [getattr(state, "_ready_task", None), *getattr(state, "_ready_tasks", {}).values()]
        for task in pending:
            if task is not None and not task.done():
                task.cancel()
        if self._answering:  # answers under way (a deferred "thinking…" included) get their follow-up first
            log.info("Discord: finishing %d answers before disconnecting", len(self._answering))
            await asyncio.wait(set(self._answering), timeout=ANSWER_GRACE)
        await client.close()

    async def post(self, channel_id: str, reply: Reply, *, delivery_key: str | None = None) -> None:
        """Post ``reply`` publicly to a channel (daily quotes), ``delivery_key`` as its nonce. Raises
        ``ChannelGone`` when the channel is gone or closed to the bot, ``DeliveryUnknown`` when Discord's
        answer was lost."""
        await asyncio.wait_for(self._logged_in.wait(), timeout=120)
        assert self.client is not None
        channel = self.client.get_partial_messageable(int(channel_id))
        msg = render(reply, public=True)
        for attempt in (1, 2):
            try:
                await self._send_to(channel, msg, nonce=delivery_key)
                return
            except (discord.NotFound, discord.Forbidden) as exc:
                # Unknown channel, missing access or permissions: posting here keeps failing until someone acts.
                raise ChannelGone(f"discord channel {channel_id}: {exc.status} {exc.text or ''}".strip()) from exc
            except discord.DiscordServerError as exc:  # discord.py already retried it (same nonce)
                raise DeliveryUnknown(f"discord answered {exc.status}") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                if delivery_key is None or attempt == 2:
                    raise DeliveryUnknown(f"discord: {type(exc).__name__} before an answer") from exc
                # The same nonce again: Discord returns the message it already has, if it has one.
                log.info("discord: lost the answer to a daily post in %s (%s); trying once more with its nonce",
                         channel_id, type(exc).__name__)

    async def find_delivery(self, channel_id: str, delivery_key: str) -> bool | None:
        """Whether the bot's message with nonce ``delivery_key`` is in the channel (None: cannot tell)."""
        if (channel_id, delivery_key) in self._nonces:
            return True
        await asyncio.wait_for(self._logged_in.wait(), timeout=120)
        assert self.client is not None and self.client.user is not None
        channel = self.client.get_partial_messageable(int(channel_id))
        return await daily_posts.nonce_in_history(channel, self.client.user.id, delivery_key)

    async def can_post(self, channel_id: str) -> str | None:
        """None when the bot may post daily quotes in the channel, else which permissions to grant."""
        perms = self._app_permissions.get(channel_id)
        channel = self.client.get_channel(int(channel_id)) if self.client is not None else None
        thread = isinstance(channel, discord.Thread)
        if perms is None:
            guild = getattr(channel, "guild", None)
            me = guild.me if guild is not None else None
            if me is None:
                return None  # a DM, or a channel the cache does not know: nothing to check against
            perms = channel.permissions_for(me)  # type: ignore[union-attr]
        return daily_posts.cannot_post_reason(daily_posts.missing_permissions(perms, thread=thread))

    async def tell_user(self, user_id: str, channel_id: str, text: str) -> None:
        """A direct message to ``user_id``."""
        assert self.client is not None
        user = self.client.get_user(int(user_id)) or await self.client.fetch_user(int(user_id))
        await user.send(text, allowed_mentions=NO_MENTIONS)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """The bot was removed from a server (not an outage): its daily subscriptions are paused."""
        if self.store is None:
            return
        paused = await self.store.pause_subscriptions("discord", "paused: the bot was removed from the server",
                                                      datetime.now(UTC), guild_ids=[str(guild.id)])
        log.warning("discord: removed from server %s; %d daily subscriptions paused", guild.id, len(paused))

    async def _setup_hook(self) -> None:
        self._logged_in.set()
        try:
            await self.sync_commands()
        except Exception:
            log.exception("Discord slash command sync failed; existing commands stay as they are")

    async def sync_commands(self) -> bool:
        """Sync slash commands when their definition changed since the last sync; True when synced."""
        assert self.client is not None and self.tree is not None
        payload = [cmd.to_dict(self.tree) for cmd in self.tree.get_commands()]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"{self.discord.api_base}|{self.client.application_id}"
        path = cache_dir(self.settings) / SYNC_STATE_FILE
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get(key) == digest:
            log.info("Discord slash commands unchanged; not syncing")
            return False
        await self.tree.sync()
        state[key] = digest
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(path)
        log.info("Discord slash commands synced (%d commands)", len(payload))
        return True

    # --- slash commands -----------------------------------------------------------

    def _add_commands(self, tree: app_commands.CommandTree) -> None:
        @tree.command(name="ask", description="Find the transcript passages that answer a question")
        @app_commands.describe(question="What you want to know")
        async def ask(interaction: discord.Interaction, question: str) -> None:
            await self._slash(interaction, "ask", question)

        @tree.command(name="quote", description="A verbatim quote, at random or about a topic")
        @app_commands.describe(topic="Optional topic, e.g. mars")
        async def quote(interaction: discord.Interaction, topic: str | None = None) -> None:
            await self._slash(interaction, "quote", topic or "")

        topics = TopicChoices(self.core.searcher)

        @quote.autocomplete("topic")
        async def quote_topics(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            found = await asyncio.to_thread(topics.matching, current)
            return [app_commands.Choice(name=t, value=t) for t in found]

        @tree.command(name="sources", description="The transcripts I search, with links")
        async def sources(interaction: discord.Interaction) -> None:
            await self._slash(interaction, "sources", "")

        @tree.command(name="help", description="What I can do")
        async def help_(interaction: discord.Interaction) -> None:
            await self._slash(interaction, "help", "")

        # Discord sets default_member_permissions per top-level command only, so the whole group is shown to
        # members with Manage Channels (who may change it); the daily posts themselves are for everyone.
        daily = app_commands.Group(name="daily", description="A quote posted to this channel every day",
                                   default_permissions=discord.Permissions(manage_channels=True))

        @daily.command(name="subscribe", description="Post a daily quote here (needs Manage Channels)")
        @app_commands.describe(
            time="Local time, e.g. 09:00", timezone="IANA zone, e.g. Europe/Berlin", topic="Optional topic"
        )
        async def subscribe(
            interaction: discord.Interaction, time: str | None = None, timezone: str | None = None,
            topic: str | None = None,
        ) -> None:
            await self._slash(interaction, "daily", " ".join(p for p in ("subscribe", time, timezone, topic) if p))

        @subscribe.autocomplete("timezone")
        async def subscribe_zones(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=z, value=z) for z in zone_matching(current)]

        @daily.command(name="off", description="Stop the daily quote here (needs Manage Channels)")
        async def off(interaction: discord.Interaction) -> None:
            await self._slash(interaction, "daily", "off")

        @daily.command(name="status", description="When the next daily quote is due here")
        async def status(interaction: discord.Interaction) -> None:
            await self._slash(interaction, "daily", "status")

        @daily.command(name="now", description="Post today's quote now (needs Manage Channels)")
        async def now(interaction: discord.Interaction) -> None:
            await self._slash(interaction, "daily", "now")

        tree.add_command(daily)

        # Podcast feeds change what everyone searches: shown to members with Manage Server, checked again on use.
        admin = app_commands.Group(name="quote-admin", description="Manage quotebot (needs Manage Server)",
                                   default_permissions=discord.Permissions(manage_guild=True), guild_only=True)
        feed = app_commands.Group(name="feed", description="Podcast feeds whose episodes are indexed", parent=admin)

        @feed.command(name="add", description="Follow a podcast feed with transcripts (needs Manage Server)")
        @app_commands.describe(url="The feed's address (RSS)", name="What to call the podcast (optional)")
        async def feed_add(interaction: discord.Interaction, url: str, name: str | None = None) -> None:
            await self._admin_slash(interaction, " ".join(p for p in ("add", url, name) if p))

        @feed.command(name="list", description="The podcast feeds followed")
        async def feed_list(interaction: discord.Interaction) -> None:
            await self._admin_slash(interaction, "list")

        @feed.command(name="remove", description="Stop following a feed (needs Manage Server)")
        @app_commands.describe(feed="The feed's address or name")
        async def feed_remove(interaction: discord.Interaction, feed: str) -> None:
            await self._admin_slash(interaction, f"remove {feed}")

        @feed.command(name="refresh", description="Fetch the feeds now (needs Manage Server)")
        async def feed_refresh(interaction: discord.Interaction) -> None:
            await self._admin_slash(interaction, "refresh")

        tree.add_command(admin)

    async def _admin_slash(self, interaction: discord.Interaction, text: str) -> None:
        """``/quote-admin feed …``: only members with Manage Server in a server (Discord's own admin check)."""
        if interaction.guild_id is None or not interaction.permissions.manage_guild:
            text = "Only members with the Manage Server permission can change the podcast feeds."
            try:
                await patiently(lambda: interaction.response.send_message(text, ephemeral=True), "a feed answer")
            except StillRateLimited:
                await self._tell_rate_limited(interaction)
            return
        await self._slash(interaction, "feed", text)

    async def _slash(self, interaction: discord.Interaction, command: str, text: str) -> None:
        request = self._interaction_request(interaction, text, command, Via.SLASH)
        # Whether the answer will likely be private, needed before it exists if the work has to be deferred.
        if command == "daily":
            private = not text.startswith("now")
        else:
            private = {"ask": self.settings.ephemeral, "quote": False}.get(command, True)
        await self._answer(interaction, self.core.handle(request), private)

    # --- buttons ------------------------------------------------------------------

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component:
            return
        payload = payload_of(str((interaction.data or {}).get("custom_id", "")))
        if payload is None:
            return
        try:
            request = self._interaction_request(interaction, "", None, Via.BUTTON)
            if turns_page(payload):  # Previous/Next: the page takes the place of the one shown
                reply = await self.core.handle_action(payload, request)
                kwargs = self._message_kwargs(render(reply))
                try:
                    await patiently(lambda: interaction.response.edit_message(**kwargs), "a page")
                except StillRateLimited:
                    await self._tell_rate_limited(interaction)
                return
            guess = False if shares_publicly(payload) else self.settings.ephemeral
            await self._answer(interaction, self.core.handle_action(payload, request), guess)
        except Exception:
            await self._apologise(interaction, "button")

    # --- interactions: defer when slow, then answer -------------------------------

    async def _answer(self, interaction: discord.Interaction, work: Awaitable[Reply], ephemeral_guess: bool) -> None:
        """Answer at once when ``work`` is quick; otherwise defer (the 3 s deadline) and follow up. Each send
        outlasts a burst of 429s (``patiently``); past its bound the asker is told privately."""
        me = asyncio.current_task()
        if me is not None:
            self._answering.add(me)
            me.add_done_callback(self._answering.discard)
        task = asyncio.ensure_future(work)
        deferred_ephemeral: bool | None = None
        try:
            done, _ = await asyncio.wait({task}, timeout=self.settings.defer_after)
            if not done:
                try:
                    await patiently(lambda: interaction.response.defer(ephemeral=ephemeral_guess, thinking=True),
                                    "a defer")
                    deferred_ephemeral = ephemeral_guess
                except StillRateLimited:
                    pass  # answered directly below if Discord still takes it
            reply = await task
        finally:
            if not task.done():
                task.cancel()
        try:
            await self._deliver(interaction, render(reply), deferred_ephemeral)
        except StillRateLimited:
            await self._tell_rate_limited(interaction)

    async def _deliver(self, interaction: discord.Interaction, msg: DiscordMessage,
                       deferred_ephemeral: bool | None) -> None:
        kwargs = self._message_kwargs(msg)
        if deferred_ephemeral is None:
            await patiently(lambda: interaction.response.send_message(ephemeral=msg.ephemeral, **kwargs), "an answer")
        elif msg.ephemeral == deferred_ephemeral:
            await patiently(lambda: interaction.followup.send(ephemeral=msg.ephemeral, **kwargs), "an answer")
        else:
            # The first follow-up after a defer only fills in the "thinking…" message, whose visibility is
            # fixed: finish that one with a short note, then send the answer as a new message.
            note = "Answered privately." if msg.ephemeral else "Posted to the channel."
            await patiently(lambda: interaction.edit_original_response(
                content=note, embeds=[], view=None, allowed_mentions=NO_MENTIONS), "a note")
            await patiently(lambda: interaction.followup.send(ephemeral=msg.ephemeral, **kwargs), "an answer")
            if msg.ephemeral:
                await patiently(interaction.delete_original_response, "a note")

    async def _tell_rate_limited(self, interaction: discord.Interaction) -> None:
        """Tell the asker privately that Discord's rate limit kept their answer from being sent."""
        try:
            if interaction.response.is_done():
                await interaction.followup.send(NOTICE, ephemeral=True, allowed_mentions=NO_MENTIONS)
            else:
                await interaction.response.send_message(NOTICE, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except Exception as e:
            log.warning("discord: could not tell user %s that the answer was rate limited: %s",
                        interaction.user.id, type(e).__name__)

    def _interaction_request(
        self, interaction: discord.Interaction, text: str, command: str | None, via: Via
    ) -> Request:
        in_guild = interaction.guild_id is not None
        if in_guild:
            self._app_permissions.remember(str(interaction.channel_id), interaction.app_permissions)
        return Request(
            text=text,
            user_id=str(interaction.user.id),
            channel_id=str(interaction.channel_id),
            platform="discord",
            via=via,
            command=command,
            can_manage=interaction.permissions.manage_channels if in_guild else True,
            guild_id=str(interaction.guild_id) if in_guild else None,
            command_names=COMMAND_NAMES,
        )

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await self._apologise(interaction, f"/{interaction.command.name if interaction.command else '?'}", error)

    async def _apologise(self, interaction: discord.Interaction, what: str, error: BaseException | None = None) -> None:
        ref = new_ref()
        log.error("discord %s failed ref=%s", what, ref, exc_info=error or True)
        msg = render(apology(ref))
        try:
            if interaction.response.is_done():
                await interaction.followup.send(ephemeral=True, **self._message_kwargs(msg))
            else:
                await interaction.response.send_message(ephemeral=True, **self._message_kwargs(msg))
        except Exception:
            log.warning("could not send the apology ref=%s", ref, exc_info=True)

    # --- messages: mentions, DMs, prefix commands ---------------------------------

    async def on_message(self, message: discord.Message) -> None:
        client = self.client
        if client is not None and client.user is not None and message.author.id == client.user.id and message.nonce:
            self._nonces.remember((str(message.channel.id), str(message.nonce)))
        if client is None or client.user is None or message.author.bot:
            return
        parsed = self._message_text(message, client.user)
        if parsed is None:
            return
        text, via = parsed
        try:
            request = Request(
                text=text,
                user_id=str(message.author.id),
                channel_id=str(message.channel.id),
                platform="discord",
                via=via,
                can_manage=self._can_manage(message),
                guild_id=str(message.guild.id) if message.guild else None,
                command_names=COMMAND_NAMES,
            )
            reply = await self.core.handle(request)
            target = message.thread or message.channel
            reference = message if target is message.channel else None
            answer = render(reply, public=True)
            try:
                await patiently(lambda: self._send_to(target, answer, reference=reference), "a reply")
            except StillRateLimited:
                await self._send_to(target, DiscordMessage(NOTICE, (), (), False), reference=reference)
        except Exception:
            ref = new_ref()
            log.exception("discord message handling failed ref=%s", ref)
            try:
                await self._send_to(message.channel, render(apology(ref), public=True), reference=message)
            except Exception:
                log.warning("could not send the apology ref=%s", ref, exc_info=True)

    def _message_text(self, message: discord.Message, me: discord.ClientUser) -> tuple[str, Via] | None:
        content = message.content or ""
        if self.discord.message_content:
            rest = strip_prefix(content, self.discord.prefix)
            if rest is not None:
                return rest.strip(), Via.PREFIX
        if me in message.mentions:
            return re.sub(rf"<@!?{me.id}>", " ", content).strip(" \t\n:,"), Via.MENTION
        if isinstance(message.channel, discord.DMChannel):
            return content.strip(), Via.DM
        return None

    @staticmethod
    def _can_manage(message: discord.Message) -> bool:
        if message.guild is None:
            return True
        author = message.author
        if not isinstance(author, discord.Member):
            return False
        channel = message.channel
        return bool(channel.permissions_for(author).manage_channels)  # type: ignore[union-attr]

    # --- events -------------------------------------------------------------------

    async def on_ready(self) -> None:
        user = self.client.user if self.client else None
        guilds = len(self.client.guilds) if self.client else 0
        log.info("Discord connected as %s (%s guilds)", user, guilds)

    async def on_error(self, event: str, *args: Any, **kwargs: Any) -> None:
        log.exception("discord event %s failed; the bot keeps running", event)
        first = args[0] if args else None
        if isinstance(first, discord.Interaction):
            await self._apologise(first, event)

    # --- sending ------------------------------------------------------------------

    async def _send_to(
        self, channel: discord.abc.Messageable, msg: DiscordMessage, *, reference: discord.Message | None = None,
        nonce: str | None = None,
    ) -> None:
        kwargs = self._message_kwargs(msg)
        if nonce is not None:
            kwargs["nonce"] = nonce  # discord.py sends enforce_nonce with it
        if reference is not None:
            kwargs["reference"] = reference.to_reference(fail_if_not_exists=False)
            kwargs["mention_author"] = False
        await channel.send(**kwargs)

    @staticmethod
    def _message_kwargs(msg: DiscordMessage) -> dict[str, Any]:
        # A text-only answer (e.g. the list of sources) shows its links without link previews.
        kwargs: dict[str, Any] = {"content": msg.content or None, "embeds": list(msg.embeds),
                                  "allowed_mentions": NO_MENTIONS, "suppress_embeds": not msg.embeds}
        view = _view(msg.buttons)
        if view is not None:
            kwargs["view"] = view
        return kwargs


def _view(buttons: tuple[ButtonSpec, ...]) -> discord.ui.View | None:
    """Buttons as a discord.py view, only for rendering: presses are routed by ``on_interaction``."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for b in buttons:
        style = discord.ButtonStyle.primary if b.primary else discord.ButtonStyle.secondary
        view.add_item(discord.ui.Button(label=b.label, custom_id=b.custom_id, style=style))
    # A stopped view is sent but not kept in discord.py's view store: nothing piles up in memory.
    view.stop()
    return view
