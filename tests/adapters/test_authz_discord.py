"""Authorisation and isolation on Discord, through discord.py's own interaction parsing.

`default_member_permissions` only hides admin commands in the client: a member without Manage
Server can still send the interaction (an old client, a raw API call, an owner's override), so the
bot itself must refuse it. Buttons in DMs name their server in the custom id (`onsite@<guild>:...`);
a DM carries no server permissions and no proof of membership beyond the user id, so the member is
looked up by exact platform id and never gets admin rights there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.adapters.discord_app import PLATFORM
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.commands import Command, core_table
from bot.store.sqlite import Store
from tests.adapters import discord_payloads as dp
from tests.conftest import StandInGrader

ADMIN_COMMANDS = [c for c in core_table().for_platform(PLATFORM) if c.admin]
MALLORY = 500000000000000009
OTHER_CHANNEL = 700000000000000002


@pytest.fixture
async def bot(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch)
    await dp.settle()


def state(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but `members` (a caller is created on first sight; that is not a change of settings)."""
    con = sqlite3.connect(store.path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if r[0] != "members"]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def options_for(command: Command) -> dict[str, Any]:
    """Valid options: the first choice, a time for free text (`admin setup time 07:00`)."""
    out: dict[str, Any] = {}
    for arg in command.args:
        if arg.choices:
            out[arg.name] = "time" if "time" in arg.choices else arg.choices[0]
        elif arg.kind == "int":
            out[arg.name] = 1
        elif arg.kind not in ("member", "file"):
            out[arg.name] = "07:00"
    return out


def test_admin_commands_are_hidden_by_default_permissions_only() -> None:
    assert ADMIN_COMMANDS, "the table has admin commands"


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("permissions", [0, dp.ALL_PERMISSIONS & ~dp.MANAGE_GUILD & ~8], ids=["none", "all-but-manage"])
async def test_admin_command_without_manage_server_is_refused_and_changes_nothing(
    bot: dp.Bot, command: Command, permissions: int
) -> None:
    await dp.setup_channel(bot)  # by an admin: the community exists with a channel
    before = state(bot.store)
    bot.http.clear()
    await bot.feed(dp.slash(command.name, options_for(command), user_id=dp.BOB, username="bob",
                            permissions=permissions))
    shown = bot.http.replies()
    assert shown, [c.path for c in bot.http.calls]
    assert f"Only community admins can use /{command.name}." in dp.text_of(shown[-1])
    assert shown[-1]["flags"] == 64  # privately
    assert not bot.http.channel_posts() and not bot.http.matching("POST", r"/threads$")
    assert state(bot.store) == before
    # with Manage Server the same interaction is not refused (the refusal above is the permission check)
    bot.http.clear()
    await bot.feed(dp.slash(command.name, options_for(command), user_id=dp.BOB, username="bob",
                            permissions=dp.MANAGE_GUILD))
    assert "Only community admins" not in "\n".join(dp.text_of(s) for s in bot.http.replies())


async def test_a_revoked_admin_is_refused_at_once(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("admin setup", {"setting": "time", "value": "07:00"}, permissions=dp.MANAGE_GUILD))
    assert (await bot.community()).post_time == "07:00"
    bot.http.clear()
    await bot.feed(dp.slash("admin setup", {"setting": "time", "value": "05:00"}, permissions=0))
    assert "Only community admins" in dp.text_of(bot.http.replies()[-1])
    assert (await bot.community()).post_time == "07:00"
    member = await bot.store.find_member((await bot.community()).id, str(dp.ALICE))
    assert member is not None and not member.is_admin  # the stored flag follows the platform


async def test_admin_buttons_in_a_dm_are_refused_even_for_an_admin(bot: dp.Bot) -> None:
    """A DM proves nothing about Manage Server now: the stored flag may be stale, so no admin there."""
    await bot.feed(dp.slash("admin setup", {"setting": "time", "value": "07:00"}, permissions=dp.MANAGE_GUILD))
    member = await bot.store.find_member((await bot.community()).id, str(dp.ALICE))
    assert member is not None and member.is_admin
    dm = dp.message_json(dp.snowflake(), dp.DM_CHANNEL_BASE + 1, {"content": "x"}, guild_id=None)
    before = state(bot.store)
    for custom_id in (f"onsite@{dp.GUILD_ID}:admin setup:time 05:00", f"onsite@{dp.GUILD_ID}:admin post-now:",
                      f"onsite@{dp.GUILD_ID}:admin pair-now:"):
        bot.http.clear()
        await bot.feed(dp.click(custom_id, dm, guild_id=None))
        assert "Only community admins" in dp.text_of(bot.http.replies()[-1]), custom_id
    assert state(bot.store) == before
    assert not bot.http.channel_posts()


# -- isolation ---------------------------------------------------------------------------------------


