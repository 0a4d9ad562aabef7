"""Whole flows on Discord: the daily post, submitting by modal and attachment, buttons, leaderboard pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.store.sqlite import Store
from tests.adapters import discord_payloads as dp
from tests.conftest import StandInGrader


@pytest.fixture
async def bot(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch)
    await dp.settle()


async def post_round(bot: dp.Bot) -> list[dp.Call]:
    await dp.setup_channel(bot)
    bot.http.clear()
    await bot.feed(dp.slash("admin post-now", permissions=dp.MANAGE_GUILD))
    return bot.http.channel_posts()


def post_of(posts: list[dp.Call], question_id: str) -> dp.Call:
    return next(p for p in posts if f"id: {question_id}" in dp.text_of(p.payload))


def as_message(call: dp.Call, *, interaction_user: int | None = None) -> dict[str, Any]:
    """The message Discord would hand back in a component interaction, from what the bot sent."""
    return dp.message_json(dp.snowflake(), dp.CHANNEL_ID, call.payload, interaction_user=interaction_user)


# -- the daily post ----------------------------------------------------------------------------------


async def test_post_now_is_deferred_then_posts_embeds_with_buttons_and_a_thread_each(bot: dp.Bot) -> None:
    posts = await post_round(bot)
    first = bot.http.calls[0]
    assert first.is_callback and first.payload == {"type": 5, "data": {"flags": 64}}  # deferred, private
    assert "Posted the round" in dp.text_of(bot.http.replies()[-1])
    assert len(posts) == 5  # one per track
    coding = post_of(posts, "pair-sum-count")
    embed = coding.payload["embeds"][0]
    assert embed["title"].startswith("Daily Coding") and "```python" in embed["description"]
    assert dp.custom_ids(coding.payload) == ["onsite:form:submit pair-sum-count", "onsite:hint:pair-sum-count",
                                             "onsite:discuss:pair-sum-count"]
    assert coding.payload["allowed_mentions"] == {"parse": []}
    assert coding.payload["nonce"] and coding.payload["enforce_nonce"] is True
    threads = bot.http.matching("POST", r"^/channels/\d+/messages/\d+/threads$")
    assert len(threads) == 5
    assert {t.payload["name"] for t in threads} == {p.payload["embeds"][0]["title"][:100] for p in posts}


async def test_post_now_twice_is_refused_and_posts_nothing_more(bot: dp.Bot) -> None:
    await post_round(bot)
    bot.http.clear()
    await bot.feed(dp.slash("admin post-now", permissions=dp.MANAGE_GUILD))
    assert "never posted twice" in dp.text_of(bot.http.replies()[-1])
    assert not bot.http.channel_posts()


async def test_hint_button_answers_privately(bot: dp.Bot) -> None:
    coding = post_of(await post_round(bot), "pair-sum-count")
    bot.http.clear()
    await bot.feed(dp.click("onsite:hint:pair-sum-count", as_message(coding), user_id=dp.BOB, username="bob"))
    (call,) = bot.http.callbacks()
    assert call.payload["type"] == 4 and call.payload["data"]["flags"] == 64
    assert "Hint 1 of" in dp.text_of(call.payload["data"])


async def test_discuss_button_links_the_posts_thread(bot: dp.Bot) -> None:
    coding = post_of(await post_round(bot), "pair-sum-count")
    message = as_message(coding)
    bot.http.fail_once("POST", r"/threads$", dp.discord_http_error(400, 160004, "A thread has already been created"))
    bot.http.clear()
    await bot.feed(dp.click("onsite:discuss:pair-sum-count", message))
    data = bot.http.replies()[-1]
    assert f"<#{message['id']}>" in dp.text_of(data) and data["flags"] == 64


# -- submitting --------------------------------------------------------------------------------------


async def test_submit_button_opens_a_modal_stating_discords_limit(bot: dp.Bot) -> None:
    coding = post_of(await post_round(bot), "pair-sum-count")
    bot.http.clear()
    await bot.feed(dp.click("onsite:form:submit pair-sum-count", as_message(coding)))
    (call,) = bot.http.callbacks()
    assert call.payload["type"] == 9
    modal = call.payload["data"]
    assert modal["custom_id"] == "onsite-form:submit:pair-sum-count"
    inputs = [c for c in dp.walk_components(modal["components"]) if c.get("type") == 4]
    assert inputs == [{**inputs[0], "custom_id": "answer", "style": 2, "max_length": 4000}]
    assert "4,000" in str(modal["components"]) and ".py" in str(modal["components"])


async def test_modal_submission_is_graded_privately_and_announced_without_code(bot: dp.Bot) -> None:
    await post_round(bot)
    reference = bot.bank.get("pair-sum-count").reference or ""
    bot.http.clear()
    await bot.feed(dp.modal_submit("onsite-form:submit:pair-sum-count", {"answer": reference},
                                   user_id=dp.BOB, username="bob"))
    first = bot.http.calls[0]
    assert first.is_callback and first.payload == {"type": 5, "data": {"flags": 64}}
    verdict = bot.http.replies()[-1]
    assert "Accepted" in dp.text_of(verdict) and verdict["flags"] == 64
    assert bot.grader.calls and bot.grader.calls[0][0] == "pair-sum-count"
    (announcement,) = bot.http.channel_posts()
    text = dp.text_of(announcement.payload)
    assert "bob" in text and "solved" in text
    assert reference.strip().splitlines()[0] not in text and "```" not in text
    assert announcement.payload["allowed_mentions"] == {"parse": []}


async def test_slash_submit_without_answer_opens_the_modal(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("submit", {"id": "pair-sum-count"}))
    (call,) = bot.http.callbacks()
    assert call.payload["type"] == 9 and call.payload["data"]["custom_id"] == "onsite-form:submit:pair-sum-count"


async def test_submit_with_an_attachment_defers_then_follows_up(bot: dp.Bot) -> None:
    await post_round(bot)
    reference = bot.bank.get("pair-sum-count").reference or ""
    att = dp.attachment(dp.snowflake(), "solution.py", len(reference.encode()))
    bot.http.cdn[att["url"]] = reference.encode()
    bot.http.clear()
    await bot.feed(dp.slash("submit", {"id": "pair-sum-count", "file": att["id"]}, types={"file": 11},
                            resolved={"attachments": {att["id"]: att}}))
    first = bot.http.calls[0]
    assert first.is_callback and first.payload == {"type": 5, "data": {"flags": 64}}
    assert bot.http.cdn_requests == [att["url"]]
    follow_up = bot.http.matching("POST", r"^/webhooks/")
    assert len(follow_up) == 1 and "Accepted" in dp.text_of(follow_up[0].payload)
    assert bot.grader.calls[0][0] == "pair-sum-count"


async def test_oversized_or_foreign_attachment_is_refused_before_download(bot: dp.Bot) -> None:
    big = dp.attachment(dp.snowflake(), "solution.py", 200_000)
    await bot.feed(dp.slash("submit", {"id": "pair-sum-count", "file": big["id"]}, types={"file": 11},
                            resolved={"attachments": {big["id"]: big}}))
    assert "the limit is 64.0 KB" in dp.text_of(bot.http.replies()[-1])
    exe = dp.attachment(dp.snowflake(), "solution.exe", 10)
    await bot.feed(dp.slash("submit", {"id": "pair-sum-count", "file": exe["id"]}, types={"file": 11},
                            resolved={"attachments": {exe["id"]: exe}}))
    assert "not a .py, .sql, .txt, .md file" in dp.text_of(bot.http.replies()[-1])
    assert bot.http.cdn_requests == [] and bot.grader.calls == []


async def test_theory_answer_by_slash_option(bot: dp.Bot) -> None:
    await post_round(bot)
    bot.http.clear()
    await bot.feed(dp.slash("submit", {"id": "overfit-first-step", "answer": "B"}))
    verdict = bot.http.replies()[-1]
    assert verdict.get("flags") == 64 or bot.http.calls[0].payload["data"]["flags"] == 64
    assert "correct" in dp.text_of(verdict).lower()


# -- the leaderboard ---------------------------------------------------------------------------------


async def seed_points(bot: dp.Bot, count: int) -> None:
    await bot.feed(dp.slash("help"))  # creates the community
    community = await bot.community()
    for i in range(count):
        m = await bot.store.ensure_member(community.id, str(10_000 + i), f"player{i:02d}", now=bot.clock.now())
        await bot.store.add_points(community_id=community.id, member_id=m.id, points=100 - i, reason="test",
                                   now=bot.clock.now())


async def test_leaderboard_pages_update_the_message_in_place(bot: dp.Bot) -> None:
    await seed_points(bot, 25)
    bot.http.clear()
    await bot.feed(dp.slash("leaderboard", {"period": "all"}))
    first = bot.http.callbacks()[0]
    assert first.payload["type"] == 4 and not first.payload["data"].get("flags")  # public
    page1 = first.payload["data"]
    assert "player00" in dp.text_of(page1)
    (next_id,) = dp.custom_ids(page1)
    assert next_id.startswith("onsite:leaderboard:all") and next_id.endswith("--page 2")
    shown = dp.message_json(dp.snowflake(), dp.CHANNEL_ID, page1, interaction_user=dp.ALICE)
    bot.http.clear()
    await bot.feed(dp.click(next_id, shown))
    (update,) = bot.http.callbacks()
    assert update.payload["type"] == 7  # UPDATE_MESSAGE: the same message, no new post
    text = dp.text_of(update.payload["data"])
    assert "player10" in text and "player00" not in text and "Page 2 of 3" in text
    assert {i.split("--page ")[1] for i in dp.custom_ids(update.payload["data"])} == {"1", "3"}


async def test_someone_elses_leaderboard_page_is_answered_privately(bot: dp.Bot) -> None:
    await seed_points(bot, 25)
    await bot.feed(dp.slash("leaderboard", {"period": "all"}))
    page1 = bot.http.callbacks()[-1].payload["data"]
    shown = dp.message_json(dp.snowflake(), dp.CHANNEL_ID, page1, interaction_user=dp.ALICE)
    bot.http.clear()
    await bot.feed(dp.click(dp.custom_ids(page1)[0], shown, user_id=dp.BOB, username="bob"))
    (call,) = bot.http.callbacks()
    assert call.payload["type"] == 4 and call.payload["data"]["flags"] == 64


async def test_member_text_cannot_ping(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("help", user_id=dp.BOB, username="bob", nick="@everyone"))
    community = await bot.community()
    bob = await bot.store.find_member(community.id, str(dp.BOB))
    assert bob is not None
    await bot.store.add_points(community_id=community.id, member_id=bob.id, points=5, reason="t", now=bot.clock.now())
    bot.http.clear()
    await bot.feed(dp.slash("leaderboard", {"period": "all"}))
    data = bot.http.replies()[-1]
    assert "@everyone" not in dp.text_of(data) and "@\u200beveryone" in dp.text_of(data)
    assert data["allowed_mentions"] == {"parse": []}


# -- a pairing round ---------------------------------------------------------------------------------


async def test_a_pairing_round_on_discord(bot: dp.Bot) -> None:
    bot.add_guild(dp.guild())
    await dp.setup_channel(bot)
    for uid, name in ((dp.ALICE, "alice"), (dp.BOB, "bob")):
        await bot.feed(dp.slash("mock join", {"tracks": "coding", "timezone": "UTC"}, user_id=uid, username=name))
        assert "Something went wrong" not in dp.text_of(bot.http.replies()[-1])
    bot.http.clear()
    await bot.feed(dp.slash("admin pair-now", permissions=dp.MANAGE_GUILD))
    assert bot.http.calls[0].payload == {"type": 5, "data": {"flags": 64}}  # deferred: pairing can take a while
    (space,) = bot.http.matching("POST", rf"^/channels/{dp.CHANNEL_ID}/threads$")
    assert space.payload["type"] == 12  # a private thread
    thread_id = next(iter(bot.http.threads))
    added = {c.path.rsplit("/", 1)[1] for c in bot.http.matching("PUT", rf"^/channels/{thread_id}/thread-members/")}
    assert added == {str(dp.ALICE), str(dp.BOB)}
    in_thread = bot.http.channel_posts(thread_id)
    assert len(in_thread) == 2  # the mentions that invite them, then the group's introduction
    assert "Suggested times" in dp.text_of(in_thread[1].payload)
    packs = bot.http.matching("POST", r"^/users/@me/channels$")
    assert len(packs) == 2  # each interviewer's private pack
    # a week later the check-in DM arrives; its buttons work from the DM
    bot.clock.advance(timedelta(days=7))
    bot.http.clear()
    await bot.services.tick()
    checkins = [c for c in bot.http.matching("POST", r"^/channels/\d+/messages$")
                if "Did your mock interview happen?" in dp.text_of(c.payload)]
    assert len(checkins) == 2
    alice_dm = next(c for c in checkins if c.path.endswith(f"/{dp.DM_CHANNEL_BASE + dp.ALICE % 1000}/messages"))
    met, no_show, feedback = dp.custom_ids(alice_dm.payload)
    assert no_show == f'onsite@{dp.GUILD_ID}:mock checkin:no-show "bob"'
    assert met == f"onsite@{dp.GUILD_ID}:mock checkin:met"
    dm_message = dp.message_json(dp.snowflake(), dp.DM_CHANNEL_BASE + 1, alice_dm.payload, guild_id=None)
    bot.http.clear()
    await bot.feed(dp.click(met, dm_message, guild_id=None))
    reply = bot.http.replies()[-1]
    assert "marked as met" in dp.text_of(reply) and reply["flags"] == 64
    bot.http.clear()
    await bot.feed(dp.click(feedback, dm_message, guild_id=None))
    (modal,) = bot.http.callbacks()
    assert modal.payload["type"] == 9
    form_id = modal.payload["data"]["custom_id"]
    assert form_id == f"onsite-form@{dp.GUILD_ID}:feedback:bob"
    bot.http.clear()
    await bot.feed(dp.modal_submit(form_id, {"scores": "4 3 5 4", "notes": "Clear structure."}, guild_id=None))
    assert "Feedback sent privately to bob" in dp.text_of(bot.http.replies()[-1])
    to_bob = [c for c in bot.http.matching("POST", r"^/channels/\d+/messages$")
              if c.path.endswith(f"/{dp.DM_CHANNEL_BASE + dp.BOB % 1000}/messages")]
    assert to_bob and "Clear structure." in dp.text_of(to_bob[0].payload)


# -- pictures ----------------------------------------------------------------------------------------


async def test_a_stats_card_is_attached_to_the_reply(bot: dp.Bot) -> None:
    pytest.importorskip("matplotlib")
    await post_round(bot)
    await bot.feed(dp.slash("submit", {"id": "overfit-first-step", "answer": "B"}))
    bot.http.clear()
    await bot.feed(dp.slash("card stats"))
    with_files = [c for c in bot.http.calls if c.files]
    assert with_files, [c.path for c in bot.http.calls]
    sent = with_files[-1]
    (name,) = sent.files
    assert name.endswith(".png")
    data = sent.payload.get("data", sent.payload)
    embeds = data.get("embeds") or []
    assert embeds and embeds[0]["image"]["url"] == f"attachment://{name}"
