"""Command line: console | discord | slack | questions validate|stats | db migrate|backup."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.config import Settings, load_settings
from bot.core import failpoints
from bot.core.bank import Bank
from bot.core.bank_stats import report_lines
from bot.core.errors import ConfigError
from bot.core.models import DIFFICULTIES, TRACKS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Onsite: practice for ML interview loops.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    console = sub.add_parser("console", help="run a local community in the terminal (no tokens needed)")
    console.add_argument("--db", type=Path, help="SQLite file (default: ONSITE_DB or the user data directory)")
    console.add_argument("--as", dest="name", metavar="NAME", help="your name in the local community; you are its admin for this run only")
    console.add_argument("--json", action="store_true", help="print every message as one JSON object per line")

    discord = sub.add_parser("discord", help="run on Discord (needs DISCORD_TOKEN)")
    discord.add_argument("--sync", action="store_true",
                         help="register the slash commands with Discord at start even if they have not changed")
    slack = sub.add_parser("slack", help="run on Slack (SLACK_BOT_TOKEN and SLACK_APP_TOKEN, or the OAuth "
                                         "install flow with --http: see README)")
    slack.add_argument("--http", type=int, metavar="PORT", help="HTTP mode on PORT instead of Socket Mode")

    questions = sub.add_parser("questions", help="check or count the question bank")
    qsub = questions.add_subparsers(dest="action", required=True, metavar="ACTION")
    validate = qsub.add_parser("validate", help="check every question file; exit 1 on any error")
    validate.add_argument("dir", nargs="?", type=Path, help="a folder laid out <track>/<id>.yaml (default: the bank)")
    stats = qsub.add_parser("stats", help="count questions per track and difficulty")
    stats.add_argument("dir", nargs="?", type=Path)

    db = sub.add_parser("db", help="database maintenance")
    dsub = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    migrate = dsub.add_parser("migrate", help="apply pending migrations (safe to run twice)")
    migrate.add_argument("--db", type=Path)
    backup = dsub.add_parser("backup", help="copy the database while the bot runs (SQLite online backup), checked")
    backup.add_argument("path", type=Path, help="the file to write (refused if it exists, unless --force)")
    backup.add_argument("--db", type=Path, help="the database to copy (default: ONSITE_DB or the user data directory)")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    convert = dsub.add_parser("convert", help="copy the whole history into a new, empty database on another "
                                              "engine (SQLite <-> PostgreSQL), checked")
    convert.add_argument("--from", dest="source", required=True, metavar="URL",
                         help="postgresql://... or sqlite:///FILE (or a path to an SQLite file)")
    convert.add_argument("--to", dest="target", required=True, metavar="URL", help="an empty database, same forms")
    dsub.add_parser("rebuild-standings", help="recompute every standing from the append-only points ledger")
    return parser


def cmd_validate(folder: Path) -> int:
    bank = Bank.load(folder)
    for problem in bank.errors:
        print(problem)
    files = len(bank) + len({e.file for e in bank.errors})
    if bank.errors:
        print(f"{len(bank.errors)} error(s) in {len({e.file for e in bank.errors})} of {files} file(s) under {folder}")
        return 1
    print(f"ok: {len(bank)} question(s) under {folder} are valid")
    return 0


def cmd_stats(folder: Path) -> int:
    bank = Bank.load(folder)
    counts = bank.stats()
    header = f"{'track':<15}" + "".join(f"{d:>8}" for d in DIFFICULTIES) + f"{'total':>8}"
    print(header)
    for track in TRACKS:
        row = counts[track]
        print(f"{track:<15}" + "".join(f"{row[d]:>8}" for d in DIFFICULTIES) + f"{sum(row.values()):>8}")
    print(f"{'all':<15}" + "".join(f"{sum(c[d] for c in counts.values()):>8}" for d in DIFFICULTIES) + f"{len(bank):>8}")
    for line in report_lines(bank):  # answer tells of the choice questions (bot/core/bank_stats.py)
        print(line)
    if bank.errors:
        print(f"({len(bank.errors)} file(s) skipped with errors; run `python -m bot questions validate`)")
    return 0


def _database(settings: Settings) -> str | Path:
    return settings.database_url.reveal() if settings.database_url else settings.database


async def cmd_migrate(settings: Settings) -> int:
    from bot.store import open_store

    store = await open_store(_database(settings), migrate=False)
    try:
        before = await store.schema_version()
        applied = await store.migrate()
        after = await store.schema_version()
    finally:
        await store.close()
    if applied:
        print(f"{store.path}: schema {before} -> {after} ({', '.join(applied)})")
    else:
        print(f"{store.path}: already at schema {after}, nothing to do")
    return 0


async def cmd_rebuild_standings(settings: Settings) -> int:
    from bot.store import open_store

    store = await open_store(_database(settings))
    try:
        await store.rebuild_standings()
    finally:
        await store.close()
    print(f"{store.path}: standings recomputed from the points ledger")
    return 0


async def cmd_convert(source: str, target: str) -> int:
    from bot.store import database_errors
    from bot.store.convert import ConvertError, convert_urls

    def progress(table: str, rows: int) -> None:
        print(f"  {table:<20} {rows:>9} rows", flush=True)

    print("copying (one transaction on the target; nothing stays there unless every check passes):")
    refused: tuple[type[Exception], ...] = (ConvertError, ValueError, ConnectionError, *database_errors())
    try:
        report = await convert_urls(source, target, progress=progress)
    except refused as exc:
        print(f"error: convert refused: {exc}", file=sys.stderr)
        return 1
    tables = report["tables"]
    print(f"ok: schema {report['schema_version']}, {sum(tables.values())} rows in {len(tables)} tables; "
          f"row counts equal, standings recomputed from the copied ledger equal the source's")
    return 0


def cmd_backup(settings: Settings, target: Path, *, force: bool) -> int:
    """Copy the live database to `target` at one instant and print what the copy holds."""
    source = settings.database
    if not source.is_file():  # never create an empty database just to copy it
        print(f"error: no database at {source} (set --db or ONSITE_DB)", file=sys.stderr)
        return 1
    if target.exists() and not force:
        print(f"error: {target} exists; pass --force to replace it", file=sys.stderr)
        return 1
    if not target.parent.is_dir():
        print(f"error: folder {target.parent} does not exist", file=sys.stderr)
        return 1
    try:
        report = asyncio.run(_backup(source, target, force=force))
    except (OSError, ValueError, sqlite3.Error) as exc:
        print(f"error: backup failed: {exc}", file=sys.stderr)
        return 1
    tables = report["tables"]
    print(f"backup of {source} -> {report['path']}")
    print(f"size: {report['bytes']} bytes; schema version {report['schema_version']}; integrity_check: ok")
    print(f"{len(tables)} tables, {sum(tables.values())} rows:")
    for name, rows in tables.items():
        print(f"  {name:<20} {rows:>9}")
    return 0


async def _backup(source: Path, target: Path, *, force: bool) -> dict[str, Any]:
    from bot.store.sqlite import Store

    store = await Store.open(source, migrate=False)
    try:
        return await store.backup_to(target, overwrite=force)
    finally:
        await store.close()


def cmd_console(settings: Settings, name: str | None, as_json: bool) -> int:
    from bot.adapters.console import console_main

    return console_main(settings, name=name, as_json=as_json)  # the prompt needs the main thread (Ctrl-C)


QUIET_LOGGERS = ("aiosqlite", "psycopg", "psycopg.pool")  # each statement with its parameters at DEBUG


def configure_logging(level: str) -> None:
    """Log to stderr at `level`; the database drivers never below INFO, since at DEBUG they log every
    statement's parameters: members' code and answers, and the Slack tokens the OAuth flow stores."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "db", None) is not None:
        settings = Settings(**{**settings.__dict__, "database": args.db})
    failpoints.arm(settings.failpoints)
    configure_logging(settings.log_level if args.command != "console" else "WARNING")
    try:
        if args.command == "questions":
            folder = args.dir or settings.questions_dir
            return cmd_validate(folder) if args.action == "validate" else cmd_stats(folder)
        if args.command == "db" and args.action == "backup":
            return cmd_backup(settings, args.path, force=args.force)
        if args.command == "db" and args.action == "convert":
            return asyncio.run(cmd_convert(args.source, args.target))
        if args.command == "db" and args.action == "rebuild-standings":
            return asyncio.run(cmd_rebuild_standings(settings))
        if args.command == "db":
            return asyncio.run(cmd_migrate(settings))
        if args.command == "console":
            return cmd_console(settings, args.name, args.json)
        if args.command == "discord":
            settings.require("discord_token")
            from bot.adapters.discord_app import run_discord
            from bot.app import refuse_weak_judge

            refuse_weak_judge(settings)
            return asyncio.run(run_discord(settings, sync=args.sync))
        if args.command == "slack":
            from bot.adapters.slack_app import check_slack_settings, run_slack
            from bot.app import refuse_weak_judge

            check_slack_settings(settings, http=args.http is not None)  # one token, or the OAuth flow

            refuse_weak_judge(settings)
            return asyncio.run(run_slack(settings, http_port=args.http))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
