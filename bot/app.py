"""Composition root: settings -> searcher -> store/daily -> core -> the registered platforms' adapters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core import CoreOptions, DailyCommands, QuoteBot
from bot.http import HttpServer
from bot.platform import Adapter, PlatformContext, PlatformUnavailable
from bot.platforms import spec, specs
from config.settings import PROJECT_ROOT, EnvReader, Settings, SettingsError
from retrieval.retriever import Retriever
from retrieval.search import default_index_dir, open_searcher

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger("quotebot")


def index_dir(settings: Settings) -> Path:
    return settings.index_dir or default_index_dir(settings.corpus_dir, PROJECT_ROOT / ".cache")


def build_searcher(settings: Settings, progress: Callable[[int, int], None] | None = None,
                   background: bool = True) -> Retriever:
    """Open (building if needed) the index of the configured corpus, in the configured search mode.

    ``auto`` runs hybrid search when the semantic extra imports and the model loads, else
    lexical; ``lexical`` never loads a model; ``hybrid`` raises SettingsError when it cannot run.
    The searcher's ``mode`` says which one runs. With ``background`` False (a command that answers
    and exits) every stage is ready before this returns, none left to a background thread.
    """
    stage = _semantic_stage(settings, background) if settings.search_mode != "lexical" else None
    if stage is None:
        return open_searcher(settings.corpus_dir, settings.manifest_path, index_dir(settings), progress)
    extras, factory = stage
    return open_searcher(settings.corpus_dir, settings.manifest_path, index_dir(settings), progress,
                         extras=extras, factory=factory)


def search_extras(settings: Settings) -> tuple:
    """What a new index build writes besides BM25 in this mode (embeddings in hybrid mode)."""
    stage = _semantic_stage(settings) if settings.search_mode != "lexical" else None
    return stage[0] if stage else ()


def _semantic_stage(settings: Settings, background: bool = True):
    """``(extras, factory)`` for hybrid search, or None in auto mode when it is unavailable."""
    from retrieval.semantic import SemanticUnavailable, extra_installed

    if settings.search_mode == "auto" and not extra_installed():
        log.info("semantic extra not installed: lexical search")
        return None
    try:
        from retrieval.hybrid import hybrid_stage

        return hybrid_stage(settings.embed_model, model_cache=settings.model_cache, background=background)
    except SemanticUnavailable as e:
        if settings.search_mode == "hybrid":
            raise SettingsError(f"QUOTEBOT_SEARCH_MODE=hybrid: {e}") from e
        log.warning("semantic search unavailable, using lexical search: %s", e)
        return None


def core_options(settings: Settings) -> CoreOptions:
    return CoreOptions(
        rate_per_minute=settings.rate_per_minute,
        rate_burst=settings.rate_burst,
        slash_ephemeral=settings.ephemeral,
        public_url=settings.public_url,
        channel_platforms=tuple(s.title or s.name for s in specs() if s.daily_posts and not s.fallback),
        feed_admins=tuple(f"{s.feed_admins} on {s.title or s.name}" for s in specs() if s.feed_admins),
    )


def configured_platforms(settings: Settings) -> list[str]:
    """Every registered platform its settings enable; the fallback (the console) when there is none."""
    found = [s.name for s in specs() if _enabled(settings, s.name)]
    return found or [s.name for s in specs() if s.fallback]


def unconfigured(settings: Settings, chosen: list[str]) -> tuple[str, str] | None:
    """``(platform, what it needs)`` for the first chosen platform its settings do not enable, else None."""
    for name in chosen:
        s = spec(name)
        if not s.fallback and not _enabled(settings, name):
            return name, s.needs
    return None


def _enabled(settings: Settings, name: str) -> bool:
    own = settings.platforms.get(name)
    return own is not None and own.enabled


def context_for(name: str, core: QuoteBot, settings: Settings, http: HttpServer, *, store: Store | None = None,
                daily: DailyCommands | None = None) -> PlatformContext:
    """What platform ``name``'s ``build`` gets: the core, the shared services and its own settings."""
    own = settings.platforms.get(name)
    if own is None:  # settings made without the registry (e.g. in tests): read the platform's from nothing
        own = spec(name).read_settings(EnvReader({}))
    return PlatformContext(core=core, settings=settings, platform_settings=own, http=http, store=store, daily=daily)


def run(settings: Settings, platforms: list[str]) -> None:
    """``serve`` the platforms, the index opened (or built) first in the main thread, before the event loop
    starts: Ctrl-C during a long build then stops at once (KeyboardInterrupt) instead of after it, as a
    build in a worker thread cannot be interrupted."""
    with _noting_ctrl_c() as pressed:
        searcher = build_searcher(settings)
    if pressed:  # the KeyboardInterrupt was raised where it is only printed (a finaliser): stop all the same
        raise KeyboardInterrupt
    asyncio.run(serve(settings, platforms, searcher=searcher))


