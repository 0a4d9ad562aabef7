"""Mock interview rounds through the services: opt-ins, pairing, packs, check-ins, feedback, pauses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import FixedClock
from bot.core.errors import Conflict, NotFound, UsageError
from bot.core.mocks import parse_availability, round_slots, suggested_times, utc_hours
from bot.core.models import Caller
from bot.core.services import Services
from bot.store.sqlite import Store
from tests.conftest import RecordingChat

PEOPLE = [
    ("alice", "coding,system-design", "senior", "Europe/Berlin", "weekdays 18-21"),
    ("bob", "coding,system-design", "mid", "America/New_York", "weekdays 12-15"),
    ("carol", "system-design,behavioral", "senior", "Asia/Kolkata", "weekdays 21-23"),
    ("dan", "coding,ml-theory", "junior", "Europe/London", "weekdays 17-20"),
    ("erin", "coding,behavioral", "staff", "America/Los_Angeles", "weekdays 9-12"),
]


async def join_all(wired: Services, admin: Caller, store: Store, clock: FixedClock) -> dict[str, Caller]:
    callers = {}
    for name, tracks, level, tz, hours in PEOPLE:
        member = await store.ensure_member(admin.community.id, name, name, now=clock.now())
        caller = Caller(member, admin.community)
        reply = await wired.mocks.join(caller, tracks=tracks, level=level, timezone=tz, availability=hours)
        assert reply.title == "You're in the mock interview rotation"
        callers[name] = caller
    return callers


def groups_of(chat: RecordingChat) -> list[set[str]]:
    return [set(title.removeprefix("Mock interview · ").split(" & ")) for kind, title, _ in chat.sent if kind == "space"]


async def test_a_round_groups_everyone_with_spaces_and_private_packs(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    await join_all(wired, admin, store, clock)
    reply = await wired.mocks.pair_now(admin)
    fields = {f.name: f.value for f in reply.fields}
    assert fields["Paired"] == "5 member(s) in 2 group(s)" and fields["Groups of three"] == "1"
    await wired.outbox.deliver()
    groups = groups_of(chat)
    assert sorted(len(g) for g in groups) == [2, 3]
    assert set().union(*groups) == {p[0] for p in PEOPLE}
    packs = [(where, m) for kind, where, m in chat.sent if kind == "dm" and m.title.startswith("Your interviewer pack")]
    assert sorted(where for where, _ in packs) == sorted(p[0] for p in PEOPLE)  # one pack per member, privately
    pack = packs[0][1]
    assert any(f.name == "Agenda" for f in pack.fields) and any(f.name.startswith("Ask: ") for f in pack.fields)
    intros = [m for kind, _, m in chat.sent if kind == "post" and m.title.startswith("Mock interview")]
    assert len(intros) == 2 and all({"Suggested times", "Order"} <= {f.name for f in m.fields} for m in intros)
    # running it again in the same slot does nothing
    again = await wired.mocks.run_round(admin.community, slot=clock.now())
    assert not again.created


async def test_next_round_avoids_last_partners_and_pause_lasts_until_the_date(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers = await join_all(wired, admin, store, clock)
    await wired.mocks.pair_now(admin)
    await wired.outbox.deliver()
    first = groups_of(chat)
    for c in callers.values():
        await wired.mocks.checkin(c, "met", None)
    paused = await wired.mocks.pause(callers["erin"], "2026-12-10")
    assert "Paused until Thu 10 Dec 2026" in paused.body

    clock.advance(timedelta(days=7))
    chat.sent.clear()
    report = await wired.mocks.pair_now(admin)
    assert "erin (until 2026-12-10)" in {f.name: f.value for f in report.fields}["Paused or sitting out"]
    await wired.outbox.deliver()
    second = groups_of(chat)
    assert "erin" not in set().union(*second)
    for g in second:
        for old in first:
            assert len(g & old) < 2, f"{g} repeats a pair of {old}"

    clock.set(datetime(2026, 12, 11, 12, 0, tzinfo=UTC))
    chat.sent.clear()
    await wired.mocks.pair_now(admin)
    await wired.outbox.deliver()
    assert "erin" in set().union(*groups_of(chat))


async def test_checkin_no_show_and_feedback_reach_the_right_people(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers = await join_all(wired, admin, store, clock)
    await wired.mocks.pair_now(admin)
    await wired.outbox.deliver()
    pair = next(g for g in groups_of(chat) if len(g) == 2)
    a, b = sorted(pair)
    met = await wired.mocks.checkin(callers[a], "met", None)
    assert "+10 points" in met.body
    with pytest.raises(UsageError, match="4 scores from 1 to 5"):
        await wired.mocks.feedback(callers[a], b, "4 9", "x")
    sent = await wired.mocks.feedback(callers[a], b, "4,3,5,4", "Clear structure; quantify the latency budget earlier.")
    assert f"sent privately to {b}" in sent.body
    with pytest.raises(Conflict):
        await wired.mocks.feedback(callers[a], b, "4 3 5 4", "again")
    with pytest.raises(NotFound):
        await wired.mocks.feedback(callers[a], "nobody-in-group", "4 3 5 4", "")
    await wired.outbox.deliver()
    dms = [(where, m) for kind, where, m in chat.sent if kind == "dm" and m.title.startswith("Mock feedback")]
    assert len(dms) == 1 and dms[0][0] == b
    assert {f.name: f.value for f in dms[0][1].fields}["Technical depth"] == "5/5"
    assert await store.total_points(callers[a].member.id) == 15
    assert await store.mocks_done(callers[a].member.id) == 1

    # b is reported as a no-show by a: b sits out the next round and is told
    await wired.mocks.checkin(callers[a], "no-show", b)
    clock.advance(timedelta(days=7))
    chat.sent.clear()
    report = await wired.mocks.pair_now(admin)
    assert f"{b} (reported no-show: sits out one round)" in {f.name: f.value for f in report.fields}["Paused or sitting out"]
    await wired.outbox.deliver()
    assert any(where == b and m.title == "You sit out this mock round" for kind, where, m in chat.sent if kind == "dm")
    assert b not in set().union(*groups_of(chat))


async def test_silent_members_are_paused_after_three_rounds(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers = await join_all(wired, admin, store, clock)
    for _ in range(4):
        await wired.mocks.pair_now(admin)
        for name, c in callers.items():
            if name != "dan":  # dan never checks in
                try:
                    await wired.mocks.checkin(c, "met", None)
                except NotFound:
                    pass
        clock.advance(timedelta(days=7))
    await wired.outbox.deliver()
    row = await store.optin(callers["dan"].member.id)
    assert row is not None and row["active"] == 0 and row["pause_reason"] == "silent"
    told = [m for kind, where, m in chat.sent if kind == "dm" and where == "dan" and "paused" in m.title]
    assert told and "/mock join" in told[0].body
    status = await wired.mocks.status(callers["dan"])
    assert {f.name: f.value for f in status.fields}["Status"] == "paused after 3 rounds without a check-in"
    await wired.mocks.join(callers["dan"], tracks="coding", level="junior", timezone=None, availability=None)
    row = await store.optin(callers["dan"].member.id)
    assert row is not None and row["active"] == 1


async def test_scheduled_round_runs_once_at_its_time(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    await join_all(wired, admin, store, clock)
    await store.update_community(admin.community.id, mock_weekday=2, mock_time="17:00")  # Wednesday 17:00 UTC
    clock.set(datetime(2026, 11, 25, 16, 59, tzinfo=UTC))
    await wired.tick()
    assert groups_of(chat) == []
    clock.set(datetime(2026, 11, 25, 17, 0, tzinfo=UTC))
    await wired.tick()
    await wired.tick()
    assert len(groups_of(chat)) == 2
    rounds = await store.mock_rounds(admin.community.id)
    assert len(rounds) == 1 and json.loads(rounds[0]["report"])["paired"] == 5


async def test_reminder_and_checkin_wait_for_their_time(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    await join_all(wired, admin, store, clock)
    await wired.mocks.pair_now(admin)
    await wired.outbox.deliver()
    assert not [m for kind, _, m in chat.sent if m.title in ("Mock interview in 1 hour", "Did your mock interview happen?")]
    clock.advance(timedelta(days=6, hours=1))
    await wired.outbox.deliver()
    checkins = [m for kind, _, m in chat.sent if kind == "dm" and m.title == "Did your mock interview happen?"]
    assert len(checkins) == 5
    assert [b.action for b in checkins[0].buttons] == ["mock checkin", "mock checkin", "form"]
    assert [m for kind, _, m in chat.sent if m.title == "Mock interview in 1 hour"]


async def test_avoid_is_private_and_respected(wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat) -> None:
    callers = await join_all(wired, admin, store, clock)
    reply = await wired.mocks.avoid(callers["alice"], "bob")
    assert reply.ephemeral and "Nobody else is told" in reply.body
    await wired.mocks.pair_now(admin)
    await wired.outbox.deliver()
    assert all(not {"alice", "bob"} <= g for g in groups_of(chat))
    assert not any("avoid" in m.body.lower() for kind, where, m in chat.sent if where == "bob")


def test_availability_parsing_and_times() -> None:
    assert parse_availability("mon,wed 18-20")[:2] == [(0, 18), (0, 19)]
    assert len(parse_availability("weekdays 18-21, sat 10:00-14:00")) == 5 * 3 + 4
    assert parse_availability("fri-mon 9-10") == [(0, 9), (4, 9), (5, 9), (6, 9)]
    for bad in ("someday 1-2", "mon 21-18", "mon 9", ""):
        with pytest.raises(UsageError):
            parse_availability(bad)
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # Monday
    berlin = utc_hours([(0, 18)], "Europe/Berlin", now)  # 18:00 Berlin = 17:00 UTC in winter
    assert berlin == 1 << 17
    times = suggested_times(berlin | 1 << (24 + 17), now)
    assert times == [datetime(2026, 11, 23, 17, 0, tzinfo=UTC), datetime(2026, 11, 24, 17, 0, tzinfo=UTC)]
    slot = round_slots(0, 14, "17:00", "UTC", datetime(2026, 11, 25, tzinfo=UTC))
    assert slot.weekday() == 0 and (slot.date() - datetime(2026, 1, 5).date()).days % 14 == 0


async def test_mock_commands_through_the_table(services: Services, member: Caller) -> None:
    from bot.core.commands import Context, core_table, dispatch_line

    ctx = Context(services, member, core_table(), "test")
    joined = await dispatch_line(ctx, "/mock join coding,system-design senior Europe/Berlin weekdays 18-21, sat 10-14")
    assert {f.name: f.value for f in joined.fields}["Available"] == "weekdays 18-21, sat 10-14"
    bad = await dispatch_line(ctx, "/mock join chess")
    assert bad.is_error and "got chess" in bad.body
    assert (await dispatch_line(ctx, "/mock pause 2")).body.startswith("Paused until")
    assert "paused until" in {f.name: f.value for f in (await dispatch_line(ctx, "/mock status")).fields}["Status"]
    assert (await dispatch_line(ctx, "/mock checkin met")).body == "You have not been paired yet."
    assert (await dispatch_line(ctx, "/admin pair-now")).body == "Only community admins can use /admin pair-now."
    assert (await dispatch_line(ctx, "/mock leave")).body.startswith("You left")


async def test_pair_now_counts_as_the_periods_round(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    await join_all(wired, admin, store, clock)
    clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday, before the default 17:00 Monday slot
    await wired.mocks.pair_now(admin)
    clock.set(datetime(2026, 11, 23, 17, 30, tzinfo=UTC))
    await wired.tick()
    assert len(await store.mock_rounds(admin.community.id)) == 1
    clock.set(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))  # the next week's slot runs as usual
    await wired.tick()
    assert len(await store.mock_rounds(admin.community.id)) == 2
