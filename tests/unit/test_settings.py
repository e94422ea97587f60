"""Settings: typed, validated, errors name the variable, secrets never shown."""

import pytest

from config.settings import BUNDLED_CORPUS, BUNDLED_MANIFEST, Secret, SettingsError, load_settings


def settings(**env):
    return load_settings(env, dotenv_path="")


def test_defaults_are_the_console_on_the_bundled_corpus():
    s = settings()
    assert s.corpus_dir == BUNDLED_CORPUS and s.manifest_path == BUNDLED_MANIFEST
    assert not s.platforms["discord"].enabled and not s.platforms["slack"].enabled
    assert s.database_url.startswith("sqlite+aiosqlite:///")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DISCORD_SHARD_COUNT": "two"}, "DISCORD_SHARD_COUNT: expected an integer, got 'two'"),
        ({"DISCORD_SHARD_COUNT": "0"}, "DISCORD_SHARD_COUNT: must be at least 1"),
        ({"DISCORD_SHARD_IDS": "0,1"}, "DISCORD_SHARD_IDS: needs DISCORD_SHARD_COUNT"),
        ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "0,2"}, "DISCORD_SHARD_IDS: shard 2 is not below"),
        ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "a,b"}, "DISCORD_SHARD_IDS: expected comma-separated"),
        ({"PORT": "99999"}, "PORT: must be at most 65535"),
        ({"DISCORD_API_BASE": "discord.com/api"}, "DISCORD_API_BASE: expected a http/https:// URL"),
        ({"DISCORD_GATEWAY_URL": "http://x"}, "DISCORD_GATEWAY_URL: expected a ws/wss:// URL"),
        ({"QUOTEBOT_TIMEZONE": "Mars/Olympus"}, "QUOTEBOT_TIMEZONE: unknown time zone"),
        ({"QUOTEBOT_EPHEMERAL": "maybe"}, "QUOTEBOT_EPHEMERAL: expected true or false"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: expected one of"),
        ({"QUOTEBOT_CORPUS": "/no/such/folder"}, "QUOTEBOT_CORPUS: '/no/such/folder' is not a folder"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL: must be a sqlite"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET: required"),
        ({"SLACK_APP_TOKEN": "xoxb-wrong", "SLACK_SIGNING_SECRET": "s"}, "SLACK_APP_TOKEN: must be an app-level"),
        ({"SLACK_COMMANDS": "ask=ask"}, "SLACK_COMMANDS: expected entries like"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError) as e:
        settings(**env)
    assert str(e.value).startswith(message)


def test_secrets_never_show_their_value():
    s = settings(DISCORD_TOKEN="MTIz.super-secret", SLACK_SIGNING_SECRET="shh-value", SLACK_BOT_TOKEN="xoxb-abc")
    assert s.platforms["discord"].token.get() == "MTIz.super-secret"
    shown = repr(s) + str(s) + f"{s.platforms['discord'].token}"
    assert "super-secret" not in shown and "shh-value" not in shown and "xoxb-abc" not in shown
    with pytest.raises(SettingsError) as e:
        settings(DISCORD_TOKEN="has a space-secret")
    assert "space-secret" not in str(e.value) and "DISCORD_TOKEN" in str(e.value)
    assert Secret("a") == Secret("a") and not Secret("")


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=4000\nLOG_LEVEL=debug\nDISCORD_PREFIX=?\n", encoding="utf-8")
    s = load_settings({"PORT": "5000"}, dotenv_path=env_file)
    assert (s.port, s.log_level, s.platforms["discord"].prefix) == (5000, "DEBUG", "?")


def test_platforms_enabled_by_their_settings():
    s = settings(DISCORD_TOKEN="t", SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", SLACK_COMMANDS="ask=/q")
    assert s.platforms["discord"].enabled and s.platforms["slack"].enabled
    assert s.platforms["slack"].commands["ask"] == "/q" and s.platforms["slack"].commands["quote"] == "/quote"


def test_every_registered_platform_reads_its_own_settings_and_nothing_else_names_it():
    from bot.platforms import names, spec

    s = settings(SLACK_APP_TOKEN="xapp-1", SLACK_BOT_TOKEN="xoxb-1")
    assert set(names()) <= set(s.platforms) and {"console", "discord", "slack"} <= set(names())
    assert s.platforms["slack"].enabled and s.platforms["slack"].socket_mode
    assert not s.platforms["discord"].enabled and not s.platforms["console"].enabled
    assert spec("console").fallback and not spec("discord").fallback
    # Only the platform's own settings know its variables: shared settings read none of them.
    shared = load_settings({"DISCORD_TOKEN": "t"}, dotenv_path="", sections=())
    assert shared.platforms == {}
