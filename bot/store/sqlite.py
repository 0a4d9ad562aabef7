"""The SQLite store: raw parameterised SQL over one aiosqlite connection.

Decisions:
- WAL journal, foreign keys on, `busy_timeout` so a second process waits instead of failing.
- One connection per process does all the writing; `transaction()` takes an asyncio lock and
  `BEGIN IMMEDIATE`, so a write transaction never interleaves with another coroutine's.
- Migrations are `migrations/sqlite/NNNN_name.sql`, numbered from 1 without gaps. `migrate()` applies every
  pending one in a single transaction and records the last number in `PRAGMA user_version`; a
  database newer than the code is refused rather than silently used.
- Every write that must not happen twice has a unique key (`daily_posts` per community, date and
  track; `points_ledger.dedupe_key`) and is written with `INSERT ... ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import aiosqlite

from bot.core import failpoints
from bot.core.errors import Conflict, JobFinished
from bot.core.models import (
    SOLVED_VERDICTS,
    WRITTEN_TRIES,
    Community,
    DailyPost,
    Member,
    NewSubmission,
    OutboxItem,
    OutboxRow,
    PointAward,
    PostStats,
    RecordedSubmission,
    Standing,
    TrackStats,
)

# theory: once per daily post; written: once, or WRITTEN_TRIES times while no try counted as solved
ONE_ATTEMPT_KINDS = frozenset({"choice", "numeric", "written"})
_SOLVED = "(" + ", ".join(f"'{v}'" for v in SOLVED_VERDICTS) + ")"  # for SQL: ('accepted', ...)
GRADING_CHANNEL = "onsite_grading"  # graders/worker.py listens: a job was queued
GRADED_CHANNEL = "onsite_graded"  # a worker wrote a result (payload: the job id)
LOCAL_LEASE = timedelta(minutes=15)  # a job graded in its own process is someone else's after this, on any host
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
        "solve_coverage",
    }
)


class _LeaseLost(Exception):
    """Some rows of a lease were taken by another process: renew none of them."""


class MigrationError(RuntimeError):
    """The migrations folder or the database's schema version is inconsistent."""


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


def load_migrations(folder: Path | None = None, *, entries: Sequence[tuple[str, str]] | None = None) -> list[Migration]:
    """Read and order the migration files (SQLite's by default); numbers must run 1, 2, 3, ... without
    gaps, or start at a `NNNN_baseline.sql` that creates schema NNNN from nothing."""
    if entries is None:
        if folder is None:
            root = resources.files("bot.store") / "migrations" / "sqlite"
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
    first = migrations[0].number if migrations and migrations[0].name.endswith("_baseline.sql") else 1
    for expected, m in enumerate(migrations, start=first):
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


