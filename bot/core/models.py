"""Frozen dataclasses that cross every boundary (store <-> core <-> adapters).

Each has `to_dict` / `from_dict` so adapters, the store and the grader exchange plain data
instead of loose dicts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from graders.spec import TestCase  # one test model for the bank and the judge (core may use graders)


class Row(Protocol):
    """A database row read by column name (sqlite3.Row, asyncpg.Record, a dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


TRACKS: tuple[str, ...] = ("coding", "ml-coding", "ml-theory", "system-design", "behavioral", "sql")
# graded by running the answer in the judge (for `sql` the answer is a query; graders/sql.py)
CODE_TRACKS: frozenset[str] = frozenset({"coding", "ml-coding", "sql"})
WRITTEN_TRACKS: frozenset[str] = frozenset({"system-design", "behavioral"})
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
# A submission counts as solved with one of these verdicts (code accepted, theory correct, written recorded).
SOLVED_VERDICTS: tuple[str, ...] = ("accepted", "correct", "recorded")
# A written answer below the community's coverage bar (verdict "incomplete") may be revised once.
WRITTEN_TRIES = 2
TRACK_LABELS: Mapping[str, str] = {
    "coding": "Coding",
    "ml-coding": "ML coding",
    "ml-theory": "ML theory",
    "system-design": "ML system design",
    "behavioral": "Behavioral",
    "sql": "SQL",
}


def _test_dict(t: TestCase) -> dict[str, Any]:
    """A test as the question file writes it (what `graders.spec.CodeSpec.from_dict` reads back)."""
    return {"name": t.name, "args": list(t.args), "kwargs": dict(t.kwargs), "expected": t.expected, "visible": t.visible}


@dataclass(frozen=True)
class RubricPoint:
    """A point a strong written answer covers; `keywords` let the bot estimate coverage."""

    point: str
    description: str
    keywords: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"point": self.point, "description": self.description, "keywords": list(self.keywords)}


@dataclass(frozen=True)
class Question:
    """A validated question from the bank; fields that do not apply to its track stay empty."""

    id: str
    track: str
    title: str
    difficulty: str
    topics: tuple[str, ...]
    prompt: str
    # code tracks
    entry: str | None = None
    starter: str | None = None
    tests: tuple[TestCase, ...] = ()
    compare: str = "exact"
    tolerance: float | None = None
    time_limit_s: float | None = None
    memory_mb: int | None = None
    reference: str | None = None
    wrong: tuple[str, ...] = ()
    second: tuple[str, ...] = field(default=(), compare=False)  # more correct solutions (selftest)
    slow: tuple[str, ...] = field(default=(), compare=False)  # correct but too slow: must time out
    generated: Mapping[str, Any] | None = field(default=None, compare=False)  # {code, seed}: large hidden tests
    # sql: the CREATE TABLE statements every test's data fills; rows compared in order or as a multiset
    schema: str | None = None
    ordered: bool = False
    # ml-theory
    kind: str | None = None
    choices: tuple[str, ...] = ()
    answer: Any = None
    answer_text: str | None = field(default=None, compare=False)  # a numeric key as its file writes it ("1.10")
    # written tracks
    rubric: tuple[RubricPoint, ...] = ()
    follow_ups: tuple[str, ...] = ()
    outline: str | None = None
    listen_for: tuple[str, ...] = ()
    key_decisions: tuple[str, ...] = ()
    # all
    hints: tuple[str, ...] = ()
    explanation: str | None = None
    source_path: str | None = field(default=None, compare=False)

    @property
    def is_code(self) -> bool:
        return self.track in CODE_TRACKS

    @property
    def is_sql(self) -> bool:
        return self.track == "sql"

    @property
    def answer_noun(self) -> str:
        """What a member sends for this question: code, a query, an answer."""
        return "query" if self.is_sql else "code" if self.is_code else "answer"

    @property
    def visible_tests(self) -> tuple[TestCase, ...]:
        return tuple(t for t in self.tests if t.visible)

    def to_dict(self) -> dict[str, Any]:
        """The question-file mapping (what the grader's `CodeSpec.from_dict` reads)."""
        d: dict[str, Any] = {
            "id": self.id,
            "track": self.track,
            "title": self.title,
            "difficulty": self.difficulty,
            "topics": list(self.topics),
            "prompt": self.prompt,
        }
        if self.is_sql:
            d.update(schema=self.schema, ordered=self.ordered, reference=self.reference, wrong=list(self.wrong),
                     tests=[{"name": t.name, "data": t.args[0], "expected": t.expected, "visible": t.visible}
                            for t in self.tests])
            for key in ("tolerance", "time_limit_s", "memory_mb"):
                if getattr(self, key) is not None:
                    d[key] = getattr(self, key)
        elif self.is_code:
            d.update(
                entry=self.entry,
                starter=self.starter,
                tests=[_test_dict(t) for t in self.tests],
                compare=self.compare,
                reference=self.reference,
                wrong=list(self.wrong),
            )
            if self.generated is not None:
                d["generated"] = dict(self.generated)
            for key in ("tolerance", "time_limit_s", "memory_mb"):
                value = getattr(self, key)
                if value is not None:
                    d[key] = value
        if self.track == "ml-theory":
            d.update(kind=self.kind, answer=self.answer)
            if self.choices:
                d["choices"] = list(self.choices)
            if self.tolerance is not None:
                d["tolerance"] = self.tolerance
        if self.rubric:
            d.update(rubric=[r.to_dict() for r in self.rubric], follow_ups=list(self.follow_ups))
            d["outline"] = self.outline
        if self.listen_for:
            d["listen_for"] = list(self.listen_for)
        if self.key_decisions:
            d["key_decisions"] = list(self.key_decisions)
        if self.hints:
            d["hints"] = list(self.hints)
        if self.explanation is not None:
            d["explanation"] = self.explanation
        return d


