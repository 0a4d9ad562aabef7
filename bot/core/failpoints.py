"""Named crash points, so the crash-safety tests can kill the bot with SIGKILL at an exact line.

`ONSITE_FAILPOINTS=outbox.claimed,...` (read by `bot.config`, armed by `main()`) makes the process
send itself SIGKILL when it reaches one of those points: the same as `kill -9` from outside, with
nothing flushed and no `finally` run. Unarmed (the default), `hit()` is one set lookup.

Points: `outbox.claimed` (messages leased, none sent), `mocks.round_created` (a mock round's row
exists, its groups do not), `store.ledger` (inside the transaction that stores a submission, after
its first ledger row), `grading.started` (a code submission's job is written, the judge not asked),
`daily.announced` (a daily round's posts are queued, none sent: the middle of a scheduler tick).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

POINTS = frozenset({"outbox.claimed", "mocks.round_created", "store.ledger", "grading.started", "daily.announced"})
_armed: frozenset[str] = frozenset()


def arm(names: Iterable[str]) -> None:
    global _armed
    _armed = frozenset(names)


def hit(name: str) -> None:
    assert name in POINTS, name
    if name in _armed:
        os.kill(os.getpid(), signal.SIGKILL)
