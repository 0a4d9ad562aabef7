"""What a member reads in a verdict: one notation (Python literals, as the judge writes its message)
for input, expected and got, NaN spelled one way; through the real judge behind the bot's Grader port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import PoolGrader
from bot.core import views
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.models import Caller
from bot.core.services import Services
from bot.store.sqlite import Store
from graders.pool import GraderPool
from tests.conftest import RecordingChat


@pytest.fixture
async def judged(tmp_path: Path, bank: Bank) -> AsyncIterator[tuple[Services, Caller]]:
    store = await Store.open(tmp_path / "s.db")
    grader = PoolGrader(GraderPool(max_workers=1, tier="rlimit"))
    clock = FixedClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    try:
        community = await store.ensure_community("console", "local", "Local", now=clock.now())
        member = await store.ensure_member(community.id, "u", "Una", now=clock.now())
        yield Services.build(store, bank, clock, chat=RecordingChat(), grader=grader), Caller(member, community)
    finally:
        await grader.close()
        await store.close()


async def test_expected_and_got_use_the_notation_of_the_message(judged: tuple[Services, Caller]) -> None:
    services, caller = judged
    code = "def center(x):\n    return [[float('nan'), True], [None, (1, 2)]]\n"
    reply = await services.submissions.submit(caller, "mean-center", text=None, code=code)
    fields = {f.name: f.value for f in reply.fields}
    assert fields["Input"] == "`[[1.0, 2.0], [3.0, 4.0]]`"  # the arguments, as in the call
    assert fields["Expected"] == "`[[-1.0, -1.0], [1.0, 1.0]]`"
    assert fields["Got"] == "`[[nan, True], [None, [1, 2]]]`"  # not [["NaN", true], [null, [1, 2]]]
    assert "got [[nan, True], [None, [1, 2]]]" in reply.body  # the message writes it the same way
    assert "NaN" not in reply.plain_text() and "null" not in reply.plain_text()


def test_question_examples_are_python_calls() -> None:
    assert views._call("f", (True, None, "a b", [1.5]), {"k": False}) == "f(True, None, 'a b', [1.5], k=False)"


async def test_times_in_mock_messages_name_their_timezone(
    wired: Services, admin: Caller, store: Store, clock: FixedClock, chat: RecordingChat
) -> None:
    import re

    from tests.core.test_mocks import join_all

    await join_all(wired, admin, store, clock)
    await wired.mocks.pair_now(admin)
    await wired.outbox.deliver()
    intros = [m for kind, _, m in chat.sent if kind == "post" and m.title.startswith("Mock interview")]
    times = [t for m in intros for f in m.fields if f.name == "Suggested times" and not f.value.startswith("No shared")
             for t in re.split(r"; |\n", f.value)]
    odd = [t for t in times if not re.fullmatch(r"\w{3} \d\d \w{3} \d\d:\d\d [A-Z][A-Z0-9+-]+ \(\w+\)", t)]
    assert times and not odd, odd
    assert "Mon 23 Nov 12:00 EST (bob)" in times and "Mon 23 Nov 17:00 GMT (dan)" in times


async def test_the_settings_show_the_reveal_time_with_its_timezone(wired: Services, admin: Caller) -> None:
    from bot.core.commands import Context, core_table, dispatch_line

    table = core_table()
    await dispatch_line(Context(wired, admin, table), "/admin setup reveal-time 20:00")
    shown = await dispatch_line(Context(wired, admin, table), "/admin setup")
    fields = {f.name: f.value for f in shown.fields}
    assert fields["Reveal"] == f"20:00 {admin.community.timezone}", fields


async def test_a_terminal_shows_no_markdown_marks(judged: tuple[Services, Caller]) -> None:
    """A real verdict and a real question card, rendered for a terminal: no literal backticks or
    asterisks; piped output keeps the Markdown for scripts."""
    from bot.adapters.console import CYAN, render_text

    services, caller = judged
    verdict = await services.submissions.submit(caller, "mean-center", text=None,
                                                code="def center(x):\n    print('hi')\n    return x\n")
    card = views.question_card(services.bank.get("mean-center"))
    for message in (verdict, card):
        on_terminal = render_text(message, color=True)
        assert "`" not in on_terminal and "**" not in on_terminal, on_terminal
        assert "`" in render_text(message, color=False)
    assert f"{CYAN}[[-1.0, -1.0], [1.0, 1.0]]" in render_text(verdict, color=True)
    assert "def center(x):" in render_text(card, color=True)  # the starter code is still there, unfenced
