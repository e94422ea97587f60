"""The ``quotebot`` command: ask, search --json, index, run."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

from bot.platforms import names as platform_names
from config.settings import Settings, SettingsError, load_settings
from retrieval.formats import TranscriptError

QUOTE_CHARS = 600


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quotebot", description="Verbatim answers from talk and podcast transcripts.")
    p.add_argument("--corpus", type=Path, help="folder of transcripts (+ optional corpus.toml); or QUOTEBOT_CORPUS")
    p.add_argument("--version", action="version", version=f"quotebot {_version()}")
    sub = p.add_subparsers(dest="cmd", required=True)
    ask = sub.add_parser("ask", help="answer one question in the terminal")
    ask.add_argument("question", nargs="+")
    search = sub.add_parser("search", help="ranked passages; with --json one JSON line per query")
    search.add_argument("--json", action="store_true", help="print JSON (one object per query line)")
    search.add_argument("--top-k", type=int, default=5, help="results per query (at least 1; default 5)")
    search.add_argument("query", nargs="*", help="the query; without it, one query per stdin line")
    index = sub.add_parser("index", help="build the index, or verify that it is up to date")
    index.add_argument("--corpus", dest="sub_corpus", type=Path)
    index.add_argument("--force", action="store_true", help="rebuild even when the index is up to date")
    feed = sub.add_parser("feed", help="follow podcast feeds with transcripts: add, list, remove, refresh")
    feed_sub = feed.add_subparsers(dest="feed_cmd", required=True)
    feed_add = feed_sub.add_parser("add", help="follow a feed: fetch it now and store its episodes' transcripts")
    feed_add.add_argument("url")
    feed_add.add_argument("--name", help="what to call the podcast (default: the feed's title)")
    feed_sub.add_parser("list", help="the feeds followed, their episodes and last fetch")
    feed_remove = feed_sub.add_parser("remove", help="stop following a feed (by URL or name)")
    feed_remove.add_argument("feed", nargs="+")
    feed_remove.add_argument("--keep-episodes", action="store_true", help="keep its stored episodes in the corpus")
    feed_refresh = feed_sub.add_parser("refresh", help="fetch followed feeds now (all, or the one named)")
    feed_refresh.add_argument("feed", nargs="*")
    run = sub.add_parser("run", help="start the bot on every configured platform (console when none)")
    run.add_argument("--platform", choices=platform_names(), action="append")
    return p


def _version() -> str:
    try:
        return metadata.version("quotebot")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def clean_arg(text: str) -> str:
    """A command-line argument as text: bytes that were not UTF-8 (kept by Python as lone surrogates)
    become U+FFFD, so nothing downstream meets a string that cannot be encoded."""
    try:
        return os.fsencode(text).decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that no undecodable byte stands for (main() called with it)
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def stdin_lines(stream: Iterable[bytes]) -> Iterator[str]:
    """Lines of ``stream`` (bytes) as text: an invalid UTF-8 byte becomes U+FFFD in its own line (reported on
    stderr) and every other line is read as it is."""
    for number, raw in enumerate(stream, 1):
        raw = raw.rstrip(b"\n").rstrip(b"\r")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            print(f"quotebot: stdin line {number}: not valid UTF-8, read with U+FFFD in place of the bad bytes",
                  file=sys.stderr)
            yield raw.decode("utf-8", "replace")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cmd == "search" and args.top_k < 1:
        parser.error("--top-k must be at least 1")
    corpus = getattr(args, "sub_corpus", None) or args.corpus
    try:
        settings = load_settings(**({"corpus_dir": corpus} if corpus else {}))
        if corpus and not corpus.is_dir():
            raise SettingsError(f"--corpus: {str(corpus)!r} is not a folder")
    except SettingsError as e:
        print(f"quotebot: setting error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for warning in settings.warnings:
        print(f"quotebot: warning: {warning}", file=sys.stderr)
    try:
        if args.cmd == "index":
            return _index(settings, args.force)
        if args.cmd == "search":
            return _search(settings, args)
        if args.cmd == "feed":
            return _feed(settings, args)
        if args.cmd == "ask":
            return _ask(settings, " ".join(clean_arg(a) for a in args.question))
        return _run(settings, args.platform)
    except TranscriptError as e:
        print(f"quotebot: {e}", file=sys.stderr)
        return 1
    except SettingsError as e:
        print(f"quotebot: setting error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``quotebot search ... | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _searcher(settings: Settings, progress=None):
    from bot.app import build_searcher

    return build_searcher(settings, progress, background=False)  # it answers and exits


def _index(settings: Settings, force: bool) -> int:
    """Build or update the index; list files left out (exit 1 when any was)."""
    from bot.app import index_dir, search_extras
    from retrieval.index import IndexStore
    from retrieval.library import update_index

    folder = index_dir(settings)
    progress = _IndexProgress(sys.stderr) if sys.stderr.isatty() else None
    try:
        report = update_index(settings.corpus_dir, settings.manifest_path, IndexStore(folder), progress,
                              search_extras(settings), force=force)
    finally:
        if progress:
            progress.close()
    index = report.index
    for path in report.unsupported:
        print(f"quotebot: not a transcript, ignored: {path}", file=sys.stderr)
    for line in report.left_out:
        print(f"quotebot: left out: {line}", file=sys.stderr)
    if report.built:
        print(f"indexed {len(index.sources)} transcripts ({report.analysed} analysed, {report.reused} unchanged), "
              f"{index.size} passages, {len(index.vocab)} terms in {report.seconds:.1f} s -> {folder}")
    else:
        print(f"index is up to date: {len(index.sources)} transcripts, {index.size} passages -> {folder}")
    if report.left_out:
        print(f"quotebot: {len(report.left_out)} file(s) left out of the index (see above)", file=sys.stderr)
        return 1
    return 0


class _IndexProgress:
    """One self-overwriting status line on a terminal, shown once a build has taken a second."""

    def __init__(self, stream, delay: float = 1.0) -> None:
        import time

        self._stream, self._clock = stream, time.monotonic
        self._since = self._clock() + delay
        self._parts: dict[str, str] = {}
        self._shown = False

    def __call__(self, p) -> None:
        if p.stage == "passages":
            self._parts[p.stage] = f"passages {p.done:,}"
        else:
            self._parts[p.stage] = f"{p.stage} {p.done:,}/{p.total:,}"
        if self._clock() >= self._since:
            self._stream.write("\rindexing: " + " · ".join(self._parts.values()) + "\033[K")
            self._stream.flush()
            self._shown = True

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


def _search(settings: Settings, args) -> int:
    from retrieval.rank import clip_quote

    searcher = _searcher(settings)
    k = args.top_k
    queries = [" ".join(clean_arg(a) for a in args.query)] if args.query else stdin_lines(sys.stdin.buffer)
    for q in queries:
        hits = searcher.search(q, k=k) if q.strip() else []
        if args.json:
            results = [
                {
                    "text": clip_quote(h.text, QUOTE_CHARS),
                    "source_id": h.source.source_id,
                    "title": h.source.title,
                    "speaker": h.passage.speaker,
                    "start": h.passage.start,
                    "url": h.url,
                    "score": h.score,
                }
                for h in hits
            ]
            sys.stdout.write(json.dumps({"query": q, "results": results}, ensure_ascii=False) + "\n")
        else:
            for i, h in enumerate(hits, 1):
                sys.stdout.write(f"{i}. [{h.score:.2f}] {h.source.title}: {h.text}\n   {h.url or ''}\n")
        sys.stdout.flush()
    return 0


def _ask(settings: Settings, question: str) -> int:
    from bot.app import core_options
    from bot.core import QuoteBot
    from bot.plaintext import render_text
    from bot.reply import Request, Via

    async def once() -> str:
        core = QuoteBot(_searcher(settings), core_options(settings))
        try:
            reply = await core.handle(Request(text=question, via=Via.CONSOLE))
        finally:
            core.close()
        return render_text(reply, ansi=sys.stdout.isatty())

    print(asyncio.run(once()))
    return 0


def _run(settings: Settings, platforms: list[str] | None) -> int:
    from bot.app import configured_platforms, run, unconfigured
    from bot.platform import PlatformUnavailable

    chosen = list(dict.fromkeys(platforms)) if platforms else configured_platforms(settings)
    missing = unconfigured(settings, chosen)
    if missing:
        print(f"quotebot: setting error: --platform {missing[0]} needs {missing[1]}", file=sys.stderr)
        return 2
    try:
        run(settings, chosen)
    except PlatformUnavailable as e:
        print(f"quotebot: {e}", file=sys.stderr)
        return 1
    return 0


def _feed(settings: Settings, args) -> int:
    """``quotebot feed add|list|remove|refresh``: exit 1 when the feed could not be read or found."""
    from bot.feeds import feed_manager, list_text
    from retrieval.feeds.manager import FeedNotFound
    from retrieval.feeds.parse import FeedError

    manager = feed_manager(settings)
    try:
        if args.feed_cmd == "list":
            print(list_text(manager))
            return 0
        if args.feed_cmd == "remove":
            rec, deleted = manager.remove(" ".join(args.feed), keep_episodes=args.keep_episodes)
            kept = "its episodes stay in the corpus" if args.keep_episodes else f"{deleted} episode(s) removed"
            print(f"stopped following {rec.display_name} ({rec.url}); {kept}")
            return 0
        if args.feed_cmd == "add":
            reports = [asyncio.run(manager.add(clean_arg(args.url), args.name))]
        else:
            reports = asyncio.run(manager.refresh(force=True, only=" ".join(args.feed) or None))
            if not reports:
                print("no podcast feeds are followed (quotebot feed add URL)")
                return 0
    except (FeedError, FeedNotFound, ValueError) as e:
        print(f"quotebot: {e}", file=sys.stderr)
        return 1
    for report in reports:
        print(report.summary())
    if any(r.changed for r in reports):
        print(f"stored in {manager.feeds_dir}; indexed on the next search or start (a running bot picks them up "
              "within 30 s)")
    return 1 if any(r.status == "error" for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