async def test_a_dm_button_naming_a_server_the_user_is_not_in_is_refused(bot: dp.Bot) -> None:
    """Mallory is not in the server; a member there calls themselves by Mallory's user id."""
    other = dp.guild(dp.OTHER_GUILD_ID, name="Other", channels=[dp.text_channel(OTHER_CHANNEL, "daily", dp.OTHER_GUILD_ID)])
    bot.add_guild(other)
    nick = str(MALLORY)  # a nickname is free text: digits are allowed
    await bot.feed(dp.slash("story add", {"theme": "failure", "text": "BSECRETSTORY | s | t | a | r"},
                            user_id=dp.CAROL, username="carol", nick=nick, guild_id=dp.OTHER_GUILD_ID))
    await bot.feed(dp.slash("mock join", {}, user_id=dp.CAROL, username="carol", nick=nick, guild_id=dp.OTHER_GUILD_ID))
    community = await bot.community(dp.OTHER_GUILD_ID)
    carol = await bot.store.find_member(community.id, str(dp.CAROL))
    assert carol is not None and carol.display_name == nick
    before = state(bot.store)
    dm = dp.message_json(dp.snowflake(), dp.DM_CHANNEL_BASE + 9, {"content": "x"}, guild_id=None)
    for custom_id in (f"onsite@{dp.OTHER_GUILD_ID}:story list:", f"onsite@{dp.OTHER_GUILD_ID}:story remove:1",
                      f"onsite@{dp.OTHER_GUILD_ID}:mock leave:", f"onsite@{dp.OTHER_GUILD_ID}:stats:"):
        bot.http.clear()
        await bot.feed(dp.click(custom_id, dm, user_id=MALLORY, username="mallory", guild_id=None))
        text = "\n".join(dp.text_of(r) for r in bot.http.replies())
        assert "BSECRETSTORY" not in text and "Stats" not in text, (custom_id, text)
        assert "works inside a server" in text, (custom_id, text)
    bot.http.clear()
    await bot.feed(dp.modal_submit(f"onsite-form@{dp.OTHER_GUILD_ID}:story:failure", {"text": "MALLORY WAS HERE",
                                   "situation": "s"}, user_id=MALLORY, username="mallory", guild_id=None))
    assert "works inside a server" in dp.text_of(bot.http.replies()[-1])
    assert state(bot.store) == before


async def test_users_of_another_server_are_nobody_here(bot: dp.Bot) -> None:
    """A member option resolved to a user of another server finds nobody in this one."""
    other = dp.guild(dp.OTHER_GUILD_ID, name="Other", channels=[dp.text_channel(OTHER_CHANNEL, "daily", dp.OTHER_GUILD_ID)])
    bot.add_guild(other)
    await bot.feed(dp.slash("story add", {"theme": "failure", "text": "BSECRETSTORY | s | t | a | r"},
                            user_id=dp.CAROL, username="zephyrine", guild_id=dp.OTHER_GUILD_ID))
    await bot.feed(dp.slash("mock join", {}, user_id=dp.CAROL, username="zephyrine", guild_id=dp.OTHER_GUILD_ID))
    await bot.feed(dp.slash("stats", {}, user_id=dp.ALICE, username="alice"))  # Alice is in this server
    before = state(bot.store)
    resolved = {"users": {str(dp.CAROL): dp.user(dp.CAROL, "zephyrine")}}
    for name, options in (("stats", {"member": str(dp.CAROL)}), ("mock avoid", {"member": str(dp.CAROL)}),
                          ("vote", {"id": "feed-ranking-lite", "member": str(dp.CAROL)}),
                          ("mock feedback", {"member": str(dp.CAROL), "scores": "1 1 1 1"}),
                          ("card stats", {"member": str(dp.CAROL)}), ("story list", {}), ("leaderboard", {"period": "all"})):
        bot.http.clear()
        await bot.feed(dp.slash(name, options, types={"member": 6}, resolved=resolved))
        text = "\n".join(dp.text_of(r) for r in bot.http.replies())
        assert "BSECRETSTORY" not in text and "Stats · zephyrine" not in text, (name, text)
    assert state(bot.store) == before


async def test_the_channel_of_another_server_is_never_posted_to(bot: dp.Bot) -> None:
    """An admin of A who sets B's channel id as A's channel cannot make the bot post into B."""
    other = dp.guild(dp.OTHER_GUILD_ID, name="Other", channels=[dp.text_channel(OTHER_CHANNEL, "daily", dp.OTHER_GUILD_ID)])
    bot.add_guild(other)
    bot.http.guild_of_channel[OTHER_CHANNEL] = dp.OTHER_GUILD_ID
    await bot.feed(dp.slash("admin setup", {"setting": "channel", "value": f"<#{OTHER_CHANNEL}>"}, permissions=dp.MANAGE_GUILD))
    bot.http.clear()
    await bot.feed(dp.slash("admin post-now", permissions=dp.MANAGE_GUILD))
    assert not bot.http.channel_posts(OTHER_CHANNEL)
    rows = await bot.store.outbox_rows((await bot.community()).id)
    assert rows and all(r.sent_at is None for r in rows if r.purpose == "post")
    assert any("not a text channel of this server" in (r.last_error or "") for r in rows)


