"""Grader test fixtures: the tier parameter (bwrap skipped only when unusable), spec builder, leak checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from graders import sandbox
from graders.spec import CodeSpec

FIXTURES = Path(__file__).parent / "fixtures"
BWRAP_OK, BWRAP_WHY = sandbox.bwrap_status()

TIER_PARAMS = [
    pytest.param("rlimit", id="rlimit"),
    pytest.param(
        "bwrap",
        id="bwrap",
        marks=pytest.mark.skipif(not BWRAP_OK, reason=f"bubblewrap unusable here: {BWRAP_WHY}"),
    ),
]


def make_spec(
    tests: list[dict[str, Any]] | None = None,
    entry: str = "f",
    **extra: Any,
) -> CodeSpec:
    d: dict[str, Any] = {
        "id": "t",
        "track": "coding",
        "entry": entry,
        "time_limit_s": 1,
        "tests": tests or [{"name": "one", "args": [], "expected": 1, "visible": True}],
    }
    d.update(extra)
    return CodeSpec.from_dict(d)


def sandbox_pids(uid: int | None = None) -> list[int]:
    """Live processes running as the last run's slot uid (or any slot uid)."""
    if uid is None:
        uid = getattr(sandbox.last_run, "uid", None)
    lo, hi = (uid, uid + 1) if uid is not None else (sandbox.SLOT_UID_BASE, sandbox.SLOT_UID_BASE + 64)
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue
        uid = int(next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1])
        state = next(ln for ln in status.splitlines() if ln.startswith("State:")).split()[1]
        threads = int(next(ln for ln in status.splitlines() if ln.startswith("Threads:")).split()[1])
        # a zombie leader whose other threads still run is alive (it exited only its own thread)
        if lo <= uid < hi and (state not in ("Z", "X") or threads > 1):
            out.append(int(pid))
    return out


def leftover_workdirs() -> list[str]:
    """The last run's host work directory, if it still exists (the bwrap tier uses none)."""
    wd = getattr(sandbox.last_run, "workdir", None)
    return [wd] if wd and os.path.exists(wd) else []


@pytest.fixture(params=TIER_PARAMS)
def tier(request: pytest.FixtureRequest) -> str:
    """Every sandbox test runs in both tiers."""
    return str(request.param)


@pytest.fixture
def spec_of() -> Any:
    """Build a CodeSpec from keyword overrides."""
    return make_spec


@pytest.fixture
def grade(tier: str) -> Any:
    """Run code in the tier under test and check nothing survived or was left behind."""

    def _grade(code: str, **spec_kw: Any) -> Any:
        r = sandbox.run(code, make_spec(**spec_kw), tier=tier)
        assert r.tier == tier
        if os.geteuid() == 0:
            assert sandbox_pids() == [], "a sandboxed process survived the run"
        assert leftover_workdirs() == [], "the work directory was not removed"
        return r

    return _grade
