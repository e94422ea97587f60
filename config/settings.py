"""Typed settings from the environment and an optional ``.env`` file.

Loaded once at the entry point (``load_settings``) and passed down. A missing or
malformed value raises ``SettingsError`` whose message names the variable and never
contains a secret's value. This module holds the shared settings; each platform's own
settings live in its package (``bot/platforms/<name>/settings.py``), are read through
``EnvReader`` by the platform registry, and end up in ``Settings.platforms[name]``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CORPUS = PROJECT_ROOT / "data" / "transcripts"
BUNDLED_MANIFEST = Path(__file__).resolve().parent / "corpus.toml"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Secret:
    """A secret value that never shows itself in repr, str or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment."""

    corpus_dir: Path = BUNDLED_CORPUS
    index_dir: Path | None = None
    log_level: str = "INFO"
    # core
    rate_per_minute: float = 20.0
    rate_burst: int = 5
    ephemeral: bool = True
    search_mode: str = "auto"
    embed_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    model_cache: Path | None = None  # where ONNX graphs built from the model are kept
    defer_after: float = 1.0
    # http + state
    # where people reach the web page (``https://quotes.example.com``): chat cards link to quote permalinks there
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 3000
    database_url: str = ""
    timezone: str = "UTC"
    daily_grace_minutes: int = 180
    daily_poll_seconds: float = 30.0
    daily_lease_seconds: float = 30.0
    stop_grace_seconds: float = 20.0
    # podcast feeds (retrieval.feeds)
    feed_refresh_minutes: float = 60.0
    feed_timeout_seconds: float = 30.0
    feed_max_mb: float = 16.0
    # each platform's own typed settings, by platform name (see bot.platforms)
    platforms: Mapping[str, Any] = field(default_factory=dict)
    # start-up warnings about the environment (e.g. a mistyped variable name), for the entry point to show
    warnings: tuple[str, ...] = ()

    @property
    def manifest_path(self) -> Path:
        """The corpus manifest: ``corpus.toml`` inside the corpus, else the bundled one."""
        inside = self.corpus_dir / "corpus.toml"
        if inside.exists() or self.corpus_dir.resolve() != BUNDLED_CORPUS.resolve():
            return inside
        return BUNDLED_MANIFEST


def default_database_url(root: Path = PROJECT_ROOT) -> str:
    return f"sqlite+aiosqlite:///{root / '.cache' / 'quotebot.sqlite3'}"


SectionReader = Callable[["EnvReader"], Any]


def load_settings(
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | Path | None = None,
    *,
    sections: Sequence[tuple[str, SectionReader]] | None = None,
    **overrides: object,
) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over a ``.env`` file.

    The file is ``dotenv_path``, else ``QUOTEBOT_DOTENV`` (empty: none), else ``./.env``.
    ``sections`` are ``(name, reader)`` pairs filling ``Settings.platforms`` (default: every
    registered platform's settings reader). ``overrides`` (e.g. ``corpus_dir`` from the
    command line) win over both.
    """
    source = os.environ if environ is None else environ
    if dotenv_path is None:
        dotenv_path = source.get("QUOTEBOT_DOTENV", ".env")
    env: dict[str, str] = {}
    if dotenv_path and Path(dotenv_path).is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(source)
    r = EnvReader(env)
    values = dict(
        corpus_dir=r.path("QUOTEBOT_CORPUS", BUNDLED_CORPUS, must_exist=True),
        index_dir=r.path("QUOTEBOT_INDEX_DIR", None),
        log_level=r.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True),
        rate_per_minute=r.number("QUOTEBOT_RATE_PER_MINUTE", 20.0, minimum=0),
        rate_burst=int(r.number("QUOTEBOT_RATE_BURST", 5, minimum=1, integer=True)),
        ephemeral=r.flag("QUOTEBOT_EPHEMERAL", True),
        search_mode=r.choice("QUOTEBOT_SEARCH_MODE", "auto", ("auto", "lexical", "hybrid")),
        embed_model=r.text("QUOTEBOT_EMBED_MODEL", "sentence-transformers/all-MiniLM-L6-v2"),
        model_cache=r.path("QUOTEBOT_MODEL_CACHE", None)
        or Path(r.raw("XDG_CACHE_HOME") or Path.home() / ".cache") / "quotebot" / "models",
        defer_after=_defer_after(r),
        public_url=(r.url("QUOTEBOT_PUBLIC_URL", None, ("http", "https")) or "").rstrip("/") or None,
        host=r.text("HOST", "127.0.0.1"),
        port=int(r.number("PORT", 3000, minimum=0, maximum=65535, integer=True)),
        database_url=r.text("DATABASE_URL", "") or default_database_url(),
        timezone=r.zone("QUOTEBOT_TIMEZONE", "UTC"),
        daily_grace_minutes=int(r.number("QUOTEBOT_DAILY_GRACE_MINUTES", 180, minimum=0, integer=True)),
        daily_poll_seconds=r.number("QUOTEBOT_DAILY_POLL_SECONDS", 30.0, minimum=0.05),
        daily_lease_seconds=r.number("QUOTEBOT_DAILY_LEASE_SECONDS", 30.0, minimum=1, maximum=3600),
        stop_grace_seconds=r.number("QUOTEBOT_STOP_GRACE_SECONDS", 20.0, minimum=0, maximum=300),
        feed_refresh_minutes=r.number("QUOTEBOT_FEED_REFRESH_MINUTES", 60.0, minimum=0.01, maximum=7 * 24 * 60),
        feed_timeout_seconds=r.number("QUOTEBOT_FEED_TIMEOUT_SECONDS", 30.0, minimum=0.1, maximum=600),
        feed_max_mb=r.number("QUOTEBOT_FEED_MAX_MB", 16.0, minimum=0.001, maximum=32),
    )
    if sections is None:
        from bot.platforms import settings_sections  # the registry; imported late so config stays importable alone

        sections = settings_sections()
    values["platforms"] = {name: read(r) for name, read in sections}
    values["warnings"] = tuple(unknown_variables(env, r.read))
    values.update(overrides)
    s = Settings(**values)
    _check_combinations(s)
    return s


