"""Bench (d): event-loop lag p99 while the grader pool is saturated (goal < 50 ms).

Queues 50 submissions (pure-Python work, a few printing a lot, a few hitting the time limit) and,
meanwhile, wakes every 5 ms to record how late the loop ran the wake-up. Reports p50/p99/max lag,
and the ratio p99 / 50 ms (goal < 1). Usage: python bench/grader_loop_lag.py [--tier bwrap|rlimit]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from grader_common import PURE, pure_spec_20

from graders import sandbox
from graders.pool import GraderPool

WORK = PURE + "\n_ = sum(i * i for i in range(1_500_000))\n"
NOISY = PURE + "\nfor _ in range(40000):\n    print('x' * 30)\n"
LOOP = "def two_sum(nums, target):\n    while True:\n        pass\n"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tier", choices=sandbox.TIERS, default=None)
    args = ap.parse_args()
    tier = args.tier or sandbox.detect_tier()
    spec = pure_spec_20()
    codes = [WORK] * 40 + [NOISY] * 6 + [LOOP] * 4
    lags: list[float] = []
    async with GraderPool(tier=tier, queue_limit=len(codes)) as pool:
        await pool.grade(PURE, spec)
        tasks = [asyncio.create_task(pool.grade(c, spec)) for c in codes]
        while not all(t.done() for t in tasks):
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(max(0.0, (time.perf_counter() - t - 0.005) * 1000))
        verdicts = [t.result().verdict for t in tasks]
    lags.sort()
    p99 = lags[int(len(lags) * 0.99) - 1]
    print(f"(d) tier={tier}: {len(lags)} samples while {len(codes)} submissions graded "
          f"({verdicts.count('accepted')} accepted, {verdicts.count('output_limit')} output_limit, "
          f"{verdicts.count('time_limit')} time_limit); lag p50 {statistics.median(lags):.2f} ms, "
          f"p99 {p99:.2f} ms, max {lags[-1]:.2f} ms; p99/50ms = {p99 / 50:.2f} (goal < 1)")


if __name__ == "__main__":
    asyncio.run(main())
