"""The ports the core talks through. Adapters implement `Chat`; the store implements `Store`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol

from bot.core.messages import Message
from bot.core.models import Community, DailyPost, Member, Standing, TrackStats


class Chat(Protocol):
    """Outbound chat: the only way the core sends anything on its own initiative."""

    async def post(self, community: Community, channel: str, message: Message) -> str:
        """Post in a channel; returns a platform reference to the posted message."""
        ...

    async def send_dm(self, member: Member, message: Message) -> None: ...

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        """Open a private space for a mock-interview group; returns its reference."""
        ...


class Store(Protocol):
    """What the core needs from persistence. `bot.store.sqlite.Store` is the embedded implementation;
    a PostgreSQL store would implement the same methods."""

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
        since: datetime | None = None,
        track: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Standing]: ...

    async def standing_of(
        self, community_id: int, member_id: int, *, since: datetime | None = None, track: str | None = None
    ) -> Standing | None: ...

    async def count_ranked(
        self, community_id: int, *, since: datetime | None = None, track: str | None = None
    ) -> int: ...

    async def track_stats(self, member_id: int) -> list[TrackStats]: ...

    async def total_points(self, member_id: int) -> int: ...
