"""Persistent state: daily subscriptions, daily posts and a small key-value memo.

One schema serves SQLite (aiosqlite, WAL, foreign keys, busy timeout) and PostgreSQL (asyncpg); the URL chooses.
The schema is created and migrated at start-up (``open_store``). Every write is one short statement, and the daily
post state machine moves only by compare-and-set updates (``Store.transition``), so several bot instances can share
one PostgreSQL database safely.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# Arbitrary constant naming the PostgreSQL advisory lock that serialises start-up migrations.
_MIGRATION_LOCK = 0x71B07D41

# Post statuses. claimed: inserted, nothing sent; sending: the owner is inside the platform call; sent: delivered;
# failed: definitely not delivered (gave up); skipped: not posted on purpose (missed beyond the grace window);
# checking: the send's outcome is unknown and the platform is asked again (at ``lease_until``) whether it arrived;
# unknown: the platform could not say within the checking window, so it is never resent.
CLAIMED, SENDING, SENT, FAILED, SKIPPED, UNKNOWN = "claimed", "sending", "sent", "failed", "skipped", "unknown"
CHECKING = "checking"
_SHOWN = (SENDING, SENT, UNKNOWN, CHECKING)  # statuses whose quote was, or may have been, shown
# Rows per multi-row claim statement (9 bound values each: well under SQLite's and asyncpg's limits).
CLAIM_BATCH = 1000


class SchemaError(RuntimeError):
    """The database cannot be used by this version of the bot."""


class UtcDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite keeps naive UTC text, PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

schema_version = Table(
    "quotebot_schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

subscriptions = Table(
    "daily_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", String(16), nullable=False),
    Column("channel_id", String(64), nullable=False),
    Column("guild_id", String(64)),
    Column("local_time", String(5), nullable=False),
    Column("tz", String(64), nullable=False),
    Column("topic", String(200)),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("disabled_reason", String(300)),
    Column("created_by", String(64), nullable=False),
    Column("active_since", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("platform", "channel_id", name="uq_daily_subscriptions_channel"),
)

posts = Table(
    "daily_posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "subscription_id", Integer, ForeignKey("daily_subscriptions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("local_date", Date, nullable=False),
    Column("passage_key", String(200)),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("owner", String(64)),
    Column("lease_until", UtcDateTime),
    Column("last_error", String(500)),
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    # When the send's outcome first became unknown (status checking/unknown); bounds how long it is asked about.
    Column("unknown_since", UtcDateTime),
    UniqueConstraint("subscription_id", "local_date", name="uq_daily_posts_subscription_date"),
    Index("ix_daily_posts_status_lease", "status", "lease_until"),
    Index("ix_daily_posts_local_date", "local_date"),
)

memo = Table(
    "memo",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Upgrades for databases written by older versions: (version, step). A step alters existing tables; brand-new
# tables come from ``create_all``. A fresh database is created in the latest shape and stamped SCHEMA_VERSION.
Step = Callable[[Connection], None]


def _add_unknown_since(conn: Connection) -> None:
    kind = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    conn.execute(text(f"ALTER TABLE daily_posts ADD COLUMN unknown_since {kind}"))


MIGRATIONS: tuple[tuple[int, Step], ...] = ((2, _add_unknown_since),)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A channel's daily quote: post at ``local_time`` (HH:MM) in zone ``tz``, optionally about ``topic``."""

    id: int
    platform: str
    channel_id: str
    guild_id: str | None
    local_time: str
    tz: str
    topic: str | None
    enabled: bool
    disabled_reason: str | None
    created_by: str
    active_since: datetime
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Post:
    """One (subscription, local date) post: claimed before it is sent, so it is sent at most once."""

    id: int
    subscription_id: int
    local_date: date
    passage_key: str | None
    status: str
    attempts: int
    owner: str | None
    lease_until: datetime | None
    last_error: str | None
    claimed_at: datetime
    sent_at: datetime | None
    updated_at: datetime
    unknown_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """One row for ``Store.claim_many``: claim (subscription, local date) for ``owner`` until ``lease_until``."""

    subscription_id: int
    local_date: date
    owner: str | None = None
    lease_until: datetime | None = None
    status: str = CLAIMED
    last_error: str | None = None


