"""Delivery on Discord under rate limits and closed DMs (issue 17, items 6 and 7).

Rate limits are driven through discord.py's real HTTPClient (its buckets, its 429 handling and its
`max_ratelimit_timeout`) over a fake transport: a 429 comes with Retry-After and X-RateLimit-*
headers as Discord sends it. `discord.RateLimited` (a limit longer than discord.py waits) is not an
HTTPException; its `retry_after` must reach the outbox. A pair space that falls back to DMs sends
one outbox row per member, each with its own nonce, so one closed DM or a retry touches no one else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from bot.adapters.discord_app import DiscordChat
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.messages import Message
from bot.core.models import Community, Member, OutboxItem
from bot.core.ports import DeliveryError
from bot.store.sqlite import Store
from tests.adapters import discord_payloads as dp
from tests.conftest import StandInGrader

CREATE_PRIVATE_THREADS = 1 << 36
POSTS = rf"^/channels/{dp.CHANNEL_ID}/messages$"


@pytest.fixture
async def wire(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    """The bot with discord.py's own HTTPClient.request over a fake transport."""
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch, transport=True)
    await dp.settle()


@pytest.fixture
async def bot(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch)
    await dp.settle()


async def community(bot: dp.Bot) -> Community:
    return await bot.store.ensure_community("discord", str(dp.GUILD_ID), "ML Interview Prep", now=bot.clock.now(),
                                            channel=str(dp.CHANNEL_ID))


async def alice(bot: dp.Bot, c: Community) -> Member:
    return await bot.store.ensure_member(c.id, str(dp.ALICE), "alice", now=bot.clock.now())


def chat(bot: dp.Bot) -> DiscordChat:
    assert isinstance(bot.services.outbox.chat, DiscordChat)
    return bot.services.outbox.chat


def transport(bot: dp.Bot) -> dp.Transport:
    assert bot.transport is not None
    return bot.transport


# -- item 6: rate limits through discord.py's HTTP client -------------------------------------------------


async def test_a_long_rate_limit_on_a_post_carries_discords_retry_after(wire: dp.Bot) -> None:
    c = await community(wire)
    transport(wire).respond_once("POST", POSTS, dp.rate_limited(120.0))
    with pytest.raises(DeliveryError) as caught:
        await chat(wire).post(c, str(dp.CHANNEL_ID), Message(title="hello"), key="post:1")
    assert caught.value.retry_after == pytest.approx(120.0) and not caught.value.permanent
    assert "rate limit" in str(caught.value)


async def test_the_outbox_waits_what_discord_asked_not_its_backoff(wire: dp.Bot) -> None:
    c = await community(wire)
    await wire.store.enqueue([OutboxItem(c.id, "announce:rl", "announce", Message(body="hi"),
                                         channel=str(dp.CHANNEL_ID))], now=wire.clock.now())
    transport(wire).respond_once("POST", POSTS, dp.rate_limited(300.0))
    await wire.services.outbox.deliver()
    (row,) = [r for r in await wire.store.outbox_rows(c.id) if r.key == "announce:rl"]
    assert row.sent_at is None and "rate limit" in (row.last_error or "")
    con = sqlite3.connect(wire.store.path)
    try:
        (not_before,) = con.execute("SELECT not_before FROM outbox WHERE key = 'announce:rl'").fetchone()
    finally:
        con.close()
    assert datetime.fromisoformat(not_before) == wire.clock.now() + timedelta(seconds=300)  # not the 30 s backoff


async def test_a_rate_limited_dm_carries_retry_after(wire: dp.Bot) -> None:
    c = await community(wire)
    member = await alice(wire, c)
    transport(wire).respond_once("POST", r"^/users/@me/channels$", dp.rate_limited(90.0))
    with pytest.raises(DeliveryError) as caught:
        await chat(wire).send_dm(member, Message(body="your mock is at 18:00"), key="dm:1")
    assert caught.value.retry_after == pytest.approx(90.0) and not caught.value.permanent


