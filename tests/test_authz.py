"""Authorisation and isolation through the core dispatch and the console.

- Admin commands: every command of `core_table()` marked `admin` (so a new one is covered without
  touching this file) is refused for an ordinary member, through `dispatch` and `dispatch_line`,
  with the refusal text and no change anywhere in the database; the console refuses them after
  `/as bob` in a real process.
- Isolation: two communities A and B share one database (same platform, and different platforms
  with colliding external ids). B is filled with data of every kind (a revealed round, written
  answers and votes, stories, a mock round with feedback, a plan, a timer). Then a member of A runs
  every command of the table with B's ids: B's member names, platform ids and row ids, B's story
  numbers and ids, B's revealed question, B's pair/round/submission ids, and every button B's
  messages carry. Each reply (and anything delivered because of it) must contain none of B's
  private text, and every row of B must be unchanged. `CASES` must name every command, so a new
  command without an isolation case fails `test_every_command_has_an_isolation_case`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.commands import Command, Context, core_table, dispatch, dispatch_line
from bot.core.forms import form_for
from bot.core.messages import Button, Message
from bot.core.models import Caller, Community, Member
from bot.core.services import Services
from bot.store.sqlite import Store
from tests.conftest import FIXTURE_BANK, REPO, RecordingChat, StandInGrader

TABLE = core_table()
ADMIN_COMMANDS = [c for c in TABLE.commands.values() if c.admin]


def test_the_table_has_admin_commands() -> None:
    """The parametrised admin tests below must not silently run over an empty list."""
    assert {"admin setup", "admin post-now", "admin pair-now"} <= {c.name for c in ADMIN_COMMANDS}


def sample_line(command: Command) -> str:
    """A syntactically valid line for any command: the first choice, a plausible value otherwise."""
    words = [f"/{command.name}"]
    for arg in command.args:
        if arg.flag:
            continue
        if arg.choices:
            words.append(arg.choices[0])
        elif arg.kind == "int":
            words.append("1")
        elif arg.kind == "rest":
            words.append("07:00")
        else:
            words.append("x")
    return " ".join(words)


def sample_args(command: Command) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for arg in command.args:
        if arg.choices:
            args[arg.name] = arg.choices[0]
        elif arg.kind == "int":
            args[arg.name] = 1
        elif not arg.flag:
            args[arg.name] = "07:00" if arg.kind == "rest" else "x"
    return args


def dump(path: Path, where: Mapping[str, str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (optionally filtered per table), read with a separate connection."""
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = {}
        for table in tables:
            sql = f"SELECT * FROM {table}"
            if where is not None:
                if table not in where:
                    continue
                sql += f" WHERE {where[table]}"
            out[table] = sorted(con.execute(sql).fetchall(), key=repr)
        return out
    finally:
        con.close()


def ctx(services: Services, caller: Caller) -> Context:
    return Context(services, caller, TABLE, platform=caller.community.platform)


# -- admin commands refused through the core --------------------------------------------------------


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: c.name)
async def test_admin_command_is_refused_for_a_member_and_changes_nothing(
    wired: Services, store: Store, admin: Caller, member: Caller, command: Command
) -> None:
    refusal = f"Only community admins can use /{command.name}."
    before = dump(Path(store.path))
    # bare, with valid arguments, as a line and as platform options
    for reply in (
        await dispatch_line(ctx(wired, member), f"/{command.name}"),
        await dispatch_line(ctx(wired, member), sample_line(command)),
        await dispatch(ctx(wired, member), command.name, {}),
        await dispatch(ctx(wired, member), command.name, sample_args(command)),
        await dispatch(ctx(wired, member), command.name, {"bogus": "1"}),  # refused before argument checks
    ):
        assert reply.is_error and reply.ephemeral and reply.body == refusal, reply
    # a member row flagged admin does not help when the platform says the caller is not an admin now
    flagged = await store.update_member(member.member.id, is_admin=1)
    before = dump(Path(store.path))
    reply = await dispatch_line(ctx(wired, Caller(flagged, member.community, is_admin=False)), sample_line(command))
    assert reply.body == refusal
    assert dump(Path(store.path)) == before
    # the same command as an admin is not refused: the refusal above is the admin check
    allowed = await dispatch_line(ctx(wired, admin), f"/{command.name}")
    assert allowed.body != refusal and "Only community admins" not in allowed.plain_text()