def process_identity(pid: int | None = None) -> str:
    """host:pid:start-ticks, which names one process even after its pid is reused."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def _start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the parenthesised name


def owner_alive(owner: str) -> bool:
    """Whether the process that wrote `owner` still runs. Another host's process counts as alive
    (it cannot be checked from here: its job's lease decides); without /proc only the pid is checked."""
    host, _, rest = owner.partition(":")
    pid_text, _, ticks = rest.partition(":")
    if not pid_text.isdigit():
        return False  # 'released' (the judge was busy) or malformed: nobody holds the job
    if host != socket.gethostname():
        return True
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return ticks == "?" or _start_ticks(pid) in (ticks, "?")


class Store:
    """The embedded default store. Create with `await Store.open(path)`.

    Every query below is written once for both engines (`bot/store/postgres.py` runs them on
    PostgreSQL): `?` and `:name` parameters, `RETURNING id` instead of `lastrowid`, `COUNT(CASE ...)`
    instead of summing booleans; what differs is a class attribute (`WEEK_SQL`) or an override."""

    WEEK_SQL = "date(local_date, '-6 days', 'weekday 1')"  # the Monday of local_date's week, ISO text
    IntegrityError: ClassVar[type[Exception]] = sqlite3.IntegrityError  # what a broken constraint raises
    ENGINE: ClassVar[str] = "sqlite"  # for reports and benchmarks, never for a decision
    GRADED_POLL_S: ClassVar[float] = 0.25  # how often a waiting submitter looks for its worker's result

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self.path = path
        self.owner = process_identity()
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

    @property
    def files_dir(self) -> Path | None:
        """The folder beside the database for the files the bot writes (picture cards); None when the
        database is not a file (in memory, or a server)."""
        return None if self.path == ":memory:" else Path(self.path).expanduser().parent

    async def reopen(self) -> Store:
        """Another store on the same database, as a second process would open it."""
        return await type(self).open(self.path)

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
            "SELECT * FROM members WHERE community_id = ? AND (external_id = ? OR lower(display_name) = lower(?))"
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
                if "hide_from_leaderboard" in values:
                    await db.execute("UPDATE standings SET hidden = ? WHERE member_id = ?",
                                     (int(values["hide_from_leaderboard"]), member_id))
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
                " submission_id, dedupe_key, created_at, local_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (dedupe_key) DO NOTHING",
                (community_id, member_id, points, reason, track, question_id, submission_id, dedupe_key,
                 iso(now), await _local_date(db, community_id, now)),
            )
            return cur.rowcount == 1

    async def leaderboard(
        self,
        community_id: int,
        *,
        period: str = "all",
        track: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Standing]:
        """Standings of a period key ('all', 'w:<monday>', 'm:<yyyy-mm>'), read from the `standings` index.

        Ties share a rank (1, 2, 2, 4); within a tie the member who reached the score first comes first.
        """
        rows = await self._all(
            _STANDINGS_SQL + " ORDER BY s.points DESC, s.last_at, s.member_id LIMIT ? OFFSET ?",
            (community_id, period, track or "*", limit, offset),
        )
        return [_standing(r) for r in rows]

    async def standing_of(
        self, community_id: int, member_id: int, *, period: str = "all", track: str | None = None
    ) -> Standing | None:
        rows = await self._all(_STANDINGS_SQL + " AND s.member_id = ?", (community_id, period, track or "*", member_id))
        return _standing(rows[0]) if rows else None

    async def count_ranked(self, community_id: int, *, period: str = "all", track: str | None = None) -> int:
        row = await self._one(
            "SELECT COUNT(*) FROM standings WHERE community_id = ? AND period = ? AND track = ? AND hidden = 0"
            " AND points > 0",
            (community_id, period, track or "*"),
        )
        return int(row[0]) if row else 0

    async def track_stats(self, member_id: int) -> list[TrackStats]:
        """Per track: distinct questions attempted and distinct questions solved."""
        rows = await self._all(
            "SELECT track, COUNT(DISTINCT question_id) AS attempts,"
            " COUNT(DISTINCT CASE WHEN verdict IN " + _SOLVED + " THEN question_id END) AS solved"
            " FROM submissions WHERE member_id = ? GROUP BY track",
            (member_id,),
        )
        return [TrackStats(r["track"], int(r["attempts"]), int(r["solved"])) for r in rows]

    async def total_points(self, member_id: int) -> int:
        row = await self._one("SELECT COALESCE(SUM(points), 0) FROM points_ledger WHERE member_id = ?", (member_id,))
        return int(row[0]) if row else 0

    async def rebuild_standings(self) -> None:
        """Recompute every standing from the append-only ledger (the ledger is the source of truth)."""
        async with self.transaction() as db:
            await self.rebuild_standings_in(db, None)

    async def tables(self) -> dict[str, list[str]]:
        """Every table of the schema (not the engine's own) with its columns in order."""
        names = [str(r[0]) for r in await self._all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: [str(c[1]) for c in await self._all(f'PRAGMA table_info("{t}")')] for t in names}

    async def rebuild_standings_in(self, db: Any, community_id: int | None) -> None:
        """Inside a transaction: the standings of one community (None: all) again from the ledger."""
        await _rebuild_standings_in(db, community_id, self.WEEK_SQL)

    async def optimize(self) -> None:
        """After a bulk load: planner statistics for the new rows."""
        async with self.transaction() as db:
            await db.execute("ANALYZE")

    async def standings_trigger_off(self, db: Any) -> str:
        """Inside a transaction (`db convert`): ledger rows inserted now leave the standings alone; the
        returned text puts the trigger back with `standings_trigger_on` in the same transaction."""
        async with db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"
                              " AND name = 'points_to_standings'") as cur:
            row = await cur.fetchone()
        await db.execute("DROP TRIGGER points_to_standings")
        return str(row[0])

    async def standings_trigger_on(self, db: Any, restore: str) -> None:
        await db.execute(restore)

    async def after_bulk_copy(self, db: Any, tables: Sequence[str]) -> None:
        """After rows were copied in with their ids (`db convert`): nothing to do for SQLite, whose
        next id is always the largest plus one."""

    async def table_counts(self, tables: Iterable[str]) -> Mapping[str, int]:
        """Row counts (for `db migrate` output and migration tests)."""
        counts = {}
        for table in tables:
            if not re.fullmatch(r"[a-z_]+", table):
                raise ValueError(table)
            row = await self._one(f"SELECT COUNT(*) FROM {table}")
            counts[table] = int(row[0]) if row else 0
        return counts


    # -- outbox ----------------------------------------------------------------------------------

    async def enqueue(self, items: Sequence[OutboxItem], *, now: datetime, revealed: Sequence[int] = ()) -> int:
        """Write outbound messages (and mark daily posts revealed) in one transaction; returns how many were new.

        A key already in the outbox is skipped, which is what makes every post, reveal and
        announcement happen at most once across restarts and processes.
        """
        created = 0
        async with self.transaction() as db:
            for post_id in revealed:
                await db.execute(
                    "UPDATE daily_posts SET revealed_at = ? WHERE id = ? AND revealed_at IS NULL", (iso(now), post_id)
                )
            for item in items:
                cur = await db.execute(
                    "INSERT INTO outbox (community_id, key, purpose, channel, member_id, daily_post_id, pair_id, message,"
                    " created_at, not_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                    (item.community_id, item.key, item.purpose, item.channel, item.member_id, item.daily_post_id,
                     item.pair_id, json.dumps(item.message.to_dict()), iso(now), iso(item.not_before or now)),
                )
                created += cur.rowcount
        return created

    async def claim_outbox(self, *, now: datetime, lease_s: float, limit: int = 100) -> list[OutboxRow]:
        """Atomically lease due, unsent messages to this process, oldest first."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE outbox SET claimed_until = ?, attempts = attempts + 1 WHERE id IN ("
                " SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND not_before <= ?"
                " AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY id LIMIT ?) RETURNING *",
                (iso(now + timedelta(seconds=lease_s)), iso(now), iso(now), limit),
            )
            rows = await cur.fetchall()
        return sorted((OutboxRow.from_row(r) for r in rows), key=lambda r: r.id)

    async def renew_outbox_lease(self, ids: Sequence[int], lease: str, *, now: datetime, lease_s: float) -> str | None:
        """Extend the lease of rows still held under `lease` (exactly as stored); None when any was lost."""
        until = iso(now + timedelta(seconds=lease_s))
        try:
            async with self.transaction() as db:
                cur = await db.execute(
                    f"UPDATE outbox SET claimed_until = ? WHERE id IN ({', '.join('?' * len(ids))})"
                    " AND claimed_until = ? AND sent_at IS NULL AND failed_at IS NULL", (until, *ids, lease))
                if cur.rowcount != len(ids):
                    raise _LeaseLost  # rolls the partial renewal back
        except _LeaseLost:
            return None
        return until

    async def outbox_sent(self, row: OutboxRow, ref: str, *, now: datetime) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE outbox SET sent_at = ?, ref = ?, claimed_until = NULL WHERE id = ?",
                             (iso(now), ref, row.id))
            if row.purpose == "post" and row.daily_post_id is not None:
                await db.execute("UPDATE daily_posts SET posted_at = ?, message_ref = ? WHERE id = ?",
                                 (iso(now), ref, row.daily_post_id))

    async def outbox_failed(self, row: OutboxRow, error: str, *, retry_at: datetime | None, now: datetime) -> None:
        """Record a failed send: retry later, or give up (`retry_at` None) keeping the error."""
        async with self.transaction() as db:
            if retry_at is None:
                await db.execute("UPDATE outbox SET failed_at = ?, last_error = ?, claimed_until = NULL WHERE id = ?",
                                 (iso(now), error[:500], row.id))
            else:
                await db.execute("UPDATE outbox SET not_before = ?, last_error = ?, claimed_until = NULL WHERE id = ?",
                                 (iso(retry_at), error[:500], row.id))

    async def outbox_rows(self, community_id: int) -> list[OutboxRow]:
        rows = await self._all("SELECT * FROM outbox WHERE community_id = ? ORDER BY id", (community_id,))
        return [OutboxRow.from_row(r) for r in rows]

    async def round_announced(self, community_id: int, day: date) -> bool:
        row = await self._one(
            "SELECT 1 FROM outbox JOIN daily_posts AS p ON p.id = outbox.daily_post_id"
            " WHERE p.community_id = ? AND p.date = ? AND outbox.purpose = 'post' LIMIT 1",
            (community_id, day.isoformat()),
        )
        return row is not None

    async def announced_unrevealed(self, community_id: int) -> list[DailyPost]:
        """Daily posts that were announced and not yet revealed, oldest first."""
        rows = await self._all(
            "SELECT p.* FROM daily_posts AS p WHERE p.community_id = ? AND p.revealed_at IS NULL AND EXISTS"
            " (SELECT 1 FROM outbox AS o WHERE o.daily_post_id = p.id AND o.purpose = 'post') ORDER BY p.date, p.id",
            (community_id,),
        )
        return [DailyPost.from_row(r) for r in rows]

    async def revealed_post(self, community_id: int, question_id: str) -> DailyPost | None:
        row = await self._one(
            "SELECT * FROM daily_posts WHERE community_id = ? AND question_id = ? AND revealed_at IS NOT NULL"
            " ORDER BY date DESC LIMIT 1",
            (community_id, question_id),
        )
        return DailyPost.from_row(row) if row else None

    # -- submissions -----------------------------------------------------------------------------

    async def record_submission(
        self,
        sub: NewSubmission,
        *,
        now: datetime,
        points: Callable[[int, bool], Sequence[PointAward]],
    ) -> RecordedSubmission:
        """Store a graded submission and its points in one transaction.

        `points(solve_position, first_solve)` is called inside the transaction, where the count of
        earlier solvers is exact even with several processes (SQLite serialises writers).
        """
        async with self.transaction() as db:
            if sub.job_id is not None:  # a job finishes with its submission, once, even when two processes race
                cur = await db.execute(
                    "UPDATE grading_jobs SET finished_at = ?, outcome = 'recorded' WHERE id = ? AND finished_at IS NULL",
                    (iso(now), sub.job_id))
                if cur.rowcount != 1:
                    raise JobFinished(f"grading job {sub.job_id} was already finished")
            if sub.kind in ONE_ATTEMPT_KINDS:
                # checked inside the write transaction, which SQLite serialises across processes, so two
                # clicks on two bot processes cannot both store an answer
                cur = await db.execute(
                    "SELECT COUNT(*), COUNT(CASE WHEN verdict IN " + _SOLVED + " THEN 1 END) FROM submissions"
                    " WHERE member_id = ? AND question_id = ? AND kind = ?"
                    + (" AND daily_post_id IS NOT DISTINCT FROM ?" if sub.kind != "written" else ""),
                    (sub.member_id, sub.question_id, sub.kind)
                    + ((sub.daily_post_id,) if sub.kind != "written" else ()))
                row = await cur.fetchone()
                tries, solved = (int(row[0]), int(row[1])) if row else (0, 0)
                if tries and (sub.kind != "written" or solved or tries >= WRITTEN_TRIES):
                    raise Conflict(f"You already answered `{sub.question_id}`; it takes one attempt.")
                if tries and sub.kind == "written":  # a double click must not spend the one revision
                    cur = await db.execute(
                        "SELECT 1 FROM submissions WHERE member_id = ? AND question_id = ? AND kind = 'written'"
                        " AND content = ? LIMIT 1", (sub.member_id, sub.question_id, sub.content))
                    if await cur.fetchone() is not None:
                        raise Conflict(f"This is the answer you already sent to `{sub.question_id}`; a revision "
                                       "must change it (your one revision is still unused).")
            first_solve = False
            position = 0
            if sub.correct:
                cur = await db.execute(
                    "SELECT 1 FROM submissions WHERE member_id = ? AND question_id = ? AND verdict IN " + _SOLVED
                    + " LIMIT 1", (sub.member_id, sub.question_id))
                first_solve = await cur.fetchone() is None
                if first_solve and sub.daily_post_id is not None:
                    cur = await db.execute(
                        "SELECT COUNT(DISTINCT member_id) FROM submissions WHERE daily_post_id = ?"
                        " AND verdict IN " + _SOLVED + " AND is_daily = 1", (sub.daily_post_id,))
                    row = await cur.fetchone()
                    position = (int(row[0]) if row else 0) + 1
            cur = await db.execute(
                "INSERT INTO submissions (community_id, member_id, question_id, track, daily_post_id, is_daily, kind,"
                " content, verdict, passed, total, score, detail, created_at, graded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (sub.community_id, sub.member_id, sub.question_id, sub.track, sub.daily_post_id,
                 int(sub.daily_post_id is not None), sub.kind, sub.content, sub.verdict, sub.passed, sub.total,
                 sub.score, sub.detail, iso(now), iso(now)),
            )
            submission_id = await _returned_id(cur)
            awarded: list[PointAward] = []
            local = await _local_date(db, sub.community_id, now)
            for award in points(position, first_solve):
                cur = await db.execute(
                    "INSERT INTO points_ledger (community_id, member_id, points, reason, track, question_id,"
                    " submission_id, dedupe_key, created_at, local_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (dedupe_key) DO NOTHING",
                    (sub.community_id, sub.member_id, award.points, award.reason, sub.track, sub.question_id,
                     submission_id, award.key, iso(now), local),
                )
                if cur.rowcount == 1:
                    awarded.append(award)
                failpoints.hit("store.ledger")
        return RecordedSubmission(submission_id, first_solve, position, tuple(awarded))

    # -- grading jobs (a code submission between its arrival and its stored verdict) -----------------

    async def start_grading_job(self, *, community_id: int, member_id: int, question_id: str,
                                daily_post_id: int | None, code: str, now: datetime) -> int:
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO grading_jobs (community_id, member_id, question_id, daily_post_id, code, owner, created_at,"
                " lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (community_id, member_id, question_id, daily_post_id, code, self.owner, iso(now),
                 iso(now + LOCAL_LEASE)))
            return await _returned_id(cur)

    async def finish_grading_job(self, job_id: int, outcome: str, *, now: datetime,
                                 items: Sequence[OutboxItem] = ()) -> bool:
        """Close a job without a submission (abandoned, with why), with the messages that say so."""
        async with self.transaction() as db:
            cur = await db.execute("UPDATE grading_jobs SET finished_at = ?, outcome = ? WHERE id = ? AND finished_at IS NULL",
                                   (iso(now), outcome[:300], job_id))
            if cur.rowcount != 1:
                return False
            for item in items:
                await self._enqueue_in(db, item, now)
        return True

    async def release_grading_job(self, job_id: int) -> None:
        """Give a job back (the judge was busy or failed) so a later tick claims it again; this try does
        not count, since only a crash can cut a try off (and crashes are what the count limits)."""
        async with self.transaction() as db:
            await db.execute("UPDATE grading_jobs SET owner = 'released', attempts = attempts - 1 WHERE id = ?"
                             " AND owner = ?", (job_id, self.owner))

    async def claim_orphaned_jobs(self, *, now: datetime, limit: int = 20) -> list[aiosqlite.Row]:
        """Open jobs graded in a process that is gone (seen dead on this host, or its lease passed on
        any host), taken over by this one (compare-and-set on the owner). Queued jobs are the workers'."""
        rows = await self._all("SELECT id, owner, lease_until FROM grading_jobs WHERE finished_at IS NULL"
                               " AND queued = 0 ORDER BY id")
        claimed: list[int] = []
        for row in rows:
            expired = row["lease_until"] is not None and str(row["lease_until"]) < iso(now)
            if len(claimed) >= limit or row["owner"] == self.owner or (
                    not expired and owner_alive(str(row["owner"]))):
                continue
            async with self.transaction() as db:
                cur = await db.execute(
                    "UPDATE grading_jobs SET owner = ?, attempts = attempts + 1, lease_until = ? WHERE id = ?"
                    " AND owner = ? AND finished_at IS NULL",
                    (self.owner, iso(now + LOCAL_LEASE), row["id"], row["owner"]))
                if cur.rowcount == 1:
                    claimed.append(int(row["id"]))
        if not claimed:
            return []
        return await self._all(f"SELECT * FROM grading_jobs WHERE id IN ({', '.join('?' * len(claimed))}) ORDER BY id",
                               claimed)

    async def open_grading_jobs(self) -> list[aiosqlite.Row]:
        return await self._all("SELECT * FROM grading_jobs WHERE finished_at IS NULL ORDER BY id")

    # -- the grading queue (issue 19: `python -m graders worker` grades on other machines) --------------

    async def queue_grading_job(self, *, community_id: int, member_id: int, question_id: str,
                                daily_post_id: int | None, code: str, spec: str, now: datetime,
                                waiter_until: datetime) -> int:
        """A job for the workers (graders/worker.py reads this row); the submitting process shows its
        verdict until `waiter_until`, after which the leader's tick sends it by DM."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO grading_jobs (community_id, member_id, question_id, daily_post_id, code, owner, created_at,"
                " queued, spec, waiter_until) VALUES (?, ?, ?, ?, ?, 'queued', ?, 1, ?, ?) RETURNING id",
                (community_id, member_id, question_id, daily_post_id, code, iso(now), spec, iso(waiter_until)))
            job_id = await _returned_id(cur)
            await self._notify_in(db, GRADING_CHANNEL, str(job_id))
        return job_id

    async def grading_result(self, job_id: int) -> str | None:
        """The judge's JSON result of a queued job once a worker wrote it."""
        row = await self._one("SELECT result FROM grading_jobs WHERE id = ?", (job_id,))
        return str(row["result"]) if row is not None and row["result"] is not None else None

    async def wait_graded(self, job_id: int, timeout_s: float) -> None:
        """Return when a worker may have written job `job_id`'s result, or after `timeout_s`. SQLite
        has no notifications: a short sleep, then the caller looks again."""
        await asyncio.sleep(min(timeout_s, self.GRADED_POLL_S))

    async def hand_over_to_dm(self, job_id: int, *, now: datetime) -> None:
        """The submitting process stopped waiting: the verdict goes by DM from the next tick."""
        async with self.transaction() as db:
            await db.execute("UPDATE grading_jobs SET waiter_until = ? WHERE id = ? AND finished_at IS NULL",
                             (iso(now), job_id))

    async def graded_for_dm(self, *, now: datetime, limit: int = 50) -> list[aiosqlite.Row]:
        """Queued jobs a worker has graded whose submitter is no longer waiting (left, crashed)."""
        return await self._all(
            "SELECT * FROM grading_jobs WHERE queued = 1 AND result IS NOT NULL AND finished_at IS NULL"
            " AND waiter_until <= ? ORDER BY id LIMIT ?", (iso(now), limit))

    async def unclaimed_jobs(self, *, before: datetime) -> list[aiosqlite.Row]:
        """Queued jobs no worker has taken since `before` (no worker is running)."""
        return await self._all(
            "SELECT * FROM grading_jobs WHERE queued = 1 AND result IS NULL AND finished_at IS NULL"
            " AND lease_until IS NULL AND created_at < ? ORDER BY id", (iso(before),))

    async def _notify_in(self, db: Any, channel: str, payload: str) -> None:
        """Wake listeners on `channel` when the transaction commits (PostgreSQL); SQLite polls."""
        return None

    async def get_daily_post(self, post_id: int) -> DailyPost | None:
        row = await self._one("SELECT * FROM daily_posts WHERE id = ?", (post_id,))
        return DailyPost.from_row(row) if row else None

    async def submissions_of(self, member_id: int, question_id: str) -> list[aiosqlite.Row]:
        return await self._all(
            "SELECT * FROM submissions WHERE member_id = ? AND question_id = ? ORDER BY id", (member_id, question_id)
        )

    async def post_stats(self, post_id: int) -> PostStats:
        """Attempts, solvers and the first three solvers of one daily post."""
        row = await self._one(
            "SELECT COUNT(DISTINCT member_id) AS attempted,"
            " COUNT(DISTINCT CASE WHEN verdict IN " + _SOLVED + " THEN member_id END) AS solved"
            " FROM submissions WHERE daily_post_id = ? AND is_daily = 1",
            (post_id,),
        )
        first = await self._all(
            "SELECT m.display_name, MIN(s.id) AS first_id FROM submissions AS s JOIN members AS m ON m.id = s.member_id"
            " WHERE s.daily_post_id = ? AND s.is_daily = 1 AND s.verdict IN " + _SOLVED
            + " GROUP BY s.member_id, m.display_name ORDER BY first_id LIMIT 3",
            (post_id,),
        )
        return PostStats(
            attempted=int(row["attempted"]) if row else 0,
            solved=int(row["solved"]) if row else 0,
            first_solvers=tuple(str(r["display_name"]) for r in first),
        )

    async def written_answers(self, community_id: int, question_id: str) -> list[aiosqlite.Row]:
        """Each member's last written answer sent before the question was first revealed here (a
        revision replaces the first try; an answer written after the reveal is practice: not listed)."""
        return await self._all(
            "WITH cutoff AS (SELECT COALESCE(MIN(revealed_at), '9999') AS at FROM daily_posts"
            "  WHERE community_id = ? AND question_id = ? AND revealed_at IS NOT NULL),"
            " last AS (SELECT MAX(s.id) AS id FROM submissions AS s, cutoff WHERE s.community_id = ?"
            "  AND s.question_id = ? AND s.kind = 'written' AND s.created_at < cutoff.at GROUP BY s.member_id)"
            " SELECT s.id, s.member_id, m.display_name, s.content, s.score, s.verdict,"
            " (SELECT COUNT(*) FROM votes AS v WHERE v.submission_id = s.id) AS votes"
            " FROM last JOIN submissions AS s ON s.id = last.id JOIN members AS m ON m.id = s.member_id"
            " ORDER BY s.id",
            (community_id, question_id, community_id, question_id),
        )

    async def add_vote(self, submission_id: int, voter_id: int, *, now: datetime) -> bool:
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO votes (submission_id, voter_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (submission_id, voter_id, iso(now)),
            )
            return cur.rowcount == 1

    async def daily_solve_times(self, member_ids: Sequence[int]) -> dict[int, list[datetime]]:
        """When each member solved daily questions (for streaks in their own timezone)."""
        if not member_ids:
            return {}
        marks = ",".join("?" * len(member_ids))
        rows = await self._all(
            f"SELECT member_id, created_at FROM submissions WHERE member_id IN ({marks}) AND is_daily = 1"
            " AND verdict IN " + _SOLVED + " ORDER BY created_at",
            tuple(member_ids),
        )
        out: dict[int, list[datetime]] = {m: [] for m in member_ids}
        for r in rows:
            out[int(r["member_id"])].append(datetime.fromisoformat(r["created_at"]))
        return out

    async def mocks_done(self, member_id: int) -> int:
        row = await self._one(
            "SELECT COUNT(*) FROM mock_pair_members AS pm JOIN mock_pairs AS p ON p.id = pm.pair_id"
            " WHERE pm.member_id = ? AND p.outcome = 'met'", (member_id,)
        )
        return int(row[0]) if row else 0

    async def admins(self, community_id: int) -> list[Member]:
        rows = await self._all("SELECT * FROM members WHERE community_id = ? AND is_admin = 1 ORDER BY id", (community_id,))
        return [Member.from_row(r) for r in rows]


    # -- mock interviews -------------------------------------------------------------------------

    async def save_optin(
        self, member: Member, *, tracks: Sequence[str], level: str, timezone: str, availability: str, now: datetime
    ) -> None:
        """Join (or re-join, which resumes a pause) the mock rotation."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO mock_optins (member_id, community_id, tracks, level, timezone, availability, active,"
                " paused_until, silent_rounds, pause_reason, joined_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 1, NULL, 0, NULL, ?, ?) ON CONFLICT (member_id) DO UPDATE SET"
                " tracks = excluded.tracks, level = excluded.level, timezone = excluded.timezone,"
                " availability = excluded.availability, active = 1, paused_until = NULL, silent_rounds = 0,"
                " no_shows = 0, pause_reason = NULL, updated_at = excluded.updated_at",
                (member.id, member.community_id, ",".join(tracks), level, timezone, availability, iso(now), iso(now)),
            )

    async def optin(self, member_id: int) -> aiosqlite.Row | None:
        return await self._one("SELECT * FROM mock_optins WHERE member_id = ?", (member_id,))

    async def optins(self, community_id: int) -> list[aiosqlite.Row]:
        return await self._all(
            "SELECT o.*, m.display_name FROM mock_optins AS o JOIN members AS m ON m.id = o.member_id"
            " WHERE o.community_id = ? ORDER BY o.member_id",
            (community_id,),
        )

    async def update_optin(self, member_id: int, **values: Any) -> None:
        async with self.transaction() as db:
            await self._update_optin_in(db, member_id, values)

    async def _update_optin_in(self, db: aiosqlite.Connection, member_id: int, values: Mapping[str, Any]) -> None:
        allowed = {"active", "paused_until", "silent_rounds", "no_shows", "pause_reason"}
        if set(values) - allowed:
            raise KeyError(f"unknown opt-in fields: {sorted(set(values) - allowed)}")
        assignments = ", ".join(f"{k} = ?" for k in values)
        await db.execute(f"UPDATE mock_optins SET {assignments} WHERE member_id = ?", (*values.values(), member_id))

    async def add_avoid(self, member_id: int, avoided_id: int, *, now: datetime) -> bool:
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO mock_avoid (member_id, avoided_member_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING", (member_id, avoided_id, iso(now)))
            return cur.rowcount == 1

    async def avoids(self, community_id: int) -> dict[int, set[int]]:
        rows = await self._all(
            "SELECT a.member_id, a.avoided_member_id FROM mock_avoid AS a JOIN members AS m ON m.id = a.member_id"
            " WHERE m.community_id = ?", (community_id,))
        out: dict[int, set[int]] = {}
        for r in rows:
            out.setdefault(int(r[0]), set()).add(int(r[1]))
        return out

    async def create_mock_round(self, community_id: int, scheduled_for: str, *, now: datetime) -> tuple[int, bool]:
        """The round of that slot (unique per community), and whether it still has to be paired
        (created now, or left unfinished by a crash: its report is written with its groups)."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO mock_rounds (community_id, scheduled_for, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (community_id, scheduled_for) DO NOTHING", (community_id, scheduled_for, iso(now)))
        row = await self._one("SELECT id, report FROM mock_rounds WHERE community_id = ? AND scheduled_for = ?",
                              (community_id, scheduled_for))
        assert row is not None
        return int(row[0]), row[1] is None

    async def unfinished_mock_rounds(self, community_id: int) -> list[aiosqlite.Row]:
        return await self._all("SELECT * FROM mock_rounds WHERE community_id = ? AND report IS NULL ORDER BY id",
                               (community_id,))

    async def mock_rounds(self, community_id: int, limit: int = 12) -> list[aiosqlite.Row]:
        """The most recent rounds first."""
        return await self._all("SELECT * FROM mock_rounds WHERE community_id = ? ORDER BY scheduled_for DESC, id DESC"
                               " LIMIT ?", (community_id, limit))

    async def round_groups(self, round_id: int) -> list[aiosqlite.Row]:
        """One row per group member: pair id, member, position, first role, check-in, no-show flag, the
        pair's outcome, and the round's slot."""
        return await self._all(
            "SELECT p.id AS pair_id, p.track, p.space_ref, p.suggested_time, p.packs, p.outcome, p.round_id,"
            " r.scheduled_for, pm.member_id, pm.position, pm.first_role, pm.checked_in, pm.reported_no_show,"
            " m.display_name FROM mock_pairs AS p JOIN mock_rounds AS r ON r.id = p.round_id"
            " JOIN mock_pair_members AS pm ON pm.pair_id = p.id JOIN members AS m ON m.id = pm.member_id"
            " WHERE p.round_id = ? ORDER BY p.id, pm.position", (round_id,))

    async def save_groups(
        self, round_id: int, groups: Sequence[tuple[str, str | None, str, Sequence[int]]], items_for: Callable[[int], Sequence[OutboxItem]],
        *, report: str, now: datetime, notices: Sequence[OutboxItem] = (),
        optin_updates: Sequence[tuple[int, Mapping[str, Any]]] = (),
    ) -> list[int] | None:
        """Finish a round in one transaction: its report, groups (track, suggested time, packs JSON,
        members in order), the messages that announce them (`items_for(pair_id)`), other notices and
        opt-in changes. None when the round was already finished (by another process)."""
        ids: list[int] = []
        async with self.transaction() as db:
            cur = await db.execute("UPDATE mock_rounds SET report = ? WHERE id = ? AND report IS NULL", (report, round_id))
            if cur.rowcount != 1:
                return None
            for track, suggested, packs, members in groups:
                cur = await db.execute(
                    "INSERT INTO mock_pairs (round_id, track, suggested_time, packs, created_at) VALUES (?, ?, ?, ?, ?)"
                    " RETURNING id", (round_id, track, suggested, packs, iso(now)))
                pair_id = await _returned_id(cur)
                ids.append(pair_id)
                for position, member_id in enumerate(members):
                    await db.execute(
                        "INSERT INTO mock_pair_members (pair_id, member_id, first_role, position) VALUES (?, ?, ?, ?)",
                        (pair_id, member_id, "interviewer" if position == 0 else "interviewee", position))
                for item in items_for(pair_id):
                    await self._enqueue_in(db, item, now)
            for item in notices:
                await self._enqueue_in(db, item, now)
            for member_id, values in optin_updates:
                await self._update_optin_in(db, member_id, values)
        return ids

    async def _enqueue_in(self, db: aiosqlite.Connection, item: OutboxItem, now: datetime) -> None:
        await db.execute(
            "INSERT INTO outbox (community_id, key, purpose, channel, member_id, daily_post_id, pair_id, message,"
            " created_at, not_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (item.community_id, item.key, item.purpose, item.channel, item.member_id, item.daily_post_id, item.pair_id,
             json.dumps(item.message.to_dict()), iso(now), iso(item.not_before or now)),
        )

    async def amend_outbox(self, key: str, *, now: datetime, message: Any = None) -> bool:
        """Send a held-back row (`not_before` in the future) now, with `message` instead of its own when
        given; False when it was sent, or is being sent, already (its own `not_before` came first)."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE outbox SET not_before = ?, message = COALESCE(?, message) WHERE key = ? AND sent_at IS NULL"
                " AND failed_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?)",
                (iso(now), json.dumps(message.to_dict()) if message is not None else None, key, iso(now)))
            return bool(cur.rowcount == 1)

    async def pair_space(self, pair_id: int) -> tuple[str | None, list[Member]]:
        """A group's private space (None until opened) and its members in interview order."""
        row = await self._one("SELECT space_ref FROM mock_pairs WHERE id = ?", (pair_id,))
        members = await self._all(
            "SELECT m.* FROM mock_pair_members AS pm JOIN members AS m ON m.id = pm.member_id WHERE pm.pair_id = ?"
            " ORDER BY pm.position", (pair_id,))
        return (row[0] if row else None), [Member.from_row(r) for r in members]

    async def set_pair_space(self, pair_id: int, ref: str) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE mock_pairs SET space_ref = ? WHERE id = ?", (ref, pair_id))

    async def latest_group_of(self, member_id: int) -> list[aiosqlite.Row]:
        """The member's group in their most recent round (every member of it)."""
        row = await self._one(
            "SELECT pm.pair_id FROM mock_pair_members AS pm JOIN mock_pairs AS p ON p.id = pm.pair_id"
            " WHERE pm.member_id = ? ORDER BY p.round_id DESC LIMIT 1", (member_id,))
        if row is None:
            return []
        return await self._all(
            "SELECT pm.*, m.display_name, p.round_id, p.track, p.packs, p.outcome FROM mock_pair_members AS pm"
            " JOIN members AS m ON m.id = pm.member_id JOIN mock_pairs AS p ON p.id = pm.pair_id"
            " WHERE pm.pair_id = ? ORDER BY pm.position", (int(row[0]),))

    async def record_checkin(
        self, pair_id: int, member_id: int, value: str, *, absent_id: int | None, expected: str | None, outcome: str,
        notices: Sequence[OutboxItem] = (), now: datetime,
    ) -> bool:
        """In one transaction: move the pair's outcome from `expected` to `outcome` (compare-and-set:
        False, and nothing written, when another check-in changed it first), record the member's
        check-in and the member they report absent, reset the group's silent rounds and enqueue
        `notices`."""
        async with self.transaction() as db:
            cur = await db.execute("UPDATE mock_pairs SET outcome = ? WHERE id = ? AND outcome IS NOT DISTINCT FROM ?",
                                   (outcome, pair_id, expected))
            if cur.rowcount != 1:
                return False
            await db.execute("UPDATE mock_pair_members SET checked_in = ? WHERE pair_id = ? AND member_id = ?",
                             (value, pair_id, member_id))
            if absent_id is not None:
                await db.execute("UPDATE mock_pair_members SET reported_no_show = 1 WHERE pair_id = ? AND member_id = ?",
                                 (pair_id, absent_id))
            await db.execute("UPDATE mock_optins SET silent_rounds = 0 WHERE member_id IN"
                             " (SELECT member_id FROM mock_pair_members WHERE pair_id = ?)", (pair_id,))
            for item in notices:
                await self._enqueue_in(db, item, now)
        return True

    async def settle_mock_points(self, pair_id: int, *, points: int, now: datetime) -> list[int]:
        """The pair's mock points follow its outcome, once per member (ledger keys `mock:<pair>:<member>`):
        `points` to every member while it is met; taken back (`...:void`, same local date) once it is
        disputed. Returns the members whose points changed."""
        changed: list[int] = []
        async with self.transaction() as db:
            async with db.execute("SELECT p.outcome, r.community_id FROM mock_pairs AS p"
                                  " JOIN mock_rounds AS r ON r.id = p.round_id WHERE p.id = ?", (pair_id,)) as cur:
                pair = await cur.fetchone()
            if pair is None or pair[0] not in ("met", "disputed"):
                return changed
            async with db.execute("SELECT member_id FROM mock_pair_members WHERE pair_id = ? ORDER BY position",
                                  (pair_id,)) as cur:
                members = [int(r[0]) for r in await cur.fetchall()]
            local = await _local_date(db, int(pair[1]), now)
            for member_id in members:
                key = f"mock:{pair_id}:{member_id}"
                if pair[0] == "met":
                    cur = await db.execute(
                        "INSERT INTO points_ledger (community_id, member_id, points, reason, dedupe_key, created_at,"
                        " local_date) VALUES (?, ?, ?, 'mock', ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
                        (int(pair[1]), member_id, points, key, iso(now), local))
                else:
                    cur = await db.execute(
                        "INSERT INTO points_ledger (community_id, member_id, points, reason, track, question_id,"
                        " dedupe_key, created_at, local_date) SELECT community_id, member_id, -points, reason, track,"
                        " question_id, dedupe_key || ':void', ?, local_date FROM points_ledger WHERE dedupe_key = ?"
                        " ON CONFLICT (dedupe_key) DO NOTHING", (iso(now), key))
                if cur.rowcount == 1:
                    changed.append(member_id)
        return changed

    async def add_feedback(
        self, pair_id: int, from_id: int, to_id: int, *, scores: str, text: str, now: datetime
    ) -> bool:
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO mock_feedback (pair_id, from_member_id, to_member_id, scores, text, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (pair_id, from_id, to_id, scores, text, iso(now)))
            return cur.rowcount == 1

    async def pair_feedback(self, pair_id: int) -> list[aiosqlite.Row]:
        """Every feedback form of one pair (from, to, scores JSON, text), oldest first."""
        return await self._all(
            "SELECT f.from_member_id, f.to_member_id, f.scores, f.text, m.display_name AS from_name"
            " FROM mock_feedback f JOIN members m ON m.id = f.from_member_id WHERE f.pair_id = ? ORDER BY f.id",
            (pair_id,))

    # -- issue 9: practice, timed attempts, study plans, STAR stories, picture cards -------------

    async def member_submissions(self, member_id: int) -> list[aiosqlite.Row]:
        """Every submission of a member, oldest first (for practice accuracy, plan progress, cards)."""
        return await self._all(
            "SELECT id, question_id, track, verdict, daily_post_id, created_at FROM submissions"
            " WHERE member_id = ? ORDER BY id", (member_id,))

    async def community_daily_ids(self, community_id: int) -> set[str]:
        """Every question that has been a daily in the community (shown to everyone, maybe revealed)."""
        rows = await self._all("SELECT DISTINCT question_id FROM daily_posts WHERE community_id = ?", (community_id,))
        return {str(r[0]) for r in rows}

    async def practice_shown(self, member_id: int) -> dict[str, int]:
        """Questions /practice has offered the member, with how many times."""
        rows = await self._all("SELECT question_id, times FROM practice_shown WHERE member_id = ?", (member_id,))
        return {str(r[0]): int(r[1]) for r in rows}

    async def mark_practice_shown(self, member_id: int, question_id: str, *, now: datetime) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO practice_shown (member_id, question_id, shown_at) VALUES (?, ?, ?)"
                " ON CONFLICT (member_id, question_id) DO UPDATE SET shown_at = excluded.shown_at,"
                " times = practice_shown.times + 1",
                (member_id, question_id, iso(now)))

    async def start_timer(
        self, *, community_id: int, member_id: int, question_id: str, track: str, budget_s: int, now: datetime,
        items_for: Callable[[int], Sequence[OutboxItem]],
    ) -> tuple[aiosqlite.Row, bool]:
        """Open a timer and enqueue its reminders (`items_for(timer_id)`) in one transaction; an
        already open timer for the same question is returned instead (False)."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO timers (community_id, member_id, question_id, track, budget_s, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                (community_id, member_id, question_id, track, budget_s, iso(now)))
            new = next(iter(await cur.fetchall()), None)
            await cur.close()
            created = new is not None
            if new is not None:
                for item in items_for(int(new[0])):
                    await self._enqueue_in(db, item, now)
        row = await self.open_timer(member_id, question_id)
        assert row is not None
        return row, created

    async def timer(self, timer_id: int) -> aiosqlite.Row | None:
        return await self._one("SELECT * FROM timers WHERE id = ?", (timer_id,))

    async def open_timer(self, member_id: int, question_id: str) -> aiosqlite.Row | None:
        return await self._one("SELECT * FROM timers WHERE member_id = ? AND question_id = ? AND finished_at IS NULL",
                               (member_id, question_id))

    async def finish_timer(self, timer_id: int, *, now: datetime) -> bool:
        """Close a timer once and cancel its reminders that have not gone out yet."""
        async with self.transaction() as db:
            cur = await db.execute("UPDATE timers SET finished_at = ? WHERE id = ? AND finished_at IS NULL",
                                   (iso(now), timer_id))
            if cur.rowcount != 1:
                return False
            await db.execute(
                "UPDATE outbox SET failed_at = ?, last_error = 'cancelled: the timed attempt ended', claimed_until = NULL"
                " WHERE key LIKE ? AND sent_at IS NULL AND failed_at IS NULL", (iso(now), f"timer:{timer_id}:%"))
            return True

    async def start_plan(
        self, *, community_id: int, member_id: int, starts_on: date, ends_on: date, interview_on: date | None,
        now: datetime,
    ) -> tuple[aiosqlite.Row, bool]:
        """Start a plan unless one is active (one active plan per member); returns the active plan."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO study_plans (community_id, member_id, starts_on, ends_on, interview_on, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (community_id, member_id, starts_on.isoformat(), ends_on.isoformat(),
                 interview_on.isoformat() if interview_on else None, iso(now)))
            created = cur.rowcount == 1
        row = await self.active_plan(member_id)
        assert row is not None
        return row, created

    async def active_plan(self, member_id: int) -> aiosqlite.Row | None:
        return await self._one("SELECT * FROM study_plans WHERE member_id = ? AND stopped_at IS NULL", (member_id,))

    async def stop_plan(self, plan_id: int, *, now: datetime) -> bool:
        async with self.transaction() as db:
            cur = await db.execute("UPDATE study_plans SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL",
                                   (iso(now), plan_id))
            return cur.rowcount == 1

    async def plans_to_nudge(self, community_id: int, day: date) -> list[aiosqlite.Row]:
        """Active plans of a community not yet nudged on `day`, with the member's timezone."""
        return await self._all(
            "SELECT p.*, m.timezone AS member_timezone FROM study_plans AS p JOIN members AS m ON m.id = p.member_id"
            " WHERE p.community_id = ? AND p.stopped_at IS NULL AND (p.last_nudged_on IS NULL OR p.last_nudged_on < ?)"
            " ORDER BY p.id", (community_id, day.isoformat()))

    async def nudge_plan(self, plan_id: int, day: date, items: Sequence[OutboxItem], *, now: datetime,
                         stop: bool = False) -> bool:
        """Record the day's nudge and enqueue it in one transaction (at most one per plan and day)."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE study_plans SET last_nudged_on = ?, stopped_at = CASE WHEN ? = 1 THEN ? ELSE stopped_at END"
                " WHERE id = ? AND stopped_at IS NULL AND (last_nudged_on IS NULL OR last_nudged_on < ?)",
                (day.isoformat(), int(stop), iso(now), plan_id, day.isoformat()))
            if cur.rowcount != 1:
                return False
            for item in items:
                await self._enqueue_in(db, item, now)
            return True

    async def add_story(self, member_id: int, *, themes: Sequence[str], title: str, situation: str, task: str,
                        action: str, result: str, now: datetime) -> int:
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO stories (member_id, themes, title, situation, task, action, result, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (member_id, ",".join(themes), title, situation, task, action, result, iso(now), iso(now)))
            return await _returned_id(cur)

    async def stories_of(self, member_id: int) -> list[aiosqlite.Row]:
        """A member's stories in the order they were added (their numbers in /story list)."""
        return await self._all("SELECT * FROM stories WHERE member_id = ? ORDER BY id", (member_id,))

    async def update_story(self, story_id: int, *, now: datetime, **values: str) -> None:
        allowed = {"themes", "title", "situation", "task", "action", "result"}
        if set(values) - allowed:
            raise KeyError(f"unknown story fields: {sorted(set(values) - allowed)}")
        assignments = ", ".join(f"{k} = ?" for k in values)
        async with self.transaction() as db:
            await db.execute(f"UPDATE stories SET {assignments}, updated_at = ? WHERE id = ?",
                             (*values.values(), iso(now), story_id))

    async def delete_story(self, story_id: int) -> bool:
        async with self.transaction() as db:
            cur = await db.execute("DELETE FROM stories WHERE id = ?", (story_id,))
            return cur.rowcount == 1

    async def points_history(self, member_ids: Sequence[int], *, since: datetime | None = None,
                             track: str | None = None) -> dict[int, list[tuple[datetime, int]]]:
        """Each member's ledger entries (time, points), oldest first, optionally from `since` and only
        those of one track (what that track's standings sum)."""
        out: dict[int, list[tuple[datetime, int]]] = {m: [] for m in member_ids}
        if not member_ids:
            return out
        marks = ",".join("?" * len(member_ids))
        rows = await self._all(
            f"SELECT member_id, created_at, points FROM points_ledger WHERE member_id IN ({marks})"
            " AND created_at >= ?" + (" AND track = ?" if track else "") + " ORDER BY created_at, id",
            (*member_ids, iso(since) if since else "", *((track,) if track else ())))
        for r in rows:
            out[int(r[0])].append((datetime.fromisoformat(r[1]), int(r[2])))
        return out

    # -- issue 19: one leader for schedules --------------------------------------------------------

    async def hold_lease(self, name: str, holder: str, *, now: datetime, ttl_s: float) -> bool:
        """Take or renew the lease `name` for `holder` until now + ttl_s; True when `holder` has it.
        One write transaction (serialised across processes), so two holders never both get True."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
                (name, holder, iso(now + timedelta(seconds=ttl_s)), iso(now)))
            cur = await db.execute("SELECT holder FROM leases WHERE name = ?", (name,))
            row = await cur.fetchone()
            return row is not None and row[0] == holder

    async def release_lease(self, name: str, holder: str) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    async def lease_holder(self, name: str, *, now: datetime) -> str | None:
        row = await self._one("SELECT holder FROM leases WHERE name = ? AND expires_at > ?", (name, iso(now)))
        return str(row[0]) if row else None

    # -- issue 20: optional AI reviews ------------------------------------------------------------

    async def cached_ai_review(self, content_hash: str) -> str | None:
        """The result of a finished review of exactly this content, if any (JSON)."""
        row = await self._one("SELECT result FROM ai_reviews WHERE content_hash = ? AND status = 'done'"
                              " ORDER BY id DESC LIMIT 1", (content_hash,))
        return str(row[0]) if row else None

    async def start_ai_review(self, *, community_id: int, member_id: int, question_id: str, kind: str,
                              content_hash: str, now: datetime, since: datetime,
                              member_daily: int, community_daily: int) -> int | None:
        """Record a review request if both daily budgets (rows since `since`) allow it; None when not."""
        async with self.transaction() as db:
            cur = await db.execute(
                "SELECT COUNT(CASE WHEN member_id = ? THEN 1 END), COUNT(*) FROM ai_reviews WHERE community_id = ?"
                " AND created_at >= ?", (member_id, community_id, iso(since)))
            row = await cur.fetchone()
            mine, everyone = (int(row[0]), int(row[1])) if row else (0, 0)
            if mine >= member_daily or everyone >= community_daily:
                return None
            cur = await db.execute(
                "INSERT INTO ai_reviews (community_id, member_id, question_id, kind, content_hash, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'pending', ?) RETURNING id",
                (community_id, member_id, question_id, kind, content_hash, iso(now)))
            return await _returned_id(cur)

    async def finish_ai_review(self, review_id: int, *, result: str | None, note: str | None, now: datetime) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE ai_reviews SET status = ?, result = ?, note = ?, finished_at = ? WHERE id = ?",
                             ("done" if result is not None else "failed", result, note, iso(now), review_id))

    # -- issue 10: data ownership (/settings delete-my-data, `db backup`) ------------------------

    # What an erasure removes (or scrubs), one count per kind; `:m` is the member's id.
    ERASURE_COUNTS: tuple[tuple[str, str], ...] = (
        ("submissions", "SELECT COUNT(*) FROM submissions WHERE member_id = :m AND kind != 'written'"),
        ("written_answers", "SELECT COUNT(*) FROM submissions WHERE member_id = :m AND kind = 'written'"),
        ("votes_received", "SELECT COUNT(*) FROM votes WHERE submission_id IN (SELECT id FROM submissions WHERE member_id = :m)"),
        ("votes_cast", "SELECT COUNT(*) FROM votes WHERE voter_id = :m"),
        ("ledger_rows", "SELECT COUNT(*) FROM points_ledger WHERE member_id = :m"),
        ("points", "SELECT COALESCE(SUM(points), 0) FROM points_ledger WHERE member_id = :m"),
        ("stories", "SELECT COUNT(*) FROM stories WHERE member_id = :m"),
        ("feedback_given", "SELECT COUNT(*) FROM mock_feedback WHERE from_member_id = :m"),
        ("feedback_received", "SELECT COUNT(*) FROM mock_feedback WHERE to_member_id = :m AND from_member_id != :m"),
        ("mock_optin", "SELECT COUNT(*) FROM mock_optins WHERE member_id = :m"),
        ("avoid_entries", "SELECT COUNT(*) FROM mock_avoid WHERE member_id = :m OR avoided_member_id = :m"),
        ("mock_checkins", "SELECT COUNT(*) FROM mock_pair_members WHERE member_id = :m"
                          " AND (checked_in IS NOT NULL OR reported_no_show != 0)"),
        ("timers", "SELECT COUNT(*) FROM timers WHERE member_id = :m"),
        ("study_plans", "SELECT COUNT(*) FROM study_plans WHERE member_id = :m"),
        ("practice_history", "SELECT COUNT(*) FROM practice_shown WHERE member_id = :m"),
        ("messages_pending", "SELECT COUNT(*) FROM outbox WHERE member_id = :m AND sent_at IS NULL AND failed_at IS NULL"),
        ("messages_sent", "SELECT COUNT(*) FROM outbox WHERE member_id = :m AND NOT (sent_at IS NULL AND failed_at IS NULL)"),
        ("grading_jobs", "SELECT COUNT(*) FROM grading_jobs WHERE member_id = :m"),
        ("ai_reviews", "SELECT COUNT(*) FROM ai_reviews WHERE member_id = :m"),
    )
    # Child rows first, so foreign keys hold at every statement.
    ERASURE_STATEMENTS: tuple[str, ...] = (
        "DELETE FROM votes WHERE voter_id = :m OR submission_id IN (SELECT id FROM submissions WHERE member_id = :m)",
        "DELETE FROM points_ledger WHERE member_id = :m",
        "DELETE FROM grading_jobs WHERE member_id = :m",
        "DELETE FROM ai_reviews WHERE member_id = :m",
        "DELETE FROM submissions WHERE member_id = :m",
        "DELETE FROM stories WHERE member_id = :m",
        "DELETE FROM mock_feedback WHERE from_member_id = :m OR to_member_id = :m",
        "DELETE FROM mock_optins WHERE member_id = :m",
        "DELETE FROM mock_avoid WHERE member_id = :m OR avoided_member_id = :m",
        "UPDATE mock_pair_members SET checked_in = NULL, reported_no_show = 0 WHERE member_id = :m",
        "DELETE FROM timers WHERE member_id = :m",
        "DELETE FROM study_plans WHERE member_id = :m",
        "DELETE FROM practice_shown WHERE member_id = :m",
        "DELETE FROM outbox WHERE member_id = :m",
        "UPDATE members SET display_name = :name, timezone = NULL, hide_from_leaderboard = 0, last_seen_at = NULL"
        " WHERE id = :m",
    )

    async def member_data_counts(self, member_id: int) -> dict[str, int]:
        """What erasing the member would remove, per kind (shown before they confirm)."""
        async with self.transaction() as db:
            return await self._erasure_counts(db, member_id)

    async def _erasure_counts(self, db: aiosqlite.Connection, member_id: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key, sql in self.ERASURE_COUNTS:
            async with db.execute(sql, {"m": member_id}) as cur:
                row = await cur.fetchone()
            counts[key] = int(row[0]) if row else 0
        return counts

    async def request_erasure(self, member_id: int, token_hash: str, *, now: datetime, expires_at: datetime) -> None:
        """Record the one pending confirmation of a member (a new request replaces an older one)."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO erasure_requests (member_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (member_id) DO UPDATE SET token_hash = excluded.token_hash,"
                " created_at = excluded.created_at, expires_at = excluded.expires_at, confirmed_at = NULL",
                (member_id, token_hash, iso(now), iso(expires_at)))

    async def erasure_request(self, member_id: int) -> aiosqlite.Row | None:
        return await self._one("SELECT * FROM erasure_requests WHERE member_id = ?", (member_id,))

    async def erase_member(
        self, member_id: int, token_hash: str, *, now: datetime, display_name: str
    ) -> dict[str, int] | None:
        """Erase a member's data and recompute their community's standings from the ledger, in one
        transaction; None (nothing changed) unless `token_hash` is their unexpired pending request."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE erasure_requests SET confirmed_at = ? WHERE member_id = ? AND token_hash = ?"
                " AND expires_at > ? AND confirmed_at IS NULL", (iso(now), member_id, token_hash, iso(now)))
            if cur.rowcount != 1:
                return None
            async with db.execute("SELECT community_id, display_name FROM members WHERE id = ?", (member_id,)) as c:
                member = await c.fetchone()
            assert member is not None
            community_id, old_name = int(member[0]), str(member[1])
            counts = await self._erasure_counts(db, member_id)
            for sql in self.ERASURE_STATEMENTS:
                await db.execute(sql, {"m": member_id, "name": display_name})
            # names in stored pairing reports ("alice (until 2026-12-01)") become the anonymous name
            async with db.execute("SELECT id, report FROM mock_rounds WHERE community_id = ? AND report IS NOT NULL",
                                  (community_id,)) as c:
                reports = list(await c.fetchall())
            for round_id, text in reports:
                report = json.loads(text)
                changed = False
                for key in ("paused", "unplaced"):
                    entries = report.get(key) or []
                    for i, entry in enumerate(entries):
                        if isinstance(entry, str) and (entry == old_name or entry.startswith(old_name + " (")):
                            entries[i] = display_name + entry[len(old_name):]
                            changed = True
                if changed:
                    await db.execute("UPDATE mock_rounds SET report = ? WHERE id = ?", (json.dumps(report), round_id))
            await self.rebuild_standings_in(db, community_id)
            await db.execute("DELETE FROM erasure_requests WHERE member_id = ?", (member_id,))
        return counts

    async def backup_to(self, target: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
        """Copy the database as it is at one instant to `target`, checked before it takes that name.

        SQLite's online backup in a single step reads one snapshot (in WAL mode writers in other
        processes carry on meanwhile); the copy goes to a temp file in the target's folder, is switched
        to a self-contained rollback journal, passes `PRAGMA integrity_check`, is synced, and only
        then is linked (or, with `overwrite`, renamed) into place.
        """
        import os
        import tempfile

        target = Path(target)

        def prepare() -> Path:
            if target.exists() and not overwrite:
                raise FileExistsError(f"{target} exists; pass --force to replace it")
            if target.resolve() == Path(self.path).resolve():
                raise ValueError("the backup cannot replace the database it copies")
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            return Path(tmp_name)

        tmp = await asyncio.to_thread(prepare)
        dst = sqlite3.connect(tmp, check_same_thread=False, isolation_level=None)

        def cleanup() -> None:
            dst.close()
            tmp.unlink(missing_ok=True)

        try:
            await self._db.backup(dst, pages=-1)

            def verify() -> dict[str, Any]:
                dst.execute("PRAGMA journal_mode = DELETE")
                problems = [str(r[0]) for r in dst.execute("PRAGMA integrity_check")]
                if problems != ["ok"]:
                    raise sqlite3.DatabaseError(f"the copy failed PRAGMA integrity_check: {'; '.join(problems[:5])}")
                tables = [str(r[0]) for r in dst.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
                counts = {t: int(dst.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in tables}
                version = int(dst.execute("PRAGMA user_version").fetchone()[0])
                dst.close()
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                if overwrite:
                    os.replace(tmp, target)
                else:
                    os.link(tmp, target)  # fails if the target appeared meanwhile; never overwrites
                    tmp.unlink()
                dir_fd = os.open(target.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
                return {"path": str(target), "bytes": target.stat().st_size, "schema_version": version,
                        "integrity": "ok", "tables": counts}

            return await asyncio.to_thread(verify)
        finally:
            await asyncio.to_thread(cleanup)


STANDINGS_REBUILD_SQL = """
INSERT INTO standings (community_id, period, track, member_id, points, solved, last_at)
WITH ledger AS (SELECT * FROM points_ledger WHERE CAST(:community AS INTEGER) IS NULL OR community_id = :community)
SELECT community_id, period, track, member_id, SUM(points), COUNT(CASE WHEN reason = 'solve' THEN 1 END),
       MAX(created_at)
