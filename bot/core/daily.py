"""The daily round: which question each track gets on a community's day.

Decisions:
- A community's *round date* is its local date once its post time has passed, else the day before:
  before 09:00 the current round is still yesterday's.
- `choose_question` is a pure function of the bank, the community's history and the date. Rotation:
  no question repeats in a track until every question of the track has been used (then a new cycle
  starts). Difficulty follows the community's weekly pattern (Monday first; default easy, easy,
  medium, medium, medium, hard, hard), falling back to the nearest difficulty that has unused
  questions. Among equals the pick is a stable hash of (community, date, id): deterministic, but
  different communities get different orders.
- The first reader of a round claims its slots (`Store.claim_daily`, unique per community, date and
  track), so every process and every command agrees on the day's questions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.bank import Bank
from bot.core.clock import Clock
from bot.core.models import DIFFICULTIES, Community, DailyPost, Question
from bot.core.ports import Store

DEFAULT_PATTERN: tuple[str, ...] = ("easy", "easy", "medium", "medium", "medium", "hard", "hard")


@dataclass(frozen=True)
class RoundItem:
    """One track of a round: the claimed slot and its question (None if it left the bank)."""

    post: DailyPost
    question: Question | None


def parse_pattern(text: str | None) -> tuple[str, ...]:
    """A comma-separated weekly difficulty pattern of 7 entries (Monday first)."""
    if not text:
        return DEFAULT_PATTERN
    parts = tuple(p.strip() for p in text.split(","))
    if len(parts) != 7 or any(p not in DIFFICULTIES for p in parts):
        raise ValueError("the difficulty pattern needs 7 comma-separated entries from easy, medium, hard")
    return parts


def round_date(community: Community, now: datetime) -> date:
    """The date of the community's current round in its own timezone."""
    local = now.astimezone(ZoneInfo(community.timezone))
    hour, minute = (int(x) for x in community.post_time.split(":"))
    return local.date() if local.time() >= time(hour, minute) else local.date() - timedelta(days=1)


def _stable_key(community_id: int, day: date, qid: str) -> str:
    return hashlib.sha256(f"{community_id}:{day.isoformat()}:{qid}".encode()).hexdigest()


def choose_question(
    candidates: Sequence[Question],
    history: Sequence[str],
    *,
    community_id: int,
    day: date,
    pattern: Sequence[str] = DEFAULT_PATTERN,
) -> Question | None:
    """Pick the day's question for one track; `history` is the track's past question ids, oldest first."""
    if not candidates:
        return None
    ids = {q.id for q in candidates}
    used: set[str] = set()
    for qid in history:
        if qid not in ids:
            continue
        used.add(qid)
        if used >= ids:
            used = set()
    fresh = [q for q in candidates if q.id not in used] or list(candidates)
    want = DIFFICULTIES.index(pattern[day.weekday()])
    best_gap = min(abs(DIFFICULTIES.index(q.difficulty) - want) for q in fresh)
    # Prefer the wanted difficulty, then the easier neighbour over the harder one.
    pool = [q for q in fresh if abs(DIFFICULTIES.index(q.difficulty) - want) == best_gap]
    easier = [q for q in pool if DIFFICULTIES.index(q.difficulty) <= want]
    pool = easier or pool
    return min(pool, key=lambda q: _stable_key(community_id, day, q.id))


class DailyService:
    """Reads and claims the rounds of a community."""

    def __init__(self, store: Store, bank: Bank, clock: Clock) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock

    async def current_round(self, community: Community) -> tuple[date, list[RoundItem]]:
        """The current round of every enabled track, claiming slots nobody has claimed yet."""
        day = round_date(community, self.clock.now())
        return day, await self.round_on(community, day)

    async def round_on(self, community: Community, day: date) -> list[RoundItem]:
        existing = {p.track: p for p in await self.store.daily_posts_on(community.id, day)}
        pattern = parse_pattern(await self.store.community_setting(community.id, "difficulty_pattern"))
        items: list[RoundItem] = []
        for track in community.tracks:
            post = existing.get(track)
            if post is None:
                history = [p.question_id for p in await self.store.daily_history(community.id, track)]
                question = choose_question(
                    self.bank.by_track(track), history, community_id=community.id, day=day, pattern=pattern
                )
                if question is None:
                    continue
                post, _ = await self.store.claim_daily(community.id, day, track, question.id, now=self.clock.now())
            items.append(RoundItem(post, self.bank.get(post.question_id) if post.question_id in self.bank else None))
        return items
