"""Posting and revealing daily rounds: once, on time, after downtime, through failures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.daily import at_local, reveal_due
from bot.core.errors import Conflict
from bot.core.models import Caller, Community
from bot.core.ports import DeliveryError
from bot.core.services import Services
from bot.store.sqlite import Store
from tests.conftest import RecordingChat, StandInGrader


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


async def test_round_posts_at_post_time_once(wired: Services, admin: Caller, chat: RecordingChat, clock: FixedClock) -> None:
    clock.set(at(23, 8, 59))
    await wired.tick()
    assert chat.posts() == []  # before 09:00 the current round is yesterday's, outside the grace window
    clock.set(at(23, 9, 0))
    await wired.tick()
    posts = chat.posts()
    assert len(posts) == 5 and {p.kind for p in posts} == {"question"}
    assert all(where == "daily" for _, where, _ in chat.sent)
    assert (posts[0].buttons[0].action, posts[0].buttons[0].value.split()[0]) == ("form", "submit")
    await wired.tick()
    await wired.tick()
    assert len(chat.posts()) == 5
    rounds = await wired.store.daily_posts_on(admin.community.id, date(2026, 11, 23))
    assert all(p.posted_at is not None and p.message_ref for p in rounds)


async def test_a_second_process_does_not_repost(
    wired: Services, store: Store, bank: Bank, admin: Caller, chat: RecordingChat, clock: FixedClock
) -> None:
    await wired.tick()
    assert len(chat.posts()) == 5
    other_store = await store.reopen()  # what a second process would have
    other_chat = RecordingChat()
    try:
        other = Services.build(other_store, bank, FixedClock(clock.now()), chat=other_chat, grader=StandInGrader())
        await other.tick()
        assert other_chat.sent == []
        with pytest.raises(Conflict, match="already posted; it is never posted twice"):
            await other.daily.post_now(admin.community)
    finally:
        await other_store.close()


async def test_catch_up_after_downtime_only_within_grace(wired: Services, admin: Caller, chat: RecordingChat, clock: FixedClock) -> None:
    clock.set(at(23, 14, 59))  # down since before 09:00; back 5 h 59 min later: inside 6 h
    await wired.tick()
    assert len(chat.posts()) == 5
    clock.set(at(24, 15, 1))  # next day, back 6 h 1 min after the post time: outside the window
    await wired.tick()
    assert len(chat.posts("question")) == 5
    assert len(chat.posts("reveal")) == 5  # yesterday's answers are still revealed
    assert not await wired.store.round_announced(admin.community.id, date(2026, 11, 24))


async def test_failed_post_is_retried_without_duplicates(wired: Services, admin: Caller, chat: RecordingChat, clock: FixedClock) -> None:
    chat.fail_next = 2
    await wired.tick()
    assert len(chat.posts()) == 3  # two sends failed, recorded for retry
    rows = [r for r in await wired.store.outbox_rows(admin.community.id) if r.sent_at is None]
    assert len(rows) == 2 and all("503" in (r.last_error or "") for r in rows)
    await wired.tick()
    assert len(chat.posts()) == 3  # not before the backoff
    clock.advance(timedelta(seconds=31))
    await wired.tick()
    assert len(chat.posts()) == 5
    keys = [r.key for r in await wired.store.outbox_rows(admin.community.id)]
    assert len(keys) == len(set(keys)) == 5


async def test_permanent_failure_tells_the_admins(wired: Services, admin: Caller, chat: RecordingChat) -> None:
    chat.fail_next = 1
    chat.fail_with = DeliveryError("missing permission Send Messages in #daily", permanent=True)
    await wired.tick()  # the failed post and the admins' alert, in one delivery
    dms = [(where, m) for kind, where, m in chat.sent if kind == "dm"]
    assert dms and dms[0][0] == "Ada"
    assert "missing permission Send Messages in #daily" in dms[0][1].body
    failed = [r for r in await wired.store.outbox_rows(admin.community.id) if r.failed_at]
    assert len(failed) == 1


async def test_next_round_reveals_the_previous_one_with_stats(
    wired: Services, admin: Caller, member: Caller, chat: RecordingChat, clock: FixedClock, bank: Bank
) -> None:
    clock.set(at(23, 9, 5))
    await wired.tick()
    ref = bank.get("pair-sum-count").reference
    assert ref is not None
    await wired.submissions.submit(member, "pair-sum-count", text=None, code="def count_pairs(a, b):\n    return 0\n")
    await wired.submissions.submit(member, "pair-sum-count", text=None, code=ref)
    await wired.submissions.submit(admin, "pair-sum-count", text=None, code="def count_pairs(a, b):\n    return 1\n")
    clock.set(at(24, 9, 0))
    await wired.tick()
    reveals = chat.posts("reveal")
    assert len(reveals) == 5
    coding = next(r for r in reveals if any(f.value.endswith("`pair-sum-count`") for f in r.fields))
    fields = {f.name: f.value for f in coding.fields}
    assert fields["Attempts"] == "2" and fields["Solve rate"] == "50%" and fields["First solvers"] == "Bob"
    assert coding.code == ref
    # reveals are sent before the new round's posts
    kinds = [m.kind for _, _, m in chat.sent if m.kind in ("reveal", "question")]
    assert kinds[5:10] == ["reveal"] * 5 and kinds[10:] == ["question"] * 5
    await wired.tick()
    assert len(chat.posts("reveal")) == 5


async def test_reveal_time_setting(wired: Services, admin: Caller, chat: RecordingChat, clock: FixedClock) -> None:
    await wired.store.update_community(admin.community.id, reveal_time="21:00")
    clock.set(at(23, 9, 1))
    await wired.tick()
    clock.set(at(23, 20, 59))
    await wired.tick()
    assert chat.posts("reveal") == []
    clock.set(at(23, 21, 0))
    await wired.tick()
    assert len(chat.posts("reveal")) == 5


def test_reveal_and_post_instants_follow_the_timezone() -> None:
    tokyo = Community(1, "t", "g", "G", "daily", "Asia/Tokyo", "09:00", ("coding",))
    assert at_local(tokyo, date(2026, 11, 23), "09:00") == at(23, 0)
    assert reveal_due(tokyo, date(2026, 11, 23), None) == at(24, 0)
    assert reveal_due(tokyo, date(2026, 11, 23), "08:00") == at(23, 23)  # next morning, 08:00 Tokyo
    assert reveal_due(tokyo, date(2026, 11, 23), "21:00") == at(23, 12)


async def test_no_channel_means_no_post_and_post_now_says_why(wired: Services, admin: Caller, chat: RecordingChat) -> None:
    community = await wired.store.update_community(admin.community.id, channel=None)
    await wired.tick()
    assert chat.posts() == []
    with pytest.raises(Conflict, match="Set the channel first"):
        await wired.daily.post_now(community)


async def test_admins_are_told_when_no_channel_is_set_at_post_time(
    wired: Services, admin: Caller, member: Caller, chat: RecordingChat, clock: FixedClock
) -> None:
    """Issue 16: a round that cannot post for want of a channel is never silent; an explicit off is."""
    await wired.store.update_community(admin.community.id, channel=None)
    clock.set(at(23, 8, 59))
    await wired.tick()
    assert chat.sent == []  # not due yet
    clock.set(at(23, 9, 1))
    await wired.tick()
    await wired.tick()
    assert chat.posts() == []
    dms = [(where, m) for kind, where, m in chat.sent if kind == "dm"]
    assert [where for where, _ in dms] == ["Ada"]  # the admins, once, not the members
    assert dms[0][1].title == "Today's round was not posted"
    assert "no channel is set" in dms[0][1].body and "/admin setup channel" in dms[0][1].body
    clock.set(at(24, 9, 1))
    await wired.tick()
    assert len([k for k, _, _ in chat.sent if k == "dm"]) == 2  # the next day's round, once more
    await wired.store.update_community(admin.community.id, channel="")  # /admin setup channel off
    clock.set(at(25, 9, 1))
    await wired.tick()
    assert len(chat.sent) == 2 and chat.posts() == []


async def test_post_now_posts_the_current_round_once(wired: Services, admin: Caller, chat: RecordingChat, clock: FixedClock) -> None:
    clock.set(at(23, 20, 0))  # too late for the catch-up window: only an admin can post it now
    await wired.tick()
    assert chat.sent == []
    assert await wired.daily.post_now(admin.community) == date(2026, 11, 23)
    assert chat.sent == []  # queued; the adapter delivers after its reply
    await wired.outbox.deliver()
    assert len(chat.posts()) == 5
    with pytest.raises(Conflict):
        await wired.daily.post_now(admin.community)


async def test_a_channel_emptied_by_the_old_hash_bug_is_not_set_again(tmp_path: Path) -> None:
    """Before issue 16, `/admin setup channel #` stored '' (silently no round); '' now means an explicit
    off, so migration 0009 turns those back into "not set", whose admins are told at post time."""
    from bot.store.sqlite import load_migrations

    migrations = load_migrations()
    store = await Store.open(tmp_path / "old.db", migrate=False)
    try:
        await store.migrate(migrations[:8])
        async with store.transaction() as db:
            await db.execute("INSERT INTO communities (platform, external_id, name, channel, created_at)"
                             " VALUES ('console', 'a', 'A', '', 't'), ('console', 'b', 'B', 'daily', 't')")
        await store.migrate()
        assert [c.channel for c in await store.list_communities()] == [None, "daily"]
    finally:
        await store.close()