FROM (
    SELECT community_id, 'all' AS period, '*' AS track, member_id, points, reason, created_at FROM ledger
    UNION ALL
    SELECT community_id, 'all', track, member_id, points, reason, created_at FROM ledger WHERE track IS NOT NULL
    UNION ALL
    SELECT community_id, 'w:' || {week}, '*', member_id, points, reason, created_at
    FROM ledger
    UNION ALL
    SELECT community_id, 'w:' || {week}, track, member_id, points, reason, created_at
    FROM ledger WHERE track IS NOT NULL
    UNION ALL
    SELECT community_id, 'm:' || substr(local_date, 1, 7), '*', member_id, points, reason, created_at
    FROM ledger
    UNION ALL
    SELECT community_id, 'm:' || substr(local_date, 1, 7), track, member_id, points, reason, created_at
    FROM ledger WHERE track IS NOT NULL
) AS periods
GROUP BY community_id, period, track, member_id;
UPDATE standings SET hidden = 1 WHERE (CAST(:community AS INTEGER) IS NULL OR community_id = :community)
    AND member_id IN (SELECT id FROM members WHERE hide_from_leaderboard = 1);
"""

_STANDINGS_SQL = """
SELECT s.member_id AS member_id, m.display_name AS display_name, s.points AS points, s.solved AS solved,
       1 + (SELECT COUNT(*) FROM standings AS o
            WHERE o.community_id = s.community_id AND o.period = s.period AND o.track = s.track
              AND o.hidden = 0 AND o.points > s.points) AS rank
