"""Trusted comparison, in the parent process only, on decoded plain data.

Values from the sandbox arrive as JSON text and are decoded here with ``decode``; no object the
submission created ever reaches this module, so a rigged ``__eq__`` or a monkeypatched numpy inside
the sandbox has nothing to act on. Rules (also in graders/README.md):

* Sequences: a list and a tuple with equal items are equal (YAML has no tuples; numpy arrays arrive
  as nested lists via ``ndarray.tolist()``; numpy scalars as Python ``int``/``float``/``bool``).
* Numbers: ``int`` and ``float`` compare by value (``2 == 2.0``); ``bool`` only equals ``bool``
  (``True`` is not ``1``). NaN equals NaN, ``inf`` equals ``inf`` of the same sign, in every mode.
* ``exact``: structural equality under the rules above; dict keys must match exactly.
* ``float``: like exact, but every pair of numbers (at any depth, elementwise in nested lists)
  matches when ``|got - expected| <= tol + tol * |expected|`` (absolute plus relative tolerance).
* ``unordered``: the top level must be a sequence; it matches when the two are equal as multisets
  (same items, same counts, any order), items compared exactly. Inner lists keep their order.
* ``unordered_float``: the same multiset rule with ``float`` item comparison (greedy matching,
  quadratic; meant for the short lists of questions like "return all pairs").
* Anything the submission returned that is not plain data (a custom object, a generator...) is
  decoded as ``Opaque`` and never equals anything.
* Dict keys and set items follow the same rules: ``{True: x}`` is not ``{1: x}``. A decoded dict or
  set whose keys Python would merge (``true`` and ``1``) is ``Opaque``.

Decoding is bounded because the submission can write anything on the result pipe: a line holds at
most ``MAX_VALUES`` values in all (counted before ``json.loads`` builds anything) and nests at most
``MAX_DEPTH`` levels; every comparison is total over whatever decodes (huge ints, NaN, -0.0, inf).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Opaque:
    """A value the sandbox could not express as plain data; equal to nothing."""

    text: str

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<{self.text}>"


def _hook(d: dict[str, Any]) -> Any:
    if len(d) == 1:
        ((k, v),) = d.items()
        if k == "$float" and v in ("nan", "inf", "-inf"):
            return float(v)
        if k == "$repr" and isinstance(v, str):
            return Opaque(v)
        if k == "$bytes" and isinstance(v, str):
            try:
                return bytes.fromhex(v)
            except ValueError:
                return Opaque("bytes")
        if k == "$set" and isinstance(v, list):
            try:
                items = frozenset(_hashable(x) for x in v)
            except TypeError:
                return Opaque("set of unhashable items")
            if len({_canon(x) for x in items}) != len(v):
                return Opaque("set with items Python treats as equal")
            return items
        if k == "$dict" and isinstance(v, list):
            try:
                out = {_hashable(pair[0]): pair[1] for pair in v}
            except (TypeError, IndexError, KeyError):
                return Opaque("dict with unhashable keys")
            if len(out) != len(v) or not all(isinstance(p, list) and len(p) == 2 for p in v):
                return Opaque("dict with keys Python treats as equal")
            return out
    return d


def _hashable(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_hashable(i) for i in x)
    return x


MAX_VALUES = 1_000_000  # values per run on the result pipe: ~100 MB of Python objects at worst
MAX_DEPTH = 200  # the harness nests at most 64 levels of data, a $dict adds 2 per level, a line 2
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')


class DecodeError(ValueError):
    """A result line the judge refuses to decode: not JSON, too large, too many values, too deep."""


def decode(text: str | bytes, *, budget: int = MAX_VALUES) -> Any:
    """Decode one JSON value from the sandbox, restoring NaN/inf, bytes, sets and non-str-key dicts."""
    return loads_line(text, budget=budget)[0]


def loads_line(text: str | bytes, *, budget: int = MAX_VALUES) -> tuple[Any, int]:
    """Decode one protocol line; returns (value, number of values in it). Raises DecodeError.

    The values are counted on the raw text (strings taken out, then every `[`, `{` and `,`) before
    json builds a single object, so a line of a million empty dicts costs a count, not a gigabyte."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    bare = _STRINGS.sub(b"0", raw)
    values = bare.count(b"[") + bare.count(b"{") + bare.count(b",") + 1
    if values > budget:
        raise DecodeError(f"more than {budget:,} values")
    try:
        obj = json.loads(raw, object_hook=_hook)
    except (ValueError, RecursionError) as e:
        raise DecodeError(f"not a result line: {type(e).__name__}") from None
    if _depth_over(obj, MAX_DEPTH):
        raise DecodeError(f"nested more than {MAX_DEPTH} levels")
    return obj, values


