"""The PostgreSQL store: the same `Store`, its queries run through psycopg 3 and a connection pool.

Selected by `ONSITE_DATABASE_URL=postgresql://...` (bot/store/__init__.py `open_store`); installed with
the `postgres` extra. Decisions:
- The queries are the SQLite store's, written once (`?` and `:name` parameters); `_translate`
  rewrites the parameter marks for psycopg outside string literals, so there is one copy of every
  query and the contract suite (tests/store) proves both engines give the same answers.
- A write transaction is `BEGIN` plus `pg_advisory_xact_lock(WRITE_LOCK)`: one writer at a time
  across every process on the database, which is what SQLite's `BEGIN IMMEDIATE` guarantees and
  what the read-then-write transactions (one answer per question, solve positions) rely on. Reads
  run on autocommit connections and never wait for it.
- Migrations are `migrations/postgres/NNNN_name.sql`; a database starts from the newest
  `NNNN_baseline.sql`, and each applied file is a row in `schema_migrations`, so both engines report
  the same schema version.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError(
        "ONSITE_DATABASE_URL names a PostgreSQL database, but psycopg is not installed: "
        "pip install 'onsite[postgres]' (or the locked requirements.txt)") from exc

from bot.store.sqlite import GRADED_CHANNEL, Migration, MigrationError, Store, load_migrations

WRITE_LOCK = 0x0_5173  # the advisory lock key every write transaction of Onsite takes ("ONSITE")
_PARAM = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|(?<![:\w]):([A-Za-z_]\w*)|\?|%")


log = logging.getLogger("onsite")


@lru_cache(maxsize=2048)
def _translate(sql: str) -> str:
    """SQLite parameter style to psycopg's: `?` -> `%s`, `:name` -> `%(name)s`, `%` -> `%%`;
    string literals and quoted names are left as they are (apart from doubling `%`)."""

    def swap(m: re.Match[str]) -> str:
        text = m.group(0)
        if text[0] in "'\"":
            return text.replace("%", "%%")
        if text == "?":
            return "%s"
        if text == "%":
            return "%%"
        return f"%({m.group(1)})s"

    return _PARAM.sub(swap, sql)


def _params(params: Sequence[Any] | Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
    """Flags are INTEGER 0/1 columns on both engines: psycopg would send a bool as boolean."""
    if isinstance(params, Mapping):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return [int(v) if isinstance(v, bool) else v for v in params]


class Row(tuple):
    """A result row read by position or by column name, like `sqlite3.Row`."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    index = {c.name: i for i, c in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> Row:
        row = Row(values)
        row._index = index
        return row

    return make


