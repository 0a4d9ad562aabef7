"""One leader for schedules (issue 19 item 5): two real bot processes on one database (a SQLite file, a
PostgreSQL database on a real server); only the
lease holder ticks; kill -9 the leader in the middle of a tick and the other takes over within a
minute (here: the test's 2 s lease), and every daily post goes out exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store import open_store

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "fixtures" / "scripts" / "scheduler_process.py"
TRACKS_WITH_QUESTIONS = 5  # the fixture bank: one question or more in each of five tracks


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database both processes open: a SQLite path or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "shared.db")
    server = request.getfixturevalue("pg_server")
    url: str = asyncio.run(server.fresh_database())
    return url


def community_due_now(db: str) -> None:
    """A community whose daily post time was two minutes ago, local noon-ish (never across midnight)."""
    now = datetime.now(UTC)
    offset = (12 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    zone = "Etc/GMT" + (f"-{offset}" if offset > 0 else f"+{-offset}" if offset < 0 else "")
    local = now + timedelta(hours=offset) - timedelta(minutes=2)

    async def make() -> None:
        store = await open_store(db)
        community = await store.ensure_community("test", "guild", "Guild", now=now, channel="daily")
        await store.update_community(community.id, timezone=zone, post_time=f"{local:%H:%M}")
        await store.close()

    asyncio.run(make())


def start(db: str, log: Path, name: str, seconds: float, *, crash: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ONSITE_FAILPOINTS": crash}
    return subprocess.Popen([sys.executable, str(SCRIPT), db, str(log), name, str(seconds)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def posts(log: Path) -> list[dict[str, str]]:
    if not log.exists():
        return []
    return [row for row in map(json.loads, log.read_text().splitlines()) if row["kind"] == "post"]


def test_only_the_lease_holder_ticks(shared: str, tmp_path: Path) -> None:
    db, log = shared, tmp_path / "chat.jsonl"
    community_due_now(db)
    a = start(db, log, "a", 3.0)
    time.sleep(0.8)
    b = start(db, log, "b", 2.0)
    out_a, err_a = a.communicate(timeout=60)
    out_b, err_b = b.communicate(timeout=60)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    assert "a started, leading=True" in out_a and "b started, leading=False" in out_b
    sent = posts(log)
    assert len(sent) == TRACKS_WITH_QUESTIONS and {p["by"] for p in sent} == {"a"}, sent
    assert len({p["key"] for p in sent}) == len(sent)


def test_the_leader_killed_mid_tick_is_replaced_and_every_post_goes_out_once(shared: str, tmp_path: Path) -> None:
    db, log = shared, tmp_path / "chat.jsonl"
    community_due_now(db)
    a = start(db, log, "a", 30.0, crash="daily.announced")  # SIGKILL once the round's posts are queued
    a.communicate(timeout=60)
    assert a.returncode == -9 and posts(log) == []  # it died mid-tick, holding the lease, nothing sent
    t0 = time.monotonic()
    b = start(db, log, "b", 6.0)
    out_b, err_b = b.communicate(timeout=60)
    assert b.returncode == 0, err_b
    assert "b started, leading=False" in out_b  # a's lease was still valid when b started
    sent = posts(log)
    assert len(sent) == TRACKS_WITH_QUESTIONS and {p["by"] for p in sent} == {"b"}, sent
    assert len({p["key"] for p in sent}) == len(sent)  # each post exactly once
    assert time.monotonic() - t0 < 60  # taken over within a minute
    assert asyncio.run(outbox_posts(db)) == (TRACKS_WITH_QUESTIONS, TRACKS_WITH_QUESTIONS)


async def outbox_posts(db: str) -> tuple[int, int]:
    store = await open_store(db)
    try:
        row = await store._one("SELECT COUNT(*), COUNT(sent_at) FROM outbox WHERE purpose = 'post'")
        return int(row[0]), int(row[1])
    finally:
        await store.close()
