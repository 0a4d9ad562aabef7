"""Persistence: raw parameterised SQL, numbered migrations per dialect, two engines.

SQLite (bot/store/sqlite.py) is the embedded default; PostgreSQL (bot/store/postgres.py, the
`postgres` extra) runs the same queries when a URL names it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.store.sqlite import Store


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


async def open_store(target: str | Path, *, migrate: bool = True) -> Store:
    """The store at `target`: a postgresql:// URL, a sqlite:///FILE URL, or a path to an SQLite file."""
    text = str(target)
    if is_postgres_url(text):
        from bot.store.postgres import PostgresStore

        return await PostgresStore.open(text, migrate=migrate)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]  # sqlite:///rel.db, sqlite:////abs/path.db (as SQLAlchemy writes them)
    elif "://" in text:
        raise ValueError(f"unknown database URL scheme in {text.split('://', 1)[0]!r}: use postgresql://... "
                         "or sqlite:///path/to/file.db")
    return await Store.open(text, migrate=migrate)


def database_errors() -> tuple[type[Exception], ...]:
    """What either engine raises for a database problem (psycopg only when it is installed)."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)
