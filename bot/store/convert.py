"""`python -m bot db convert --from URL --to URL`: the whole history, every community, between engines.

The copy is one transaction on the target, checked before it commits: the target must be empty,
both sides must be at the same schema version, every table must have as many rows on both sides,
and the standings, recomputed on the target from the copied ledger, must equal the source's.
Anything else rolls it all back.

The ledger is copied with the target's standings trigger switched off (inside the transaction), and
the standings are then built in one statement: row by row, the trigger's six upserts per ledger row
took over 25 minutes for a ledger of 2,000,000 rows on PostgreSQL (bench/README.md). That the
trigger and the recomputation agree is what the store's contract tests check on both engines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.store.sqlite import Store

# Parents before children, so every foreign key holds at every insert. `standings` is not copied: it
# is recomputed from `points_ledger` on the target (which is how the check below can mean something).
COPY_ORDER: tuple[str, ...] = (
    "communities", "members", "daily_posts", "submissions", "points_ledger", "votes",
    "mock_optins", "mock_avoid", "mock_rounds", "mock_pairs", "mock_pair_members", "mock_feedback",
    "outbox", "study_plans", "practice_shown", "timers", "stories", "grading_jobs", "erasure_requests",
    "ai_reviews", "leases", "slack_installations", "slack_bots", "slack_workspaces", "slack_oauth_states",
    "discord_state",
)
DERIVED = frozenset({"standings"})
BATCH = 2000


class ConvertError(RuntimeError):
    """The copy was refused or failed a check; the target is as it was."""


class _Rollback(Exception):
    def __init__(self, problem: str) -> None:
        self.problem = problem


async def _standings(store: Store, db: Any = None) -> list[tuple[Any, ...]]:
    sql = ("SELECT community_id, period, track, member_id, points, solved, last_at, hidden FROM standings"
           " ORDER BY community_id, period, track, member_id")
    if db is None:
        return [tuple(r) for r in await store._all(sql)]
    async with db.execute(sql) as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def convert(source: Store, target: Store, *, progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Copy everything in `source` into the empty `target`; returns the row counts per table."""
    version, target_version = await source.schema_version(), await target.schema_version()
    if version != target_version:
        raise ConvertError(f"the source is at schema {version} and the target at {target_version}: "
                           "run `python -m bot db migrate` on the older one first")
    tables, target_tables = await source.tables(), await target.tables()
    unknown = sorted(set(tables) - set(COPY_ORDER) - DERIVED)
    if unknown:
        raise ConvertError(f"this version of Onsite does not know how to copy the tables {', '.join(unknown)}")
    for table in COPY_ORDER:
        if sorted(tables.get(table, [])) != sorted(target_tables.get(table, [])):
            raise ConvertError(f"table {table} has different columns on the two sides")
    held = {t: n for t, n in (await target.table_counts(target_tables)).items() if n}
    if held:
        raise ConvertError("the target is not empty (" + ", ".join(f"{t}: {n} rows" for t, n in sorted(held.items()))
                           + "); convert into a new, empty database")
    counts = dict(await source.table_counts(COPY_ORDER))
    source_standings = await _standings(source)
    try:
        async with target.transaction() as db:
            restore = await target.standings_trigger_off(db)
            for table in COPY_ORDER:
                columns = tables[table]
                await _copy_table(source, db, table, columns)
                if progress:
                    progress(table, counts[table])
            await target.standings_trigger_on(db, restore)
            copied = {}
            for table in COPY_ORDER:
                async with db.execute(f"SELECT COUNT(*) FROM {table}") as cur:
                    row = await cur.fetchone()
                copied[table] = int(row[0]) if row else 0
            if copied != counts:
                bad = [f"{t}: {counts[t]} -> {copied[t]}" for t in COPY_ORDER if copied[t] != counts[t]]
                raise _Rollback("row counts differ after the copy (" + ", ".join(bad) + ")")
            await target.rebuild_standings_in(db, None)
            built = await _standings(target, db)
            if built != source_standings:
                raise _Rollback(f"the standings recomputed from the copied ledger ({len(built)} rows) differ from "
                                f"the source's ({len(source_standings)} rows): the source's standings are stale; "
                                "run the copy again after `python -m bot db rebuild-standings` on the source")
            await target.after_bulk_copy(db, [t for t in COPY_ORDER if "id" in tables[t]])
    except _Rollback as failed:
        raise ConvertError(failed.problem + "; nothing was written to the target") from None
    await target.optimize()  # fresh planner statistics (and, on PostgreSQL, the visibility map) for the copy
    counts["standings"] = len(source_standings)
    return {"schema_version": version, "tables": counts}


async def _copy_table(source: Store, db: Any, table: str, columns: list[str]) -> None:
    names = ", ".join(columns)
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
    if "id" in columns:  # keyset pages: memory stays flat on a ledger of millions of rows
        last = None
        while True:
            rows = await source._all(
                f"SELECT {names} FROM {table}" + (" WHERE id > ?" if last is not None else "")
                + f" ORDER BY id LIMIT {BATCH}", (last,) if last is not None else ())
            if not rows:
                return
            await db.executemany(insert, [tuple(r) for r in rows])
            last = rows[-1][columns.index("id")]
    else:
        rows = await source._all(f"SELECT {names} FROM {table}")
        if rows:
            await db.executemany(insert, [tuple(r) for r in rows])


async def convert_urls(source_url: str, target_url: str,
                       *, progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """`db convert`: open both sides (the target is checked empty before anything is written to it,
    even its schema), copy, check, close."""
    from bot.store import open_store

    if source_url == target_url:
        raise ConvertError("--from and --to name the same database")
    source = await open_store(source_url, migrate=False)
    try:
        if await source.schema_version() == 0:
            raise ConvertError(f"{source.path} holds no Onsite database")
        target = await open_store(target_url, migrate=False)
        try:
            if await target.schema_version() > 0 or await target.tables():
                held = {t: n for t, n in (await target.table_counts(await target.tables())).items() if n}
                if held:
                    raise ConvertError("the target is not empty (" + ", ".join(
                        f"{t}: {n} rows" for t, n in sorted(held.items())) + "); convert into a new, empty database")
            await target.migrate()
            return await convert(source, target, progress=progress)
        finally:
            await target.close()
    finally:
        await source.close()
