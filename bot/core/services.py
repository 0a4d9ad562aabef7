"""The services a command can reach, built once by `bot.app` and passed to every dispatch."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.bank import Bank
from bot.core.clock import Clock
from bot.core.daily import DailyService
from bot.core.leaderboard import Leaderboard
from bot.core.ports import Store


@dataclass
class Services:
    store: Store
    bank: Bank
    clock: Clock
    daily: DailyService
    leaderboard: Leaderboard

    @classmethod
    def build(cls, store: Store, bank: Bank, clock: Clock) -> Services:
        return cls(
            store=store,
            bank=bank,
            clock=clock,
            daily=DailyService(store, bank, clock),
            leaderboard=Leaderboard(store, clock),
        )
