"""/practice: the weakest track and topic first, never a question already submitted or shown as a daily."""

from __future__ import annotations

import pytest

from bot.core.bank import Bank
from bot.core.errors import NotFound
from bot.core.models import Caller, Question
from bot.core.practice import Record, choose, records
from bot.core.services import Services


def q(qid: str, track: str, topics: tuple[str, ...], difficulty: str = "easy") -> Question:
    return Question(id=qid, track=track, title=qid, difficulty=difficulty, topics=topics, prompt="p")


SYNTHETIC = Bank([
    q("c-hash-1", "coding", ("hashing",)), q("c-graph-1", "coding", ("graphs",)),
    q("c-graph-2", "coding", ("graphs",), "medium"), q("c-graph-0", "coding", ("graphs",), "hard"),
    q("t-metrics-1", "ml-theory", ("metrics",)), q("t-loss-1", "ml-theory", ("losses",)),
    q("d-feed-1", "system-design", ("ranking",)),
])
TRACKS3 = ("coding", "ml-theory", "system-design")


def rows(*subs: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"question_id": qid, "track": track, "verdict": verdict} for qid, track, verdict in subs]


def test_records_count_distinct_questions_and_topics() -> None:
    tracks, topics = records(rows(("c-graph-1", "coding", "wrong_answer"), ("c-graph-1", "coding", "accepted"),
                                  ("c-hash-1", "coding", "wrong_answer"), ("gone", "coding", "accepted")), SYNTHETIC)
    assert tracks["coding"] == Record(attempted=3, solved=2)  # a question that left the bank still counts
    assert topics == {"graphs": Record(1, 1), "hashing": Record(1, 0)}
    assert Record(0, 0).smoothed == 0 and Record(1, 1).smoothed == 0.5


def test_new_member_gets_enabled_tracks_in_order() -> None:
    pick = choose(SYNTHETIC, tracks=("ml-theory", "coding"), track_records={}, topic_records={}, excluded=set(), shown={})
    assert pick is not None and pick.track == "ml-theory"
    assert pick.topic == "losses" and pick.question.id == "t-loss-1"  # tie between topics: by name


def test_lowest_accuracy_track_and_topic_win() -> None:
    track_records = {"coding": Record(4, 1), "ml-theory": Record(2, 2), "system-design": Record(1, 1)}
    topic_records = {"hashing": Record(2, 2), "graphs": Record(2, 0)}
    pick = choose(SYNTHETIC, tracks=TRACKS3, track_records=track_records, topic_records=topic_records,
                  excluded={"c-graph-1"}, shown={})
    assert pick is not None
    assert (pick.track, pick.topic) == ("coding", "graphs")
    assert pick.question.id == "c-graph-2"  # easy one was submitted already: medium before hard


def test_failed_track_comes_before_an_untried_one() -> None:
    pick = choose(SYNTHETIC, tracks=TRACKS3, track_records={"ml-theory": Record(1, 0)}, topic_records={},
                  excluded=set(), shown={})
    assert pick is not None and pick.track == "ml-theory"


def test_offered_questions_wait_until_the_rest_were_offered() -> None:
    kwargs = dict(tracks=("coding",), track_records={}, topic_records={}, excluded=set())
    first = choose(SYNTHETIC, shown={}, **kwargs)  # type: ignore[arg-type]
    assert first is not None and first.question.id == "c-graph-1"  # graphs < hashing; easy first
    second = choose(SYNTHETIC, shown={"c-graph-1": 1}, **kwargs)  # type: ignore[arg-type]
    assert second is not None and second.question.id == "c-graph-2"
    all_offered = {"c-graph-1": 2, "c-graph-2": 1, "c-graph-0": 1, "c-hash-1": 1}
    again = choose(SYNTHETIC, shown=all_offered, **kwargs)  # type: ignore[arg-type]
    assert again is not None and again.question.id == "c-graph-2"  # least offered, then easiest


def test_nothing_left_gives_none() -> None:
    ids = {x.id for x in SYNTHETIC.by_track("system-design")}
    assert choose(SYNTHETIC, tracks=("system-design",), track_records={}, topic_records={}, excluded=ids, shown={}) is None


async def test_practice_follows_the_member_and_skips_dailies(wired: Services, member: Caller) -> None:
    first = await wired.practice.practice(member)
    assert first.title == "Practice: Count pairs that sum to a target" and first.ephemeral
    assert "Coding is your weakest track (not tried yet)" in first.body
    assert "/timed pair-sum-count" in first.footer

    # a wrong theory answer makes ML theory the weakest track; the question answered is never offered again
    await wired.submissions.submit(member, "overfit-first-step", text="C", code=None)
    weak = await wired.practice.practice(member)
    assert "ML theory is your weakest track (0/1 solved)" in weak.body
    assert "`precision-from-counts`" in {f.value for f in weak.fields}

    # once the round is posted, its questions are dailies for everyone: practice leaves them out
    await wired.tick()
    with pytest.raises(NotFound, match="seen every question in Coding"):
        await wired.practice.practice(member, "coding")
    shown = await wired.store.practice_shown(member.member.id)
    assert shown == {"pair-sum-count": 1, "precision-from-counts": 1}
