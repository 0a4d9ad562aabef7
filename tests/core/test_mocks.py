"""Mock interview rounds through the services: opt-ins, pairing, packs, check-ins, feedback, pauses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import FixedClock
from bot.core.errors import Conflict, NotFound, UsageError
from bot.core.messages import Message
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

    # in the group of three, x reports z as a no-show: z sits out the next round and is told
    x, _, z = sorted(next(g for g in groups_of(chat) if len(g) == 3))
    await wired.mocks.checkin(callers[x], "no-show", z)
    clock.advance(timedelta(days=7))
    chat.sent.clear()
    report = await wired.mocks.pair_now(admin)
    assert f"{z} (reported no-show: sits out one round)" in {f.name: f.value for f in report.fields}["Paused or sitting out"]
    await wired.outbox.deliver()
    assert any(where == z and m.title == "You sit out this mock round" for kind, where, m in chat.sent if kind == "dm")
    assert z not in set().union(*groups_of(chat))


async def test_silent_members_are_paused_after_three_rounds(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers = await join_all(wired, admin, store, clock)
    for _ in range(4):
        await wired.mocks.pair_now(admin)
        # nobody in dan's group ever checks in (one check-in records the outcome for the whole group)
        silent = {r["display_name"] for r in await store.latest_group_of(callers["dan"].member.id)}
        for name, c in callers.items():
            if name not in silent:
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
    clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))  # an hour before the first shared hour, 17:00 UTC
    await wired.outbox.deliver()
    assert [m for kind, _, m in chat.sent if m.title == "Mock interview in 1 hour"]
    clock.set(datetime(2026, 11, 29, 13, 0, tzinfo=UTC))  # six days and an hour after the pairing
    await wired.outbox.deliver()
    checkins = [m for kind, _, m in chat.sent if kind == "dm" and m.title == "Did your mock interview happen?"]
    assert len(checkins) == 5
    assert [b.action for b in checkins[0].buttons] == ["mock checkin", "mock checkin", "form"]


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


# -- issue 16: one round per period, one outcome per pair, reminders computed when they go out ------


async def ledger(store: Store, pattern: str) -> list[tuple[int, int, str]]:
    rows = await store._all("SELECT member_id, points, dedupe_key FROM points_ledger WHERE dedupe_key LIKE ?"
                            " ORDER BY id", (pattern,))
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


async def a_pair(wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat,
                 leave: tuple[str, ...] = ()) -> tuple[dict[str, Caller], str, str]:
    """Everyone joins (`leave` leave again) and is paired; returns the callers and a group of two."""
    callers = await join_all(wired, admin, store, clock)
    for name in leave:
        await wired.mocks.leave(callers[name])
    await wired.mocks.pair_now(admin)
    await wired.outbox.deliver()
    a, b = sorted(next(g for g in groups_of(chat) if len(g) == 2))
    return callers, a, b


async def test_a_second_pair_now_in_the_same_period_is_refused_unless_forced(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers = await join_all(wired, admin, store, clock)
    await wired.mocks.pair_now(admin)  # Mon 23 Nov 12:00 UTC: the round of the Mon 23 Nov 17:00 period
    await wired.outbox.deliver()
    first = groups_of(chat)
    clock.advance(timedelta(hours=2))
    with pytest.raises(Conflict) as refused:
        await wired.mocks.pair_now(admin)
    text = str(refused.value)
    assert "already paired on Mon 23 Nov 12:00 (UTC)" in text
    assert "next round is due Mon 30 Nov 17:00 (UTC)" in text and "/admin pair-now --force" in text
    assert len(await store.mock_rounds(admin.community.id)) == 1
    # the members keep their group: feedback to a partner of round one still works
    a, b = sorted(next(g for g in first if len(g) == 2))
    assert "sent privately" in (await wired.mocks.feedback(callers[a], b, "4 4 4 4", "")).body

    chat.sent.clear()
    forced = await wired.mocks.pair_now(admin, force=True)
    assert forced.title == "Mock round · pairing report" and "replace the round paired on Mon 23 Nov 12:00" in forced.footer
    assert len(await store.mock_rounds(admin.community.id)) == 2
    # round one's reminders and check-ins are not sent to members round two grouped again
    clock.advance(timedelta(days=6, hours=1))
    chat.sent.clear()
    await wired.outbox.deliver()
    checkins = [where for kind, where, m in chat.sent if m.title == "Did your mock interview happen?"]
    assert sorted(checkins) == sorted(p[0] for p in PEOPLE)  # once each: round two's, not round one's too
    # the next week's period is open again without --force
    clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    assert (await wired.mocks.pair_now(admin)).title == "Mock round · pairing report"


async def test_pair_now_force_through_the_command_table(wired: Services, admin: Caller, store: Store, clock: FixedClock) -> None:
    from bot.core.commands import Context, core_table, dispatch_line

    await join_all(wired, admin, store, clock)
    ctx = Context(wired, admin, core_table(), "test")
    assert (await dispatch_line(ctx, "/admin pair-now")).title == "Mock round · pairing report"
    clock.advance(timedelta(minutes=5))
    again = await dispatch_line(ctx, "/admin pair-now")
    assert again.is_error and "--force" in again.body
    assert (await dispatch_line(ctx, "/admin pair-now --force")).title == "Mock round · pairing report"
    assert len(await store.mock_rounds(admin.community.id)) == 2
    assert "[--force]" in (await dispatch_line(ctx, "/help admin pair-now")).plain_text()


async def test_checking_in_twice_awards_points_once(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers, a, b = await a_pair(wired, admin, store, clock, chat)
    first = await wired.mocks.checkin(callers[a], "met", None)
    assert "+10 points" in first.body
    again = await wired.mocks.checkin(callers[a], "met", None)
    assert "already recorded" in again.body.lower() and "+10" not in again.body
    agree = await wired.mocks.checkin(callers[b], "met", None)  # the partner agrees: nothing new to give
    assert "already recorded" in agree.body.lower() and "+10" not in agree.body
    ids = {callers[a].member.id, callers[b].member.id}
    awards = await ledger(store, "mock%")
    assert sorted(m for m, _, _ in awards) == sorted(ids) and all(p == 10 for _, p, _ in awards)  # one each, ever
    assert await store.total_points(callers[a].member.id) == 10 and await store.total_points(callers[b].member.id) == 10
    await wired.outbox.deliver()
    told = [m for kind, where, m in chat.sent if kind == "dm" and where == b and m.title == "Mock check-in: met"]
    assert len(told) == 1 and a in told[0].body  # the partner learns what was recorded, once
    assert await store.mocks_done(callers[b].member.id) == 1


async def test_contradicting_checkins_mark_the_pair_disputed(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers, a, b = await a_pair(wired, admin, store, clock, chat)
    await wired.mocks.checkin(callers[a], "met", None)
    await wired.mocks.feedback(callers[a], b, "4 4 4 4", "fine")
    reply = await wired.mocks.checkin(callers[b], "no-show", a)
    assert "disputed" in reply.body and "nobody sits out" in reply.body
    again = await wired.mocks.checkin(callers[a], "met", None)
    assert "disputed" in again.body and "+10" not in again.body
    # the met points are taken back (the ledger stays append-only); feedback points stay
    assert await store.total_points(callers[a].member.id) == 5
    assert await store.total_points(callers[b].member.id) == 0
    assert sorted(p for _, p, _ in await ledger(store, "mock%")) == [-10, -10, 10, 10]
    assert await store.mocks_done(callers[a].member.id) == 0
    await wired.outbox.deliver()
    disputed = {where for kind, where, m in chat.sent if kind == "dm" and m.title == "Mock check-in disputed"}
    assert disputed == {a}  # b sees it in the reply; a is told by DM
    # nobody is benched: both are paired in the next round
    clock.advance(timedelta(days=7))
    chat.sent.clear()
    report = await wired.mocks.pair_now(admin)
    assert "no-show" not in {f.name: f.value for f in report.fields}["Paused or sitting out"]
    await wired.outbox.deliver()
    assert {a, b} <= set().union(*groups_of(chat))
    for name in (a, b):
        row = await store.optin(callers[name].member.id)
        assert row is not None and row["no_shows"] == 0 and row["active"] == 1


async def test_a_no_show_then_a_denial_is_disputed(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers, a, b = await a_pair(wired, admin, store, clock, chat)
    reported = await wired.mocks.checkin(callers[a], "no-show", b)
    assert f"{b} did not show" in reported.body
    assert "already recorded" in (await wired.mocks.checkin(callers[a], "no-show", b)).body.lower()
    await wired.outbox.deliver()
    told = [m for kind, where, m in chat.sent if kind == "dm" and where == b and m.title == "Reported as a no-show"]
    assert len(told) == 1 and "/mock checkin met" in told[0].body
    denied = await wired.mocks.checkin(callers[b], "met", None)
    assert "disputed" in denied.body
    assert await ledger(store, "mock%") == []  # a disputed mock gives no points
    clock.advance(timedelta(days=7))
    report = await wired.mocks.pair_now(admin)
    assert "no-show" not in {f.name: f.value for f in report.fields}["Paused or sitting out"]


async def test_feedback_says_its_sender_was_there(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    """Issue 16 item 5: A sends feedback without checking in, then B reports A as a no-show. Before,
    A sat out the next round while B kept A's feedback; now the pair is disputed and nobody sits out."""
    callers, a, b = await a_pair(wired, admin, store, clock, chat)
    await wired.mocks.feedback(callers[a], b, "4 4 4 4", "clear walkthrough")
    reply = await wired.mocks.checkin(callers[b], "no-show", a)
    assert "disputed" in reply.body and "nobody sits out" in reply.body, reply.body
    assert f"{a} sent feedback on it; {b} said {a} didn't come" in reply.body
    await wired.outbox.deliver()
    told = [m for kind, where, m in chat.sent if kind == "dm" and where == a and m.title == "Mock check-in disputed"]
    assert len(told) == 1 and f"{a} sent feedback on it" in told[0].body
    assert not [m for kind, where, m in chat.sent if kind == "dm" and m.title == "Reported as a no-show"]
    assert await ledger(store, "mock%") == []  # a disputed mock gives no points; the feedback's +5 stays
    assert await store.total_points(callers[a].member.id) == 5
    clock.advance(timedelta(days=7))
    report = await wired.mocks.pair_now(admin)
    assert "no-show" not in {f.name: f.value for f in report.fields}["Paused or sitting out"]
    row = await store.optin(callers[a].member.id)
    assert row is not None and row["no_shows"] == 0


