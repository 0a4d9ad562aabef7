"""Start-up on Discord: command sync (issue 17, item 8) and the discord.py the code needs (item 10).

Discord limits command registration (200 creates a day per application; PUT is rate limited), so
a restart syncs only when the command table changed since the sync this database recorded, or on
`python -m bot discord --sync`; a failed sync (5xx, 429) is logged, the bot runs on the commands
Discord already has, and the next start tries again.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any

import discord
import pytest

from bot.adapters.discord_app import OnsiteClient
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.store.sqlite import Store
from tests.adapters import discord_payloads as dp
from tests.conftest import REPO, StandInGrader

GLOBAL_SYNC = rf"^/applications/{dp.APP_ID}/commands$"
GUILD_SYNC = rf"^/applications/{dp.APP_ID}/guilds/{dp.GUILD_ID}/commands$"


@pytest.fixture
async def bot(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch)
    await dp.settle()


@pytest.fixture
async def wire(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch, transport=True)
    await dp.settle()


def syncs(bot: dp.Bot, pattern: str = GLOBAL_SYNC) -> int:
    return len([c for c in bot.http.matching("PUT", pattern) if c.failed is None])


# -- item 8: sync only what changed ------------------------------------------------------------------


async def test_a_restart_with_the_same_commands_does_not_sync_again(bot: dp.Bot) -> None:
    await bot.client.setup_hook()
    assert syncs(bot) == 1
    await bot.client.setup_hook()  # the next start, same table, same database
    assert syncs(bot) == 1


async def test_a_changed_command_table_is_synced(bot: dp.Bot) -> None:
    await bot.client.setup_hook()
    command = bot.client.tree.get_command("help")
    assert isinstance(command, discord.app_commands.Command)
    command.description = "List the commands (changed)."
    await bot.client.setup_hook()
    assert syncs(bot) == 2


async def test_the_guild_and_the_global_syncs_are_recorded_apart(bot: dp.Bot) -> None:
    await bot.client.setup_hook()
    bot.client.guild_id = dp.GUILD_ID
    await bot.client.setup_hook()
    await bot.client.setup_hook()
    assert syncs(bot) == 1 and syncs(bot, GUILD_SYNC) == 1


async def test_sync_flag_syncs_although_nothing_changed(bot: dp.Bot) -> None:
    await bot.client.setup_hook()
    bot.client.force_sync = True
    await bot.client.setup_hook()
    assert syncs(bot) == 2


async def test_a_failed_sync_is_logged_not_fatal_and_tried_at_the_next_start(
        bot: dp.Bot, caplog: pytest.LogCaptureFixture) -> None:
    bot.http.fail_once("PUT", GLOBAL_SYNC, dp.server_error())
    with caplog.at_level(logging.ERROR, logger="bot.adapters.discord_app"):
        await bot.client.setup_hook()  # does not raise: the bot runs on the commands Discord has
    assert "could not sync" in caplog.text and syncs(bot) == 0
    await bot.client.setup_hook()
    assert syncs(bot) == 1


async def test_a_rate_limited_sync_through_discord_py_is_not_fatal(wire: dp.Bot,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    assert wire.transport is not None
    wire.transport.respond_once("PUT", GLOBAL_SYNC, dp.rate_limited(3600.0))
    with caplog.at_level(logging.ERROR, logger="bot.adapters.discord_app"):
        await wire.client.setup_hook()
    assert "could not sync" in caplog.text and "3600" in caplog.text
    await wire.client.setup_hook()
    assert ("PUT", f"/applications/{dp.APP_ID}/commands") in wire.transport.requests[1:]


def test_python_m_bot_discord_takes_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import __main__ as cli
    from bot.adapters import discord_app

    seen: dict[str, Any] = {}

    async def run(settings: Any, *, sync: bool = False) -> int:
        seen["sync"] = sync
        return 0

    monkeypatch.setenv("DISCORD_TOKEN", "not-a-token")
    monkeypatch.setattr(discord_app, "run_discord", run)
    monkeypatch.setattr("bot.app.refuse_weak_judge", lambda settings: None)
    assert cli.main(["discord", "--sync"]) == 0 and seen == {"sync": True}
    assert cli.main(["discord"]) == 0 and seen == {"sync": False}


async def test_run_discord_passes_sync_to_the_client(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.adapters.discord_app import run_discord
    from bot.config import Secret, Settings
    from tests.conftest import FIXTURE_BANK

    forced: list[bool] = []

    async def start(self: OnsiteClient, token: str, *, reconnect: bool = True) -> None:
        forced.append(self.force_sync)

    monkeypatch.setattr(OnsiteClient, "start", start)
    settings = Settings(database=tmp_path / "onsite.db", questions_dir=FIXTURE_BANK, discord_token=Secret("t"))
    assert await run_discord(settings, sync=True) == 0
    assert await run_discord(settings) == 0
    assert forced == [True, False]


# -- item 10: the discord.py the code needs ----------------------------------------------------------

# Every discord.py API the adapter relies on that is younger than 2.0, the version that brought it,
# and how the installed package confirms it: its own `.. versionadded::`, or the capability itself.
# (The floor was found by running these tests against the 2.6.0 and 2.7.0 wheels with PYTHONPATH:
# 2.6.0 refuses a TextDisplay in a Modal, "v2 items cannot be added to this view", as its Modal was
# still a View; 2.7.0 passes. discord.py sets `enforce_nonce` itself when a nonce is given in both.)
def _text_display_in_a_modal() -> None:
    modal = discord.ui.Modal(title="t", custom_id="c", timeout=None)
    modal.add_item(discord.ui.TextDisplay("a note"))


APIS_USED: dict[str, tuple[tuple[int, int], Any]] = {
    "discord.ui.Label (labelled modal inputs with a description)": ((2, 6), (discord.ui.Label, None)),
    "discord.ui.TextDisplay": ((2, 6), (discord.ui.TextDisplay, None)),
    "a TextDisplay inside a discord.ui.Modal (a form's note)": ((2, 7), _text_display_in_a_modal),
    "Message.interaction_metadata (who opened a leaderboard page)": ((2, 4), (discord.Message, "interaction_metadata")),
    "discord.RateLimited": ((2, 0), (discord.RateLimited, None)),
    "Client(max_ratelimit_timeout=...)": ((2, 0), (discord.Client, "max_ratelimit_timeout")),
}


def version_added(obj: Any, param: str | None) -> tuple[int, ...]:
    """The `.. versionadded::` of an object, or of one of its documented parameters or attributes."""
    doc = obj.__doc__ or ""
    if param is not None:
        member = getattr(obj, param, None)
        if isinstance(member, property) and member.__doc__ and "versionadded" in member.__doc__:
            doc = member.__doc__
        else:
            start = re.search(rf"^\s*{re.escape(param)}\s*:", doc, re.MULTILINE)
            assert start, f"{param} is not documented on {obj}"
            following = re.search(r"^\s*\w+\s*:\s*(:class:|Optional|Union|List|Sequence|\S+)",
                                  doc[start.end():], re.MULTILINE)
            doc = doc[start.end(): start.end() + following.start()] if following else doc[start.end():]
    found = re.search(r"versionadded::\s*(\d+)\.(\d+)", doc)
    assert found, f"no versionadded for {obj}.{param}"
    return int(found.group(1)), int(found.group(2))


def floor_in_pyproject() -> tuple[int, ...]:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in dependencies if d.lower().startswith("discord.py")]
    found = re.search(r">=\s*(\d+)\.(\d+)", spec)
    assert found, spec
    return int(found.group(1)), int(found.group(2))


@pytest.mark.parametrize("name", APIS_USED)
def test_each_api_used_is_where_its_version_says(name: str) -> None:
    version, check = APIS_USED[name]
    if callable(check):
        check()  # the installed discord.py can do it
    else:
        assert version_added(*check) == version


def test_pyprojects_discord_py_floor_is_the_newest_api_the_code_uses() -> None:
    assert floor_in_pyproject() == max(version for version, _ in APIS_USED.values())


def test_the_installed_discord_py_satisfies_the_floor() -> None:
    installed = tuple(int(p) for p in re.findall(r"\d+", metadata.version("discord.py"))[:2])
    assert installed >= floor_in_pyproject()


def test_the_adapter_uses_the_apis_listed() -> None:
    source = (REPO / "bot" / "adapters" / "discord_app.py").read_text()
    for needle in ("ui.Label(", "ui.TextDisplay(", "interaction_metadata", "RateLimited", "max_ratelimit_timeout"):
        assert needle in source, f"{needle}: the list above is out of date"
