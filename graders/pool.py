"""Bounded concurrency for grading: a few sandboxes at a time, a short queue, and a clear "busy".

``sandbox.run`` blocks (it spawns a process and waits on pipes with the GIL released), so it runs in
a dedicated thread pool; the event loop only awaits a future and never blocks. Each submitter (key)
may have one submission in flight; a flooding member gets ``Busy`` with an estimate instead of
stalling everybody. This class is also the seam for remote workers: anything with the same
``grade``/``close`` can stand in for it.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from . import sandbox
from .result import GradeResult
from .spec import CodeSpec


class Busy(Exception):
    """The judge cannot take this submission now; try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: float, reason: str = "") -> None:
        self.retry_after_s = max(1.0, float(math.ceil(retry_after_s)))
        self.reason = reason
        text = f"The judge is busy, try again in {int(self.retry_after_s)} s"
        if reason:
            text += f" ({reason})"
        super().__init__(text)


class GraderPool:
    """Grades submissions with at most ``max_workers`` sandboxes at once and a bounded queue."""

    def __init__(self, max_workers: int | None = None, queue_limit: int = 50, tier: str | None = None) -> None:
        self.max_workers = max(1, max_workers or os.cpu_count() or 1)
        self.queue_limit = max(0, queue_limit)
        self._tier = tier
        self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="grader")
        self._pending = 0  # running + queued
        self._keys: dict[str, float] = {}  # key -> when its submission was accepted
        self._avg_s = 0.5  # moving average of one run's wall time, for retry estimates
        self._closed = False

    @property
    def tier(self) -> str:
        """The sandbox tier in use (detected on first use when not forced)."""
        if self._tier is None:
            self._tier = sandbox.detect_tier()
        return self._tier

    @property
    def pending(self) -> int:
        return self._pending

    def _estimate(self, position: int) -> float:
        return self._avg_s * (position // self.max_workers + 1)

    async def grade(self, code: str, spec: CodeSpec, *, key: str | None = None,
                    run: Callable[[str, CodeSpec, str], GradeResult] = sandbox.run) -> GradeResult:
        """Grade with `run` (`sandbox.run`, or `generated.grade_in_child`) in a worker thread; raises Busy
        when this key is already grading or the queue is full."""
        if self._closed:
            raise RuntimeError("GraderPool is closed")
        if key is not None and key in self._keys:
            waited = time.monotonic() - self._keys[key]
            raise Busy(max(1.0, self._estimate(self._pending) - waited), "your previous submission is still grading")
        if self._pending >= self.max_workers + self.queue_limit:
            raise Busy(self._estimate(self._pending), "queue full")
        tier = self.tier
        if key is not None:
            self._keys[key] = time.monotonic()
        self._pending += 1
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()

        def finished() -> None:
            # Runs when the sandbox is really done, even if the awaiting task was cancelled meanwhile.
            self._pending -= 1
            self._avg_s = 0.8 * self._avg_s + 0.2 * (time.monotonic() - t0)
            if key is not None:
                self._keys.pop(key, None)

        try:
            cf = self._executor.submit(run, code, spec, tier)
        except BaseException:
            finished()
            raise
        cf.add_done_callback(lambda _f: loop.call_soon_threadsafe(finished))
        return await asyncio.wrap_future(cf, loop=loop)

    async def close(self) -> None:
        """Stop accepting work and wait for running sandboxes to finish (they are time-limited)."""
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    async def __aenter__(self) -> GraderPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
