"""Issue 10, platform faults: a `Chat` that times out, rate-limits and fails like real platforms do.
Every message must arrive exactly once, every failure must be recorded, and waits must follow the
backoff or the platform's `retry_after`."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.core import outbox as outbox_module
from bot.core.clock import FixedClock
from bot.core.messages import Message
from bot.core.models import Community, Member, OutboxItem, OutboxRow
from bot.core.outbox import Outbox, backoff
from bot.core.ports import DeliveryError
from bot.store.sqlite import Store

FAULTS = ("slow-before", "slow-after", "rate-limit", "server-error", "reset")


class FlakyPlatform:
    """A platform that fails in the ways real ones do. Like Discord with a nonce, it keeps one copy
    of a message per idempotency key; `shown` is what members would see."""

    def __init__(self, seed: int, fault_rate: float) -> None:
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.received: Counter[str] = Counter()  # key -> times the platform got it
        self.shown: list[str] = []
        self.faults: Counter[str] = Counter()

    async def _deliver(self, key: str) -> str:
        assert key, "the outbox must pass its key so that a retry can be recognised"
        fault = self.rng.choice(FAULTS) if self.rng.random() < self.fault_rate else None
        if fault:
            self.faults[fault] += 1
        if fault == "slow-before":
            await asyncio.sleep(5)
        elif fault == "rate-limit":
            raise DeliveryError("429 Too Many Requests", retry_after=7)
        elif fault == "server-error":
            raise DeliveryError("503 Service Unavailable")
        elif fault == "reset":
            raise ConnectionResetError("connection reset by peer")
        self.received[key] += 1
        if self.received[key] == 1:
            self.shown.append(key)
        if fault == "slow-after":  # accepted, but the answer never comes back
            await asyncio.sleep(5)
        return f"ref-{key}"

    async def post(self, community: Community, channel: str, message: Message, *, key: str = "") -> str:
        return await self._deliver(key)

    async def send_dm(self, member: Member, message: Message, *, key: str = "") -> None:
        await self._deliver(key)

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        raise AssertionError("no pair spaces in this test")


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "SEND_TIMEOUT_S", 0.05)


async def _messages(store: Store, clock: FixedClock, communities: int = 3, per: int = 20) -> list[str]:
    keys: list[str] = []
    for c in range(communities):
        community = await store.ensure_community("test", f"g{c}", f"Guild {c}", now=clock.now(), channel="daily")
        member = await store.ensure_member(community.id, f"u{c}", f"Member {c}", now=clock.now())
        items = []
        for i in range(per):
            key = f"c{c}:m{i}"
            keys.append(key)
            dm = i % 3 == 0
            items.append(OutboxItem(community_id=community.id, key=key, purpose="dm" if dm else "post",
                                    channel=None if dm else "daily", member_id=member.id if dm else None,
                                    message=Message(body=f"message {i} of guild {c}")))
        await store.enqueue(items, now=clock.now())
    return keys


async def test_every_message_arrives_exactly_once_through_timeouts_rate_limits_and_errors(
    store: Store, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    keys = await _messages(store, clock)
    platform = FlakyPlatform(seed=7, fault_rate=0.35)
    outbox = Outbox(store, clock, platform)
    caplog.set_level(logging.WARNING, logger="bot.core.outbox")
    for _ in range(300):
        await outbox.deliver()
        if not await store._all("SELECT 1 FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"):
            break
        clock.advance(timedelta(minutes=5))
    assert sorted(platform.shown) == sorted(keys)  # nothing lost, nothing shown twice
    assert set(platform.faults) == set(FAULTS)  # every kind of fault happened
    assert max(platform.received.values()) >= 2  # some message reached the platform twice: the key deduplicated it
    rows = [r for c in (1, 2, 3) for r in await store.outbox_rows(c)]
    assert [(r.key, r.attempts, r.last_error) for r in rows if r.sent_at is None or r.failed_at] == []
    retried = [r for r in rows if r.attempts > 1]
    assert retried and all(r.last_error for r in retried)  # each failure is recorded on its row...
    assert sum(r.attempts - 1 for r in rows) == sum(platform.faults.values())  # ...every one of them
    assert len([m for m in caplog.messages if "failed (attempt" in m]) == sum(platform.faults.values())  # and logged
    assert any("no answer from the platform within" in (r.last_error or "") for r in retried)


class ScriptedPlatform(FlakyPlatform):
    def __init__(self, errors: list[BaseException | None]) -> None:
        super().__init__(seed=0, fault_rate=0)
        self.errors = errors

    async def _deliver(self, key: str) -> str:
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error
        return await super()._deliver(key)


async def test_server_errors_back_off_and_rate_limits_wait_what_the_platform_asked(store: Store, clock: FixedClock) -> None:
    await _messages(store, clock, communities=1, per=1)
    platform = ScriptedPlatform([DeliveryError("502 Bad Gateway"), DeliveryError("502 Bad Gateway"),
                                 DeliveryError("429", retry_after=7), None])
    outbox = Outbox(store, clock, platform)
    waits = []
    for _ in range(4):
        before = clock.now()
        await outbox.deliver()
        row = (await store.outbox_rows(1))[0]
        if row.sent_at:
            break
        found = await store._one("SELECT not_before FROM outbox WHERE id = ?", (row.id,))
        assert found is not None
        due = datetime.fromisoformat(found[0])
        waits.append(due - before)
        await outbox.deliver()  # not due yet: nothing is tried early
        assert (await store.outbox_rows(1))[0].attempts == row.attempts
        clock.set(due)
    assert waits == [backoff(1), backoff(2), timedelta(seconds=7)]
    assert platform.shown == ["c0:m0"]
    assert (await store.outbox_rows(1))[0].attempts == 4


async def test_a_long_batch_renews_its_lease_so_no_row_is_sent_unleased(store: Store, clock: FixedClock,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Sends of 30 s each against a 60 s lease: the rest of the batch is re-leased before it could lapse."""
    keys = await _messages(store, clock, communities=1, per=4)
    monkeypatch.setattr(outbox_module, "SEND_TIMEOUT_S", outbox_module.LEASE_S - 1)
    platform = FlakyPlatform(seed=1, fault_rate=0)
    original = platform._deliver
    unleased: list[str] = []

    async def slow(key: str) -> str:
        row = next(r for r in await store.outbox_rows(1) if r.key == key)
        if row.claimed_until is None or datetime.fromisoformat(row.claimed_until) <= clock.now():
            unleased.append(key)  # another process could claim this row while we send it
        clock.advance(timedelta(seconds=30))
        return await original(key)

    platform._deliver = slow  # type: ignore[method-assign]
    await Outbox(store, clock, platform).deliver()
    assert platform.shown == keys and unleased == []


