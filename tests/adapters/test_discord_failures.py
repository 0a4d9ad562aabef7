"""Discord (issue 17, items 13 and 14), through discord.py's own interaction parsing and command tree:
the per-member cooldown answered privately with the wait, on commands and buttons alike and on a
real start; unexpected errors counted per kind wherever they happen (the command's handler, the member
lookup before it, a button, a form, the outbox after the reply), once each, logged with the command
and the community and never with a token or the member's text, by any logger."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.adapters.discord_app import OnsiteClient
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.cooldown import Cooldown
from bot.store.sqlite import Store
from tests.adapters import discord_payloads as dp
from tests.adapters.failing import broken, logged
from tests.conftest import StandInGrader

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GabcDE.abcdefghijklmnopqrstuvwxyz0123"  # shaped like a bot token
ANSWER = "def secret_solution(): return 42"


@pytest.fixture
async def bot(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch)
    await dp.settle()


def last_answer(bot: dp.Bot) -> dp.Shown:
    shown = bot.http.visible()[-1]
    assert shown.payload is not None
    return shown


# -- item 13: the cooldown ---------------------------------------------------------------------------


async def test_a_member_past_the_burst_is_told_privately_to_slow_down_with_the_wait(bot: dp.Bot) -> None:
    bot.services.cooldown = Cooldown(burst=2, per_minute=6)
    for _ in range(2):
        await bot.feed(dp.slash("leaderboard"))
        assert not last_answer(bot).private  # a public reply, as the command means it
    await bot.feed(dp.slash("leaderboard"))
    slowed = last_answer(bot)
    assert slowed.private
    assert dp.text_of(slowed.payload or {}) == \
        "⚠️ Slow down: at most 2 commands in a row, then 6 a minute. Try again in 10 s."
    await bot.feed(dp.click("onsite:hint:pair-sum-count", dp.message_json(dp.snowflake(), dp.CHANNEL_ID, None)))
    assert "Slow down" in dp.text_of(last_answer(bot).payload or {})  # a button is a command too
    await bot.feed(dp.slash("leaderboard", user_id=dp.BOB, username="bob"))
    assert "Slow down" not in dp.text_of(last_answer(bot).payload or {})  # the bucket is alice's own
    bot.clock.advance(timedelta(seconds=10))
    await bot.feed(dp.slash("leaderboard"))
    assert "Slow down" not in dp.text_of(last_answer(bot).payload or {})


async def test_a_real_start_builds_the_cooldown_from_the_settings(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from bot.adapters.discord_app import run_discord
    from bot.config import Secret, Settings
    from tests.conftest import FIXTURE_BANK

    seen: list[Cooldown | None] = []

    async def start(self: OnsiteClient, token: str, *, reconnect: bool = True) -> None:
        seen.append(self.services.cooldown)

    monkeypatch.setattr(OnsiteClient, "start", start)
    settings = Settings(database=tmp_path / "onsite.db", questions_dir=FIXTURE_BANK, discord_token=Secret("t"),
                        command_burst=3, commands_per_minute=7)
    with caplog.at_level(logging.INFO, logger="bot.adapters.discord_app"):
        assert await run_discord(settings) == 0
    [cooldown] = seen
    assert cooldown is not None and (cooldown.burst, cooldown.per_minute) == (3, 7)
    assert "unexpected errors since the start, per kind: none" in caplog.text  # the operator's summary at exit


# -- item 14: unexpected errors per kind -----------------------------------------------------------------


async def test_a_failing_handler_is_counted_once_and_no_log_line_holds_the_token(
        bot: dp.Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    await bot.feed(dp.slash("help"))
    monkeypatch.setattr(bot.store, "leaderboard", broken(f"database is locked (token {TOKEN})"))
    caplog.set_level(logging.INFO)
    await bot.feed(dp.slash("leaderboard"))
    answer = last_answer(bot)
    assert answer.private and "Something went wrong" in dp.text_of(answer.payload or {})
    assert bot.services.failures.counts == {"RuntimeError in /leaderboard": 1}
    failure_lines = [r for r in caplog.records if r.name == "onsite.failures"]
    assert len(failure_lines) == 1  # the tree's error handler did not log it a second time
    community = await bot.community()
    assert f"(community {community.id})" in failure_lines[0].getMessage()
    text = logged(caplog)
    assert TOKEN not in text and "[token]" in text


async def test_a_failure_in_the_member_lookup_is_counted_under_its_command(
        bot: dp.Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The database failing before dispatch (ensure_member) is an unexpected error of /submit too."""
    await bot.feed(dp.slash("help"))
    monkeypatch.setattr(bot.store, "ensure_member", broken(f"disk I/O error near {TOKEN}"))
    caplog.set_level(logging.INFO)
    for user_id, name in ((dp.ALICE, "alice"), (dp.BOB, "bob")):
        await bot.feed(dp.slash("submit", {"id": "pair-sum-count", "answer": ANSWER}, user_id=user_id,
                                username=name))
        assert "Something went wrong" in dp.text_of(last_answer(bot).payload or {})
    assert bot.services.failures.counts == {"RuntimeError in /submit": 2}
    [last] = [r for r in caplog.records if r.name == "onsite.failures"][-1:]
    community = await bot.community()
    assert f"unexpected error #2 of kind 'RuntimeError in /submit' (community {community.id})" in last.getMessage()
    text = logged(caplog)
    assert TOKEN not in text and ANSWER not in text  # neither the token nor the member's code


async def test_a_failing_button_and_a_failing_form_are_counted(bot: dp.Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    await bot.feed(dp.slash("help"))
    monkeypatch.setattr(bot.store, "ensure_member", broken("disk I/O error"))
    await bot.feed(dp.click("onsite:hint:pair-sum-count", dp.message_json(dp.snowflake(), dp.CHANNEL_ID, None)))
    assert "Something went wrong" in dp.text_of(last_answer(bot).payload or {})
    await bot.feed(dp.modal_submit("onsite-form:story:conflict", {"text": "Late launch", "situation": "It slipped."}))
    assert "Something went wrong" in dp.text_of(last_answer(bot).payload or {})
    assert bot.services.failures.counts == {"RuntimeError in /hint": 1, "RuntimeError in the story form": 1}


async def test_the_outbox_failing_after_the_reply_is_counted(bot: dp.Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.services.outbox, "deliver", broken("outbox table is locked"))
    await bot.feed(dp.slash("leaderboard"))
    assert "Leaderboard" in dp.text_of(last_answer(bot).payload or {})  # the member's reply went out first
    assert bot.services.failures.counts == {"RuntimeError in the outbox delivery": 1}
