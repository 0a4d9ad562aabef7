"""PostgreSQL as a second engine: its migrations, and `db convert` between the engines (real servers)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.__main__ import main
from bot.store import open_store
from bot.store.convert import COPY_ORDER, DERIVED, ConvertError, convert_urls
from bot.store.postgres import PostgresStore, _translate, load_postgres_migrations
from bot.store.sqlite import MigrationError, Store, load_migrations
from tests.pgserver import PgServer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_parameters_are_translated_outside_string_literals_only() -> None:
    sql = "SELECT ':x ? %', a || ':void' FROM t WHERE b = ? AND c = :name AND d LIKE 'p%' AND e::text = ?"
    assert _translate(sql) == ("SELECT ':x ? %%', a || ':void' FROM t WHERE b = %s AND c = %(name)s"
                               " AND d LIKE 'p%%' AND e::text = %s")


def test_both_engines_reach_the_same_schema_version() -> None:
    assert load_postgres_migrations()[-1].number == load_migrations()[-1].number


async def test_a_new_database_starts_at_the_baseline_and_migrating_again_does_nothing(pg_server: PgServer) -> None:
    url = await pg_server.empty_database()
    store = await PostgresStore.open(url, migrate=False)
    try:
        assert await store.schema_version() == 0
        assert await store.migrate() == ["0009_baseline.sql", "0010_grading_queue.sql"]
        assert await store.migrate() == []
        assert await store.schema_version() == load_migrations()[-1].number
    finally:
        await store.close()


async def test_a_newer_database_is_refused(pg_server: PgServer) -> None:
    store = await PostgresStore.open(await pg_server.fresh_database())
    try:
        async with store.transaction() as db:
            await db.execute("INSERT INTO schema_migrations (version, name) VALUES (99, '0099_future.sql')")
        with pytest.raises(MigrationError, match="newer than this code"):
            await store.migrate()
    finally:
        await store.close()


async def _history(store: Store) -> None:
    """A little of everything: two communities, members, dailies, points, a hidden member, a story."""
    for n, zone in enumerate(("UTC", "Asia/Tokyo")):
        c = await store.ensure_community("discord", f"g{n}", f"Guild {n}", now=NOW, timezone=zone)
        ids = [(await store.ensure_member(c.id, f"u{i}", f"Member {i}", now=NOW)).id for i in range(4)]
        await store.claim_daily(c.id, date(2026, 11, 23), "coding", "pair-sum-count", now=NOW)
        for i, mid in enumerate(ids):
            for d in range(3):
                await store.add_points(community_id=c.id, member_id=mid, points=5 + i, reason="solve",
                                       track="coding", question_id=f"q{d}", now=NOW - timedelta(days=9 * d),
                                       dedupe_key=f"{c.id}:{mid}:{d}")
        await store.update_member(ids[3], hide_from_leaderboard=True)
        await store.add_story(ids[0], themes=["conflict"], title="A 50% cut", situation="s", task="t",
                              action="a", result="r", now=NOW)


async def _rows(store: Store) -> dict[str, Any]:
    out = {}
    for table, columns in (await store.tables()).items():
        out[table] = sorted(tuple(r) for r in await store._all(f"SELECT {', '.join(sorted(columns))} FROM {table}"))
    return out


async def test_convert_sqlite_to_postgres_and_back_keeps_every_row(pg_server: PgServer, tmp_path: Path) -> None:
    source = await Store.open(tmp_path / "a.db")
    await _history(source)
    before = await _rows(source)
    await source.close()
    url = await pg_server.empty_database()
    report = await convert_urls(str(tmp_path / "a.db"), url)
    assert report["tables"]["points_ledger"] == 24 and report["tables"]["standings"] == len(before["standings"])
    pg = await open_store(url)
    try:
        assert await _rows(pg) == before
        # ids continue after the copied ones
        new = await pg.add_story(1, themes=["x"], title="t", situation="", task="", action="", result="", now=NOW)
        assert new == max(r[0] for r in await pg._all("SELECT id FROM stories"))
        assert new > 2
    finally:
        await pg.close()
    await convert_urls(url, f"sqlite:///{tmp_path / 'b.db'}")
    back = await Store.open(tmp_path / "b.db")
    try:
        rows = await _rows(back)
        assert len(rows["stories"]) == len(before["stories"]) + 1
        rows["stories"] = [r for r in rows["stories"] if r[2] != new]  # (columns sorted: id third) added on PostgreSQL
        assert rows == before
    finally:
        await back.close()
    for target in (url, str(tmp_path / "b.db")):  # the copy ran with the standings trigger off: it is back on
        store = await open_store(target)
        try:
            await store.add_points(community_id=1, member_id=1, points=7, reason="solve", track="coding",
                                   question_id="after-convert", now=NOW, dedupe_key="after-convert")
            row = await store._one("SELECT points FROM standings WHERE member_id = 1 AND period = 'all'"
                                   " AND track = '*'")
            total = await store._one("SELECT SUM(points) FROM points_ledger WHERE member_id = 1")
            assert int(row[0]) == int(total[0]), target
        finally:
            await store.close()


async def test_convert_refuses_a_non_empty_target_and_leaves_it_alone(pg_server: PgServer, tmp_path: Path) -> None:
    source = await Store.open(tmp_path / "a.db")
    await _history(source)
    await source.close()
    url = await pg_server.fresh_database()
    target = await open_store(url)
    await target.ensure_community("slack", "T1", "Already here", now=NOW)
    await target.close()
    with pytest.raises(ConvertError, match="not empty"):
        await convert_urls(str(tmp_path / "a.db"), url)
    with pytest.raises(ConvertError, match="same database"):
        await convert_urls(url, url)
    target = await open_store(url)
    try:
        assert [c.name for c in await target.list_communities()] == ["Already here"]
    finally:
        await target.close()


async def test_convert_rolls_back_when_a_check_fails(pg_server: PgServer, tmp_path: Path) -> None:
    """Stale standings in the source (edited behind the trigger) fail the check: the target stays empty."""
    source = await Store.open(tmp_path / "a.db")
    await _history(source)
    async with source.transaction() as db:
        await db.execute("UPDATE standings SET points = points + 1 WHERE period = 'all' AND track = '*'")
    await source.close()
    url = await pg_server.empty_database()
    with pytest.raises(ConvertError, match="standings"):
        await convert_urls(str(tmp_path / "a.db"), url)
    target = await open_store(url)
    try:
        assert sum((await target.table_counts(await target.tables())).values()) == 0
    finally:
        await target.close()


def test_every_table_is_copied_or_derived() -> None:
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        import asyncio

        asyncio.run(_close(Store.open(Path(d) / "x.db")))
        names = {r[0] for r in sqlite3.connect(Path(d) / "x.db").execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    assert names == set(COPY_ORDER) | DERIVED


async def _close(opening: Any) -> None:
    await (await opening).close()


def test_db_convert_command(pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    async def prepare() -> str:
        source = await Store.open(tmp_path / "a.db")
        await _history(source)
        await source.close()
        return await pg_server.empty_database()

    url = asyncio.run(prepare())
    assert main(["db", "convert", "--from", f"sqlite:///{tmp_path / 'a.db'}", "--to", url]) == 0
    out = capsys.readouterr().out
    assert "points_ledger" in out and f"ok: schema {load_migrations()[-1].number}" in out
    assert main(["db", "convert", "--from", f"sqlite:///{tmp_path / 'a.db'}", "--to", url]) == 1
    assert "not empty" in capsys.readouterr().err
