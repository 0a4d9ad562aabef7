"""The services a command can reach, built once by `bot.app` and passed to every dispatch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from bot.core.bank import Bank
from bot.core.clock import Clock
from bot.core.daily import DailyService
from bot.core.leaderboard import Leaderboard
from bot.core.mocks import Mocks
from bot.core.models import Community
from bot.core.outbox import Outbox
from bot.core.ports import Chat, Grader, Store
from bot.core.submissions import Submissions


async def _no_listener(community: Community) -> None:
    return None


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
    ) -> Services:
        outbox = Outbox(store, clock, chat)
        return cls(
            store=store,
            bank=bank,
            clock=clock,
            outbox=outbox,
            daily=DailyService(store, bank, clock, outbox, grace=grace),
            leaderboard=Leaderboard(store, clock),
            submissions=Submissions(store, bank, clock, outbox, grader),
            mocks=Mocks(store, bank, clock, outbox),
        )

    async def tick(self) -> None:
        """Whatever is due in every community: reveals, posts, retries of failed sends."""
        for community in await self.store.list_communities():
            await self.daily.tick(community)
            await self.mocks.tick(community)
        await self.outbox.deliver()