async def test_a_rate_limited_channel_lookup_carries_retry_after(wire: dp.Bot) -> None:
    c = await community(wire)
    transport(wire).respond_once("GET", rf"^/channels/{dp.CHANNEL_ID}$", dp.rate_limited(45.0))
    with pytest.raises(DeliveryError) as caught:
        await chat(wire).post(c, str(dp.CHANNEL_ID), Message(title="hello"), key="post:2")
    assert caught.value.retry_after == pytest.approx(45.0)
    assert not wire.http.channel_posts()


async def test_a_short_rate_limit_is_waited_out_by_discord_py_and_posted_once(wire: dp.Bot) -> None:
    c = await community(wire)
    transport(wire).respond_once("POST", POSTS, dp.rate_limited(0.05))
    ref = await chat(wire).post(c, str(dp.CHANNEL_ID), Message(title="hello"), key="post:3")
    assert ref.isdigit()
    assert [r for r in transport(wire).requests if r == ("POST", f"/channels/{dp.CHANNEL_ID}/messages")] == \
        [("POST", f"/channels/{dp.CHANNEL_ID}/messages")] * 2  # the 429, then the retry discord.py made
    assert len(wire.http.channel_posts()) == 1


async def test_a_send_discord_py_halts_before_the_request_carries_the_buckets_reset(wire: dp.Bot) -> None:
    """The first post's answer says the bucket resets in 90 s: discord.py refuses the next post to the
    channel before making it (RateLimited, no HTTPException), and its wait must reach the outbox."""
    c = await community(wire)
    sent = dp.message_json(dp.snowflake(), dp.CHANNEL_ID, {"content": "x"})
    transport(wire).respond_once("POST", POSTS, dp.TransportResponse(200, sent, {
        "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset-After": "90.000",
        "X-RateLimit-Bucket": "b0cket"}))
    await chat(wire).post(c, str(dp.CHANNEL_ID), Message(title="first"), key="post:4")
    with pytest.raises(DeliveryError) as caught:
        await chat(wire).post(c, str(dp.CHANNEL_ID), Message(title="second"), key="post:5")
    assert 85 < (caught.value.retry_after or 0) <= 90
    assert [r for r in transport(wire).requests if r[0] == "POST"] == [("POST", f"/channels/{dp.CHANNEL_ID}/messages")]


async def test_a_rate_limited_pair_space_is_opened_later_not_settled_as_dms(wire: dp.Bot) -> None:
    wire.add_guild(dp.guild())
    c = await community(wire)
    pair = [await alice(wire, c), await wire.store.ensure_member(c.id, str(dp.BOB), "bob", now=wire.clock.now())]
    transport(wire).respond_once("POST", rf"^/channels/{dp.CHANNEL_ID}/threads$", dp.rate_limited(60.0))
    with pytest.raises(DeliveryError) as caught:
        await chat(wire).open_pair_space(c, pair, "Mock interview · alice & bob")
    assert caught.value.retry_after == pytest.approx(60.0) and not caught.value.permanent
    assert not wire.http.matching("POST", r"^/users/@me/channels$")
    ref = await chat(wire).open_pair_space(c, pair, "Mock interview · alice & bob")  # the retry opens it
    assert ref.startswith("thread:")


async def test_a_rate_limited_member_add_opens_the_space_later_too(wire: dp.Bot) -> None:
    """The thread is created but adding a member is limited for a minute: not settled as DMs either."""
    wire.add_guild(dp.guild())
    c = await community(wire)
    pair = [await alice(wire, c), await wire.store.ensure_member(c.id, str(dp.BOB), "bob", now=wire.clock.now())]
    transport(wire).respond_once("PUT", rf"/thread-members/{dp.BOB}$", dp.rate_limited(60.0))
    with pytest.raises(DeliveryError) as caught:
        await chat(wire).open_pair_space(c, pair, "Mock interview · alice & bob")
    assert caught.value.retry_after == pytest.approx(60.0) and not caught.value.permanent
    assert not wire.http.matching("POST", r"^/users/@me/channels$")
    assert (await chat(wire).open_pair_space(c, pair, "Mock interview · alice & bob")).startswith("thread:")


