"""Peer mock interviews: opt-in, scheduled pairing, packs, reminders, check-ins, feedback, no-shows.

Decisions:
- Joining: `/mock join [tracks] [level] [timezone] [availability]`. Availability is weekly windows
  in the member's timezone, e.g. `weekdays 18-21, sat 10-14` (days: mon..sun, weekdays, weekends,
  daily; hours 0-24, `HH` or `HH:MM`, rounded to whole hours). Default: weekdays 18-21 and
  weekends 10-16. Joining again updates the preferences and resumes a pause.
- Schedule: a round every `mock_cadence_days` (7 by default, weekly) on `mock_weekday` at
  `mock_time` in the community's timezone; rounds fall on dates whose distance from Monday
  2026-01-05 is a multiple of the cadence. A round is created once (unique per community and slot)
  and only within a day of its time; `/admin pair-now` runs one at once, and counts as the round
  of its period (a scheduled round within half a cadence after it is skipped).
- One round per period (`round_period`: from half a cadence before a slot to half a cadence
  after it). A second `/admin pair-now` in the same period is refused, saying when this period's
  round was paired, when the next is due and how to force it; `/admin pair-now --force` pairs
  everyone again at once. The new groups replace the old (check-ins and feedback act on a
  member's latest group), and the old round's reminders and check-ins are dropped for everyone
  paired again (see "Reminders").
- Who is paired: active opt-ins whose pause has ended (`/mock pause` resumes by itself on the
  date). A member reported as a no-show (an uncontested one: the pair's outcome is `no-show`) sits
  out the next round and is told why; a second no-show in a row (counted when the next round is
  paired; a mock that happened resets it, and so does `/mock join`) pauses them until they
  `/mock join` again, and they are told. A member whose group recorded no outcome for 3 rounds in
  a row is paused and told how to come back. Groups come from `pairing.pair_members` (see there).
- Check-ins: one outcome per pair (`mock_pairs.outcome`, `decide_checkin`). `met` says everyone in
  the group came; `no-show <member>` says the reporter came and that member did not.
  - The first check-in records the outcome for the whole group: met gives +10 points to each
    member (ledger key `mock:<pair>:<member>`, so never twice); a no-show benches the member
    named. The other members are told by DM what was recorded and how to contradict it.
  - The same outcome again (a repeat, or a partner who agrees) changes nothing: the reply says it
    is already recorded, and no points are given again.
  - A contradiction (a member said to be both there and not there: met against a no-show, a
    no-show reported by the member reported absent, or against one who checked in) marks the pair
    `disputed`, for good: no points for the mock (met points already given are taken back by a
    ledger entry with the same local date, key `...:void`), no no-show counts and nobody sits out.
    The member who contradicted sees it in the reply, every other member by DM. Feedback given
    stays given.
  - Feedback on a partner says its sender was there: a no-show reported against a member who
    already sent feedback in the pair is a contradiction too (disputed, as above), and a member
    whose pair's outcome names them as the no-show cannot send feedback until they contest it with
    `/mock checkin met` (which disputes the pair). So nobody sits out while the partner keeps
    their feedback.
  - Who checked in no longer matters for silence: a group with any outcome is not silent.
- Each group gets a private space (outbox purpose `space`, opened once even across retries) with
  introductions, suggested times from overlapping availability (up to three, shown in each
  member's timezone), the interview order and the agenda; each member gets a private interviewer
  pack by DM: a question from a track both chose that the interviewee has not seen, its prompt,
  rubric, hints and follow-ups, and a timed agenda. Then they swap.
- A reminder DM 1 hour before the first suggested time; a check-in DM with buttons one day before
  the next round; feedback (`/mock feedback <member> <scores> [notes]`, scores 1-5 for
  communication, problem solving, technical depth and structure) is delivered privately to the
  partner. Points: +10 to each member for a mock checked in as met, +5 for each feedback given.
- Reminders are written when they go out (`render_reminder`, `render_checkin`, registered with the
  outbox), from the database and the current time, never from what was true when they were
  queued; like a daily post after downtime, each has a grace window and is dropped past it:
  - the slot reminder says "in 20 min" (from now) before the slot, "your slot started at 18:00
    (Europe/Berlin)" up to `SLOT_GRACE` (1 h) after it started, and is dropped later;
  - the check-in prompt is dropped more than `CHECKIN_GRACE` (2 days) after its time;
  - both are dropped once the pair's outcome is recorded, or when a later round grouped the
    member again (a forced re-pairing), so nobody is asked about a mock they already reported.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.core import failpoints
from bot.core.bank import Bank
from bot.core.clock import Clock, is_timezone
from bot.core.errors import Conflict, Forbidden, NotFound, UsageError, as_typed, shown
from bot.core.messages import Button, Field, Message
from bot.core.models import TRACK_LABELS, TRACKS, Caller, Community, Member, OutboxItem, OutboxRow, Question
from bot.core.outbox import Outbox, Stale
from bot.core.pairing import LEVELS, Candidate, History, pair_members
from bot.core.ports import Store
from bot.core.review import Reviews

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ANCHOR = date(2026, 1, 5)  # a Monday: rounds fall on dates a whole number of cadences from it
DEFAULT_AVAILABILITY = "weekdays 18-21, weekends 10-16"
DEFAULT_TRACKS = ("coding", "system-design", "behavioral")
FEEDBACK_AXES = ("Communication", "Problem solving", "Technical depth", "Structure")
SILENT_ROUNDS_LIMIT = 3
SLOT_REMINDER = timedelta(hours=1)  # the reminder falls due this long before the first suggested time
SLOT_GRACE = timedelta(hours=1)  # after the slot started, a late reminder says so; later it is dropped
CHECKIN_AFTER = timedelta(days=6)  # the check-in falls due this long after the round's slot
CHECKIN_GRACE = timedelta(days=2)  # a check-in prompt later than this after its time is dropped
COMPLETED_POINTS = 10
FEEDBACK_POINTS = 5
AGENDAS: Mapping[str, tuple[tuple[str, int], ...]] = {
    "system-design": (("Requirements and scale", 5), ("High-level architecture", 8), ("Data pipeline", 7),
                      ("Model", 8), ("Serving", 7), ("Monitoring", 5), ("Trade-offs and wrap-up", 5)),
    "coding": (("Introductions", 2), ("Clarify the problem", 5), ("Approach and complexity", 8), ("Code", 20),
               ("Test with examples", 5), ("Feedback", 5)),
    "ml-coding": (("Introductions", 2), ("Clarify shapes and edge cases", 5), ("Approach", 6), ("Code in numpy", 22),
                  ("Check numerics", 5), ("Feedback", 5)),
    "ml-theory": (("Four questions, about 6 minutes each", 25), ("Feedback", 5)),
    "behavioral": (("First story (STAR)", 12), ("Follow-ups", 3), ("Second story (STAR)", 12), ("Feedback", 3)),
    "sql": (("Introductions", 2), ("Read the tables", 5), ("Plan the query", 6), ("Write it", 15),
            ("Check edge rows (nulls, ties, duplicates)", 5), ("Feedback", 5)),
}


# -- availability --------------------------------------------------------------------------------

_WINDOW = re.compile(r"^(?P<days>[a-z,\-]+)\s+(?P<start>\d{1,2})(?::(?P<sm>\d{2}))?-(?P<end>\d{1,2})(?::(?P<em>\d{2}))?$")


def parse_availability(text: str) -> list[tuple[int, int]]:
    """`weekdays 18-21, sat 10-14` -> [(weekday, hour), ...] in the member's own timezone."""
    slots: set[tuple[int, int]] = set()
    for part in (p.strip().lower() for p in re.split(r"[;,](?![a-z]*\s*\d)|;", text) if p.strip()):
        match = _WINDOW.match(re.sub(r"\s+", " ", part))
        if not match:
            raise UsageError(f"Availability {shown(part)} is not like 'weekdays 18-21' or 'sat 10:00-14:00'.")
        days = _days(match.group("days"))
        start, end = int(match.group("start")), int(match.group("end"))
        if not (0 <= start < 24 and 0 < end <= 24 and start < end):
            raise UsageError(f"Hours in {shown(part)} must run forwards within a day, from 0 to 24.")
        for d in days:
            for h in range(start, end):
                slots.add((d, h))
    if not slots:
        raise UsageError("Give at least one availability window, e.g. 'weekdays 18-21'.")
    return sorted(slots)


