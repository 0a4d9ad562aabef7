"""The question bank: load `questions/<track>/<id>.yaml`, validate strictly, look questions up.

The bank is data that members contribute, so validation is strict and specific: every problem is
reported as (file, field, reason), unknown fields are errors (a typo such as `hint:` must not be
silently ignored), topics are normalised to one spelling (`canonical_topic`), duplicate YAML keys are errors, test data must be plain YAML data, and code in
`reference`, `wrong` and `starter` must parse and define the entry function. A file with any error
is skipped; the rest of the bank loads, so one bad file never takes the bot down.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from bot.core.errors import NotFound, shown
from bot.core.models import (
    CODE_TRACKS,
    DIFFICULTIES,
    TRACKS,
    WRITTEN_TRACKS,
    Question,
    RubricPoint,
    TestCase,
)

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_FILE_BYTES = 512 * 1024
MAX_DEPTH = 32  # nesting levels; libyaml's composer recurses in C and crashes the process on deep input
MAX_VALUES = 100_000  # values after expanding aliases: refuses "billion laughs" bombs
MIN_CODE_TESTS = 8
COMPARE_MODES = ("exact", "float", "unordered", "unordered_float")
CHOICE_LETTERS = "ABCDEFGH"

COMMON_REQUIRED = ("id", "track", "title", "difficulty", "topics", "prompt")
COMMON_OPTIONAL = ("hints", "explanation")
COMPLEXITY = re.compile(r"\bO\(\s*[^()]*[a-zA-Z][^()]*(?:\([^()]*\)[^()]*)*\)")  # a stated bound: O(n log n), O(k)
NOT_RUNTIME = re.compile(r"O\(\s*(?:h|eps|epsilon|ε|dx)\b")  # an error order (O(h^2)), not a running time
REQUIRE_SLOW = True  # a prompt that states a running time must prove it with a slow solution
CODE_OPTIONAL = ("compare", "tolerance", "time_limit_s", "memory_mb", "second", "slow", "generated")
GENERATED_FIELDS = ("code", "seed")
FIELDS_BY_TRACK: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # track: (required extra fields, optional extra fields)
    "coding": (("entry", "starter", "tests", "reference", "wrong"), CODE_OPTIONAL),
    "ml-coding": (("entry", "starter", "tests", "reference", "wrong"), CODE_OPTIONAL),
    "ml-theory": (("kind", "answer", "explanation"), ("choices", "tolerance", "unit")),
    "system-design": (("rubric", "follow_ups", "outline"), ("key_decisions",)),
    "behavioral": (("rubric", "follow_ups", "outline"), ("listen_for",)),
    "sql": (("schema", "tests", "reference", "wrong"), ("ordered", "tolerance", "time_limit_s", "memory_mb", "second")),
}
SQL_TEST_FIELDS = ("name", "data", "expected", "visible")
MIN_SQL_TESTS = 4
TEST_FIELDS = ("name", "args", "kwargs", "expected", "visible")
RUBRIC_FIELDS = ("point", "description", "keywords")


@dataclass(frozen=True)
class BankError:
    """One problem in one file: where, which field, and why."""

    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        where = f" field '{self.field}'" if self.field else ""
        return f"{self.file}:{where} {self.reason}"


class _Invalid(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser is ~10x faster at start-up


class _StrictLoader(_SafeBase):
    """The safe loader, refusing duplicate keys instead of keeping the last one."""


def _mapping_no_duplicates(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"{_kind(key)} cannot be a key", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)


def _scalar_or_yaml_error(constructor: Any) -> Any:
    """PyYAML's scalar constructors raise ValueError, KeyError or AttributeError on values like
    `2026-13-45`, `!!bool maybe`, `!!timestamp nope` or a 5000-digit int; make them YAML errors."""

    def construct(loader: Any, node: yaml.ScalarNode) -> Any:
        try:
            return constructor(loader, node)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            value = str(node.value)
            value = value if len(value) <= 40 else value[:37] + "..."
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {value!r} as {kind}", node.start_mark
            ) from None

    return construct


for _tag in ("bool", "int", "float", "timestamp"):
    _full_tag = f"tag:yaml.org,2002:{_tag}"
    _StrictLoader.add_constructor(_full_tag, _scalar_or_yaml_error(_SafeBase.yaml_constructors[_full_tag]))

# YAML 1.1, which PyYAML follows, reads a float only with a dot and a signed exponent: `1.0e6` and
# `1e6`, floats to any other reader (and YAML 1.2), are plain text to it. In a test's arguments that
# silently changes what the reference and members are graded on; refuse it where it is written.
_TEXT_THAT_LOOKS_LIKE_A_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][0-9]+")


def _plain_text(loader: Any, node: yaml.ScalarNode) -> Any:
    value = loader.construct_scalar(node)
    # a plain scalar's style is None in PyYAML's parser, '' in libyaml's
    if not node.style and _TEXT_THAT_LOOKS_LIKE_A_FLOAT.fullmatch(value):
        mantissa, exponent = re.split("[eE]", value)
        raise yaml.constructor.ConstructorError(
            None, None, f"{value!r} is read as text, not a number: write {mantissa}{'' if '.' in mantissa else '.0'}"
            f"e+{exponent} for the number, or quote it for text", node.start_mark)
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:str", _plain_text)


def _check_shape(text: str) -> str | None:
    """Why the document must not be composed (too deep, alias bomb, recursive alias), else None.

    Runs over libyaml's event stream, which does not recurse, before the composer, which does.
    PyYAML 6.0.4's libyaml stops deep input itself, sometimes before our count sees 33 levels (its
    scanner reads a run of `[` ahead); that refusal gets the same message, whichever parser ran."""
    try:
        return _shape_problem(yaml.parse(text, Loader=_SafeBase))
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem or ""):
            return _TOO_DEEP
        raise


_TOO_DEEP = f"nests more than {MAX_DEPTH} levels deep"


def _shape_problem(events: Iterable[yaml.Event]) -> str | None:
    sizes: dict[str, tuple[int, int]] = {}  # anchor: (values, levels) of the anchored node
    frames: list[list[Any]] = []  # open collections: [anchor, values before it, deepest level inside]
    total = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            frames.append([event.anchor, total, len(frames) + 1])
            total += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start, deepest = frames.pop()
            if frames:
                frames[-1][2] = max(frames[-1][2], deepest)
            if anchor is not None:
                sizes[anchor] = (total - start, deepest - len(frames))
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = (1, 0)
        elif isinstance(event, yaml.AliasEvent):
            if any(frame[0] == event.anchor for frame in frames):
                return f"has a recursive alias: *{event.anchor} inside &{event.anchor}"
            values, levels = sizes.get(event.anchor or "", (1, 0))  # an unknown anchor is the composer's error
            total += values
            if frames:
                frames[-1][2] = max(frames[-1][2], len(frames) + levels)
        else:
            continue
        if frames and frames[-1][2] > MAX_DEPTH:
            return _TOO_DEEP
        if total > MAX_VALUES:
            return f"holds more than {MAX_VALUES:,} values once aliases are expanded"
    return None


# -- field checks ---------------------------------------------------------------------------------


def _text(d: Mapping[str, Any], key: str, *, max_len: int | None = None) -> str:
    value = d[key]
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(key, f"must be non-empty text, got {_kind(value)}")
    if max_len is not None and len(value) > max_len:
        raise _Invalid(key, f"must be at most {max_len} characters, got {len(value)}")
    return value


def _text_list(d: Mapping[str, Any], key: str, *, min_items: int = 0) -> tuple[str, ...]:
    value = d.get(key, [])
    if not isinstance(value, list):
        raise _Invalid(key, f"must be a list of text, got {_kind(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _Invalid(f"{key}[{i}]", f"must be non-empty text, got {_kind(item)}")
    if len(value) < min_items:
        raise _Invalid(key, f"needs at least {min_items} item(s), got {len(value)}")
    return tuple(value)


_SPELLINGS = {"isations": "izations", "isation": "ization"}
TOPIC_SYNONYMS: Mapping[str, str] = {
    "a/b-testing": "ab-testing", "a-b-testing": "ab-testing", "deep-learning": "deep-learning",
    "recommender-systems": "recommendations", "model-serving": "serving", "llm-serving": "serving",
    "evaluation-metrics": "metrics", "precision-recall": "metrics", "trust-and-safety": "trust-and-safety",
    "loss-functions": "loss-functions", "normalization-layers": "normalization", "layer-normalization": "normalization",
}


def canonical_topic(topic: str) -> str:
    """One spelling per topic, whoever wrote the question: lowercase, hyphens, -ization, a few synonyms."""
    t = re.sub(r"[\s_]+", "-", topic.strip().lower())
    for british, american in _SPELLINGS.items():
        t = re.sub(rf"(?<=[a-z]){british}\b", american, t)
    return TOPIC_SYNONYMS.get(t, t)


def _number(d: Mapping[str, Any], key: str, lo: float, hi: float) -> float:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
        raise _Invalid(key, f"must be a number, got {_kind(value)}")
    if not lo <= value <= hi:
        got = f"{value:g}" if isinstance(value, float) or abs(value) < 10**15 else f"a number of {len(str(abs(value)))} digits"
        raise _Invalid(key, f"must be between {lo:g} and {hi:g}, got {got}")
    return float(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return "empty text" if not value.strip() else "text"
    return {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


def _check_plain(value: Any, where: str) -> None:
    """Test data must be plain YAML data (no dates, no custom tags) so it means the same everywhere."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise _Invalid(where, f"mapping keys in test data must be text, got {_kind(k)}")
            _check_plain(item, f"{where}.{k}")
        return
    raise _Invalid(where, f"must be plain data (numbers, text, lists, mappings), got {type(value).__name__}")


