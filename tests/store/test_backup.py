"""`python -m bot db backup PATH`: a copy taken while another process writes is consistent at one
instant, passes integrity_check, opens at the same schema version, and runs the bot."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.models import Standing
from bot.store.sqlite import Store, load_migrations
from tests.conftest import FIXTURE_BANK, REPO

# A separate process hammering the store: each submission and its two ledger rows in one transaction.
WRITER = textwrap.dedent("""
    import asyncio, sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from bot.core.models import NewSubmission, PointAward
    from bot.store.sqlite import Store

    async def main(path: str, ready: Path, stop: Path) -> None:
        store = await Store.open(path)
        # every commit stays in the WAL: a copy that reads only the main file (a plain file copy) misses them all
        await store._db.execute("PRAGMA wal_autocheckpoint = 0")
        start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        community = await store.ensure_community("console", "local", "Local community", now=start, channel="daily")
        members = [await store.ensure_member(community.id, f"w{i}", f"writer{i:02d}", now=start) for i in range(25)]
        n = 0
        while not stop.exists() and n < 200_000:
            member = members[(n * 7) % len(members)]
            now = start + timedelta(minutes=n)  # spans weeks and months, so every standings period is busy
            sub = NewSubmission(community.id, member.id, f"q{n % 40}", ("coding", "ml-theory")[n % 2], "code",
                                f"print({n})", "accepted", True)
            awards = [PointAward(1 + n % 9, "solve", f"solve:{n}"), PointAward(2, "bonus", f"bonus:{n}")]
            await store.record_submission(sub, now=now, points=lambda position, first: awards)
            n += 1
            if n == 300:
                ready.touch()
        await store.close()
        print(n)

    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
""")


def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}
    e.update({"ONSITE_QUESTIONS": str(FIXTURE_BANK), "XDG_DATA_HOME": str(tmp_path / "data"), "USER": "tester",
              "PYTHONPATH": str(REPO)})
    return e


def bot(tmp_path: Path, *args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**env(tmp_path), **extra})


async def create(path: Path) -> None:
    store = await Store.open(path)
    await store.ensure_community("console", "local", "Local community", now=datetime.now(UTC))
    await store.close()


async def reopen(path: Path, latest: int) -> list[Standing]:
    store = await Store.open(path, migrate=False)
    try:
        assert await store.schema_version() == latest
        assert await store.migrate() == []
        every = "SELECT * FROM standings ORDER BY community_id, period, track, member_id"
        before = rows(path, every)
        await store.rebuild_standings()
        assert rows(path, every) == before
        return await store.leaderboard(1, period="all", limit=3)
    finally:
        await store.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def test_backup_under_load_is_consistent_and_runs_the_bot(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    asyncio.run(create(live))  # created and migrated before the writer starts
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(live), str(ready), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert writer.poll() is None, writer.communicate()
            assert time.monotonic() < deadline, "the writer never got going"
            time.sleep(0.05)
        assert rows(live, "PRAGMA journal_mode") == [("wal",)]
        # the backup, as an operator would run it, while the writer keeps writing (by ONSITE_DB, like the bot)
        result = bot(tmp_path, "db", "backup", str(tmp_path / "copy.db"), ONSITE_DB=str(live))
        time.sleep(0.3)  # the writer goes on after the copy
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    written = int(out.strip())
    assert result.returncode == 0, result.stderr
    copy = tmp_path / "copy.db"
    latest = load_migrations()[-1].number

    # what the CLI printed is what the copy holds
    copied = rows(copy, "SELECT COUNT(*) FROM submissions")[0][0]
    assert isinstance(copied, int) and 300 <= copied < written  # taken in the middle of the load
    assert f"schema version {latest}; integrity_check: ok" in result.stdout
    assert any(line.split() == ["submissions", str(copied)] for line in result.stdout.splitlines())
    assert any(line.split() == ["points_ledger", str(2 * copied)] for line in result.stdout.splitlines())
    assert f"size: {copy.stat().st_size} bytes" in result.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy.db")] == []  # no temp file left
    assert not Path(f"{copy}-wal").exists()  # one self-contained file

    # consistent at one instant: every submission has both its ledger rows, standings are the ledger's sums
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    assert rows(copy, "SELECT COUNT(*) FROM submissions s WHERE (SELECT COUNT(*) FROM points_ledger l"
                      " WHERE l.submission_id = s.id) != 2") == [(0,)]
    assert rows(copy, "SELECT MAX(id) FROM submissions") == [(copied,)]  # no gap: a prefix of the history
    standings = rows(copy, "SELECT member_id, points, solved FROM standings WHERE period = 'all' AND track = '*'"
                           " ORDER BY member_id")
    ledger = rows(copy, "SELECT member_id, SUM(points), SUM(reason = 'solve') FROM points_ledger"
                        " GROUP BY member_id ORDER BY member_id")
    assert standings == ledger and len(standings) == 25

    # it opens at the same schema version, needs no migration, and a rebuild from the ledger changes nothing
    top = asyncio.run(reopen(copy, latest))

    # the bot runs against the restored file
    shown = bot(tmp_path, "console", "--db", str(copy), "--json", stdin="/leaderboard all\n")
    assert shown.returncode == 0, shown.stderr
    [board] = [json.loads(line) for line in shown.stdout.splitlines()]
    assert board["kind"] == "leaderboard"
    for standing in top:
        assert f"**{standing.display_name}** · {standing.points} pts" in board["body"]


def test_backup_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    asyncio.run(create(live))
    target = tmp_path / "copy.db"
    target.write_text("precious")
    refused = bot(tmp_path, "db", "backup", str(target), "--db", str(live))
    assert refused.returncode == 1 and "exists; pass --force" in refused.stderr
    assert target.read_text() == "precious"
    forced = bot(tmp_path, "db", "backup", str(target), "--db", str(live), "--force")
    assert forced.returncode == 0, forced.stderr
    assert rows(target, "SELECT name FROM communities") == [("Local community",)]
    # a database that does not exist is not created just to be copied
    missing = bot(tmp_path, "db", "backup", str(tmp_path / "other.db"), "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "other.db").exists()
    # nor can a backup replace the database it copies
    same = bot(tmp_path, "db", "backup", str(live), "--db", str(live), "--force")
    assert same.returncode == 1 and "cannot replace the database it copies" in same.stderr
    assert rows(live, "PRAGMA integrity_check") == [("ok",)]
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


@pytest.mark.sqlite_only  # PostgreSQL is backed up with pg_dump (PostgresStore.backup_to says so)
async def test_store_backup_never_overwrites_unless_told(store: Store, tmp_path: Path) -> None:
    """The store refuses too (not only the CLI), and links the checked copy into place instead of renaming."""
    target = tmp_path / "kept.db"
    await asyncio.to_thread(target.write_text, "precious")
    try:
        await store.backup_to(target)
    except FileExistsError:
        pass
    else:
        raise AssertionError("an existing file was overwritten")
    assert await asyncio.to_thread(target.read_text) == "precious"
    report = await store.backup_to(target, overwrite=True)
    assert report["integrity"] == "ok" and report["tables"]["communities"] == 0
    assert rows(target, "PRAGMA journal_mode") == [("delete",)]  # self-contained: no -wal file to carry along
