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

Posting and revealing (`tick`, called by the scheduler at each community's post time, every minute
for catch-up and retries, and by the console after every command):
- At the post time in the community's timezone the round is announced: one post per track goes into
  the outbox under the key `post:<daily post id>` in one transaction, so it is announced once, ever,
  whichever process gets there first. If the bot was down at post time it posts at start only within
  the grace window (`ONSITE_DAILY_GRACE_MINUTES`, default 360); a later start leaves the day unposted
  (members still see it with /daily). A community with no channel set (NULL) posts nothing, and at
  the post time every admin gets one DM for the day saying so (`no-channel:` outbox keys); an empty
  channel ("") is the explicit `/admin setup channel off`: no posts and no DMs.
- A round is revealed when the next round's post time arrives (or at the community's `reveal_time`
  after its post, when one is set): answer, explanation and stats (attempts, solve rate, first
  solvers). The reveal is enqueued in the same transaction that marks the post revealed. Reveals go
  before the next round's posts. After a long downtime only the most recent round gets a message;
  older ones are marked revealed quietly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core import failpoints, views
from bot.core.bank import Bank
from bot.core.clock import Clock
from bot.core.errors import Conflict
from bot.core.messages import Message
from bot.core.models import DIFFICULTIES, Community, OutboxItem, Question, RoundItem
from bot.core.outbox import Outbox
from bot.core.ports import Store

DEFAULT_PATTERN: tuple[str, ...] = ("easy", "easy", "medium", "medium", "medium", "hard", "hard")


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


def at_local(community: Community, day: date, hhmm: str) -> datetime:
    """The UTC instant of a local wall-clock time on a community's date."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    local = datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(community.timezone))
    return local.astimezone(ZoneInfo("UTC"))


def reveal_due(community: Community, day: date, reveal_time: str | None) -> datetime:
    """When the round of `day` is revealed: the next round's post time, or the first `reveal_time` after the post."""
    if not reveal_time:
        return at_local(community, day + timedelta(days=1), community.post_time)
    posted = at_local(community, day, community.post_time)
    candidate = at_local(community, day, reveal_time)
    return candidate if candidate > posted else at_local(community, day + timedelta(days=1), reveal_time)


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
    """Reads, claims, posts and reveals the rounds of a community."""

    def __init__(self, store: Store, bank: Bank, clock: Clock, outbox: Outbox, *, grace: timedelta) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock
        self.outbox = outbox
        self.grace = grace

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

    async def tick(self, community: Community, *, since: datetime | None = None) -> None:
        """Queue whatever is due for one community: reveals first, then the current round's post.

        With `since`, only a post time after that instant counts (no catch-up). The caller delivers
        the outbox afterwards (once for many communities, so sends overlap)."""
        now = self.clock.now()
        await self.reveal_due_rounds(community, now)
        day = round_date(community, now)
        if community.channel != "" and not await self.store.round_announced(community.id, day):
            due = at_local(community, day, community.post_time)
            if now - due <= self.grace and (since is None or due > since):
                if community.channel:
                    await self.announce(community, day)
                    failpoints.hit("daily.announced")
                else:
                    await self.tell_admins_no_channel(community, day)

    async def post_now(self, community: Community) -> date:
        """Admin: queue the current round now (sent by the next delivery); refuses when it was already posted."""
        if not community.channel:
            raise Conflict("Set the channel first: /admin setup channel <name>.")
        now = self.clock.now()
        await self.reveal_due_rounds(community, now)
        day = round_date(community, now)
        if await self.store.round_announced(community.id, day):
            raise Conflict(f"The round of {day:%a %d %b} was already posted; it is never posted twice.")
        await self.announce(community, day)
        return day

    async def tell_admins_no_channel(self, community: Community, day: date) -> None:
        """The round's post time came and no channel is set: every admin gets one DM for that day."""
        message = Message(
            title="Today's round was not posted",
            body=f"The round of {day:%a %d %b} could not be posted in {community.name}: no channel is set. "
                 "Set one with /admin setup channel <name>, then /admin post-now posts it; "
                 "/admin setup channel off turns the daily round off.",
            kind="error",
        )
        await self.store.enqueue([
            OutboxItem(community_id=community.id, key=f"no-channel:{community.id}:{day.isoformat()}:{admin.id}",
                       purpose="dm", member_id=admin.id, message=message)
            for admin in await self.store.admins(community.id)
        ], now=self.clock.now())

    async def announce(self, community: Community, day: date) -> None:
        items = await self.round_on(community, day)
        assert community.channel
        outgoing = [
            OutboxItem(
                community_id=community.id,
                key=f"post:{item.post.id}",
                purpose="post",
                channel=community.channel,
                daily_post_id=item.post.id,
                message=views.daily_post(item.question, day),
            )
            for item in items
            if item.question is not None
        ]
        await self.store.enqueue(outgoing, now=self.clock.now())

    async def reveal_due_rounds(self, community: Community, now: datetime) -> None:
        reveal_time = await self.store.community_setting(community.id, "reveal_time")
        due = [p for p in await self.store.announced_unrevealed(community.id) if now >= reveal_due(community, p.date, reveal_time)]
        if not due:
            return
        latest = max(p.date for p in due)
        items = []
        for post in due:
            if post.date != latest or post.question_id not in self.bank or not community.channel:
                continue
            stats = await self.store.post_stats(post.id)
            items.append(
                OutboxItem(
                    community_id=community.id,
                    key=f"reveal:{post.id}",
                    purpose="reveal",
                    channel=community.channel,
                    daily_post_id=post.id,
                    message=views.reveal(self.bank.get(post.question_id), post.date, stats),
                )
            )
        await self.store.enqueue(items, now=now, revealed=[p.id for p in due])
