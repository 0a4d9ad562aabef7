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
- Who is paired: active opt-ins whose pause has ended (`/mock pause` resumes by itself on the
  date). A member reported as a no-show sits out the next round and is told why; two no-shows in
  a row pause them until they `/mock join` again. A member who did not check in for 3 rounds in a
  row is paused and told how to come back. Groups come from `pairing.pair_members` (see there).
- Each group gets a private space (outbox purpose `space`, opened once even across retries) with
  introductions, suggested times from overlapping availability (up to three, shown in each
  member's timezone), the interview order and the agenda; each member gets a private interviewer
  pack by DM: a question from a track both chose that the interviewee has not seen, its prompt,
  rubric, hints and follow-ups, and a timed agenda. Then they swap.
- A reminder DM 1 hour before the first suggested time; a check-in DM with buttons one day before
  the next round; feedback (`/mock feedback <member> <scores> [notes]`, scores 1-5 for
  communication, problem solving, technical depth and structure) is delivered privately to the
  partner. Points: +10 to each member for a mock checked in as met, +5 for each feedback given.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.core import failpoints
from bot.core.bank import Bank
from bot.core.clock import Clock, is_timezone
from bot.core.errors import Conflict, Forbidden, NotFound, UsageError, as_typed, shown
from bot.core.messages import Button, Field, Message
from bot.core.models import TRACK_LABELS, TRACKS, Caller, Community, Member, OutboxItem, Question
from bot.core.outbox import Outbox
from bot.core.pairing import LEVELS, Candidate, History, pair_members
from bot.core.ports import Store

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ANCHOR = date(2026, 1, 5)  # a Monday: rounds fall on dates a whole number of cadences from it
DEFAULT_AVAILABILITY = "weekdays 18-21, weekends 10-16"
DEFAULT_TRACKS = ("coding", "system-design", "behavioral")
FEEDBACK_AXES = ("Communication", "Problem solving", "Technical depth", "Structure")
SILENT_ROUNDS_LIMIT = 3
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


class Mocks:
    def __init__(self, store: Store, bank: Bank, clock: Clock, outbox: Outbox) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock
        self.outbox = outbox

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
        group = await self._current_group(caller)
        pair_id = int(group[0]["pair_id"])
        now = self.clock.now()
        if outcome == "met":
            await self.store.set_checkin(pair_id, caller.member.id, "met")
            await self.store.update_optin(caller.member.id, silent_rounds=0)
            await self.store.add_points(community_id=caller.community.id, member_id=caller.member.id,
                                        points=COMPLETED_POINTS, reason="mock", now=now,
                                        dedupe_key=f"mock:{pair_id}:{caller.member.id}")
            partners = [r["display_name"] for r in group if r["member_id"] != caller.member.id]
            return Message(body=f"Great, marked as met (+{COMPLETED_POINTS} points). Send feedback: "
                                f"/mock feedback {partners[0]} <scores 1-5 x4> [notes].", ephemeral=True, kind="success")
        # a no-show: who did not come
        others = [r for r in group if r["member_id"] != caller.member.id]
        if who:
            absent = next((r for r in others if r["display_name"].lower() == who.lstrip("@").lower()
                           or str(r["member_id"]) == who), None)
            if absent is None:
                raise NotFound(f"{shown(who)} was not in your group.")
        elif len(others) == 1:
            absent = others[0]
        else:
            raise UsageError("In a group of three, name who did not come: /mock checkin no-show <member>.")
        await self.store.set_checkin(pair_id, caller.member.id, "missed")
        await self.store.update_optin(caller.member.id, silent_rounds=0)
        if await self.store.mark_no_show(pair_id, int(absent["member_id"])):
            row = await self.store.optin(int(absent["member_id"]))
            if row is not None:
                count = int(row["no_shows"]) + 1
                values: dict[str, object] = {"no_shows": count}
                if count >= 2:
                    values.update(active=0, pause_reason="no-show")
                await self.store.update_optin(int(absent["member_id"]), **values)
        return Message(body=f"Thanks, noted that {absent['display_name']} did not show. They sit out the next "
                            "round; you'll be paired as usual.", ephemeral=True)

    async def feedback(self, caller: Caller, name: str, scores: str, notes: str | None) -> Message:
        group = await self._current_group(caller)
        target = next((r for r in group if r["member_id"] != caller.member.id
                       and (r["display_name"].lower() == name.lstrip("@").lower() or str(r["member_id"]) == name)), None)
        if target is None:
            raise NotFound(f"{shown(name)} was not in your latest mock group.")
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
        return Message(body=f"Feedback sent privately to {target['display_name']} (+{FEEDBACK_POINTS} points).",
                       kind="success", ephemeral=True)

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

    async def pair_now(self, caller: Caller) -> Message:
        if not caller.is_admin:
            raise Forbidden("Only community admins can pair now.")
        report = await self.run_round(caller.community, slot=self.clock.now())
        return report.message()

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
        sat_out = {int(r["member_id"]) for r in last_groups if r["reported_no_show"]}
        silent = {int(r["member_id"]) for r in last_groups if r["checked_in"] is None}
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
                        body=f"You haven't checked in for {streak} rounds, so we paused your pairing. "
                             "Type /mock join whenever you want to come back.")))
                    continue
                optin_updates.append((mid, {"silent_rounds": streak}))
            if row["paused_until"] and date.fromisoformat(row["paused_until"]) > today:
                paused.append(f"{name} (until {row['paused_until']})")
                continue
            if mid in sat_out:
                paused.append(f"{name} (reported no-show: sits out one round)")
                notices.append(self._dm(community, mid, f"sitout:{round_id}:{mid}", Message(
                    title="You sit out this mock round",
                    body="A partner reported that you didn't come to last round's mock. You'll be paired again next "
                         "round; if something came up, tell your partner. /mock pause helps when you're busy.")))
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
            return f"{t.astimezone(ZoneInfo(m.timezone or community.timezone)):%a %d %b %H:%M} ({m.display_name})"
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
                                        member_id=i, not_before=times[0] - timedelta(hours=1), message=Message(
                                            title="Mock interview in 1 hour",
                                            body=f"Your suggested slot with {', '.join(n for n in names if n != members[i].display_name)} "
                                                 f"starts at {local(times[0], members[i])}. Your pack is in your DMs.")))
        cadence_end = slot + timedelta(days=6)
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

    def _dm(self, community: Community, member_id: int, key: str, message: Message) -> OutboxItem:
        return OutboxItem(community_id=community.id, key=key, purpose="dm", member_id=member_id, message=message)


def _parse_tracks(text: str) -> tuple[str, ...]:
    wanted = [t for t in re.split(r"[\s,]+", text.lower()) if t]
    unknown = [t for t in wanted if t not in TRACKS]
    if unknown or not wanted:
        raise UsageError(f"Tracks are {', '.join(TRACKS)}; got {as_typed(', '.join(unknown)) if unknown else 'none'}.")
    return tuple(t for t in TRACKS if t in wanted)
