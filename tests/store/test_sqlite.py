from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.models import Caller
from bot.store.sqlite import Migration, MigrationError, Store, load_migrations, split_statements

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


async def test_open_sets_wal_foreign_keys_and_latest_schema(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "a.db")
    try:
        assert await store.schema_version() == len(load_migrations())
        row = await store._one("PRAGMA journal_mode")
        assert row is not None and row[0] == "wal"
        row = await store._one("PRAGMA foreign_keys")
        assert row is not None and row[0] == 1
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            async with store.transaction() as db:
                await db.execute(
                    "INSERT INTO members (community_id, external_id, display_name, created_at) VALUES (999, 'x', 'x', 'now')"
                )
    finally:
        await store.close()


async def test_migrate_is_idempotent(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "a.db")
    try:
        assert await store.migrate() == []
        assert await store.migrate() == []
    finally:
        await store.close()


async def test_database_from_migration_1_moves_forward_without_losing_rows(tmp_path: Path) -> None:
    migrations = load_migrations()
    store = await Store.open(tmp_path / "old.db", migrate=False)
    try:
        assert await store.migrate(migrations[:1]) == ["0001_initial.sql"]
        assert await store.schema_version() == 1
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO communities (platform, external_id, name, created_at) VALUES ('discord', 'g1', 'G', 't')"
            )
            await db.execute(
                "INSERT INTO members (community_id, external_id, display_name, created_at) VALUES (1, 'u1', 'Ann', 't')"
            )
            await db.execute(
                "INSERT INTO daily_posts (community_id, date, track, question_id, claimed_at)"
                " VALUES (1, '2026-11-01', 'coding', 'q1', 't')"
            )
            await db.execute(
                "INSERT INTO points_ledger (community_id, member_id, points, reason, created_at)"
                " VALUES (1, 1, 10, 'solve', '2026-11-01T10:00:00.000000+00:00')"
            )
        before = await store.table_counts(["communities", "members", "daily_posts", "points_ledger"])
        applied = await store.migrate()
        assert applied == [m.name for m in migrations[1:]]
        assert await store.schema_version() == len(migrations)
        assert await store.table_counts(before) == before
        community = await store.get_community(1)
        assert community is not None and community.name == "G"
        assert await store.community_setting(1, "mock_cadence_days") == 7  # a column added by 0002
        assert await store.total_points(1) == 10
        # 0004 rebuilt the standings from the old ledger rows
        assert [(r.display_name, r.points) for r in await store.leaderboard(1)] == [("Ann", 10)]
        assert [r.points for r in await store.leaderboard(1, period="w:2026-10-26")] == [10]
    finally:
        await store.close()


async def test_failed_migration_rolls_back_everything(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "a.db", migrate=False)
    try:
        bad = [Migration(1, "0001_a.sql", "CREATE TABLE a (x INTEGER);"), Migration(2, "0002_b.sql", "CREATE TABLE (;")]
        with pytest.raises(sqlite3.OperationalError):
            await store.migrate(bad)
        assert await store.schema_version() == 0
        assert await store._one("SELECT name FROM sqlite_master WHERE name = 'a'") is None
    finally:
        await store.close()


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "a.db")
    await store._db.execute("PRAGMA user_version = 99")
    await store.close()
    with pytest.raises(MigrationError, match="schema version 99, newer than this code"):
        await Store.open(tmp_path / "a.db")


def test_migration_files_are_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"0003_c\.sql found where number 0002"):
        load_migrations(tmp_path)
    (tmp_path / "0003_c.sql").rename(tmp_path / "2_bad.sql")
    with pytest.raises(MigrationError, match="not named NNNN"):
        load_migrations(tmp_path)


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    sql = "CREATE TABLE t (x);\n-- note\nCREATE TRIGGER tr BEFORE DELETE ON t\nBEGIN SELECT 1; SELECT 2; END;\n"
    parts = split_statements(sql)
    assert len(parts) == 2 and parts[1].endswith("END;")


async def test_daily_slot_is_claimed_once(store: Store, admin: Caller) -> None:
    day = date(2026, 11, 23)
    first, won = await store.claim_daily(admin.community.id, day, "coding", "q-a", now=NOW)
    assert won
    second, won_again = await store.claim_daily(admin.community.id, day, "coding", "q-b", now=NOW)
    assert not won_again and second == first and second.question_id == "q-a"
    # a second process on the same file sees the same slot
    other = await store.reopen()
    try:
        third, won3 = await other.claim_daily(admin.community.id, day, "coding", "q-c", now=NOW)
        assert not won3 and third.question_id == "q-a"
    finally:
        await other.close()


async def test_points_ledger_is_append_only_and_deduplicated(store: Store, admin: Caller) -> None:
    cid, mid = admin.community.id, admin.member.id
    assert await store.add_points(community_id=cid, member_id=mid, points=5, reason="solve", now=NOW, dedupe_key="k1")
    assert not await store.add_points(community_id=cid, member_id=mid, points=5, reason="solve", now=NOW, dedupe_key="k1")
    assert await store.total_points(mid) == 5
    with pytest.raises(store.IntegrityError, match="append-only"):
        async with store.transaction() as db:
            await db.execute("UPDATE points_ledger SET points = 100")
    with pytest.raises(store.IntegrityError, match="append-only"):
        async with store.transaction() as db:
            await db.execute("DELETE FROM points_ledger")
    assert await store.total_points(mid) == 5


