"""APScheduler jobs that wake the core up; the database decides what is due.

- One cron job per community at its post time in its timezone (`post:<id>`), and one at its reveal
  time when it has one (`reveal:<id>`); both just run the core's `tick` for that community.
- One interval job (`tick`, every minute) runs the core's `tick` for every community: it catches up
  after downtime, retries failed sends and is what makes schedules follow the core's clock (the
  console's `/admin clock`, a test's clock) instead of APScheduler's wall clock.
- Jobs are rebuilt from the database at start and re-planned at once when an admin changes a
  community's time, timezone or reveal time (`Services.schedule_changed`). Nothing about schedules
  lives only in memory: a restart loses nothing.
- One leader (issue 19): several bot processes may share one database (Discord shards split across
  processes, Slack HTTP replicas). Only the process holding the `scheduler` lease row runs ticks;
  each process tries to take or renew it every `renew_s` (15 s), and it lasts `lease_ttl_s` (40 s),
  so when the leader dies another takes over within `lease_ttl_s + renew_s` (under a minute). A
  tick checks the lease right before it starts. Whatever a killed leader left half done (posts
  queued, a round cut off) is in the database, and the next leader's tick finishes it once.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.core.models import Community
from bot.core.services import Services

log = logging.getLogger("onsite.scheduler")


LEASE = "scheduler"


class Scheduler:
    def __init__(self, services: Services, *, interval_s: float = 60.0, lease_ttl_s: float = 40.0,
                 renew_s: float = 15.0, holder: str | None = None) -> None:
        self.services = services
        self.interval_s = interval_s
        self.lease_ttl_s = lease_ttl_s
        self.renew_s = renew_s
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = False
        self._aps = AsyncIOScheduler(timezone="UTC")

    async def start(self) -> None:
        """Plan every community from the database, catch up at once (when leading), then keep ticking."""
        self._aps.start()
        for community in await self.services.store.list_communities():
            await self.community_changed(community, tick=False)
        self._aps.add_job(self._tick_all, IntervalTrigger(seconds=self.interval_s), id="tick",
                          replace_existing=True, coalesce=True, max_instances=1)
        self._aps.add_job(self._lead, IntervalTrigger(seconds=self.renew_s), id="lease",
                          replace_existing=True, coalesce=True, max_instances=1)
        self.services.schedule_changed = self.community_changed
        await self._tick_all()

    async def _lead(self) -> bool:
        """Take or renew the lease; a process that loses it stops ticking until it gets it back."""
        try:
            held = await self.services.store.hold_lease(LEASE, self.holder, now=self.services.clock.now(),
                                                        ttl_s=self.lease_ttl_s)
        except Exception as exc:  # a database hiccup: not leading until the next try
            self.services.failures.record(exc, where="the scheduler lease")
            held = False
        if held != self.leading:
            log.info("scheduler %s: %s", self.holder, "leading the ticks" if held else "following (another leads)")
        self.leading = held
        return held

    async def community_changed(self, community: Community, *, tick: bool = True) -> None:
        """(Re)create a community's cron jobs from its settings, then do whatever is now due."""
        hour, minute = (int(x) for x in community.post_time.split(":"))
        self._aps.add_job(
            self._tick_one, CronTrigger(hour=hour, minute=minute, timezone=community.timezone),
            args=[community.id], id=f"post:{community.id}", replace_existing=True, coalesce=True,
            misfire_grace_time=300, max_instances=1,
        )
        reveal = await self.services.store.community_setting(community.id, "reveal_time")
        job_id = f"reveal:{community.id}"
        if reveal:
            hour, minute = (int(x) for x in reveal.split(":"))
            self._aps.add_job(
                self._tick_one, CronTrigger(hour=hour, minute=minute, timezone=community.timezone),
                args=[community.id], id=job_id, replace_existing=True, coalesce=True, max_instances=1,
            )
        elif self._aps.get_job(job_id) is not None:
            self._aps.remove_job(job_id)
        if tick:
            await self._tick_one(community.id)

    def jobs(self) -> dict[str, Any]:
        """Job id -> trigger, for status pages and tests."""
        return {job.id: job.trigger for job in self._aps.get_jobs()}

    async def _tick_one(self, community_id: int) -> None:
        if not await self._lead():
            return
        community = await self.services.store.get_community(community_id)
        if community is None:
            return
        try:
            await self.services.daily.tick(community)
            await self.services.mocks.tick(community)
            await self.services.outbox.deliver()
        except Exception as exc:  # a failing community must not stop the others' schedules
            self.services.failures.record(exc, where="the community's tick", community_id=community_id)

    async def _tick_all(self) -> None:
        if not await self._lead():
            return
        try:
            await self.services.tick()
        except Exception as exc:  # the next tick tries again; nothing is lost, it is all in the database
            self.services.failures.record(exc, where="the minute tick")

    async def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)
        if self.leading:  # hand over at once instead of after the lease runs out
            try:
                await self.services.store.release_lease(LEASE, self.holder)
            except Exception as exc:
                self.services.failures.record(exc, where="the scheduler lease")
            self.leading = False
