"""The services a command can reach, built once by `bot.app` and passed to every dispatch."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bot.core.bank import Bank
from bot.core.cards import Cards
from bot.core.clock import Clock
from bot.core.cooldown import Cooldown, Failures
from bot.core.daily import DailyService
from bot.core.leaderboard import Leaderboard
from bot.core.mocks import Mocks
from bot.core.models import Community
from bot.core.outbox import Outbox
from bot.core.plans import Plans
from bot.core.ports import Chat, Grader, Store
from bot.core.practice import Practice
from bot.core.privacy import Privacy
from bot.core.review import ReviewModel, Reviews, ReviewSettings
from bot.core.stories import Stories
from bot.core.submissions import Submissions
from bot.core.timed import Timed


async def _no_listener(community: Community) -> None:
    return None


def _cards_dir(store: Store) -> Path:
    """Picture cards go beside the database file, else in the temp dir (no file: memory or a server)."""
    folder = store.files_dir
    return Path(tempfile.gettempdir()) / "onsite-cards" if folder is None else folder / "cards"


@dataclass
class Services:
    store: Store
    bank: Bank
    clock: Clock
    outbox: Outbox
    daily: DailyService
    leaderboard: Leaderboard
    submissions: Submissions
    mocks: Mocks
    # called when a community's schedule changes, so the scheduler can re-plan at once
    schedule_changed: Callable[[Community], Awaitable[None]] = field(default=_no_listener)
    # issue 9: practice, timed attempts, study plans, STAR stories, picture cards (built from the above)
    cards_dir: Path | None = None  # default: `cards/` beside the database file
    # issue 17: per-member command cooldown (None: no limit, the console) and unexpected-error counts
    cooldown: Cooldown | None = None
    failures: Failures = field(default_factory=Failures)
    # issue 20: the optional AI review (no model: off)
    review_model: ReviewModel | None = None
    review_settings: ReviewSettings | None = None
    reviews: Reviews = field(init=False)
    practice: Practice = field(init=False)
    timed: Timed = field(init=False)
    plans: Plans = field(init=False)
    stories: Stories = field(init=False)
    cards: Cards = field(init=False)
    privacy: Privacy = field(init=False)  # issue 10: /settings delete-my-data

    def __post_init__(self) -> None:
        self.practice = Practice(self.store, self.bank, self.clock)
        self.timed = Timed(self.store, self.bank, self.clock, self.submissions)
        self.plans = Plans(self.store, self.clock)
        self.stories = Stories(self.store, self.bank, self.clock)
        self.cards = Cards(self.store, self.leaderboard, self.clock, self.cards_dir or _cards_dir(self.store))
        self.submissions.after_verdict = self.timed.after_verdict
        self.outbox.render_at_send("timer", self.timed.render_reminder)  # mocks register theirs in Mocks()
        self.privacy = Privacy(self.store, self.clock)
        self.reviews = Reviews(self.store, self.clock, self.review_model, self.review_settings)
        self.reviews.deliver = self.outbox.deliver
        self.submissions.reviews = self.reviews if self.reviews.enabled else None
        self.mocks.reviews = self.reviews if self.reviews.enabled else None

    @classmethod
    def build(
        cls,
        store: Store,
        bank: Bank,
        clock: Clock,
        *,
        chat: Chat | None = None,
        grader: Grader | None = None,
        grace: timedelta = timedelta(hours=6),
        cooldown: Cooldown | None = None,
        review_model: ReviewModel | None = None,
        review_settings: ReviewSettings | None = None,
        cards_dir: Path | None = None,
        queue_wait_s: float | None = None,
    ) -> Services:
        """`queue_wait_s`: grade no code here; queue it for `python -m graders worker` processes and
        wait this long for their verdict before it goes by DM (`grader` is then None)."""
        outbox = Outbox(store, clock, chat)
        submissions = Submissions(store, bank, clock, outbox, grader)
        submissions.queue_wait_s = queue_wait_s
        return cls(
            store=store,
            bank=bank,
            clock=clock,
            outbox=outbox,
            daily=DailyService(store, bank, clock, outbox, grace=grace),
            leaderboard=Leaderboard(store, clock),
            submissions=submissions,
            mocks=Mocks(store, bank, clock, outbox),
            cooldown=cooldown,
            review_model=review_model,
            review_settings=review_settings,
            cards_dir=cards_dir,
        )

    async def tick(self, *, since: datetime | None = None) -> None:
        """Whatever is due in every community: reveals, posts, mock rounds, plan nudges, code whose
        grading a crash cut off, retries of failed sends.

        `since`: only what fell due after this instant (the console's live mode); None catches up
        on everything still inside its grace window (the chat bots after a restart)."""
        for community in await self.store.list_communities():
            await self.daily.tick(community, since=since)
            await self.mocks.tick(community, since=since)
            await self.plans.tick(community)
        await self.submissions.recover()
        await self.outbox.deliver()
