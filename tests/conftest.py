"""Shared fixtures: a real SQLite file in a temp dir, the fixture bank, a clock that moves on request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.models import Caller
from bot.core.services import Services
from bot.store.sqlite import Store

FIXTURE_BANK = Path(__file__).parent / "fixtures" / "bank"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def bank() -> Bank:
    loaded = Bank.load(FIXTURE_BANK)
    assert not loaded.errors, loaded.errors
    return loaded


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # a Monday


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "onsite.db")
    yield s
    await s.close()


@pytest.fixture
def services(store: Store, bank: Bank, clock: FixedClock) -> Services:
    return Services.build(store, bank, clock)


@pytest.fixture
async def admin(store: Store, clock: FixedClock) -> Caller:
    community = await store.ensure_community("test", "guild-1", "Test guild", now=clock.now(), channel="daily")
    member = await store.ensure_member(community.id, "u-admin", "Ada", now=clock.now(), is_admin=True)
    return Caller(member, community, is_admin=True)


@pytest.fixture
async def member(store: Store, clock: FixedClock, admin: Caller) -> Caller:
    m = await store.ensure_member(admin.community.id, "u-bob", "Bob", now=clock.now())
    return Caller(m, admin.community, is_admin=False)
