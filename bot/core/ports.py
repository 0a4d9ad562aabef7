"""The ports the core talks through. Adapters implement `Chat`; the store implements `Store`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from bot.core.messages import Message
from bot.core.models import (
    Community,
    DailyPost,
    Member,
    NewSubmission,
    OutboxItem,
    OutboxRow,
    PointAward,
    PostStats,
    Question,
    RecordedSubmission,
    Standing,
    TrackStats,
    Verdict,
)


class DeliveryError(Exception):
    """An adapter could not deliver a message. `permanent` errors (a missing permission, an
    unknown channel) are not retried; the message says what an admin must fix. A rate limit
    carries the platform's `retry_after`."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after  # a rate limit's own wait, in seconds, instead of the backoff


class Chat(Protocol):
    """Outbound chat: the only way the core sends anything on its own initiative."""

    async def post(self, community: Community, channel: str, message: Message, *, key: str = "") -> str:
        """Post in a channel; returns a platform reference to the posted message. `key` is the
        outbox key, the same on every retry: a platform with idempotency keys uses it to drop a
        retried duplicate."""
        ...

    async def send_dm(self, member: Member, message: Message, *, key: str = "") -> None: ...

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        """Open a private space for a mock-interview group; returns its reference."""
        ...


class Store(Protocol):
    """What the core needs from persistence. `bot.store.sqlite.Store` is the embedded implementation;
    `bot.store.postgres.PostgresStore` runs the same methods on PostgreSQL."""

    @property
    def files_dir(self) -> Path | None:
        """Where files beside the database go (picture cards); None when the database is no file."""

    async def ensure_community(
        self,
        platform: str,
        external_id: str,
        name: str,
        *,
        now: datetime,
        timezone: str = "UTC",
        post_time: str = "09:00",
        channel: str | None = None,
    ) -> Community: ...

    async def get_community(self, community_id: int) -> Community | None: ...

    async def list_communities(self) -> list[Community]: ...

    async def community_setting(self, community_id: int, key: str) -> Any: ...

    async def update_community(self, community_id: int, **settings: Any) -> Community: ...

    async def ensure_member(
        self,
        community_id: int,
        external_id: str,
        display_name: str,
        *,
        now: datetime,
        is_admin: bool = False,
        timezone: str | None = None,
    ) -> Member: ...

    async def get_member(self, member_id: int) -> Member | None: ...

    async def find_member(self, community_id: int, name_or_id: str) -> Member | None: ...

    async def update_member(self, member_id: int, **values: Any) -> Member: ...

    async def claim_daily(
        self, community_id: int, day: date, track: str, question_id: str, *, now: datetime
    ) -> tuple[DailyPost, bool]: ...

    async def daily_posts_on(self, community_id: int, day: date) -> list[DailyPost]: ...

    async def daily_history(self, community_id: int, track: str) -> list[DailyPost]: ...

    async def leaderboard(
        self,
        community_id: int,
        *,
        period: str = "all",
        track: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Standing]: ...

    async def standing_of(
        self, community_id: int, member_id: int, *, period: str = "all", track: str | None = None
    ) -> Standing | None: ...

    async def count_ranked(self, community_id: int, *, period: str = "all", track: str | None = None) -> int: ...

    async def track_stats(self, member_id: int) -> list[TrackStats]: ...

    async def total_points(self, member_id: int) -> int: ...

    async def enqueue(self, items: Sequence[OutboxItem], *, now: datetime, revealed: Sequence[int] = ()) -> int: ...

    async def claim_outbox(self, *, now: datetime, lease_s: float, limit: int = 100) -> list[OutboxRow]: ...

    async def renew_outbox_lease(self, ids: Sequence[int], lease: str, *, now: datetime, lease_s: float) -> str | None: ...

    async def outbox_sent(self, row: OutboxRow, ref: str, *, now: datetime) -> None: ...

    async def outbox_failed(self, row: OutboxRow, error: str, *, retry_at: datetime | None, now: datetime) -> None: ...

    async def outbox_rows(self, community_id: int) -> list[OutboxRow]: ...

    async def round_announced(self, community_id: int, day: date) -> bool: ...

    async def announced_unrevealed(self, community_id: int) -> list[DailyPost]: ...

    async def revealed_post(self, community_id: int, question_id: str) -> DailyPost | None: ...

    async def record_submission(
        self, sub: NewSubmission, *, now: datetime, points: Callable[[int, bool], Sequence[PointAward]]
    ) -> RecordedSubmission: ...

    async def start_grading_job(self, *, community_id: int, member_id: int, question_id: str,
                                daily_post_id: int | None, code: str, now: datetime) -> int: ...

    async def finish_grading_job(self, job_id: int, outcome: str, *, now: datetime,
                                 items: Sequence[OutboxItem] = ()) -> bool: ...

    async def release_grading_job(self, job_id: int) -> None: ...

    async def amend_outbox(self, key: str, *, now: datetime, message: Any = None) -> bool: ...

    async def claim_orphaned_jobs(self, *, now: datetime, limit: int = 20) -> list[Any]: ...

    async def queue_grading_job(self, *, community_id: int, member_id: int, question_id: str,
                                daily_post_id: int | None, code: str, spec: str, now: datetime,
                                waiter_until: datetime) -> int: ...

    async def grading_result(self, job_id: int) -> str | None: ...

    async def wait_graded(self, job_id: int, timeout_s: float) -> None: ...

    async def hand_over_to_dm(self, job_id: int, *, now: datetime) -> None: ...

    async def graded_for_dm(self, *, now: datetime, limit: int = 50) -> list[Any]: ...

    async def unclaimed_jobs(self, *, before: datetime) -> list[Any]: ...

    async def get_daily_post(self, post_id: int) -> DailyPost | None: ...

    async def submissions_of(self, member_id: int, question_id: str) -> list[Any]: ...

    async def post_stats(self, post_id: int) -> PostStats: ...

    async def written_answers(self, community_id: int, question_id: str) -> list[Any]: ...

    async def add_vote(self, submission_id: int, voter_id: int, *, now: datetime) -> bool: ...

    async def daily_solve_times(self, member_ids: Sequence[int]) -> dict[int, list[datetime]]: ...

    async def mocks_done(self, member_id: int) -> int: ...

    async def admins(self, community_id: int) -> list[Member]: ...

    async def pair_space(self, pair_id: int) -> tuple[str | None, list[Member]]: ...

    async def set_pair_space(self, pair_id: int, ref: str) -> None: ...

    async def save_optin(
        self, member: Member, *, tracks: Sequence[str], level: str, timezone: str, availability: str, now: datetime
    ) -> None: ...

    async def optin(self, member_id: int) -> Any: ...

    async def optins(self, community_id: int) -> list[Any]: ...

    async def update_optin(self, member_id: int, **values: Any) -> None: ...

    async def add_avoid(self, member_id: int, avoided_id: int, *, now: datetime) -> bool: ...

    async def avoids(self, community_id: int) -> dict[int, set[int]]: ...

    async def create_mock_round(self, community_id: int, scheduled_for: str, *, now: datetime) -> tuple[int, bool]: ...

    async def mock_rounds(self, community_id: int, limit: int = 12) -> list[Any]: ...

    async def round_groups(self, round_id: int) -> list[Any]: ...

    async def save_groups(
        self,
        round_id: int,
        groups: Sequence[tuple[str, str | None, str, Sequence[int]]],
        items_for: Callable[[int], Sequence[OutboxItem]],
        *,
        report: str,
        now: datetime,
        notices: Sequence[OutboxItem] = (),
        optin_updates: Sequence[tuple[int, Mapping[str, Any]]] = (),
    ) -> list[int] | None: ...

    async def unfinished_mock_rounds(self, community_id: int) -> list[Any]: ...

    async def latest_group_of(self, member_id: int) -> list[Any]: ...

    async def record_checkin(
        self, pair_id: int, member_id: int, value: str, *, absent_id: int | None, expected: str | None, outcome: str,
        notices: Sequence[OutboxItem] = (), now: datetime,
    ) -> bool: ...

    async def settle_mock_points(self, pair_id: int, *, points: int, now: datetime) -> list[int]: ...

    async def add_feedback(self, pair_id: int, from_id: int, to_id: int, *, scores: str, text: str, now: datetime) -> bool: ...

    async def add_points(
        self,
        *,
        community_id: int,
        member_id: int,
        points: int,
        reason: str,
        now: datetime,
        track: str | None = None,
        question_id: str | None = None,
        submission_id: int | None = None,
        dedupe_key: str | None = None,
    ) -> bool: ...

    # -- issue 9: practice, timed attempts, study plans, STAR stories, picture cards

    async def member_submissions(self, member_id: int) -> list[Any]: ...

    async def community_daily_ids(self, community_id: int) -> set[str]: ...

    async def practice_shown(self, member_id: int) -> dict[str, int]: ...

    async def mark_practice_shown(self, member_id: int, question_id: str, *, now: datetime) -> None: ...

    async def start_timer(
        self, *, community_id: int, member_id: int, question_id: str, track: str, budget_s: int, now: datetime,
        items_for: Callable[[int], Sequence[OutboxItem]],
    ) -> tuple[Any, bool]: ...

    async def timer(self, timer_id: int) -> Any: ...

    async def open_timer(self, member_id: int, question_id: str) -> Any: ...

    async def finish_timer(self, timer_id: int, *, now: datetime) -> bool: ...

    async def start_plan(
        self, *, community_id: int, member_id: int, starts_on: date, ends_on: date, interview_on: date | None,
        now: datetime,
    ) -> tuple[Any, bool]: ...

    async def active_plan(self, member_id: int) -> Any: ...

    async def stop_plan(self, plan_id: int, *, now: datetime) -> bool: ...

    async def plans_to_nudge(self, community_id: int, day: date) -> list[Any]: ...

    async def nudge_plan(self, plan_id: int, day: date, items: Sequence[OutboxItem], *, now: datetime,
                         stop: bool = False) -> bool: ...

    async def add_story(self, member_id: int, *, themes: Sequence[str], title: str, situation: str, task: str,
                        action: str, result: str, now: datetime) -> int: ...

    async def stories_of(self, member_id: int) -> list[Any]: ...

    async def update_story(self, story_id: int, *, now: datetime, **values: str) -> None: ...

    async def delete_story(self, story_id: int) -> bool: ...

    async def points_history(
        self, member_ids: Sequence[int], *, since: datetime | None = None, track: str | None = None
    ) -> dict[int, list[tuple[datetime, int]]]: ...

    async def pair_feedback(self, pair_id: int) -> list[Any]: ...

    # -- issue 19: one leader for schedules

    async def hold_lease(self, name: str, holder: str, *, now: datetime, ttl_s: float) -> bool: ...

    async def release_lease(self, name: str, holder: str) -> None: ...

    async def lease_holder(self, name: str, *, now: datetime) -> str | None: ...

    # -- issue 20: optional AI reviews

    async def cached_ai_review(self, content_hash: str) -> str | None: ...

    async def start_ai_review(self, *, community_id: int, member_id: int, question_id: str, kind: str,
                              content_hash: str, now: datetime, since: datetime,
                              member_daily: int, community_daily: int) -> int | None: ...

    async def finish_ai_review(self, review_id: int, *, result: str | None, note: str | None,
                               now: datetime) -> None: ...

    # -- issue 10: data ownership

    async def member_data_counts(self, member_id: int) -> dict[str, int]: ...

    async def request_erasure(self, member_id: int, token_hash: str, *, now: datetime, expires_at: datetime) -> None: ...

    async def erasure_request(self, member_id: int) -> Any: ...

    async def erase_member(
        self, member_id: int, token_hash: str, *, now: datetime, display_name: str
    ) -> dict[str, int] | None: ...


class Grader(Protocol):
    """The judge as the core sees it; `bot.app.PoolGrader` wraps the sandboxed grader pool."""

    async def grade(self, question: Question, code: str, *, key: str) -> Verdict:
        """Grade code against the question's tests; raises `errors.Busy` when the judge is saturated."""
        ...