@dataclass(frozen=True)
class Community:
    """A Discord guild, a Slack workspace or the local console, with its settings."""

    id: int
    platform: str
    external_id: str
    name: str
    channel: str | None
    timezone: str
    post_time: str
    tracks: tuple[str, ...]

    @classmethod
    def from_row(cls, row: Row) -> Community:
        tracks = tuple(t for t in str(row["tracks"]).split(",") if t)
        return cls(
            id=int(row["id"]),
            platform=str(row["platform"]),
            external_id=str(row["external_id"]),
            name=str(row["name"]),
            channel=row["channel"],
            timezone=str(row["timezone"]),
            post_time=str(row["post_time"]),
            tracks=tracks,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.platform,
            "external_id": self.external_id,
            "name": self.name,
            "channel": self.channel,
            "timezone": self.timezone,
            "post_time": self.post_time,
            "tracks": list(self.tracks),
        }


@dataclass(frozen=True)
class Member:
    """A person in one community; the same human in two communities is two members."""

    id: int
    community_id: int
    external_id: str
    display_name: str
    timezone: str | None = None
    is_admin: bool = False
    hide_from_leaderboard: bool = False

    @classmethod
    def from_row(cls, row: Row) -> Member:
        return cls(
            id=int(row["id"]),
            community_id=int(row["community_id"]),
            external_id=str(row["external_id"]),
            display_name=str(row["display_name"]),
            timezone=row["timezone"],
            is_admin=bool(row["is_admin"]),
            hide_from_leaderboard=bool(row["hide_from_leaderboard"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "community_id": self.community_id,
            "external_id": self.external_id,
            "display_name": self.display_name,
            "timezone": self.timezone,
            "is_admin": self.is_admin,
            "hide_from_leaderboard": self.hide_from_leaderboard,
        }


@dataclass(frozen=True)
class Caller:
    """Who runs a command: the member, their community, and whether the platform says they are an admin."""

    member: Member
    community: Community
    is_admin: bool = False


@dataclass(frozen=True)
class DailyPost:
    """One question of one community's daily round (unique per community, local date and track)."""

    id: int
    community_id: int
    date: date
    track: str
    question_id: str
    claimed_at: datetime
    posted_at: datetime | None = None
    message_ref: str | None = None
    revealed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Row) -> DailyPost:
        def ts(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        claimed = ts(row["claimed_at"])
        assert claimed is not None
        return cls(
            id=int(row["id"]),
            community_id=int(row["community_id"]),
            date=date.fromisoformat(row["date"]),
            track=str(row["track"]),
            question_id=str(row["question_id"]),
            claimed_at=claimed,
            posted_at=ts(row["posted_at"]),
            message_ref=row["message_ref"],
            revealed_at=ts(row["revealed_at"]),
        )


@dataclass(frozen=True)
class RoundItem:
    """One track of a round: the claimed slot and its question (None if it left the bank)."""

    post: DailyPost
    question: Question | None


@dataclass(frozen=True)
class Standing:
    """One line of a leaderboard."""

    rank: int
    member_id: int
    display_name: str
    points: int
    solved: int


@dataclass(frozen=True)
class TrackStats:
    """A member's record on one track."""

    track: str
    attempts: int
    solved: int

    @property
    def accuracy(self) -> float | None:
        return None if self.attempts == 0 else self.solved / self.attempts


@dataclass(frozen=True)
class MemberStats:
    """What `/stats` shows."""

    member: Member
    points: int
    rank: int | None
    tracks: tuple[TrackStats, ...]
    streak: int = 0
    best_streak: int = 0
    mocks_done: int = 0



@dataclass(frozen=True)
class OutboxItem:
    """A message the bot will send on its own: to a channel, or as a DM to a member."""

    community_id: int
    key: str
    purpose: str  # post | reveal | announce | dm
    message: Any  # a bot.core.messages.Message
    channel: str | None = None
    member_id: int | None = None
    daily_post_id: int | None = None
    pair_id: int | None = None  # purpose "space": open the pair's private space, then post the message in it
    not_before: datetime | None = None  # reminders and check-ins wait for their time


@dataclass(frozen=True)
class OutboxRow:
    """An outbox entry as stored, with its delivery state."""

    id: int
    community_id: int
    key: str
    purpose: str
    channel: str | None
    member_id: int | None
    daily_post_id: int | None
    pair_id: int | None
    message: Mapping[str, Any]
    attempts: int
    sent_at: str | None
    ref: str | None
    failed_at: str | None
    last_error: str | None
    claimed_until: str | None = None  # the lease as stored: renewing it compares against this exact value

    @classmethod
    def from_row(cls, row: Row) -> OutboxRow:
        return cls(
            id=int(row["id"]),
            community_id=int(row["community_id"]),
            key=str(row["key"]),
            purpose=str(row["purpose"]),
            channel=row["channel"],
            member_id=row["member_id"],
            daily_post_id=row["daily_post_id"],
            pair_id=row["pair_id"],
            message=json.loads(row["message"]),
            attempts=int(row["attempts"]),
            sent_at=row["sent_at"],
            ref=row["ref"],
            failed_at=row["failed_at"],
            last_error=row["last_error"],
            claimed_until=row["claimed_until"],
        )


@dataclass(frozen=True)
class NewSubmission:
    """A graded or checked submission about to be stored."""

    community_id: int
    member_id: int
    question_id: str
    track: str
    kind: str  # code | choice | numeric | written
    content: str
    verdict: str  # grader verdicts, or correct / incorrect / recorded
    correct: bool
    daily_post_id: int | None = None
    passed: int | None = None
    total: int | None = None
    score: float | None = None
    detail: str | None = None
    job_id: int | None = None  # the grading job this submission finishes (code only)


@dataclass(frozen=True)
class PointAward:
    points: int
    reason: str
    key: str


@dataclass(frozen=True)
class RecordedSubmission:
    id: int
    first_solve: bool
    position: int  # 1-based order among the daily post's solvers; 0 when not a daily solve
    awarded: tuple[PointAward, ...]

    @property
    def points(self) -> int:
        return sum(a.points for a in self.awarded)


@dataclass(frozen=True)
class PostStats:
    attempted: int
    solved: int
    first_solvers: tuple[str, ...]

    @property
    def solve_rate(self) -> float | None:
        return None if self.attempted == 0 else self.solved / self.attempted


@dataclass(frozen=True)
class VerdictTest:
    """One test of a graded run; input/expected/got only for visible tests."""

    name: str
    verdict: str
    visible: bool
    time_ms: float = 0.0
    input: Any = None
    expected: Any = None
    got: Any = None
    message: str = ""
    shown: Mapping[str, str] | None = None  # input/expected/got as the judge writes them (Python literals)


@dataclass(frozen=True)
class Verdict:
    """What the judge said about a code submission (the grader's JSON contract, typed)."""

    verdict: str
    passed: int
    total: int
    time_ms: float
    message: str = ""
    tests: tuple[VerdictTest, ...] = ()
    tier: str = ""
    stdout: str = ""
    stderr: str = ""

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    @property
    def first_failure(self) -> VerdictTest | None:
        return next((t for t in self.tests if t.verdict not in ("accepted", "skipped")), None)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        return cls(
            verdict=str(d["verdict"]),
            passed=int(d.get("passed", 0)),
            total=int(d.get("total", 0)),
            time_ms=float(d.get("time_ms", 0.0)),
            message=str(d.get("message", "")),
            tests=tuple(
                VerdictTest(
                    name=str(t.get("name", "")),
                    verdict=str(t.get("verdict", "")),
                    visible=bool(t.get("visible", False)),
                    time_ms=float(t.get("time_ms", 0.0)),
                    input=t.get("input"),
                    expected=t.get("expected"),
                    got=t.get("got"),
                    message=str(t.get("message", "")),
                    shown={k: str(v) for k, v in t["shown"].items()} if isinstance(t.get("shown"), Mapping) else None,
                )
                for t in d.get("tests", ())
            ),
            tier=str(d.get("tier", "")),
            stdout=str(d.get("stdout", "")),
            stderr=str(d.get("stderr", "")),
        )
