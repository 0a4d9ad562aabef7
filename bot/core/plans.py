"""`/plan`: a personal study plan across the five rounds, fitted to the time left before the interview.

Decisions:
- A plan runs from the member's local today for `weeks` weeks (default 6, 1 to 12), or, with an
  interview date, up to the day before it (the date wins over the weeks; at most 26 weeks ahead).
  One active plan per member; `/plan stop` ends it, `/plan start` again begins a new one.
- Phases follow the preparation guides: coding foundations -> ML coding & theory -> ML system design
  (with behavioral stories) -> full mock loops, sharing the days in the ratio 3:3:3:2 (largest
  remainder, at least one day each). A plan shorter than four days keeps only the last phases, so
  the time nearest the interview is always spent on full loops.
- Each day's goal is its phase's questions per track (`Phase.goal`), with a difficulty to aim for
  that rises through the phase: easy in its first third, medium, then hard.
- Progress counts the distinct questions the member solved (accepted, correct or recorded) per track
  since the plan started, against the sum of the daily goals up to today. The member is *on track*
  when they have done at least what was due up to yesterday.
- The daily nudge: at the community's post time, one private DM per active plan per local day
  (the plan row records the day it was last nudged, in the same transaction as the outbox write),
  with the day's goal and the progress so far. The day after the plan's last day brings a closing
  message and ends the plan. Starting a plan shows the day's goal at once, so no nudge that day.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.clock import Clock
from bot.core.daily import at_local
from bot.core.errors import Conflict, NotFound, UsageError, shown
from bot.core.messages import Field, Message
from bot.core.models import SOLVED_VERDICTS, TRACK_LABELS, TRACKS, Caller, Community, OutboxItem
from bot.core.ports import Store

DEFAULT_WEEKS = 6
MAX_WEEKS = 12
MAX_DAYS_AHEAD = 26 * 7


@dataclass(frozen=True)
class Phase:
    name: str
    weight: int
    goal: Mapping[str, int]  # track -> questions per day
    tip: str


PHASES: tuple[Phase, ...] = (
    Phase("Coding foundations", 3, {"coding": 2, "ml-theory": 1},
          "25 minutes per coding problem: run each under /timed. Patterns first: hashing, two pointers, graphs."),
    Phase("ML coding & theory", 3, {"ml-coding": 1, "ml-theory": 3},
          "Implement the classics in numpy (30 min each) and drill the fundamentals: metrics, bias-variance, losses."),
    Phase("ML system design", 3, {"system-design": 1, "behavioral": 1},
          "45 minutes per design, out loud. Write one STAR story a day (/story add) until /story gaps is empty."),
    Phase("Full mock loops", 2, {t: 1 for t in TRACKS},
          "A whole loop a day under the clock, and a peer mock every week (/mock join)."),
)


@dataclass(frozen=True)
class PhaseSpan:
    phase: Phase
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def allocate(days: int, weights: Sequence[int]) -> list[int]:
    """Share `days` between phases by weight (largest remainder, at least one day each)."""
    n = len(weights)
    if days < n:
        return [0] * (n - days) + [1] * days
    spare = days - n
    total = sum(weights)
    raw = [spare * w / total for w in weights]
    out = [1 + math.floor(r) for r in raw]
    order = sorted(range(n), key=lambda i: (-(raw[i] - math.floor(raw[i])), i))
    for i in order[: days - sum(out)]:
        out[i] += 1
    return out


def schedule(starts_on: date, ends_on: date) -> list[PhaseSpan]:
    """The plan's phases with their dates."""
    days = (ends_on - starts_on).days + 1
    spans: list[PhaseSpan] = []
    cursor = starts_on
    for phase, n in zip(PHASES, allocate(days, [p.weight for p in PHASES]), strict=True):
        if n == 0:
            continue
        spans.append(PhaseSpan(phase, cursor, cursor + timedelta(days=n - 1)))
        cursor += timedelta(days=n)
    return spans


def span_on(spans: Sequence[PhaseSpan], day: date) -> PhaseSpan | None:
    return next((s for s in spans if s.start <= day <= s.end), None)


def level_on(span: PhaseSpan, day: date) -> str:
    third = (day - span.start).days * 3 // span.days
    return ("easy", "medium", "hard")[min(third, 2)]


def goal_text(goal: Mapping[str, int], level: str | None = None) -> str:
    parts = [f"{n} {TRACK_LABELS[t]} question{'s' if n > 1 else ''}" for t, n in goal.items()]
    return " + ".join(parts) + (f" (aim: {level})" if level else "")


def due(spans: Sequence[PhaseSpan], through: date) -> dict[str, int]:
    """Questions per track the plan asks for from its start through `through` (inclusive)."""
    out: dict[str, int] = {}
    for span in spans:
        last = min(span.end, through)
        if last < span.start:
            continue
        n = (last - span.start).days + 1
        for track, k in span.phase.goal.items():
            out[track] = out.get(track, 0) + n * k
    return out


