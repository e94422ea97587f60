"""The store on real SQLite and PostgreSQL: schema at start-up, migrations, subscriptions, claims, memo."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, inspect, text

from bot.store import (
    CHECKING,
    CLAIM_BATCH,
    CLAIMED,
    SCHEMA_VERSION,
    SENDING,
    SENT,
    Claim,
    SchemaError,
    SqlMemo,
    Store,
    migrate,
    normalize_url,
    open_store,
)
from tests.integration.daily_support import BACKENDS, add_subscriptions, postgres_database, sqlite_url, utc

NOW = utc("2024-06-01 08:00")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A brand-new database, so start-up is seen from scratch."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with postgres_database(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture
async def store(db_url: str):
    s = await open_store(db_url)
    yield s
    await s.close()


async def _subscribe(store: Store, channel: str = "c1", **changes) -> int:
    values = dict(platform="discord", channel_id=channel, guild_id="g1", local_time="09:00", tz="Europe/Berlin",
                  topic=None, created_by="u1", now=NOW)
    values.update(changes)
    return (await store.save_subscription(**values)).id


async def test_start_up_creates_the_schema_and_stamps_its_version(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        async with store.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = (await conn.execute(text("SELECT version FROM quotebot_schema_version"))).scalar_one()
        assert {"daily_subscriptions", "daily_posts", "memo", "quotebot_schema_version"} <= tables
        assert version == SCHEMA_VERSION == 2
    finally:
        await store.close()
    # A second start-up against the same database finds everything in place.
    again = await open_store(db_url)
    assert await again.subscription("discord", "nothing") is None
    await again.close()


async def test_sqlite_runs_with_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'deep' / 'er' / 'bot.sqlite3'}")  # plain URL, missing folders
    try:
        async with store.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
    finally:
        await store.close()


async def test_concurrent_start_ups_against_one_database_all_succeed(db_url: str) -> None:
    stores = await asyncio.gather(*(open_store(db_url) for _ in range(8)))
    try:
        ids = {await _subscribe(s) for s in stores}
        assert len(ids) == 1
    finally:
        for s in stores:
            await s.close()


async def test_a_later_schema_step_runs_once_and_a_newer_database_is_refused(store: Store) -> None:
    ran = []

    def add_note_column(conn) -> None:
        ran.append(2)
        conn.execute(text("ALTER TABLE daily_subscriptions ADD COLUMN note VARCHAR(20)"))

    assert await migrate(store.engine, steps=[(3, add_note_column)], latest=3) == 3
    assert await migrate(store.engine, steps=[(3, add_note_column)], latest=3) == 3
    assert ran == [2]
    async with store.engine.connect() as conn:
        columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("daily_subscriptions")})
    assert "note" in columns
    # This bot only knows version 2; the database says 3.
    with pytest.raises(SchemaError, match="newer than this bot understands"):
        await migrate(store.engine)


async def test_subscribing_again_replaces_settings_but_keeps_the_channel_history(store: Store) -> None:
    sid = await _subscribe(store)
    await store.claim(sid, date(2024, 6, 1), now=NOW)
    assert await store.disable_subscription(sid, "turned off by u2", NOW)
    assert not await store.disable_subscription(sid, "again", NOW)
    later = NOW + timedelta(days=1)
    again = await store.save_subscription(platform="discord", channel_id="c1", guild_id="g1", local_time="07:15",
                                          tz="America/New_York", topic="physics", created_by="u3", now=later)
    assert again.id == sid
    assert (again.local_time, again.tz, again.topic, again.enabled) == ("07:15", "America/New_York", "physics", True)
    assert again.disabled_reason is None and again.active_since == later and again.created_by == "u1"
    assert [p.local_date for p in await store.posts_of(sid)] == [date(2024, 6, 1)]
    assert [s.id for s in await store.enabled_subscriptions(["discord"])] == [sid]
    assert await store.enabled_subscriptions(["slack"]) == []


async def test_a_day_can_be_claimed_only_once_even_by_racing_claimers(store: Store) -> None:
    sid = await _subscribe(store)
    results = await asyncio.gather(
        *(store.claim(sid, date(2024, 6, 1), now=NOW, owner=f"o{i}", lease_until=NOW) for i in range(8))
    )
    winners = [p for p in results if p is not None]
    assert len(winners) == 1 and winners[0].status == CLAIMED
    assert await store.existing_dates(date(2024, 5, 31)) == {(sid, date(2024, 6, 1))}
    # The next day is a separate claim.
    assert await store.claim(sid, date(2024, 6, 2), now=NOW) is not None


async def test_transitions_only_apply_to_the_state_and_owner_they_expect(store: Store) -> None:
    sid = await _subscribe(store)
    post = await store.claim(sid, date(2024, 6, 1), now=NOW, owner="a#1", lease_until=NOW + timedelta(minutes=5))
    assert not await store.transition(post.id, now=NOW, from_status=[CLAIMED], lease_expired=True, owner="b#1")
    assert not await store.transition(post.id, now=NOW, from_status=[CLAIMED], owner_is="b#1", status=SENDING)
    assert await store.transition(post.id, now=NOW, from_status=[CLAIMED], owner_is="a#1", status=SENDING,
                                  passage_key="k@1", add_attempt=True)
    assert not await store.transition(post.id, now=NOW, from_status=[CLAIMED], owner_is="a#1", status=SENT)
    assert await store.transition(post.id, now=NOW, from_status=[SENDING], owner_is="a#1", status=SENT, sent_at=NOW)
    done = await store.post(sid, date(2024, 6, 1))
    assert (done.status, done.attempts, done.passage_key, done.sent_at) == (SENT, 1, "k@1", NOW)
    assert await store.key_counts(sid) == {"k@1": 1}


async def test_deleting_a_subscription_removes_its_posts(store: Store) -> None:
    sid = await _subscribe(store)
    await store.claim(sid, date(2024, 6, 1), now=NOW)
    async with store.engine.begin() as conn:
        await conn.execute(text("DELETE FROM daily_subscriptions WHERE id = :i"), {"i": sid})
    assert await store.posts_of(sid) == []


async def test_button_memo_survives_a_restart_and_forgets_old_entries(db_url: str) -> None:
    store = await open_store(db_url)
    memo = SqlMemo(store, prune_every=3, max_age=timedelta(days=30), clock=lambda: NOW)
    await memo.put("q1", "what did he say about the fermi paradox")
    await memo.put("q1", "what did he say about mars")
    await store.close()

    store = await open_store(db_url)
    clock = [NOW + timedelta(days=40)]
    memo = SqlMemo(store, prune_every=2, max_age=timedelta(days=30), clock=lambda: clock[0])
    assert await memo.get("q1") == "what did he say about mars"
    assert await memo.get("missing") is None
    await memo.put("q2", "a")
    await memo.put("q3", "b")  # second put prunes entries unused for 30 days
    assert await memo.get("q1") is None
    assert await memo.get("q3") == "b"
    await store.close()


def test_plain_database_urls_pick_the_async_drivers_and_others_are_refused() -> None:
    assert normalize_url("postgres://u:p@h/db").drivername == "postgresql+asyncpg"
    assert normalize_url("postgresql://h/db").drivername == "postgresql+asyncpg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    with pytest.raises(SchemaError, match="DATABASE_URL"):
        normalize_url("mysql://h/db")


async def test_a_version_1_database_gains_the_unknown_since_column_and_keeps_its_rows(db_url: str) -> None:
    store = await open_store(db_url)
    sid = await _subscribe(store)
    await store.claim(sid, date(2024, 6, 1), now=NOW)
    async with store.engine.begin() as conn:  # back to the shape version 1 wrote
        await conn.execute(text("ALTER TABLE daily_posts DROP COLUMN unknown_since"))
        await conn.execute(text("UPDATE quotebot_schema_version SET version = 1"))
    await store.close()
    store = await open_store(db_url)
    try:
        [post] = await store.posts_of(sid)
        assert post.local_date == date(2024, 6, 1) and post.unknown_since is None
        assert await store.transition(post.id, now=NOW, from_status=[CLAIMED], status=CHECKING, unknown_since=NOW)
        assert (await store.post_by_id(post.id)).unknown_since == NOW
    finally:
        await store.close()


async def test_many_claims_go_in_batched_statements_and_only_new_rows_are_won(store: Store) -> None:
    ids = await add_subscriptions(store, [f"c{i}" for i in range(CLAIM_BATCH + 200)])
    await store.claim(ids[5], date(2024, 6, 1), now=NOW, owner="someone-else")
    inserts = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO DAILY_POSTS"):
            inserts.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        lease = NOW + timedelta(seconds=30)
        won = await store.claim_many([Claim(i, date(2024, 6, 1), owner=f"me#{i}", lease_until=lease) for i in ids],
                                     now=NOW)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert len(inserts) == 2  # one multi-row statement per CLAIM_BATCH rows
    assert sorted(p.subscription_id for p in won) == sorted(set(ids) - {ids[5]})
    assert all(p.owner == f"me#{p.subscription_id}" and p.lease_until == lease and p.status == CLAIMED for p in won)
    # A second claimer of the same days wins nothing.
    assert await store.claim_many([Claim(i, date(2024, 6, 1), owner="late") for i in ids], now=NOW) == []


async def test_racing_batch_claimers_split_the_rows_without_overlap(db_url: str) -> None:
    stores = [await open_store(db_url) for _ in range(3)]
    try:
        ids = await add_subscriptions(stores[0], [f"c{i}" for i in range(300)])
        claims = [[Claim(i, date(2024, 6, 1), owner=f"s{n}") for i in ids] for n in range(3)]
        results = await asyncio.gather(*(s.claim_many(c, now=NOW) for s, c in zip(stores, claims, strict=True)))
        won = [p.subscription_id for r in results for p in r]
        assert sorted(won) == sorted(ids)
    finally:
        for s in stores:
            await s.close()


async def test_a_heartbeat_renews_only_the_leases_still_held(store: Store) -> None:
    a, b, c = [await _subscribe(store, channel=ch) for ch in ("a", "b", "c")]
    lease = NOW + timedelta(seconds=30)
    for sid, owner in ((a, "me#1"), (b, "me#2"), (c, "other#1")):
        await store.claim(sid, date(2024, 6, 1), now=NOW, owner=owner, lease_until=lease)
    done = await store.post(b, date(2024, 6, 1))
    await store.transition(done.id, now=NOW, from_status=[CLAIMED], owner_is="me#2", status=SENT)
    later = NOW + timedelta(seconds=60)
    assert await store.renew_leases({"me#1", "me#2"}, later, now=NOW) == 1
    assert [(await store.post(s, date(2024, 6, 1))).lease_until for s in (a, b, c)] == [later, lease, lease]


async def test_pausing_a_team_or_guild_turns_off_only_its_subscriptions(store: Store) -> None:
    await _subscribe(store, channel="T1:C1", platform="slack", guild_id="T1")
    await _subscribe(store, channel="T1:C2", platform="slack", guild_id="T1")
    await _subscribe(store, channel="T2:C1", platform="slack", guild_id="T2")
    await _subscribe(store, channel="E1:C9", platform="slack", guild_id="T9")
    await _subscribe(store, channel="d1", platform="discord", guild_id="T1")
    paused = await store.pause_subscriptions("slack", "paused: the app was uninstalled", NOW, guild_ids=["T1"],
                                             channel_prefixes=["E1:"])
    assert sorted(s.channel_id for s in paused) == ["E1:C9", "T1:C1", "T1:C2"]
    left = {(s.platform, s.channel_id) for s in await store.enabled_subscriptions(["slack", "discord"])}
    assert left == {("slack", "T2:C1"), ("discord", "d1")}
    off = await store.subscription("slack", "T1:C1")
    assert off.disabled_reason == "paused: the app was uninstalled"
    assert await store.pause_subscriptions("slack", "again", NOW, guild_ids=["T1"]) == []


async def test_shown_counts_for_many_subscriptions_at_once(store: Store) -> None:
    a, b = await _subscribe(store, channel="a"), await _subscribe(store, channel="b")
    for sid, day, key, status in ((a, 1, "k1", SENT), (a, 2, "k1", SENT), (a, 3, "k2", CHECKING),
                                  (b, 1, "k3", SENDING), (b, 2, "k4", CLAIMED)):
        post = await store.claim(sid, date(2024, 6, day), now=NOW)
        await store.transition(post.id, now=NOW, from_status=[CLAIMED], status=status, passage_key=key)
    counts = await store.key_counts_many([a, b, 999])
    assert counts == {a: {"k1": 2, "k2": 1}, b: {"k3": 1}, 999: {}}
    assert counts[a] == await store.key_counts(a)


async def test_delivered_posts_are_recorded_sent_in_a_batch_only_under_their_own_token(store: Store) -> None:
    ids = await add_subscriptions(store, ["a", "b", "c"])
    rows = []
    for sid, owner in zip(ids, ("me#1", "me#2", "other#1"), strict=True):
        post = await store.claim(sid, date(2024, 6, 1), now=NOW, owner=owner, lease_until=NOW)
        await store.transition(post.id, now=NOW, from_status=[CLAIMED], status=SENDING)
        rows.append(post.id)
    later = NOW + timedelta(seconds=5)
    # The third row's token is not ours (it was taken over): it is left alone.
    await store.mark_sent([(rows[0], "me#1", later), (rows[1], "me#2", later), (rows[2], "me#3", later)])
    done = [await store.post_by_id(i) for i in rows]
    assert [(p.status, p.sent_at, p.lease_until) for p in done] == [(SENT, later, None), (SENT, later, None),
                                                                  (SENDING, None, NOW)]
