"""Study plans: phases fitted to the time left, a daily goal, progress, and one private nudge a day."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest

from bot.core.clock import FixedClock
from bot.core.errors import Conflict, NotFound, UsageError
from bot.core.models import Caller
from bot.core.plans import PHASES, allocate, due, goal_text, parse_start_args, schedule
from bot.core.services import Services
from tests.conftest import RecordingChat

MONDAY = date(2026, 11, 23)


def test_phases_share_the_days_and_compress() -> None:
    assert allocate(42, [3, 3, 3, 2]) == [12, 11, 11, 8]
    assert allocate(56, [3, 3, 3, 2]) == [15, 15, 15, 11]
    assert allocate(4, [3, 3, 3, 2]) == [1, 1, 1, 1]
    assert allocate(2, [3, 3, 3, 2]) == [0, 0, 1, 1]  # short plans keep the phases nearest the interview
    spans = schedule(MONDAY, MONDAY + timedelta(days=41))
    assert [s.phase.name for s in spans] == [p.name for p in PHASES]
    assert spans[0].start == MONDAY and spans[-1].end == MONDAY + timedelta(days=41)
    assert all(a.end + timedelta(days=1) == b.start for a, b in pairwise(spans))
    short = schedule(MONDAY, MONDAY + timedelta(days=1))
    assert [s.phase.name for s in short] == ["ML system design", "Full mock loops"]


def test_start_arguments() -> None:
    assert parse_start_args(None, None, MONDAY) == (MONDAY + timedelta(days=41), None)
    assert parse_start_args("8", None, MONDAY) == (MONDAY + timedelta(days=55), None)
    interview = date(2026, 12, 21)
    assert parse_start_args("2026-12-21", None, MONDAY) == (interview - timedelta(days=1), interview)
    assert parse_start_args("8", "2026-12-21", MONDAY) == (interview - timedelta(days=1), interview)  # the date wins
    with pytest.raises(UsageError, match="1 to 12 weeks"):
        parse_start_args("20", None, MONDAY)
    with pytest.raises(UsageError, match="not in the future"):
        parse_start_args("2026-11-23", None, MONDAY)
    with pytest.raises(UsageError, match="neither a number of weeks nor a date"):
        parse_start_args("soon", None, MONDAY)


def test_goals_add_up_over_the_days() -> None:
    spans = schedule(MONDAY, MONDAY + timedelta(days=41))
    assert due(spans, MONDAY) == {"coding": 2, "ml-theory": 1}
    assert due(spans, MONDAY + timedelta(days=2)) == {"coding": 6, "ml-theory": 3}
    assert goal_text({"coding": 2, "ml-theory": 1}, "easy") == "2 Coding questions + 1 ML theory question (aim: easy)"


async def test_plan_start_status_progress_and_stop(wired: Services, member: Caller, clock: FixedClock) -> None:
    reply = await wired.plans.start(member, None, "2026-12-21")
    assert reply.title == "Your plan · 28 days until your interview on Mon 21 Dec" and reply.ephemeral
    fields = {f.name: f.value for f in reply.fields}
    assert fields["Today's goal"] == "2 Coding questions + 1 ML theory question (aim: easy)"
    assert reply.body.splitlines()[0].startswith("**Coding foundations** · 23 Nov - 30 Nov (8 days)")
    with pytest.raises(Conflict, match="already have a plan"):
        await wired.plans.start(member, "6", None)

    await wired.submissions.submit(member, "overfit-first-step", text="B", code=None)  # a solve counts
    status = await wired.plans.status(member)
    fields = {f.name: f.value for f in status.fields}
    assert status.title == "Your plan · day 1 of 28 · interview Mon 21 Dec"
    assert fields["Progress"] == "1/3 due so far (on track ✓)\nCoding 0/2 · ML theory 1/1"
    assert fields["Today"] == "Coding 0/2 · ML theory 1/1"

    clock.advance(timedelta(days=1))
    status = await wired.plans.status(member)
    fields = {f.name: f.value for f in status.fields}
    assert status.title.startswith("Your plan · day 2 of 28")
    assert fields["Progress"].startswith("1/6 due so far (behind by 2 questions)")
    assert fields["Today"] == "Coding 0/2 · ML theory 0/1"

    assert "stopped" in (await wired.plans.stop(member)).body
    with pytest.raises(NotFound, match="no plan"):
        await wired.plans.status(member)
    assert (await wired.plans.start(member, "6", None)).title.startswith("Your plan · 42 days")


async def test_one_nudge_a_day_at_the_post_time(
    wired: Services, member: Caller, clock: FixedClock, chat: RecordingChat
) -> None:
    clock.set(clock.now().replace(hour=7))  # Monday 07:00 UTC, before the 09:00 post time
    await wired.plans.start(member, "1", None)

    def nudges() -> list[tuple[str, str]]:
        return [(where, m.title) for kind, where, m in chat.sent if kind == "dm"]

    await wired.tick()
    clock.set(clock.now().replace(hour=10))
    await wired.tick()
    assert nudges() == []  # the start reply carried today's goal

    clock.set(clock.now().replace(hour=8) + timedelta(days=1))  # Tuesday, before the post time
    await wired.tick()
    assert nudges() == []
    clock.set(clock.now().replace(hour=9, minute=1))
    await wired.tick()
    await wired.tick()
    assert nudges() == [("Bob", "Today's plan · day 2 of 7 · Coding foundations")]
    body = next(m for kind, _, m in chat.sent if kind == "dm")
    assert body.body == "2 Coding questions + 1 ML theory question (aim: medium)"
    assert any(f.name == "Progress" for f in body.fields)

    await wired.plans.stop(member)
    clock.advance(timedelta(days=1))
    await wired.tick()
    assert len(nudges()) == 1  # a stopped plan is quiet


async def test_the_day_after_the_plan_closes_it(
    wired: Services, member: Caller, clock: FixedClock, chat: RecordingChat
) -> None:
    await wired.plans.start(member, None, "2026-11-25")  # two days: Monday and Tuesday
    for _ in range(3):
        clock.advance(timedelta(days=1))
        await wired.tick()
    titles = [m.title for kind, _, m in chat.sent if kind == "dm"]
    assert titles == ["Today's plan · day 2 of 2 · Full mock loops", "Your plan is complete"]
    assert await wired.store.active_plan(member.member.id) is None


async def test_the_nudge_follows_the_members_own_timezone(
    wired: Services, member: Caller, clock: FixedClock, chat: RecordingChat
) -> None:
    await wired.store.update_member(member.member.id, timezone="Asia/Tokyo")  # UTC+9, no daylight saving
    clock.set(clock.now().replace(hour=7))  # Monday 07:00 UTC = 16:00 in Tokyo
    await wired.plans.start(member, "1", None)
    clock.set(clock.now().replace(hour=23, minute=30))  # Tuesday 08:30 in Tokyo: before 09:00 there
    await wired.tick()
    assert not [m for kind, _, m in chat.sent if kind == "dm"]
    clock.advance(timedelta(minutes=31))  # Tuesday 09:01 in Tokyo, still Monday in UTC
    await wired.tick()
    [(where, title)] = [(where, m.title) for kind, where, m in chat.sent if kind == "dm"]
    assert where == "Bob" and title.startswith("Today's plan · day 2 of 7")
