"""The mock-interview debrief: once everyone in a group has given and received feedback, each member
gets one DM combining what they received (scores per axis, every note) and what they gave."""

from __future__ import annotations

from bot.core.clock import FixedClock
from bot.core.models import Caller
from bot.core.services import Services
from bot.store.sqlite import Store
from tests.conftest import RecordingChat
from tests.core.test_mocks import groups_of, join_all


def debriefs(chat: RecordingChat) -> dict[str, object]:
    return {where: m for kind, where, m in chat.sent if kind == "dm" and m.title.startswith("Mock debrief")}


async def test_the_debrief_comes_once_all_feedback_is_in(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers = await join_all(wired, admin, store, clock)
    await wired.mocks.pair_now(admin)
    await wired.outbox.deliver()
    pair = next(g for g in groups_of(chat) if len(g) == 2)
    a, b = sorted(pair)
    await wired.mocks.feedback(callers[a], b, "4 3 5 2", "Clear structure; state the latency budget earlier.")
    await wired.outbox.deliver()
    assert debriefs(chat) == {}  # one form of two: no debrief yet
    await wired.mocks.feedback(callers[b], a, "5 4 3 4", "Good clarifying questions.")
    await wired.outbox.deliver()
    got = debriefs(chat)
    assert set(got) == {a, b}
    to_b = got[b]
    fields = {f.name: f.value for f in to_b.fields}  # type: ignore[attr-defined]
    assert fields["Communication"] == "4.0/5" and fields["Structure"] == "2.0/5"
    assert fields["What your partners wrote"] == f"**{a}**: Clear structure; state the latency budget earlier."
    assert fields["What you gave"] == f"{a} 5/4/3/4"
    assert "lowest score is **structure** (2.0/5)" in to_b.body  # type: ignore[attr-defined]
    await wired.outbox.deliver()
    assert len([m for k, _, m in chat.sent if k == "dm" and m.title.startswith("Mock debrief")]) == 2  # once each


async def test_a_group_of_three_waits_for_everyone(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    callers = await join_all(wired, admin, store, clock)
    await wired.mocks.pair_now(admin)
    await wired.outbox.deliver()
    trio = sorted(next(g for g in groups_of(chat) if len(g) == 3))
    x, y, z = trio
    await wired.mocks.feedback(callers[x], y, "3 3 3 3", "")
    await wired.mocks.feedback(callers[y], z, "4 4 4 4", "")
    await wired.outbox.deliver()
    assert debriefs(chat) == {}  # x has received nothing yet
    await wired.mocks.feedback(callers[z], x, "5 5 5 5", "Strong.")
    await wired.outbox.deliver()
    assert set(debriefs(chat)) == {x, y, z}
