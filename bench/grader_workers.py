"""Bench (issue 19 item 6): grading throughput of 1, 2 and 4 `python -m graders worker` processes.

The bot's side is real: `Store.queue_grading_job` writes each job (as `/submit` does with
ONSITE_GRADER_WORKERS=0), and the workers claim them from the database, grade them in the real
sandbox and write the results. Each job is the fixture question `pair-sum-count` with a correct
solution that also does ~100 ms of pure-Python work, so the judge, not the queue, is what runs.

For each worker count: a fresh database, the workers started and idle (listening), then `--n` jobs
queued at once; the time runs from the first job queued to the last result written. Prints jobs/s
per worker count and the ratio over one worker, measured in the same run; with `--postgres` the
same on PostgreSQL (the claim there is FOR UPDATE SKIP LOCKED, woken by NOTIFY).
Usage: python bench/grader_workers.py [--n 40] [--postgres URL|start]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import engines
from bot.core.bank import Bank
from bot.store.sqlite import Store
from graders import sandbox
from tests.pgserver import PgServer

REPO = Path(__file__).resolve().parents[1]
EXTRA_WORK = "\n_ = sum(i * i for i in range(1_500_000))\n"
COUNTS = (1, 2, 4)


def start_workers(url: str, k: int) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ, ONSITE_ALLOW_RLIMIT_TIER="1", PYTHONPATH=str(REPO))
    return [subprocess.Popen([sys.executable, "-m", "graders", "worker", "--database", url, "--poll", "1"],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(k)]


async def one_run(store: Store, url: str, workers: int, n: int) -> float:
    question = Bank.load(REPO / "tests" / "fixtures" / "bank").get("pair-sum-count")
    code, spec = (question.reference or "") + EXTRA_WORK, json.dumps(question.to_dict())
    now = datetime.now(UTC)
    community = await store.ensure_community("bench", "b", "Bench", now=now)
    member = await store.ensure_member(community.id, "u", "U", now=now)
    procs = start_workers(url, workers)
    try:
        await asyncio.sleep(3)  # started, looked at the empty queue, listening
        start = time.perf_counter()
        ids = [await store.queue_grading_job(community_id=community.id, member_id=member.id,
                                             question_id=question.id, daily_post_id=None, code=code, spec=spec,
                                             now=now, waiter_until=now + timedelta(minutes=5)) for _ in range(n)]
        while True:
            rows = await store._all("SELECT result FROM grading_jobs WHERE result IS NOT NULL")
            if len(rows) == n:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
    verdicts = {json.loads(r["result"])["verdict"] for r in rows}
    assert verdicts == {"accepted"}, verdicts
    owners = await store._all("SELECT owner, COUNT(*) AS n FROM grading_jobs WHERE id >= ? GROUP BY owner", (ids[0],))
    await store.close()
    rate = n / elapsed
    print(f"[{store.ENGINE}] {workers} worker(s): {n} jobs in {elapsed:.1f} s = {rate:.2f} jobs/s "
          f"(jobs per worker: {sorted(int(o['n']) for o in owners)})")
    return rate


async def main_async(n: int, server: PgServer | None) -> None:
    print(f"tier {sandbox.detect_tier()}, {os.cpu_count()} cores")
    runs: list[tuple[str, dict[int, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for k in COUNTS:
            path = Path(tmp) / f"w{k}.db"
            rates[k] = await one_run(await Store.open(path), f"sqlite:///{path}", k, n)
        runs.append(("sqlite", rates))
    if server is not None:
        from bot.store.postgres import PostgresStore

        rates = {}
        for k in COUNTS:
            url = await server.fresh_database()
            rates[k] = await one_run(await PostgresStore.open(url), url, k, n)
        runs.append(("postgres", rates))
    for engine, rates in runs:
        print(f"[{engine}] throughput over 1 worker: " + ", ".join(
            f"{k} workers {rates[k] / rates[1]:.2f}" for k in COUNTS[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    engines.add_arguments(parser)
    args = parser.parse_args()
    with engines.postgres(args.postgres) as server:
        asyncio.run(main_async(args.n, server))


if __name__ == "__main__":
    main()
