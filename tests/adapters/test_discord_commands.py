"""Slash commands, autocomplete, buttons and modals, driven through discord.py's own parsing and tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from bot.adapters.discord_app import PLATFORM, OnsiteClient
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.commands import Command, core_table
from bot.store.sqlite import Store
from tests.adapters import discord_payloads as dp
from tests.conftest import StandInGrader


@pytest.fixture
async def bot(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch)
    await dp.settle()


setup_channel = dp.setup_channel


# -- registration ------------------------------------------------------------------------------------


def test_every_core_command_is_a_slash_command_with_native_options() -> None:
    client = OnsiteClient()
    registered = {c.qualified_name for c in client.tree.walk_commands() if isinstance(c, discord.app_commands.Command)}
    expected = {c.name for c in core_table().for_platform(PLATFORM)}
    assert registered == expected
    payloads = {c.name: c.to_dict(client.tree) for c in client.tree.get_commands()}
    assert payloads["admin"]["default_member_permissions"] == dp.MANAGE_GUILD
    assert payloads["submit"]["default_member_permissions"] is None
    options = {o["name"]: o for o in payloads["submit"]["options"]}
    assert options["id"] == {**options["id"], "type": 3, "required": True, "autocomplete": True}
    assert options["file"]["type"] == 11 and "64.0 KB" in options["file"]["description"]
    assert {o["name"]: o["type"] for o in payloads["vote"]["options"]} == {"id": 3, "member": 6}
    leaderboard = {o["name"]: o for o in payloads["leaderboard"]["options"]}
    assert [c["value"] for c in leaderboard["period"]["choices"]] == ["week", "month", "all"]
    assert leaderboard["page"]["type"] == 4 and leaderboard["page"]["min_value"] == 1
    setup = next(o for o in payloads["admin"]["options"] if o["name"] == "setup")
    assert setup["type"] == 1 and {o["name"] for o in setup["options"]} == {"setting", "value"}
    assert all(p["dm_permission"] is False for p in payloads.values())


def test_console_only_commands_are_not_registered() -> None:
    extra = Command("admin clock", "console only", core_table().commands["help"].handler,
                    platforms=frozenset({"console"}))
    client = OnsiteClient(table=core_table().extended([extra]))
    assert "admin clock" not in {c.qualified_name for c in client.tree.walk_commands()}


# -- one test per command ----------------------------------------------------------------------------


def sample_options(command: Command) -> tuple[dict[str, Any], dict[str, int], dict[str, Any]]:
    """Plausible values for a command's required options (and how Discord types them)."""
    options: dict[str, Any] = {}
    types: dict[str, int] = {}
    resolved: dict[str, Any] = {}
    for arg in command.args:
        if not arg.required:
            continue
        if arg.kind == "member":
            options[arg.name] = str(dp.BOB)
            types[arg.name] = 6
            resolved = {"users": {str(dp.BOB): dp.user(dp.BOB, "bob")},
                        "members": {str(dp.BOB): {k: v for k, v in dp.member(dp.BOB, "bob").items() if k != "user"}}}
        elif arg.kind == "int":
            options[arg.name] = 1
        elif arg.choices:
            options[arg.name] = arg.choices[0]
        elif arg.kind == "question":
            options[arg.name] = "overfit-first-step"
        elif arg.kind == "file":
            continue
        else:
            options[arg.name] = "Europe/Berlin" if "zone" in arg.name else "B"
    return options, types, resolved


@pytest.mark.parametrize("command", core_table().for_platform(PLATFORM), ids=lambda c: c.name)
async def test_each_command_runs_through_the_tree(bot: dp.Bot, command: Command) -> None:
    await setup_channel(bot)
    bot.http.clear()
    options, types, resolved = sample_options(command)
    await bot.feed(dp.slash(command.name, options, types=types, resolved=resolved,
                            permissions=dp.MANAGE_GUILD if command.admin else 0))
    callbacks = bot.http.callbacks()
    assert len(callbacks) == 1, [c.path for c in bot.http.calls]
    assert callbacks[0].payload["type"] in (4, 5, 9)
    if callbacks[0].payload["type"] == 9:  # a modal asks for the rest (/submit with only an id)
        assert callbacks[0].payload["data"]["title"] and dp.custom_ids(callbacks[0].payload["data"])
        return
    shown = bot.http.replies()
    assert shown and all(dp.text_of(s) for s in shown)
    text = "\n".join(dp.text_of(s) for s in shown)
    assert "Something went wrong" not in text and "has no argument" not in text
    for s in shown:
        assert s.get("allowed_mentions") == {"parse": []} or "allowed_mentions" not in s


# -- specific commands -------------------------------------------------------------------------------


async def test_help_is_private_and_lists_grouped_commands(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("help"))
    (call,) = bot.http.callbacks()
    assert call.payload["type"] == 4 and call.payload["data"]["flags"] == 64
    text = dp.text_of(call.payload["data"])
    assert "/leaderboard" in text and "/settings timezone" in text and "/admin setup" not in text


async def test_admin_command_needs_manage_server_at_run_time(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("admin post-now", permissions=0))
    data = bot.http.replies()[-1]
    assert "Only community admins" in dp.text_of(data) and data["flags"] == 64
    assert not bot.http.channel_posts()


