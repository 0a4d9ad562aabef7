"""/settings delete-my-data: confirmation bound to the member and expiring, one transaction that
removes every personal row (checked table by table against the schema), standings rebuilt from
the ledger, other members untouched; through the core and through the console as a process."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core import privacy
from bot.core.clock import FixedClock
from bot.core.commands import Context, core_table, dispatch_line
from bot.core.messages import Message
from bot.core.models import Caller
from bot.core.services import Services
from bot.store.sqlite import Store
from tests.conftest import FIXTURE_BANK, REPO

# Every column that points at a member, and what an erasure does with it. A table added later with
# a member column fails `test_every_member_column_of_the_schema_is_handled` until it is listed here
# (and handled in Store.erase_member, which the big test then checks row by row).
DELETE, SCRUB = "delete", "scrub"
MEMBER_COLUMNS: dict[tuple[str, str], str] = {
    ("submissions", "member_id"): DELETE,
    ("points_ledger", "member_id"): DELETE,
    ("mock_optins", "member_id"): DELETE,
    ("mock_avoid", "member_id"): DELETE,
    ("mock_avoid", "avoided_member_id"): DELETE,
    ("mock_pair_members", "member_id"): SCRUB,  # kept for the partners' history; check-in marks cleared
    ("mock_feedback", "from_member_id"): DELETE,
    ("mock_feedback", "to_member_id"): DELETE,
    ("outbox", "member_id"): DELETE,
    ("votes", "voter_id"): DELETE,
    ("standings", "member_id"): DELETE,
    ("study_plans", "member_id"): DELETE,
    ("practice_shown", "member_id"): DELETE,
    ("timers", "member_id"): DELETE,
    ("stories", "member_id"): DELETE,
    ("grading_jobs", "member_id"): DELETE,
    ("ai_reviews", "member_id"): DELETE,
    ("erasure_requests", "member_id"): DELETE,
}


def schema_member_columns(path: str) -> set[tuple[str, str]]:
    """Columns with a foreign key to members, or named like one (member_id, *_member_id, voter_id)."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                           " AND name NOT LIKE 'sqlite_%'")]
        found: set[tuple[str, str]] = set()
        for table in tables:
            for fk in db.execute(f"PRAGMA foreign_key_list({table})"):
                if fk[2] == "members":
                    found.add((table, fk[3]))
            for col in db.execute(f"PRAGMA table_info({table})"):
                name = col[1]
                if name == "member_id" or name.endswith("_member_id") or name in ("voter_id", "author_id"):
                    found.add((table, name))
        return found
    finally:
        db.close()


@pytest.mark.sqlite_only  # reads the foreign keys of the SQLite file; the PostgreSQL baseline has the same columns
async def test_every_member_column_of_the_schema_is_handled(store: Store) -> None:
    assert schema_member_columns(store.path) == set(MEMBER_COLUMNS)


# -- a community with something in every table -----------------------------------------------------


async def run(services: Services, caller: Caller, line: str) -> Message:
    return await dispatch_line(Context(services, caller, core_table()), line)


async def ok(services: Services, caller: Caller, line: str) -> Message:
    reply = await run(services, caller, line)
    assert not reply.is_error, (line, reply.plain_text())
    return reply


WRITTEN = ("Situation: two teams disagreed about the launch metric for a ranking model. Action: I wrote down both "
           "proposals, ran an offline comparison and met each lead to agree on a decision rule before the data came "
           "in. Result: we shipped on time with one metric and both teams signed off.")


