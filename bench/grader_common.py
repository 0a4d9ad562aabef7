"""Shared bits for the grader benchmarks (not a benchmark itself)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graders.spec import CodeSpec, load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "graders" / "fixtures"

PURE = """
def two_sum(nums, target):
    seen = {}
    for i, x in enumerate(nums):
        if target - x in seen:
            return [seen[target - x], i]
        seen[x] = i
"""


def pure_spec_20() -> CodeSpec:
    """The two_sum question with 20 tests (visible and hidden)."""
    tests = []
    for n in range(20):
        nums = list(range(n + 2))
        tests.append({"args": [nums, nums[-1] + nums[-2]], "expected": [n, n + 1], "visible": n < 2})
    return CodeSpec.from_dict({"id": "two_sum20", "entry": "two_sum", "tests": tests})


def numpy_spec() -> CodeSpec:
    return load_spec(str(FIXTURES / "softmax.yaml"))


def numpy_reference() -> str:
    spec = numpy_spec()
    assert spec.reference
    return spec.reference


def bare(args: list[str]) -> Callable[[], None]:
    def go() -> None:
        subprocess.run([sys.executable, *args], check=True)

    return go


def median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def interleaved(a: Callable[[], object], b: Callable[[], object], rounds: int = 5, n: int = 10) -> tuple[float, float]:
    """Medians of a and b, measured alternately so machine noise hits both alike."""
    ma, mb = [], []
    for _ in range(rounds):
        ma.append(median_ms(a, n))
        mb.append(median_ms(b, n))
    return statistics.median(ma), statistics.median(mb)
