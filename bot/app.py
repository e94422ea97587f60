"""Composition root: settings -> searcher -> store/daily -> core -> platform adapters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from bot.core import CoreOptions, QuoteBot
from config.settings import PROJECT_ROOT, Settings, SettingsError
from retrieval.search import Searcher, default_index_dir, open_searcher

log = logging.getLogger("quotebot")

PLATFORMS = ("console", "discord", "slack")


def index_dir(settings: Settings) -> Path:
    return settings.index_dir or default_index_dir(settings.corpus_dir, PROJECT_ROOT / ".cache")


def build_searcher(settings: Settings, progress: Callable[[int, int], None] | None = None) -> Searcher:
    """Open (building if needed) the index of the configured corpus, in the configured search mode.

    ``auto`` runs hybrid search when the semantic extra imports and the model loads, else
    lexical; ``lexical`` never loads a model; ``hybrid`` raises SettingsError when it cannot run.
    The searcher's ``mode`` says which one runs.
    """
    stage = _semantic_stage(settings) if settings.search_mode != "lexical" else None
    if stage is None:
        return open_searcher(settings.corpus_dir, settings.manifest_path, index_dir(settings), progress)
    extras, factory = stage
    return open_searcher(settings.corpus_dir, settings.manifest_path, index_dir(settings), progress,
                         extras=extras, factory=factory)


def search_extras(settings: Settings) -> tuple:
    """What a new index build writes besides BM25 in this mode (embeddings in hybrid mode)."""
    stage = _semantic_stage(settings) if settings.search_mode != "lexical" else None
    return stage[0] if stage else ()


def _semantic_stage(settings: Settings):
    """``(extras, factory)`` for hybrid search, or None in auto mode when it is unavailable."""
    from retrieval.semantic import SemanticUnavailable, extra_installed

    if settings.search_mode == "auto" and not extra_installed():
        log.info("semantic extra not installed: lexical search")
        return None
    try:
        from retrieval.hybrid import hybrid_stage

        return hybrid_stage(settings.embed_model)
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
    )


def configured_platforms(settings: Settings) -> list[str]:
    """Every platform whose settings are present; the console when there are none."""
    found = [p for p, on in (("discord", settings.discord_enabled), ("slack", settings.slack_enabled)) if on]
    return found or ["console"]


async def serve(settings: Settings, platforms: list[str]) -> None:
    """Run the given platforms until they end (console EOF) or SIGTERM/SIGINT arrives."""
    searcher = await asyncio.to_thread(build_searcher, settings)
    mode = getattr(searcher, "describe", lambda: "lexical (BM25 + phrase/proximity re-ranking)")()
    log.info("search mode: %s; %d passages", mode, searcher.index.size)
    store = daily = scheduler = None
    if platforms != ["console"]:
        from bot.daily import DailyScheduler, DailyService
        from bot.store import SqlMemo, open_store

        store = await open_store(settings.database_url)
        daily = DailyService(store, searcher, settings)
        memo = SqlMemo(store)
    else:
        memo = None
    core = QuoteBot(searcher, core_options(settings), memo=memo, daily=daily)
    try:
        adapters = {p: _adapter(p, core, settings, daily) for p in platforms}
    except BaseException:
        core.close()
        if store is not None:
            await store.close()
        raise
    tasks = [asyncio.create_task(a.run(), name=f"adapter:{p}") for p, a in adapters.items()]
    if daily is not None:
        posters = {p: a.post for p, a in adapters.items() if p != "console"}
        scheduler = DailyScheduler.from_settings(store, searcher, posters, settings)
        tasks.append(asyncio.create_task(scheduler.run(), name="daily"))
    tasks.append(asyncio.create_task(_watch_corpus(searcher), name="corpus-watch"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait(), name="signals")
    adapter_tasks = tasks[: len(adapters)]
    try:
        done, _ = await asyncio.wait([*adapter_tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopper and not t.cancelled() and t.exception():
                if isinstance(t.exception(), SettingsError):
                    raise t.exception()
                log.error("platform %s stopped: %r", t.get_name(), t.exception())
    finally:
        log.info("shutting down")
        for a in adapters.values():
            with contextlib.suppress(Exception):
                await a.close()
        for t in [*tasks, stopper]:
            t.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        core.close()
        if store is not None:
            await store.close()


def _adapter(platform: str, core: QuoteBot, settings: Settings, daily):
    if platform == "discord":
        from bot.platforms.discord.adapter import DiscordAdapter

        return DiscordAdapter(core, settings, daily=daily)
    if platform == "slack":
        from bot.platforms.slack.adapter import SlackAdapter

        return SlackAdapter(core, settings, daily=daily)
    from bot.platforms.console.adapter import ConsoleAdapter

    return ConsoleAdapter(core, settings, daily=daily)


async def _watch_corpus(searcher: Searcher, every: float = 30.0) -> None:
    """Rebuild the index when a transcript or the manifest changes; keep serving on errors."""
    while True:
        await asyncio.sleep(every)
        try:
            if await asyncio.to_thread(searcher.refresh):
                log.info("corpus changed: new index with %d passages in use", searcher.index.size)
        except Exception as e:  # a broken transcript must not stop the bot
            log.error("corpus changed but the new index was not built; still serving the previous one: %s", e)
