"""Delivery of everything the bot sends on its own (posts, reveals, announcements, DMs).

The outbox is the transactional-outbox pattern: a message is written to the `outbox` table in the
same transaction as the state it reports, under a unique key, so a restart or a second process can
never create it twice. Delivery leases due rows to one process at a time (`claimed_until`), sends
them through the `Chat` port (in order within a community, up to 16 communities at a time), and
records the platform reference. Platform faults:
- a send that gets no answer within `SEND_TIMEOUT_S` is cancelled and counts as a failure; before a
  send could outlive its lease, the lease of the rows left is renewed (compare-and-set on the stored
  lease, so rows another process took after an expiry are left to it): no two processes send one row;
- a server error or timeout is retried with exponential backoff (30 s, 1 min, 2 min, ... capped at
  1 h) up to `MAX_ATTEMPTS`; a rate limit (`DeliveryError.retry_after`) waits what the platform asked;
- a permanent error (`DeliveryError(permanent=True)`, e.g. a missing permission) stops the retries
  at once and tells the community's admins by DM what to fix.
Every failure is recorded on its row (`attempts`, `last_error`, `not_before`) and logged.

Messages about a moment (a mock slot, a check-in, a timed attempt) are written when they go out,
not when they were queued: a producer registers a renderer for its key kind (`render_at_send`,
the key's text before the first `:`), which gets the row, its stored message and the current time,
and returns the message to send or `Stale(reason)`. A stale message is not sent: its row is closed
with `last_error` "dropped: <reason>" and never retried. So after downtime a reminder either says
what is true now or is dropped (the rules and grace windows are in bot/core/mocks.py and timed.py).

Producers only enqueue; whoever serves the member delivers after replying (the console after each
command, the chat adapters after each interaction, the scheduler every minute), so a member sees
their own reply before the public line it caused.

The one window left: a process that dies (or a send that times out) after the platform accepted a
message and before the `sent_at` update commits will send it again. Adapters close it with platform
idempotency where it exists: the outbox key goes to `Chat.post`/`send_dm`, and Discord's message
nonce is derived from it. Slack has no such key, so there the window stays open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.core import failpoints
from bot.core.clock import Clock
from bot.core.messages import Message
from bot.core.models import OutboxItem, OutboxRow
from bot.core.ports import Chat, DeliveryError, Store

log = logging.getLogger(__name__)

LEASE_S = 60.0
CONCURRENT_COMMUNITIES = 16
MAX_ATTEMPTS = 8
BASE_BACKOFF_S = 30.0
MAX_BACKOFF_S = 3600.0
SEND_TIMEOUT_S = 40.0  # discord.py itself waits out rate limits of up to 30 s


@dataclass(frozen=True)
class Stale:
    """A renderer's answer for a message that is no longer worth sending."""

    reason: str


Renderer = Callable[[OutboxRow, Message, datetime], Awaitable["Message | Stale"]]


class _Dropped(Exception):
    """Raised inside a send when its renderer found the message stale."""


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** max(0, attempts - 1)))