def parse_start_args(weeks: str | None, when: str | None, today: date) -> tuple[date, date | None]:
    """(last day of the plan, interview date) from `[weeks] [interview-date]`, in either order."""
    interview: date | None = None
    n_weeks: int | None = None
    for value in (weeks, when):
        if not value:
            continue
        if value.strip().isdigit():  # '²' and '٣' are digits too, and int() cannot take 5000 of them
            n_weeks = int(value) if value.strip().isascii() and len(value.strip()) <= 3 else 0
            if not 1 <= n_weeks <= MAX_WEEKS:
                raise UsageError(f"A plan is 1 to {MAX_WEEKS} weeks, got {shown(value.strip())}.")
            continue
        try:
            interview = date.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(f"{shown(value)} is neither a number of weeks nor a date such as 2026-12-24.") from None
        if interview <= today:
            raise UsageError(f"The interview date {interview:%d %b %Y} is not in the future.")
        if (interview - today).days > MAX_DAYS_AHEAD:
            raise UsageError(f"{interview:%d %b %Y} is more than 26 weeks away; start the plan 6 to 8 weeks before.")
    if interview is not None:
        return interview - timedelta(days=1), interview
    return today + timedelta(days=7 * (n_weeks or DEFAULT_WEEKS) - 1), None


class Plans:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def _today(self, caller: Caller) -> date:
        tz = caller.member.timezone or caller.community.timezone
        return self.clock.now().astimezone(ZoneInfo(tz)).date()

    async def start(self, caller: Caller, weeks: str | None, when: str | None) -> Message:
        today = self._today(caller)
        ends_on, interview = parse_start_args(weeks, when, today)
        if await self.store.active_plan(caller.member.id) is not None:
            raise Conflict("You already have a plan: /plan status shows it; /plan stop ends it before a new one.")
        now = self.clock.now()
        row, _ = await self.store.start_plan(community_id=caller.community.id, member_id=caller.member.id,
                                             starts_on=today, ends_on=ends_on, interview_on=interview, now=now)
        # today's goal is in this reply: no nudge today (nudge days are the community's, as in tick)
        await self.store.nudge_plan(int(row["id"]), now.astimezone(ZoneInfo(caller.community.timezone)).date(), [],
                                    now=now)
        spans = schedule(today, ends_on)
        days = (ends_on - today).days + 1
        lines = [f"**{s.phase.name}** · {s.start:%d %b} - {s.end:%d %b} ({s.days} day{'s' * (s.days > 1)}): "
                 f"{goal_text(s.phase.goal)} a day" for s in spans]
        until = f"your interview on {interview:%a %d %b}" if interview else f"{ends_on:%a %d %b}"
        if interview and weeks and when:
            lines.append("_The interview date sets the end; the number of weeks was not used._")
        today_span = spans[0]
        return Message(
            title=f"Your plan · {days} days until {until}",
            body="\n".join(lines),
            fields=(Field("Today's goal", goal_text(today_span.phase.goal, level_on(today_span, today))),
                    Field("How", today_span.phase.tip)),
            footer="A private nudge with the day's goal comes at the daily post time. /plan status · /plan stop",
            kind="success",
            ephemeral=True,
        )

    async def _solved_since(self, member_id: int, since: datetime, tz: str) -> tuple[dict[str, int], dict[str, int]]:
        """(solved per track since the plan started, solved per track on the member's local today)."""
        total: dict[str, set[str]] = {}
        today: dict[str, set[str]] = {}
        local_today = self.clock.now().astimezone(ZoneInfo(tz)).date()
        for r in await self.store.member_submissions(member_id):
            at = datetime.fromisoformat(r["created_at"])
            if at < since or str(r["verdict"]) not in SOLVED_VERDICTS:
                continue
            total.setdefault(str(r["track"]), set()).add(str(r["question_id"]))
            if at.astimezone(ZoneInfo(tz)).date() == local_today:
                today.setdefault(str(r["track"]), set()).add(str(r["question_id"]))
        return {t: len(q) for t, q in total.items()}, {t: len(q) for t, q in today.items()}

    async def progress_fields(self, member_id: int, plan: Mapping[str, object], day: date, tz: str) -> list[Field]:
        starts_on = date.fromisoformat(str(plan["starts_on"]))
        ends_on = date.fromisoformat(str(plan["ends_on"]))
        spans = schedule(starts_on, ends_on)
        solved, solved_today = await self._solved_since(member_id, datetime.fromisoformat(str(plan["started_at"])), tz)
        through = min(day, ends_on)
        expected = due(spans, through)
        before = due(spans, through - timedelta(days=1))
        done = sum(min(solved.get(t, 0), n) for t, n in expected.items())
        done_before = sum(min(solved.get(t, 0), n) for t, n in before.items())
        owed = sum(before.values()) - done_before
        status = "on track ✓" if owed <= 0 else f"behind by {owed} question{'s' * (owed > 1)}"
        per_track = " · ".join(f"{TRACK_LABELS[t]} {solved.get(t, 0)}/{n}" for t, n in expected.items())
        fields = [Field("Progress", f"{done}/{sum(expected.values())} due so far ({status})\n{per_track}")]
        span = span_on(spans, day)
        if span is not None:
            today = " · ".join(f"{TRACK_LABELS[t]} {min(solved_today.get(t, 0), n)}/{n}" for t, n in span.phase.goal.items())
            fields.append(Field("Today", today))
        return fields

    async def status(self, caller: Caller) -> Message:
        plan = await self.store.active_plan(caller.member.id)
        if plan is None:
            raise NotFound("You have no plan. Start one: /plan start [weeks] [interview-date], e.g. /plan start 6.")
        tz = caller.member.timezone or caller.community.timezone
        day = self._today(caller)
        starts_on, ends_on = date.fromisoformat(plan["starts_on"]), date.fromisoformat(plan["ends_on"])
        spans = schedule(starts_on, ends_on)
        span = span_on(spans, day)
        number = (day - starts_on).days + 1
        total = (ends_on - starts_on).days + 1
        phases = "\n".join(f"{'▶ ' if s is span else ''}{s.phase.name} · {s.start:%d %b} - {s.end:%d %b}" for s in spans)
        fields = [Field("Phases", phases)]
        if span is not None:
            fields.append(Field("Today's goal", goal_text(span.phase.goal, level_on(span, day))))
        fields += await self.progress_fields(caller.member.id, plan, day, tz)
        interview = f" · interview {date.fromisoformat(plan['interview_on']):%a %d %b}" if plan["interview_on"] else ""
        return Message(title=f"Your plan · day {min(number, total)} of {total}{interview}", fields=tuple(fields),
                       footer="/practice picks a question from your weakest track.", ephemeral=True)

    async def stop(self, caller: Caller) -> Message:
        plan = await self.store.active_plan(caller.member.id)
        if plan is None:
            raise NotFound("You have no plan to stop.")
        await self.store.stop_plan(int(plan["id"]), now=self.clock.now())
        return Message(body="Your plan is stopped; no more daily nudges. /plan start begins a new one.",
                       kind="success", ephemeral=True)

    async def tick(self, community: Community) -> None:
        """One private nudge per active plan per day: the member's own day, at the community's post time
        in the member's timezone (the community's when they set none)."""
        now = self.clock.now()
        latest = (now + timedelta(days=1)).date()  # no timezone is more than a day ahead of UTC
        for plan in await self.store.plans_to_nudge(community.id, latest):
            member_id = int(plan["member_id"])
            tz = plan["member_timezone"] or community.timezone
            # the member's own day, at the community's post time in their own timezone
            day = now.astimezone(ZoneInfo(tz)).date()
            if now < at_local(replace(community, timezone=tz), day, community.post_time):
                continue
            if plan["last_nudged_on"] and date.fromisoformat(plan["last_nudged_on"]) >= day:
                continue
            starts_on, ends_on = date.fromisoformat(plan["starts_on"]), date.fromisoformat(plan["ends_on"])
            key = f"plan:{plan['id']}:{day.isoformat()}"
            if day > ends_on:
                message = Message(title="Your plan is complete",
                                  body="That was the last day of your plan. Sleep well before the interview, and "
                                       "rehearse your stories once more (/story list). Good luck!",
                                  fields=tuple(await self.progress_fields(member_id, plan, ends_on, tz)))
                item = OutboxItem(community_id=community.id, key=key, purpose="dm", member_id=member_id, message=message)
                await self.store.nudge_plan(int(plan["id"]), day, [item], now=now, stop=True)
                continue
            if day < starts_on:
                continue
            spans = schedule(starts_on, ends_on)
            span = span_on(spans, day)
            assert span is not None
            number = (day - starts_on).days + 1
            total = (ends_on - starts_on).days + 1
            message = Message(
                title=f"Today's plan · day {number} of {total} · {span.phase.name}",
                body=goal_text(span.phase.goal, level_on(span, day)),
                fields=(*await self.progress_fields(member_id, plan, day, tz), Field("How", span.phase.tip)),
                footer="/practice picks a question from your weakest track · /plan status · /plan stop",
            )
            item = OutboxItem(community_id=community.id, key=key, purpose="dm", member_id=member_id, message=message)
            await self.store.nudge_plan(int(plan["id"]), day, [item], now=now)
