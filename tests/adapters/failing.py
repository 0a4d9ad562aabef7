"""Helpers the Discord and Slack failure tests share: a callable that fails, and the captured log."""

from __future__ import annotations

import logging
from typing import Any

import pytest


def broken(message: str) -> Any:
    async def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError(message)

    return fail


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything any logger wrote at INFO and up, tracebacks included (the database drivers log each
    statement with its parameters at DEBUG; bot/__main__.py keeps them at INFO)."""
    formatter = logging.Formatter()
    return "\n".join(formatter.format(r) for r in caplog.records)