def _check_code(source: Any, key: str, entry: str) -> str:
    if not isinstance(source, str) or not source.strip():
        raise _Invalid(key, f"must be Python source text, got {_kind(source)}")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise _Invalid(key, f"is not valid Python (line {exc.lineno}: {exc.msg})") from None
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    if entry not in defined:
        raise _Invalid(key, f"does not define the entry function {entry}()")
    return source


def _sources(d: Mapping[str, Any], key: str, check: Callable[[Any, str], str], what: str) -> tuple[str, ...]:
    """`wrong`, `second` or `slow`: one source or a list of them, each checked by `check(source, where)`."""
    if key not in d:
        return ()
    raw = d[key]
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise _Invalid(key, f"must be one or more {what} (text or a list of text)")
    return tuple(check(source, f"{key}[{i}]") for i, source in enumerate(items))


def _solutions(d: Mapping[str, Any], key: str, entry: str, what: str = "Python solutions") -> tuple[str, ...]:
    return _sources(d, key, lambda code, where: _check_code(code, where, entry), what)


def _generated(d: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """`generated: {code, seed?}`: a generator of large hidden tests (graders/generated.py runs it)."""
    if "generated" not in d:
        return None
    raw = d["generated"]
    if not isinstance(raw, dict):
        raise _Invalid("generated", f"must be a mapping with code and an optional seed, got {_kind(raw)}")
    unknown = sorted(set(raw) - set(GENERATED_FIELDS), key=str)
    if unknown:
        raise _Invalid(f"generated.{unknown[0]}", f"unknown field (allowed: {', '.join(GENERATED_FIELDS)})")
    if "code" not in raw:
        raise _Invalid("generated.code", "is required: Python defining generate(seed)")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise _Invalid("generated.seed", f"must be a whole number from 0, got {seed!r}")
    return {"code": _check_code(raw["code"], "generated.code", "generate"), "seed": seed}


def _sql_question(data: Mapping[str, Any], common: dict[str, Any]) -> Question:
    """A SQL question: a schema, datasets with the rows a correct query returns, queries that pass and fail."""
    schema = _text(data, "schema")
    raw = data["tests"]
    if not isinstance(raw, list) or not raw:
        raise _Invalid("tests", f"must be a non-empty list of datasets, got {_kind(raw)}")
    converted = []
    for i, item in enumerate(raw):
        where = f"tests[{i}]"
        if not isinstance(item, dict):
            raise _Invalid(where, f"must be a mapping with data and expected, got {_kind(item)}")
        unknown = sorted(set(item) - set(SQL_TEST_FIELDS), key=str)
        if unknown:
            raise _Invalid(f"{where}.{unknown[0]}", f"unknown field (allowed: {', '.join(SQL_TEST_FIELDS)})")
        rows = item.get("expected")
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _Invalid(f"{where}.expected", "must be the list of rows the query returns, each a list of values")
        if not isinstance(item.get("data", ""), str):
            raise _Invalid(f"{where}.data", f"must be SQL text (INSERT statements), got {_kind(item.get('data'))}")
        _check_sql_script(schema + "\n" + item.get("data", ""), f"{where}.data")
        converted.append({k: v for k, v in item.items() if k != "data"} | {"args": [item.get("data", "")]})
    tests = _tests({"tests": converted}, min_tests=MIN_SQL_TESTS)
    ordered = data.get("ordered", False)
    if not isinstance(ordered, bool):
        raise _Invalid("ordered", f"must be true (rows compared in order) or false (as a multiset), got {_kind(ordered)}")
    tolerance = _number(data, "tolerance", 0.0, 1.0) if "tolerance" in data else None
    return Question(
        **common, schema=schema, ordered=ordered, tests=tests, tolerance=tolerance,
        compare=("float" if tolerance is not None else "exact") if ordered else
        ("unordered_float" if tolerance is not None else "unordered"),
        time_limit_s=_number(data, "time_limit_s", 0.1, 30.0) if "time_limit_s" in data else None,
        memory_mb=int(_number(data, "memory_mb", 64, 2048)) if "memory_mb" in data else None,
        reference=_check_query(data["reference"], "reference"),
        wrong=_sources(data, "wrong", _check_query, "plausible wrong queries"),
        second=_sources(data, "second", _check_query, "other correct queries"),
    )


def _check_query(source: Any, key: str) -> str:
    """One complete SQL statement (the judge runs it; here only its shape is checked)."""
    if not isinstance(source, str) or not source.strip():
        raise _Invalid(key, f"must be a SQL query, got {_kind(source)}")
    text = source.strip().rstrip(";").strip()
    if not sqlite3.complete_statement(text + ";"):
        raise _Invalid(key, "is not a complete SQL statement (an unclosed quote or parenthesis?)")
    return source


def _check_sql_script(script: str, key: str) -> None:
    """The schema and a dataset must run in an empty in-memory database; files are out of reach."""
    def authorize(action: int, *_: Any) -> int:
        return sqlite3.SQLITE_DENY if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_PRAGMA) else sqlite3.SQLITE_OK

    con = sqlite3.connect(":memory:")
    try:
        con.set_authorizer(authorize)
        con.executescript(script)
    except sqlite3.Error as exc:
        raise _Invalid(key, f"does not run after the schema: {exc}") from None
    finally:
        con.close()


