"""The console adapter: one answer per line, ``more`` and ``context N`` act as the buttons."""

import io

from bot.core import QuoteBot
from bot.platforms.console.adapter import ConsoleAdapter
from config.settings import load_settings
from retrieval.search import open_searcher
from tests.conftest import BUNDLED, ROOT


async def test_console_pages_and_widens_like_the_buttons(tmp_path):
    searcher = open_searcher(BUNDLED, ROOT / "config" / "corpus.toml", tmp_path / "ix")
    core = QuoteBot(searcher)
    out = io.StringIO()
    stdin = io.StringIO("war and peace\nmore\ncontext 2\ncontext 9\n\nquit\nnever read\n")
    try:
        await ConsoleAdapter(core, load_settings({}, dotenv_path=""), stdin=stdin, stdout=out).serve()
    finally:
        core.close()
    text = out.getvalue()
    assert text.count("1. “") == 1 and text.count("4. “") == 1  # the page after "more" is numbered 4–6
    assert "Results 4–6 for “war and peace”" in text
    assert "Pick a quote between 4 and 6." in text
    assert "never read" not in text and "\x1b[" not in text  # stops at quit; no colour codes when piped
