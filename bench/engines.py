"""The two store engines side by side in one benchmark run (issue 19 item 6).

`--postgres URL` runs a benchmark on SQLite and then on PostgreSQL (a fresh database made on the
server at URL, which must let its user CREATE DATABASE), and prints the PostgreSQL / SQLite ratio
measured in the same run. `--postgres start` starts a throwaway server for the run (initdb in a
temp dir, as tests/pgserver.py does for the tests), durable like a real one: fsync on, commits not
waiting for it, which is what SQLite's WAL with synchronous=NORMAL promises.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager

from tests.pgserver import PgServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--postgres", metavar="URL|start", default=os.environ.get("ONSITE_BENCH_POSTGRES_URL"),
                        help="also run on PostgreSQL: a server URL, or 'start' for a throwaway server")


@contextmanager
def postgres(arg: str | None) -> Iterator[PgServer | None]:
    """The server the benchmark's PostgreSQL run uses, or None for SQLite only."""
    if not arg:
        yield None
        return
    server = PgServer.start(durable=True) if arg == "start" else PgServer(arg)
    try:
        yield server
    finally:
        if arg == "start":
            server.stop()
        else:
            asyncio.run(server.drop_databases())


def ratio_line(what: str, sqlite_value: float, postgres_value: float, unit: str) -> str:
    return (f"{what}: SQLite {sqlite_value:.1f} {unit}, PostgreSQL {postgres_value:.1f} {unit}; "
            f"PostgreSQL / SQLite = {postgres_value / sqlite_value:.2f}")
