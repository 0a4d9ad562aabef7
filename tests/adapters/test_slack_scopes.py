"""Scopes: the fake Web API checks each method's documented bot scopes against what the app was granted
(by default, the bot scopes of slack/manifest.yaml), answering Slack's own `missing_scope` shape.

A delivery the member asked for (a stats card) that Slack refuses tells the member why, in Slack,
instead of only a log line.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from slack_sdk.errors import SlackApiError

from bot.adapters.slack_app import BOT_SCOPES, SlackAdapter, SlackChat, make_client
from bot.app import build_app
from bot.config import Settings
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from tests.adapters.slack_fake_api import MANIFEST, SCOPES, FakeSlackApi, manifest_bot_scopes
from tests.adapters.test_slack_app import ADA, BOB, SECRET, Slack, all_text, set_channel
from tests.conftest import FIXTURE_BANK, StandInGrader

OLD_MANIFEST = manifest_bot_scopes() - {"files:write"}  # an app installed from the manifest before the fix


async def fake(scopes: frozenset[str] | None = None) -> FakeSlackApi:
    api = FakeSlackApi(scopes=scopes)
    await api.start()
    api.add_user(ADA, "Ada", admin=True)
    api.add_user(BOB, "Bob")
    return api


@pytest.fixture
async def driver(tmp_path: Path, request: pytest.FixtureRequest, bank: Bank, clock: FixedClock,
                 grader: StandInGrader) -> AsyncIterator[Slack]:
    api = await fake(getattr(request, "param", None))
    client = make_client("xoxb-test", base_url=api.base_url)
    chat = SlackChat(client)
    app = await build_app(Settings(database=tmp_path / "onsite.db", questions_dir=FIXTURE_BANK), clock=clock,
                          chat=chat, bank=bank, grader=grader)
    adapter = SlackAdapter(app, client, signing_secret=SECRET, chat=chat)
    try:
        yield Slack(adapter, api, app)
    finally:
        await adapter.drain()
        await app.close()
        await api.stop()
    assert not api.rejected, api.rejected


async def test_missing_scope_answers_in_slacks_shape() -> None:
    api = await fake(frozenset({"commands", "im:write"}))
    try:
        client = make_client("xoxb-test", base_url=api.base_url, max_retries=0)
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C0DAILY", text="hi")
        assert raised.value.response.data == {"ok": False, "error": "missing_scope", "needed": "chat:write",
                                              "provided": "commands,im:write"}
        assert raised.value.response.headers["x-accepted-oauth-scopes"] == "chat:write"
        assert (await client.conversations_open(users=ADA))["channel"]["id"].startswith("D")  # im:write
        with pytest.raises(SlackApiError) as raised:  # a group DM is mpim:write
            await client.conversations_open(users=f"{ADA},{BOB}")
        assert raised.value.response["needed"] == "mpim:write"
        assert (await client.views_open(trigger_id="t", view={  # views.* need no scope
            "type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []}))["ok"]
        with pytest.raises(SlackApiError) as raised:
            await make_client("", base_url=api.base_url, max_retries=0).auth_test()
        assert raised.value.response["error"] == "not_authed"
        with pytest.raises(SlackApiError) as raised:
            await client.api_call("chat.fly")
        assert raised.value.response["error"] == "unknown_method"
    finally:
        await api.stop()


def test_the_fake_knows_every_method_the_adapter_calls() -> None:
    source = (Path(__file__).resolve().parents[2] / "bot" / "adapters" / "slack_app.py").read_text()
    pattern = r"\.((?:chat|conversations|files|users|team|views|auth|apps|oauth)_\w+)\("
    called = {m.replace("_", ".") for m in re.findall(pattern, source)}
    if "files.upload.v2" in called:  # slack_sdk's upload: these two methods around a POST of the bytes
        called = (called - {"files.upload.v2"}) | {"files.getUploadURLExternal", "files.completeUploadExternal"}
    assert {"chat.postMessage", "users.info", "views.open"} <= called, called
    assert called <= set(SCOPES), called - set(SCOPES)


def test_the_manifest_grants_every_scope_the_adapter_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    assert granted == set(BOT_SCOPES)  # what the OAuth install asks for is the manifest
    for method in ("chat.postMessage", "chat.postEphemeral", "users.info", "team.info", "files.info",
                   "files.getUploadURLExternal", "files.completeUploadExternal"):
        assert set(SCOPES[method] or ()) & granted, method
    assert {"im:write", "mpim:write"} <= granted  # conversations.open of a DM and of a group DM


async def test_a_whole_session_never_meets_a_missing_scope(driver: Slack, bank: Bank) -> None:
    """Commands, a modal, the App Home, DMs, a group DM, a card upload and a file read, all allowed."""
    pytest.importorskip("matplotlib")
    await set_channel(driver)
    await driver.command("admin post-now")
    await driver.adapter.deliver()
    await driver.command("submit overfit-first-step B", user=BOB)
    await driver.command("card stats", user=BOB)
    await driver.command("submit pair-sum-count")
    driver.api.files["F0SOLUTION"] = (bank.get("pair-sum-count").reference or "").encode()
    assert "Accepted" in all_text(await driver.command("submit pair-sum-count --file F0SOLUTION"))
    await driver.event({"type": "app_home_opened", "user": BOB, "channel": "D0BOB", "tab": "home"})
    community = (await driver.app.store.list_communities())[0]
    ada = await driver.app.store.ensure_member(community.id, ADA, "Ada", now=driver.app.services.clock.now())
    bob = await driver.app.store.ensure_member(community.id, BOB, "Bob", now=driver.app.services.clock.now())
    await driver.adapter.chat.open_pair_space(community, [ada, bob], "Mock interview")
    await driver.adapter.drain()
    methods = set(driver.api.methods())
    assert {"files.getUploadURLExternal", "files.completeUploadExternal", "views.open", "views.publish",
            "conversations.open", "users.info", "team.info", "files.info", "chat.postMessage"} <= methods
    assert [r for r in driver.api.refusals if r[1] == "missing_scope"] == []


@pytest.mark.parametrize("driver", [OLD_MANIFEST], indirect=True)
async def test_a_card_slack_refuses_tells_the_member_why(driver: Slack) -> None:
    pytest.importorskip("matplotlib")
    await driver.command("submit overfit-first-step B", user=BOB)
    reply = await driver.command("card stats", user=BOB)
    assert "Stats card · Bob" in all_text(reply)
    await driver.adapter.drain()
    assert ("files.getUploadURLExternal", "missing_scope") in driver.api.refusals
    [told] = [r for r in driver.responses() if "could not send your card" in all_text(r)]
    assert told["response_type"] == "ephemeral" and told.get("replace_original") is False
    shown = all_text(told)
    assert "files:write" in shown and "reinstall" in shown.lower() and "could not" in shown.lower()
