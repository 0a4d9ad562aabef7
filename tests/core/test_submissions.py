"""Submissions: grading, checking, storing and scoring, and every way bad input is refused."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.core import scoring
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.errors import Busy, Conflict, Forbidden, NotFound, UsageError
from bot.core.messages import Message
from bot.core.models import Caller, OutboxItem, RubricPoint
from bot.core.services import Services
from bot.core.submissions import MAX_CODE_BYTES, parse_choice, parse_number, rubric_coverage, strip_fences
from bot.store.sqlite import Store
from tests.conftest import RecordingChat, StandInGrader

WRONG = "def count_pairs(nums, target):\n    return 0\n"
FEED_ANSWER = ("For 2M daily users I expect about 300 QPS at peak, so the latency budget for ranking is 150 ms. "
               "A gradient boosted ranking model scores candidates with features such as author affinity and "
               "freshness. We monitor the online metric of session length and run an A/B test before every "
               "model change, keeping a holdout to catch slow drift.")


def reference(bank: Bank, qid: str) -> str:
    ref = bank.get(qid).reference
    assert ref is not None
    return ref


async def points(services: Services, caller: Caller) -> int:
    return await services.store.total_points(caller.member.id)


async def test_daily_code_solve_scores_once_with_early_bonus_and_announcement(
    wired: Services, member: Caller, admin: Caller, bank: Bank, chat: RecordingChat
) -> None:
    await wired.tick()  # 2026-11-23 12:00 UTC: the round is posted
    wrong = await wired.submissions.submit(member, "pair-sum-count", text=None, code=WRONG)
    assert wrong.title.startswith("Wrong answer · 7/8 tests")
    assert {f.name: f.value for f in wrong.fields}["Expected"] == "`2`"
    assert await points(wired, member) == 0
    ok = await wired.submissions.submit(member, "pair-sum-count", text=None, code=reference(bank, "pair-sum-count"))
    assert ok.title.startswith("Accepted ✓ · 8/8 tests") and ok.ephemeral
    assert "+10 points · +5 early bonus (daily)" in ok.footer
    assert await points(wired, member) == 15
    again = await wired.submissions.submit(member, "pair-sum-count", text=None, code=reference(bank, "pair-sum-count"))
    assert again.footer.startswith("Already solved before: no new points.")
    assert await points(wired, member) == 15
    second = await wired.submissions.submit(admin, "pair-sum-count", text=None, code=reference(bank, "pair-sum-count"))
    assert "+3 early bonus" in second.footer
    await wired.outbox.deliver()
    announcements = chat.posts("announcement")
    assert [a.body for a in announcements] == [
        "**Bob** solved today's Coding question (#1).",
        "**Ada** solved today's Coding question (#2).",
    ]
    assert all("def count_pairs" not in a.body for a in announcements)


async def test_practice_question_scores_half_and_no_announcement(
    wired: Services, member: Caller, bank: Bank, chat: RecordingChat
) -> None:
    await wired.store.update_community(member.community.id, tracks=("ml-theory",))
    community = await wired.store.get_community(member.community.id)
    assert community is not None
    caller = Caller(member.member, community)
    await wired.tick()
    reply = await wired.submissions.submit(caller, "pair-sum-count", text=None, code=reference(bank, "pair-sum-count"))
    assert "+5 points (practice: half points)" in reply.footer
    assert chat.posts("announcement") == []


async def test_theory_is_checked_once_with_the_explanation(wired: Services, member: Caller) -> None:
    await wired.tick()
    reply = await wired.submissions.submit(member, "overfit-first-step", text="(b)", code=None)
    assert reply.title.startswith("Correct ✓") and "overfitting" in reply.body
    with pytest.raises(Conflict, match="one attempt"):
        await wired.submissions.submit(member, "overfit-first-step", text="C", code=None)
    with pytest.raises(UsageError, match="one letter from A, B, C"):
        await wired.submissions.submit(member, "overfit-first-step", text="maybe", code=None)
    numeric = await wired.submissions.submit(member, "precision-from-counts", text="0.804", code=None)
    assert numeric.title.startswith("Correct ✓")  # within the ±0.005 tolerance, and it is today's question
    assert "+4 points" in numeric.footer


async def test_written_answer_gets_rubric_coverage(wired: Services, member: Caller) -> None:
    await wired.tick()
    short = "I would rank by recency."
    with pytest.raises(UsageError, match="at least 40 words"):
        await wired.submissions.submit(member, "feed-ranking-lite", text=short, code=None)
    answer = ("First I clarify scale: 2M daily users means roughly 300 QPS at peak for feed loads, with a 200 ms "
              "latency budget. Candidates come from follows and trending posts. A gradient boosted ranking model "
              "scores them on engagement features such as author affinity and freshness. I would add caching "
              "of candidate lists and precompute author embeddings offline so serving stays cheap.")
    reply = await wired.submissions.submit(member, "feed-ranking-lite", text=answer, code=None)
    assert reply.title == "Answer recorded · estimated rubric coverage 2/3 (67%)"
    fields = {f.name: f.value for f in reply.fields}
    assert fields["Developed"] == ("✓ Requirements and scale: “First I clarify scale: 2M daily users means roughly "
                                   "300 QPS at peak for feed loads, with …”\n"
                                   "✓ Model: “A gradient boosted ranking model scores them on engagement features "
                                   "such as author …”")
    assert fields["Missed"].startswith("✗ **Monitoring and iteration**")
    with pytest.raises(Conflict, match="one written answer"):
        await wired.submissions.submit(member, "feed-ranking-lite", text=answer, code=None)


async def test_bad_input_is_refused_and_nothing_is_stored(
    wired: Services, member: Caller, grader: StandInGrader, bank: Bank
) -> None:
    await wired.tick()
    with pytest.raises(NotFound, match="No question with id 'nope'"):
        await wired.submissions.submit(member, "nope", text="x", code=None)
    with pytest.raises(UsageError, match=r"the limit is 64\.0 KB"):
        await wired.submissions.submit(member, "pair-sum-count", text=None, code="#" * (MAX_CODE_BYTES + 1))
    with pytest.raises(UsageError, match="Send your code"):
        await wired.submissions.submit(member, "pair-sum-count", text=None, code="   ")
    with pytest.raises(Conflict, match="nothing was recorded"):
        await wired.submissions.submit(member, "pair-sum-count", text=None, code="BOOM")
    assert await wired.store.submissions_of(member.member.id, "pair-sum-count") == []
    assert len(grader.calls) == 1  # the oversize and empty submissions never reached the judge


async def test_one_submission_in_flight_per_member(wired: Services, member: Caller, admin: Caller, grader: StandInGrader) -> None:
    await wired.tick()
    grader.gate = asyncio.Event()
    first = asyncio.create_task(wired.submissions.submit(member, "pair-sum-count", text=None, code=WRONG))
    await asyncio.sleep(0.01)
    with pytest.raises(Busy, match="still being graded"):
        await wired.submissions.submit(member, "pair-sum-count", text=None, code=WRONG)
    other = asyncio.create_task(wired.submissions.submit(admin, "pair-sum-count", text=None, code=WRONG))
    await asyncio.sleep(0.01)
    grader.gate.set()
    await first
    await other
    rows = await wired.store.submissions_of(member.member.id, "pair-sum-count")
    assert len(rows) == 1


async def test_revealed_question_is_graded_for_no_points(wired: Services, member: Caller, clock: FixedClock) -> None:
    await wired.tick()
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    await wired.tick()  # reveals Monday's round
    monday = await wired.store.daily_posts_on(member.community.id, date(2026, 11, 23))
    theory = next(p for p in monday if p.track == "ml-theory")  # the fixture bank has two: Tuesday has the other
    past = await wired.submissions.submit(member, theory.question_id, text="1", code=None)  # more in test_past_dailies
    assert past.footer == "Graded after the reveal of Mon 23 Nov: practice, no points."
    coding = next(p for p in monday if p.track == "coding")  # the only coding question: back in Tuesday's round
    reply = await wired.submissions.submit(member, coding.question_id, text=None, code=WRONG)
    assert reply.title.startswith("Wrong answer")


async def test_votes_after_the_reveal(wired: Services, member: Caller, admin: Caller, clock: FixedClock) -> None:
    await wired.tick()
    await wired.submissions.submit(member, "feed-ranking-lite", text=FEED_ANSWER, code=None)
    with pytest.raises(Conflict, match="after its reveal"):
        await wired.submissions.vote(admin, "feed-ranking-lite", "Bob")
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    await wired.tick()
    before = await points(wired, member)
    listing = await wired.submissions.answers(admin, "feed-ranking-lite")
    assert listing.fields[0].name.startswith("Bob · coverage 100%")
    reply = await wired.submissions.vote(admin, "feed-ranking-lite", "bob")
    assert "1 so far" in reply.body
    assert await points(wired, member) == before + 1
    with pytest.raises(Conflict, match="already voted"):
        await wired.submissions.vote(admin, "feed-ranking-lite", "Bob")
    with pytest.raises(Forbidden):
        await wired.submissions.vote(member, "feed-ranking-lite", "Bob")


async def test_streak_milestone_in_the_members_timezone(wired: Services, member: Caller, clock: FixedClock, bank: Bank) -> None:
    store = wired.store
    await store.update_member(member.member.id, timezone="America/Los_Angeles")
    caller = Caller(await store.get_member(member.member.id), member.community)  # type: ignore[arg-type]
    total_streak_bonus = 0
    for offset in range(7):
        clock.set(datetime(2026, 11, 23, 12, 0, tzinfo=UTC) + timedelta(days=offset))
        await wired.tick()
        _, items = await wired.daily.current_round(caller.community)
        theory = next(i for i in items if i.post.track == "ml-theory")
        assert theory.question is not None
        answer = theory.question.answer if theory.question.kind == "choice" else str(theory.question.answer)
        reply = await wired.submissions.submit(caller, theory.question.id, text=str(answer), code=None)
        if "streak bonus" in reply.footer:
            total_streak_bonus += 1
            assert "streak 7 day(s)" in reply.footer
    assert total_streak_bonus == 1


def test_scoring_table_and_streaks() -> None:
    assert scoring.solve_points("coding", "hard", daily=True) == 30
    assert scoring.solve_points("ml-coding", "medium", daily=False) == 10
    assert scoring.solve_points("ml-theory", "easy", daily=True) == 4
    assert scoring.solve_points("behavioral", "hard", daily=True, coverage=0.5) == 4
    assert scoring.solve_points("behavioral", "hard", daily=True, coverage=0.0) == 1
    assert [scoring.early_bonus(i) for i in range(0, 6)] == [0, 5, 3, 1, 0, 0]
    d = date(2026, 11, 23)
    days = [d - timedelta(days=i) for i in (0, 1, 2, 5, 6)]
    assert scoring.streaks(days, d) == (3, 3)
    assert scoring.streaks(days, d + timedelta(days=1)) == (3, 3)  # today not solved yet: still alive
    assert scoring.streaks(days, d + timedelta(days=2)) == (0, 3)
    assert scoring.streaks([], d) == (0, 0)
    # 23:30 in Los Angeles on the 23rd is already the 24th in UTC
    late = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    assert scoring.local_day(late, "America/Los_Angeles") == date(2026, 11, 23)


def test_answer_parsing_and_fences() -> None:
    assert parse_choice(" c) ", ["a", "b", "c"]) == "C"
    assert parse_number("1,000.5") == 1000.5 and parse_number("-3e-2") == -0.03
    for bad in ("80%", "about 3", "", "1.2.3", "."):
        with pytest.raises(UsageError):
            parse_number(bad)
    assert strip_fences("```python\nx = 1\n```") == "x = 1"
    covered, missed = rubric_coverage(
        "We measured p99 latencies under load and kept them inside the budget. The launch brought 12% gains in "
        "retention over the quarter.",
        [RubricPoint("Scale", "Latency within the budget", ("latency",)),
         RubricPoint("Result", "Gains in retention", ("percent",)), RubricPoint("Ethics", "d", ("fairness",))])
    assert [p.point for p in covered] == ["Scale", "Result"] and [p.point for p in missed] == ["Ethics"]
    bare = rubric_coverage("We measured p99 latencies and 12% gains", [RubricPoint("Scale", "d", ("latency",))])
    assert bare[0] == []  # a term in a short sentence is a mention, not a development


async def test_communities_never_see_each_others_rounds_or_submissions(
    wired: Services, member: Caller, clock: FixedClock
) -> None:
    store = wired.store
    other_c = await store.ensure_community("test", "guild-2", "Other guild", now=clock.now(), channel="general")
    other = Caller(await store.ensure_member(other_c.id, "u-bob", "Bob", now=clock.now()), other_c)
    eve = Caller(await store.ensure_member(other_c.id, "u-eve", "Eve", now=clock.now()), other_c)
    await wired.tick()
    # Monday: only guild 1's Bob answers
    await wired.submissions.submit(member, "precision-from-counts", text="0.8", code=None)
    written = " ".join(["latency qps model features monitor metric"] * 8)
    await wired.submissions.submit(member, "feed-ranking-lite", text=written, code=None)
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    await wired.tick()  # both guilds reveal Monday's round
    # the same platform user id in guild 2 is another member, with his own record
    assert other.member.id != member.member.id
    assert await store.submissions_of(other.member.id, "precision-from-counts") == []
    stats = await wired.leaderboard.member_stats(other_c, other.member)
    assert stats.tracks == () and stats.points == 0
    assert await store.leaderboard(other_c.id) == []
    assert [r.display_name for r in await store.leaderboard(member.community.id)] == ["Bob"]
    # guild 2 cannot read or vote on guild 1's written answers
    assert (await wired.submissions.answers(eve, "feed-ranking-lite")).body == "Nobody answered this question."
    with pytest.raises(NotFound, match="Bob did not answer"):
        await wired.submissions.vote(eve, "feed-ranking-lite", "Bob")
    listing = await wired.submissions.answers(member, "feed-ranking-lite")
    assert listing.fields[0].name.startswith("Bob · coverage")


async def test_two_processes_answering_at_once_store_one_attempt(
    wired: Services, store: Store, bank: Bank, clock: FixedClock, member: Caller
) -> None:
    """The same answer sent to two bot processes (two connections to one file) at the same moment."""
    await wired.tick()
    other = await store.reopen()  # a second process's connection
    try:
        twin = Services.build(other, bank, clock)
        written = FEED_ANSWER
        for qid, text in (("overfit-first-step", "B"), ("feed-ranking-lite", written)):
            results = await asyncio.gather(
                wired.submissions.submit(member, qid, text=text, code=None),
                twin.submissions.submit(member, qid, text=text, code=None),
                return_exceptions=True,
            )
            assert sorted(type(r).__name__ for r in results) == ["Conflict", "Message"], results
            assert len(await store.submissions_of(member.member.id, qid)) == 1
    finally:
        await other.close()


async def test_regrading_after_a_crash_survives_a_judge_fault(
    wired: Services, store: Store, bank: Bank, member: Caller, chat: RecordingChat, grader: StandInGrader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An orphaned job (its process died) is re-graded by the next tick; a judge fault meanwhile neither
    stops that tick's other work nor loses the job."""
    await wired.tick()
    job = await store.start_grading_job(community_id=member.community.id, member_id=member.member.id,
                                        question_id="pair-sum-count", daily_post_id=None,
                                        code=reference(bank, "pair-sum-count"), now=wired.clock.now())
    async with store.transaction() as db:  # its process is gone: a pid beyond any pid_max
        await db.execute("UPDATE grading_jobs SET owner = ? WHERE id = ?", (f"{socket.gethostname()}:4194304:1", job))
    real_grade = grader.grade

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the sandbox pool died")

    monkeypatch.setattr(grader, "grade", broken)
    await wired.submissions.store.enqueue([OutboxItem(community_id=member.community.id, key="hello", purpose="dm",
                                                      member_id=member.member.id, message=Message(body="hi"))],
                                          now=wired.clock.now())
    await wired.tick()
    assert [m.body for k, _, m in chat.sent if k == "dm"] == ["hi"]  # the tick went on and delivered
    assert [(r["owner"], r["finished_at"]) for r in await store.open_grading_jobs()] == [("released", None)]

    monkeypatch.setattr(grader, "grade", real_grade)
    await wired.tick()
    dms = [m for k, _, m in chat.sent if k == "dm"]
    assert dms[-1].title.startswith("Accepted ✓") and "cut off by a restart" in dms[-1].body
    assert await store.open_grading_jobs() == []
    assert [r["verdict"] for r in await store.submissions_of(member.member.id, "pair-sum-count")] == ["accepted"]


