"""Standings by period and track, read from the append-only points ledger.

Periods are calendar periods in the community's timezone: `week` starts Monday 00:00 local time,
`month` on the 1st, `all` has no start. Ties share a rank (1, 2, 2, 4); within a tie the member who
reached the score first is listed first. Members who hid themselves are left out. Each line shows
the member's current daily streak (see `scoring.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core import scoring
from bot.core.clock import Clock
from bot.core.models import Community, Member, MemberStats, Standing
from bot.core.ports import Store

PERIODS = ("week", "month", "all")
PAGE_SIZE = 10


def period_key(period: str, community: Community, now: datetime) -> str:
    """The store's key of the current period in the community's own calendar ('w:<monday>', 'm:<yyyy-mm>', 'all')."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}")
    if period == "all":
        return "all"
    local = now.astimezone(ZoneInfo(community.timezone)).date()
    if period == "week":
        return f"w:{(local - timedelta(days=local.weekday())).isoformat()}"
    return f"m:{local:%Y-%m}"


@dataclass(frozen=True)
class Page:
    """A page of standings plus the caller's own line when it is not on the page."""

    period: str
    track: str | None
    page: int
    pages: int
    rows: tuple[Standing, ...]
    own: Standing | None
    streaks: Mapping[int, int] = field(default_factory=dict)  # member id -> current streak


class Leaderboard:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def page(
        self, community: Community, member: Member, *, period: str = "week", track: str | None = None, page: int = 1
    ) -> Page:
        key = period_key(period, community, self.clock.now())
        total = await self.store.count_ranked(community.id, period=key, track=track)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(page, 1), pages)
        rows = await self.store.leaderboard(
            community.id, period=key, track=track, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        own = None
        if all(r.member_id != member.id for r in rows):
            own = await self.store.standing_of(community.id, member.id, period=key, track=track)
        shown = [r.member_id for r in rows] + ([own.member_id] if own else [])
        streaks = {mid: s[0] for mid, s in (await self.streaks(community, shown)).items()}
        return Page(period, track, page, pages, tuple(rows), own, streaks)

    async def streaks(self, community: Community, member_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(current, best) daily streak of each member, in their own timezone (else the community's)."""
        times = await self.store.daily_solve_times(member_ids)
        out = {}
        now = self.clock.now()
        for mid in member_ids:
            m = await self.store.get_member(mid)
            tz = (m.timezone if m else None) or community.timezone
            out[mid] = scoring.streaks((scoring.local_day(t, tz) for t in times.get(mid, ())), scoring.local_day(now, tz))
        return out

    async def member_stats(self, community: Community, member: Member) -> MemberStats:
        standing = await self.store.standing_of(community.id, member.id)
        current, best = (await self.streaks(community, [member.id]))[member.id]
        return MemberStats(
            member=member,
            points=await self.store.total_points(member.id),
            rank=standing.rank if standing else None,
            tracks=tuple(await self.store.track_stats(member.id)),
            streak=current,
            best_streak=best,
            mocks_done=await self.store.mocks_done(member.id),
        )