def _depth_over(value: Any, limit: int) -> bool:
    """Whether value nests deeper than limit (iterative: a forged line must not recurse the judge)."""
    stack = [(value, 0)]
    while stack:
        x, d = stack.pop()
        if d > limit:
            return True
        if isinstance(x, (list, tuple)):
            stack.extend((i, d + 1) for i in x)
        elif isinstance(x, dict):
            stack.extend((i, d + 1) for i in x.values())
            stack.extend((k, d + 1) for k in x if isinstance(k, tuple))
        elif isinstance(x, frozenset):
            stack.extend((i, d + 1) for i in x)
    return False


@dataclass(frozen=True)
class Outcome:
    """Whether a returned value matches, and if not, where and why."""

    ok: bool
    detail: str = ""


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_seq(x: Any) -> bool:
    return isinstance(x, (list, tuple))


def _num_equal(g: float, e: float, tol: float | None) -> bool:
    """Total over ints of any size and floats of any value (an int past 1e308 has no float)."""
    g_nan = isinstance(g, float) and math.isnan(g)
    e_nan = isinstance(e, float) and math.isnan(e)
    if g_nan or e_nan:
        return g_nan and e_nan
    if (isinstance(g, float) and math.isinf(g)) or (isinstance(e, float) and math.isinf(e)):
        return g == e
    if tol is None or g == e:
        return g == e  # exact: Python compares int and float by value, without overflow
    try:
        return abs(g - e) <= tol + tol * abs(e)
    except OverflowError:
        return False  # one side is an int too large for a float, the other is not equal to it


def _short(x: Any, limit: int = 80) -> str:
    text = _repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _repr(x: Any) -> str:
    """repr that is total: a huge int is shown by its size (str() of one raises past 4,300 digits)."""
    if isinstance(x, int) and not isinstance(x, bool) and x.bit_length() > 10_000:
        return f"<an int of {x.bit_length():,} bits>"
    try:
        return repr(x)
    except (ValueError, RecursionError):
        return f"<{type(x).__name__}>"


def _type_name(x: Any) -> str:
    if isinstance(x, Opaque):
        return x.text.split(":", 1)[0]
    if _is_seq(x):
        return "list"
    if _is_num(x):
        return "number"
    return type(x).__name__