async def test_a_job_of_another_host_is_taken_over_once_its_lease_has_passed(
    wired: Services, store: Store, bank: Bank, member: Caller, chat: RecordingChat, clock: FixedClock,
) -> None:
    """Another host's process cannot be checked from here (several bot hosts on one PostgreSQL): its job
    counts as held until the job's lease passes, then the next tick re-grades it and DMs the verdict."""
    await wired.tick()
    job = await store.start_grading_job(community_id=member.community.id, member_id=member.member.id,
                                        question_id="pair-sum-count", daily_post_id=None,
                                        code=reference(bank, "pair-sum-count"), now=clock.now())
    async with store.transaction() as db:
        await db.execute("UPDATE grading_jobs SET owner = 'another-host:1234:99' WHERE id = ?", (job,))
    clock.advance(timedelta(minutes=10))
    await wired.tick()
    assert [r["owner"] for r in await store.open_grading_jobs()] == ["another-host:1234:99"]  # still its
    clock.advance(timedelta(minutes=6))  # past the 15-minute lease of a job graded in its own process
    await wired.tick()
    assert await store.open_grading_jobs() == []
    dms = [m for k, _, m in chat.sent if k == "dm"]
    assert len(dms) == 1 and dms[0].title.startswith("Accepted ✓") and "cut off by a restart" in dms[0].body
