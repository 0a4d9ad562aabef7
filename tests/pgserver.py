"""A real PostgreSQL server on loopback for the contract tests and the benchmarks: initdb + pg_ctl in
a temp dir (as the `postgres` user when we are root: initdb refuses root), or the server named by
ONSITE_TEST_POSTGRES_URL (what .ci/run starts). Every test gets a fresh database copied from a
migrated template, so a test sees exactly what a new deployment sees."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

TEMPLATE = "onsite_template"


class Unavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (and no ONSITE_TEST_POSTGRES_URL)."""


def server_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


class PgServer:
    """One server; `fresh_database()` hands out new databases from a migrated template."""

    def __init__(self, admin_url: str, *, data: Path | None = None, run_as: str | None = None,
                 binaries: Path | None = None) -> None:
        self.admin_url = admin_url
        self._data, self._run_as, self._bin = data, run_as, binaries
        self._names = itertools.count(1)
        self._prefix = f"t{os.getpid()}_"
        self._template_ready = False

    @classmethod
    def start(cls, *, durable: bool = False) -> PgServer:
        """initdb a cluster in a new temp dir and start it on a free loopback port (trust auth; no fsync
        unless `durable`, which the benchmarks ask for: fsync on, commits not waiting for it, which is
        what SQLite's WAL with synchronous=NORMAL promises, so the engines compare at equal durability)."""
        binaries = server_binaries()
        if binaries is None:
            raise Unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
        run_as = None
        if os.geteuid() == 0:
            run_as = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
        base = Path(tempfile.mkdtemp(prefix="onsite-pg-"))  # not under pytest's root-only tmp dirs
        if run_as:
            pw = pwd.getpwnam(run_as)
            os.chown(base, pw.pw_uid, pw.pw_gid)
        data = base / "data"
        port = _free_port()
        _run([str(binaries / "initdb"), "-D", str(data), "--auth=trust", "-U", "onsite", "--encoding=UTF8",
              "--locale=C.UTF-8", "--no-sync"], run_as)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c max_connections=200 -c synchronous_commit=off"
        if not durable:
            options += " -c fsync=off -c full_page_writes=off"
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "-t", "60",
              "start"], run_as)
        return cls(f"postgresql://onsite@127.0.0.1:{port}/postgres", data=data, run_as=run_as, binaries=binaries)

    def stop(self) -> None:
        if self._data is not None and self._bin is not None:
            _run([str(self._bin / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w", "stop"], self._run_as)
            shutil.rmtree(self._data.parent, ignore_errors=True)

    async def _admin(self, *statements: str) -> None:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True)
        try:
            for sql in statements:
                await conn.execute(sql)  # type: ignore[arg-type]
        finally:
            await conn.close()

    async def fresh_database(self) -> str:
        """The URL of a new, migrated database nobody else uses."""
        if not self._template_ready:
            from bot.store.postgres import PostgresStore

            await self._admin(f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
            store = await PostgresStore.open(_with_db(self.admin_url, TEMPLATE))
            await store.close()
            self._template_ready = True
        name = f"{self._prefix}{next(self._names)}"
        await self._admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return _with_db(self.admin_url, name)

    async def empty_database(self) -> str:
        """The URL of a new database with no tables at all (for migration and convert tests)."""
        name = f"{self._prefix}{next(self._names)}"
        await self._admin(f"CREATE DATABASE {name}")
        return _with_db(self.admin_url, name)

    async def drop_databases(self) -> None:
        """Drop what this process created (on a shared server such as the one .ci/run starts)."""
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True)
        try:
            cur = await conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (self._prefix + "%",))
            names = [r[0] for r in await cur.fetchall()]
            for name in [*names, TEMPLATE] if self._template_ready else names:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
        finally:
            await conn.close()


def for_tests() -> PgServer:
    """The server the test run uses: ONSITE_TEST_POSTGRES_URL when set, else one of its own."""
    url = os.environ.get("ONSITE_TEST_POSTGRES_URL")
    if url:
        return PgServer(url)
    return PgServer.start()


def close_for_tests(server: PgServer) -> None:
    if server._data is None:
        asyncio.run(server.drop_databases())
    server.stop()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], user: str | None) -> None:
    done = subprocess.run(cmd, user=user, capture_output=True, text=True, cwd="/", timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")
