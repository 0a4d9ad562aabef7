from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.core.bank import Bank
from bot.core.errors import NotFound

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bank"
REPO = Path(__file__).resolve().parents[2]


def copy_bank(tmp_path: Path) -> Path:
    target = tmp_path / "bank"
    shutil.copytree(FIXTURES, target)
    return target


def edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def only_error(bank: Bank) -> tuple[str, str, str]:
    assert len(bank.errors) == 1, bank.errors
    e = bank.errors[0]
    return Path(e.file).name, e.field, e.reason


def test_fixture_bank_loads_every_track(bank: Bank) -> None:
    assert len(bank) == 6
    assert {q.track for q in bank} == {"coding", "ml-coding", "ml-theory", "system-design", "behavioral"}
    q = bank.get("pair-sum-count")
    assert q.entry == "count_pairs" and len(q.tests) == 8 and len(q.visible_tests) == 2
    assert q.tests[0].args == ([1, 2, 3, 4], 5) and q.tests[0].expected == 2
    assert bank.get("precision-from-counts").answer == 0.8
    assert bank.get("overfit-first-step").answer == "B"
    assert bank.get("feed-ranking-lite").rubric[0].point == "Requirements and scale"


def test_the_real_bank_is_valid() -> None:
    real = Bank.load(REPO / "questions")
    assert real.errors == []
    counts = real.stats()
    assert all(sum(counts[t].values()) >= 3 for t in counts), counts


@pytest.mark.parametrize(
    ("file", "changes", "field", "reason_part"),
    [
        ("coding/pair-sum-count.yaml", {"entry": None}, "entry", "is required for coding"),
        ("coding/pair-sum-count.yaml", {"hint": ["x"]}, "hint", "is not a field"),
        ("coding/pair-sum-count.yaml", {"difficulty": "trivial"}, "difficulty", "easy, medium, hard"),
        ("coding/pair-sum-count.yaml", {"id": "other-id"}, "id", "must equal the file name"),
        ("coding/pair-sum-count.yaml", {"track": "ml-coding"}, "track", "folder"),
        ("coding/pair-sum-count.yaml", {"compare": "fuzzy"}, "compare", "must be one of"),
        ("coding/pair-sum-count.yaml", {"reference": "def count_pairs(:\n"}, "reference", "not valid Python"),
        ("coding/pair-sum-count.yaml", {"reference": "def other():\n  pass\n"}, "reference", "count_pairs"),
        ("coding/pair-sum-count.yaml", {"tests": [{"args": [[1], 1], "expected": 0}]}, "tests", "at least 8"),
        ("coding/pair-sum-count.yaml", {"tolerance": 0.1}, "tolerance", "only applies"),
        ("coding/pair-sum-count.yaml", {"topics": []}, "topics", "at least 1"),
        ("ml-theory/overfit-first-step.yaml", {"answer": "D"}, "answer", "A, B, C"),
        ("ml-theory/overfit-first-step.yaml", {"kind": "essay"}, "kind", "choice or numeric"),
        ("ml-theory/precision-from-counts.yaml", {"answer": "0.8"}, "answer", "must be a number"),
        ("ml-theory/precision-from-counts.yaml", {"explanation": None}, "explanation", "is required"),
        ("system-design/feed-ranking-lite.yaml", {"rubric": [{"point": "x", "description": "y"}]}, "rubric", "at least 3"),
        ("behavioral/conflict-lite.yaml", {"key_decisions": ["x"]}, "key_decisions", "is not a field"),
    ],
)
def test_each_bad_field_names_file_field_and_reason(
    tmp_path: Path, file: str, changes: dict[str, object], field: str, reason_part: str
) -> None:
    root = copy_bank(tmp_path)
    edit(root / file, **changes)
    bank = Bank.load(root)
    name, got_field, reason = only_error(bank)
    assert name == Path(file).name
    assert got_field == field
    assert reason_part in reason
    assert len(bank) == 5  # the bad file is skipped, the others still load


