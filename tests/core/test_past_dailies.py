"""A revealed daily stays open for grading, like LeetCode's past dailies: no points, the reveal in the reply
(issue 16, item 16)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.errors import Conflict, NotFound
from bot.core.models import Caller
from bot.core.services import Services
from tests.conftest import REPO, RecordingChat

MONDAY = date(2026, 11, 23)
WRITTEN = ("On a fraud project my teammate wanted to judge the new model by accuracy, while I thought precision at "
           "our review capacity mattered. I proposed that we pull last quarter's data and run the analysis both ways "
           "with the review team. Precision at the top 500 alerts improved from 31% to 44%, and the result convinced "
           "him; we adopted it as the launch metric for the next project.")


async def reveal_monday(wired: Services, clock: FixedClock) -> None:
    await wired.tick()  # Monday 12:00: Monday's round
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    await wired.tick()  # Tuesday's round; Monday's is revealed


async def test_a_past_theory_daily_is_graded_with_no_points_and_its_reveal(
    wired: Services, member: Caller, clock: FixedClock, bank: Bank, chat: RecordingChat
) -> None:
    await reveal_monday(wired, clock)
    monday = await wired.store.daily_posts_on(member.community.id, MONDAY)
    theory = next(p for p in monday if p.track == "ml-theory")  # not back in Tuesday's round
    assert theory.revealed_at is not None
    q = bank.get(theory.question_id)
    key = str(q.answer)
    reply = await wired.submissions.submit(member, q.id, text=key, code=None)
    assert reply.title.startswith("Correct ✓")
    assert reply.footer == "Graded after the reveal of Mon 23 Nov: practice, no points."
    fields = {f.name: f.value for f in reply.fields}
    assert fields["Answer"].startswith(key if q.kind == "numeric" else f"**{key}.**")
    assert (q.explanation or "").strip()[:40] in reply.body
    assert await wired.store.total_points(member.member.id) == 0
    stats = await wired.store.post_stats(theory.id)
    assert (stats.attempted, stats.first_solvers) == (0, ())  # the revealed post's stats stay as revealed
    await wired.outbox.deliver()
    assert chat.posts("announcement") == []
    with pytest.raises(Conflict, match="one attempt"):  # a theory question still takes one attempt
        await wired.submissions.submit(member, q.id, text=key, code=None)
    with pytest.raises(Conflict, match="can no longer be timed"):
        await wired.timed.start(member, q.id)


async def test_after_a_same_day_reveal_code_is_graded_with_the_reference_and_no_points(
    wired: Services, member: Caller, admin: Caller, clock: FixedClock, bank: Bank, chat: RecordingChat
) -> None:
    """With a reveal-time, today's round is revealed while it is still today's: no more daily points."""
    await wired.store.update_community(admin.community.id, reveal_time="11:00")
    community = await wired.store.get_community(admin.community.id)
    assert community is not None
    bob = Caller(member.member, community)
    await wired.tick()  # posts Monday's round (12:00, within the grace window)
    before = await wired.submissions.submit(bob, "pair-sum-count", text=None, code="def count_pairs(n, t):\n    return 0\n")
    assert "Wrong answer" in before.title and "reveal" not in before.footer
    await wired.tick()  # 12:00 is past 11:00: the round is revealed, and still today's
    reference = bank.get("pair-sum-count").reference
    assert reference
    reply = await wired.submissions.submit(bob, "pair-sum-count", text=None, code=reference)
    assert reply.title.startswith("Accepted ✓")
    assert reply.code == reference and "the reference solution is below" in reply.body
    assert reply.footer.startswith("Graded after the reveal of Mon 23 Nov: practice, no points.")
    assert await wired.store.total_points(bob.member.id) == 0
    await wired.outbox.deliver()
    assert chat.posts("announcement") == []
    post = next(p for p in await wired.store.daily_posts_on(community.id, MONDAY) if p.question_id == "pair-sum-count")
    assert (await wired.store.post_stats(post.id)).first_solvers == ()


async def test_a_written_answer_after_the_reveal_shows_the_outline_and_is_not_listed(
    wired: Services, member: Caller, admin: Caller, clock: FixedClock, bank: Bank
) -> None:
    await wired.tick()
    await wired.submissions.submit(admin, "conflict-lite", text=WRITTEN, code=None)  # before the reveal
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    await wired.tick()
    today = [p.question_id for p in await wired.store.daily_posts_on(admin.community.id, date(2026, 11, 24))]
    assert "conflict-lite" in today  # the fixture bank's only behavioral question comes round again...
    reply = await wired.submissions.submit(member, "conflict-lite", text=WRITTEN, code=None)
    assert "reveal" not in reply.footer  # ...so it is today's question again, graded as such
    # Wednesday's round has coding only, so Tuesday's behavioral post is revealed and not back
    await wired.store.update_community(admin.community.id, tracks=("coding",))
    community = await wired.store.get_community(admin.community.id)
    assert community is not None
    clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    await wired.tick()
    late = Caller(await wired.store.ensure_member(community.id, "u-cy", "Cy", now=clock.now()), community)
    after = await wired.submissions.submit(late, "conflict-lite", text=WRITTEN, code=None)
    assert after.title == "Answer recorded · estimated rubric coverage 3/3 (100%)"
    assert after.footer == "Graded after the reveal of Tue 24 Nov: practice, no points."
    outline = (bank.get("conflict-lite").outline or "").strip()
    assert f"**Model outline** (revealed on Tue 24 Nov)\n{outline}" in after.body
    assert "vote" not in after.body.lower()  # an answer written after the reveal is not put up for votes
    assert await wired.store.total_points(late.member.id) == 0
    listing = await wired.submissions.answers(admin, "conflict-lite")
    assert [f.name.split(" · ")[0] for f in listing.fields] == ["Ada"]  # Bob and Cy wrote after the first reveal
    with pytest.raises(NotFound, match="did not answer"):
        await wired.submissions.vote(admin, "conflict-lite", "Cy")


def test_console_submits_to_a_revealed_daily(tmp_path: Path) -> None:
    """The console, as a member would: the round is posted, the next day reveals it, the member still answers."""
    script = "/admin clock 2026-11-23T10:00\n/admin clock 2026-11-24T10:00\n"
    env = {"PATH": "/usr/bin:/bin", "ONSITE_QUESTIONS": str(REPO / "tests" / "fixtures" / "bank"),
           "XDG_DATA_HOME": str(tmp_path / "d"), "USER": "tester"}

    def run(text: str) -> list[dict[str, object]]:
        result = subprocess.run([sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "x.db"), "--json"],
                                input=text, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    out = run(script)
    monday = [o for o in out if o["to"] == "channel:#daily" and str(o["title"]).startswith("Daily ML theory · Mon")]
    tuesday = [o for o in out if o["to"] == "channel:#daily" and str(o["title"]).startswith("Daily ML theory · Tue")]
    assert len(monday) == len(tuesday) == 1
    qid = str(monday[0]["footer"]).rsplit("id: ", 1)[1]
    assert qid not in str(tuesday[0]["footer"])
    assert any(o["kind"] == "reveal" and qid in str(o["footer"]) for o in out)
    answer = {"precision-from-counts": "0.8", "overfit-first-step": "B"}[qid]
    replies = [o for o in run(f"/as bob\n/submit {qid} {answer}\n") if o["to"] == "reply"]
    assert replies[-1]["footer"] == "Graded after the reveal of Mon 23 Nov: practice, no points."
    assert not str(replies[-1]["title"]).startswith("error")
