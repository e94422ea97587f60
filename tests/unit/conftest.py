"""Fixtures shared by the unit tests."""

import pytest

from retrieval.search import Searcher, open_searcher
from tests.conftest import BUNDLED, ROOT


@pytest.fixture(scope="session")
def bundled_searcher(tmp_path_factory) -> Searcher:
    """A lexical searcher over the bundled corpus and its manifest, built once for the unit tests that read it."""
    return open_searcher(BUNDLED, ROOT / "config" / "corpus.toml", tmp_path_factory.mktemp("bundled") / "ix")
