"""Tests made by a seeded generator, their expected values from the reference, and a time limit
calibrated on this machine.

A code question may declare::

    generated:
      seed: 7
      code: |
        import random
        def generate(seed):
            rng = random.Random(seed)
            n = 100_000
            return [{"name": "100k random", "args": [[rng.randint(0, 10**9) for _ in range(n)]]}]

Building (once per question content, by the trusted side; ``graders selftest`` builds every one):

1. ``generate(seed)`` runs **inside the sandbox** like a submission (the generator is bank content,
   reviewed, but it is still code) and returns a list of cases ``{name, args, kwargs?}`` of plain
   data: at most ``compare.MAX_VALUES`` values in all.
2. The reference runs in the sandbox on those inputs, ``MEASURE_RUNS`` times; its answers are the
   expected values (they must agree between runs) and the median of its time on the generated tests
   (as the harness measures each call) is the reference's time.
3. The cases, the expected values and the limit are cached in ``cache_dir()`` (mode 0700, kept out
   of every sandbox by ``sandbox.keep_private``), in a file named by the hash of everything they
   depend on: the generator, its seed, the reference, the entry, the comparison and the limits.
   Editing any of these builds again; nothing of a member's run ever writes there.

Grading: ``prepare(spec)`` returns the spec with the generated tests appended, hidden, and the
run's time limit raised to ``STARTUP_S + FACTOR × reference time`` when that is more than the
question's own ``time_limit_s`` (the floor). So a slow machine, where the reference itself is slow,
does not fail correct solutions, and a fast one does not pass slow ones. A limit over
``MAX_TIME_LIMIT_S`` means the generated tests are too large for the judge: building fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import marshal
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import compare as cmp
from . import sandbox
from .result import ACCEPTED, INTERNAL_ERROR, SKIPPED, WRONG_ANSWER, GradeResult, TestResult
from .spec import MAX_TIME_LIMIT_S, CodeSpec, TestCase

FORMAT = 2
FACTOR = 4.0  # the generated tests may take this many times the reference's time...
STARTUP_S = 1.0  # ...plus this much for the interpreter, the imports and the file's own tests
MEASURE_RUNS = 3
NAME_PREFIX = "generated: "
_log = logging.getLogger("onsite.grader")


class GenerationError(ValueError):
    """A generator or a reference that cannot produce the generated tests; the message says why."""


@dataclass(frozen=True)
class Generated:
    tests: tuple[TestCase, ...]
    reference_s: float  # median time of the reference on the generated tests
    limit_s: float  # the run's time limit with them
    built_at: str
    tier: str


def cache_dir() -> Path:
    """`ONSITE_GENERATED_CACHE`, else `$XDG_CACHE_HOME/onsite/generated`, else ~/.cache/onsite/generated."""
    if env := os.environ.get("ONSITE_GENERATED_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "onsite" / "generated"


def cache_key(spec: CodeSpec) -> str:
    parts = [FORMAT, spec.id, spec.entry, spec.generator, spec.generator_seed, spec.reference, spec.compare,
             spec.tolerance, spec.time_limit_s, spec.memory_mb, FACTOR, STARTUP_S]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def prepare(spec: CodeSpec, tier: str | None = None) -> CodeSpec:
    """The spec a submission is graded against: with its generated tests (hidden) and their limit."""
    if spec.generator is None:
        return spec
    gen = load_or_build(spec, tier)
    return replace(spec, tests=spec.tests + gen.tests, time_limit_s=max(spec.time_limit_s, gen.limit_s))


def load_or_build(spec: CodeSpec, tier: str | None = None, *, rebuild: bool = False) -> Generated:
    key = cache_key(spec)
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # read from the file each time: a question's inputs can be tens of megabytes in memory
        folder = _private_folder()
        path = folder / f"{spec.id}-{key}.marshal"
        with open(folder / f"{spec.id}.lock", "a+b") as lock_file:  # one builder across processes too
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            gen = None if rebuild else _read(path, key)
            if gen is None:
                _build_in_child(spec, tier, path, key)
                gen = _read(path, key)
                if gen is None:
                    raise GenerationError(f"{spec.id}: the generated tests were built but cannot be read back")
        return gen


def build(spec: CodeSpec, tier: str | None = None) -> Generated:
    """Run the generator and then the reference in the sandbox; raises GenerationError."""
    if spec.generator is None or spec.reference is None:
        raise GenerationError(f"{spec.id}: generated tests need a generator and a reference")
    tier = tier or sandbox.detect_tier()
    cases = _generate(spec, tier)
    probe = replace(spec, tests=tuple(TestCase(name, args, kwargs, None, True) for name, args, kwargs in cases),
                    time_limit_s=MAX_TIME_LIMIT_S)
    answers: list[Any] | None = None
    times: list[float] = []
    for _ in range(MEASURE_RUNS):
        r = sandbox.run(spec.reference, probe, tier=tier)
        failed = [t for t in r.tests if t.verdict not in (ACCEPTED, WRONG_ANSWER)]
        if failed or r.verdict not in (ACCEPTED, WRONG_ANSWER):
            raise GenerationError(f"{spec.id}: the reference failed on the generated tests: {r.message[:300]}")
        got = [t.got for t in r.tests]
        bad = next((name for (name, _, _), g in zip(cases, got, strict=True) if _opaque(g)), None)
        if bad is not None:
            raise GenerationError(f"{spec.id}: the reference returned something that is not plain data on {bad!r}")
        if answers is None:
            answers = got
        elif any(not cmp.compare(g, a, spec.compare, spec.tolerance).ok for g, a in zip(got, answers, strict=True)):
            raise GenerationError(f"{spec.id}: the reference gave different answers in two runs")
        times.append(sum(t.time_ms for t in r.tests) / 1000.0)
    assert answers is not None
    reference_s = statistics.median(times)
    limit_s = round(max(spec.time_limit_s, STARTUP_S + FACTOR * reference_s), 2)
    if limit_s > MAX_TIME_LIMIT_S:
        raise GenerationError(f"{spec.id}: the reference takes {reference_s:.2f} s on the generated tests, so their "
                              f"limit would be {limit_s:.1f} s, over the judge's {MAX_TIME_LIMIT_S:.0f} s: make them smaller")
    tests = tuple(TestCase(name, (), {}, expected, False, frame=framed(args, kwargs))
                  for (name, args, kwargs), expected in zip(cases, answers, strict=True))
    return Generated(tests, reference_s, limit_s, datetime.now(UTC).isoformat(timespec="seconds"), tier)


def _generate(spec: CodeSpec, tier: str) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    assert spec.generator is not None
    gen_spec = CodeSpec(id=f"{spec.id}:generate", entry="generate", track=spec.track, time_limit_s=MAX_TIME_LIMIT_S,
                        memory_mb=max(spec.memory_mb, 512),
                        tests=(TestCase("generate", (spec.generator_seed,), {}, None, True),))
    r = sandbox.run(spec.generator, gen_spec, tier=tier)
    if r.verdict not in (ACCEPTED, WRONG_ANSWER) or not r.tests or r.tests[0].verdict not in (ACCEPTED, WRONG_ANSWER):
        raise GenerationError(f"{spec.id}: generated: generate({spec.generator_seed}) failed: {r.message[:300]}")
    raw = r.tests[0].got
    if not isinstance(raw, list) or not raw:
        raise GenerationError(f"{spec.id}: generated: generate() must return a non-empty list of cases")
    cases = []
    names = {t.name for t in spec.tests}
    for n, case in enumerate(raw, 1):
        if not isinstance(case, dict) or not isinstance(case.get("args", []), list) \
                or not isinstance(case.get("kwargs", {}), dict) or set(case) - {"name", "args", "kwargs"}:
            raise GenerationError(f"{spec.id}: generated case {n}: must be a mapping of name, args (a list), kwargs")
        name = NAME_PREFIX + str(case.get("name") or f"case {n}")
        if name in names:
            raise GenerationError(f"{spec.id}: generated case {n}: duplicate name {name!r}")
        names.add(name)
        if _opaque(case.get("args")) or _opaque(case.get("kwargs")):
            raise GenerationError(f"{spec.id}: generated case {n}: inputs must be plain data")
        cases.append((name, tuple(case.get("args", [])), dict(case.get("kwargs", {}))))
    return cases


_CHILD = ("import pickle, sys\n"
          "from graders import generated as g\n"
          "spec, tier, path, key = pickle.load(sys.stdin.buffer)\n"
          "try:\n"
          "    g._write(path, key, g.build(spec, tier))\n"
          "except g.GenerationError as e:\n"
          "    sys.stderr.write(str(e)); sys.exit(3)\n")


def _build_in_child(spec: CodeSpec, tier: str | None, path: Path, key: str) -> None:
    """Build in a short-lived process of our own: decoding a generator's output makes millions of small
    objects, and a long-running bot would keep the memory they fragmented."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD], input=pickle.dumps((spec, tier, path, key)),
                              capture_output=True, timeout=30 * (MEASURE_RUNS + 2))
    except subprocess.TimeoutExpired:
        raise GenerationError(f"{spec.id}: building the generated tests took too long") from None
    if done.returncode == 3:
        raise GenerationError(done.stderr.decode("utf-8", "replace").strip())
    if done.returncode != 0:
        raise GenerationError(f"{spec.id}: building the generated tests failed: "
                              + done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:][0][:300]
                              if done.stderr.strip() else f"{spec.id}: the builder exited with {done.returncode}")