async def test_help_hides_admin_commands_from_members(wired: Services, admin: Caller, member: Caller) -> None:
    shown = (await dispatch_line(ctx(wired, member), "/help")).body
    for command in ADMIN_COMMANDS:
        assert f"/{command.name}" not in shown
    full = (await dispatch_line(ctx(wired, admin), "/help")).body
    assert all(f"/{c.name}" in full for c in ADMIN_COMMANDS)


# -- admin commands refused through the console ------------------------------------------------------


def run_console(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    far = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:00")  # no post falls due while the script runs
    env = {"PATH": "/usr/bin:/bin", "ONSITE_QUESTIONS": str(FIXTURE_BANK), "XDG_DATA_HOME": str(tmp_path / "data"),
           "USER": "tester", "HOME": str(tmp_path), "ONSITE_POST_TIME": far}
    return subprocess.run([sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "c.db"), "--json"],
                          input=script, capture_output=True, text=True, timeout=90, cwd=REPO, env=env)


def test_console_refuses_admin_commands_after_as(tmp_path: Path) -> None:
    lines = [sample_line(c) for c in ADMIN_COMMANDS] + [f"/{c.name}" for c in ADMIN_COMMANDS]
    lines += ["/admin clock 2026-11-30T10:00", "/admin clock"]  # the console's own admin command
    result = run_console(tmp_path, "/as bob\n" + "\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0]["body"].startswith("You are now bob, a member")
    replies = out[1:]
    assert len(replies) == len(lines), out  # only the replies: nothing was posted, nothing was paired
    for line, reply in zip(lines, replies, strict=True):
        name = next(c.name for c in [*ADMIN_COMMANDS, *[_clock()]] if line.startswith(f"/{c.name}"))
        assert reply["to"] == "reply" and reply["kind"] == "error", (line, reply)
        assert reply["body"] == f"Only community admins can use /{name}.", (line, reply)
    con = sqlite3.connect(tmp_path / "c.db")
    try:
        row = con.execute("SELECT channel, post_time, timezone, tracks, reveal_time FROM communities").fetchone()
        assert row[0] == "daily" and row[2:] == ("UTC", "coding,ml-coding,ml-theory,system-design,behavioral", None)
        assert row[1] != "07:00"  # the time /admin setup tried to set
        for table in ("daily_posts", "mock_rounds", "outbox", "points_ledger"):
            assert con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
        assert con.execute("SELECT display_name, is_admin FROM members ORDER BY id").fetchall() == [
            ("tester", 1), ("bob", 0)]
    finally:
        con.close()


def _clock() -> Command:
    return Command("admin clock", "", TABLE.commands["help"].handler, admin=True)


def test_console_json_output_is_refused_the_same_for_a_name_that_looks_like_the_admin(tmp_path: Path) -> None:
    """`/as` with another spelling of a member's name acts as that member; an unknown name is never an admin."""
    result = run_console(tmp_path, "/as Mallory\n/admin setup time 05:00\n/as tester\n/admin setup\n")
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[1]["body"] == "Only community admins can use /admin setup."
    fields = {f["name"]: f["value"] for f in out[3]["fields"]}
    assert not fields["Post time"].startswith("05:00")


# -- isolation: a world with two communities -----------------------------------------------------------

B_SECRETS = ("Zephyrine", "Quillon", "Bravo Hidden Guild", "BSECRETANSWER", "QSECRETANSWER",
             "BSECRETSTORY", "BSECRETFEEDBACK", "b-zed-ext", "b-quill-ext")
WRITTEN = ("BSECRETANSWER candidate generation retrieval ranking model features freshness latency budget "
           "offline metrics online metrics ab test cold start exploration feedback loop logging monitoring "
           "drift retraining cadence serving cache fallback popularity baseline embeddings two tower "
           "candidate ranking calibration position bias counterfactual evaluation guardrails dashboards")


@dataclass
class World:
    services: Services
    store: Store
    clock: FixedClock
    chat: RecordingChat
    path: Path
    a: Community
    b: Community
    ann: Caller  # A's admin
    al: Caller  # an ordinary member of A: the one who tries B's ids
    zed: Caller  # B's admin
    quill: Caller  # a member of B
    ids: dict[str, str] = field(default_factory=dict)
    b_buttons: list[Button] = field(default_factory=list)

    def b_rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row that belongs to B or points at something of B, in every table (new ones too)."""
        b = self.b.id
        refs = {
            "community_id": f"= {b}",
            "member_id": f"IN (SELECT id FROM members WHERE community_id = {b})",
            "submission_id": f"IN (SELECT id FROM submissions WHERE community_id = {b})",
            "daily_post_id": f"IN (SELECT id FROM daily_posts WHERE community_id = {b})",
            "round_id": f"IN (SELECT id FROM mock_rounds WHERE community_id = {b})",
            "pair_id": "IN (SELECT p.id FROM mock_pairs AS p JOIN mock_rounds AS r ON r.id = p.round_id"
                       f" WHERE r.community_id = {b})",
            # slack_installations, slack_bots, slack_workspaces: keyed by the Slack workspace, B's external id
            "team_id": f"IN (SELECT external_id FROM communities WHERE id = {b} AND platform = 'slack')",
        }
        con = sqlite3.connect(self.path)
        try:
            where = {"communities": f"id = {b}"}
            for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                if table == "communities":
                    continue
                conditions = []
                for row in con.execute(f"PRAGMA table_info({table})"):
                    column = str(row[1])
                    key = "member_id" if column.endswith("member_id") or column == "voter_id" else column
                    if key in refs:
                        conditions.append(f"{column} {refs[key]}")
                # discord_state: process-wide (the digest of the last command sync), no member data;
                # slack_oauth_states: used OAuth nonces, from before any workspace exists
                assert conditions or table in ("sqlite_sequence", "discord_state", "slack_oauth_states", "leases"), \
                    f"{table}: no column ties a row to a community"
                if conditions:
                    where[table] = " OR ".join(conditions)
        finally:
            con.close()
        return dump(self.path, where)

    def line(self, template: str) -> str:
        return template.format(**self.ids)


def buttons_of(message: Message) -> list[Button]:
    return list(message.buttons)


async def run_as(world: World, caller: Caller, line: str) -> Message:
    reply = await dispatch_line(ctx(world.services, caller), line)
    world.b_buttons += buttons_of(reply) if caller.community.id == world.b.id else []
    return reply


async def build_world(tmp_path: Path, bank: Bank, *, a_platform: str, a_external: str,
                      a_member_ids: tuple[str, str]) -> World:
    path = tmp_path / "two.db"
    store = await Store.open(path)

    clock = FixedClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    chat = RecordingChat()
    services = Services.build(store, bank, clock, chat=chat, grader=StandInGrader())
    now = clock.now()
    b = await store.ensure_community("discord", "guild-b", "Bravo Hidden Guild", now=now, channel="b-hidden-channel")
    a = await store.ensure_community(a_platform, a_external, "Alpha", now=now, channel="a-daily")
    zed_m = await store.ensure_member(b.id, "b-zed-ext", "Zephyrine", now=now, is_admin=True)
    quill_m = await store.ensure_member(b.id, "b-quill-ext", "Quillon", now=now)
    ann_m = await store.ensure_member(a.id, a_member_ids[0], "Ann", now=now, is_admin=True)
    al_m = await store.ensure_member(a.id, a_member_ids[1], "Al", now=now)
    world = World(services, store, clock, chat, path, a, b, Caller(ann_m, a, True), Caller(al_m, a, False),
                  Caller(zed_m, b, True), Caller(quill_m, b, False))

    # A never runs behavioral rounds: a behavioral question B reveals stays unrevealed in A, where Al
    # answered it as practice (B's reveal must not open A's answers)
    world.a = a = await store.update_community(a.id, tracks=("coding", "ml-coding", "ml-theory", "system-design"))
    world.ann, world.al = Caller(ann_m, a, True), Caller(al_m, a, False)
    assert not (await run_as(world, world.al, f"/submit conflict-lite {WRITTEN.replace('BSECRETANSWER', 'ALPRACTICE')}")).is_error

    # B: a round, answers of every kind, stories, a plan, a timer, a mock round with feedback
    zed, quill = world.zed, world.quill
    assert not (await run_as(world, zed, "/admin post-now")).is_error
    _, items = await services.daily.current_round(b)
    today = {i.post.track: i.post.question_id for i in items}
    theory = today["ml-theory"]
    for caller, marker in ((zed, "BSECRETANSWER"), (quill, "QSECRETANSWER")):
        reply = await run_as(world, caller, f"/submit {today['system-design']} {WRITTEN.replace('BSECRETANSWER', marker)}")
        assert not reply.is_error, reply
        reply = await run_as(world, caller, f"/submit {today['behavioral']} {WRITTEN.replace('BSECRETANSWER', marker)}")
        assert not reply.is_error, reply
    await run_as(world, zed, f"/submit {theory} A")
    reference = bank.get(today["coding"]).reference
    await run_as(world, quill, f"/submit {today['coding']} {reference}")
    await run_as(world, zed, "/story add failure BSECRETSTORY launch | BSECRETSTORY situation | task | action | result")
    await run_as(world, quill, "/story add conflict BSECRETSTORY two | s | t | a | r")
    await run_as(world, zed, "/plan start 4")
    await run_as(world, quill, "/timed mean-center")
    for caller in (zed, quill):
        await run_as(world, caller, "/mock join coding,system-design senior UTC daily 0-24")
    assert "pairing report" in (await run_as(world, zed, "/admin pair-now")).title
    await run_as(world, quill, "/mock checkin met")
    reply = await run_as(world, quill, "/mock feedback Zephyrine 4,3,5,4 BSECRETFEEDBACK keep going")
    assert not reply.is_error, reply
    await run_as(world, quill, "/mock avoid Zephyrine")
    await run_as(world, quill, "/settings timezone Europe/Berlin")
    # the next day B's round is revealed; votes on the revealed written answers
    clock.advance(timedelta(days=1))
    await services.tick()
    assert await store.revealed_post(b.id, today["system-design"]) is not None
    reply = await run_as(world, quill, f"/vote {today['system-design']} Zephyrine")
    assert not reply.is_error, reply
    await run_as(world, quill, f"/answers {today['system-design']}")
    await run_as(world, zed, "/leaderboard all")
    await run_as(world, zed, "/story gaps")
    await run_as(world, zed, "/daily")
    confirm = await run_as(world, quill, "/settings delete-my-data")  # a pending erasure, its button carries B's token
    assert any("confirm:" in b.value for b in confirm.buttons), confirm
    for row in await store.outbox_rows(b.id):  # buttons of everything B was sent (check-ins, posts, reveals)
        world.b_buttons += list(Message.from_dict(row.message).buttons)

    # A: its own round, posted by the tick above (the same questions: the bank has one per track);
    # written answers, then the next day both communities have revealed the design question
    ann, al = world.ann, world.al
    a_round = await store.daily_posts_on(a.id, clock.now().date())
    assert {p.question_id for p in a_round} >= {today["system-design"]}
    for caller in (ann, al):
        reply = await run_as(world, caller, f"/submit {today['system-design']} {WRITTEN.replace('BSECRETANSWER', 'AOWN')}")
        assert not reply.is_error, reply
    clock.advance(timedelta(days=1))
    await services.tick()
    assert await store.revealed_post(a.id, today["system-design"]) is not None
    assert await store.revealed_post(a.id, today["behavioral"]) is None
    await run_as(world, al, f"/submit {theory} B")
    for caller in (ann, al):
        await run_as(world, caller, "/mock join coding senior UTC daily 0-24")
    await run_as(world, ann, "/admin pair-now")
    await services.outbox.deliver()

    con = sqlite3.connect(path)
    try:
        def one(sql: str) -> str:
            return str(con.execute(sql).fetchone()[0])

        world.ids = {
            "b_name": "Zephyrine", "b_name2": "Quillon", "b_ext": "b-zed-ext", "b_ext2": "b-quill-ext",
            "b_mention": "@Quillon", "b_member_id": str(zed_m.id), "b_member_id2": str(quill_m.id),
            "b_written": today["system-design"], "b_behavioral": today["behavioral"], "b_theory": theory,
            "b_code": today["coding"], "b_channel": "b-hidden-channel", "b_community_id": str(b.id),
            "b_story_id": one(f"SELECT MIN(id) FROM stories WHERE member_id = {zed_m.id}"),
            "b_submission_id": one(f"SELECT MIN(id) FROM submissions WHERE community_id = {b.id}"),
            "b_round_id": one(f"SELECT id FROM mock_rounds WHERE community_id = {b.id}"),
            "b_pair_id": one(f"SELECT p.id FROM mock_pairs p JOIN mock_rounds r ON r.id = p.round_id WHERE r.community_id = {b.id}"),
            "b_timer_id": one(f"SELECT id FROM timers WHERE community_id = {b.id}"),
            "b_confirm": next(b.value for b in world.b_buttons if "confirm:" in b.value).split("confirm:")[1],
            "b_plan_id": one(f"SELECT id FROM study_plans WHERE community_id = {b.id}"),
        }
    finally:
        con.close()
    return world


# Every command with the foreign ids a member of A could try. {placeholders} are B's values.
CASES: dict[str, tuple[str, ...]] = {
    "help": ("/help", "/help {b_name}", "/help admin"),
    "daily": ("/daily", "/daily system-design", "/daily behavioral"),
    "question": ("/question {b_written}", "/question {b_submission_id}", "/question {b_behavioral}"),
    "leaderboard": ("/leaderboard all", "/leaderboard week", "/leaderboard all system-design",
                    "/leaderboard all --page 2", "/leaderboard all --page {b_member_id}"),
    "submit": ("/submit {b_written} {b_story_id}", "/submit {b_submission_id} A", "/submit {b_code} BOOM"),
    "hint": ("/hint {b_code}", "/hint {b_written} --number {b_story_id}"),
    "answers": ("/answers {b_written}", "/answers {b_behavioral}", "/answers {b_submission_id}"),
    "vote": ("/vote {b_written} {b_name}", "/vote {b_written} {b_ext}", "/vote {b_written} {b_member_id}",
             "/vote {b_written} {b_mention}", "/vote {b_behavioral} {b_name2}", "/vote {b_submission_id} {b_name}"),
    "settings hide-from-leaderboard": ("/settings hide-from-leaderboard on",),
    "settings timezone": ("/settings timezone Asia/Tokyo",),
    "settings delete-my-data": ("/settings delete-my-data", "/settings delete-my-data {b_confirm}",
                                "/settings delete-my-data confirm:{b_confirm}"),
    "admin setup": ("/admin setup", "/admin setup channel {b_channel}", "/admin setup time 06:45",
                    "/admin setup tracks coding"),
    "admin post-now": ("/admin post-now",),
    "admin pair-now": ("/admin pair-now",),
    "mock join": ("/mock join coding senior UTC weekdays 18-21",),
    "mock leave": ("/mock leave",),
    "mock pause": ("/mock pause 2",),
    "mock status": ("/mock status",),
    "mock avoid": ("/mock avoid {b_name}", "/mock avoid {b_ext}", "/mock avoid {b_member_id}", "/mock avoid {b_mention}"),
    "mock checkin": ("/mock checkin met", "/mock checkin no-show {b_name}", "/mock checkin no-show {b_member_id}",
                     "/mock checkin no-show {b_ext2}"),
    "mock feedback": ("/mock feedback {b_name} 1,1,1,1 spam", "/mock feedback {b_member_id2} 1,1,1,1 spam",
                      "/mock feedback {b_ext} 1 1 1 1", "/mock feedback {b_pair_id} 1 1 1 1"),
    "stats": ("/stats {b_name}", "/stats {b_ext}", "/stats {b_member_id}", "/stats {b_mention}", "/stats"),
    "practice": ("/practice", "/practice system-design", "/practice behavioral"),
    "timed": ("/timed mean-center", "/timed {b_timer_id}", "/timed {b_written}"),
    "plan start": ("/plan start 3", "/plan start {b_plan_id}"),
    "plan status": ("/plan status",),
    "plan stop": ("/plan stop",),
    "story add": ("/story add failure Mine | s | t | a | r",),
    "story list": ("/story list",),
    "story edit": ("/story edit 1 result HACKED", "/story edit {b_story_id} result HACKED",
                   "/story edit 2 HACKED | s | t | a | r"),
    "story remove": ("/story remove 1", "/story remove {b_story_id}", "/story remove 2"),
    "story gaps": ("/story gaps",),
    "card stats": ("/card stats {b_name}", "/card stats {b_ext}", "/card stats {b_member_id}", "/card stats"),
    "card leaderboard": ("/card leaderboard all", "/card leaderboard week"),
}
ADMIN_CASES = {c.name for c in ADMIN_COMMANDS}


def test_every_command_has_an_isolation_case() -> None:
    assert set(CASES) == set(TABLE.commands), "add the new command's foreign-id lines to CASES"


def without_typed(text: str, line: str) -> str:
    """The reply without what the caller typed (an error may quote the caller's own input back)."""
    for word in sorted(re.findall(r"[\w@.-]+", line), key=len, reverse=True):
        text = text.replace(word, "")
    return text


def assert_no_b_data(world: World, reply: Message, line: str, sent_before: int) -> None:
    shown = without_typed(json.dumps(reply.to_dict(), ensure_ascii=False), line)
    leaked = [s for s in B_SECRETS if s in shown]
    assert not leaked, (line, leaked, reply.plain_text())
    for kind, where, message in world.chat.sent[sent_before:]:
        text = where + " " + json.dumps(message.to_dict(), ensure_ascii=False)
        leaked = [s for s in B_SECRETS if s in text]
        assert not leaked, (line, "delivered", kind, where, leaked)
    if reply.image:  # a card names members in its picture: the stats card is of A's own members only
        assert Path(reply.image).is_file()


WORLDS: dict[str, dict[str, Any]] = {
    "same-platform": {"a_platform": "discord", "a_external": "guild-a", "a_member_ids": ("a-ann-ext", "a-al-ext")},
    # a Slack workspace whose id and member ids collide with B's Discord ids
    "cross-platform": {"a_platform": "slack", "a_external": "guild-b", "a_member_ids": ("b-zed-ext", "b-quill-ext")},
}


@pytest.fixture(params=list(WORLDS))
async def world(request: pytest.FixtureRequest, tmp_path: Path, bank: Bank) -> Any:
    w = await build_world(tmp_path, bank, **WORLDS[request.param])
    yield w
    await w.store.close()


@pytest.mark.parametrize("name", list(CASES))
async def test_foreign_ids_reach_nothing_of_the_other_community(world: World, name: str) -> None:
    caller = world.ann if name in ADMIN_CASES else world.al
    before = world.b_rows()
    assert before["submissions"] and before["stories"] and before["mock_feedback"] and before["votes"]
    for template in CASES[name]:
        line = world.line(template)
        sent = len(world.chat.sent)
        reply = await dispatch_line(ctx(world.services, caller), line)
        await world.services.outbox.deliver()
        assert_no_b_data(world, reply, line, sent)
        assert world.b_rows() == before, f"{line} changed B's rows"
    # and as A's admin, for the member commands too (an admin of A is nobody in B)
    if name not in ADMIN_CASES:
        for template in CASES[name]:
            line = world.line(template)
            sent = len(world.chat.sent)
            reply = await dispatch_line(ctx(world.services, world.ann), line)
            await world.services.outbox.deliver()
            assert_no_b_data(world, reply, line, sent)
    assert world.b_rows() == before


async def test_buttons_carrying_the_other_communitys_ids_reach_nothing(world: World) -> None:
    """Every button B's messages carry, clicked by a member of A (a forged or forwarded click)."""
    before = world.b_rows()
    buttons = {(b.action, b.value) for b in world.b_buttons}
    actions = {a for a, _ in buttons}
    assert {"mock checkin", "form"} <= actions, actions  # check-ins and forms with B's names are among them
    for action, value in sorted(buttons):
        sent = len(world.chat.sent)
        if action == "discuss":
            continue  # opens a thread on the clicked post itself (adapter only)
        if action == "form":
            name, _, rest = value.partition(" ")
            form = form_for(world.services.bank, name, rest)
            filled = {f.name: ("4 4 4 4" if f.name == "scores" else "text") for f in form.fields}
            line = f"{action} {value}"
            reply = await dispatch(ctx(world.services, world.al), form.command, {**form.fixed, **filled})
        else:
            line = f"/{action} {value}"
            reply = await dispatch_line(ctx(world.services, world.al), line)
        await world.services.outbox.deliver()
        assert_no_b_data(world, reply, line, sent)
        assert world.b_rows() == before, f"button {action} {value!r} changed B's rows"


async def test_b_is_intact_and_still_works_for_its_own_members(world: World) -> None:
    """The guard against a vacuous isolation test: B's own members do see their data."""
    zed = world.zed
    stories = await dispatch_line(ctx(world.services, zed), "/story list")
    assert "BSECRETSTORY" in stories.plain_text()
    answers = await dispatch_line(ctx(world.services, zed), world.line("/answers {b_written}"))
    assert "QSECRETANSWER" in answers.plain_text() and "Quillon" in answers.plain_text()
    board = await dispatch_line(ctx(world.services, zed), "/leaderboard all")
    assert "Zephyrine" in board.plain_text() or "Quillon" in board.plain_text()
    feedback = [m for kind, where, m in world.chat.sent if kind == "dm" and "BSECRETFEEDBACK" in m.plain_text()]
    assert feedback  # delivered to Zephyrine, in B


def _member(m: Member) -> str:  # pragma: no cover - debugging aid
    return f"{m.id}:{m.display_name}@{m.community_id}"


async def test_a_reveal_in_one_community_opens_and_closes_nothing_in_another(world: World) -> None:
    """Reveal state is per community: B revealed the behavioral question, A never posted it."""
    behavioral = world.ids["b_behavioral"]
    answers = await dispatch_line(ctx(world.services, world.al), f"/answers {behavioral}")
    assert answers.is_error and "after its reveal" in answers.body, answers  # A's own practice answer stays closed
    vote = await dispatch_line(ctx(world.services, world.ann), f"/vote {behavioral} Al")
    assert vote.is_error and "after its reveal" in vote.body, vote
    # ...and still open for submissions in A (closed only where it was revealed)
    submitted = await dispatch_line(ctx(world.services, world.ann), f"/submit {behavioral} {WRITTEN}")
    assert not submitted.is_error and "revealed" not in submitted.plain_text(), submitted
    # the design question was revealed in both: A reads A's answers only
    shown = (await dispatch_line(ctx(world.services, world.al), world.line("/answers {b_written}"))).plain_text()
    assert "AOWN" in shown and "Ann" in shown
    assert not [s for s in B_SECRETS if s in shown]
