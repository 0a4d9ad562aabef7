"""The SQLite store: raw parameterised SQL over one aiosqlite connection.

Decisions:
- WAL journal, foreign keys on, `busy_timeout` so a second process waits instead of failing.
- One connection per process does all the writing; `transaction()` takes an asyncio lock and
  `BEGIN IMMEDIATE`, so a write transaction never interleaves with another coroutine's.
- Migrations are `migrations/NNNN_name.sql`, numbered from 1 without gaps. `migrate()` applies every
  pending one in a single transaction and records the last number in `PRAGMA user_version`; a
  database newer than the code is refused rather than silently used.
- Every write that must not happen twice has a unique key (`daily_posts` per community, date and
  track; `points_ledger.dedupe_key`) and is written with `INSERT ... ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.models import Community, DailyPost, Member, Standing, TrackStats

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
COMMUNITY_SETTINGS = frozenset(
    {
        "name",
        "channel",
        "timezone",
        "post_time",
        "tracks",
        "reveal_time",
        "difficulty_pattern",
        "mock_cadence_days",
        "mock_weekday",
        "mock_time",
    }
)


class MigrationError(RuntimeError):
    """The migrations folder or the database's schema version is inconsistent."""


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


def load_migrations(folder: Path | None = None) -> list[Migration]:
    """Read and order the migration files; numbers must run 1, 2, 3, ... without gaps."""
    if folder is None:
        root = resources.files("bot.store") / "migrations"
        entries = [(e.name, e.read_text(encoding="utf-8")) for e in root.iterdir() if e.name.endswith(".sql")]
    else:
        entries = [(p.name, p.read_text(encoding="utf-8")) for p in folder.glob("*.sql")]
    migrations = []
    for name, sql in entries:
        match = MIGRATION_NAME.match(name)
        if not match:
            raise MigrationError(f"migration file {name!r} is not named NNNN_lowercase_name.sql")
        migrations.append(Migration(int(match.group(1)), name, sql))
    migrations.sort(key=lambda m: m.number)
    for expected, m in enumerate(migrations, start=1):
        if m.number != expected:
            raise MigrationError(f"migration {m.name} found where number {expected:04d} was expected")
    return migrations


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (trigger bodies with inner semicolons stay whole)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise MigrationError(f"incomplete SQL statement at end of migration: {buffer.strip()[:80]!r}")
    return statements