async def test_channel_setting_is_stored_as_the_channel_id_and_shown_as_a_link(bot: dp.Bot) -> None:
    await setup_channel(bot)
    community = await bot.community()
    assert community.channel == str(dp.CHANNEL_ID)
    text = dp.text_of(bot.http.replies()[-1])
    assert f"<#{dp.CHANNEL_ID}>" in text


async def test_channel_name_is_resolved_to_its_id(bot: dp.Bot) -> None:
    bot.add_guild(dp.guild())
    await bot.feed(dp.slash("admin setup", {"setting": "channel", "value": "#daily"}, permissions=dp.MANAGE_GUILD))
    assert (await bot.community()).channel == str(dp.CHANNEL_ID)


async def test_autocomplete_offers_question_ids(bot: dp.Bot) -> None:
    await bot.feed(dp.autocomplete("question", {"id": "pair"}, focused="id"))
    (call,) = bot.http.callbacks()
    assert call.payload["type"] == 8
    choices = call.payload["data"]["choices"]
    assert choices[0]["value"] == "pair-sum-count" and "pair-sum-count ·" in choices[0]["name"]


async def test_question_by_id_renders_an_embed_with_fenced_starter(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("question", {"id": "pair-sum-count"}))
    data = bot.http.replies()[-1]
    embed = data["embeds"][0]
    assert "```python" in embed["description"]
    assert any(f["name"] == "Id" and "pair-sum-count" in f["value"] for f in embed["fields"])


async def test_unknown_question_is_a_private_one_line_error(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("question", {"id": "no-such-question"}))
    data = bot.http.replies()[-1]
    assert data["flags"] == 64 and data["content"].startswith("⚠️") and not data.get("embeds")


async def test_stats_of_another_member_by_user_option(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("help", user_id=dp.BOB, username="bob"))  # bob is known to the community
    bot.http.clear()
    resolved = {"users": {str(dp.BOB): dp.user(dp.BOB, "bob")}}
    await bot.feed(dp.slash("stats", {"member": str(dp.BOB)}, types={"member": 6}, resolved=resolved))
    assert "Stats · bob" in dp.text_of(bot.http.replies()[-1])


async def test_settings_timezone_is_private(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("settings timezone", {"timezone": "Europe/Berlin"}))
    data = bot.http.replies()[-1]
    assert data["flags"] == 64 and "Europe/Berlin" in dp.text_of(data)


async def test_commands_outside_a_server_are_refused_politely(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("stats", guild_id=None))
    data = bot.http.replies()[-1]
    assert "inside a server" in data["content"] and data["flags"] == 64
    assert await bot.store.list_communities() == []


async def test_each_guild_is_its_own_community(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("stats"))
    await bot.feed(dp.slash("stats", guild_id=dp.OTHER_GUILD_ID))
    communities = await bot.store.list_communities()
    assert sorted(c.external_id for c in communities) == sorted([str(dp.GUILD_ID), str(dp.OTHER_GUILD_ID)])
    first, second = (await bot.community(dp.GUILD_ID)), (await bot.community(dp.OTHER_GUILD_ID))
    alice_first = await bot.store.find_member(first.id, str(dp.ALICE))
    assert alice_first is not None
    await bot.store.add_points(community_id=first.id, member_id=alice_first.id, points=50, reason="test",
                               now=bot.clock.now())
    bot.http.clear()
    await bot.feed(dp.slash("leaderboard", {"period": "all"}, guild_id=dp.OTHER_GUILD_ID))
    text = dp.text_of(bot.http.replies()[-1])
    assert "50 pts" not in text and "No points yet" in text
    assert second.id != first.id


async def test_display_names_are_stored_without_mentions_or_markdown(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("stats", username="x", nick="@everyone **boss** <@123456789012345678>"))
    community = await bot.community()
    alice = await bot.store.find_member(community.id, str(dp.ALICE))
    assert alice is not None
    assert "@everyone" not in alice.display_name and "<@1" not in alice.display_name
    assert "\\*\\*boss\\*\\*" in alice.display_name


# -- start-up ----------------------------------------------------------------------------------------


async def test_commands_sync_to_the_development_guild(bot: dp.Bot) -> None:
    bot.client.guild_id = dp.GUILD_ID
    await bot.client.setup_hook()
    (sync,) = bot.http.matching("PUT", rf"^/applications/{dp.APP_ID}/guilds/{dp.GUILD_ID}/commands$")
    names = {c["name"] for c in sync.payload}
    assert {"submit", "leaderboard", "admin", "settings"} <= names


async def test_commands_sync_globally_without_a_guild(bot: dp.Bot) -> None:
    await bot.client.setup_hook()
    assert bot.http.matching("PUT", rf"^/applications/{dp.APP_ID}/commands$")


async def test_run_discord_reports_a_bad_token(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from bot.adapters.discord_app import run_discord
    from bot.config import Secret, Settings

    async def refuse(self: OnsiteClient, token: str, *, reconnect: bool = True) -> None:
        assert token == "not-a-token"
        raise discord.LoginFailure("Improper token has been passed.")

    monkeypatch.setattr(OnsiteClient, "start", refuse)
    settings = Settings(database=tmp_path / "onsite.db", questions_dir=dp_bank(), discord_token=Secret("not-a-token"))
    assert await run_discord(settings) == 2
    assert "DISCORD_TOKEN" in caplog.text and "not-a-token" not in caplog.text


def dp_bank() -> Any:
    from tests.conftest import FIXTURE_BANK

    return FIXTURE_BANK
