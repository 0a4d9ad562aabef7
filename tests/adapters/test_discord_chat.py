"""The Chat port on Discord: posts, DMs, pair spaces, delivery errors, and rendering within Discord's limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import discord
import pytest

from bot.adapters import discord_app
from bot.adapters.discord_app import DiscordChat, neutralise, render
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.messages import Button, Field, Message
from bot.core.models import Community, Member
from bot.core.ports import DeliveryError
from bot.store.sqlite import Store
from tests.adapters import discord_payloads as dp
from tests.conftest import StandInGrader

SEND_MESSAGES = 1 << 11
CREATE_PRIVATE_THREADS = 1 << 36


@pytest.fixture
async def bot(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch)
    await dp.settle()


async def community(bot: dp.Bot, *, channel: str | None = str(dp.CHANNEL_ID)) -> Community:
    found = await bot.store.ensure_community("discord", str(dp.GUILD_ID), "ML Interview Prep", now=bot.clock.now(),
                                             channel=channel)
    if channel and found.channel != channel:
        found = await bot.store.update_community(found.id, channel=channel)
    return found


async def members(bot: dp.Bot, c: Community) -> list[Member]:
    return [await bot.store.ensure_member(c.id, str(uid), name, now=bot.clock.now())
            for uid, name in ((dp.ALICE, "alice"), (dp.BOB, "bob"))]


def chat(bot: dp.Bot) -> DiscordChat:
    assert isinstance(bot.services.outbox.chat, DiscordChat)
    return bot.services.outbox.chat


# -- posting and its errors --------------------------------------------------------------------------


async def test_missing_permission_is_permanent_and_names_it(bot: dp.Bot) -> None:
    bot.add_guild(dp.guild(channels=[dp.text_channel(dp.CHANNEL_ID, "daily", deny_everyone=SEND_MESSAGES)]))
    c = await community(bot)
    with pytest.raises(DeliveryError) as caught:
        await chat(bot).post(c, c.channel or "", Message(title="hello"))
    assert caught.value.permanent and str(caught.value) == "missing permission Send Messages in #daily"
    assert not bot.http.channel_posts()


async def test_failed_post_tells_the_admins_which_permission_to_fix(bot: dp.Bot) -> None:
    bot.add_guild(dp.guild(channels=[dp.text_channel(dp.CHANNEL_ID, "daily", deny_everyone=SEND_MESSAGES)]))
    await dp.setup_channel(bot)
    bot.http.clear()
    await bot.feed(dp.slash("admin post-now", permissions=dp.MANAGE_GUILD))
    assert not bot.http.channel_posts()
    rows = await bot.store.outbox_rows((await bot.community()).id)
    failed = [r for r in rows if r.purpose == "post"]
    assert failed and all("missing permission Send Messages in #daily" in (r.last_error or "") for r in failed)
    await bot.services.outbox.deliver()  # the alerts were queued during that delivery; the next one sends them
    dms = bot.http.matching("POST", rf"^/channels/{dp.DM_CHANNEL_BASE + dp.ALICE % 1000}/messages$")
    assert dms and "missing permission Send Messages in #daily" in dp.text_of(dms[0].payload)


async def test_forbidden_from_discord_is_permanent(bot: dp.Bot) -> None:
    c = await community(bot)
    bot.http.fail_once("POST", r"^/channels/\d+/messages$", dp.forbidden())
    with pytest.raises(DeliveryError) as caught:
        await chat(bot).post(c, c.channel or "", Message(title="hello"))
    assert caught.value.permanent and "missing permission" in str(caught.value)


async def test_unknown_channel_is_permanent(bot: dp.Bot) -> None:
    c = await community(bot)
    bot.http.fail_once("GET", r"^/channels/\d+$", discord.NotFound(dp.FakeResponse(404), {"code": 10003,  # type: ignore[arg-type]
                                                                                         "message": "Unknown Channel"}))
    with pytest.raises(DeliveryError) as caught:
        await chat(bot).post(c, c.channel or "", Message(title="hello"))
    assert caught.value.permanent and "unknown channel" in str(caught.value)


async def test_a_channel_of_another_server_is_refused(bot: dp.Bot) -> None:
    other = 700000000000000099
    bot.http.guild_of_channel[other] = dp.OTHER_GUILD_ID
    c = await community(bot, channel=str(other))
    with pytest.raises(DeliveryError) as caught:
        await chat(bot).post(c, str(other), Message(title="hello"))
    assert caught.value.permanent and "not a text channel of this server" in str(caught.value)
    assert not bot.http.channel_posts(other)


async def test_transient_failure_is_retried_once_without_a_duplicate(bot: dp.Bot) -> None:
    await dp.setup_channel(bot)
    bot.http.clear()
    bot.http.fail_once("POST", rf"^/channels/{dp.CHANNEL_ID}/messages$", dp.server_error())
    await bot.feed(dp.slash("admin post-now", permissions=dp.MANAGE_GUILD))
    attempts = bot.http.channel_posts()
    assert len(attempts) == 5  # the first one failed with a 503, the others went out
    rows = await bot.store.outbox_rows((await bot.community()).id)
    (failed,) = [r for r in rows if r.sent_at is None]
    assert failed.attempts == 1 and "unavailable" in (failed.last_error or "")
    assert (await bot.store.admins(failed.community_id)) and not bot.http.matching("POST", r"^/users/@me/channels$")
    bot.clock.advance(timedelta(minutes=5))  # past the backoff
    await bot.services.tick()
    retried = bot.http.channel_posts()[5:]
    assert len(retried) == 1 and retried[0].payload == attempts[0].payload  # same nonce: Discord drops a duplicate
    await bot.services.tick()
    assert len(bot.http.channel_posts()) == 6
    assert all(r.sent_at for r in await bot.store.outbox_rows(failed.community_id) if r.purpose == "post")


async def test_dm_refused_by_the_member_is_permanent(bot: dp.Bot) -> None:
    c = await community(bot)
    alice, _ = await members(bot, c)
    bot.http.fail_once("POST", r"^/channels/\d+/messages$", dp.forbidden(50007, "Cannot send messages to this user"))
    with pytest.raises(DeliveryError) as caught:
        await chat(bot).send_dm(alice, Message(body="reminder"))
    assert caught.value.permanent and "does not accept direct messages" in str(caught.value)


async def test_a_retried_dm_carries_the_same_nonce_so_discord_drops_the_duplicate(bot: dp.Bot) -> None:
    c = await community(bot)
    alice, _ = await members(bot, c)
    for key in ("regrade:7", "regrade:7", "regrade:8"):  # a retry after a timeout, then another message
        await chat(bot).send_dm(alice, Message(body="Accepted"), key=key)
    sent = bot.http.matching("POST", r"^/channels/\d+/messages$")
    nonces = [call.payload["nonce"] for call in sent]
    assert all(call.payload["enforce_nonce"] is True for call in sent)
    assert nonces[0] == nonces[1] != nonces[2]


async def test_dm_buttons_name_their_server_and_work_from_the_dm(bot: dp.Bot) -> None:
    c = await community(bot)
    alice, _ = await members(bot, c)
    await chat(bot).send_dm(alice, Message(title="Your mock is at 18:00", buttons=(Button("Hint", "hint", "pair-sum-count"),)))
    (opened,) = bot.http.matching("POST", r"^/users/@me/channels$")
    assert opened.payload == {"recipient_id": dp.ALICE}
    (sent,) = bot.http.matching("POST", r"^/channels/\d+/messages$")
    assert dp.custom_ids(sent.payload) == [f"onsite@{dp.GUILD_ID}:hint:pair-sum-count"]
    assert sent.payload["allowed_mentions"] == {"parse": []}
    bot.http.clear()
    dm_message = dp.message_json(dp.snowflake(), dp.DM_CHANNEL_BASE, sent.payload, guild_id=None)
    await bot.feed(dp.click(dp.custom_ids(sent.payload)[0], dm_message, guild_id=None))
    (call,) = bot.http.callbacks()
    assert call.payload["type"] == 4 and "Hint 1 of" in dp.text_of(call.payload["data"])


# -- pair spaces (a pairing round's delivery) ---------------------------------------------------------


async def test_pair_space_is_a_private_thread_with_both_members(bot: dp.Bot) -> None:
    bot.add_guild(dp.guild())
    c = await community(bot)
    pair = await members(bot, c)
    ref = await chat(bot).open_pair_space(c, pair, "Mock interview · alice & bob")
    (created,) = bot.http.matching("POST", rf"^/channels/{dp.CHANNEL_ID}/threads$")
    assert created.payload["type"] == 12 and created.payload["invitable"] is False
    thread_id = ref.removeprefix("thread:")
    added = {c.path.rsplit("/", 1)[1] for c in bot.http.matching("PUT", rf"^/channels/{thread_id}/thread-members/")}
    assert added == {str(dp.ALICE), str(dp.BOB)}
    (hello,) = bot.http.channel_posts(int(thread_id))
    assert f"<@{dp.ALICE}>" in hello.payload["content"]
    assert hello.payload["allowed_mentions"]["parse"] == []
    assert sorted(hello.payload["allowed_mentions"]["users"]) == sorted([dp.ALICE, dp.BOB])


async def test_pair_space_falls_back_to_dms_without_the_permission(bot: dp.Bot) -> None:
    bot.add_guild(dp.guild(channels=[dp.text_channel(dp.CHANNEL_ID, "daily", deny_everyone=CREATE_PRIVATE_THREADS)]))
    c = await community(bot)
    pair = await members(bot, c)
    ref = await chat(bot).open_pair_space(c, pair, "Mock interview · alice & bob")
    assert ref == f"dm:{dp.ALICE},{dp.BOB}" and not bot.http.matching("POST", r"/threads$")
    await chat(bot).post(c, ref, Message(title="Mock interview · alice & bob", body="Say hi.",
                                         buttons=(Button("We met", "mock checkin", "met"),)), key="space:1:1")
    await dp.settle()  # one outbox row per member, delivered at once
    assert len(bot.http.matching("POST", r"^/users/@me/channels$")) == 2
    sent = bot.http.matching("POST", r"^/channels/\d+/messages$")
    assert len(sent) == 2 and all("Say hi." in dp.text_of(s.payload) for s in sent)
    assert all(dp.custom_ids(s.payload) == [f"onsite@{dp.GUILD_ID}:mock checkin:met"] for s in sent)


# -- rendering ---------------------------------------------------------------------------------------


def payload_of(message: Message) -> dict[str, object]:
    rendered = render(message)
    return {"content": rendered.content, "embeds": [e.to_dict() for e in rendered.embeds],
            "files": [f.filename for f in rendered.files]}


def test_mentions_are_neutralised_and_channel_ids_become_links() -> None:
    text = neutralise(f"@everyone @here <@123456789012345678> <@&123456789012345678> in #{dp.CHANNEL_ID}")
    assert "@everyone" not in text and "@here" not in text
    assert "<@1" not in text and "<@&" not in text
    assert f"<#{dp.CHANNEL_ID}>" in text


def test_code_fences_inside_code_cannot_close_the_block() -> None:
    embed = render(Message(title="t", code="x = 1\n```\n@everyone\n```")).embeds[0]
    description = embed.description or ""
    assert description.count("```") == 2 and description.startswith("```python")


def test_long_text_continues_in_more_embeds_within_6000() -> None:
    body = "\n".join(f"line {i} " + "x" * 80 for i in range(60))  # ~5,300 characters
    out = payload_of(Message(title="Long", body=body, footer="end"))
    embeds = out["embeds"]
    assert isinstance(embeds, list) and len(embeds) == 2
    assert all(len(e.get("description", "")) <= 4096 for e in embeds)
    assert sum(len(e.get("description", "")) + len(e.get("title", "")) for e in embeds) <= 6000
    assert out["files"] == []


def test_what_does_not_fit_is_attached() -> None:
    body = "y " * 6000
    fields = tuple(Field(f"f{i}", "v" * 2000) for i in range(30))
    out = payload_of(Message(title="T" * 300, body=body, fields=fields, footer="F"))
    embeds = out["embeds"]
    assert isinstance(embeds, list)
    total = sum(len(e.get("title", "")) + len(e.get("description", "")) + len(e.get("footer", {}).get("text", ""))
                + sum(len(f["name"]) + len(f["value"]) for f in e.get("fields", [])) for e in embeds)
    assert total <= 6000 and len(embeds[0]["title"]) == 256
    assert all(len(f["value"]) <= 1024 for e in embeds for f in e.get("fields", []))
    assert out["files"] == ["message.txt"] and "full text attached" in embeds[-1]["footer"]["text"]


def test_long_code_is_attached_as_a_file() -> None:
    code = "print('hello')\n" * 400  # 6,000 characters
    out = payload_of(Message(title="Answer", body="The reference:", code=code))
    assert out["files"] == ["code.py"]
    embeds = out["embeds"]
    assert isinstance(embeds, list) and "code attached" in embeds[0]["description"]


def test_errors_are_one_line_content() -> None:
    out = payload_of(Message(body="No question pair-sum.", footer="Usage: /question <id>", kind="error",
                             ephemeral=True))
    assert out["content"] == "⚠️ No question pair-sum.\nUsage: /question <id>" and out["embeds"] == []


async def test_button_custom_ids_carry_the_command() -> None:
    view = render(Message(body="x", buttons=(Button("Next ▶", "leaderboard", "all --page 2"),
                                             Button("way too long", "x", "y" * 200)))).view
    assert view is not None
    ids = [getattr(c, "custom_id", None) for c in view.children]
    assert ids == ["onsite:leaderboard:all --page 2"]
    assert not view.is_dispatchable() and view.is_finished()


async def test_slow_commands_are_deferred_before_discords_deadline(bot: dp.Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord_app, "DEFER_AFTER_S", 0.0)
    await bot.feed(dp.slash("leaderboard"))
    first = bot.http.calls[0]
    assert first.is_callback and first.payload["type"] == 5
    assert bot.http.matching("POST", r"^/webhooks/") and "Leaderboard" in dp.text_of(bot.http.replies()[-1])
