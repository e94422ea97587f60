"""Start-up checks of the environment: mistyped names, QUOTEBOT_DEFER_AFTER's range, DATABASE_URL's form."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings


def _load(**env: str):
    return load_settings(environ={"QUOTEBOT_DOTENV": "", **env}, dotenv_path="")


def test_a_mistyped_quotebot_variable_is_reported_with_the_closest_known_name() -> None:
    s = _load(QUOTEBOT_EPHEMRAL="false")
    assert s.ephemeral is True  # the typo does not take effect ...
    assert s.warnings == ("QUOTEBOT_EPHEMRAL is not a quotebot setting; did you mean QUOTEBOT_EPHEMERAL? (ignored)",)


def test_an_unknown_quotebot_variable_without_a_near_name_is_reported_too() -> None:
    warnings = _load(QUOTEBOT_COLOUR_SCHEME="dark").warnings
    assert warnings == ("QUOTEBOT_COLOUR_SCHEME is not a quotebot setting (ignored)",)


def test_platform_variables_are_known_and_near_misses_of_them_are_reported() -> None:
    s = _load(DISCORD_TOKN="abc", SLACK_SIGNIN_SECRET="x", DISCORD_PREFIX="?", SLACK_API_URL="http://127.0.0.1:1/")
    assert s.warnings == (
        "DISCORD_TOKN is not a quotebot setting; did you mean DISCORD_TOKEN? (ignored)",
        "SLACK_SIGNIN_SECRET is not a quotebot setting; did you mean SLACK_SIGNING_SECRET? (ignored)",
    )


def test_other_tools_variables_and_the_libraries_own_are_not_reported() -> None:
    s = _load(SLACK_SCOPES="commands,chat:write", SLACK_REDIRECT_URI="https://example.org/r", DISCORD_WEBHOOK_URL="x",
              PATH="/usr/bin", QUOTEBOT_TEST_POSTGRES_URL="postgresql://h/db", QUOTEBOT_DOTENV="")
    assert s.warnings == ()


def test_every_documented_setting_in_env_example_is_known() -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    names = {line.split("=", 1)[0] for line in example.read_text().splitlines() if line and not line.startswith("#")}
    assert names, ".env.example lists no settings"
    s = load_settings(environ={"QUOTEBOT_DOTENV": "", **dict.fromkeys(names, "")}, dotenv_path="")
    assert s.warnings == ()


@pytest.mark.parametrize("value", ["0", "-1", "2.51", "3", "nan", "inf"])
def test_defer_after_outside_discords_window_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as e:
        _load(QUOTEBOT_DEFER_AFTER=value)
    message = str(e.value)
    assert message.startswith("QUOTEBOT_DEFER_AFTER: ")
    assert "at most 2.5" in message and "\n" not in message


@pytest.mark.parametrize("value", ["0.05", "1", "2.5"])
def test_defer_after_inside_the_window_is_taken(value: str) -> None:
    assert _load(QUOTEBOT_DEFER_AFTER=value).defer_after == float(value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql+asyncpg://bot:hunter2@db.internal:54x2/quotebot", "port is not a number"),
        ("postgresql+asyncpg://bot:hunter2@db.internal:99999/quotebot", "port 99999 is not between 1 and 65535"),
        ("postgresql://bot:hunter2@db.internal:5432/", "no database name"),
        ("mysql://bot:hunter2@db.internal/quotebot", "not a mysql:// one"),
        ("postgresql+psycopg2://bot:hunter2@db.internal/quotebot", "not a postgresql+psycopg2:// one"),
        ("bot:hunter2@db.internal/quotebot", "not a database URL"),
        ("::hunter2::", "not a database URL"),
    ],
)
def test_a_malformed_database_url_is_one_line_naming_it_without_the_password(url: str, reason: str) -> None:
    with pytest.raises(SettingsError) as e:
        _load(DATABASE_URL=url)
    message = str(e.value)
    assert message.startswith("DATABASE_URL: ")
    assert reason in message
    assert "hunter2" not in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    ["sqlite+aiosqlite:///tmp/q.sqlite3", "sqlite:///tmp/q.sqlite3", "postgres://u:p@h/db",
     "postgresql://u:p@h:5432/db", "postgresql+asyncpg://u@127.0.0.1/db"],
)
def test_well_formed_database_urls_are_taken(url: str) -> None:
    assert _load(DATABASE_URL=url).database_url == url
