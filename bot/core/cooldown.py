"""Per-member command cooldown, and the count of unexpected errors an operator reads in the log.

Cooldown: a token bucket per member of a community. A member may send `burst` commands in a row;
after that one command per `60 / per_minute` seconds is let through, and a command past that is
answered with "Slow down" and the wait, without running (nothing else happens, nothing is stored).
Buttons and forms count like typed commands (they are dispatched the same way). The buckets live in
the process (a restart forgets them) and hold only members who sent something in the last minutes.
The chat adapters get one from `ONSITE_COMMAND_BURST` / `ONSITE_COMMANDS_PER_MINUTE`; the console,
one person at a keyboard running scripts, has none.

Failures: every exception that is not an `OnsiteError` (a bug of ours, a platform or database
failure) is counted per kind (exception type and where it happened) and logged once with the
command name, the community id and the running count for that kind. The log line carries the
traceback of our code with the exception's message cut short and anything shaped like a Discord or
Slack token masked; never the command's arguments (which hold members' code and answers).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from bot.core.errors import Busy

log = logging.getLogger("onsite.failures")

MAX_IDLE_BUCKETS = 10_000  # past this many members tracked, buckets that have refilled are dropped
_TOKEN_SHAPES = re.compile(
    r"xox[a-z]-[A-Za-z0-9-]{6,}"  # Slack bot / user / app tokens
    r"|xapp-[A-Za-z0-9-]{6,}"
    r"|[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"  # a Discord bot token
)
MAX_MESSAGE = 300
_COUNTED = "_onsite_failure_kind"  # set on an exception once it is counted


class SlowDown(Busy):
    """The member sent commands faster than the cooldown allows."""


@dataclass
class _Bucket:
    tokens: float
    at: datetime


@dataclass
class Cooldown:
    burst: int = 8
    per_minute: int = 20
    _buckets: dict[tuple[int, int], _Bucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_minute < 1:
            raise ValueError("a cooldown needs a burst and a rate of at least 1")

    @property
    def rate(self) -> float:
        return self.per_minute / 60.0  # tokens per second

    def wait(self, community_id: int, member_id: int, now: datetime) -> float:
        """Take one command from the member's bucket: 0 when it may run, else the seconds to wait."""
        key = (community_id, member_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_IDLE_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def check(self, community_id: int, member_id: int, now: datetime) -> None:
        """Raise `SlowDown` (with the wait) when the member must wait before another command."""
        wait = self.wait(community_id, member_id, now)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise SlowDown(f"Slow down: at most {self.burst} commands in a row, then {self.per_minute} a minute. "
                           f"Try again in {seconds} s.", float(seconds))

    def _forget_full(self, now: datetime) -> None:
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if (now - b.at).total_seconds() >= full_after]:
            del self._buckets[key]


@dataclass
class Failures:
    counts: Counter[str] = field(default_factory=Counter)

    def record(self, exc: BaseException, *, where: str, community_id: int | None = None) -> int:
        """Count one unexpected error and log it; returns how many of its kind there have been.

        An exception is counted once: the adapter that finally catches one the core already
        recorded (a failing command handler) records it again without a second count or log line."""
        counted = getattr(exc, _COUNTED, None)
        if isinstance(counted, str):
            return self.counts[counted]
        kind = f"{type(exc).__name__} in {where}"
        with contextlib.suppress(AttributeError, TypeError):  # an exception type with __slots__
            setattr(exc, _COUNTED, kind)
        self.counts[kind] += 1
        log.error("unexpected error #%d of kind %r (community %s):\n%s", self.counts[kind], kind,
                  community_id if community_id is not None else "-", _safe_traceback(exc))
        return self.counts[kind]

    def summary(self) -> str:
        """Every kind seen since start with its count, most frequent first (for the log and operators)."""
        return ", ".join(f"{kind}: {n}" for kind, n in self.counts.most_common()) or "none"


def mask_tokens(text: str) -> str:
    return _TOKEN_SHAPES.sub("[token]", text)


def _safe_traceback(exc: BaseException) -> str:
    """Our frames as Python prints them; the exception's own message cut short, tokens masked."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    message = str(exc)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " …"
    return mask_tokens(f"Traceback (most recent call last):\n{frames}{type(exc).__name__}: {message}")
