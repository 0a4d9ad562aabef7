"""Bench (c): throughput with 50 queued submissions over single-submission throughput (goal >= 1.6 on 2 cores).

Single: the same submissions graded one at a time through a GraderPool. Queued: all 50 handed to the
pool at once (default workers = cores, queue limit 50). Ratio = queued submissions/s over single.
Usage: python bench/grader_throughput.py [--tier bwrap|rlimit] [--n 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from grader_common import PURE, pure_spec_20

from graders import sandbox
from graders.pool import GraderPool

# ~100 ms of pure-Python work per submission, so the judge's own overhead is not all that is measured.
WORK = PURE + "\n_ = sum(i * i for i in range(1_500_000))\n"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tier", choices=sandbox.TIERS, default=None)
    ap.add_argument("--n", type=int, default=50)
    args = ap.parse_args()
    tier = args.tier or sandbox.detect_tier()
    spec = pure_spec_20()
    async with GraderPool(tier=tier, queue_limit=args.n) as pool:
        await pool.grade(WORK, spec)  # warm-up
        single_n = max(10, args.n // 5)
        t = time.perf_counter()
        for _ in range(single_n):
            assert (await pool.grade(WORK, spec)).verdict == "accepted"
        single = single_n / (time.perf_counter() - t)
        t = time.perf_counter()
        results = await asyncio.gather(*(pool.grade(WORK, spec) for _ in range(args.n)))
        queued = args.n / (time.perf_counter() - t)
    assert all(r.verdict == "accepted" for r in results), {r.verdict for r in results}
    print(f"(c) tier={tier} workers={pool.max_workers} cores={os.cpu_count()}: single {single:.2f}/s, "
          f"{args.n} queued {queued:.2f}/s, ratio {queued / single:.2f} (goal >= 1.6)")


if __name__ == "__main__":
    asyncio.run(main())