async def populate(wired: Services, store: Store, admin: Caller, clock: FixedClock) -> dict[str, Caller]:
    """Bob (to be erased), Carol and Dan, each with rows in every member table, and rows between them."""
    people: dict[str, Caller] = {}
    for name in ("Bob", "Carol", "Dan"):
        m = await store.ensure_member(admin.community.id, f"u-{name.lower()}", name, now=clock.now(),
                                      timezone="Europe/Berlin")
        people[name] = Caller(m, admin.community)
    reference = wired.bank.get("pair-sum-count").reference
    assert reference
    for name, caller in people.items():
        await ok(wired, caller, "/submit overfit-first-step B")
        await ok(wired, caller, "/submit precision-from-counts 0.5")
        await ok(wired, caller, f"/submit pair-sum-count {reference}")  # graded: a grading job and points
        await ok(wired, caller, f"/submit conflict-lite Written answer by {name}. " + WRITTEN)
        await ok(wired, caller, f"/story add failure Story of {name} | situation | task | action | result")
        await ok(wired, caller, "/practice")
        await ok(wired, caller, "/timed feed-ranking-lite")
        await ok(wired, caller, "/plan start 4")
    # votes both ways between Bob and Carol, and Dan for both (with the author's point, as /vote gives)
    answers = {int(r["member_id"]): int(r["id"]) for r in await store.written_answers(admin.community.id, "conflict-lite")}
    for voter, author in (("Bob", "Carol"), ("Carol", "Bob"), ("Dan", "Bob"), ("Dan", "Carol")):
        sub = answers[people[author].member.id]
        assert await store.add_vote(sub, people[voter].member.id, now=clock.now())
        await store.add_points(community_id=admin.community.id, member_id=people[author].member.id, points=1,
                               reason="vote", track="behavioral", question_id="conflict-lite", now=clock.now(),
                               dedupe_key=f"vote:{sub}:{people[voter].member.id}")
    # mocks: Bob and Carol paired, check-ins, feedback both ways; avoid lists naming Bob and by Bob
    for name in ("Bob", "Carol"):
        await ok(wired, people[name], "/mock join coding mid Europe/Berlin weekdays 18-21")
    await ok(wired, people["Dan"], "/mock join coding mid Europe/Berlin weekdays 18-21")
    await ok(wired, people["Dan"], "/mock pause 2")
    await ok(wired, people["Dan"], "/mock avoid Bob")
    await ok(wired, people["Bob"], "/mock avoid Dan")
    await ok(wired, people["Carol"], "/mock avoid Dan")
    report = await ok(wired, admin, "/admin pair-now")
    assert "2 member(s) in 1 group(s)" in report.plain_text()
    await ok(wired, people["Bob"], "/mock checkin met")
    await ok(wired, people["Carol"], "/mock checkin no-show")
    await ok(wired, people["Bob"], "/mock feedback Carol 4,3,5,4 Clear structure")
    await ok(wired, people["Carol"], "/mock feedback Bob 3,3,4,4 Good depth")
    # a stored pairing report that names Bob (as a pause would)
    async with store.transaction() as db:
        for round_id, text in list(await (await db.execute("SELECT id, report FROM mock_rounds")).fetchall()):
            report = {**json.loads(text), "paused": ["Bob (until 2026-12-07)", "Dan (until 2026-12-07)"]}
            await db.execute("UPDATE mock_rounds SET report = ? WHERE id = ?", (json.dumps(report), round_id))
    await wired.outbox.deliver()  # some DMs go out (sent rows); reminders and check-ins stay pending
    for caller in people.values():  # an AI review request each (bot/core/review.py)
        assert await store.start_ai_review(community_id=admin.community.id, member_id=caller.member.id,
                                           question_id="feed-ranking-lite", kind="written",
                                           content_hash=f"h-{caller.member.id}", now=clock.now(),
                                           since=clock.now(), member_daily=5, community_daily=50)
    return people


