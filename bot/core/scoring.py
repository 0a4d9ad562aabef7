"""Points and streaks: the whole scoring policy in one place.

Points (every point is a row in the append-only ledger, so standings can always be recomputed):

| what | easy | medium | hard |
|---|---|---|---|
| code question solved (coding, ml-coding) | 10 | 20 | 30 |
| ml-theory answered right on the first attempt | 4 | 6 | 8 |
| written answer (system-design, behavioral) | 4 | 6 | 8, times the rubric coverage, at least 1 |

- A written answer scores (and counts as solved, announced and ranked) only when its estimated rubric
  coverage reaches the community's bar (`/admin setup coverage`, default 50%); below it, nothing,
  and the member may revise once (`submissions.py`).
- Only the first accepted submission of a question scores (ledger key `solve:<member>:<question>`);
  theory questions take one attempt only, since the explanation is shown after it.
- A question scores in full while it is in the community's current daily round. Practice (any
  other question) scores half, rounded down.
- A question whose answer was revealed in the community (today's after a reveal-time, or a past
  daily not back in the round) is still graded, like a past daily on LeetCode, but scores nothing:
  its answer is public, which is also why /practice never offers past dailies (`practice.py`).
- Early solvers of a daily question get a bonus, Advent-of-Code style but flatter: +5 for the first
  solver in the community, +3 for the second, +1 for the third (ledger key `early:<post>:<rank>`,
  so two processes cannot both be "first").
- Peer votes on written answers after the reveal: +1 per vote received, at most 5 per answer.
- Streaks count the consecutive days, in the member's own timezone (else the community's), on
  which they solved at least one daily question. Today not being solved yet does not break the
  streak until the day is over. Every 7th day of a streak earns +10 (ledger key per milestone).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.models import CODE_TRACKS, WRITTEN_TRACKS

SOLVE_POINTS = {"easy": 10, "medium": 20, "hard": 30}
THEORY_POINTS = {"easy": 4, "medium": 6, "hard": 8}
WRITTEN_POINTS = {"easy": 4, "medium": 6, "hard": 8}
EARLY_BONUS = (5, 3, 1)
VOTE_POINTS = 1
MAX_VOTE_POINTS = 5
STREAK_MILESTONE_DAYS = 7
STREAK_MILESTONE_POINTS = 10


def solve_points(track: str, difficulty: str, *, daily: bool, coverage: float | None = None) -> int:
    """Points for a member's first accepted answer to a question."""
    if track in CODE_TRACKS:
        base = SOLVE_POINTS[difficulty]
    elif track in WRITTEN_TRACKS:
        base = max(1, round(WRITTEN_POINTS[difficulty] * (coverage or 0.0)))
    else:
        base = THEORY_POINTS[difficulty]
    return base if daily else base // 2


def early_bonus(position: int) -> int:
    """Bonus for the n-th (1-based) solver of a daily question."""
    return EARLY_BONUS[position - 1] if 1 <= position <= len(EARLY_BONUS) else 0


def local_day(instant: datetime, timezone: str) -> date:
    return instant.astimezone(ZoneInfo(timezone)).date()


def streaks(solve_days: Iterable[date], today: date) -> tuple[int, int]:
    """(current, best) streak from the local dates with a daily solve."""
    days = sorted(set(solve_days))
    best = run = 0
    previous: date | None = None
    for d in days:
        run = run + 1 if previous is not None and d - previous == timedelta(days=1) else 1
        best = max(best, run)
        previous = d
    if previous is None or today - previous > timedelta(days=1):
        return 0, best
    return run, best
