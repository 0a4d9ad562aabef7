"""The one clock the whole core reads, so tests and the console's `/admin clock` can move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def is_timezone(name: str) -> bool:
    """An IANA name zoneinfo knows. OSError: a name longer than a file name can be."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class AdjustableClock:
    """Real time shifted by an offset: `set()` jumps to an instant, and time keeps flowing from there."""

    def __init__(self, base: Clock | None = None) -> None:
        self._base = base or SystemClock()
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return self._base.now() + self._offset

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("the clock needs a timezone-aware time")
        self._offset = instant.astimezone(UTC) - self._base.now()


class FixedClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, instant: datetime) -> None:
        self._now = instant.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._now += delta
