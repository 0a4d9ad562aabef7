"""Authorisation and isolation on Slack, through Bolt's dispatch of signed requests and the fake Web API.

Who is an admin on Slack: workspace admins and owners as `users.info` reports them (`is_admin`,
`is_owner`, `is_primary_owner`), looked up per (workspace, user) and cached for `USER_TTL_S`.
There is no configured list. When `users.info` fails the caller is not an admin (fail closed) and
the failure is not cached, so the next request asks again.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from bot.adapters import slack_app
from bot.adapters.slack_app import PLATFORM
from bot.core.commands import Command, core_table
from tests.adapters import test_slack_app as slack_tests
from tests.adapters.slack_fake_api import FakeSlackApi
from tests.adapters.test_slack_app import ADA, BOB, Slack, all_text

api = slack_tests.api  # the fake Web API and the signed-request driver of the Slack tests (fixtures)
slack = slack_tests.slack

ADMIN_COMMANDS = [c for c in core_table().for_platform(PLATFORM) if c.admin]
OWNER, OTHER_TEAM = "U0OWN", "T0OTHER"


def state(slack: Slack) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but `members` (callers are created on first sight)."""
    con = sqlite3.connect(slack.app.store.path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if r[0] != "members"]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def line_for(command: Command) -> str:
    words = [command.name]
    for arg in command.args:
        if arg.flag:
            continue
        words.append(("time" if "time" in arg.choices else arg.choices[0]) if arg.choices else
                     "1" if arg.kind == "int" else "07:00")
    return " ".join(words)


async def settings_of(slack: Slack) -> tuple[Any, ...]:
    community = (await slack.app.store.list_communities())[0]
    return community.channel, community.post_time, community.timezone, community.tracks


def test_the_table_has_admin_commands() -> None:
    assert {"admin setup", "admin post-now", "admin pair-now"} <= {c.name for c in ADMIN_COMMANDS}


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: c.name)
async def test_admin_command_by_a_member_is_refused_and_changes_nothing(slack: Slack, command: Command) -> None:
    await slack.command("admin setup channel <#C0DAILY|daily>")  # Ada, a workspace admin
    before = state(slack)
    for text in (line_for(command), command.name):
        reply = await slack.command(text, user=BOB)
        assert reply["response_type"] == "ephemeral"
        assert f"Only community admins can use /onsite {command.name}." in all_text(reply), reply
    assert state(slack) == before
    assert not slack.posts()
    reply = await slack.command(line_for(command))  # Ada: not refused
    assert "Only community admins" not in all_text(reply)


async def test_a_workspace_owner_is_an_admin(slack: Slack, api: FakeSlackApi) -> None:
    api.add_user(OWNER, "Olga", owner=True)
    reply = await slack.command("admin setup time 06:30", user=OWNER)
    assert "Updated time" in all_text(reply)
    assert (await settings_of(slack))[1] == "06:30"


async def test_an_admin_button_clicked_by_a_member_is_refused(slack: Slack) -> None:
    await slack.command("admin setup channel <#C0DAILY|daily>")
    before = state(slack)
    for verb, value in (("admin.setup", "time 05:00"), ("admin.post-now", ""), ("admin.pair-now", "")):
        button = {"action_id": f"onsite:{verb}:0", "value": value, "text": {"type": "plain_text", "text": "x"}}
        assert await slack.click(button, block_id="b1", user=BOB) == 200
        shown = all_text(slack.responses()[-1])
        assert "Only community admins" in shown, shown
    assert state(slack) == before


async def test_a_demoted_admin_is_refused_once_the_cache_expires(slack: Slack, api: FakeSlackApi,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert "Updated time" in all_text(await slack.command("admin setup time 07:00"))
    api.users[ADA]["is_admin"] = False
    monkeypatch.setattr(slack_app, "USER_TTL_S", 0.0)
    reply = await slack.command("admin setup time 05:00")
    assert "Only community admins" in all_text(reply)
    assert (await settings_of(slack))[1] == "07:00"


async def test_when_users_info_fails_nobody_is_an_admin(slack: Slack, api: FakeSlackApi,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: a cached admin whose lookup now fails is not kept as an admin."""
    assert "Updated time" in all_text(await slack.command("admin setup time 07:00"))
    monkeypatch.setattr(slack_app, "USER_TTL_S", 0.0)
    api.fail("users.info", "ratelimited")
    reply = await slack.command("admin setup time 05:00")
    assert "Only community admins" in all_text(reply)
    assert (await settings_of(slack))[1] == "07:00"
    # the failure is not remembered: the next request asks again and Ada is an admin again
    assert "Updated time" in all_text(await slack.command("admin setup time 08:00"))


async def test_a_first_request_whose_lookup_fails_is_not_an_admin(slack: Slack, api: FakeSlackApi) -> None:
    api.fail("users.info", "internal_error")
    reply = await slack.command("admin setup time 05:00")
    assert "Only community admins" in all_text(reply)
    assert (await settings_of(slack))[1] == "09:00"


# -- isolation between workspaces ---------------------------------------------------------------------


async def test_another_workspace_sees_nothing_of_this_one(slack: Slack) -> None:
    """The same Slack user id in two workspaces (Enterprise Grid) is two members with separate data."""
    await slack.command("story add failure BSECRETSTORY launch | s | t | a | r", user=BOB)
    await slack.command("mock join coding senior UTC weekdays 18-21", user=BOB)
    await slack.command("submit overfit-first-step B", user=BOB)
    before = state(slack)
    community_ids = {c.id for c in await slack.app.store.list_communities()}
    for text in ("story list", "story remove 1", "story edit 1 result HACKED", "mock status", "mock leave",
                 f"stats <@{BOB}|bob>", f"mock avoid <@{BOB}|bob>", f"card stats <@{BOB}|bob>", "leaderboard all",
                 "stats", "story gaps"):
        reply = await slack.command(text, user=BOB, team=OTHER_TEAM)
        shown = all_text(reply)
        assert "BSECRETSTORY" not in shown and "in the mock interview rotation" not in shown, (text, shown)
        if text.split()[0] in ("stats", "card"):  # Bob's own, empty record in the other workspace
            assert "0 points" in shown or "No submissions yet" in shown, (text, shown)
    after = state(slack)
    # the other workspace's own rows appeared; nothing of the first one changed
    first = min(community_ids)
    for table, rows in before.items():
        assert [r for r in after[table] if r in rows] == rows, table
    assert len(await slack.app.store.list_communities()) == 2
    own = (await slack.app.store.list_communities())[0]
    assert own.id == first
    # and in the first workspace Bob still has his story
    assert "BSECRETSTORY" in all_text(await slack.command("story list", user=BOB))