def _days(spec: str) -> list[int]:
    out: list[int] = []
    for piece in spec.split(","):
        if piece in ("weekdays",):
            out += list(range(5))
        elif piece in ("weekends", "weekend"):
            out += [5, 6]
        elif piece in ("daily", "any", "everyday"):
            out += list(range(7))
        elif "-" in piece:
            a, _, b = piece.partition("-")
            if a[:3] not in DAYS or b[:3] not in DAYS:
                raise UsageError(f"{shown(piece)} is not a day range like mon-fri.")
            i, j = DAYS.index(a[:3]), DAYS.index(b[:3])
            out += list(range(i, j + 1)) if i <= j else [*range(i, 7), *range(0, j + 1)]
        elif piece[:3] in DAYS:
            out.append(DAYS.index(piece[:3]))
        else:
            raise UsageError(f"{shown(piece)} is not a day (mon..sun, weekdays, weekends, daily).")
    return out


def utc_hours(slots: Sequence[tuple[int, int]], timezone: str, at: datetime) -> int:
    """Local weekly slots -> a 168-bit mask of UTC hours of the week, with the offset in force at `at`."""
    offset = at.astimezone(ZoneInfo(timezone)).utcoffset() or timedelta(0)
    shift = round(offset.total_seconds() / 3600)
    mask = 0
    for day, hour in slots:
        mask |= 1 << ((day * 24 + hour - shift) % 168)
    return mask


def suggested_times(mask: int, start: datetime, limit: int = 3) -> list[datetime]:
    """The first shared hours of the week after `start` (UTC), at least a day apart."""
    out: list[datetime] = []
    t = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    for _ in range(7 * 24):
        if mask >> (t.weekday() * 24 + t.hour) & 1 and (not out or t - out[-1] >= timedelta(hours=20)):
            out.append(t)
            if len(out) == limit:
                break
        t += timedelta(hours=1)
    return out


def round_slots(community_weekday: int, cadence_days: int, hhmm: str, tz: str, around: datetime) -> datetime:
    """The most recent scheduled round instant at or before `around` (UTC)."""
    zone = ZoneInfo(tz)
    local = around.astimezone(zone)
    hour, minute = (int(x) for x in hhmm.split(":"))
    first = ANCHOR + timedelta(days=community_weekday)
    day = local.date()
    steps = (day - first).days // cadence_days
    for k in (steps + 1, steps, steps - 1):
        d = first + timedelta(days=k * cadence_days)
        instant = datetime.combine(d, time(hour, minute), tzinfo=zone).astimezone(ZoneInfo("UTC"))
        if instant <= around:
            return instant
    return datetime.combine(first + timedelta(days=(steps - 2) * cadence_days), time(hour, minute), tzinfo=zone)


def round_period(community_weekday: int, cadence_days: int, hhmm: str, tz: str, at: datetime) -> datetime:
    """The scheduled slot whose period holds `at`: from half a cadence before the slot to half a cadence
    after, so a pairing a little early counts as that slot's round (the scheduled one is skipped)."""
    return round_slots(community_weekday, cadence_days, hhmm, tz,
                       at + timedelta(days=cadence_days / 2) - timedelta(microseconds=1))


@dataclass(frozen=True)
class RoundReport:
    round_id: int
    paired: int
    groups: int
    trios: int
    repeats_avoided: int
    paused: tuple[str, ...]
    unplaced: tuple[str, ...]
    created: bool = True

    def message(self) -> Message:
        fields = [
            Field("Paired", f"{self.paired} member(s) in {self.groups} group(s)", True),
            Field("Groups of three", str(self.trios), True),
            Field("Repeats avoided", str(self.repeats_avoided), True),
            Field("Paused or sitting out", ", ".join(self.paused) or "nobody"),
        ]
        if self.unplaced:
            fields.append(Field("Could not be placed (avoid-lists)", ", ".join(self.unplaced)))
        return Message(title="Mock round · pairing report", fields=tuple(fields), ephemeral=True)


