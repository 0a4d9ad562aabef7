"""The judge: runs submitted code in a sandbox and compares results. Knows nothing about chat."""

from .result import GradeResult, TestResult
from .spec import CodeSpec, SpecError, TestCase, load_spec

__all__ = ["CodeSpec", "GradeResult", "SpecError", "TestCase", "TestResult", "load_spec"]
