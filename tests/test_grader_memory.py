"""The bot's memory after grading questions with generated tests (what bench/soak.py's memory check
caught): their inputs, expected values and the run's answers are tens of MB of small objects once
decoded, and a long-running bot that decodes them keeps their high-water mark (glibc keeps what a
worker thread freed in that thread's arena), though no object survives. `PoolGrader` grades such a
question in a short-lived process (`generated.grade_in_child`), so its own RSS does not move.

Measured in a fresh interpreter: a pytest process has allocated and freed so much already that it
could absorb the growth and pass without the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import asyncio, gc, json, sys
from bot.app import PoolGrader
from bot.core.models import Question
from graders.pool import GraderPool
from graders.spec import TestCase

REFERENCE = "def sort_copy(xs):\n    return sorted(xs)\n"
GENERATOR = ("import random\n"
             "def generate(seed):\n"
             "    rng = random.Random(seed)\n"
             "    return [{'name': f'big {k}', 'args': [[rng.random() for _ in range(80_000)]]} for k in range(2)]\n")


def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def question(generated):
    return Question(id="sort-copy" if generated else "sort-copy-small", track="coding", title="Sort a copy",
                    difficulty="easy", topics=("sorting",), prompt="Return the values sorted.", entry="sort_copy",
                    tests=(TestCase("one", ([3.0, 1.0, 2.0],), {}, [1.0, 2.0, 3.0], True),), time_limit_s=5.0,
                    reference=REFERENCE, generated=generated)


async def main():
    big, small = question({"seed": 1, "code": GENERATOR}), question(None)
    grader = PoolGrader(GraderPool(max_workers=2, tier="rlimit"))
    try:
        warm = await grader.grade(small, REFERENCE, key="warm")  # imports, probes, the worker threads
        gc.collect()
        before = rss_mb()
        verdicts = [warm]
        for round_ in range(3):  # two at a time, as the bot's pool runs them
            verdicts += await asyncio.gather(*(grader.grade(big, REFERENCE, key=f"{round_}-{k}") for k in range(2)))
        gc.collect()
        after = rss_mb()
    finally:
        await grader.close()
    print(json.dumps({"before": before, "after": after, "verdicts": [(v.verdict, v.passed, v.total) for v in verdicts]}))


asyncio.run(main())
'''


def _measured(code: str, cache: Path) -> Any:
    """Run `code` in a fresh interpreter (the generated tests cached under `cache`): its JSON line."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, ONSITE_GENERATED_CACHE=str(cache)))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_grading_generated_tests_leaves_the_bots_memory_where_it_was(tmp_path: Path) -> None:
    out = _measured(CHILD, tmp_path / "cache")
    assert out["verdicts"] == [["accepted", 1, 1]] + [["accepted", 3, 3]] * 6, out
    # Each grading decodes 160,000 floats twice (the expected values and the run's answers): graded in
    # the bot's own process (sandbox.run after generated.prepare) it kept +34 to +37 MB here; now +0.1 MB.
    assert out["after"] - out["before"] < 8, out


WORKER_CHILD = CHILD.split("async def main():")[0] + r'''
from graders import worker

big, small = question({"seed": 1, "code": GENERATOR}), question(None)
job = lambda n, q: worker.Job(n, q.id, json.dumps(q.to_dict()), REFERENCE, 0)
warm = worker.grade_job(job(0, small), "rlimit")
gc.collect()
before = rss_mb()
results = [warm] + [worker.grade_job(job(n, big), "rlimit") for n in range(1, 5)]
gc.collect()
after = rss_mb()
print(json.dumps({"before": before, "after": after, "verdicts": [(r.verdict, r.passed, r.total) for r in results]}))
'''


def test_a_grading_worker_grades_generated_tests_outside_its_own_memory(tmp_path: Path) -> None:
    """`python -m graders worker` lives as long as the bot: the same high-water mark, the same cure."""
    out = _measured(WORKER_CHILD, tmp_path / "cache")
    assert out["verdicts"] == [["accepted", 1, 1]] + [["accepted", 3, 3]] * 4, out
    assert out["after"] - out["before"] < 8, out


async def test_a_generator_that_fails_in_the_grading_process_is_an_internal_error_for_the_member(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The GenerationError raised in the short-lived process reaches the bot's grader as before."""
    from bot.app import PoolGrader
    from bot.core.models import Question
    from graders.pool import GraderPool
    from graders.spec import TestCase

    monkeypatch.setenv("ONSITE_GENERATED_CACHE", str(tmp_path / "cache"))
    q = Question(id="broken-generator", track="coding", title="Broken", difficulty="easy", topics=("x",),
                 prompt="Return x.", entry="f", tests=(TestCase("one", (1,), {}, 1, True),),
                 reference="def f(x):\n    return x\n",
                 generated={"seed": 1, "code": "def generate(seed):\n    raise RuntimeError('no inputs today')\n"})
    grader = PoolGrader(GraderPool(max_workers=1, tier="rlimit"))
    try:
        verdict = await grader.grade(q, "def f(x):\n    return x\n", key="a")
    finally:
        await grader.close()
    assert verdict.verdict == "internal_error" and "cannot build this question's large tests" in verdict.message
    assert "generated tests of broken-generator cannot be built: broken-generator: generated: generate(1) failed" \
        in caplog.text
