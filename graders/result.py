"""Verdicts and results: the JSON contract the bot and `python -m graders check --json` rely on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .compare import _repr

ACCEPTED = "accepted"
WRONG_ANSWER = "wrong_answer"
TIME_LIMIT = "time_limit"
MEMORY_LIMIT = "memory_limit"
OUTPUT_LIMIT = "output_limit"
RUNTIME_ERROR = "runtime_error"
SYNTAX_ERROR = "syntax_error"
CRASHED = "crashed"
INTERNAL_ERROR = "internal_error"
VERDICTS = (
    ACCEPTED,
    WRONG_ANSWER,
    TIME_LIMIT,
    MEMORY_LIMIT,
    OUTPUT_LIMIT,
    RUNTIME_ERROR,
    SYNTAX_ERROR,
    CRASHED,
    INTERNAL_ERROR,
)
# Per-test verdict for tests that never ran because the run stopped earlier.
SKIPPED = "skipped"


def _plain(x: Any) -> Any:
    """JSON-safe copy: NaN/inf become strings, tuples lists, sets sorted lists, bytes hex."""
    if isinstance(x, float):
        if x != x:
            return "NaN"
        if x in (float("inf"), float("-inf")):
            return "Infinity" if x > 0 else "-Infinity"
        return x
    if isinstance(x, (list, tuple)):
        return [_plain(i) for i in x]
    if isinstance(x, (set, frozenset)):
        return sorted((_plain(i) for i in x), key=repr)
    if isinstance(x, dict):
        return {k if isinstance(k, str) else repr(k): _plain(v) for k, v in x.items()}
    if isinstance(x, bytes):
        return x.hex()
    if x is None or isinstance(x, (bool, int, str)):
        return x
    return repr(x)


def _literal(x: Any, limit: int = 400, *, inner: bool = False) -> str:
    """A value as a Python literal, cut at ``limit`` characters (what members read); ``inner``: the
    items of a sequence of arguments, as they stand between a call's parentheses."""
    text = ", ".join(_repr(a) for a in x) if inner else _repr(x)
    return text if len(text) <= limit else text[: limit - 2] + " …"


@dataclass(frozen=True)
class TestResult:
    """One test's outcome; input/expected/got are filled only for visible tests."""

    __test__ = False  # not a pytest class

    name: str
    verdict: str
    time_ms: float
    visible: bool
    input: Any = None
    expected: Any = None
    got: Any = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "verdict": self.verdict,
            "time_ms": round(self.time_ms, 3),
            "visible": self.visible,
        }
        if self.visible:
            d["input"] = _plain(self.input)
            d["expected"] = _plain(self.expected)
            d["got"] = _plain(self.got)
            # the same three as Python literals, as the verdict's message writes them (NaN is `nan`)
            args = self.input if isinstance(self.input, (list, tuple)) else (self.input,)
            d["shown"] = {"input": _literal(args, inner=True), "expected": _literal(self.expected),
                          "got": _literal(self.got)}
        if self.message:
            d["message"] = self.message
        return d


@dataclass(frozen=True)
class GradeResult:
    """The judge's answer for one submission."""

    verdict: str
    passed: int
    total: int
    tests: tuple[TestResult, ...]
    time_ms: int
    message: str
    tier: str
    stdout: str = ""
    stderr: str = ""
    limit: str | None = None

    @property
    def accepted(self) -> bool:
        return self.verdict == ACCEPTED

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: verdict, passed, total, tests, time_ms, message, tier, stdout, stderr, limit."""
        return {
            "verdict": self.verdict,
            "passed": self.passed,
            "total": self.total,
            "tests": [t.to_dict() for t in self.tests],
            "time_ms": self.time_ms,
            "message": self.message,
            "tier": self.tier,
            "limit": self.limit,
            "stdout": self.stdout,
            "stderr": self.stderr,
        }