@dataclass(frozen=True)
class CheckinDecision:
    outcome: str  # met | no-show | disputed: the pair's outcome after the check-in
    already: bool  # the check-in adds nothing: this outcome was already recorded (by the member or a partner)


def decide_checkin(group: Sequence[Mapping[str, Any]], member_id: int, absent_id: int | None,
                   gave_feedback: Collection[int] = ()) -> CheckinDecision:
    """The pair's outcome once `member_id` checks in as met (`absent_id` None) or reports `absent_id` absent.

    A `met` says everyone in the group came; a no-show says the reporter came and the named member did
    not; feedback sent in the pair (`gave_feedback`, member ids) says its sender came. A member said to
    be both there and not there is a contradiction: the pair is disputed, for good."""
    previous = group[0]["outcome"]
    if previous == "disputed":
        return CheckinDecision("disputed", True)
    if absent_id is None:
        if previous is None:
            return CheckinDecision("met", False)
        return CheckinDecision("met", True) if previous == "met" else CheckinDecision("disputed", False)
    if absent_id in gave_feedback:  # the member reported absent already sent feedback on this mock
        return CheckinDecision("disputed", False)
    if previous is None:
        return CheckinDecision("no-show", False)
    if previous == "met":
        return CheckinDecision("disputed", False)
    me = next(r for r in group if r["member_id"] == member_id)
    target = next(r for r in group if r["member_id"] == absent_id)
    if me["reported_no_show"] or target["checked_in"] is not None:  # the reporter was reported, or the named one said they came
        return CheckinDecision("disputed", False)
    return CheckinDecision("no-show", bool(target["reported_no_show"]))


def _names(names: Sequence[str]) -> str:
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def _claims(group: Sequence[Mapping[str, Any]], member_id: int, absent_id: int | None,
            gave_feedback: Collection[int] = ()) -> str:
    """What each member said, this check-in included: 'alice said the mock happened; bob said alice didn't come'."""
    said: dict[int, str | None] = {int(r["member_id"]): r["checked_in"] for r in group}
    said[member_id] = "met" if absent_id is None else "missed"
    names = {int(r["member_id"]): str(r["display_name"]) for r in group}
    absent = [names[m] for m in names if m == absent_id or next(r for r in group if r["member_id"] == m)["reported_no_show"]]
    parts = []
    if met := [names[m] for m, v in said.items() if v == "met"]:
        parts.append(f"{_names(met)} said the mock happened")
    if sent := [names[m] for m, v in said.items() if m in gave_feedback and v != "met"]:
        parts.append(f"{_names(sent)} sent feedback on it")
    if absent:
        reporters = [names[m] for m, v in said.items() if v == "missed"]
        parts.append(f"{_names(reporters)} said {_names(absent)} didn't come")
    return "; ".join(parts)


