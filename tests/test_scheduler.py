"""The APScheduler wiring: jobs rebuilt from the database, re-planned at once on changes."""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger

from bot.core.clock import FixedClock
from bot.core.commands import Context, core_table, dispatch_line
from bot.core.models import Caller
from bot.core.services import Services
from bot.scheduler import Scheduler
from tests.conftest import RecordingChat


def cron_fields(trigger: CronTrigger) -> dict[str, str]:
    return {f.name: str(f) for f in trigger.fields}


async def test_jobs_are_rebuilt_from_the_database_and_catch_up_at_start(
    wired: Services, admin: Caller, chat: RecordingChat, clock: FixedClock
) -> None:
    await wired.store.update_community(admin.community.id, timezone="Asia/Tokyo", post_time="07:30")
    clock.set(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))  # 09:00 in Tokyo: 1 h 30 after the post time
    scheduler = Scheduler(wired, interval_s=3600)
    try:
        await scheduler.start()
        jobs = scheduler.jobs()
        assert set(jobs) == {f"post:{admin.community.id}", "tick", "lease"}
        trigger = jobs[f"post:{admin.community.id}"]
        assert cron_fields(trigger)["hour"] == "7" and cron_fields(trigger)["minute"] == "30"
        assert str(trigger.timezone) == "Asia/Tokyo"
        assert len(chat.posts()) == 5  # caught up at start, inside the grace window
    finally:
        await scheduler.shutdown()


async def test_changing_time_or_timezone_replans_at_once(wired: Services, admin: Caller) -> None:
    scheduler = Scheduler(wired, interval_s=3600)
    try:
        await scheduler.start()
        ctx = Context(wired, admin, core_table(), "test")
        await dispatch_line(ctx, "/admin setup time 06:45")
        caller = Caller(admin.member, await wired.store.get_community(admin.community.id), True)  # type: ignore[arg-type]
        await dispatch_line(Context(wired, caller, core_table(), "test"), "/admin setup timezone Europe/Berlin")
        await dispatch_line(Context(wired, caller, core_table(), "test"), "/admin setup reveal-time 20:00")
        jobs = scheduler.jobs()
        post = jobs[f"post:{admin.community.id}"]
        assert cron_fields(post)["hour"] == "6" and cron_fields(post)["minute"] == "45"
        assert str(post.timezone) == "Europe/Berlin"
        assert cron_fields(jobs[f"reveal:{admin.community.id}"])["hour"] == "20"
        await dispatch_line(Context(wired, caller, core_table(), "test"), "/admin setup reveal-time next-round")
        assert f"reveal:{admin.community.id}" not in scheduler.jobs()
    finally:
        await scheduler.shutdown()
