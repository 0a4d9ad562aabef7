"""Numeric theory answers: shown as typed, the key exactly as its file writes it, checked exactly (issue 16, item 1)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core import views
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.errors import UsageError
from bot.core.models import Caller, PostStats, Question
from bot.core.services import Services
from bot.store.sqlite import Store
from tests.conftest import REPO

QUESTIONS = REPO / "questions"


def literal(q: Question) -> str:
    """The `answer:` line of the question's file, as written."""
    assert q.source_path is not None
    match = re.search(r"^answer:\s*(\S+)\s*$", Path(q.source_path).read_text(encoding="utf-8"), re.M)
    assert match, q.id
    return match.group(1)


def wrong_value(text: str, tolerance: float) -> str:
    """A number just outside the tolerance, written plainly."""
    step = Decimal(repr(tolerance)) * 2 if tolerance else Decimal(1)
    return format(Decimal(text) + step, "f")


async def test_every_numeric_key_of_the_real_bank_is_shown_as_its_file_writes_it(
    store: Store, clock: FixedClock, admin: Caller
) -> None:
    bank = Bank.load(QUESTIONS)
    assert not bank.errors, bank.errors
    services = Services.build(store, bank, clock)
    numeric = [q for q in bank if q.kind == "numeric"]
    assert len(numeric) >= 20 and any(q.id == "ft-lora-param-count" for q in numeric)
    wrong = Caller(await store.ensure_member(admin.community.id, "u-w", "Wes", now=clock.now()), admin.community)
    right = Caller(await store.ensure_member(admin.community.id, "u-r", "Rae", now=clock.now()), admin.community)
    for q in numeric:
        key = literal(q)
        typed = wrong_value(key, q.tolerance or 0.0)
        miss = await services.submissions.submit(wrong, q.id, text=typed, code=None)
        fields = {f.name: f.value for f in miss.fields}
        assert miss.title.startswith("Not quite"), (q.id, typed)
        assert (fields["Your answer"], fields["Answer"]) == (typed, key), q.id
        hit = await services.submissions.submit(right, q.id, text=f" {key} ", code=None)
        fields = {f.name: f.value for f in hit.fields}
        assert hit.title.startswith("Correct"), q.id
        assert (fields["Your answer"], fields["Answer"]) == (key, key), q.id
        reveal = {f.name: f.value for f in views.reveal(q, date(2026, 11, 23), PostStats(0, 0, ())).fields}
        assert reveal["Answer"].split(" (±")[0] == key, q.id
    stored = await store.submissions_of(wrong.member.id, "ft-lora-param-count")
    assert [r["content"] for r in stored] == ["8388609"]  # what the member typed, for "you already answered (...)"


def test_keys_are_checked_in_exact_decimals() -> None:
    from bot.core.submissions import numeric_correct

    big = Question(id="big", track="ml-theory", title="t", difficulty="easy", topics=("x",), prompt="p",
                   kind="numeric", answer=2**53 + 1, tolerance=0.0)
    assert numeric_correct("9007199254740993", big) and numeric_correct("9,007,199,254,740,993", big)
    assert not numeric_correct("9007199254740992", big)  # the same float as the key, but not the same integer
    ctr = Question(id="ctr", track="ml-theory", title="t", difficulty="easy", topics=("x",), prompt="p",
                   kind="numeric", answer=0.64, tolerance=0.005)
    assert numeric_correct("0.645", ctr) and numeric_correct("0.635", ctr) and numeric_correct("6.4e-1", ctr)
    assert not numeric_correct("0.6451", ctr)
    assert views.numeric_answer(big) == "9007199254740993" and views.numeric_answer(ctr) == "0.64"


async def test_numbers_too_long_or_too_large_are_refused(services: Services, member: Caller) -> None:
    with pytest.raises(UsageError, match="at most 40"):
        await services.submissions.submit(member, "precision-from-counts", text="0." + "1" * 60, code=None)
    with pytest.raises(UsageError, match="too large"):
        await services.submissions.submit(member, "precision-from-counts", text="1e999", code=None)
    assert await services.store.submissions_of(member.member.id, "precision-from-counts") == []


def test_console_shows_the_typed_answer_and_the_exact_key(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ONSITE_QUESTIONS": str(QUESTIONS), "XDG_DATA_HOME": str(tmp_path / "d"),
           "USER": "tester"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "x.db")],
        input="/submit ft-lora-param-count 8388609\n", capture_output=True, text=True, timeout=60,
        cwd=REPO, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Your answer: 8388609" in result.stdout and "Answer: 8388608" in result.stdout
    assert "e+06" not in result.stdout
