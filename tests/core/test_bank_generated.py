"""The bank's rules for `second`, `slow` and `generated` (what `graders/generated.py` builds from)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.core.bank import Bank
from graders.spec import CodeSpec
from tests.core.test_bank import copy_bank, edit, only_error

GEN = {"seed": 3, "code": "def generate(seed):\n    return [{'name': 'big', 'args': [[1, 2], 3]}]\n"}
SLOW = "def count_pairs(nums, target):\n    return sum(1 for i in range(len(nums)) for j in range(i))\n"


def test_the_fields_load_and_reach_the_grader(tmp_path: Path) -> None:
    root = copy_bank(tmp_path)
    edit(root / "coding" / "pair-sum-count.yaml", generated=GEN, slow=SLOW, second=[SLOW, SLOW + "# 2\n"])
    bank = Bank.load(root)
    assert bank.errors == []
    q = bank.get("pair-sum-count")
    assert q.slow == (SLOW,) and len(q.second) == 2 and q.generated == GEN
    spec = CodeSpec.from_dict(q.to_dict())  # what the bot's grader port hands to the judge
    assert (spec.generator, spec.generator_seed) == (GEN["code"], 3)


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"generated": "def generate(seed): ..."}, "generated", "must be a mapping with code"),
    ({"generated": {"seed": 1}}, "generated.code", "is required"),
    ({"generated": {"code": "def make(seed):\n    return []\n"}}, "generated.code", "does not define the entry function generate()"),
    ({"generated": {"code": GEN["code"], "seed": -1}}, "generated.seed", "whole number"),
    ({"generated": {"code": GEN["code"], "size": 9}}, "generated.size", "unknown field"),
    ({"slow": []}, "slow", "one or more Python solutions"),
    ({"second": ["def other():\n    return 1\n"]}, "second[0]", "does not define the entry function count_pairs()"),
    ({"slow": "def count_pairs(:\n"}, "slow[0]", "is not valid Python"),
])
def test_bad_values_name_the_field(tmp_path: Path, changes: dict[str, object], field: str, reason: str) -> None:
    root = copy_bank(tmp_path)
    edit(root / "coding" / "pair-sum-count.yaml", **changes)
    name, got_field, got_reason = only_error(Bank.load(root))
    assert (name, got_field) == ("pair-sum-count.yaml", field) and reason in got_reason, got_reason


async def test_the_bots_grader_grades_against_the_generated_tests(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.app import PoolGrader
    from graders.pool import GraderPool

    monkeypatch.setenv("ONSITE_GENERATED_CACHE", str(tmp_path / "cache"))
    gen = {"seed": 5, "code": "import random\ndef generate(seed):\n    rng = random.Random(seed)\n"
                              "    nums = [rng.randint(-50, 50) for _ in range(300)]\n"
                              "    return [{'name': 'many', 'args': [nums, 7]}]\n"}
    root = copy_bank(tmp_path)
    edit(root / "coding" / "pair-sum-count.yaml", generated=gen)
    q = Bank.load(root).get("pair-sum-count")
    assert q.reference is not None
    only_small = "def count_pairs(nums, target):\n    if len(nums) > 100:\n        return -1\n" + \
        q.reference.split("def count_pairs(nums, target):\n", 1)[1]
    grader = PoolGrader(GraderPool(max_workers=1, tier="rlimit"))
    try:
        ok = await grader.grade(q, q.reference, key="a")
        bad = await grader.grade(q, only_small, key="b")
    finally:
        await grader.close()
    assert ok.verdict == "accepted" and ok.total == len(q.tests) + 1, ok
    assert bad.verdict == "wrong_answer" and bad.passed == len(q.tests), bad
    assert bad.message == f"Wrong answer on a hidden test (test {len(q.tests) + 1} of {len(q.tests) + 1})."


def test_a_prompt_that_states_a_complexity_needs_a_slow_solution(tmp_path: Path) -> None:
    root = copy_bank(tmp_path)
    path = root / "coding" / "pair-sum-count.yaml"
    data = yaml.safe_load(path.read_text())
    data["prompt"] += "\nAim for O(n log n) time."
    path.write_text(yaml.safe_dump(data))
    name, field, reason = only_error(Bank.load(root))
    assert (name, field) == ("pair-sum-count.yaml", "slow") and "O(n log n)" in reason
    data["prompt"] = data["prompt"].replace("O(n log n) time", "an error of O(h^2)")  # an error order, not a time
    path.write_text(yaml.safe_dump(data))
    assert Bank.load(root).errors == []
    data["prompt"] += " Aim for O(n)."
    data.update(slow=SLOW)  # a slow solution without inputs to make it slow
    path.write_text(yaml.safe_dump(data))
    assert only_error(Bank.load(root))[1] == "generated"


def test_every_question_of_the_real_bank_that_states_a_complexity_proves_it() -> None:
    bank = Bank.load(Path(__file__).resolve().parents[2] / "questions")
    assert bank.errors == []
    assert sum(1 for q in bank if q.slow) >= 40
