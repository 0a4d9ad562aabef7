"""The ports the core talks through. Adapters implement `Chat`; the store implements `Store`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.core.messages import Message
from bot.core.models import Community, Member


class Chat(Protocol):
    """Outbound chat: the only way the core sends anything on its own initiative."""

    async def post(self, community: Community, channel: str, message: Message) -> str:
        """Post in a channel; returns a platform reference to the posted message."""
        ...

    async def send_dm(self, member: Member, message: Message) -> None: ...

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        """Open a private space for a mock-interview group; returns its reference."""
        ...