class Outbox:
    def __init__(self, store: Store, clock: Clock, chat: Chat | None = None) -> None:
        self.store = store
        self.clock = clock
        self.chat = chat
        self._alerts = 0
        self._renderers: dict[str, Renderer] = {}

    def render_at_send(self, kind: str, renderer: Renderer) -> None:
        """Rows whose key is `<kind>:...` are written (or dropped) by `renderer` at send time."""
        self._renderers[kind] = renderer

    async def deliver(self, limit: int = 200) -> int:
        """Send every due message; returns how many were sent. Safe to call from many places."""
        if self.chat is None:
            return 0
        sent = 0
        gate = asyncio.Semaphore(CONCURRENT_COMMUNITIES)

        async def send_all(group: list[OutboxRow]) -> int:
            done = 0
            async with gate:
                for index, row in enumerate(group):
                    # a send may take SEND_TIMEOUT_S: before one could outlive the lease, the lease of the
                    # rest is renewed, if it is still ours, so two processes never send one row at once
                    lease = row.claimed_until
                    if lease and self.clock.now() + timedelta(seconds=SEND_TIMEOUT_S) >= datetime.fromisoformat(lease):
                        rest = group[index:]
                        renewed = await self.store.renew_outbox_lease(
                            [r.id for r in rest], lease, now=self.clock.now(), lease_s=LEASE_S)
                        if renewed is None:
                            break  # the lease ran out and another process took the rows
                        group[index:] = [replace(r, claimed_until=renewed) for r in rest]
                        row = group[index]
                    done += await self._send(row)
            return done

        while True:
            rows = await self.store.claim_outbox(now=self.clock.now(), lease_s=LEASE_S, limit=limit)
            if not rows:
                return sent
            failpoints.hit("outbox.claimed")
            # One community's messages go in order; different communities are sent concurrently.
            by_community: dict[int, list[OutboxRow]] = {}
            for row in rows:
                by_community.setdefault(row.community_id, []).append(row)
            alerts_before = self._alerts
            sent += sum(await asyncio.gather(*(send_all(g) for g in by_community.values())))
            if len(rows) < limit and self._alerts == alerts_before:  # new admin alerts go out in this call too
                return sent

    async def _send(self, row: OutboxRow) -> bool:
        try:
            ref = await asyncio.wait_for(self._call_chat(row), SEND_TIMEOUT_S)
        except _Dropped as stale:  # not a failure: the message is closed unsent and never retried
            await self.store.outbox_failed(row, f"dropped: {stale}", retry_at=None, now=self.clock.now())
            log.info("dropped %s: %s", row.key, stale)
            return False
        except Exception as exc:  # any adapter failure is recorded, never lost
            if isinstance(exc, TimeoutError):
                exc = DeliveryError(f"no answer from the platform within {SEND_TIMEOUT_S:g} s")
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            retry_after = exc.retry_after if isinstance(exc, DeliveryError) else None
            now = self.clock.now()
            give_up = permanent or row.attempts >= MAX_ATTEMPTS
            wait = timedelta(seconds=retry_after) if retry_after is not None else backoff(row.attempts)
            await self.store.outbox_failed(row, str(exc) or type(exc).__name__,
                                           retry_at=None if give_up else now + wait, now=now)
            log.warning("sending %s failed (attempt %d%s): %s", row.key, row.attempts,
                        ", giving up" if give_up else f", next try in {wait.total_seconds():g} s", exc)
            if give_up and row.purpose != "dm":
                await self._tell_admins(row, str(exc))
            return False
        await self.store.outbox_sent(row, ref, now=self.clock.now())
        return True

    async def _call_chat(self, row: OutboxRow) -> str:
        """One send through the port; returns the platform's reference to what was sent."""
        assert self.chat is not None
        message = Message.from_dict(row.message)
        renderer = self._renderers.get(row.key.split(":", 1)[0])
        if renderer is not None:
            rendered = await renderer(row, message, self.clock.now())
            if isinstance(rendered, Stale):
                raise _Dropped(rendered.reason)
            message = rendered
        if row.purpose == "space" and row.pair_id is not None:
            community = await self.store.get_community(row.community_id)
            if community is None:
                raise DeliveryError("the community no longer exists", permanent=True)
            ref, members = await self.store.pair_space(row.pair_id)
            if ref is None:  # opened once: a retry after a failed post reuses the space
                ref = await self.chat.open_pair_space(community, members, message.title)
                await self.store.set_pair_space(row.pair_id, ref)
            await self.chat.post(community, ref, message, key=row.key)
        elif row.member_id is not None:
            member = await self.store.get_member(row.member_id)
            if member is None:
                raise DeliveryError("the member no longer exists", permanent=True)
            await self.chat.send_dm(member, message, key=row.key)
            ref = f"dm:{member.id}"
        else:
            community = await self.store.get_community(row.community_id)
            if community is None or not row.channel:
                raise DeliveryError("no channel to post in", permanent=True)
            ref = await self.chat.post(community, row.channel, message, key=row.key)
        return ref

    async def _tell_admins(self, row: OutboxRow, error: str) -> None:
        """A post that cannot be delivered is reported to the admins, once per failed message."""
        items = [
            OutboxItem(
                community_id=row.community_id,
                key=f"admin-alert:{row.key}:{admin.id}",
                purpose="dm",
                member_id=admin.id,
                message=Message(
                    title="A post could not be delivered",
                    body=f"Onsite could not post in #{row.channel}: {error}",
                    footer="Fix it, then run /admin post-now to post today's round.",
                    kind="error",
                ),
            )
            for admin in await self.store.admins(row.community_id)
        ]
        if items:
            self._alerts += await self.store.enqueue(items, now=self.clock.now())
