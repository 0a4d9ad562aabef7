"""Per-member cooldown and unexpected-error counts: through the command table with the real store,
and through Bolt's own dispatch with the fake Slack Web API (the path members use)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.adapters.slack_app import SlackAdapter, SlackChat, make_client
from bot.app import build_app
from bot.config import Settings
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.commands import Context, core_table, dispatch_line
from bot.core.cooldown import Cooldown, Failures, mask_tokens
from bot.core.models import Caller
from bot.core.services import Services
from bot.store.sqlite import Store
from tests.adapters.slack_fake_api import FakeSlackApi
from tests.adapters.test_slack_app import ADA, BOB, SECRET, Slack, all_text, api  # noqa: F401 - api is a fixture
from tests.conftest import FIXTURE_BANK, StandInGrader

SLACK_TOKEN = "xoxb-1111111111-2222222222-abcdefABCDEF123456"


async def test_a_burst_then_the_rate_then_slow_down_with_the_wait(
    store: Store, bank: Bank, clock: FixedClock, member: Caller, admin: Caller
) -> None:
    services = Services.build(store, bank, clock, cooldown=Cooldown(burst=3, per_minute=6))
    table = core_table()

    async def run(caller: Caller, line: str) -> str:
        return (await dispatch_line(Context(services, caller, table), line)).plain_text()

    for _ in range(3):
        assert "Slow down" not in await run(member, "/leaderboard")
    slowed = await run(member, "/submit overfit-first-step B")
    assert slowed == "Slow down: at most 3 commands in a row, then 6 a minute. Try again in 10 s."
    assert await store.member_submissions(member.member.id) == []  # the refused command did not run
    assert "Slow down" not in await run(admin, "/leaderboard")  # the bucket is the member's own
    clock.advance(timedelta(seconds=9))
    assert "Try again in 1 s" in await run(member, "/leaderboard")
    clock.advance(timedelta(seconds=1))
    assert "Correct" in await run(member, "/submit overfit-first-step B")  # one more after 10 s...
    assert "Slow down" in await run(member, "/leaderboard")  # ...and only one
    clock.advance(timedelta(minutes=5))
    for _ in range(3):  # an idle minute refills the burst, never more than the burst
        assert "Slow down" not in await run(member, "/leaderboard")
    assert "Slow down" in await run(member, "/leaderboard")


@pytest.fixture
async def limited_slack(tmp_path: Path, api: FakeSlackApi, bank: Bank, clock: FixedClock,  # noqa: F811
                        grader: StandInGrader) -> AsyncIterator[Slack]:
    client = make_client("xoxb-test", base_url=api.base_url)
    chat = SlackChat(client)
    settings = Settings(database=tmp_path / "onsite.db", questions_dir=FIXTURE_BANK, command_burst=2,
                        commands_per_minute=1)
    app = await build_app(settings, clock=clock, chat=chat, bank=bank, grader=grader, cooldown=True)
    adapter = SlackAdapter(app, client, signing_secret=SECRET, chat=chat)
    try:
        yield Slack(adapter, api, app)
    finally:
        await adapter.drain()
        await app.close()


async def test_slack_members_are_told_to_slow_down(limited_slack: Slack) -> None:
    for _ in range(2):
        assert "Slow down" not in all_text(await limited_slack.command("leaderboard"))
    third = all_text(await limited_slack.command("leaderboard"))
    assert "Slow down: at most 2 commands in a row, then 1 a minute. Try again in 60 s." in third
    assert "Slow down" not in all_text(await limited_slack.command("leaderboard", user=BOB))


async def test_unexpected_errors_are_counted_per_kind_and_logged_without_tokens(
    limited_slack: Slack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"database is locked (while using {SLACK_TOKEN})")

    monkeypatch.setattr(limited_slack.app.store, "leaderboard", broken)
    caplog.set_level(logging.ERROR, "onsite.failures")
    for user in (ADA, BOB):
        reply = all_text(await limited_slack.command("leaderboard", user=user))
        assert "Something went wrong" in reply and "database is locked" not in reply
    failures = limited_slack.app.services.failures
    assert failures.counts == {"RuntimeError in /leaderboard": 2}
    assert failures.summary() == "RuntimeError in /leaderboard: 2"
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "onsite.failures")
    community = (await limited_slack.app.store.list_communities())[0]
    assert f"unexpected error #2 of kind 'RuntimeError in /leaderboard' (community {community.id})" in logged
    assert "database is locked" in logged and SLACK_TOKEN not in logged and "[token]" in logged


def test_token_shapes_are_masked_and_long_messages_cut() -> None:
    discord_like = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GabcDE.abcdefghijklmnopqrstuvwxyz0123"
    assert mask_tokens(f"a {discord_like} b xapp-1-A0-123-abcdef c") == "a [token] b [token] c"
    failures = Failures()
    try:
        raise ValueError("x" * 1000)
    except ValueError as exc:
        assert failures.record(exc, where="tick") == 1
    assert failures.counts["ValueError in tick"] == 1


@pytest.mark.parametrize(("name", "value"), [("ONSITE_COMMAND_BURST", "0"), ("ONSITE_COMMAND_BURST", "abc"),
                                             ("ONSITE_COMMANDS_PER_MINUTE", "601"), ("ONSITE_COMMANDS_PER_MINUTE", "-1")])
def test_cooldown_settings_are_checked(name: str, value: str) -> None:
    from bot.config import load_settings
    from bot.core.errors import ConfigError

    with pytest.raises(ConfigError, match=f"^{name}="):
        load_settings({name: value}, dotenv=None)
    assert load_settings({"ONSITE_COMMAND_BURST": "3", "ONSITE_COMMANDS_PER_MINUTE": "90"}, dotenv=None
                         ).commands_per_minute == 90