class Mocks:
    def __init__(self, store: Store, bank: Bank, clock: Clock, outbox: Outbox) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock
        self.outbox = outbox
        self.reviews: Reviews | None = None  # set by Services.build when the AI review is on
        outbox.render_at_send("remind", self.render_reminder)
        outbox.render_at_send("checkin", self.render_checkin)

    # -- member commands -----------------------------------------------------------------------

    async def join(self, caller: Caller, *, tracks: str | None, level: str | None, timezone: str | None,
                   availability: str | None) -> Message:
        chosen = _parse_tracks(tracks) if tracks else DEFAULT_TRACKS
        lvl = (level or "mid").lower()
        if lvl not in LEVELS:
            raise UsageError(f"Level must be one of {', '.join(LEVELS)}, got {shown(level)}.")
        tz = timezone or caller.member.timezone or caller.community.timezone
        if not is_timezone(tz):
            raise UsageError(f"{shown(tz)} is not an IANA timezone such as Europe/Berlin.")
        windows = availability or DEFAULT_AVAILABILITY
        slots = parse_availability(windows)
        await self.store.save_optin(caller.member, tracks=chosen, level=lvl, timezone=tz,
                                    availability=json.dumps({"text": windows, "slots": slots}), now=self.clock.now())
        if caller.member.timezone != tz:  # the member's own timezone also drives their streak days
            await self.store.update_member(caller.member.id, timezone=tz)
        return Message(
            title="You're in the mock interview rotation",
            fields=(Field("Tracks", ", ".join(TRACK_LABELS[t] for t in chosen)), Field("Level", lvl, True),
                    Field("Timezone", tz, True), Field("Available", windows)),
            footer="You'll be paired at the next round. /mock pause, /mock leave, /mock status any time.",
            kind="success", ephemeral=True,
        )

    async def leave(self, caller: Caller) -> Message:
        await self._require_optin(caller)
        await self.store.update_optin(caller.member.id, active=0, pause_reason="left")
        return Message(body="You left the mock rotation. /mock join brings you back with your history.", ephemeral=True)

    async def pause(self, caller: Caller, until: str) -> Message:
        await self._require_optin(caller)
        today = self.clock.now().astimezone(ZoneInfo(caller.community.timezone)).date()
        text = until.strip().lower()
        weeks = re.fullmatch(r"(\d+)\s*(w|wk|week|weeks)?", text)
        if weeks:
            n = int(weeks.group(1)) if len(weeks.group(1)) <= 3 else 0
            if not 1 <= n <= 26:
                raise UsageError("Pause for 1 to 26 weeks.")
            end = today + timedelta(weeks=n)
        else:
            try:
                end = date.fromisoformat(text)
            except ValueError:
                raise UsageError(f"{shown(until)} is neither a date (2026-12-24) nor a number of weeks.") from None
            if end <= today:
                raise UsageError("The pause must end after today.")
        await self.store.update_optin(caller.member.id, paused_until=end.isoformat(), pause_reason="paused")
        return Message(body=f"Paused until {end:%a %d %b %Y}; you'll be back in the rotation by yourself after that.",
                       ephemeral=True)

    async def avoid(self, caller: Caller, name: str) -> Message:
        other = await self.store.find_member(caller.community.id, name.lstrip("@"))
        if other is None:
            raise NotFound(f"No member called {shown(name)} here.")
        if other.id == caller.member.id:
            raise UsageError("You are never paired with yourself.")
        await self.store.add_avoid(caller.member.id, other.id, now=self.clock.now())
        return Message(body=f"You won't be paired with {other.display_name}. Nobody else is told.", ephemeral=True)

    async def status(self, caller: Caller) -> Message:
        row = await self.store.optin(caller.member.id)
        if row is None:
            return Message(body="You're not in the mock rotation. /mock join to start.", ephemeral=True)
        state = "active"
        if not row["active"]:
            state = {"silent": "paused after 3 rounds without a check-in", "no-show": "paused after two no-shows",
                     "left": "left"}.get(row["pause_reason"] or "", "inactive")
        elif row["paused_until"]:
            state = f"paused until {row['paused_until']}"
        fields = [Field("Status", state, True), Field("Level", row["level"], True),
                  Field("Tracks", row["tracks"].replace(",", ", ")),
                  Field("Available", json.loads(row["availability"]).get("text", ""))]
        group = await self.store.latest_group_of(caller.member.id)
        if group:
            others = [r["display_name"] for r in group if r["member_id"] != caller.member.id]
            fields.append(Field("Latest group", ", ".join(others)))
        return Message(title="Your mock interviews", fields=tuple(fields),
                       footer=f"Mocks done: {await self.store.mocks_done(caller.member.id)}", ephemeral=True)

    async def checkin(self, caller: Caller, outcome: str, who: str | None) -> Message:
        """Record the caller's check-in against the pair's one outcome (rules in the module docstring)."""
        now = self.clock.now()
        for _ in range(3):  # another member's check-in may change the outcome between the read and the write
            group = await self._current_group(caller)
            pair_id = int(group[0]["pair_id"])
            others = [r for r in group if r["member_id"] != caller.member.id]
            absent = None if outcome == "met" else self._absent(others, who)
            absent_id = None if absent is None else int(absent["member_id"])
            gave = {int(f["from_member_id"]) for f in await self.store.pair_feedback(pair_id)} if absent else set()
            decision = decide_checkin(group, caller.member.id, absent_id, gave)
            claims = _claims(group, caller.member.id, absent_id, gave)
            notices = [] if decision.already else self._checkin_notices(caller, group, decision, absent, claims)
            if await self.store.record_checkin(pair_id, caller.member.id, "met" if absent is None else "missed",
                                               absent_id=absent_id, expected=group[0]["outcome"],
                                               outcome=decision.outcome, notices=notices, now=now):
                break
        else:
            raise Conflict("Your group's check-in changed while yours was recorded; please check in again.")
        if decision.outcome in ("met", "disputed"):
            await self.store.settle_mock_points(pair_id, points=COMPLETED_POINTS, now=now)
        names = _names([r["display_name"] for r in others])
        feedback = f"Send feedback: /mock feedback {others[0]['display_name']} <scores 1-5 x4> [notes]."
        if decision.outcome == "disputed":
            if decision.already:
                return Message(body=f"Already recorded: your mock with {names} is disputed ({claims}): no points for "
                                    "it and nobody sits out.", ephemeral=True)
            return Message(body=f"That contradicts what your group reported ({claims}), so your mock with {names} is "
                                "marked disputed: no points for it (points already given are taken back) and nobody "
                                f"sits out the next round. {names} {'is' if len(others) == 1 else 'are'} told too.",
                           ephemeral=True)
        if decision.outcome == "met":
            if decision.already:
                return Message(body=f"Already recorded: your mock with {names} is checked in as met; its points are "
                                    f"given once. {feedback}", ephemeral=True)
            return Message(body=f"Great, marked as met for you and {names} (+{COMPLETED_POINTS} points to each of "
                                f"you). {feedback}", ephemeral=True, kind="success")
        assert absent is not None
        if decision.already:
            return Message(body=f"Already recorded: {absent['display_name']} was reported as a no-show.", ephemeral=True)
        return Message(body=f"Thanks, noted that {absent['display_name']} did not show. They sit out the next "
                            "round; you'll be paired as usual.", ephemeral=True)

    @staticmethod
    def _absent(others: Sequence[Any], who: str | None) -> Any:
        """The group member a no-show check-in names (in a pair, the partner)."""
        if who:
            absent = next((r for r in others if r["display_name"].lower() == who.lstrip("@").lower()
                           or str(r["member_id"]) == who), None)
            if absent is None:
                raise NotFound(f"{shown(who)} was not in your group.")
            return absent
        if len(others) == 1:
            return others[0]
        raise UsageError("In a group of three, name who did not come: /mock checkin no-show <member>.")

    def _checkin_notices(self, caller: Caller, group: Sequence[Any], decision: CheckinDecision, absent: Any,
                         claims: str) -> list[OutboxItem]:
        """What the other members are told when a check-in changes their pair's outcome (once each)."""
        pair_id = int(group[0]["pair_id"])
        me = caller.member.display_name
        others = [r for r in group if r["member_id"] != caller.member.id]
        if decision.outcome == "disputed":
            return [self._dm(caller.community, int(r["member_id"]), f"checkin-note:{pair_id}:{r['member_id']}:disputed",
                             Message(title="Mock check-in disputed",
                                     body=f"The check-ins for your mock disagree ({claims}), so it is marked disputed: "
                                          "no points for it (points already given are taken back) and nobody sits "
                                          "out the next round.")) for r in others]
        if decision.outcome == "met":
            return [self._dm(caller.community, int(r["member_id"]), f"checkin-note:{pair_id}:{r['member_id']}:met",
                             Message(title="Mock check-in: met",
                                     body=f"{me} checked in your mock as met: +{COMPLETED_POINTS} points to each of you. "
                                          f"Send feedback: /mock feedback {me} <scores 1-5 x4> [notes]. If it didn't "
                                          f"happen, /mock checkin no-show {me}: the mock is then marked disputed."))
                    for r in others]
        return [self._dm(caller.community, int(absent["member_id"]), f"checkin-note:{pair_id}:{absent['member_id']}:no-show",
                         Message(title="Reported as a no-show",
                                 body=f"{me} reported that you didn't come to your mock, so you sit out the next round. "
                                      "If you were there, /mock checkin met: the mock is then marked disputed and "
                                      "nobody sits out."))]

    async def feedback(self, caller: Caller, name: str, scores: str, notes: str | None) -> Message:
        group = await self._current_group(caller)
        target = next((r for r in group if r["member_id"] != caller.member.id
                       and (r["display_name"].lower() == name.lstrip("@").lower() or str(r["member_id"]) == name)), None)
        if target is None:
            raise NotFound(f"{shown(name)} was not in your latest mock group.")
        me = next(r for r in group if r["member_id"] == caller.member.id)
        if group[0]["outcome"] == "no-show" and me["reported_no_show"]:
            raise Conflict("You were reported as a no-show for this mock, so it has no feedback from you yet. If you "
                           "were there, /mock checkin met first: the mock is then marked disputed and nobody sits "
                           "out; then send your feedback.")
        values = re.findall(r"\d+", scores)
        if len(values) != len(FEEDBACK_AXES) or any(len(v) > 1 or not 1 <= int(v) <= 5 for v in values):
            raise UsageError(f"Give {len(FEEDBACK_AXES)} scores from 1 to 5 for "
                             f"{', '.join(FEEDBACK_AXES).lower()}, e.g. 4 3 5 4.")
        pair_id = int(group[0]["pair_id"])
        now = self.clock.now()
        scored = dict(zip(FEEDBACK_AXES, (int(v) for v in values), strict=True))
        if not await self.store.add_feedback(pair_id, caller.member.id, int(target["member_id"]),
                                             scores=json.dumps(scored), text=notes or "", now=now):
            raise Conflict(f"You already sent feedback to {target['display_name']} for this mock.")
        await self.store.add_points(community_id=caller.community.id, member_id=caller.member.id,
                                    points=FEEDBACK_POINTS, reason="feedback", now=now,
                                    dedupe_key=f"feedback:{pair_id}:{caller.member.id}:{target['member_id']}")
        await self.store.enqueue([OutboxItem(
            community_id=caller.community.id, key=f"feedback:{pair_id}:{caller.member.id}:{target['member_id']}",
            purpose="dm", member_id=int(target["member_id"]),
            message=Message(title=f"Mock feedback from {caller.member.display_name}",
                            body=notes or "", fields=tuple(Field(k, f"{v}/5", True) for k, v in scored.items())),
        )], now=now)
        await self._debrief_when_complete(caller.community, pair_id, group, now)
        return Message(body=f"Feedback sent privately to {target['display_name']} (+{FEEDBACK_POINTS} points).",
                       kind="success", ephemeral=True)

    async def _debrief_when_complete(self, community: Community, pair_id: int, group: Sequence[Any],
                                     now: datetime) -> None:
        """Once every member of the group has given and received feedback, each gets one debrief: the
        scores they received per axis (averaged over their partners), every note to them, and the
        feedback they gave. The outbox key makes it once per member, however the last forms race."""
        forms = await self.store.pair_feedback(pair_id)
        ids = {int(r["member_id"]) for r in group}
        gave = {int(f["from_member_id"]) for f in forms}
        got = {int(f["to_member_id"]) for f in forms}
        if not ids or not ids <= gave or not ids <= got:
            return
        names = " & ".join(str(r["display_name"]) for r in group)
        # with the AI review on, each debrief waits (at most the review's timeout) for its short summary,
        # which the review adds to the same message; whatever happens to the review, it goes by then
        summarised = self.reviews is not None and self.reviews.model is not None
        hold = now + timedelta(seconds=self.reviews.settings.timeout_s + 15) if self.reviews and summarised else None
        items = []
        for member_id in sorted(ids):
            received = [f for f in forms if int(f["to_member_id"]) == member_id]
            fields = []
            for axis in FEEDBACK_AXES:
                values = [int(json.loads(f["scores"]).get(axis, 0)) for f in received]
                values = [v for v in values if v]
                if values:
                    fields.append(Field(axis, f"{sum(values) / len(values):.1f}/5", True))
            notes = "\n".join(f"**{f['from_name']}**: {f['text']}" for f in received if str(f["text"]).strip())
            if notes:
                fields.append(Field("What your partners wrote", notes))
            given = [f for f in forms if int(f["from_member_id"]) == member_id]
            if given:
                fields.append(Field("What you gave", ", ".join(
                    f"{next(str(r['display_name']) for r in group if int(r['member_id']) == int(f['to_member_id']))}"
                    f" {'/'.join(str(v) for v in json.loads(f['scores']).values())}" for f in given)))
            weakest = min((f for f in fields if f.name in FEEDBACK_AXES), key=lambda f: float(f.value.split('/')[0]),
                          default=None)
            body = "Everyone's feedback is in: here is yours, together."
            if weakest is not None:
                body += f" Your lowest score is **{weakest.name.lower()}** ({weakest.value}): practise that next."
            items.append(OutboxItem(community_id=community.id, key=f"debrief:{pair_id}:{member_id}", purpose="dm",
                                    member_id=member_id, not_before=hold,
                                    message=Message(title=f"Mock debrief · {names}", body=body, fields=tuple(fields))))
        await self.store.enqueue(items, now=now)
        if self.reviews is not None and summarised:  # a short summary of each member's feedback, in the debrief
            for item in items:
                received = [{"scores": json.loads(f["scores"]), "notes": str(f["text"])}
                            for f in forms if int(f["to_member_id"]) == item.member_id]
                await self.reviews.request_debrief(community.id, int(item.member_id or 0), pair_id,
                                                   {"feedback": received}, debrief=item)

    async def _require_optin(self, caller: Caller) -> None:
        if await self.store.optin(caller.member.id) is None:
            raise NotFound("You're not in the mock rotation. /mock join to start.")

    async def _current_group(self, caller: Caller) -> list[Any]:
        group = await self.store.latest_group_of(caller.member.id)
        if not group:
            raise NotFound("You have not been paired yet.")
        return group

    # -- rounds --------------------------------------------------------------------------------

    async def tick(self, community: Community, *, since: datetime | None = None) -> None:
        """Run the scheduled round when its time has come (once: the slot is unique); with `since`,
        only a slot after that instant counts."""
        weekday = int(await self.store.community_setting(community.id, "mock_weekday"))
        cadence = int(await self.store.community_setting(community.id, "mock_cadence_days"))
        hhmm = str(await self.store.community_setting(community.id, "mock_time"))
        now = self.clock.now()
        for unfinished in await self.store.unfinished_mock_rounds(community.id):  # cut off by a crash
            await self.run_round(community, slot=datetime.fromisoformat(str(unfinished["scheduled_for"])))
        slot = round_slots(weekday, cadence, hhmm, community.timezone, now)
        if now - slot > timedelta(days=1) or (since is not None and slot <= since):
            return
        recent = await self.store.mock_rounds(community.id, limit=1)
        if recent and datetime.fromisoformat(recent[0]["created_at"]) > slot - timedelta(days=cadence / 2):
            return  # this period already has its round (an admin ran /admin pair-now)
        active = [r for r in await self.store.optins(community.id) if r["active"]]
        if len(active) < 2:
            return
        await self.run_round(community, slot=slot)

    async def pair_now(self, caller: Caller, *, force: bool = False) -> Message:
        """Pair now: this period's round; a second one in the same period only with `force` (it replaces the first)."""
        if not caller.is_admin:
            raise Forbidden("Only community admins can pair now.")
        community = caller.community
        now = self.clock.now()
        weekday = int(await self.store.community_setting(community.id, "mock_weekday"))
        cadence = int(await self.store.community_setting(community.id, "mock_cadence_days"))
        hhmm = str(await self.store.community_setting(community.id, "mock_time"))
        zone = ZoneInfo(community.timezone)

        def when(t: datetime) -> str:
            return f"{t.astimezone(zone):%a %d %b %H:%M} ({community.timezone})"

        recent = await self.store.mock_rounds(community.id, limit=1)
        replaced = None
        if recent:
            last = datetime.fromisoformat(str(recent[0]["created_at"]))
            period = round_period(weekday, cadence, hhmm, community.timezone, last)
            if period == round_period(weekday, cadence, hhmm, community.timezone, now):
                if not force:
                    upcoming = round_slots(weekday, cadence, hhmm, community.timezone,
                                           period + timedelta(days=cadence, hours=2))
                    raise Conflict(f"This period's mock round was already paired on {when(last)}; the next round is "
                                   f"due {when(upcoming)}. To pair everyone again now anyway, use /admin pair-now "
                                   "--force: the new groups replace the current ones.")
                replaced = last
        slot = now
        if recent and recent[0]["scheduled_for"] == slot.isoformat():  # a slot is unique: never the same instant
            slot += timedelta(microseconds=1)
        message = (await self.run_round(community, slot=slot)).message()
        if replaced is not None:
            message = replace(message, footer=f"Forced: these groups replace the round paired on {when(replaced)}; "
                                              "its reminders and check-ins are dropped for everyone paired again.")
        return message

    async def run_round(self, community: Community, *, slot: datetime) -> RoundReport:
        now = self.clock.now()
        previous = [r for r in await self.store.mock_rounds(community.id, limit=13)
                    if r["report"] is not None and r["scheduled_for"] != slot.isoformat()][:12]
        round_id, unfinished = await self.store.create_mock_round(community.id, slot.isoformat(), now=now)
        if not unfinished:
            return RoundReport(round_id, 0, 0, 0, 0, (), (), created=False)
        failpoints.hit("mocks.round_created")
        # everything the round changes is written by save_groups in one transaction, so a crash before
        # it leaves an unfinished round that the next tick runs again from the same state
        notices: list[OutboxItem] = []
        optin_updates: list[tuple[int, dict[str, Any]]] = []
        paused: list[str] = []
        members: dict[int, Member] = {}
        candidates: list[Candidate] = []
        avoids = await self.store.avoids(community.id)
        today = now.astimezone(ZoneInfo(community.timezone)).date()
        last_groups = await self.store.round_groups(int(previous[0]["id"])) if previous else []
        # the pair's outcome decides: a disputed no-show benches nobody; a pair nobody checked in for is silent
        sat_out = {int(r["member_id"]) for r in last_groups if r["reported_no_show"] and r["outcome"] == "no-show"}
        came = {int(r["member_id"]) for r in last_groups if r["outcome"] is not None} - sat_out
        silent = {int(r["member_id"]) for r in last_groups if r["outcome"] is None}
        roles: dict[int, list[int]] = {}
        last_met: dict[tuple[int, int], int] = {}
        for age, rnd in enumerate(previous, start=1):
            rows = await self.store.round_groups(int(rnd["id"]))
            by_pair: dict[int, list[int]] = {}
            for r in rows:
                by_pair.setdefault(int(r["pair_id"]), []).append(int(r["member_id"]))
                turns = roles.setdefault(int(r["member_id"]), [0, 0])
                turns[0 if r["first_role"] == "interviewer" else 1] += 1
            for group in by_pair.values():
                for i, a in enumerate(group):
                    for b in group[i + 1:]:
                        last_met.setdefault((min(a, b), max(a, b)), age)
        for row in await self.store.optins(community.id):
            mid = int(row["member_id"])
            name = str(row["display_name"])
            if not row["active"]:
                continue
            if mid in silent and previous:
                streak = int(row["silent_rounds"]) + 1
                if streak >= SILENT_ROUNDS_LIMIT:
                    optin_updates.append((mid, {"active": 0, "silent_rounds": streak, "pause_reason": "silent"}))
                    paused.append(f"{name} (no check-in for {streak} rounds)")
                    notices.append(self._dm(community, mid, f"silent:{round_id}:{mid}", Message(
                        title="Your mock interviews are paused",
                        body=f"Nobody checked in for your last {streak} mocks, so we paused your pairing. "
                             "Type /mock join whenever you want to come back.")))
                    continue
                optin_updates.append((mid, {"silent_rounds": streak}))
            if mid in sat_out:  # no-shows in a row: one sits out a round, two pause
                no_shows = int(row["no_shows"]) + 1
                if no_shows >= 2:
                    optin_updates.append((mid, {"active": 0, "no_shows": no_shows, "pause_reason": "no-show"}))
                    paused.append(f"{name} (two no-shows in a row: paused)")
                    notices.append(self._dm(community, mid, f"noshows:{round_id}:{mid}", Message(
                        title="Your mock interviews are paused",
                        body="Partners reported that you didn't come to your last two mocks, so we paused your "
                             "pairing. Type /mock join whenever you want to come back.")))
                    continue
                optin_updates.append((mid, {"no_shows": no_shows}))
            elif mid in came and row["no_shows"]:
                optin_updates.append((mid, {"no_shows": 0}))
            if row["paused_until"] and date.fromisoformat(row["paused_until"]) > today:
                paused.append(f"{name} (until {row['paused_until']})")
                continue
            if mid in sat_out:
                paused.append(f"{name} (reported no-show: sits out one round)")
                notices.append(self._dm(community, mid, f"sitout:{round_id}:{mid}", Message(
                    title="You sit out this mock round",
                    body="A partner reported that you didn't come to last round's mock. You'll be paired again next "
                         "round (a second no-show in a row pauses your pairing); if something came up, tell your "
                         "partner. /mock pause helps when you're busy.")))
                continue
            member = await self.store.get_member(mid)
            assert member is not None
            members[mid] = member
            slots = [(int(d), int(h)) for d, h in json.loads(row["availability"]).get("slots", [])]
            turns = roles.get(mid, [0, 0])
            offset = now.astimezone(ZoneInfo(row["timezone"])).utcoffset() or timedelta(0)
            candidates.append(Candidate(
                id=mid, tracks=frozenset(row["tracks"].split(",")), level=row["level"],
                utc_offset_h=offset.total_seconds() / 3600, hours=utc_hours(slots, row["timezone"], now),
                avoid=frozenset(avoids.get(mid, set())), interviewer_turns=turns[0], interviewee_turns=turns[1],
            ))
        result = pair_members(candidates, History(last_met), seed=round_id)
        by_id = {c.id: c for c in candidates}
        groups_out: list[tuple[str, str | None, str, list[int]]] = []
        messages: dict[int, list[OutboxItem]] = {}
        for index, made in enumerate(result.groups):
            ids = list(made.members)
            mask = by_id[ids[0]].hours
            for i in ids[1:]:
                mask &= by_id[i].hours
            times = suggested_times(mask, now)
            packs = self._packs(ids, by_id, members)
            track = str(packs[0]["track"])
            groups_out.append((track, times[0].isoformat() if times else None, json.dumps(packs), ids))
            messages[index] = self._group_messages(community, round_id, ids, members, packs, times, slot)
        unplaced = tuple(members[i].display_name for i in result.unplaced)
        for mid in result.unplaced:
            notices.append(self._dm(community, mid, f"unplaced:{round_id}:{mid}", Message(
                title="No mock partner this round",
                body="Nobody in this round could be paired with you under your avoid-list. You'll be tried again "
                     "next round.")))
        report = RoundReport(round_id, sum(len(g.members) for g in result.groups), len(result.groups),
                             sum(len(g.members) == 3 for g in result.groups), result.repeats_avoided,
                             tuple(paused), unplaced)
        pending = [messages[i] for i in range(len(groups_out))]

        def items_for(pair_id: int) -> list[OutboxItem]:
            """save_groups asks in group order, once per stored group, inside its transaction."""
            return [replace(item, pair_id=pair_id) if item.purpose == "space" else item for item in pending.pop(0)]

        if await self.store.save_groups(round_id, groups_out, items_for, report=json.dumps(report.__dict__), now=now,
                                        notices=notices, optin_updates=optin_updates) is None:
            return RoundReport(round_id, 0, 0, 0, 0, (), (), created=False)  # another process finished it first
        return report

    def _packs(self, ids: Sequence[int], by_id: Mapping[int, Candidate], members: Mapping[int, Member]) -> list[dict[str, Any]]:
        """For each turn, interviewer -> interviewee: a shared track and questions the interviewee gets asked."""
        packs = []
        for i, interviewer in enumerate(ids):
            interviewee = ids[(i + 1) % len(ids)]
            shared = by_id[interviewer].tracks & by_id[interviewee].tracks or by_id[interviewee].tracks
            track = next(t for t in TRACKS if t in shared) if shared & set(TRACKS) else "coding"
            pool = self.bank.by_track(track)
            count = 4 if track == "ml-theory" else 2 if track == "behavioral" else 1
            ranked = sorted(pool, key=lambda q: hashlib.sha256(f"{interviewee}:{q.id}".encode()).hexdigest())
            packs.append({"interviewer": interviewer, "interviewee": interviewee, "track": track,
                          "questions": [q.id for q in ranked[:count]]})
        return packs

    def _group_messages(self, community: Community, round_id: int, ids: Sequence[int], members: Mapping[int, Member],
                        packs: Sequence[Mapping[str, Any]], times: Sequence[datetime], slot: datetime) -> list[OutboxItem]:
        names = [members[i].display_name for i in ids]
        title = f"Mock interview · {' & '.join(names)}"
        def local(t: datetime, m: Member) -> str:
            return f"{t.astimezone(ZoneInfo(m.timezone or community.timezone)):%a %d %b %H:%M %Z} ({m.display_name})"
        suggested = "\n".join("; ".join(local(t, members[i]) for i in ids) for t in times) or \
            "No shared hours in your availability: agree on a time here."
        order = "\n".join(
            f"{n + 1}. **{members[int(str(p['interviewer']))].display_name}** interviews "
            f"**{members[int(str(p['interviewee']))].display_name}** · {TRACK_LABELS[str(p['track'])]} "
            f"({sum(m for _, m in AGENDAS[str(p['track'])])} min)"
            for n, p in enumerate(packs))
        intro = Message(
            title=title,
            body="You're paired for this round's mock interviews. Say hi, pick a time, and run the turns in order; "
                 "each interviewer has a private pack in their DMs.",
            fields=(Field("Suggested times", suggested), Field("Order", order),
                    Field("After the mock", "/mock checkin met (or no-show), then /mock feedback <partner> <4 scores 1-5> [notes]")),
        )
        items = [OutboxItem(community_id=community.id, key=f"space:{round_id}:{ids[0]}", purpose="space", message=intro)]
        for p in packs:
            interviewer = members[int(str(p["interviewer"]))]
            interviewee = members[int(str(p["interviewee"]))]
            items.append(OutboxItem(community_id=community.id, key=f"pack:{round_id}:{interviewer.id}",
                                    purpose="dm", member_id=interviewer.id,
                                    message=self.pack_message(interviewer, interviewee, p)))
        if times:
            for i in ids:
                items.append(OutboxItem(community_id=community.id, key=f"remind:{round_id}:{i}", purpose="dm",
                                        member_id=i, not_before=times[0] - SLOT_REMINDER, message=Message(
                                            title="Mock interview in 1 hour",
                                            body=f"Your suggested slot with {', '.join(n for n in names if n != members[i].display_name)} "
                                                 f"starts at {local(times[0], members[i])}. Your pack is in your DMs.")))
        cadence_end = slot + CHECKIN_AFTER
        for i in ids:
            partner = next(members[j].display_name for j in ids if j != i)
            items.append(OutboxItem(
                community_id=community.id, key=f"checkin:{round_id}:{i}", purpose="dm", member_id=i,
                not_before=cadence_end, message=Message(
                    title="Did your mock interview happen?",
                    body="Tell us so we can pair people who show up, and send your partner feedback.",
                    buttons=(Button("We met", "mock checkin", "met", style="primary"),
                             Button("My partner didn't come", "mock checkin", f'no-show "{partner}"'),
                             Button("Send feedback", "form", f"feedback {partner}")))))
        return items

    def pack_message(self, interviewer: Member, interviewee: Member, pack: Mapping[str, Any]) -> Message:
        track = str(pack["track"])
        questions: list[Question] = [self.bank.get(q) for q in pack["questions"] if q in self.bank]
        agenda = "\n".join(f"{minutes:>2} min · {step}" for step, minutes in AGENDAS[track])
        fields = [Field("Agenda", agenda)]
        for q in questions:
            fields.append(Field(f"Ask: {q.title} ({q.difficulty}) `{q.id}`", q.prompt.strip()[:1000]))
            if q.rubric:
                fields.append(Field("Listen for", "\n".join(f"**{r.point}**: {r.description}" for r in q.rubric)[:1000]))
            if q.kind == "choice":
                fields.append(Field("Answer", f"{q.answer}: {(q.explanation or '').strip()[:600]}"))
            if q.hints:
                fields.append(Field("Hints to give if stuck", "\n".join(f"- {h}" for h in q.hints)[:1000]))
            if q.follow_ups:
                fields.append(Field("Follow-ups", "\n".join(f"- {f}" for f in q.follow_ups)[:1000]))
        return Message(
            title=f"Your interviewer pack · you interview {interviewee.display_name} ({TRACK_LABELS[track]})",
            body=f"Read the prompt out to {interviewee.display_name}, keep time with the agenda, and score with the rubric. "
                 "Then swap: your partner has a pack for you.",
            fields=tuple(fields),
            footer=f"After the mock: /mock feedback {interviewee.display_name} <4 scores 1-5> [notes]",
        )

    async def _round_row(self, row: OutboxRow) -> tuple[Any, list[Any]] | Stale:
        """For `<kind>:<round>:<member>`: the member's row in that round and their group, or why it is stale."""
        _, round_id, member_id = row.key.split(":")
        rows = await self.store.round_groups(int(round_id))
        mine = next((r for r in rows if r["member_id"] == int(member_id)), None)
        if mine is None:
            return Stale("the member is no longer in that round")
        latest = await self.store.latest_group_of(int(member_id))
        if latest and int(latest[0]["round_id"]) != int(round_id):
            return Stale("a later round grouped the member again")
        if mine["outcome"] is not None:
            return Stale(f"the pair's outcome is already recorded ({mine['outcome']})")
        return mine, [r for r in rows if r["pair_id"] == mine["pair_id"]]

    async def render_reminder(self, row: OutboxRow, message: Message, now: datetime) -> Message | Stale:
        """`remind:<round>:<member>`, written when it goes out: "in 20 min" before the slot, "your slot started
        at 18:00 (Europe/Berlin)" within `SLOT_GRACE` after it, dropped after that or once the pair checked in."""
        found = await self._round_row(row)
        if isinstance(found, Stale):
            return found
        mine, group = found
        if not mine["suggested_time"]:
            return Stale("the group has no suggested time")
        start = datetime.fromisoformat(str(mine["suggested_time"]))
        if now >= start + SLOT_GRACE:
            return Stale(f"the slot started at {start.isoformat()}, more than {SLOT_GRACE} ago")
        member = await self.store.get_member(int(mine["member_id"]))
        community = await self.store.get_community(row.community_id)
        tz = (member.timezone if member else None) or (community.timezone if community else "UTC")
        local, today = start.astimezone(ZoneInfo(tz)), now.astimezone(ZoneInfo(tz)).date()
        at = f"{local:%H:%M} ({tz})" if local.date() == today else f"{local:%a %d %b %H:%M} ({tz})"
        partners = _names([str(r["display_name"]) for r in group if r["member_id"] != mine["member_id"]])
        if now < start:
            minutes = math.ceil((start - now).total_seconds() / 60)
            title = "Mock interview in 1 hour" if minutes >= 60 else f"Mock interview in {minutes} min"
            return replace(message, title=title, body=f"Your suggested slot with {partners} starts at {at}. "
                                                      "Your pack is in your DMs.")
        return replace(message, title="Your mock slot has started",
                       body=f"Your suggested slot with {partners} started at {at}. If you haven't started yet, agree "
                            "on a time in your group's space. Your pack is in your DMs.")

    async def render_checkin(self, row: OutboxRow, message: Message, now: datetime) -> Message | Stale:
        """`checkin:<round>:<member>`: asked only while nobody in the pair has checked in, the round is
        still the member's latest, and no more than `CHECKIN_GRACE` after its time."""
        found = await self._round_row(row)
        if isinstance(found, Stale):
            return found
        due = datetime.fromisoformat(str(found[0]["scheduled_for"])) + CHECKIN_AFTER
        if now > due + CHECKIN_GRACE:
            return Stale(f"the check-in was due at {due.isoformat()}, more than {CHECKIN_GRACE} ago")
        return message

    def _dm(self, community: Community, member_id: int, key: str, message: Message) -> OutboxItem:
        return OutboxItem(community_id=community.id, key=key, purpose="dm", member_id=member_id, message=message)


def _parse_tracks(text: str) -> tuple[str, ...]:
    wanted = [t for t in re.split(r"[\s,]+", text.lower()) if t]
    unknown = [t for t in wanted if t not in TRACKS]
    if unknown or not wanted:
        raise UsageError(f"Tracks are {', '.join(TRACKS)}; got {as_typed(', '.join(unknown)) if unknown else 'none'}.")
    return tuple(t for t in TRACKS if t in wanted)