def iso(ts: datetime) -> str:
    """UTC ISO-8601 text, the only form times take in the database."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime given to the store; use timezone-aware UTC times")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


class Store:
    """The embedded default store. Create with `await Store.open(path)`."""

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self.path = path
        self._write_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True) -> Store:
        """Open (creating if needed) the database file, switch on WAL and foreign keys, and migrate."""
        path = str(path)
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at start
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA busy_timeout = 10000")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA synchronous = NORMAL")
        store = cls(db, path)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await db.close()
                raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self, migrations: Sequence[Migration] | None = None) -> list[str]:
        """Apply pending migrations in one transaction; returns the names applied (empty when current)."""
        migrations = list(migrations) if migrations is not None else load_migrations()
        latest = migrations[-1].number if migrations else 0
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                current = await self.schema_version()
                if current > latest:
                    raise MigrationError(
                        f"database {self.path} is at schema version {current}, newer than this code "
                        f"({latest}); upgrade Onsite instead of downgrading the database"
                    )
                applied = []
                for m in migrations:
                    if m.number <= current:
                        continue
                    for statement in split_statements(m.sql):
                        await self._db.execute(statement)
                    applied.append(m.name)
                if applied:
                    await self._db.execute(f"PRAGMA user_version = {latest:d}")
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A short write transaction; the one writer in this process."""
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            else:
                await self._db.execute("COMMIT")

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    # -- communities -----------------------------------------------------------------------------

    async def ensure_community(
        self,
        platform: str,
        external_id: str,
        name: str,
        *,
        now: datetime,
        timezone: str = "UTC",
        post_time: str = "09:00",
        channel: str | None = None,
    ) -> Community:
        """The community for a platform id, created with these defaults on first sight."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO communities (platform, external_id, name, channel, timezone, post_time, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, external_id) DO NOTHING",
                (platform, external_id, name, channel, timezone, post_time, iso(now)),
            )
        row = await self._one(
            "SELECT * FROM communities WHERE platform = ? AND external_id = ?", (platform, external_id)
        )
        assert row is not None
        return Community.from_row(row)

    async def get_community(self, community_id: int) -> Community | None:
        row = await self._one("SELECT * FROM communities WHERE id = ?", (community_id,))
        return Community.from_row(row) if row else None

    async def list_communities(self) -> list[Community]:
        return [Community.from_row(r) for r in await self._all("SELECT * FROM communities ORDER BY id")]

    async def community_setting(self, community_id: int, key: str) -> Any:
        if key not in COMMUNITY_SETTINGS:
            raise KeyError(key)
        row = await self._one(f"SELECT {key} FROM communities WHERE id = ?", (community_id,))
        return row[0] if row else None

    async def update_community(self, community_id: int, **settings: Any) -> Community:
        """Change settings (names are checked against a fixed list; values are bound parameters)."""
        unknown = set(settings) - COMMUNITY_SETTINGS
        if unknown:
            raise KeyError(f"unknown community settings: {sorted(unknown)}")
        if settings:
            values = [",".join(v) if k == "tracks" else v for k, v in settings.items()]
            assignments = ", ".join(f"{k} = ?" for k in settings)
            async with self.transaction() as db:
                await db.execute(
                    f"UPDATE communities SET {assignments} WHERE id = ?", (*values, community_id)
                )
        community = await self.get_community(community_id)
        assert community is not None
        return community

    # -- members ---------------------------------------------------------------------------------

    async def ensure_member(
        self,
        community_id: int,
        external_id: str,
        display_name: str,
        *,
        now: datetime,
        is_admin: bool = False,
        timezone: str | None = None,
    ) -> Member:
        """The member for a platform user id; the display name follows the platform's latest."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO members (community_id, external_id, display_name, timezone, is_admin,"
                " created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (community_id, external_id) DO UPDATE SET"
                " display_name = excluded.display_name, last_seen_at = excluded.last_seen_at",
                (community_id, external_id, display_name, timezone, int(is_admin), iso(now), iso(now)),
            )
        row = await self._one(
            "SELECT * FROM members WHERE community_id = ? AND external_id = ?", (community_id, external_id)
        )
        assert row is not None
        return Member.from_row(row)

    async def get_member(self, member_id: int) -> Member | None:
        row = await self._one("SELECT * FROM members WHERE id = ?", (member_id,))
        return Member.from_row(row) if row else None

    async def find_member(self, community_id: int, name_or_id: str) -> Member | None:
        """Look a member up by platform id or (case-insensitively) by display name, in one community."""
        row = await self._one(
            "SELECT * FROM members WHERE community_id = ? AND (external_id = ? OR display_name = ? COLLATE NOCASE)"
            " ORDER BY external_id = ? DESC, id LIMIT 1",
            (community_id, name_or_id, name_or_id, name_or_id),
        )
        return Member.from_row(row) if row else None

    async def update_member(self, member_id: int, **values: Any) -> Member:
        allowed = {"display_name", "timezone", "hide_from_leaderboard", "is_admin"}
        unknown = set(values) - allowed
        if unknown:
            raise KeyError(f"unknown member fields: {sorted(unknown)}")
        if values:
            assignments = ", ".join(f"{k} = ?" for k in values)
            async with self.transaction() as db:
                await db.execute(f"UPDATE members SET {assignments} WHERE id = ?", (*values.values(), member_id))
        member = await self.get_member(member_id)
        assert member is not None
        return member

    # -- daily posts -----------------------------------------------------------------------------

    async def claim_daily(
        self, community_id: int, day: date, track: str, question_id: str, *, now: datetime
    ) -> tuple[DailyPost, bool]:
        """Claim the (community, day, track) slot for a question; returns the slot and whether we won it."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO daily_posts (community_id, date, track, question_id, claimed_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (community_id, date, track) DO NOTHING",
                (community_id, day.isoformat(), track, question_id, iso(now)),
            )
            created = cur.rowcount == 1
        row = await self._one(
            "SELECT * FROM daily_posts WHERE community_id = ? AND date = ? AND track = ?",
            (community_id, day.isoformat(), track),
        )
        assert row is not None
        return DailyPost.from_row(row), created

    async def daily_posts_on(self, community_id: int, day: date) -> list[DailyPost]:
        rows = await self._all(
            "SELECT * FROM daily_posts WHERE community_id = ? AND date = ? ORDER BY id",
            (community_id, day.isoformat()),
        )
        return [DailyPost.from_row(r) for r in rows]

    async def daily_history(self, community_id: int, track: str) -> list[DailyPost]:
        """Every daily slot of a track in a community, oldest first (for rotation without repeats)."""
        rows = await self._all(
            "SELECT * FROM daily_posts WHERE community_id = ? AND track = ? ORDER BY date, id",
            (community_id, track),
        )
        return [DailyPost.from_row(r) for r in rows]

    # -- submissions and points ------------------------------------------------------------------

    async def add_submission(
        self,
        *,
        community_id: int,
        member_id: int,
        question_id: str,
        track: str,
        kind: str,
        content: str,
        verdict: str,
        now: datetime,
        daily_post_id: int | None = None,
        passed: int | None = None,
        total: int | None = None,
        score: float | None = None,
        detail: str | None = None,
    ) -> int:
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO submissions (community_id, member_id, question_id, track, daily_post_id, kind,"
                " content, verdict, passed, total, score, detail, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    community_id,
                    member_id,
                    question_id,
                    track,
                    daily_post_id,
                    kind,
                    content,
                    verdict,
                    passed,
                    total,
                    score,
                    detail,
                    iso(now),
                ),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    async def add_points(
        self,
        *,
        community_id: int,
        member_id: int,
        points: int,
        reason: str,
        now: datetime,
        track: str | None = None,
        question_id: str | None = None,
        submission_id: int | None = None,
        dedupe_key: str | None = None,
    ) -> bool:
        """Append to the ledger; returns False when `dedupe_key` was already used (nothing written)."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO points_ledger (community_id, member_id, points, reason, track, question_id,"
                " submission_id, dedupe_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (dedupe_key) DO NOTHING",
                (community_id, member_id, points, reason, track, question_id, submission_id, dedupe_key,
                 iso(now)),
            )
            return cur.rowcount == 1

    async def leaderboard(
        self,
        community_id: int,
        *,
        since: datetime | None = None,
        track: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Standing]:
        """Standings by points in a period (ties share a rank; earlier last score wins the order)."""
        rows = await self._all(
            _STANDINGS_SQL + " ORDER BY rank, last_at, member_id LIMIT ? OFFSET ?",
            (*self._standing_params(community_id, since, track), limit, offset),
        )
        return [_standing(r) for r in rows]

    async def standing_of(
        self, community_id: int, member_id: int, *, since: datetime | None = None, track: str | None = None
    ) -> Standing | None:
        rows = await self._all(
            "SELECT * FROM (" + _STANDINGS_SQL + ") WHERE member_id = ?",
            (*self._standing_params(community_id, since, track), member_id),
        )
        return _standing(rows[0]) if rows else None

    async def count_ranked(
        self, community_id: int, *, since: datetime | None = None, track: str | None = None
    ) -> int:
        row = await self._one(
            "SELECT COUNT(*) FROM (" + _STANDINGS_SQL + ")", self._standing_params(community_id, since, track)
        )
        return int(row[0]) if row else 0

    @staticmethod
    def _standing_params(community_id: int, since: datetime | None, track: str | None) -> tuple[Any, ...]:
        since_text = iso(since) if since else ""
        return (community_id, since_text, track, track)

    async def track_stats(self, member_id: int) -> list[TrackStats]:
        """Per track: distinct questions attempted and distinct questions solved."""
        rows = await self._all(
            "SELECT track, COUNT(DISTINCT question_id) AS attempts,"
            " COUNT(DISTINCT CASE WHEN verdict IN ('accepted', 'correct') THEN question_id END) AS solved"
            " FROM submissions WHERE member_id = ? GROUP BY track",
            (member_id,),
        )
        return [TrackStats(r["track"], int(r["attempts"]), int(r["solved"])) for r in rows]

    async def total_points(self, member_id: int) -> int:
        row = await self._one("SELECT COALESCE(SUM(points), 0) FROM points_ledger WHERE member_id = ?", (member_id,))
        return int(row[0]) if row else 0

    async def table_counts(self, tables: Iterable[str]) -> Mapping[str, int]:
        """Row counts (for `db migrate` output and migration tests)."""
        counts = {}
        for table in tables:
            if not re.fullmatch(r"[a-z_]+", table):
                raise ValueError(table)
            row = await self._one(f"SELECT COUNT(*) FROM {table}")
            counts[table] = int(row[0]) if row else 0
        return counts


_STANDINGS_SQL = """
SELECT m.id AS member_id, m.display_name AS display_name, SUM(l.points) AS points,
       COUNT(DISTINCT CASE WHEN l.reason = 'solve' THEN l.question_id END) AS solved,
       MAX(l.created_at) AS last_at,
       RANK() OVER (ORDER BY SUM(l.points) DESC) AS rank
FROM points_ledger AS l JOIN members AS m ON m.id = l.member_id
WHERE l.community_id = ? AND l.created_at >= ? AND (? IS NULL OR l.track = ?)
  AND m.hide_from_leaderboard = 0
GROUP BY m.id
HAVING SUM(l.points) > 0
"""


def _standing(row: aiosqlite.Row) -> Standing:
    return Standing(
        rank=int(row["rank"]),
        member_id=int(row["member_id"]),
        display_name=str(row["display_name"]),
        points=int(row["points"]),
        solved=int(row["solved"]),
    )
