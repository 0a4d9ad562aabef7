"""`/timed <question-id>`: practise under the clock of a real loop.

Decisions:
- Budgets are the usual ones per round: coding 25 min, ML coding 30, ML theory 5, ML system
  design 45, behavioral 15 (`BUDGET_MIN`).
- A timer is a row in the database (member, question, started_at, budget), so it survives a
  restart; one open timer per member and question (a second `/timed` on it shows how far along the
  first is). The two reminders (half time, time's up) are private DMs written to the outbox in the
  same transaction as the timer, with keys `timer:<id>:half` and `timer:<id>:end` and a
  `not_before` at their time, so they are sent once, by whichever process delivers.
- The timer stops with a verdict (`after_verdict`, hooked into `Submissions.submit`): for code, when
  the submission is accepted (a wrong answer shows the time so far and the clock keeps running);
  for theory and written answers, at the one attempt they take. The time taken goes in the verdict's
  footer ("Time taken: 18 min 20 s of 25 min"), and reminders not yet sent are cancelled.
- The reminders are written when they go out (`render_reminder`, registered with the outbox), from
  the timer as stored and the current time, so a late one never states a stale figure: the
  half-time DM says the time really left ("5 min left of 25 min"; when late, in whole minutes
  rounded up, one figure in its title and body) and is dropped once the session is over; the
  time's-up DM says how long ago time ran out and is dropped when that is more than `TIMER_GRACE`
  (10 min) ago, e.g. after downtime. A finished timer's reminders are never sent.
- A question whose answer was revealed in the community (`Submissions.open_question`: a past daily
  not back in the current round, or today's after a reveal-time) cannot be timed; /submit still
  grades it, for no points.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

from bot.core import views
from bot.core.bank import Bank
from bot.core.clock import Clock
from bot.core.errors import Conflict
from bot.core.messages import Message
from bot.core.models import CODE_TRACKS, TRACK_LABELS, Caller, OutboxItem, OutboxRow, Question
from bot.core.outbox import Stale
from bot.core.ports import Store
from bot.core.submissions import Submissions

BUDGET_MIN = {"coding": 25, "ml-coding": 30, "ml-theory": 5, "system-design": 45, "behavioral": 15, "sql": 20}
TIMER_GRACE = timedelta(minutes=10)  # a time's-up DM later than this after the end is dropped


def duration(seconds: float) -> str:
    """`18 min 20 s`, `45 s`, `1 h 5 min`."""
    s = max(0, int(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s} s"


def time_taken(elapsed_s: float, budget_s: int) -> str:
    text = f"Time taken: {duration(elapsed_s)} of {duration(budget_s)}"
    if elapsed_s > budget_s:
        text += f" (over by {duration(elapsed_s - budget_s)})"
    return text


class Timed:
    def __init__(self, store: Store, bank: Bank, clock: Clock, submissions: Submissions) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock
        self.submissions = submissions

    async def start(self, caller: Caller, question_id: str) -> Message:
        q = (await self.submissions.open_question(caller, question_id)).question  # closed questions cannot be timed
        budget_s = BUDGET_MIN[q.track] * 60
        now = self.clock.now()
        member = caller.member

        def items_for(timer_id: int) -> list[OutboxItem]:
            return [
                OutboxItem(community_id=caller.community.id, key=f"timer:{timer_id}:half", purpose="dm",
                           member_id=member.id, not_before=now + timedelta(seconds=budget_s / 2),
                           message=Message(title=f"Half time · {q.title}",
                                           body=f"{duration(budget_s / 2)} left of {duration(budget_s)} on `{q.id}`. "
                                                f"{self._half_tip(q)}",
                                           footer=views.how_to_submit(q))),
                OutboxItem(community_id=caller.community.id, key=f"timer:{timer_id}:end", purpose="dm",
                           member_id=member.id, not_before=now + timedelta(seconds=budget_s),
                           message=Message(title=f"Time's up · {q.title}",
                                           body=f"{duration(budget_s)} are over for `{q.id}`. Submit what you have: "
                                                "in a loop, a working answer now beats a perfect one later.",
                                           footer=views.how_to_submit(q))),
            ]

        row, created = await self.store.start_timer(community_id=caller.community.id, member_id=member.id,
                                                    question_id=q.id, track=q.track, budget_s=budget_s, now=now,
                                                    items_for=items_for)
        if not created:
            elapsed = (now - datetime.fromisoformat(row["started_at"])).total_seconds()
            raise Conflict(f"Your timer on `{q.id}` is already running: {duration(elapsed)} of "
                           f"{duration(int(row['budget_s']))}. It stops with your verdict.")
        card = views.question_card(q, heading=f"Timed {BUDGET_MIN[q.track]} min")
        intro = (f"⏱ Your {TRACK_LABELS[q.track]} clock is running: {duration(budget_s)}, the usual budget for this "
                 "round. A private reminder comes at half time and at the end; your verdict shows the time taken.")
        return replace(card, body=f"{intro}\n\n{card.body}", footer=f"Question id: {q.id} · {views.how_to_submit(q)}",
                       ephemeral=True)

    async def render_reminder(self, row: OutboxRow, message: Message, now: datetime) -> Message | Stale:
        """`timer:<id>:half|end`, written from the timer and the time it goes out (see the module docstring)."""
        _, timer_id, which = row.key.split(":")
        timer = await self.store.timer(int(timer_id))
        if timer is None or timer["finished_at"] is not None:
            return Stale("the timed attempt has ended")
        budget_s = int(timer["budget_s"])
        end = datetime.fromisoformat(timer["started_at"]) + timedelta(seconds=budget_s)
        q = self.bank.get(timer["question_id"]) if timer["question_id"] in self.bank else None
        if which == "half":
            if now >= end:
                return Stale("the session was over before the half-time reminder could go out")
            if q is None:
                return message
            left = (end - now).total_seconds()
            if left >= budget_s / 2 - 60:  # on time: "Half time", and the time left to the second
                title, shown = message.title, duration(left)
            else:  # late: whole minutes, rounded up, the same figure in the title and the body
                shown = duration(60 * math.ceil(left / 60))
                title = f"{shown} left · {q.title}"
            return replace(message, title=title,
                           body=f"{shown} left of {duration(budget_s)} on `{q.id}`. {self._half_tip(q)}")
        late = now - end
        if late > TIMER_GRACE:
            return Stale(f"time ran out {duration(late.total_seconds())} ago")
        if q is None or late < timedelta(minutes=1):
            return message
        ago = duration(60 * math.floor(late.total_seconds() / 60))
        return replace(message, body=f"{duration(budget_s)} are over for `{q.id}` (time ran out {ago} ago). "
                                     "Submit what you have: in a loop, a working answer now beats a perfect one later.")

    @staticmethod
    def _half_tip(q: Question) -> str:
        if q.track in CODE_TRACKS:
            return "If you are still designing, start coding the simple version now."
        if q.track == "system-design":
            return "Move on from requirements to the model and serving path; leave time for monitoring."
        if q.track == "behavioral":
            return "Get to your actions and the measurable result."
        return "Commit to an answer."

    async def after_verdict(self, caller: Caller, question: Question, reply: Message) -> Message:
        """The submission hook: close an open timer on a final verdict and show the time taken."""
        row = await self.store.open_timer(caller.member.id, question.id)
        if row is None or reply.is_error:
            return reply
        now = self.clock.now()
        elapsed = (now - datetime.fromisoformat(row["started_at"])).total_seconds()
        budget_s = int(row["budget_s"])
        final = question.track not in CODE_TRACKS or reply.kind == "success"
        if final:
            await self.store.finish_timer(int(row["id"]), now=now)
            note = time_taken(elapsed, budget_s)
        else:
            note = f"Timer still running: {duration(elapsed)} of {duration(budget_s)} (it stops when you are accepted)"
        return replace(reply, footer=" · ".join(p for p in (reply.footer, note) if p))
