"""Generated tests: the generator runs in the sandbox, the reference gives the expected values, the
limit is calibrated from the reference's time, the cache is keyed by content and unreadable from a
submission; `selftest` proves reference, second, wrong and slow solutions. Real sandboxes, both tiers."""

from __future__ import annotations

import marshal
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from graders import generated, sandbox
from graders.__main__ import main as graders_main
from graders.spec import CodeSpec, TestCase

GENERATOR = """
import os, random
def generate(seed):
    rng = random.Random(seed)
    big = [rng.randint(0, 10**6) for _ in range(20000)]
    return [
        {"name": "20000 random", "args": [big]},
        {"name": "where it ran", "args": [[os.getuid(), os.getuid()]]},
    ]
"""
REFERENCE = "def distinct(xs):\n    return len(set(xs))\n"
SECOND = "def distinct(xs):\n    s = sorted(xs)\n    return sum(1 for i, x in enumerate(s) if i == 0 or s[i - 1] != x)\n"
SLOW = ("def distinct(xs):\n    seen = []\n    for x in xs:\n        if x not in seen:\n            seen.append(x)\n"
        "    return len(seen)\n")
WRONG_ON_LARGE = "def distinct(xs):\n    return len(set(xs)) if len(xs) < 100 else len(xs)\n"


def question(**extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": "count-distinct", "track": "coding", "title": "Count distinct", "difficulty": "easy",
        "topics": ["hashing"], "prompt": "Count the distinct values in O(n).", "entry": "distinct",
        "starter": "def distinct(xs):\n    ...\n", "time_limit_s": 0.5,
        "tests": [{"name": f"t{n}", "args": [[*range(n), 0]], "expected": max(n, 1), "visible": n == 0}
                  for n in range(8)],
        "reference": REFERENCE, "second": SECOND, "slow": SLOW, "wrong": [WRONG_ON_LARGE],
        "generated": {"seed": 11, "code": GENERATOR},
    }
    d.update(extra)
    return d


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "generated-cache"
    monkeypatch.setenv("ONSITE_GENERATED_CACHE", str(folder))
    return folder


def test_expected_values_come_from_the_reference_run_in_the_sandbox(tier: str, cache: Path) -> None:
    spec = CodeSpec.from_dict(question())
    gen = generated.load_or_build(spec, tier)
    names = [t.name for t in gen.tests]
    assert names == ["generated: 20000 random", "generated: where it ran"]
    assert all(not t.visible for t in gen.tests)  # generated inputs are hidden
    big, where = gen.tests
    def inputs(t: TestCase) -> tuple[Any, ...]:  # the judge keeps them framed for the pipe
        assert t.frame is not None and int.from_bytes(t.frame[:4], "big") == len(t.frame) - 4
        args, kwargs = marshal.loads(t.frame[4:])
        assert kwargs == {}
        return tuple(args)

    assert big.expected == len(set(inputs(big)[0]))  # the reference's answer
    uid = inputs(where)[0][0]
    if os.geteuid() == 0:  # the generator ran as a sandbox slot uid, not as the judge
        assert sandbox.SLOT_UID_BASE <= uid < sandbox.SLOT_UID_BASE + sandbox.SLOT_COUNT
    # the limit: the question's own limit as a floor, else startup + FACTOR x the reference's time
    assert gen.limit_s == round(max(0.5, generated.STARTUP_S + generated.FACTOR * gen.reference_s), 2)
    files = list(cache.glob("count-distinct-*.marshal"))
    assert len(files) == 1 and stat.S_IMODE(cache.stat().st_mode) == 0o700


def test_the_cache_is_reused_then_rebuilt_when_the_reference_changes(tier: str, cache: Path) -> None:
    spec = CodeSpec.from_dict(question())
    first = generated.load_or_build(spec, tier)
    (path,) = cache.glob("count-distinct-*.marshal")
    stamp = path.stat().st_mtime_ns
    again = generated.load_or_build(spec, tier)  # from the file: not built again
    assert path.stat().st_mtime_ns == stamp and again.tests == first.tests and again.limit_s == first.limit_s
    changed = CodeSpec.from_dict(question(reference=REFERENCE + "# v2\n"))
    generated.load_or_build(changed, tier)
    (new_path,) = cache.glob("count-distinct-*.marshal")  # the old version is gone
    assert new_path != path


def test_a_submission_cannot_read_the_cached_expected_values(tier: str, cache: Path) -> None:
    if tier == "rlimit" and os.geteuid() != 0:
        pytest.skip("the rlimit tier without root runs as the judge's own uid (refused in production)")
    spec = generated.prepare(CodeSpec.from_dict(question()), tier)
    (path,) = cache.glob("*.marshal")
    spy = ("import os\n"
           "def distinct(xs):\n"
           f"    for p in ({str(path)!r}, {str(cache)!r}):\n"
           "        try:\n"
           "            with open(p, 'rb') as f: return 'READ ' + f.read(64).hex()\n"
           "        except OSError as e: pass\n"
           "        try: return 'LISTED %s' % os.listdir(p)\n"
           "        except OSError: pass\n"
           "    return len(set(xs))\n")
    r = sandbox.run(spy, spec, tier=tier)
    assert r.verdict == "accepted", r.message  # it never found the file: it fell through to the honest answer
    assert path.read_bytes()  # and the file is there on the host


def test_selftest_proves_reference_second_wrong_and_slow(tier: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    bank = tmp_path / "bank" / "coding"
    bank.mkdir(parents=True)
    (bank / "count-distinct.yaml").write_text(yaml.safe_dump(question()))
    assert graders_main(["selftest", str(tmp_path / "bank"), "--tier", tier]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "selftest: 1 code questions, 4 runs, 0 failures" in out
    # a slow solution that is in fact fast enough, and a second solution that is wrong, both fail it
    (bank / "count-distinct.yaml").write_text(yaml.safe_dump(question(slow=REFERENCE, second=WRONG_ON_LARGE)))
    assert graders_main(["selftest", str(tmp_path / "bank"), "--tier", tier]) == 1
    out = capsys.readouterr().out
    assert "slow[1] got accepted, not time_limit" in out and "second[1] got wrong_answer" in out


def test_a_broken_generator_is_a_clear_error(tier: str) -> None:
    for code, why in (("def generate(seed):\n    return 5\n", "must return a non-empty list of cases"),
                      ("def generate(seed):\n    raise ValueError('no')\n", "generate(11) failed"),
                      ("def generate(seed):\n    return [{'args': [1], 'oops': 2}]\n", "must be a mapping of name, args")):
        with pytest.raises(generated.GenerationError, match=re.escape(why)):
            generated.build(CodeSpec.from_dict(question(generated={"seed": 11, "code": code})), tier)
