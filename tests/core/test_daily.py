from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.core.clock import FixedClock
from bot.core.daily import DEFAULT_PATTERN, choose_question, parse_pattern, round_date
from bot.core.models import Caller, Community, Question
from bot.core.services import Services


def q(qid: str, difficulty: str = "easy") -> Question:
    return Question(id=qid, track="coding", title=qid, difficulty=difficulty, topics=("x",), prompt="p")


def community(tz: str = "UTC", post_time: str = "09:00") -> Community:
    return Community(1, "test", "g", "G", "daily", tz, post_time, ("coding",))


def test_round_date_follows_the_community_timezone_and_post_time() -> None:
    # 2026-11-23 07:30 UTC is 16:30 in Tokyo (after 09:00) and 02:30 in New York (before 09:00)
    now = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
    assert round_date(community("Asia/Tokyo"), now) == date(2026, 11, 23)
    assert round_date(community("America/New_York"), now) == date(2026, 11, 22)
    assert round_date(community("UTC", "07:30"), now) == date(2026, 11, 23)
    assert round_date(community("UTC", "07:31"), now) == date(2026, 11, 22)


def test_rotation_never_repeats_until_the_track_is_exhausted() -> None:
    bank = [q(f"q{i}") for i in range(5)]
    history: list[str] = []
    day = date(2026, 11, 23)
    for offset in range(5):
        pick = choose_question(bank, history, community_id=1, day=day + timedelta(days=offset), pattern=["easy"] * 7)
        assert pick is not None and pick.id not in history
        history.append(pick.id)
    assert sorted(history) == [f"q{i}" for i in range(5)]
    # the sixth day starts a new cycle: a repeat is now allowed
    sixth = choose_question(bank, history, community_id=1, day=day + timedelta(days=5), pattern=["easy"] * 7)
    assert sixth is not None
    seventh = choose_question(bank, [*history, sixth.id], community_id=1, day=day + timedelta(days=6), pattern=["easy"] * 7)
    assert seventh is not None and seventh.id != sixth.id


def test_difficulty_follows_the_weekday_pattern_with_nearest_fallback() -> None:
    bank = [q("e1", "easy"), q("m1", "medium"), q("h1", "hard")]
    monday, saturday = date(2026, 11, 23), date(2026, 11, 28)
    assert DEFAULT_PATTERN[monday.weekday()] == "easy" and DEFAULT_PATTERN[saturday.weekday()] == "hard"
    assert choose_question(bank, [], community_id=1, day=monday).id == "e1"  # type: ignore[union-attr]
    assert choose_question(bank, [], community_id=1, day=saturday).id == "h1"  # type: ignore[union-attr]
    # hard wanted but used: the nearest difficulty is medium
    assert choose_question(bank, ["h1"], community_id=1, day=saturday).id == "m1"  # type: ignore[union-attr]
    # medium wanted, only easy and hard left: prefer the easier neighbour
    wednesday = date(2026, 11, 25)
    assert choose_question(bank, ["m1"], community_id=1, day=wednesday).id == "e1"  # type: ignore[union-attr]


def test_choice_is_deterministic_but_varies_between_communities() -> None:
    bank = [q(f"q{i}") for i in range(20)]
    day = date(2026, 11, 23)
    picks = {choose_question(bank, [], community_id=c, day=day).id for c in range(1, 30)}  # type: ignore[union-attr]
    assert len(picks) > 3
    assert choose_question(bank, [], community_id=7, day=day) == choose_question(bank, [], community_id=7, day=day)
    assert choose_question([], [], community_id=1, day=day) is None


def test_pattern_parsing() -> None:
    assert parse_pattern(None) == DEFAULT_PATTERN
    assert parse_pattern("hard," * 6 + "easy")[-1] == "easy"
    with pytest.raises(ValueError, match="7 comma-separated"):
        parse_pattern("easy,hard")


async def test_current_round_claims_once_and_is_stable(services: Services, admin: Caller, clock: FixedClock) -> None:
    day, items = await services.daily.current_round(admin.community)
    assert day == date(2026, 11, 23)
    assert [i.post.track for i in items] == list(admin.community.tracks)
    assert all(i.question is not None and i.question.track == i.post.track for i in items)
    again = (await services.daily.current_round(admin.community))[1]
    assert [i.post.id for i in again] == [i.post.id for i in items]
    # before the post time the day before is still the current round
    clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    assert (await services.daily.current_round(admin.community))[0] == date(2026, 11, 23)
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    day2, items2 = await services.daily.current_round(admin.community)
    assert day2 == date(2026, 11, 24) and {i.post.id for i in items2}.isdisjoint({i.post.id for i in items})


async def test_a_question_removed_from_the_bank_does_not_break_the_round(
    services: Services, admin: Caller
) -> None:
    _, items = await services.daily.current_round(admin.community)
    coding = next(i for i in items if i.post.track == "coding")
    services.daily.bank = type(services.bank)([x for x in services.bank if x.id != coding.post.question_id])
    _, after = await services.daily.current_round(admin.community)
    assert next(i for i in after if i.post.track == "coding").question is None