def _match(got: Any, exp: Any, tol: float | None, path: str) -> Outcome:
    if isinstance(got, Opaque):
        return Outcome(False, f"{path or 'result'}: returned {got.text}; return plain data instead")
    if _is_num(exp) and _is_num(got):
        if _num_equal(got, exp, tol):
            return Outcome(True)
        extra = f" (tolerance {tol:g})" if tol is not None else ""
        return Outcome(False, f"{path or 'result'}: expected {_short(exp)}, got {_short(got)}{extra}")
    if _is_seq(exp) and _is_seq(got):
        if len(got) != len(exp):
            return Outcome(False, f"{path or 'result'}: expected {len(exp)} items, got {len(got)}")
        for n, (g, e) in enumerate(zip(got, exp, strict=True)):
            out = _match(g, e, tol, f"{path}[{n}]")
            if not out.ok:
                return out
        return Outcome(True)
    if isinstance(exp, Mapping) and isinstance(got, Mapping):
        # keys by their canonical form, so True and 1 stay different keys (bool only equals bool)
        gk = {_canon(k): k for k in got}
        ek = {_canon(k): k for k in exp}
        missing = [ek[c] for c in ek if c not in gk]
        extra_keys = [gk[c] for c in gk if c not in ek]
        if missing or extra_keys:
            parts = []
            if missing:
                parts.append("missing keys " + ", ".join(_short(k, 30) for k in missing[:5]))
            if extra_keys:
                parts.append("unexpected keys " + ", ".join(_short(k, 30) for k in extra_keys[:5]))
            return Outcome(False, f"{path or 'result'}: " + "; ".join(parts))
        for c, k in ek.items():
            out = _match(got[gk[c]], exp[k], tol, f"{path}[{_short(k, 30)}]")
            if not out.ok:
                return out
        return Outcome(True)
    if isinstance(exp, (set, frozenset)) and isinstance(got, (set, frozenset)):
        if {_canon(x) for x in got} == {_canon(x) for x in exp}:
            return Outcome(True)
        return Outcome(False, f"{path or 'result'}: sets differ")
    if type(got) is type(exp) and got == exp:
        return Outcome(True)
    where = path or "result"
    if _type_name(got) != _type_name(exp):
        return Outcome(
            False, f"{where}: expected {_type_name(exp)} {_short(exp)}, got {_type_name(got)} {_short(got)}"
        )
    return Outcome(False, f"{where}: expected {_short(exp)}, got {_short(got)}")


def _canon(x: Any) -> Any:
    """A hashable key such that two values are exactly equal (by the rules) iff their keys are equal."""
    if isinstance(x, Opaque):
        return ("opaque", id(x))
    if isinstance(x, bool):
        return ("bool", x)
    if _is_num(x):
        if isinstance(x, float) and math.isnan(x):
            return ("nan",)
        return ("num", x)
    if _is_seq(x):
        return ("seq", tuple(_canon(i) for i in x))
    if isinstance(x, Mapping):
        return ("map", frozenset((_canon(k), _canon(v)) for k, v in x.items()))
    if isinstance(x, (set, frozenset)):
        return ("set", frozenset(_canon(i) for i in x))
    return (type(x).__name__, x)


def compare(got: Any, expected: Any, mode: str = "exact", tolerance: float = 1e-6) -> Outcome:
    """Compare a decoded result with the expected value under one of the documented modes."""
    if mode == "exact":
        return _match(got, expected, None, "")
    if mode == "float":
        return _match(got, expected, tolerance, "")
    if mode in ("unordered", "unordered_float"):
        if isinstance(got, Opaque):
            return _match(got, expected, None, "")
        if not _is_seq(expected):
            return _match(got, expected, tolerance if mode == "unordered_float" else None, "")
        if not isinstance(got, Sequence) or isinstance(got, (str, bytes)) or not _is_seq(got):
            if isinstance(got, (set, frozenset)):
                got = list(got)
            else:
                return Outcome(False, f"result: expected a list, got {_type_name(got)} {_short(got)}")
        if len(got) != len(expected):
            return Outcome(False, f"result: expected {len(expected)} items, got {len(got)}")
        if mode == "unordered":
            try:
                cg, ce = Counter(_canon(g) for g in got), Counter(_canon(e) for e in expected)
            except TypeError:
                return Outcome(False, "result: items cannot be compared")
            if cg == ce:
                return Outcome(True)
            for e in expected:
                k = _canon(e)
                if cg[k] < ce[k]:
                    return Outcome(False, f"result: missing item {_short(e)} (order does not matter)")
            for g in got:
                k = _canon(g)
                if cg[k] > ce[k]:
                    return Outcome(False, f"result: unexpected item {_short(g)} (order does not matter)")
            return Outcome(False, "result: items differ (order does not matter)")
        unused = list(got)
        for e in expected:
            for n, g in enumerate(unused):
                if _match(g, e, tolerance, "").ok:
                    del unused[n]
                    break
            else:
                return Outcome(
                    False, f"result: no item matches {_short(e)} within tolerance {tolerance:g} (any order)"
                )
        return Outcome(True)
    raise ValueError(f"unknown compare mode {mode!r}")