_SUB_COLUMNS = [subscriptions.c[name] for name in Subscription.__slots__]
_POST_COLUMNS = [posts.c[name] for name in Post.__slots__]


def _sub(row: Any) -> Subscription:
    m = row._mapping
    return Subscription(*[m[c] for c in _SUB_COLUMNS])


def _post(row: Any) -> Post:
    m = row._mapping
    return Post(*[m[c] for c in _POST_COLUMNS])


def normalize_url(url: str) -> URL:
    """Accept plain ``postgresql://``/``postgres://``/``sqlite://`` URLs and pick the async drivers."""
    u = make_url(url)
    if u.drivername in ("postgres", "postgresql"):
        u = u.set(drivername="postgresql+asyncpg")
    elif u.drivername == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    if u.drivername not in ("postgresql+asyncpg", "sqlite+aiosqlite"):
        raise SchemaError("DATABASE_URL: use a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
    return u


class Store:
    """Async access to the bot's tables. Build it with ``open_store``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    def _insert(self, table: Table) -> Any:
        return (postgresql.insert if self.backend == "postgresql" else sqlite.insert)(table)

    # --- subscriptions ---------------------------------------------------------------------

    async def save_subscription(
        self,
        *,
        platform: str,
        channel_id: str,
        guild_id: str | None,
        local_time: str,
        tz: str,
        topic: str | None,
        created_by: str,
        now: datetime,
    ) -> Subscription:
        """Create or replace the channel's subscription and enable it; its post history is kept."""
        values = dict(
            platform=platform, channel_id=channel_id, guild_id=guild_id, local_time=local_time, tz=tz, topic=topic,
            enabled=True, disabled_reason=None, created_by=created_by, active_since=now, created_at=now,
            updated_at=now,
        )
        stmt = self._insert(subscriptions).values(**values)
        kept = ("platform", "channel_id", "created_by", "created_at")
        changed = {k: stmt.excluded[k] for k in values if k not in kept}
        stmt = stmt.on_conflict_do_update(index_elements=["platform", "channel_id"], set_=changed)
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
            row = (
                await conn.execute(
                    select(subscriptions).where(
                        subscriptions.c.platform == platform, subscriptions.c.channel_id == channel_id
                    )
                )
            ).one()
        return _sub(row)

    async def subscription(self, platform: str, channel_id: str) -> Subscription | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(subscriptions).where(
                        subscriptions.c.platform == platform, subscriptions.c.channel_id == channel_id
                    )
                )
            ).one_or_none()
        return _sub(row) if row else None

    async def subscription_by_id(self, sub_id: int) -> Subscription | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(subscriptions).where(subscriptions.c.id == sub_id))).one_or_none()
        return _sub(row) if row else None

    async def disable_subscription(self, sub_id: int, reason: str, now: datetime) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == sub_id, subscriptions.c.enabled.is_(True))
                .values(enabled=False, disabled_reason=reason[:300], updated_at=now)
            )
        return result.rowcount == 1

    async def pause_subscriptions(
        self, platform: str, reason: str, now: datetime, *, guild_ids: Collection[str] = (),
        channel_prefixes: Collection[str] = (),
    ) -> list[Subscription]:
        """Turn off the enabled subscriptions of ``platform`` in any of ``guild_ids`` (a Discord guild, a Slack
        team or enterprise) or whose channel id starts with one of ``channel_prefixes``; returns those turned off."""
        conditions = [subscriptions.c.guild_id.in_(list(guild_ids))] if guild_ids else []
        conditions += [subscriptions.c.channel_id.startswith(p, autoescape=True) for p in channel_prefixes]
        if not conditions:
            return []
        # One UPDATE … RETURNING: a write from the first statement (SQLite cannot upgrade a read under load).
        stmt = (
            update(subscriptions)
            .where(subscriptions.c.platform == platform, subscriptions.c.enabled.is_(True), or_(*conditions))
            .values(enabled=False, disabled_reason=reason[:300], updated_at=now)
            .returning(*subscriptions.c)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_sub(r) for r in rows]

    async def enabled_subscriptions(self, platforms: Collection[str]) -> list[Subscription]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(subscriptions)
                .where(subscriptions.c.enabled.is_(True), subscriptions.c.platform.in_(list(platforms)))
                .order_by(subscriptions.c.id)
            )
            return [_sub(r) for r in rows]

    # --- posts -----------------------------------------------------------------------------

    async def claim(
        self,
        sub_id: int,
        local_date: date,
        *,
        now: datetime,
        status: str = CLAIMED,
        owner: str | None = None,
        lease_until: datetime | None = None,
        last_error: str | None = None,
    ) -> Post | None:
        """Insert the (subscription, date) row; the caller owns it only if this returns it (None: it exists)."""
        stmt = (
            self._insert(posts)
            .values(
                subscription_id=sub_id, local_date=local_date, status=status, attempts=0, owner=owner,
                lease_until=lease_until, last_error=last_error, claimed_at=now, updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["subscription_id", "local_date"])
            .returning(*posts.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return _post(row) if row else None

    async def claim_many(self, claims: Sequence[Claim], *, now: datetime) -> list[Post]:
        """Insert many (subscription, date) rows, ``CLAIM_BATCH`` per statement
        (``INSERT … ON CONFLICT DO NOTHING RETURNING``); returns the rows this call inserted, i.e. owns."""
        won: list[Post] = []
        # One cached statement run with many parameter sets: SQLAlchemy's "insertmanyvalues" sends each page as
        # a single multi-row INSERT … RETURNING (page size CLAIM_BATCH), without compiling a statement per page.
        stmt = (
            self._insert(posts)
            .on_conflict_do_nothing(index_elements=["subscription_id", "local_date"])
            .returning(posts.c.id, posts.c.subscription_id, posts.c.local_date)
            .execution_options(insertmanyvalues_page_size=CLAIM_BATCH)
        )
        for start in range(0, len(claims), CLAIM_BATCH):
            batch = {(c.subscription_id, c.local_date): c for c in claims[start : start + CLAIM_BATCH]}
            rows = [
                dict(subscription_id=c.subscription_id, local_date=c.local_date, status=c.status, attempts=0,
                     owner=c.owner, lease_until=c.lease_until, last_error=c.last_error[:500] if c.last_error else None,
                     claimed_at=now, updated_at=now)
                for c in batch.values()
            ]
            async with self.engine.begin() as conn:
                inserted = (await conn.execute(stmt, rows)).all()
            for post_id, sub_id, day in inserted:
                c = batch[(sub_id, day)]
                won.append(Post(post_id, sub_id, day, None, c.status, 0, c.owner, c.lease_until,
                                c.last_error[:500] if c.last_error else None, now, None, now))
        return won

    async def mark_sent(self, rows: Sequence[tuple[int, str, datetime]]) -> None:
        """Record many (post id, owner token, sent at) as sent, each only while still 'sending' under that
        token: one statement run for every row, in one transaction."""
        if not rows:
            return
        at = bindparam("b_at", type_=UtcDateTime)
        stmt = (
            update(posts)
            .where(posts.c.id == bindparam("b_id"), posts.c.owner == bindparam("b_owner"), posts.c.status == SENDING)
            .values(status=SENT, sent_at=at, updated_at=at, lease_until=None, last_error=None)
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt, [dict(b_id=i, b_owner=o, b_at=t) for i, o, t in rows])

    async def renew_leases(self, owners: Collection[str], until: datetime, *, now: datetime) -> int:
        """Heartbeat: extend the lease of every row still held under one of ``owners`` (unique claim tokens)."""
        owners = list(owners)
        renewed = 0
        for start in range(0, len(owners), CLAIM_BATCH):
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    update(posts)
                    .where(posts.c.owner.in_(owners[start : start + CLAIM_BATCH]),
                           posts.c.status.in_([CLAIMED, SENDING, CHECKING]))
                    .values(lease_until=until, updated_at=now)
                )
            renewed += result.rowcount
        return renewed

    async def post(self, sub_id: int, local_date: date) -> Post | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(posts).where(posts.c.subscription_id == sub_id, posts.c.local_date == local_date)
                )
            ).one_or_none()
        return _post(row) if row else None

    async def post_by_id(self, post_id: int) -> Post | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(posts).where(posts.c.id == post_id))).one_or_none()
        return _post(row) if row else None

    async def posts_of(self, sub_id: int) -> list[Post]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(posts).where(posts.c.subscription_id == sub_id).order_by(posts.c.local_date)
            )
            return [_post(r) for r in rows]

    async def existing_dates(self, since: date) -> set[tuple[int, date]]:
        """(subscription id, local date) of every post row dated ``since`` or later."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(posts.c.subscription_id, posts.c.local_date).where(posts.c.local_date >= since)
            )
            return {(r[0], r[1]) for r in rows}

    async def expired(
        self, now: datetime, platforms: Collection[str], statuses: Collection[str], *, enabled_only: bool = True
    ) -> list[tuple[Post, Subscription]]:
        """Rows in ``statuses`` whose lease ran out (nobody holds them), with their subscriptions."""
        where = [posts.c.status.in_(list(statuses)), posts.c.lease_until <= now,
                 subscriptions.c.platform.in_(list(platforms))]
        if enabled_only:
            where.append(subscriptions.c.enabled.is_(True))
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(posts, subscriptions)
                .join(subscriptions, subscriptions.c.id == posts.c.subscription_id)
                .where(*where)
                .order_by(posts.c.id)
            )
            return [(_post(r), _sub(r)) for r in rows]

    async def ready_claims(self, now: datetime, platforms: Collection[str]) -> list[tuple[Post, Subscription]]:
        """Claimed rows nobody holds (retry due, or the owner's lease ran out) of enabled subscriptions."""
        return await self.expired(now, platforms, [CLAIMED])

    async def stale_sending(self, now: datetime) -> list[Post]:
        """Rows left in 'sending' whose owner's lease ran out (the owner stopped during the send)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(posts).where(posts.c.status == SENDING, posts.c.lease_until <= now).order_by(posts.c.id)
            )
            return [_post(r) for r in rows]

    async def key_counts_many(self, sub_ids: Collection[int]) -> dict[int, dict[str, int]]:
        """``key_counts`` of many subscriptions in a few queries (every id is in the answer)."""
        ids = sorted(set(sub_ids))
        counts: dict[int, dict[str, int]] = {i: {} for i in ids}
        for start in range(0, len(ids), CLAIM_BATCH):
            async with self.engine.connect() as conn:
                rows = await conn.execute(
                    select(posts.c.subscription_id, posts.c.passage_key, func.count())
                    .where(
                        posts.c.subscription_id.in_(ids[start : start + CLAIM_BATCH]),
                        posts.c.passage_key.is_not(None),
                        posts.c.status.in_(_SHOWN),
                    )
                    .group_by(posts.c.subscription_id, posts.c.passage_key)
                )
                for sid, key, n in rows:
                    counts[sid][key] = int(n)
        return counts

    async def key_counts(self, sub_id: int) -> dict[str, int]:
        """How often each passage was (or may have been) shown in the subscription's channel."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(posts.c.passage_key, func.count())
                .where(
                    posts.c.subscription_id == sub_id,
                    posts.c.passage_key.is_not(None),
                    posts.c.status.in_(_SHOWN),
                )
                .group_by(posts.c.passage_key)
            )
            return {r[0]: int(r[1]) for r in rows}

    async def transition(
        self,
        post_id: int,
        *,
        now: datetime,
        from_status: Sequence[str],
        owner_is: str | None = None,
        lease_expired: bool = False,
        add_attempt: bool = False,
        **values: Any,
    ) -> bool:
        """Compare-and-set: update the post only if it is still in ``from_status`` (and held by ``owner_is``,
        and its lease ran out, when given). True when this call made the change."""
        stmt = update(posts).where(posts.c.id == post_id, posts.c.status.in_(list(from_status)))
        if owner_is is not None:
            stmt = stmt.where(posts.c.owner == owner_is)
        if lease_expired:
            stmt = stmt.where(posts.c.lease_until <= now)
        if "last_error" in values and values["last_error"] is not None:
            values["last_error"] = values["last_error"][:500]
        if add_attempt:
            values["attempts"] = posts.c.attempts + 1
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt.values(updated_at=now, **values))
        return result.rowcount == 1

    # --- memo ------------------------------------------------------------------------------

    async def memo_put(self, key: str, value: str, now: datetime) -> None:
        stmt = self._insert(memo).values(key=key, value=value, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def memo_get(self, key: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(memo.c.value).where(memo.c.key == key))).scalar_one_or_none()

    async def memo_prune(self, before: datetime) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(memo).where(memo.c.updated_at < before))
        return result.rowcount