@contextlib.contextmanager
def _noting_ctrl_c():
    """SIGINT raises KeyboardInterrupt as usual, and is also noted in the list yielded."""
    pressed: list[bool] = []

    def interrupt(signum, frame) -> None:
        pressed.append(True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


async def serve(settings: Settings, platforms: list[str], *, searcher: Retriever | None = None) -> None:
    """Run the given platforms until they end (console EOF) or SIGTERM/SIGINT arrives; ``searcher`` is
    opened here (in a worker thread) when not given."""
    chosen = [spec(name) for name in platforms]
    if searcher is None:
        searcher = await asyncio.to_thread(build_searcher, settings)
    log.info("search mode: %s; %d passages", searcher.describe(), searcher.size)
    store = daily = scheduler = None
    memo = None
    if any(s.daily_posts for s in chosen):
        from bot.daily import DailyScheduler, DailyService
        from bot.store import SqlMemo, open_store

        store = await open_store(settings.database_url)
        daily = DailyService(store, searcher, settings)
        memo = SqlMemo(store)
    feeds = _feed_commands(settings, searcher)
    core = QuoteBot(searcher, core_options(settings), memo=memo, daily=daily, feeds=feeds)
    http = HttpServer(settings.host, settings.port)
    adapters: dict[str, Adapter] = {}
    tasks: list[asyncio.Task] = []
    stopper: asyncio.Task | None = None
    try:
        for s in chosen:
            adapters[s.name] = s.build(context_for(s.name, core, settings, http, store=store, daily=daily))
        await http.start()
        if daily is not None:
            daily.use_platforms(adapters)
        tasks = [asyncio.create_task(a.serve(), name=f"adapter:{p}") for p, a in adapters.items()]
        if daily is not None:
            targets = {s.name: adapters[s.name] for s in chosen if s.daily_posts}
            scheduler = DailyScheduler.from_settings(store, searcher, targets, settings)
            tasks.append(asyncio.create_task(scheduler.run(), name="daily"))
        tasks.append(asyncio.create_task(_watch_corpus(searcher), name="corpus-watch"))
        tasks.append(asyncio.create_task(_refresh_feeds(feeds), name="feeds"))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        stopper = asyncio.create_task(stop.wait(), name="signals")
        done, _ = await asyncio.wait([*tasks[: len(adapters)], stopper], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopper and not t.cancelled() and t.exception():
                if isinstance(t.exception(), (SettingsError, PlatformUnavailable)):
                    raise t.exception()
                # Any other failure of a platform is fatal too: exit non-zero so a supervisor restarts the bot.
                name = t.get_name().removeprefix("adapter:")
                raise PlatformUnavailable(f"{name} stopped: {type(t.exception()).__name__}: {t.exception()}")
    finally:
        log.info("shutting down")
        if scheduler is not None:  # stop claiming; sends under way finish and are recorded before adapters close
            scheduler.stop()
        await http.close()  # no new requests; the adapters then finish what they took
        daily_task = next((t for t in tasks if t.get_name() == "daily"), None)
        if daily_task is not None:
            await asyncio.wait([daily_task], timeout=settings.stop_grace_seconds + 2)
        for a in adapters.values():
            with contextlib.suppress(Exception):
                await a.close()
        pending = [*tasks, *([stopper] if stopper else [])]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        core.close()
        if store is not None:
            await store.close()


def _feed_commands(settings: Settings, searcher: Retriever):
    """The ``feed`` command service; new episodes it stores are indexed at once (changed files only)."""
    from bot.feeds import FeedCommands, feed_manager

    async def reindex(reports) -> None:
        try:
            if await asyncio.to_thread(searcher.refresh):
                log.info("feeds: new episodes indexed; %d passages in use", searcher.size)
        except Exception as e:  # a broken file elsewhere in the corpus must not stop the bot
            log.error("feeds: new episodes stored but not indexed; still serving the previous index: %s", e)

    return FeedCommands(feed_manager(settings), reindex)


async def _refresh_feeds(feeds) -> None:
    """Fetch followed feeds as they fall due (QUOTEBOT_FEED_REFRESH_MINUTES) and index new episodes."""
    from retrieval.feeds.schedule import refresh_forever

    await refresh_forever(feeds.manager, feeds.after_change)


async def _watch_corpus(searcher: Retriever, every: float = 30.0) -> None:
    """Rebuild the index when a transcript or the manifest changes; keep serving on errors."""
    while True:
        await asyncio.sleep(every)
        try:
            if await asyncio.to_thread(searcher.refresh):
                log.info("corpus changed: new index with %d passages in use", searcher.size)
        except Exception as e:  # a broken transcript must not stop the bot
            log.error("corpus changed but the new index was not built; still serving the previous one: %s", e)
