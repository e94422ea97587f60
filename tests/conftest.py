"""Shared fixtures: isolated index/database folders and small corpora written per test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres_server import PostgresUnavailable, throwaway_postgres

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "data" / "transcripts"


@pytest.fixture(autouse=True, scope="session")
def _test_settings():
    """Settings for the whole run, set before any fixture (module-scoped bots included) starts.

    Lexical search unless QUOTEBOT_TEST_SEARCH_MODE says otherwise (the hybrid tests choose
    their mode themselves); no developer .env, no platform tokens, no model hub.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUOTEBOT_SEARCH_MODE", os.environ.get("QUOTEBOT_TEST_SEARCH_MODE", "lexical"))
        mp.setenv("QUOTEBOT_DOTENV", "")
        mp.setenv("HF_HUB_OFFLINE", "1")
        for name in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_CLIENT_ID",
                     "SLACK_CLIENT_SECRET", "QUOTEBOT_CORPUS", "DATABASE_URL", "QUOTEBOT_INDEX_DIR"):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The PostgreSQL server URL for the tests: QUOTEBOT_TEST_POSTGRES_URL (or a postgresql QUOTEBOT_TEST_DATABASE_URL)
    when set, else a throwaway server started for this run and stopped after it.

    A server that cannot start fails the tests that need it: PostgreSQL tests never skip.
    """
    for name in ("QUOTEBOT_TEST_POSTGRES_URL", "QUOTEBOT_TEST_DATABASE_URL"):
        configured = os.environ.get(name, "")
        if configured.startswith(("postgresql", "postgres:")):
            yield configured
            return
    try:
        with throwaway_postgres() as url:
            yield url
    except PostgresUnavailable as e:
        pytest.fail(f"no PostgreSQL server for the tests: {e}", pytrace=False)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """Keep every test's index and database out of the developer's .cache."""
    home = tmp_path_factory.mktemp("qb-home")
    monkeypatch.setenv("QUOTEBOT_INDEX_DIR", str(home / "index"))
    default_db = f"sqlite+aiosqlite:///{home}/db.sqlite3"
    monkeypatch.setenv("DATABASE_URL", os.environ.get("QUOTEBOT_TEST_DATABASE_URL", default_db))


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A corpus folder with one timed (SRT) and one untimed transcript and a manifest."""
    return write_small_corpus(tmp_path / "corpus")


def write_small_corpus(d: Path) -> Path:
    """Write the small test corpus into folder ``d`` (created)."""
    d.mkdir(parents=True)
    (d / "talk.srt").write_text(
        "1\n00:00:01,000 --> 00:00:04,000\nWelcome to the show about rockets.\n\n"
        "2\n00:00:04,500 --> 00:00:09,000\nThe Raptor engine burns methane and liquid oxygen.\n\n"
        "3\n00:01:10,000 --> 00:01:25,000\nWe think the foamy paradox worries a lot of people, because if the "
        "galaxy is "
        "so old and so large then somebody should have visited us by now, and nobody has, so either we are early or "
        "something stops civilisations before they spread out.\n\n",
        encoding="utf-8",
    )
    (d / "chat.txt").write_text(
        "- so what about the ocean? - [guest] the ocean is deep and\nfull of strange fish. nobody has mapped it all.\n"
        "- and mars? - [guest] mars is cold and red and dusty.\n",
        encoding="utf-8",
    )
    (d / "corpus.toml").write_text(
        '[[source]]\nfile = "talk.srt"\nid = "talk"\ntitle = "Rocket Talk"\nurl = "https://youtu.be/abcdefghijk"\n'
        'speakers = ["Host"]\n\n[[source]]\nfile = "chat.txt"\nid = "chat"\ntitle = "Ocean Chat"\n\n'
        '[source.speaker_tags]\nguest = "The Guest"\n\n[glossary]\nfermi = ["foamy paradox"]\n',
        encoding="utf-8",
    )
    return d


def run_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None, timeout: float = 120):
    """Run ``quotebot`` as a user would, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True, text=True, env=full_env,
        timeout=timeout,
    )
