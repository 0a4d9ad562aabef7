"""What a code question asks of a submission: entry point, tests, comparison rule and limits.

The grader reads question YAML itself (it never imports ``bot``); it checks only the fields it needs
and raises ``SpecError`` (a ``ValueError``) naming the field. Test data must be plain YAML data
(null, bool, int, float, str, lists, mappings; ``!!set`` and ``!!binary`` too), because it is shipped
into the sandbox with ``marshal`` and compared against decoded JSON.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CODE_TRACKS = frozenset({"coding", "ml-coding", "sql"})
SQL_TRACK = "sql"
COMPARE_MODES = frozenset({"exact", "float", "unordered", "unordered_float"})
DEFAULT_TIME_LIMIT_S = 2.0
DEFAULT_MEMORY_MB = 256
MAX_TIME_LIMIT_S = 30.0
MIN_MEMORY_MB = 64
MAX_MEMORY_MB = 2048


class SpecError(ValueError):
    """A question file the grader cannot use; the message names the file and field."""


@dataclass(frozen=True)
class TestCase:
    """One call of the entry point. Only ``args``/``kwargs`` ever enter the sandbox."""

    __test__ = False  # not a pytest class

    name: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    expected: Any
    visible: bool = False
    # generated tests: the input already framed for the pipe (length + marshal of (args, kwargs)), so
    # the judge's process holds one bytes object per test, not millions of small Python objects
    frame: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CodeSpec:
    """Everything the judge needs to grade one code question."""

    id: str
    entry: str
    tests: tuple[TestCase, ...]
    compare: str = "exact"
    tolerance: float = 1e-6
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    track: str = "coding"
    reference: str | None = None
    wrong: tuple[str, ...] = field(default=())
    # issue 18: `second` correct solutions (accepted), `slow` ones (must get time_limit), and tests
    # made by a seeded generator (graders/generated.py adds them, hidden, with a calibrated limit)
    second: tuple[str, ...] = field(default=())
    slow: tuple[str, ...] = field(default=())
    generator: str | None = None
    generator_seed: int = 0
    language: str = "python"  # "sql": every solution is a query, run by graders/sql.py's program

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CodeSpec:
        """Build from a parsed question mapping; raises SpecError naming the bad field."""
        if not isinstance(d, Mapping):
            raise SpecError("question: expected a mapping at the top level")
        qid = d.get("id")
        if not isinstance(qid, str) or not qid:
            raise SpecError("id: required, a non-empty string")
        track = d.get("track", "coding")
        if not isinstance(track, str):
            raise SpecError(f"{qid}: track: must be a string")
        if track == SQL_TRACK:
            d = _sql_as_code(d, qid)
        entry = d.get("entry")
        if not isinstance(entry, str) or not entry.isidentifier():
            raise SpecError(f"{qid}: entry: required, a Python identifier (the function name)")
        compare = d.get("compare", "exact")
        if compare not in COMPARE_MODES:
            raise SpecError(f"{qid}: compare: must be one of {sorted(COMPARE_MODES)}, got {compare!r}")
        tolerance = _number(d, "tolerance", 1e-6, qid)
        if not (0 <= tolerance < 1):
            raise SpecError(f"{qid}: tolerance: must be in [0, 1)")
        time_limit = _number(d, "time_limit_s", DEFAULT_TIME_LIMIT_S, qid)
        if not (0 < time_limit <= MAX_TIME_LIMIT_S):
            raise SpecError(f"{qid}: time_limit_s: must be in (0, {MAX_TIME_LIMIT_S}]")
        memory = d.get("memory_mb", DEFAULT_MEMORY_MB)
        if isinstance(memory, bool) or not isinstance(memory, int) or not (
            MIN_MEMORY_MB <= memory <= MAX_MEMORY_MB
        ):
            raise SpecError(f"{qid}: memory_mb: must be an integer in [{MIN_MEMORY_MB}, {MAX_MEMORY_MB}]")
        raw_tests = d.get("tests")
        if not isinstance(raw_tests, list) or not raw_tests:
            raise SpecError(f"{qid}: tests: required, a non-empty list")
        tests = []
        seen: set[str] = set()
        for n, t in enumerate(raw_tests, 1):
            where = f"{qid}: tests[{n}]"
            if not isinstance(t, Mapping):
                raise SpecError(f"{where}: must be a mapping with args and expected")
            name = t.get("name", f"test {n}")
            if not isinstance(name, str) or not name:
                raise SpecError(f"{where}.name: must be a non-empty string")
            if name in seen:
                raise SpecError(f"{where}.name: duplicate test name {name!r}")
            seen.add(name)
            args = t.get("args", [])
            if not isinstance(args, list):
                raise SpecError(f"{where}.args: must be a list of positional arguments")
            kwargs = t.get("kwargs", {}) or {}
            if not isinstance(kwargs, Mapping) or not all(
                isinstance(k, str) and k.isidentifier() for k in kwargs
            ):
                raise SpecError(f"{where}.kwargs: must be a mapping from argument names to values")
            if "expected" not in t:
                raise SpecError(f"{where}.expected: required")
            visible = t.get("visible", False)
            if not isinstance(visible, bool):
                raise SpecError(f"{where}.visible: must be true or false")
            for label, value in (("args", args), ("kwargs", kwargs), ("expected", t["expected"])):
                problem = _plain_problem(value)
                if problem:
                    raise SpecError(f"{where}.{label}: not plain data ({problem})")
            tests.append(TestCase(name, tuple(args), dict(kwargs), t["expected"], visible))
        reference = d.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise SpecError(f"{qid}: reference: must be a string of Python source")
        wrong_raw = _sources(d, "wrong", qid)
        generated = d.get("generated")
        generator, seed = None, 0
        if generated is not None:
            if not isinstance(generated, Mapping) or not isinstance(generated.get("code"), str):
                raise SpecError(f"{qid}: generated: must be a mapping with code (Python defining generate(seed))")
            generator = generated["code"]
            seed = generated.get("seed", 0)
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise SpecError(f"{qid}: generated.seed: must be an integer")
        return cls(
            id=qid,
            entry=entry,
            tests=tuple(tests),
            compare=compare,
            tolerance=float(tolerance),
            time_limit_s=float(time_limit),
            memory_mb=memory,
            track=track,
            reference=reference,
            wrong=wrong_raw,
            second=_sources(d, "second", qid),
            slow=_sources(d, "slow", qid),
            generator=generator,
            generator_seed=seed,
            language="sql" if track == SQL_TRACK else "python",
        )


def _sql_as_code(d: Mapping[str, Any], qid: str) -> dict[str, Any]:
    """A SQL question as the code question the judge runs: entry run_query(schema, data), one test per
    dataset, rows compared in order (`ordered: true`) or as a multiset."""
    from .sql import ENTRY

    schema = d.get("schema")
    if not isinstance(schema, str) or not schema.strip():
        raise SpecError(f"{qid}: schema: required, the CREATE TABLE statements")
    raw_tests = d.get("tests")
    if not isinstance(raw_tests, list) or not raw_tests:
        raise SpecError(f"{qid}: tests: required, a non-empty list")
    tests = []
    for n, t in enumerate(raw_tests, 1):
        if not isinstance(t, Mapping) or not isinstance(t.get("data", ""), str):
            raise SpecError(f"{qid}: tests[{n}]: must be a mapping with data (INSERT statements) and expected rows")
        test = {k: v for k, v in t.items() if k != "data"}
        test["args"] = [schema, t.get("data", "")]
        tests.append(test)
    ordered = d.get("ordered", False)
    if not isinstance(ordered, bool):
        raise SpecError(f"{qid}: ordered: must be true or false")
    floats = "tolerance" in d
    compare = ("float" if floats else "exact") if ordered else ("unordered_float" if floats else "unordered")
    return {**d, "entry": ENTRY, "tests": tests, "compare": compare}


def _sources(d: Mapping[str, Any], key: str, qid: str) -> tuple[str, ...]:
    """A field holding one Python source or a list of them."""
    raw = d.get(key, ())
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, (list, tuple)) or not all(isinstance(w, str) for w in raw):
        raise SpecError(f"{qid}: {key}: must be a string or a list of strings of Python source")
    return tuple(raw)


def _number(d: Mapping[str, Any], key: str, default: float, qid: str) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{qid}: {key}: must be a finite number")
    return float(value)


def _plain_problem(value: Any, depth: int = 0) -> str | None:
    if depth > 50:
        return "nested too deeply"
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            p = _plain_problem(item, depth + 1)
            if p:
                return p
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            p = _plain_problem(k, depth + 1) or _plain_problem(v, depth + 1)
            if p:
                return p
        return None
    return f"{type(value).__name__} values are not supported"


def is_code_question(d: Any) -> bool:
    """Whether a parsed question mapping is graded by running code."""
    return isinstance(d, Mapping) and (d.get("track") in CODE_TRACKS or "entry" in d)


def read_question(path: Path) -> Any:
    """Parse one YAML file safely; raises SpecError with the file name on bad YAML."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read question: {e}") from e


def default_bank_dir() -> Path:
    """The repository's questions/ directory, or ./questions when installed elsewhere."""
    repo = Path(__file__).resolve().parents[1] / "questions"
    if repo.is_dir():
        return repo
    return Path(os.getcwd()) / "questions"


def load_spec(id_or_path: str, bank_dir: Path | None = None) -> CodeSpec:
    """Load a spec from a .yaml path, or by id as <bank>/*/<id>.yaml."""
    p = Path(id_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise SpecError(f"{p}: no such question file")
        path = p
    else:
        bank = bank_dir or default_bank_dir()
        matches = sorted(bank.glob(f"*/{id_or_path}.yaml")) + sorted(bank.glob(f"*/{id_or_path}.yml"))
        if not matches:
            raise SpecError(f"{id_or_path}: no question with this id under {bank}")
        path = matches[0]
    data = read_question(path)
    try:
        return CodeSpec.from_dict(data)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from e