async def test_a_rate_limited_discuss_click_says_when_to_try_again(wire: dp.Bot) -> None:
    transport(wire).respond_once("POST", r"/threads$", dp.rate_limited(75.0))
    post = dp.message_json(dp.snowflake(), dp.CHANNEL_ID, {"embeds": [{"title": "Daily Coding"}]})
    await wire.feed(dp.click("onsite:discuss:pair-sum-count", post))
    reply = wire.http.replies()[-1]
    assert reply["flags"] == 64 and "try again in 75 s" in dp.text_of(reply)


# -- item 7: a pair space as DMs is one outbox row per member -------------------------------------------


async def pair_round_without_threads(bot: dp.Bot) -> Community:
    bot.add_guild(dp.guild(channels=[dp.text_channel(dp.CHANNEL_ID, "daily", deny_everyone=CREATE_PRIVATE_THREADS)]))
    await dp.setup_channel(bot)
    for uid, name in ((dp.ALICE, "alice"), (dp.BOB, "bob")):
        await bot.feed(dp.slash("mock join", {"tracks": "coding", "timezone": "UTC"}, user_id=uid, username=name))
    bot.http.clear()
    await bot.feed(dp.slash("admin pair-now", permissions=dp.MANAGE_GUILD))
    c = await bot.community()
    assert c is not None
    return c


def dm_path(user_id: int) -> str:
    return rf"^/channels/{dp.DM_CHANNEL_BASE + user_id % 1000}/messages$"


def introductions(bot: dp.Bot, user_id: int) -> list[dp.Call]:
    """The group's introduction as DMs to one member (attempts included)."""
    return [c for c in bot.http.matching("POST", dm_path(user_id)) if dp.text_of(c.payload).startswith("Mock interview ·")]


async def test_a_pair_space_as_dms_is_one_outbox_row_per_member_each_with_its_nonce(bot: dp.Bot) -> None:
    c = await pair_round_without_threads(bot)
    rows = await bot.store.outbox_rows(c.id)
    (space,) = [r for r in rows if r.purpose == "space"]
    assert space.sent_at and (space.ref or "").startswith("dm:")
    per_member = [r for r in rows if r.key.startswith(f"{space.key}:dm:")]
    assert len(per_member) == 2 and all(r.purpose == "dm" and r.sent_at for r in per_member)
    (to_alice,), (to_bob,) = introductions(bot, dp.ALICE), introductions(bot, dp.BOB)
    assert to_alice.payload["nonce"] != to_bob.payload["nonce"]
    assert to_alice.payload["enforce_nonce"] is True and to_bob.payload["enforce_nonce"] is True


async def test_one_member_with_closed_dms_does_not_stop_the_others(bot: dp.Bot) -> None:
    bot.http.fail_once("POST", dm_path(dp.ALICE), dp.forbidden(50007, "Cannot send messages to this user"))
    c = await pair_round_without_threads(bot)
    assert len(introductions(bot, dp.BOB)) == 1  # bob got the introduction although alice's DM was refused
    rows = {r.key.rsplit(":", 1)[1]: r for r in await bot.store.outbox_rows(c.id) if ":dm:" in r.key}
    alice_row, bob_row = rows[str((await bot.store.find_member(c.id, str(dp.ALICE))).id)], \
        rows[str((await bot.store.find_member(c.id, str(dp.BOB))).id)]  # type: ignore[union-attr]
    assert bob_row.sent_at and alice_row.failed_at and "does not accept direct messages" in (alice_row.last_error or "")


async def test_a_retry_dms_only_the_member_it_failed_for_with_the_same_nonce(bot: dp.Bot) -> None:
    bot.http.fail_once("POST", dm_path(dp.BOB), dp.server_error())
    c = await pair_round_without_threads(bot)
    first_bob = introductions(bot, dp.BOB)
    assert len(introductions(bot, dp.ALICE)) == 1 and len(first_bob) == 1
    bot.clock.advance(timedelta(minutes=5))
    await bot.services.tick()
    await dp.settle()
    assert len(introductions(bot, dp.ALICE)) == 1  # alice is not DMed again
    retried = introductions(bot, dp.BOB)
    assert len(retried) == 2 and retried[1].payload["nonce"] == first_bob[0].payload["nonce"]
    assert all(r.sent_at for r in await bot.store.outbox_rows(c.id) if ":dm:" in r.key)
