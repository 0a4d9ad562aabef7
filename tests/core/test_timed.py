"""/timed: a clock per question, reminders through the outbox, the time taken shown with the verdict."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.errors import Conflict
from bot.core.models import Caller
from bot.core.services import Services
from bot.core.timed import BUDGET_MIN, TIMER_GRACE, duration, time_taken
from tests.conftest import RecordingChat

WRONG = "def count_pairs(nums, target):\n    return 0\n"


def test_durations() -> None:
    assert duration(1100) == "18 min 20 s" and duration(45) == "45 s" and duration(1500) == "25 min"
    assert time_taken(1100, 1500) == "Time taken: 18 min 20 s of 25 min"
    assert time_taken(1865, 1500) == "Time taken: 31 min 5 s of 25 min (over by 6 min 5 s)"
    assert BUDGET_MIN == {"coding": 25, "ml-coding": 30, "ml-theory": 5, "system-design": 45, "behavioral": 15, "sql": 20}


def dms(chat: RecordingChat) -> list[str]:
    return [m.title for kind, _, m in chat.sent if kind == "dm"]


async def test_code_timer_reminds_at_half_time_and_stops_when_accepted(
    wired: Services, member: Caller, bank: Bank, clock: FixedClock, chat: RecordingChat
) -> None:
    reply = await wired.timed.start(member, "pair-sum-count")
    assert reply.title == "Timed 25 min: Count pairs that sum to a target" and reply.ephemeral
    assert "clock is running: 25 min" in reply.body
    keys = [r.key for r in await wired.store.outbox_rows(member.community.id)]
    assert [k.rsplit(":", 1)[1] for k in keys] == ["half", "end"] and len(set(keys)) == 2
    with pytest.raises(Conflict, match="already running: 0 s of 25 min"):
        await wired.timed.start(member, "pair-sum-count")

    await wired.outbox.deliver()
    assert dms(chat) == []  # nothing before its time
    clock.advance(timedelta(minutes=12, seconds=30))
    await wired.outbox.deliver()
    assert dms(chat) == ["Half time · Count pairs that sum to a target"]

    clock.advance(timedelta(minutes=1))
    wrong = await wired.submissions.submit(member, "pair-sum-count", text=None, code=WRONG)
    assert "Timer still running: 13 min 30 s of 25 min" in wrong.footer

    clock.advance(timedelta(minutes=4, seconds=50))
    ok = await wired.submissions.submit(member, "pair-sum-count", text=None, code=bank.get("pair-sum-count").reference)
    assert ok.title.startswith("Accepted ✓")
    assert ok.footer.endswith("Time taken: 18 min 20 s of 25 min")
    assert "+5 points (practice: half points)" in ok.footer  # the rest of the footer is kept
    assert await wired.store.open_timer(member.member.id, "pair-sum-count") is None

    clock.advance(timedelta(minutes=30))
    await wired.outbox.deliver()
    assert dms(chat) == ["Half time · Count pairs that sum to a target"]  # the end reminder was cancelled
    again = await wired.submissions.submit(member, "pair-sum-count", text=None, code=WRONG)
    assert "Time taken" not in again.footer and "Timer" not in again.footer

    # a new timer on the same question can start once the first has stopped
    assert (await wired.timed.start(member, "pair-sum-count")).title.startswith("Timed 25 min")


async def test_theory_timer_stops_at_its_one_attempt_even_over_budget(
    wired: Services, member: Caller, clock: FixedClock, chat: RecordingChat
) -> None:
    await wired.timed.start(member, "overfit-first-step")
    clock.advance(timedelta(minutes=2, seconds=30))
    await wired.outbox.deliver()
    clock.advance(timedelta(minutes=3, seconds=35))
    await wired.outbox.deliver()
    assert dms(chat) == ["Half time · Validation loss rises while training loss falls", "Time's up · Validation loss rises while training loss falls"]
    reply = await wired.submissions.submit(member, "overfit-first-step", text="A", code=None)
    assert reply.title.startswith("Not quite ✗")
    assert reply.footer.endswith("Time taken: 6 min 5 s of 5 min (over by 1 min 5 s)")


async def test_a_revealed_question_cannot_be_timed(wired: Services, member: Caller, clock: FixedClock) -> None:
    await wired.tick()  # Monday's round is posted
    clock.advance(timedelta(days=1))
    await wired.tick()  # Tuesday's post reveals Monday's round
    # the fixture bank has two theory questions, so Monday's is not back in Tuesday's round
    revealed = {p.question_id for p in await wired.store.daily_history(member.community.id, "ml-theory")
                if p.revealed_at is not None}
    assert revealed
    with pytest.raises(Conflict, match="was revealed"):
        await wired.timed.start(member, revealed.pop())


async def test_late_timed_reminders_are_computed_when_sent_or_dropped(
    wired: Services, member: Caller, clock: FixedClock, chat: RecordingChat
) -> None:
    """After downtime a half-time DM says what is really left; once the session is over it is dropped,
    and a time's-up DM more than `TIMER_GRACE` late is dropped too."""
    await wired.timed.start(member, "pair-sum-count")  # 25 min: half time at 12:30
    clock.advance(timedelta(minutes=20))
    await wired.outbox.deliver()
    (half,) = [m for kind, _, m in chat.sent if kind == "dm"]
    assert half.title == "5 min left · Count pairs that sum to a target"
    assert half.body.startswith("5 min left of 25 min on `pair-sum-count`.")
    assert "12 min 30 s left" not in half.body

    chat.sent.clear()  # late by a fraction of a minute: the title and the body state one figure
    await wired.timed.start(member, "mean-center")  # 30 min: half time at 15 min
    clock.advance(timedelta(minutes=18, seconds=59.5))  # 11 min 0.5 s left (it said "12 min left" above "11 min")
    await wired.outbox.deliver()
    (late,) = [m for kind, _, m in chat.sent if kind == "dm"]  # pair-sum-count's time's up is long stale
    assert late.title == "12 min left · " + wired.bank.get("mean-center").title
    assert late.body.startswith("12 min left of 30 min on `mean-center`."), late.body

    chat.sent.clear()
    await wired.timed.start(member, "overfit-first-step")  # 5 min, and the bot is down for 12 hours
    clock.advance(timedelta(hours=12))
    await wired.outbox.deliver()
    assert dms(chat) == []  # neither "2 min 30 s left" nor a time's up half a day late
    rows = {r.key.rsplit(":", 1)[1]: r for r in await wired.store.outbox_rows(member.community.id)
            if r.key.startswith("timer:") and r.sent_at is None}
    assert set(rows) == {"half", "end"}
    assert all((r.last_error or "").startswith("dropped:") for r in rows.values())


async def test_times_up_within_the_grace_says_how_late(
    wired: Services, member: Caller, clock: FixedClock, chat: RecordingChat
) -> None:
    await wired.timed.start(member, "overfit-first-step")
    clock.advance(timedelta(minutes=8))  # 3 min after the end, inside TIMER_GRACE
    await wired.outbox.deliver()
    assert dms(chat) == ["Time's up · Validation loss rises while training loss falls"]  # the half-time one is dropped
    (end,) = [m for kind, _, m in chat.sent if kind == "dm"]
    assert end.body.startswith("5 min are over for `overfit-first-step` (time ran out 3 min ago).")
    assert TIMER_GRACE == timedelta(minutes=10)