async def table_rows(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, on either engine."""
    out = {}
    for table, columns in (await store.tables()).items():
        rows = [dict(zip(columns, r, strict=True)) for r in await store._all(f"SELECT * FROM {table}")]
        out[table] = sorted(rows, key=lambda r: json.dumps(r))
    return out


async def count(store: Store, sql: str, *params: Any) -> int:
    row = await store._one(sql, params)
    return int(row[0]) if row else 0


def not_about(rows: dict[str, list[dict[str, Any]]], member_id: int, submissions: set[int]) -> dict[str, list[dict[str, Any]]]:
    """Every row that does not point at the member (nor at one of their submissions)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for table, items in rows.items():
        cols = [c for (t, c) in MEMBER_COLUMNS if t == table]
        kept = []
        for r in items:
            if any(r[c] == member_id for c in cols):
                continue
            if table == "members" and r["id"] == member_id:
                continue
            if table in ("votes", "points_ledger") and r.get("submission_id") in submissions:
                continue
            kept.append(r)
        out[table] = kept
    return out


async def standings_match_ledger(store: Store) -> None:
    """Every standing is exactly the sum of its ledger rows, and there is no standing without them."""
    standings = {(c, m): p for c, m, p in await store._all(
        "SELECT community_id, member_id, points FROM standings WHERE period = 'all' AND track = '*'")}
    ledger = {(c, m): p for c, m, p in await store._all(
        "SELECT community_id, member_id, SUM(points) FROM points_ledger GROUP BY community_id, member_id")}
    assert standings == ledger


def token_of(message: Message) -> str:
    [button] = message.buttons
    assert button.action == privacy.COMMAND and button.value.startswith("confirm:")
    return button.value


async def test_delete_my_data_removes_every_personal_row_and_nothing_else(
    wired: Services, store: Store, admin: Caller, clock: FixedClock
) -> None:
    people = await populate(wired, store, admin, clock)
    bob, carol = people["Bob"], people["Carol"]
    bob_id = bob.member.id
    bob_subs = {int(r["id"]) for r in await store.member_submissions(bob_id)}
    board_before = await store.leaderboard(admin.community.id, period="all", limit=50)
    assert bob_id in {s.member_id for s in board_before}

    warning = await ok(wired, bob, "/settings delete-my-data")
    assert warning.ephemeral and warning.title == "Delete your data in Test guild?"
    counts = await store.member_data_counts(bob_id)
    for key, label in privacy.LABELS:  # the warning lists exactly what goes, with counts
        if counts[key]:
            assert f"- {label}: {counts[key]}" in warning.body, label
        else:
            assert f"- {label}:" not in warning.body
    assert f"({counts['points']} points)" in warning.body
    assert counts["submissions"] == 3 and counts["written_answers"] == 1 and counts["votes_received"] == 2
    assert counts["votes_cast"] == 1 and counts["feedback_given"] == counts["feedback_received"] == 1
    assert counts["avoid_entries"] == 2 and counts["stories"] == 1 and counts["mock_optin"] == 1
    assert counts["messages_pending"] >= 1 and counts["messages_sent"] >= 1 and counts["grading_jobs"] == 1

    # another community's standings must survive the recomputation of Bob's community
    elsewhere = await store.ensure_community("test", "guild-2", "Other guild", now=clock.now())
    eve = await store.ensure_member(elsewhere.id, "u-eve", "Eve", now=clock.now())
    await store.add_points(community_id=elsewhere.id, member_id=eve.id, points=7, reason="test", track="coding",
                           now=clock.now(), dedupe_key="eve")
    before = await table_rows(store)
    assert sum(r["member_id"] == eve.id for r in before["standings"]) == 6  # 3 periods x (all, coding)
    for table, column in MEMBER_COLUMNS:  # the fixture is not vacuous: Bob is everywhere
        assert await count(store, f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", bob_id) >= 1, (table, column)

    done = await ok(wired, bob, f"/settings delete-my-data {token_of(warning)}")
    assert done.kind == "success" and done.title == "Your data is deleted"
    assert privacy.describe(counts) in done.body  # the receipt matches the warning

    for (table, column), policy in MEMBER_COLUMNS.items():
        left = await count(store, f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", bob_id)
        if policy == DELETE:
            assert left == 0, (table, column)
        else:
            assert left == 1 and await count(store, "SELECT COUNT(*) FROM mock_pair_members WHERE member_id = ?"
                                       " AND (checked_in IS NOT NULL OR reported_no_show != 0)", bob_id) == 0
    marks = ",".join(map(str, bob_subs))
    assert await count(store, f"SELECT COUNT(*) FROM votes WHERE submission_id IN ({marks})") == 0
    row = await store.get_member(bob_id)
    assert row is not None and row.display_name == privacy.ERASED_NAME and row.timezone is None
    assert row.external_id == "u-bob"  # the account stays; a returning Bob starts from zero

    # everyone else is untouched, row for row; the only edit is Bob's name in the stored report
    after = await table_rows(store)
    expected = not_about(before, bob_id, bob_subs)
    for r in expected["mock_rounds"]:
        r["report"] = json.loads(r["report"].replace("Bob (until", f"{privacy.ERASED_NAME} (until"))
    untouched = not_about(after, bob_id, bob_subs)
    for r in untouched["mock_rounds"]:
        r["report"] = json.loads(r["report"])
    assert untouched == expected
    assert "Bob" not in json.dumps(after["mock_rounds"])

    # standings are the ledger's sums; a full rebuild changes nothing; ranks close up without Bob
    await standings_match_ledger(store)
    snapshot = after["standings"]
    await store.rebuild_standings()
    assert (await table_rows(store))["standings"] == snapshot
    board = await store.leaderboard(admin.community.id, period="all", limit=50)
    assert bob_id not in {s.member_id for s in board}
    others = [s for s in board_before if s.member_id != bob_id]
    assert [(s.member_id, s.points) for s in board] == [(s.member_id, s.points) for s in others]
    ranks = [1 + sum(o.points > s.points for o in board) for s in board]
    assert [s.rank for s in board] == ranks
    assert "Bob" not in (await ok(wired, carol, "/leaderboard all")).plain_text()

    # the confirmation was single-use; Bob coming back starts a fresh record under his name
    again = await run(wired, bob, f"/settings delete-my-data {token_of(warning)}")
    assert again.is_error and "no deletion waiting" in again.body
    back = await store.ensure_member(admin.community.id, "u-bob", "Bob", now=clock.now())
    assert back.id == bob_id and back.display_name == "Bob"
    assert await store.member_data_counts(bob_id) == dict.fromkeys(counts, 0)


async def test_typing_a_confirmation_without_a_valid_token_deletes_nothing(
    wired: Services, store: Store, admin: Caller, member: Caller
) -> None:
    await ok(wired, member, "/submit overfit-first-step B")
    await ok(wired, member, "/story add failure Title | s | t | a | r")
    counts = await store.member_data_counts(member.member.id)
    for line, says in (
        ("/settings delete-my-data confirm:AAAAAAAAAAAAAAAAAAAA", "no deletion waiting"),  # no warning first
        ("/settings delete-my-data yes", f"Run /{privacy.COMMAND} first"),
        ("/settings delete-my-data confirm:", f"Run /{privacy.COMMAND} first"),
    ):
        reply = await run(wired, member, line)
        assert reply.is_error and reply.ephemeral and says in reply.body and "Nothing was deleted" in reply.body
        assert await store.member_data_counts(member.member.id) == counts

    warning = await ok(wired, member, "/settings delete-my-data")
    wrong = await run(wired, member, "/settings delete-my-data confirm:" + "x" * 16)
    assert wrong.is_error and "not your latest one" in wrong.body
    second = await ok(wired, member, "/settings delete-my-data")  # a new request replaces the old one
    stale = await run(wired, member, f"/settings delete-my-data {token_of(warning)}")
    assert stale.is_error and "not your latest one" in stale.body
    assert await store.member_data_counts(member.member.id) == counts
    # the bare token (as typed without the prefix) works too
    done = await ok(wired, member, f"/settings delete-my-data {token_of(second).removeprefix('confirm:')}")
    assert done.kind == "success"
    assert await store.member_data_counts(member.member.id) == dict.fromkeys(counts, 0)


async def test_a_token_shown_to_another_member_is_refused(
    wired: Services, store: Store, admin: Caller, member: Caller
) -> None:
    for caller in (admin, member):
        await ok(wired, caller, "/submit overfit-first-step B")
    admin_counts = await store.member_data_counts(admin.member.id)
    bob_counts = await store.member_data_counts(member.member.id)
    admins_token = token_of(await ok(wired, admin, "/settings delete-my-data"))

    reply = await run(wired, member, f"/settings delete-my-data {admins_token}")  # Bob has no request
    assert reply.is_error and "Nothing was deleted" in reply.body
    await ok(wired, member, "/settings delete-my-data")
    reply = await run(wired, member, f"/settings delete-my-data {admins_token}")  # Bob has his own request
    assert reply.is_error and "not your latest one" in reply.body
    assert await store.member_data_counts(member.member.id) == bob_counts
    assert await store.member_data_counts(admin.member.id) == admin_counts
    # and at the store: the hash of another member's token does not open the transaction
    assert await store.erase_member(member.member.id, privacy.token_hash(admins_token.removeprefix("confirm:")),
                                    now=wired.clock.now(), display_name="x") is None
    assert await store.member_data_counts(member.member.id) == bob_counts


async def test_an_expired_token_is_refused(wired: Services, store: Store, member: Caller, clock: FixedClock) -> None:
    await ok(wired, member, "/submit overfit-first-step B")
    counts = await store.member_data_counts(member.member.id)
    token = token_of(await ok(wired, member, "/settings delete-my-data"))
    clock.advance(privacy.CONFIRM_TTL + timedelta(seconds=1))
    reply = await run(wired, member, f"/settings delete-my-data {token}")
    assert reply.is_error and "expired" in reply.body
    assert await store.member_data_counts(member.member.id) == counts
    # the store checks expiry itself, in the erasing transaction
    assert await store.erase_member(member.member.id, privacy.token_hash(token.removeprefix("confirm:")),
                                    now=clock.now(), display_name="x") is None
    assert await store.member_data_counts(member.member.id) == counts
    # just inside the window it works
    token = token_of(await ok(wired, member, "/settings delete-my-data"))
    clock.advance(privacy.CONFIRM_TTL - timedelta(seconds=1))
    assert (await ok(wired, member, f"/settings delete-my-data {token}")).kind == "success"


async def test_the_ledger_stays_append_only_outside_an_erasure(
    wired: Services, store: Store, member: Caller
) -> None:
    await ok(wired, member, "/submit overfit-first-step B")
    await ok(wired, member, "/settings delete-my-data")  # a pending (unconfirmed) request lifts nothing
    for sql in ("DELETE FROM points_ledger", "UPDATE points_ledger SET points = 100"):
        with pytest.raises(store.IntegrityError, match="append-only"):
            async with store.transaction() as db:
                await db.execute(sql)
    assert await store.total_points(member.member.id) > 0


async def test_an_erasure_fails_whole_or_not_at_all(
    wired: Services, store: Store, admin: Caller, member: Caller, clock: FixedClock
) -> None:
    """A failure midway (here: a foreign key that cannot be satisfied) leaves every row in place."""
    await ok(wired, member, "/submit overfit-first-step B")
    [sub] = await store.member_submissions(member.member.id)
    # another member's ledger row pointing at Bob's submission makes deleting that submission impossible
    await store.add_points(community_id=admin.community.id, member_id=admin.member.id, points=1, reason="test",
                           submission_id=int(sub["id"]), now=clock.now())
    counts = await store.member_data_counts(member.member.id)
    before = await table_rows(store)
    token = token_of(await ok(wired, member, "/settings delete-my-data"))
    with pytest.raises(store.IntegrityError):
        await store.erase_member(member.member.id, privacy.token_hash(token.removeprefix("confirm:")),
                                 now=clock.now(), display_name="x")
    after = await table_rows(store)
    assert after.pop("erasure_requests") and not before.pop("erasure_requests")
    assert after == before
    assert await store.member_data_counts(member.member.id) == counts


# -- the console: a real process, the warning then the confirmation -------------------------------------


def console(tmp_path: Path, script: str) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}
    env.update({"ONSITE_QUESTIONS": str(FIXTURE_BANK), "XDG_DATA_HOME": str(tmp_path / "data"), "USER": "tester"})
    result = subprocess.run([sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "c.db"), "--json"],
                            input=script, capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_delete_my_data_through_the_console(tmp_path: Path) -> None:
    first = console(tmp_path, "/as alice\n/submit overfit-first-step B\n/story add failure T | s | t | a | r\n"
                              "/as bob\n/submit overfit-first-step B\n/as alice\n/settings delete-my-data\n")
    warning = first[-1]
    assert warning["to"] == "reply" and warning["title"] == "Delete your data in Local community?"
    assert "- Code and answer submissions: 1" in warning["body"] and "- STAR stories: 1" in warning["body"]
    [button] = warning["buttons"]
    assert button["action"] == "settings delete-my-data" and re.fullmatch(r"confirm:[\w-]{16}", button["value"])
    assert f"`/settings delete-my-data {button['value']}`" in json.dumps(warning["fields"])  # typed form shown too

    # a console click is the typed line: /<action> <value>
    second = console(tmp_path, f"/as alice\n/{button['action']} {button['value']}\n/leaderboard all\n")
    done, board = second[1], second[2]
    assert done["kind"] == "success" and "- Code and answer submissions: 1" in done["body"]
    text = board["title"] + board["body"] + json.dumps(board["fields"])
    assert "bob" in text and "alice" not in text
    db = sqlite3.connect(tmp_path / "c.db")
    try:
        alice = db.execute("SELECT id FROM members WHERE external_id = 'alice'").fetchone()[0]
        assert db.execute("SELECT COUNT(*) FROM submissions WHERE member_id = ?", (alice,)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM stories WHERE member_id = ?", (alice,)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 1  # bob's
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