def _tests(d: Mapping[str, Any], *, min_tests: int = MIN_CODE_TESTS) -> tuple[TestCase, ...]:
    raw = d["tests"]
    if not isinstance(raw, list) or not raw:
        raise _Invalid("tests", f"must be a non-empty list of test mappings, got {_kind(raw)}")
    tests: list[TestCase] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        where = f"tests[{i}]"
        if not isinstance(item, dict):
            raise _Invalid(where, f"must be a mapping with args and expected, got {_kind(item)}")
        unknown = sorted(set(item) - set(TEST_FIELDS), key=str)
        if unknown:
            raise _Invalid(f"{where}.{unknown[0]}", f"unknown field (allowed: {', '.join(TEST_FIELDS)})")
        for key in ("args", "expected"):
            if key not in item:
                raise _Invalid(f"{where}.{key}", "is required")
        if not isinstance(item["args"], list):
            raise _Invalid(f"{where}.args", f"must be a list of positional arguments, got {_kind(item['args'])}")
        kwargs = item.get("kwargs", {})
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) and IDENTIFIER.match(k) for k in kwargs):
            raise _Invalid(f"{where}.kwargs", "must be a mapping from argument names to values")
        visible = item.get("visible", False)
        if not isinstance(visible, bool):
            raise _Invalid(f"{where}.visible", f"must be true or false, got {_kind(visible)}")
        name = item.get("name", f"test {i + 1}")
        if not isinstance(name, str) or not name.strip():
            raise _Invalid(f"{where}.name", f"must be non-empty text, got {_kind(name)}")
        if name in names:
            raise _Invalid(f"{where}.name", f"duplicates the name of an earlier test: {name!r}")
        names.add(name)
        _check_plain(item["args"], f"{where}.args")
        _check_plain(kwargs, f"{where}.kwargs")
        _check_plain(item["expected"], f"{where}.expected")
        tests.append(TestCase(name, tuple(item["args"]), dict(kwargs), item["expected"], visible))
    if len(tests) < min_tests:
        raise _Invalid("tests", f"needs at least {min_tests} tests (edge cases included), got {len(tests)}")
    if not any(t.visible for t in tests):
        raise _Invalid("tests", "needs at least one test marked visible: true (shown as an example)")
    if all(t.visible for t in tests):
        raise _Invalid("tests", "needs at least one hidden test (visible: false), so answers cannot be hard-coded")
    return tuple(tests)