class SqlMemo:
    """``bot.memo.Memo`` over the store, so button state survives restarts; entries unused for ``max_age`` go."""

    def __init__(
        self,
        store: Store,
        *,
        max_age: timedelta = timedelta(days=30),
        prune_every: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.max_age = max_age
        self.prune_every = prune_every
        self.clock = clock
        self._puts = 0

    async def put(self, key: str, value: str) -> None:
        now = self.clock()
        await self.store.memo_put(key, value, now)
        self._puts += 1
        if self._puts % self.prune_every == 0:
            await self.store.memo_prune(now - self.max_age)

    async def get(self, key: str) -> str | None:
        return await self.store.memo_get(key)


# --- opening and migrating -------------------------------------------------------------------


def _wal(cur: Any, patience: float = 10.0) -> None:
    """Switch the database to WAL. Switching needs a moment alone with the file, and SQLite answers
    "database is locked" at once, without its busy timeout, while another connection holds it
    (instances starting together), so it is retried for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cur.execute("PRAGMA journal_mode")
            if str(cur.fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_setup(engine: AsyncEngine, in_memory: bool) -> None:
    """WAL, foreign keys and a busy timeout on every connection; transactions begun by SQLAlchemy, not the driver
    (so DDL is transactional too), and ``BEGIN IMMEDIATE`` for connections that ask for it (start-up)."""

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        if not in_memory:
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate") else "BEGIN")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)


async def migrate(
    engine: AsyncEngine, steps: Sequence[tuple[int, Step]] = MIGRATIONS, latest: int = SCHEMA_VERSION
) -> int:
    """Create missing tables and run the upgrade steps the database has not had yet; returns its version."""
    # Instances starting together take turns (an advisory lock on PostgreSQL, the write lock on SQLite), so
    # create_all and the steps never race.
    async with engine.connect() as conn:
        conn = await conn.execution_options(sqlite_immediate=True)
        async with conn.begin():
            return await _migrate_locked(conn, engine.dialect.name, steps, latest)


async def _migrate_locked(conn: Any, dialect: str, steps: Sequence[tuple[int, Step]], latest: int) -> int:
    if dialect == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    await conn.run_sync(metadata.create_all)
    version = (await conn.execute(select(schema_version.c.version).where(schema_version.c.id == 1))).scalar()
    if version is None:
        await conn.execute(schema_version.insert().values(id=1, version=latest))
        return latest
    if version > latest:
        raise SchemaError(
            f"the database schema is version {version}, newer than this bot understands ({latest}); "
            "upgrade the bot or point DATABASE_URL at another database"
        )
    for target, step in sorted(steps, key=lambda s: s[0]):
        if version < target <= latest:
            log.info("migrating the database schema to version %d", target)
            await conn.run_sync(step)
            version = target
    await conn.execute(update(schema_version).where(schema_version.c.id == 1).values(version=version))
    return version


async def open_store(url: str, **engine_options: Any) -> Store:
    """Connect to ``url`` (SQLite or PostgreSQL), create or migrate the schema, and return the store."""
    u = normalize_url(url)
    options: dict[str, Any] = {}
    in_memory = False
    if u.drivername.startswith("sqlite"):
        in_memory = u.database in (None, "", ":memory:")
        if not in_memory:
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    else:
        options["pool_pre_ping"] = True
    options.update(engine_options)
    engine = create_async_engine(u, **options)
    if u.drivername.startswith("sqlite"):
        _sqlite_setup(engine, in_memory)
    try:
        version = await migrate(engine)
    except BaseException:
        await engine.dispose()
        raise
    log.info("store ready: %s schema v%d", u.render_as_string(hide_password=True), version)
    return Store(engine)