async def test_a_member_reported_absent_contests_before_sending_feedback(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    """The other order: B is reported as a no-show, then B's feedback would be kept by A while B sits
    out. B's feedback is refused until B contests with /mock checkin met, which disputes the pair."""
    callers, a, b = await a_pair(wired, admin, store, clock, chat)
    await wired.mocks.checkin(callers[a], "no-show", b)
    with pytest.raises(Conflict, match=r"reported as a no-show for this mock.*/mock checkin met first"):
        await wired.mocks.feedback(callers[b], a, "4 4 4 4", "fine")
    assert await store.pair_feedback(int((await store.latest_group_of(callers[b].member.id))[0]["pair_id"])) == []
    assert await store.total_points(callers[b].member.id) == 0
    assert "disputed" in (await wired.mocks.checkin(callers[b], "met", None)).body
    sent = await wired.mocks.feedback(callers[b], a, "4 4 4 4", "fine")
    assert sent.kind == "success"
    assert "Feedback sent" in (await wired.mocks.feedback(callers[a], b, "3 3 3 3", "ok")).body  # the reporter may too
    clock.advance(timedelta(days=7))
    report = await wired.mocks.pair_now(admin)
    assert "no-show" not in {f.name: f.value for f in report.fields}["Paused or sitting out"]


async def test_two_no_shows_in_a_row_pause_and_an_uncontested_one_benches(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers = await join_all(wired, admin, store, clock)
    for name in ("carol", "dan", "erin"):
        await wired.mocks.leave(callers[name])
    await wired.mocks.pair_now(admin)
    await wired.mocks.checkin(callers["alice"], "no-show", "bob")
    clock.advance(timedelta(days=7))
    report = await wired.mocks.pair_now(admin)
    assert "bob (reported no-show: sits out one round)" in {f.name: f.value for f in report.fields}["Paused or sitting out"]
    row = await store.optin(callers["bob"].member.id)
    assert row is not None and row["no_shows"] == 1 and row["active"] == 1
    clock.advance(timedelta(days=7))
    await wired.mocks.pair_now(admin)  # bob is back
    await wired.mocks.checkin(callers["alice"], "no-show", "bob")
    clock.advance(timedelta(days=7))
    report = await wired.mocks.pair_now(admin)
    assert "bob (two no-shows in a row: paused)" in {f.name: f.value for f in report.fields}["Paused or sitting out"]
    row = await store.optin(callers["bob"].member.id)
    assert row is not None and row["active"] == 0 and row["pause_reason"] == "no-show"
    await wired.outbox.deliver()
    assert any(where == "bob" and m.title == "Your mock interviews are paused" and "/mock join" in m.body
               for kind, where, m in chat.sent if kind == "dm")


async def test_checkin_prompt_skips_members_whose_pair_outcome_is_recorded(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers, a, b = await a_pair(wired, admin, store, clock, chat)
    await wired.mocks.checkin(callers[a], "met", None)
    clock.advance(timedelta(days=6, hours=1))
    chat.sent.clear()
    await wired.outbox.deliver()
    asked = sorted(where for kind, where, m in chat.sent if kind == "dm" and m.title == "Did your mock interview happen?")
    assert asked == sorted(p[0] for p in PEOPLE if p[0] not in (a, b))
    dropped = [r for r in await store.outbox_rows(admin.community.id) if r.key.startswith("checkin:")
               and r.failed_at is not None]
    assert len(dropped) == 2 and all((r.last_error or "").startswith("dropped:") for r in dropped)


async def slot_of(store: Store, caller: Caller) -> datetime:
    group = await store.latest_group_of(caller.member.id)
    rows = await store.round_groups(int(group[0]["round_id"]))
    return datetime.fromisoformat(next(r["suggested_time"] for r in rows if r["member_id"] == caller.member.id))


def reminders_to(chat: RecordingChat, name: str) -> list[Message]:
    return [m for kind, where, m in chat.sent if kind == "dm" and where == name and "slot" in m.body]


async def test_slot_reminders_are_written_when_they_go_out(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers, a, b = await a_pair(wired, admin, store, clock, chat, leave=("carol",))  # the others share 17-20 UTC
    chat.sent.clear()
    start = await slot_of(store, callers[a])
    zone = dict((p[0], p[3]) for p in PEOPLE)[a]
    local = start.astimezone(ZoneInfo(zone))
    # on time: an hour before
    clock.set(start - timedelta(hours=1))
    await wired.outbox.deliver()
    (on_time,) = reminders_to(chat, a)
    assert on_time.title == "Mock interview in 1 hour" and f"starts at {local:%H:%M} ({zone})" in on_time.body
    assert b in on_time.body


async def test_a_late_slot_reminder_says_the_slot_started_or_is_dropped(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers, a, b = await a_pair(wired, admin, store, clock, chat, leave=("carol",))  # the others share 17-20 UTC
    chat.sent.clear()
    start = await slot_of(store, callers[a])
    zone = dict((p[0], p[3]) for p in PEOPLE)[a]
    local = start.astimezone(ZoneInfo(zone))
    clock.set(start - timedelta(minutes=20))  # the bot was down when the reminder fell due
    await wired.outbox.deliver()
    (late,) = reminders_to(chat, a)
    assert late.title == "Mock interview in 20 min"
    chat.sent.clear()
    async with store.transaction() as db:  # as if never sent
        await db.execute("UPDATE outbox SET sent_at = NULL WHERE key LIKE 'remind:%'")
    clock.set(start + timedelta(minutes=10))
    await wired.outbox.deliver()
    (started,) = reminders_to(chat, a)
    assert "in 1 hour" not in started.title + started.body
    assert started.title == "Your mock slot has started" and f"started at {local:%H:%M} ({zone})" in started.body
    chat.sent.clear()
    async with store.transaction() as db:
        await db.execute("UPDATE outbox SET sent_at = NULL WHERE key LIKE 'remind:%'")
    clock.set(start + timedelta(days=1))  # a day past the slot: nothing is sent
    await wired.outbox.deliver()
    assert reminders_to(chat, a) == [] and reminders_to(chat, b) == []
    rows = [r for r in await store.outbox_rows(admin.community.id) if r.key.startswith("remind:")]
    mine = [r for r in rows if r.member_id == callers[a].member.id]
    assert mine and all(r.sent_at is None and (r.last_error or "").startswith("dropped:") for r in mine)
