"""The store tests are the contract: each one that takes `store` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store" in metafunc.fixturenames:
        engines = ["sqlite"] if metafunc.definition.get_closest_marker("sqlite_only") else ["sqlite", "postgres"]
        metafunc.parametrize("store", engines, indirect=True)
