"""Benchmark (issue 4b): post the daily round for 1,000 communities through a fake `Chat`.

Goal: under 60 s. Every community has all five tracks enabled and its own history (the round is
chosen by rotation against it), so each community costs the real path: choose, claim the slots,
enqueue the posts in the outbox, lease them, send them through the chat, record the references.
The fake chat answers after `--latency-ms` (default 0; Discord's and Slack's APIs answer in
tens of ms, and deliveries are sequential per process, so add it to see that case).

Prints the elapsed time, the ratio elapsed / goal (< 1 meets it), posts per second, and a
same-run reference (the time of 1,000 empty write transactions on the same database) so
runs on different machines compare: elapsed / reference.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import engines
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.messages import Message
from bot.core.models import Community, Member
from bot.core.services import Services
from bot.store.sqlite import Store
from tests.pgserver import PgServer

GOAL_S = 60.0
REPO = Path(__file__).resolve().parents[1]


class FakeChat:
    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.posts = 0

    async def post(self, community: Community, channel: str, message: Message, *, key: str = "") -> str:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        self.posts += 1
        return f"m{self.posts}"

    async def send_dm(self, member: Member, message: Message, *, key: str = "") -> None:
        return None

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        return "space"


async def run(store: Store, communities: int, latency_s: float) -> tuple[float, float]:
    """(elapsed s of the tick that posts every round, s of 1,000 empty write transactions)."""
    bank = Bank.load(REPO / "questions")
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    for i in range(communities):
        community = await store.ensure_community("bench", str(i), f"C{i}", now=clock.now(), channel="daily")
    start = time.perf_counter()
    for _ in range(1000):
        async with store.transaction():
            pass
    reference = time.perf_counter() - start

    chat = FakeChat(latency_s)
    services = Services.build(store, bank, clock, chat=chat, cards_dir=Path(tempfile.gettempdir()))
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    start = time.perf_counter()
    await services.tick()
    elapsed = time.perf_counter() - start
    await store.close()
    tracks = len(community.tracks)  # a new community's tracks (the SQL round is opt-in)
    assert chat.posts == communities * tracks, (chat.posts, communities, tracks)
    print(f"[{store.ENGINE}] posted {chat.posts:,} questions for {communities:,} communities in {elapsed:.1f} s "
          f"({chat.posts / elapsed:.0f} posts/s, chat latency {latency_s * 1000:.0f} ms)")
    print(f"[{store.ENGINE}] ratio elapsed / goal ({GOAL_S:.0f} s): {elapsed / GOAL_S:.2f}  (< 1 meets the goal)")
    print(f"[{store.ENGINE}] same-run reference: 1,000 empty write transactions {reference:.2f} s; "
          f"elapsed / reference = {elapsed / reference:.1f}")
    return elapsed, reference


async def both(communities: int, latency_s: float, server: PgServer | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lite, _ = await run(await Store.open(Path(tmp) / "bench.db"), communities, latency_s)
    if server is not None:
        from bot.store.postgres import PostgresStore

        pg, _ = await run(await PostgresStore.open(await server.fresh_database()), communities, latency_s)
        print(engines.ratio_line("daily post, whole tick", lite, pg, "s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communities", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    engines.add_arguments(parser)
    args = parser.parse_args()
    with engines.postgres(args.postgres) as server:
        asyncio.run(both(args.communities, args.latency_ms / 1000, server))


if __name__ == "__main__":
    main()
