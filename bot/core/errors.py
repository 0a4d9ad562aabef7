"""Domain errors. Adapters turn them into short, specific, private replies."""

from __future__ import annotations


def shown(value: object, limit: int = 60) -> str:
    """A member's value echoed in an error: repr'd (control characters and surrogates escaped), and short."""
    if isinstance(value, int) and value.bit_length() > 64:
        return "a very large number"
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def as_typed(text: str, limit: int = 40) -> str:
    """A short word as the member typed it (`got chess`), else `shown` (quoted, escaped, cut)."""
    return text if len(text) <= limit and text.isprintable() else shown(text, limit)


class OnsiteError(Exception):
    """Base class: the message is safe to show to the member who caused it."""


class UsageError(OnsiteError):
    """A command was called with a missing, extra or malformed argument."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class UnknownCommand(OnsiteError):
    """No command by that name."""


class NotFound(OnsiteError):
    """An id (question, member, ...) that does not exist in this community."""


class Forbidden(OnsiteError):
    """The caller lacks the right to do this (for example a non-admin running an admin command)."""


class Conflict(OnsiteError):
    """The action clashes with the current state (already graded, already posted, ...)."""


class JobFinished(Conflict):
    """Another process already stored the verdict of this grading job."""


class Busy(OnsiteError):
    """The judge is saturated or this member already has a submission in flight."""

    def __init__(self, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and the problem."""