_GRADE_CHILD = ("import pickle, sys\n"
                "from graders import generated as g, sandbox\n"
                "code, spec, tier, probes = pickle.load(sys.stdin.buffer)\n"
                "sandbox._tier_cache.update(probes)  # what this machine allows, as the parent probed it\n"
                "try:\n"
                "    out = ('ok', sandbox.run(code, g.prepare(spec, tier), tier=tier))\n"
                "except g.GenerationError as e:\n"
                "    out = ('generation', str(e))\n"
                "sys.stdout.buffer.write(pickle.dumps(out))\n")
GRADE_CHILD_TIMEOUT_S = 30 * (MEASURE_RUNS + 2) + 4 * MAX_TIME_LIMIT_S  # a build, then a run at the limit


def grade(code: str, spec: CodeSpec, tier: str | None = None) -> GradeResult:
    """The verdict, graded where it suits the question (blocks, as `sandbox.run`): in this process
    without generated tests, in a short-lived one with them (`grade_in_child`), so that a long-running
    bot or worker never keeps their decoded tens of MB as its allocator's high-water mark."""
    if spec.generator is None:
        return sandbox.run(code, spec, tier)
    return grade_in_child(code, spec, tier)


def grade_in_child(code: str, spec: CodeSpec, tier: str | None = None) -> GradeResult:
    """`sandbox.run(code, prepare(spec))` in a short-lived process of our own (blocks, as `sandbox.run`).

    The generated tests' inputs and expected values (tens of MB of small objects once decoded) and
    the submission's answers on them are made, compared and dropped there, never in a long-running
    bot: freed, they still left their high-water mark behind after each grading (glibc keeps what a
    thread freed in that thread's arena, pymalloc keeps arenas a few survivors pin), and the soak's
    RSS grew by tens of MB over a few dozen graded runs with no object kept (see bench/soak.py).
    Raises GenerationError when the generated tests cannot be built; a grading process that fails
    otherwise is an internal_error verdict."""
    t0 = time.monotonic()
    chosen = tier or sandbox.detect_tier()

    def failed(message: str) -> GradeResult:
        skipped = tuple(TestResult(t.name, SKIPPED, 0.0, t.visible) for t in spec.tests)
        return GradeResult(INTERNAL_ERROR, 0, len(spec.tests), skipped, int((time.monotonic() - t0) * 1000),
                           f"The judge failed: {message}", chosen)

    try:
        done = subprocess.run([sys.executable, "-c", _GRADE_CHILD], input=pickle.dumps((code, spec, chosen, dict(sandbox._tier_cache))),
                              capture_output=True, timeout=GRADE_CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _log.error("%s: grading with the generated tests took over %.0f s", spec.id, GRADE_CHILD_TIMEOUT_S)
        return failed("grading with the generated tests took too long")
    errors = done.stderr.decode("utf-8", "replace").strip()
    if errors:  # the child's own log lines (a quarantined slot, a judge bug) belong in ours
        _log.warning("%s: the grading process said: %s", spec.id, errors[-2000:])
    outcome: Any = None
    if done.returncode == 0:
        with contextlib.suppress(pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
            outcome = pickle.loads(done.stdout)
    if isinstance(outcome, tuple) and len(outcome) == 2 and outcome[0] == "generation":
        raise GenerationError(str(outcome[1]))
    if not (isinstance(outcome, tuple) and len(outcome) == 2 and isinstance(outcome[1], GradeResult)):
        _log.error("%s: the grading process exited with %s and no verdict", spec.id, done.returncode)
        return failed(f"the grading process exited with {done.returncode}")
    return outcome[1]


def framed(args: Any, kwargs: Any) -> bytes:
    """A test's input as the sandbox's input pipe carries it (sandbox._frame's format)."""
    blob = marshal.dumps((tuple(args), dict(kwargs)))
    return len(blob).to_bytes(4, "big") + blob


def _opaque(x: Any) -> bool:
    if isinstance(x, cmp.Opaque):
        return True
    if isinstance(x, (list, tuple, set, frozenset)):
        return any(_opaque(i) for i in x)
    if isinstance(x, dict):
        return any(_opaque(k) or _opaque(v) for k, v in x.items())
    return False


def _private_folder() -> Path:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise GenerationError(f"cannot create the generated-tests cache {folder} ({e.strerror}); "
                              "set ONSITE_GENERATED_CACHE to a writable folder") from None
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o700)
    sandbox.keep_private(folder)
    return folder


def _read(path: Path, key: str) -> Generated | None:
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return None
    tests = tuple(TestCase(name, (), {}, expected, False, frame=frame) for name, frame, expected in data["cases"])
    return Generated(tests, float(data["reference_s"]), float(data["limit_s"]), str(data["built_at"]),
                     str(data["tier"]))


def _write(path: Path, key: str, gen: Generated) -> None:
    data = {"format": FORMAT, "key": key, "reference_s": gen.reference_s, "limit_s": gen.limit_s,
            "built_at": gen.built_at, "tier": gen.tier,
            "cases": [(t.name, t.frame, t.expected) for t in gen.tests]}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".building-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(marshal.dumps(data))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    qid = path.name.rsplit("-", 1)[0]
    for old in path.parent.glob(f"{qid}-*.marshal"):  # earlier versions of this question (not of "<qid>-more")
        if old != path and len(old.stem) == len(path.stem) and "-" not in old.stem[len(qid) + 1:]:
            with contextlib.suppress(OSError):
                old.unlink()


__all__ = ["FACTOR", "STARTUP_S", "Generated", "GenerationError", "build", "cache_dir", "grade_in_child",
           "load_or_build", "prepare"]