def test_test_case_fields_are_checked(tmp_path: Path) -> None:
    root = copy_bank(tmp_path)
    path = root / "coding" / "pair-sum-count.yaml"
    data = yaml.safe_load(path.read_text())
    data["tests"][3]["visibel"] = True
    path.write_text(yaml.safe_dump(data))
    assert only_error(Bank.load(root))[1:] == ("tests[3].visibel", "unknown field (allowed: name, args, kwargs, expected, visible)")
    data["tests"][3].pop("visibel")
    for t in data["tests"]:
        t["visible"] = True
    path.write_text(yaml.safe_dump(data))
    assert "hidden test" in only_error(Bank.load(root))[2]


def test_invalid_yaml_duplicate_keys_and_non_plain_data(tmp_path: Path) -> None:
    root = copy_bank(tmp_path)
    (root / "coding" / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n")
    text = (root / "ml-theory" / "overfit-first-step.yaml").read_text()
    (root / "ml-theory" / "overfit-first-step.yaml").write_text(text + "answer: C\n")
    bank = Bank.load(root)
    errors = {Path(e.file).name: e.reason for e in bank.errors}
    assert errors["broken.yaml"].startswith("is not valid YAML at line")
    assert "duplicate key 'answer'" in errors["overfit-first-step.yaml"]
    path = root / "coding" / "pair-sum-count.yaml"
    path.write_text(path.read_text().replace("expected: 0, visible: true}", "expected: 2026-01-01, visible: true}"))
    assert "plain data" in {Path(e.file).name: e.reason for e in Bank.load(root).errors}["pair-sum-count.yaml"]


def test_an_exponent_yaml_reads_as_text_is_refused_where_it_is_written(tmp_path: Path) -> None:
    """`1.0e6` is text to PyYAML (YAML 1.1 wants `1.0e+6`): in a test it would silently grade the
    reference and members on a string; the loader names the value and both ways to write it."""
    root = copy_bank(tmp_path)
    path = root / "ml-coding" / "mean-center.yaml"
    path.write_text(path.read_text().replace("1.0e+6, 1.0]", "1.0e6, 1.0]", 1))
    assert only_error(Bank.load(root))[2].endswith(
        "'1.0e6' is read as text, not a number: write 1.0e+6 for the number, or quote it for text")
    path.write_text(path.read_text().replace("1.0e6, 1.0]", "2e6, 1.0]", 1))
    assert "'2e6' is read as text, not a number: write 2.0e+6 for the number" in only_error(Bank.load(root))[2]
    path.write_text(path.read_text().replace("2e6, 1.0]", "'1e6', 1.0]", 1))  # quoted: text on purpose, allowed
    assert Bank.load(root).errors == []


def test_layout_errors(tmp_path: Path) -> None:
    root = copy_bank(tmp_path)
    (root / "loose.yaml").write_text("id: loose\n")
    (root / "puzzles").mkdir()
    (root / "puzzles" / "p.yaml").write_text("id: p\n")
    shutil.copy(root / "coding" / "pair-sum-count.yaml", root / "coding" / "pair-sum-count.yml")
    reasons = sorted(e.reason for e in Bank.load(root).errors)
    assert any("track folder" in r for r in reasons)
    assert any("'puzzles' is not a track" in r for r in reasons)
    assert any("must end in .yaml" in r for r in reasons)


def test_lookup_suggests_close_ids(bank: Bank) -> None:
    with pytest.raises(NotFound, match="Did you mean pair-sum-count"):
        bank.get("pair-sum-cont")
    assert bank.get(" Pair-Sum-Count ").id == "pair-sum-count"
    assert bank.ids_starting("pre") == ["precision-from-counts"]
    assert bank.stats()["ml-theory"]["easy"] == 2


def test_to_dict_round_trips_through_the_parser(bank: Bank) -> None:
    from bot.core.bank import parse_question

    for q in bank:
        again = parse_question(q.to_dict())
        assert again == q


def test_topics_get_one_spelling() -> None:
    from bot.core.bank import canonical_topic

    assert canonical_topic("Batch Normalisation") == "batch-normalization"
    assert canonical_topic("optimisation") == canonical_topic("optimization") == "optimization"
    assert canonical_topic("A/B testing") == canonical_topic("a-b-testing") == "ab-testing"
    assert canonical_topic("unsupervised learning") == "unsupervised-learning"
    real = Bank.load(REPO / "questions")
    topics = {t for q in real for t in q.topics}
    assert "optimisation" not in topics and "a/b testing" not in topics
    assert all(t == canonical_topic(t) for t in topics)