async def test_leaderboard_ranks_ties_periods_tracks_and_hidden_members(store: Store, admin: Caller) -> None:
    cid = admin.community.id
    ids = {n: (await store.ensure_member(cid, n.lower(), n, now=NOW)).id for n in ["Ann", "Ben", "Cat", "Dan"]}
    plan = [("Ann", 10, "coding", 30), ("Ben", 10, "coding", 20), ("Cat", 7, "ml-theory", 10), ("Dan", 3, "coding", 5)]
    for name, pts, track, minutes_ago in plan:
        await store.add_points(
            community_id=cid, member_id=ids[name], points=pts, reason="solve", track=track,
            question_id=f"q-{name}", now=NOW - timedelta(minutes=minutes_ago),
        )
    # an old point, outside this week and this month
    await store.add_points(community_id=cid, member_id=ids["Dan"], points=50, reason="streak", now=NOW - timedelta(days=30))

    week = "w:2026-11-23"
    rows = await store.leaderboard(cid, period=week)
    assert [(r.rank, r.display_name, r.points, r.solved) for r in rows] == [
        (1, "Ann", 10, 1), (1, "Ben", 10, 1), (3, "Cat", 7, 1), (4, "Dan", 3, 1)]
    rows = await store.leaderboard(cid)
    assert (rows[0].display_name, rows[0].points, rows[0].solved) == ("Dan", 53, 1)
    assert [r.display_name for r in await store.leaderboard(cid, period="m:2026-10")] == ["Dan"]
    rows = await store.leaderboard(cid, period=week, track="ml-theory")
    assert [r.display_name for r in rows] == ["Cat"]
    own = await store.standing_of(cid, ids["Dan"], period=week)
    assert own is not None and own.rank == 4
    assert await store.count_ranked(cid, period=week) == 4
    await store.update_member(ids["Ben"], hide_from_leaderboard=1)
    rows = await store.leaderboard(cid, period=week, limit=2)
    assert [(r.rank, r.display_name) for r in rows] == [(1, "Ann"), (2, "Cat")]
    assert await store.standing_of(cid, ids["Ben"], period=week) is None
    # the standings always equal a recomputation from the append-only ledger
    recomputed = await store._all(
        "SELECT member_id, SUM(points) AS p FROM points_ledger WHERE community_id = ? GROUP BY member_id ORDER BY member_id",
        (cid,))
    kept = await store._all(
        "SELECT member_id, points AS p FROM standings WHERE community_id = ? AND period = 'all' AND track = '*'"
        " ORDER BY member_id", (cid,))
    assert [tuple(r) for r in recomputed] == [tuple(r) for r in kept]


async def test_week_follows_the_community_timezone(store: Store) -> None:
    tokyo = await store.ensure_community("t", "tokyo", "T", now=NOW, timezone="Asia/Tokyo")
    m = await store.ensure_member(tokyo.id, "u", "U", now=NOW)
    # Sunday 2026-11-22 16:00 UTC is already Monday 01:00 in Tokyo: it counts for Tokyo's new week
    await store.add_points(community_id=tokyo.id, member_id=m.id, points=5, reason="solve",
                           now=datetime(2026, 11, 22, 16, 0, tzinfo=UTC))
    assert [r.points for r in await store.leaderboard(tokyo.id, period="w:2026-11-23")] == [5]
    assert await store.leaderboard(tokyo.id, period="w:2026-11-16") == []


async def test_communities_are_isolated_and_settings_are_whitelisted(store: Store, clock: object) -> None:
    a = await store.ensure_community("discord", "1", "A", now=NOW)
    b = await store.ensure_community("discord", "2", "B", now=NOW)
    again = await store.ensure_community("discord", "1", "renamed?", now=NOW)
    assert again.id == a.id and again.name == "A"
    ann_a = await store.ensure_member(a.id, "u1", "Ann", now=NOW)
    ann_b = await store.ensure_member(b.id, "u1", "Ann", now=NOW)
    assert ann_a.id != ann_b.id
    assert (await store.find_member(a.id, "ann")) == ann_a
    assert await store.find_member(b.id, "nobody") is None
    updated = await store.update_community(a.id, timezone="Asia/Tokyo", tracks=("coding", "ml-theory"))
    assert updated.timezone == "Asia/Tokyo" and updated.tracks == ("coding", "ml-theory")
    with pytest.raises(KeyError):
        await store.update_community(a.id, **{"name = 'x'; --": "y"})


async def test_standings_can_be_rebuilt_from_the_ledger(store: Store, admin: Caller) -> None:
    cid = admin.community.id
    for i, pts in enumerate((5, 7, 11)):
        await store.add_points(community_id=cid, member_id=admin.member.id, points=pts, reason="solve",
                               track="coding", question_id=f"q{i}", now=NOW - timedelta(days=10 * i))
    before = await store._all("SELECT * FROM standings ORDER BY period, track")
    await store.rebuild_standings()
    after = await store._all("SELECT * FROM standings ORDER BY period, track")
    assert [tuple(r) for r in before] == [tuple(r) for r in after]
    assert len(after) == 2 * (1 + 1 + 3)  # (all, November, 3 weeks) x (all tracks, coding)
