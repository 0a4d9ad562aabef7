"""Trusted comparison rules, on decoded plain data."""

from __future__ import annotations

import math

import pytest

from graders.compare import Opaque, compare, decode


def test_decode_restores_special_values() -> None:
    v = decode('[{"$float":"nan"},{"$float":"inf"},{"$float":"-inf"},{"$bytes":"6869"},{"$set":[1,2]},'
               '{"$dict":[[1,"a"],[[2,3],"b"]]},{"$repr":"Evil: <x>"}]')
    assert math.isnan(v[0]) and v[1] == math.inf and v[2] == -math.inf
    assert v[3] == b"hi" and v[4] == frozenset({1, 2})
    assert v[5] == {1: "a", (2, 3): "b"}
    assert isinstance(v[6], Opaque) and v[6] != v[6]


@pytest.mark.parametrize(
    ("got", "expected", "ok"),
    [
        ([1, 2], [1, 2], True),
        ((1, 2), [1, 2], True),
        (2.0, 2, True),
        (True, 1, False),
        (1, True, False),
        (float("nan"), float("nan"), True),
        (math.inf, math.inf, True),
        (-math.inf, math.inf, False),
        ("a", "a", True),
        ({"a": [1]}, {"a": [1]}, True),
        ({"a": [1]}, {"b": [1]}, False),
        ([1, 2], [2, 1], False),
        (None, None, True),
        (None, 0, False),
        (Opaque("Evil: x"), 1, False),
    ],
)
def test_exact(got: object, expected: object, ok: bool) -> None:
    assert compare(got, expected, "exact").ok is ok


def test_float_tolerance_is_abs_plus_rel_and_elementwise() -> None:
    assert compare([[1.0000001, 2.0]], [[1.0, 2.0]], "float", 1e-6).ok
    assert not compare([[1.01, 2.0]], [[1.0, 2.0]], "float", 1e-6).ok
    assert compare(1e9 + 100, 1e9, "float", 1e-6).ok  # relative part
    assert compare(1e-9, 0.0, "float", 1e-6).ok  # absolute part
    assert compare([float("nan")], [float("nan")], "float").ok
    assert not compare([float("nan")], [0.0], "float").ok
    out = compare([[0.5, 0.7]], [[0.5, 0.5]], "float", 1e-6)
    assert not out.ok and "[0][1]" in out.detail


def test_unordered_is_a_multiset_at_top_level() -> None:
    assert compare([[2, 4], [1, 5]], [[1, 5], [2, 4]], "unordered").ok
    assert not compare([[4, 2], [1, 5]], [[1, 5], [2, 4]], "unordered").ok  # inner order kept
    assert not compare([1, 1, 2], [1, 2, 2], "unordered").ok
    assert compare({1, 2}, [2, 1], "unordered").ok
    assert not compare("ab", ["a", "b"], "unordered").ok
    assert compare([0.30000000000000004, 0.1], [0.1, 0.3], "unordered_float").ok
    assert not compare([0.2, 0.1], [0.1, 0.3], "unordered_float").ok


def test_mismatch_details_name_types() -> None:
    out = compare("5", 5)
    assert not out.ok and "expected number" in out.detail and "got str" in out.detail
    assert "expected 3 items, got 2" in compare([1, 2], [1, 2, 3]).detail