def _check_combinations(s: Settings) -> None:
    check_database_url(s.database_url)


DATABASE_URL_FORM = "sqlite+aiosqlite:///path/to/file.sqlite3 or postgresql+asyncpg://user:password@host:5432/db"
DATABASE_DRIVERS = {"sqlite": ("", "aiosqlite"), "postgresql": ("", "asyncpg"), "postgres": ("",)}


def check_database_url(url: str) -> None:
    """Raise ``SettingsError`` (one line naming DATABASE_URL, never the password) unless ``url`` is usable."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ValueError:  # SQLAlchemy's int() of a non-numeric port
        raise SettingsError("DATABASE_URL: the port is not a number (value not shown)") from None
    except ArgumentError:
        raise SettingsError(f"DATABASE_URL: not a database URL (value not shown); expected {DATABASE_URL_FORM}") \
            from None
    backend, _, driver = parsed.drivername.partition("+")
    if driver not in DATABASE_DRIVERS.get(backend, ()):
        raise SettingsError(f"DATABASE_URL: must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL, not a "
                            f"{parsed.drivername}:// one")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise SettingsError(f"DATABASE_URL: port {parsed.port} is not between 1 and 65535")
    if backend != "sqlite" and not parsed.database:
        raise SettingsError(f"DATABASE_URL: no database name after the host; expected {DATABASE_URL_FORM}")


MAX_DEFER_AFTER = 2.5  # Discord drops an interaction that is neither answered nor deferred within 3 s


def _defer_after(r: EnvReader) -> float:
    value = r.number("QUOTEBOT_DEFER_AFTER", 1.0)
    if not 0 < value <= MAX_DEFER_AFTER:
        raise SettingsError(
            f"QUOTEBOT_DEFER_AFTER: must be more than 0 and at most {MAX_DEFER_AFTER} seconds (Discord allows 3 s "
            f"for the first response), got {r.raw('QUOTEBOT_DEFER_AFTER')}"
        )
    return value


# Read outside EnvReader (before it exists), or by the libraries themselves (slack_bolt's OAuth settings).
KNOWN_ELSEWHERE = frozenset({
    "QUOTEBOT_DOTENV", "SLACK_SCOPES", "SLACK_USER_SCOPES", "SLACK_REDIRECT_URI", "SLACK_REDIRECT_URI_PATH",
    "SLACK_INSTALL_PATH", "SLACK_VERIFICATION_TOKEN", "SLACK_API_TOKEN", "SLACK_STATE_S3_BUCKET_NAME",
    "SLACK_INSTALLATION_S3_BUCKET_NAME",
})
IGNORED_PREFIXES = ("QUOTEBOT_TEST_", "QUOTEBOT_E2E_")  # the test suite's own switches
OWN_PREFIX = "QUOTEBOT_"
SHARED_PREFIXES = ("DISCORD_", "SLACK_")  # other tools use these too: only near misses of a known name are reported


def unknown_variables(names: Iterable[str], known: Iterable[str]) -> list[str]:
    """Warnings for environment names that look like quotebot settings but are none.

    Every unknown ``QUOTEBOT_*`` name is reported, with the closest known name when there is one;
    ``DISCORD_*``/``SLACK_*`` names only when they are close to a known one (a likely typo).
    """
    known_set = set(known) | KNOWN_ELSEWHERE
    candidates = sorted(known_set)
    out = []
    for name in sorted(set(names) - known_set):
        if name.startswith(IGNORED_PREFIXES):
            continue
        own = name.startswith(OWN_PREFIX)
        if not own and not name.startswith(SHARED_PREFIXES):
            continue
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8 if own else 0.85)
        if close:
            out.append(f"{name} is not a quotebot setting; did you mean {close[0]}? (ignored)")
        elif own:
            out.append(f"{name} is not a quotebot setting (ignored)")
    return out


class EnvReader:
    """Typed reads of environment variables; every error names the variable, never a secret's value.

    Platform packages read their own settings with it (``bot.platform.PlatformSpec.read_settings``).
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.read: set[str] = set()  # every name asked for, so unknown (e.g. mistyped) variables can be reported

    def raw(self, name: str) -> str | None:
        self.read.add(name)
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def secret(self, name: str) -> Secret | None:
        value = self.raw(name)
        if value is not None and any(c.isspace() for c in value):
            raise SettingsError(f"{name}: contains white space (value not shown)")
        return Secret(value) if value else None

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        low = value.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}: expected true or false, got {value!r}")

    def number(
        self, name: str, default: float, *, minimum: float | None = None, maximum: float | None = None,
        integer: bool = False,
    ) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            n = int(value) if integer else float(value)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise SettingsError(f"{name}: expected {kind}, got {value!r}") from None
        if minimum is not None and n < minimum:
            raise SettingsError(f"{name}: must be at least {minimum}, got {value}")
        if maximum is not None and n > maximum:
            raise SettingsError(f"{name}: must be at most {maximum}, got {value}")
        return n

    def optional_int(self, name: str, *, minimum: int) -> int | None:
        if self.raw(name) is None:
            return None
        return int(self.number(name, 0, minimum=minimum, integer=True))

    def int_list(self, name: str) -> tuple[int, ...] | None:
        value = self.raw(name)
        if value is None:
            return None
        try:
            ids = tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        except ValueError:
            raise SettingsError(f"{name}: expected comma-separated integers like 0,1,2, got {value!r}") from None
        if not ids or min(ids) < 0:
            raise SettingsError(f"{name}: expected non-negative shard numbers, got {value!r}")
        return ids

    def choice(self, name: str, default: str, options: tuple[str, ...], upper: bool = False) -> str:
        value = self.raw(name)
        if value is None:
            return default
        value = value.upper() if upper else value.lower()
        if value not in options:
            raise SettingsError(f"{name}: expected one of {', '.join(options)}, got {value!r}")
        return value

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in schemes or not rest:
            raise SettingsError(f"{name}: expected a {'/'.join(schemes)}:// URL, got {value!r}")
        return value

    def path(self, name: str, default: Path | None, must_exist: bool = False) -> Path | None:
        value = self.raw(name)
        if value is None:
            return default
        p = Path(value).expanduser()
        if must_exist and not p.is_dir():
            raise SettingsError(f"{name}: {value!r} is not a folder")
        return p

    def zone(self, name: str, default: str) -> str:
        value = self.raw(name) or default
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{name}: unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from None
        return value

    def mapping(self, name: str, default: dict[str, str]) -> dict[str, str]:
        value = self.raw(name)
        if value is None:
            return dict(default)
        out = dict(default)
        for part in value.split(","):
            key, sep, cmd = part.strip().partition("=")
            if not sep or key not in default or not cmd.startswith("/"):
                raise SettingsError(f"{name}: expected entries like ask=/ask,quote=/quote, got {part.strip()!r}")
            out[key] = cmd
        return out