class _Execution:
    """What `Connection.execute` returns: awaited it is the cursor; `async with` closes it after."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], sql: str, params: Any) -> None:
        self._run = self._start(conn, sql, params)
        self._cursor: psycopg.AsyncCursor[Any] | None = None

    @staticmethod
    async def _start(conn: psycopg.AsyncConnection[Any], sql: str, params: Any) -> psycopg.AsyncCursor[Any]:
        if params:
            return await conn.execute(_translate(sql), _params(params))
        return await conn.execute(sql)  # no parameters: `%` is not special

    def __await__(self) -> Any:
        return self._run.__await__()

    async def __aenter__(self) -> psycopg.AsyncCursor[Any]:
        self._cursor = await self._run
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class Connection:
    """The part of aiosqlite's connection the store uses (`execute`), over one psycopg connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> _Execution:
        return _Execution(self.raw, sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.raw.cursor() as cur:
            await cur.executemany(_translate(sql), [_params(r) for r in rows])


def mask_url(url: str) -> str:
    """The URL with its password replaced, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def load_postgres_migrations() -> list[Migration]:
    root = resources.files("bot.store") / "migrations" / "postgres"
    return load_migrations(entries=[(e.name, e.read_text(encoding="utf-8"))
                                    for e in root.iterdir() if e.name.endswith(".sql")])


class PostgresStore(Store):
    """The store on PostgreSQL. Create with `await PostgresStore.open(url)`."""

    WEEK_SQL = "to_char(date_trunc('week', CAST(local_date AS date)), 'YYYY-MM-DD')"
    IntegrityError: ClassVar[type[Exception]] = psycopg.IntegrityError
    ENGINE: ClassVar[str] = "postgres"

    def __init__(self, pool: AsyncConnectionPool[Any], url: str) -> None:
        super().__init__(None, mask_url(url))  # type: ignore[arg-type]
        self._pool = pool
        self.url = url
        self._graded: dict[str, asyncio.Event] = {}  # job id -> set when its NOTIFY arrives
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True, max_size: int = 10) -> PostgresStore:
        """Connect a pool to the database at URL `path` and migrate it."""
        url = str(path)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url, min_size=1, max_size=max_size, open=False, name="onsite",
            kwargs={"autocommit": True, "row_factory": _row_factory})
        try:
            await pool.open(wait=True, timeout=15)
        except Exception as exc:
            await pool.close()
            raise ConnectionError(f"cannot connect to the database at {mask_url(url)}: {exc}") from exc
        store = cls(pool, url)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await pool.close()
                raise
        return store

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._pool.close()

    async def _notify_in(self, db: Any, channel: str, payload: str) -> None:
        await db.execute("SELECT pg_notify(?, ?)", (channel, payload))

    async def wait_graded(self, job_id: int, timeout_s: float) -> None:
        """Woken by the worker's NOTIFY on one LISTEN connection this store shares among its waiters;
        the caller also looks again after `timeout_s`, so a lost notification only delays."""
        if self._listener is None or self._listener.done():
            ready = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(ready), name="onsite-listen")
            waiting = asyncio.create_task(ready.wait())
            await asyncio.wait([waiting, self._listener], timeout=5, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
        event = self._graded.setdefault(str(job_id), asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            self._graded.pop(str(job_id), None)

    async def _listen(self, ready: asyncio.Event) -> None:
        try:
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {GRADED_CHANNEL}")
                ready.set()
                async for note in conn.notifies():
                    if (event := self._graded.get(note.payload)) is not None:
                        event.set()
        except psycopg.Error as exc:  # waiters fall back to looking every timeout; the next wait reconnects
            log.warning("LISTEN %s stopped: %s", GRADED_CHANNEL, exc)

    @property
    def files_dir(self) -> Path | None:
        return None

    async def reopen(self) -> PostgresStore:
        return await type(self).open(self.url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:  # type: ignore[override]
        """A short write transaction, the only writer on the whole database while it runs."""
        async with self._write_lock, self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield Connection(conn)

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        async with self._pool.connection() as conn, _Execution(conn, sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._pool.connection() as conn, _Execution(conn, sql, params) as cur:
            return list(await cur.fetchall())

    async def optimize(self) -> None:
        """After a bulk load: VACUUM ANALYZE, outside any transaction. Until autovacuum comes by, a freshly
        loaded table has no visibility map, so the leaderboard's counts read the heap instead of the
        index: 544 ms against 15 ms on SQLite for a week of 2,000,000 ledger rows (bench/README.md)."""
        async with self._pool.connection() as conn:
            await conn.execute("VACUUM ANALYZE")

    async def standings_trigger_off(self, db: Any) -> str:
        await db.execute("ALTER TABLE points_ledger DISABLE TRIGGER points_to_standings")
        return "ALTER TABLE points_ledger ENABLE TRIGGER points_to_standings"

    async def standings_trigger_on(self, db: Any, restore: str) -> None:
        await db.execute(restore)

    async def after_bulk_copy(self, db: Any, tables: Sequence[str]) -> None:
        """Move each identity past the ids copied in, so the next insert does not collide."""
        for table in tables:
            await db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false)"
                             f" FROM {table}")

    async def tables(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in await self._all("SELECT table_name, column_name FROM information_schema.columns"
                                 " WHERE table_schema = current_schema() AND table_name != 'schema_migrations'"
                                 " ORDER BY table_name, ordinal_position"):
            out.setdefault(str(r[0]), []).append(str(r[1]))
        return out

    async def schema_version(self) -> int:
        row = await self._one("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not row or not row[0]:
            return 0
        row = await self._one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(row[0]) if row else 0

    async def migrate(self, migrations: Sequence[Migration] | None = None) -> list[str]:
        """Apply pending migrations in one transaction (a new database from the newest baseline)."""
        migrations = list(migrations) if migrations is not None else load_postgres_migrations()
        latest = migrations[-1].number if migrations else 0
        applied: list[str] = []
        async with self.transaction() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                             " name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (now()::text))")
            async with db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
                row = await cur.fetchone()
            current = int(row[0]) if row else 0
            if current > latest:
                raise MigrationError(
                    f"database {self.path} is at schema version {current}, newer than this code "
                    f"({latest}); upgrade Onsite instead of downgrading the database")
            pending = [m for m in migrations if m.number > current]
            if current == 0:
                baselines = [i for i, m in enumerate(pending) if m.name.endswith("_baseline.sql")]
                pending = pending[baselines[-1]:] if baselines else pending
            elif pending and pending[0].name.endswith("_baseline.sql"):
                raise MigrationError(f"database {self.path} is at schema {current}, before the baseline "
                                     f"{pending[0].name}: convert it from SQLite with `db convert` instead")
            for m in pending:
                await db.raw.execute(m.sql.encode())  # a whole script, PL/pgSQL bodies and all
                await db.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (m.number, m.name))
                applied.append(m.name)
        return applied

    async def backup_to(self, target: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
        raise MigrationError("a PostgreSQL database is backed up with pg_dump (or copied to a SQLite file with "
                             "`python -m bot db convert --from URL --to sqlite:///FILE`)")


async def wait_for(url: str, timeout_s: float = 30.0) -> None:
    """Wait until the server at `url` accepts connections (for scripts that have just started it)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, connect_timeout=2)
        except psycopg.OperationalError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
        else:
            await conn.close()
            return
