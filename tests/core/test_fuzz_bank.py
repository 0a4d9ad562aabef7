"""Bad input everywhere: random and hostile YAML for the question loader.

Decisions:
- Every example writes a fresh copy of the fixture bank plus one fuzzed file into a temp
  `questions/<track>/<id>.yaml` tree and calls `Bank.load`. It must not raise; the fuzzed file either
  loads or yields errors that name that file (and, for a mutated field, a field it can explain);
  every fixture question still loads.
- Fuzzed files come from four sources: one field of a valid question replaced by random data or
  deleted; a raw hostile YAML fragment spliced in as a field's value (tags, aliases, bad dates,
  numbers too large for Python, unbalanced brackets); random YAML documents; random bytes.
- Bombs are bounded, not just survived: alias bombs, deep nesting and recursive aliases get a
  named refusal, quickly (libyaml's composer recurses in C, so a deep file used to kill the process).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.bank import MAX_DEPTH, Bank, BankError
from tests.conftest import FIXTURE_BANK

FIXTURE_IDS = {p.stem for p in FIXTURE_BANK.rglob("*.yaml")}
SOURCES = {p.stem: (p.parent.name, yaml.safe_load(p.read_text())) for p in FIXTURE_BANK.rglob("*.yaml")}
EXAMPLES = int(os.environ.get("ONSITE_FUZZ_EXAMPLES", "60"))  # per test; raise it locally to dig
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
LOAD_BUDGET_S = 10.0  # generous for a shared CI machine; a bomb expanded would take minutes or never end

# fields whose change can make another field wrong (the error may name that one instead)
DEPENDENTS = {
    "track": None,  # another track's rules apply to every field
    "entry": {"starter", "reference", "wrong"},
    "kind": {"choices", "answer", "tolerance", "unit"},
    "compare": {"tolerance"},
    "choices": {"answer"},
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([10**30, -(10**400), 2**63]),
    st.floats(), st.text(max_size=20), st.sampled_from(["", " ", "\t", "x" * 300, "B", "easy", "coding"]),
)
data = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=4)
), max_leaves=20)

HOSTILE_FRAGMENTS = [
    "!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system", "!!binary 'not base64!'",
    "!!timestamp nope", "*undefined", "&a [*a]", "&a {k: *a}", "2026-13-45", "2026-02-30 25:61:00", "9" * 5000,
    "-" + "9" * 4400, "1e400", ".nan", ".inf", "[unbalanced", "{a: 1, a: 2}", "{? [1] : 2}", "{[1, 2]: x}",
    "'unterminated", '"\\ud800"', '"\\x00"', "|\n  block\n   bad indent", "@reserved", "`reserved", "%TAG",
    "!custom tag", "!!set {a, b}", "!!omap [a: 1]", "<<: *undefined", "[" * 200 + "]" * 200,
    "{" + ", ".join(f"k{i}: v" for i in range(500)) + "}", "&x " + "[" * 20 + "]" * 20,
]


@contextmanager
def bank_tree() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="onsite-bank-fuzz-"))
    try:
        shutil.copytree(FIXTURE_BANK, folder / "questions")
        yield folder / "questions"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load(folder: Path) -> Bank:
    started = time.monotonic()
    bank = Bank.load(folder)  # must not raise, whatever the files hold
    assert time.monotonic() - started < LOAD_BUDGET_S
    return bank


def errors_for(bank: Bank, path: Path) -> list[BankError]:
    return [e for e in bank.errors if e.file == str(path)]


def check(bank: Bank, path: Path) -> list[BankError]:
    """The shared promise: the fixture questions load, and the fuzzed file loads or is named in errors."""
    bad = errors_for(bank, path)
    others = [e for e in bank.errors if e not in bad]
    assert not others, others
    ids = {q.id for q in bank}
    assert FIXTURE_IDS - {path.stem} <= ids
    if not bad:
        assert path.stem in ids and bank.get(path.stem).source_path == str(path), f"{path} neither loaded nor reported"
    else:
        assert path.stem not in ids  # a file with an error is skipped whole
        for e in bad:
            assert str(path) in str(e) and e.reason.strip()
            assert "Traceback" not in e.reason and "object at 0x" not in e.reason
    return bad


def write(folder: Path, track: str, stem: str, content: str | bytes) -> Path:
    path = folder / track / f"{stem}.yaml"
    path.parent.mkdir(exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


def field_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            paths += field_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            paths += field_paths(v, (*prefix, i))
    return paths


def set_at(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> None:
    target = doc
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value


@FUZZ
@given(qid=st.sampled_from(sorted(SOURCES)), pick=st.integers(0, 10_000), value=data, delete=st.booleans())
def test_one_field_replaced_by_random_data_is_named_or_loads(qid: str, pick: int, value: Any, delete: bool) -> None:
    track, source = SOURCES[qid]
    doc = yaml.safe_load(yaml.safe_dump(source))
    paths = field_paths(doc)
    path_in_doc = paths[pick % len(paths)]
    set_at(doc, path_in_doc, value, delete)
    with bank_tree() as folder:
        path = write(folder, track, qid, yaml.safe_dump(doc, allow_unicode=True))
        bad = check(load(folder), path)
    top = str(path_in_doc[0])
    allowed = DEPENDENTS.get(top, set())
    for e in bad:
        root = e.field.split("[")[0].split(".")[0]
        if allowed is not None and e.field:
            assert root == top or root in allowed, (path_in_doc, e)


VALID_CHANGES: list[tuple[str, Any]] = [
    ("title", "A different title ✓"), ("difficulty", "hard"), ("difficulty", "medium"),
    ("topics", ["Regularisation", "bias variance", "arrays"]), ("hints", ["one", "two"]),
    ("explanation", "Because.\n\n```python\nx = 1\n```"), ("title", "x" * 120), ("prompt", "ünïcödé 🙂 `code`"),
]


@FUZZ
@given(qid=st.sampled_from(sorted(SOURCES)), change=st.sampled_from(VALID_CHANGES))
def test_a_valid_change_still_loads_with_the_new_value(qid: str, change: tuple[str, Any]) -> None:
    track, source = SOURCES[qid]
    key, value = change
    doc = {**source, key: value}
    with bank_tree() as folder:
        write(folder, track, qid, yaml.safe_dump(doc, allow_unicode=True))
        bank = load(folder)
        assert not bank.errors, bank.errors
        loaded = bank.get(qid)
    shown = loaded.topics if key == "topics" else getattr(loaded, key)
    expected = tuple(value) if isinstance(value, list) else value
    if key == "topics":
        expected = ("regularization", "bias-variance", "arrays")
    assert shown == expected


@FUZZ
@given(qid=st.sampled_from(sorted(SOURCES)), fragment=st.sampled_from(HOSTILE_FRAGMENTS), pick=st.integers(0, 100))
def test_a_hostile_yaml_fragment_in_any_field_is_named(qid: str, fragment: str, pick: int) -> None:
    track = SOURCES[qid][0]
    lines = (FIXTURE_BANK / track / f"{qid}.yaml").read_text().splitlines()
    top = [i for i, line in enumerate(lines) if line and not line[0].isspace() and ":" in line]
    at = top[pick % len(top)]
    key = lines[at].split(":", 1)[0]
    end = next((i for i in top if i > at), len(lines))
    indented = fragment.replace("\n", "\n  ")
    text = "\n".join([*lines[:at], f"{key}: {indented}", *lines[end:]]) + "\n"
    with bank_tree() as folder:
        path = write(folder, track, qid, text)
        bad = check(load(folder), path)
    assert bad or qid in FIXTURE_IDS


@FUZZ
@given(doc=data, track=st.sampled_from(["coding", "ml-theory", "behavioral"]))
def test_random_yaml_documents_are_named(doc: Any, track: str) -> None:
    with bank_tree() as folder:
        path = write(folder, track, "random-doc", yaml.safe_dump(doc, allow_unicode=True))
        assert check(load(folder), path)


@FUZZ
@given(blob=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_random_bytes_are_named(blob: bytes) -> None:
    with bank_tree() as folder:
        path = write(folder, "coding", "random-bytes", blob)
        assert check(load(folder), path)


def laughs(levels: int, width: int = 10) -> str:
    rows = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    rows += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(rows)


HOSTILE_FILES: list[tuple[str, str | bytes | None, str, str]] = [
    # (name, content, field the error names, words in the reason)
    ("billion-laughs", laughs(9) + "\n", "", "values once aliases are expanded"),
    ("laughs-as-the-id", None, "", "values once aliases are expanded"),
    ("deep-flow", "id: " + "[" * 100_000 + "]" * 100_000 + "\n", "", f"more than {MAX_DEPTH} levels"),
    ("deep-block", "- " * 20_000 + "x\n", "", f"more than {MAX_DEPTH} levels"),
    ("deep-by-aliases", "id: [" + ", ".join(["&a0 " + "[" * 20 + "]" * 20] + [
        f"&a{i} " + "[" * 20 + f"*a{i - 1}" + "]" * 20 for i in range(1, 60)]) + "]\n", "", f"more than {MAX_DEPTH}"),
    ("recursive-alias", "id: &a [*a]\n", "", "recursive alias"),
    ("python-tag", "id: !!python/object/apply:os.system ['echo pwned']\n", "", "not valid YAML"),
    ("duplicate-keys", "id: duplicate-keys\nid: again\n", "", "duplicate key 'id'"),
    ("list-as-key", "? [1, 2]\n: x\n", "", "a list cannot be a key"),
    ("bad-date", "id: 2026-13-45\n", "", "line 1, column 5: cannot read '2026-13-45' as timestamp"),
    ("bad-explicit-date", "id: !!timestamp nope\n", "", "cannot read 'nope' as timestamp"),
    ("bad-explicit-bool", "id: !!bool maybe\n", "", "cannot read 'maybe' as bool"),
    ("huge-int", "id: " + "9" * 5000 + "\n", "", "column 5: cannot read '99999"),
    ("not-utf8", b"id: caf\xe9\n", "", "is not UTF-8"),
    ("nul-byte", b"id: a\x00b\n", "", "not valid YAML"),
    ("syntax", "id: [unbalanced\n", "", "not valid YAML at line"),
    ("two-documents", "id: a\n---\nid: b\n", "", "not valid YAML"),
    ("mixed-test-keys", None, "tests[0].1", "unknown field"),
    ("huge-answer", None, "answer", "a number of 401 digits"),
]


def _mixed_test_keys() -> str:
    doc = yaml.safe_load((FIXTURE_BANK / "coding" / "pair-sum-count.yaml").read_text())
    doc["id"] = "mixed-test-keys"
    doc["tests"][0] = {1: "x", "other": "y", "args": [], "expected": 0}
    return yaml.safe_dump(doc)


def _laughs_as_the_id() -> str:
    """A whole question whose id is the bomb: the id's error message would repr a billion strings."""
    doc = yaml.safe_load((FIXTURE_BANK / "ml-theory" / "overfit-first-step.yaml").read_text())
    doc["id"] = "PLACEHOLDER"
    bomb = "[" + ", ".join(["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                           + [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]) + "]"
    return yaml.safe_dump(doc, sort_keys=False).replace("PLACEHOLDER", bomb)


def _huge_answer() -> str:
    doc = yaml.safe_load((FIXTURE_BANK / "ml-theory" / "precision-from-counts.yaml").read_text())
    doc["id"] = "huge-answer"
    doc["answer"] = 10**400
    return yaml.safe_dump(doc)


@pytest.mark.parametrize("name, content, field, reason", HOSTILE_FILES, ids=[h[0] for h in HOSTILE_FILES])
def test_hostile_files_are_refused_by_name_and_the_rest_loads(name: str, content: Any, field: str, reason: str) -> None:
    track = "coding"
    if name == "mixed-test-keys":
        content = _mixed_test_keys()
    elif name == "laughs-as-the-id":
        content, track = _laughs_as_the_id(), "ml-theory"
    elif name == "huge-answer":
        content, track = _huge_answer(), "ml-theory"
    with bank_tree() as folder:
        path = write(folder, track, name, content)
        bad = check(load(folder), path)
    assert len(bad) == 1 and bad[0].field == field and reason in bad[0].reason, bad


@pytest.mark.parametrize("level", ["flow", "block"])
def test_the_parsers_own_depth_refusal_reads_like_ours(level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML 6.0.4's libyaml refuses deep input itself, before our count sees it; 6.0.3's does not.

    Whichever PyYAML is installed, a parser that stops on depth gives the loader's one message."""
    real_parse = yaml.parse

    def parse(stream: Any, Loader: Any = yaml.SafeLoader) -> Iterator[Any]:
        events = real_parse(stream, Loader=Loader)
        if "deep-by-parser" not in str(stream):
            yield from events
            return
        yield next(events)  # the stream start, which libyaml yields before scanning ahead
        mark = yaml.Mark("<unicode string>", 1003, 0, 1003, None, None)
        raise yaml.scanner.ScannerError(f"while increasing {level} level", mark, "exceeded maximum nesting depth", mark)

    monkeypatch.setattr(yaml, "parse", parse)
    with bank_tree() as folder:
        path = write(folder, "coding", "deep-by-parser", "id: deep-by-parser\nx: [[[1]]]\n")
        bad = check(load(folder), path)
    assert len(bad) == 1 and bad[0].field == "" and bad[0].reason == f"nests more than {MAX_DEPTH} levels deep", bad


def test_aliases_within_bounds_still_load() -> None:
    """Refusing bombs must not refuse YAML's ordinary reuse of a value."""
    text = (FIXTURE_BANK / "ml-theory" / "overfit-first-step.yaml").read_text()
    text = text.replace("topics: [bias-variance, regularisation]", "topics: &t [bias-variance, regularisation]")
    text += "hints: *t\n"
    with bank_tree() as folder:
        path = write(folder, "ml-theory", "overfit-first-step", text)
        bank = load(folder)
        check(bank, path)
        assert not bank.errors, bank.errors
    assert bank.get("overfit-first-step").hints == ("bias-variance", "regularisation")