async def test_rows_another_process_took_after_a_stall_are_left_to_it(store: Store, clock: FixedClock) -> None:
    """Process A stalls past its lease between two sends; B claims the rest; A must not send them too."""
    keys = await _messages(store, clock, communities=1, per=3)
    platform = FlakyPlatform(seed=2, fault_rate=0)
    a, b = Outbox(store, clock, platform), Outbox(store, clock, platform)  # two processes on one database
    mark_sent = store.outbox_sent
    stalled = False

    taken: list[OutboxRow] = []

    async def sent_then_stall(row, ref, *, now):  # type: ignore[no-untyped-def]
        nonlocal stalled
        await mark_sent(row, ref, now=now)
        if not stalled:
            stalled = True
            clock.advance(timedelta(seconds=outbox_module.LEASE_S + 10))  # A's event loop froze for 70 s
            taken.extend(await store.claim_outbox(now=clock.now(), lease_s=outbox_module.LEASE_S))  # B claims

    store.outbox_sent = sent_then_stall  # type: ignore[method-assign]
    assert await a.deliver() == 1  # A's renewal finds the rows leased to B and stops
    assert [r.key for r in taken] == keys[1:] and platform.shown == keys[:1]
    assert [await b._send(r) for r in taken] == [True, True]  # B sends what it claimed
    assert platform.shown == keys and max(platform.received.values()) == 1


def test_adapters_report_rate_limits_with_the_platforms_wait() -> None:
    import discord

    from bot.adapters import discord_app, slack_app

    response = AsyncSlackResponse(client=None, http_verb="POST", api_url="https://slack.test/api/chat.postMessage",
                                  req_args={}, data={"ok": False, "error": "ratelimited"},
                                  headers={"Retry-After": "12"}, status_code=429)
    error = slack_app.delivery_error(SlackApiError("ratelimited", response), "#daily")
    assert isinstance(error, DeliveryError) and not error.permanent and error.retry_after == 12.0
    limited = discord_app.delivery_error(discord.RateLimited(42.0), "#daily")
    assert isinstance(limited, DeliveryError) and not limited.permanent and limited.retry_after == 42.0
    message = Message(body="hello")
    assert discord_app.post_nonce("post:1:coding", message) == discord_app.post_nonce("post:1:coding", message)
    assert discord_app.post_nonce("post:1:coding", message) != discord_app.post_nonce("post:2:coding", message)