FROM standings AS s JOIN members AS m ON m.id = s.member_id
WHERE s.community_id = ? AND s.period = ? AND s.track = ? AND s.hidden = 0 AND s.points > 0
"""


async def _rebuild_standings_in(db: Any, community_id: int | None, week_sql: str) -> None:
    """Inside a transaction: the standings of one community (None: all) again from the ledger."""
    await db.execute("DELETE FROM standings WHERE CAST(:community AS INTEGER) IS NULL OR community_id = :community",
                     {"community": community_id})
    for statement in split_statements(STANDINGS_REBUILD_SQL.format(week=week_sql)):
        await db.execute(statement, {"community": community_id})


async def _local_date(db: aiosqlite.Connection, community_id: int, now: datetime) -> str:
    """The community-local date a point counts for (weeks and months are the community's own)."""
    async with db.execute("SELECT timezone FROM communities WHERE id = ?", (community_id,)) as cur:
        row = await cur.fetchone()
    zone = ZoneInfo(row[0]) if row else UTC
    return now.astimezone(zone).date().isoformat()


async def _returned_id(cur: Any) -> int:
    """The id an `INSERT ... RETURNING id` gave back (both engines; no `lastrowid`)."""
    rows = list(await cur.fetchall())  # read to the end, so the statement is finished and freed
    await cur.close()
    assert rows, "INSERT ... RETURNING id gave no row"
    return int(rows[0][0])


def _standing(row: aiosqlite.Row) -> Standing:
    return Standing(
        rank=int(row["rank"]),
        member_id=int(row["member_id"]),
        display_name=str(row["display_name"]),
        points=int(row["points"]),
        solved=int(row["solved"]),
    )