def _rubric(d: Mapping[str, Any]) -> tuple[RubricPoint, ...]:
    raw = d["rubric"]
    if not isinstance(raw, list) or len(raw) < 3:
        raise _Invalid("rubric", "must be a list of at least 3 points, each with point and description")
    points: list[RubricPoint] = []
    for i, item in enumerate(raw):
        where = f"rubric[{i}]"
        if not isinstance(item, dict):
            raise _Invalid(where, f"must be a mapping with point and description, got {_kind(item)}")
        unknown = sorted(set(item) - set(RUBRIC_FIELDS), key=str)
        if unknown:
            raise _Invalid(f"{where}.{unknown[0]}", f"unknown field (allowed: {', '.join(RUBRIC_FIELDS)})")
        for key in ("point", "description"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise _Invalid(f"{where}.{key}", "is required and must be non-empty text")
        try:
            keywords = _text_list(item, "keywords") if "keywords" in item else ()
        except _Invalid as exc:
            raise _Invalid(f"{where}.{exc.field}", exc.reason) from None
        points.append(RubricPoint(item["point"], item["description"], tuple(k.lower() for k in keywords)))
    return tuple(points)


def parse_question(data: Any, *, file_stem: str | None = None, folder: str | None = None) -> Question:
    """Validate one question mapping; raises `_Invalid` with the first problem found."""
    if not isinstance(data, dict):
        raise _Invalid("", f"the file must hold a mapping of fields, got {_kind(data)}")
    for key in COMMON_REQUIRED:
        if key not in data:
            raise _Invalid(key, "is required")
    track = data["track"]
    if track not in TRACKS:
        raise _Invalid("track", f"must be one of {', '.join(TRACKS)}, got {track!r}")
    required, optional = FIELDS_BY_TRACK[track]
    allowed = set(COMMON_REQUIRED) | set(COMMON_OPTIONAL) | set(required) | set(optional)
    for key in data:
        if key not in allowed:
            raise _Invalid(str(key), f"is not a field of a {track} question (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in data:
            raise _Invalid(key, f"is required for {track} questions")

    qid = data["id"]
    if not isinstance(qid, str) or not SLUG.match(qid) or len(qid) > 64:
        raise _Invalid("id", f"must be a lowercase slug like 'two-sum' (a-z, 0-9, single hyphens), got {qid!r}")
    if file_stem is not None and qid != file_stem:
        raise _Invalid("id", f"must equal the file name: id is {qid!r} but the file is {file_stem}.yaml")
    if folder is not None and track != folder:
        raise _Invalid("track", f"is {track!r} but the file is in the {folder!r} folder")
    difficulty = data["difficulty"]
    if difficulty not in DIFFICULTIES:
        raise _Invalid("difficulty", f"must be one of {', '.join(DIFFICULTIES)}, got {difficulty!r}")
    common: dict[str, Any] = dict(
        id=qid,
        track=track,
        title=_text(data, "title", max_len=120),
        difficulty=difficulty,
        topics=tuple(dict.fromkeys(canonical_topic(t) for t in _text_list(data, "topics", min_items=1))),
        prompt=_text(data, "prompt"),
        hints=_text_list(data, "hints"),
        explanation=_text(data, "explanation") if "explanation" in data else None,
    )

    if track == "sql":
        return _sql_question(data, common)
    if track in CODE_TRACKS:
        entry = data["entry"]
        if not isinstance(entry, str) or not IDENTIFIER.match(entry):
            raise _Invalid("entry", f"must be a Python function name, got {entry!r}")
        compare = data.get("compare", "exact")
        if compare not in COMPARE_MODES:
            raise _Invalid("compare", f"must be one of {', '.join(COMPARE_MODES)}, got {compare!r}")
        tolerance = _number(data, "tolerance", 0.0, 1.0) if "tolerance" in data else None
        if tolerance is not None and "float" not in compare:
            raise _Invalid("tolerance", f"only applies with compare: float or unordered_float, not {compare}")
        wrong = _solutions(data, "wrong", entry, "plausible wrong solutions")
        slow = _solutions(data, "slow", entry)
        stated = next((m for m in COMPLEXITY.finditer(common["prompt"]) if not NOT_RUNTIME.match(m.group(0))), None)
        if REQUIRE_SLOW and stated and not slow:
            raise _Invalid("slow", f"is required: the prompt states a complexity ({stated.group(0)}); add the naive "
                                   "solution its generated tests make time out (questions/README.md)")
        if slow and "generated" not in data:
            raise _Invalid("generated", "is required with slow solutions: inputs large enough to make them time out")
        return Question(
            **common,
            entry=entry,
            starter=_check_code(data["starter"], "starter", entry),
            tests=_tests(data),
            compare=compare,
            tolerance=tolerance,
            time_limit_s=_number(data, "time_limit_s", 0.1, 30.0) if "time_limit_s" in data else None,
            memory_mb=int(_number(data, "memory_mb", 64, 2048)) if "memory_mb" in data else None,
            reference=_check_code(data["reference"], "reference", entry),
            wrong=wrong,
            second=_solutions(data, "second", entry),
            slow=slow,
            generated=_generated(data),
        )

    if track == "ml-theory":
        kind = data["kind"]
        if kind == "choice":
            choices = _text_list(data, "choices", min_items=2)
            if len(choices) > len(CHOICE_LETTERS):
                raise _Invalid("choices", f"allows at most {len(CHOICE_LETTERS)} choices, got {len(choices)}")
            if len({c.strip().lower() for c in choices}) != len(choices):
                raise _Invalid("choices", "has two identical choices")
            answer = data["answer"]
            letters = CHOICE_LETTERS[: len(choices)]
            if not isinstance(answer, str) or answer.upper() not in letters or len(answer) != 1:
                raise _Invalid("answer", f"must be the letter of the right choice ({', '.join(letters)}), got {answer!r}")
            for key in ("tolerance", "unit"):
                if key in data:
                    raise _Invalid(key, "only applies to kind: numeric")
            return Question(**common, kind=kind, choices=choices, answer=answer.upper())
        if kind == "numeric":
            if "choices" in data:
                raise _Invalid("choices", "only applies to kind: choice")
            exact: float | int = _number(data, "answer", -1e300, 1e300)
            if isinstance(data["answer"], int):  # an integer key stays exact (a float is exact only to 2**53)
                exact = data["answer"]
            tolerance = _number(data, "tolerance", 0.0, 1e300) if "tolerance" in data else 0.0
            return Question(**common, kind=kind, answer=exact, tolerance=tolerance)
        raise _Invalid("kind", f"must be choice or numeric, got {kind!r}")

    assert track in WRITTEN_TRACKS
    return Question(
        **common,
        rubric=_rubric(data),
        follow_ups=_text_list(data, "follow_ups", min_items=1),
        outline=_text(data, "outline"),
        key_decisions=_text_list(data, "key_decisions"),
        listen_for=_text_list(data, "listen_for"),
    )


def load_question_file(path: Path, *, folder: str | None = None, display: str | None = None) -> Question:
    """Parse and validate one file; raises `QuestionFileError` naming the file, field and reason."""
    shown = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise QuestionFileError(BankError(shown, "", f"is {size} bytes; the limit is {MAX_FILE_BYTES}"))
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise QuestionFileError(BankError(shown, "", "is not UTF-8 text")) from None
    except OSError as exc:
        raise QuestionFileError(BankError(shown, "", f"cannot be read ({exc.strerror})")) from None
    try:
        refused = _check_shape(text)
        if refused is not None:
            raise QuestionFileError(BankError(shown, "", refused))
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["unreadable"])[0]
        raise QuestionFileError(BankError(shown, "", f"is not valid YAML{where}: {problem}")) from None
    try:
        question = replace(parse_question(data, file_stem=path.stem, folder=folder), source_path=shown)
    except _Invalid as exc:
        raise QuestionFileError(BankError(shown, exc.field, exc.reason)) from None
    if question.kind == "numeric":
        question = replace(question, answer_text=_top_level_scalar(text, "answer"))
    return question


def _top_level_scalar(text: str, key: str) -> str | None:
    """A top-level value exactly as the file writes it (`1.10`, not the float 1.1), for display."""
    node = yaml.compose(text, Loader=_SafeBase)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key and isinstance(value_node, yaml.ScalarNode):
                return str(value_node.value).strip() or None
    return None


class QuestionFileError(Exception):
    def __init__(self, error: BankError) -> None:
        super().__init__(str(error))
        self.error = error


class Bank:
    """The loaded, valid questions, plus the errors of the files that were skipped."""

    def __init__(self, questions: Iterable[Question], errors: Iterable[BankError] = ()) -> None:
        self._by_id: dict[str, Question] = {}
        self.errors: list[BankError] = list(errors)
        for q in questions:
            if q.id in self._by_id:
                first = self._by_id[q.id].source_path
                self.errors.append(BankError(q.source_path or q.id, "id", f"duplicates the id of {first}"))
                continue
            self._by_id[q.id] = q

    @classmethod
    def load(cls, folder: Path) -> Bank:
        """Load `folder/<track>/*.yaml`; every problem becomes a `BankError` and the file is skipped."""
        questions: list[Question] = []
        errors: list[BankError] = []
        if not folder.is_dir():
            return cls([], [BankError(str(folder), "", "is not a folder")])
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".yaml", ".yml") or not path.is_file():
                continue
            relative = path.relative_to(folder)
            shown = str(path)
            if len(relative.parts) != 2:
                errors.append(BankError(shown, "", "must sit in a track folder: questions/<track>/<id>.yaml"))
                continue
            track_folder = relative.parts[0]
            if track_folder not in TRACKS:
                errors.append(BankError(shown, "", f"folder {track_folder!r} is not a track ({', '.join(TRACKS)})"))
                continue
            if path.suffix == ".yml":
                errors.append(BankError(shown, "", "must end in .yaml"))
                continue
            try:
                questions.append(load_question_file(path, folder=track_folder, display=shown))
            except QuestionFileError as exc:
                errors.append(exc.error)
        return cls(questions, errors)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Any:
        return iter(self._by_id.values())

    def __contains__(self, qid: object) -> bool:
        return qid in self._by_id

    def get(self, qid: str) -> Question:
        """The question, or `NotFound` with the closest ids as suggestions."""
        question = self._by_id.get(qid.strip().lower())
        if question is None:
            close = difflib.get_close_matches(qid.strip().lower(), list(self._by_id), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else " /daily lists today's questions."
            raise NotFound(f"No question with id {shown(qid)}.{hint}")
        return question

    def by_track(self, track: str) -> list[Question]:
        return sorted((q for q in self._by_id.values() if q.track == track), key=lambda q: q.id)

    def ids_starting(self, prefix: str, limit: int = 25) -> list[str]:
        """For autocomplete: ids containing the text, those starting with it first."""
        p = prefix.strip().lower()
        hits = sorted((qid for qid in self._by_id if p in qid), key=lambda qid: (not qid.startswith(p), qid))
        return hits[:limit]

    def stats(self) -> dict[str, Counter[str]]:
        """Question counts per track and difficulty."""
        counts: dict[str, Counter[str]] = {t: Counter() for t in TRACKS}
        for q in self._by_id.values():
            counts[q.track][q.difficulty] += 1
        return counts
