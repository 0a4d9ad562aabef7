"""Shared fixtures: a real SQLite file in a temp dir, the fixture bank, a clock that moves on request."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.messages import Message
from bot.core.models import Caller, Community, Member, Question, Verdict, VerdictTest
from bot.core.services import Services
from bot.store.sqlite import Store
from tests import pgserver

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


_PG_SKIPPED: list[str] = []


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    """A real PostgreSQL server for the run (see tests/pgserver.py); skipped, loudly, without one."""
    try:
        server = pgserver.for_tests()
    except pgserver.Unavailable as exc:
        _PG_SKIPPED.append(str(exc))
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield server
    pgserver.close_for_tests(server)


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated store on a real engine: SQLite (a file in a temp dir) or PostgreSQL (a fresh database
    on a real server), as the test is parametrised (tests/store) or ONSITE_TEST_ENGINE says."""
    engine = getattr(request, "param", None) or os.environ.get("ONSITE_TEST_ENGINE", "sqlite")
    if engine == "postgres":
        if request.node.get_closest_marker("sqlite_only"):
            pytest.skip("a test of an SQLite-only feature")
        from bot.store.postgres import PostgresStore

        server = request.getfixturevalue("pg_server")
        s: Store = await PostgresStore.open(await server.fresh_database(), max_size=4)
    else:
        s = await Store.open(tmp_path / "onsite.db")
    yield s
    await s.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _PG_SKIPPED:
        terminalreporter.write_sep("!", f"PostgreSQL contract tests were SKIPPED: {_PG_SKIPPED[0]}", red=True)


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


class RecordingChat:
    """A `Chat` that records what the bot would send; it can be told to fail the next sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Message]] = []  # (kind, where, message)
        self.fail_next = 0
        self.fail_with: Exception = RuntimeError("503 from the platform")

    def _maybe_fail(self) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise self.fail_with

    async def post(self, community: Community, channel: str, message: Message, *, key: str = "") -> str:
        self._maybe_fail()
        self.sent.append(("post", channel, message))
        return f"msg-{len(self.sent)}"

    async def send_dm(self, member: Member, message: Message, *, key: str = "") -> None:
        self._maybe_fail()
        self.sent.append(("dm", member.display_name, message))

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        self._maybe_fail()
        self.sent.append(("space", title, Message(title=title)))
        return f"space-{len(self.sent)}"

    def posts(self, kind: str | None = None) -> list[Message]:
        return [m for k, _, m in self.sent if k == "post" and (kind is None or m.kind == kind)]


class StandInGrader:
    """The judge's stand-in for core tests: the question's reference is accepted, anything else is
    a wrong answer, code containing 'BOOM' is a judge fault. The real judge has its own tests."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None

    async def grade(self, question: Question, code: str, *, key: str) -> Verdict:
        self.calls.append((question.id, key))
        if self.gate is not None:
            await self.gate.wait()
        total = len(question.tests)
        if "BOOM" in code:
            return Verdict("internal_error", 0, total, 1.0, "sandbox exploded", tier="stand-in")
        if code.strip() == (question.reference or "").strip():
            return Verdict("accepted", total, total, 12.0, tier="stand-in")
        first = question.tests[0]
        failing = VerdictTest(first.name, "wrong_answer", first.visible, 1.0, list(first.args), first.expected, "nope")
        return Verdict("wrong_answer", total - 1, total, 12.0, "1 test failed", (failing,), tier="stand-in")


@pytest.fixture
def chat() -> RecordingChat:
    return RecordingChat()


@pytest.fixture
def grader() -> StandInGrader:
    return StandInGrader()


@pytest.fixture
def wired(store: Store, bank: Bank, clock: FixedClock, chat: RecordingChat, grader: StandInGrader) -> Services:
    """Services with a recording chat and the stand-in grader (the posting and grading paths)."""
    return Services.build(store, bank, clock, chat=chat, grader=grader)
