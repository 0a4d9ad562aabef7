"""Slack (issue 17, items 13 and 14): the cooldown on a real start, and unexpected errors counted per
kind wherever they happen on the way through Bolt (the command's handler, the member lookup before
it, a button, a modal, a follow-up), once each, logged with the command and the community and never
with a token or the member's text, by any logger."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.adapters.slack_app import run_slack
from tests.adapters import test_slack_app
from tests.adapters.failing import broken, logged
from tests.adapters.slack_fake_api import FakeSlackApi
from tests.adapters.test_slack_app import BOB, Slack, all_text, buttons, set_channel
from tests.adapters.test_slack_run import SECRET, command_form, free_port, running
from tests.adapters.test_slack_run import settings as run_settings

api, slack = test_slack_app.api, test_slack_app.slack  # the fixtures: a fake Web API, Bolt app on it

TOKEN = "xoxb-1111111111-2222222222-abcdefABCDEF123456"
ANSWER = "def secret_solution(): return 42"


async def community_id(slack: Slack) -> int:
    return (await slack.app.store.list_communities())[0].id


async def test_a_failing_handler_is_counted_once_and_no_log_line_holds_the_token(
        slack: Slack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    await slack.command("stats")
    monkeypatch.setattr(slack.app.store, "leaderboard", broken(f"database is locked (token {TOKEN})"))
    caplog.set_level(logging.INFO)
    reply = await slack.command("leaderboard all")
    assert "Something went wrong" in all_text(reply) and "locked" not in all_text(reply)
    assert slack.app.services.failures.counts == {"RuntimeError in /leaderboard": 1}
    failure_lines = [r for r in caplog.records if r.name == "onsite.failures"]
    assert len(failure_lines) == 1  # the adapter that caught it again did not log it a second time
    assert f"(community {await community_id(slack)})" in failure_lines[0].getMessage()
    text = logged(caplog)
    assert TOKEN not in text and "[token]" in text


async def test_a_failure_before_the_handler_is_counted_under_its_command(
        slack: Slack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The database failing in the member lookup (before dispatch) is an unexpected error of /submit too."""
    await slack.command("stats")
    monkeypatch.setattr(slack.app.store, "ensure_member", broken(f"disk I/O error near {TOKEN}"))
    caplog.set_level(logging.INFO)
    reply = await slack.command(f"submit overfit-first-step {ANSWER}")
    assert "Something went wrong" in all_text(reply)
    reply = await slack.command(f"submit overfit-first-step {ANSWER}", user=BOB)
    assert slack.app.services.failures.counts == {"RuntimeError in /submit": 2}
    [last] = [r for r in caplog.records if r.name == "onsite.failures"][-1:]
    assert "unexpected error #2 of kind 'RuntimeError in /submit'" in last.getMessage()
    assert f"(community {await community_id(slack)})" in last.getMessage()
    text = logged(caplog)
    assert TOKEN not in text and ANSWER not in text  # neither the token nor the member's answer


async def test_a_failing_button_and_a_failing_form_are_counted_by_their_command(
        slack: Slack, monkeypatch: pytest.MonkeyPatch) -> None:
    await set_channel(slack)
    await slack.command("admin post-now")
    await slack.adapter.deliver()
    post = next(p for p in slack.posts() if any(b["action_id"].startswith("onsite:hint:") for _, b in buttons(p)))
    block_id, hint = next((bid, b) for bid, b in buttons(post) if b["action_id"].startswith("onsite:hint:"))
    await slack.command("submit overfit-first-step")  # opens the form
    [opened] = slack.api.of("views.open")
    monkeypatch.setattr(slack.app.store, "ensure_member", broken("disk I/O error"))
    await slack.click(hint, block_id=block_id)
    assert "Something went wrong" in all_text(slack.responses()[-1])
    await slack.submit_view(opened["view"], {"answer": "B"})
    assert slack.app.services.failures.counts == {"RuntimeError in /hint": 1, "RuntimeError in /submit": 1}


async def test_a_follow_up_that_breaks_after_the_ack_is_counted(
        slack: Slack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow command answered through the response_url: its failing follow-up is counted, not lost."""
    await slack.command("stats")
    slack.adapter.ack_budget_s = 0.0
    real = slack.adapter.deliver

    async def deliver() -> None:
        await real()
        raise ConnectionError("outbox unreachable")

    monkeypatch.setattr(slack.adapter, "deliver", deliver)
    await slack.command("leaderboard")
    assert slack.app.services.failures.counts == {"ConnectionError in /leaderboard": 1}


async def test_the_app_home_failing_is_counted(slack: Slack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slack.app.store, "ensure_member", broken("disk I/O error"))
    assert await slack.event({"type": "app_home_opened", "user": BOB, "channel": "D0BOB", "tab": "home"}) == 200
    assert slack.app.services.failures.counts == {"RuntimeError in the App Home": 1}


async def test_what_a_listener_lets_out_to_bolt_is_counted(slack: Slack, monkeypatch: pytest.MonkeyPatch) -> None:
    async def uninstalled(*args: object, **kwargs: object) -> None:
        raise RuntimeError("store closed")

    monkeypatch.setattr(slack.adapter.installations, "async_delete_all", uninstalled)
    status = await slack.event({"type": "app_uninstalled"})
    assert status == 500  # Bolt answers the request with an error; Slack retries the event
    assert slack.app.services.failures.counts == {"RuntimeError in the Slack app_uninstalled": 1}


async def test_a_real_start_limits_each_members_commands(tmp_path: Path, api: FakeSlackApi,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """`python -m bot slack` builds the cooldown from ONSITE_COMMAND_BURST / ONSITE_COMMANDS_PER_MINUTE."""
    port, stop = free_port(), asyncio.Event()
    settings = run_settings(tmp_path)
    settings = dataclasses.replace(settings, command_burst=2, commands_per_minute=1)
    caplog.set_level(logging.INFO, logger="bot.adapters.slack_app")
    async with running(run_slack(settings, http_port=port, stop=stop, base_url=api.base_url), stop):
        url = f"http://127.0.0.1:{port}/slack/events"

        async def command(text: str) -> str:
            body = urlencode(command_form(text))
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                       "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)}
            async with aiohttp.ClientSession() as session:
                for _ in range(200):
                    try:
                        async with session.post(url, data=body, headers=headers) as resp:
                            assert resp.status == 200
                            return await resp.text()
                    except aiohttp.ClientConnectorError:
                        await asyncio.sleep(0.05)  # still starting
            raise AssertionError("the HTTP server never came up")

        assert "Slow down" not in await command("help")
        assert "Slow down" not in await command("stats")
        third = await command("stats")
        assert "Slow down: at most 2 commands in a row, then 1 a minute." in third and "Try again in 60 s" in third
    assert "unexpected errors since the start, per kind: none" in caplog.text  # the operator's summary at exit
