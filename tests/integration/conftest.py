"""Databases for the daily-post tests (SQLite and PostgreSQL, the session's ``postgres_server``), and the local
podcast host for the feed tests."""

from pathlib import Path

import pytest

from tests.integration.daily_support import BACKENDS, emptied, postgres_database, sqlite_url
from tests.integration.feeds_support import FeedSite


@pytest.fixture(scope="module")
def shared_postgres(postgres_server: str):
    """One PostgreSQL database per test module (created, then dropped)."""
    with postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the module's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return await emptied(request.getfixturevalue("shared_postgres"))


@pytest.fixture
async def site():
    """A local podcast host serving the Harbour Lights feed and its transcripts."""
    s = FeedSite()
    await s.start()
    s.harbour()
    yield s
    await s.close()
