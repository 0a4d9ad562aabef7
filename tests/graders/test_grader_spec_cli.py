"""Question parsing and the CLI contract (check --json, selftest exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graders.spec import CodeSpec, SpecError, load_spec

FIX = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "graders", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_load_by_path_and_defaults() -> None:
    spec = load_spec(str(FIX / "two_sum.yaml"))
    assert spec.entry == "two_sum" and spec.compare == "exact" and spec.memory_mb == 256
    assert spec.tests[0].visible and not spec.tests[2].visible
    assert spec.tests[2].name == "test 3"
    assert len(spec.wrong) == 2 and spec.reference


def test_load_by_id_from_a_bank(tmp_path: Path) -> None:
    (tmp_path / "coding").mkdir()
    (tmp_path / "coding" / "two_sum.yaml").write_text((FIX / "two_sum.yaml").read_text())
    assert load_spec("two_sum", bank_dir=tmp_path).id == "two_sum"
    with pytest.raises(SpecError, match="no question"):
        load_spec("nope", bank_dir=tmp_path)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"entry": "not an ident"}, "entry"),
        ({"compare": "fuzzy"}, "compare"),
        ({"tests": []}, "tests"),
        ({"tests": [{"args": [1]}]}, "expected"),
        ({"tests": [{"args": 1, "expected": 1}]}, "args"),
        ({"time_limit_s": 0}, "time_limit_s"),
        ({"memory_mb": 10}, "memory_mb"),
        ({"wrong": [1]}, "wrong"),
    ],
)
def test_bad_fields_are_named(patch: dict[str, object], field: str) -> None:
    d: dict[str, object] = {"id": "q", "entry": "f", "tests": [{"args": [], "expected": 1}]}
    d.update(patch)
    with pytest.raises(SpecError, match=field):
        CodeSpec.from_dict(d)


def test_check_json_contract(tmp_path: Path) -> None:
    sub = tmp_path / "s.py"
    sub.write_text("def two_sum(nums, target):\n    print('hi')\n    return [0, 1]\n")
    p = cli("check", str(sub), "--question", str(FIX / "two_sum.yaml"), "--json")
    assert p.returncode == 1, p.stderr
    d = json.loads(p.stdout)
    assert {"verdict", "passed", "total", "tests", "time_ms", "message", "tier", "stdout", "stderr"} <= set(d)
    assert d["verdict"] == "wrong_answer" and d["passed"] == 2 and d["total"] == 5
    failing = d["tests"][1]
    assert failing["visible"] and failing["expected"] == [1, 2] and failing["got"] == [0, 1]
    assert failing["input"] == [[3, 2, 4], 6]
    assert "expected" not in d["tests"][2]  # hidden
    assert d["stdout"].startswith("hi\n")


def test_selftest_on_fixtures_passes() -> None:
    p = cli("selftest", str(FIX))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "3 code questions" in p.stdout and "0 failures" in p.stdout


def test_selftest_reports_bad_files_and_accepted_wrong_solutions(tmp_path: Path) -> None:
    (tmp_path / "coding").mkdir()
    (tmp_path / "coding" / "broken.yaml").write_text("id: [unclosed\n")
    (tmp_path / "coding" / "weak.yaml").write_text(
        "id: weak\ntrack: coding\nentry: f\ntests: [{args: [1], expected: 1}]\n"
        'reference: "def f(x):\\n    return x\\n"\nwrong: "def f(x):\\n    return 1\\n"\n'
    )
    (tmp_path / "theory.yaml").write_text((FIX / "theory.yaml").read_text())
    p = cli("selftest", str(tmp_path))
    assert p.returncode == 1
    assert "FAIL" in p.stdout and "broken.yaml" in p.stdout
    assert "wrong[1] was accepted" in p.stdout


def test_selftest_in_parallel_reports_what_one_at_a_time_does_in_the_same_order(tmp_path: Path) -> None:
    """`--jobs` runs a question's solutions in sandboxes at once; the verdicts, and the order they are
    printed in, are those of one run at a time."""
    (tmp_path / "coding").mkdir()
    for name, wrong in (("a-weak", "return x"), ("b-fine", "return -x"), ("c-weak", "return x")):  # -x: refused
        (tmp_path / "coding" / f"{name}.yaml").write_text(
            f"id: {name}\ntrack: coding\nentry: f\ntests: [{{args: [1], expected: 1}}, {{args: [2], expected: 2}}]\n"
            'reference: "def f(x):\\n    return x\\n"\nsecond: ["def f(x):\\n    return -x\\n"]\n'
            f'wrong: ["def f(x):\\n    {wrong}\\n", "def f(x):\\n    return 0\\n"]\n')
    serial, parallel = cli("selftest", str(tmp_path), "--jobs", "1"), cli("selftest", str(tmp_path), "--jobs", "3")
    assert serial.returncode == parallel.returncode == 1
    assert serial.stdout == parallel.stdout, (serial.stdout, parallel.stdout)
    fails = [line.rsplit("/", 1)[1] for line in serial.stdout.splitlines() if line.startswith("FAIL")]
    second = "second[1] got wrong_answer: Wrong answer on a hidden test (test 1 of 2)."
    accepted = "wrong[1] was accepted; add a test that rejects it"
    assert fails == [f"a-weak.yaml: {second}", f"a-weak.yaml: {accepted}", f"b-fine.yaml: {second}",
                     f"c-weak.yaml: {second}", f"c-weak.yaml: {accepted}"], serial.stdout
    assert "3 code questions, 12 runs, 5 failures" in serial.stdout
    assert "must be a whole number from 1" in cli("selftest", str(tmp_path), "--jobs", "0").stderr


def test_selftest_with_no_code_questions_passes(tmp_path: Path) -> None:
    (tmp_path / "theory.yaml").write_text((FIX / "theory.yaml").read_text())
    p = cli("selftest", str(tmp_path))
    assert p.returncode == 0
    assert "0 code questions" in p.stdout
