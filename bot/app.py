"""Composition root: Store + Bank + clock + services, handed to an adapter."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.config import Settings
from bot.core.bank import Bank
from bot.core.clock import Clock, SystemClock
from bot.core.services import Services
from bot.store.sqlite import Store

log = logging.getLogger("onsite")


@dataclass
class App:
    settings: Settings
    store: Store
    services: Services

    async def close(self) -> None:
        await self.store.close()


def load_bank(settings: Settings) -> Bank:
    """Load the bank; files with errors are reported and skipped so the bot still starts."""
    bank = Bank.load(settings.questions_dir)
    for problem in bank.errors:
        log.warning("question skipped: %s", problem)
    log.info("loaded %d questions from %s", len(bank), settings.questions_dir)
    return bank


async def build_app(settings: Settings, *, clock: Clock | None = None, bank: Bank | None = None) -> App:
    store = await Store.open(settings.database)
    services = Services.build(store, bank if bank is not None else load_bank(settings), clock or SystemClock())
    return App(settings=settings, store=store, services=services)
