"""Answer tells of choice questions: the measures on made-up banks, and the real bank kept free of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main
from bot.core.bank import Bank
from bot.core.bank_stats import TELL_LIMIT, choice_tells, hedge_score, report_lines
from bot.core.models import Question

REPO = Path(__file__).resolve().parents[2]


def choice(qid: str, choices: list[str], answer: str, difficulty: str = "easy") -> Question:
    return Question(id=qid, track="ml-theory", title=qid, difficulty=difficulty, topics=("t",), prompt="p",
                    kind="choice", choices=tuple(choices), answer=answer, explanation="e")


def numeric(qid: str) -> Question:
    return Question(id=qid, track="ml-theory", title=qid, difficulty="easy", topics=("t",), prompt="p",
                    kind="numeric", answer=3, tolerance=0.0, explanation="e")


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("The gradient vanishes", 0),
        ("It usually helps, but it may hurt if the batch is small", 3),  # usually, may, if ("but" is not counted)
        ("Often; typically; roughly", 5),  # three words and two semicolons
        ("IF it CAN, it Might", 3),  # case-insensitive
        ("Iffy canvas maybelline", 0),  # whole words only
        ("It depends on the data; about half", 3),  # depends, about, one semicolon
    ],
)
def test_hedge_score_counts_qualifier_words_and_semicolons(text: str, score: int) -> None:
    assert hedge_score(text) == score


def test_longest_shortest_and_hedged_are_strict() -> None:
    bank = [
        choice("a", ["short", "a much longer option", "mid one"], "B"),  # longest
        choice("b", ["same!", "tie!!", "x"], "A"),  # tied for longest: counts as not longest
        choice("c", ["x", "a longer one", "another one"], "A"),  # shortest
        choice("d", ["it may help if so", "it helps", "it may help"], "A"),  # most hedged (2 against 1, 0)
        choice("e", ["it may help", "it can help", "no"], "A"),  # tied hedge: not most hedged
        choice("f", ["one", "two", "six"], "C"),  # all equal length, hedge 0: nothing
        numeric("g"),  # numeric questions are not counted
    ]
    total, per = choice_tells(bank)
    assert total.questions == 6
    assert (total.longest, total.shortest, total.hedged) == (2, 1, 1)  # a and d are longest; c shortest; d hedged
    assert total.rate("longest") == pytest.approx(2 / 6)
    assert total.letters == {"A": 4, "B": 1, "C": 1}
    assert total.length_ranks == {1: 5, 3: 1}  # only c has options strictly longer than its correct one (two)
    assert per["easy"].questions == 6 and per["hard"].questions == 0 and per["hard"].rate("longest") == 0.0


def test_length_ignores_surrounding_whitespace() -> None:
    total, _ = choice_tells([choice("a", ["abc", "   ab   "], "B")])
    assert total.longest == 0 and total.shortest == 1


def test_per_difficulty_counts_split_the_total() -> None:
    bank = [choice("a", ["x", "longer"], "B", "easy"), choice("b", ["longer", "x"], "B", "hard"),
            choice("c", ["x", "longer"], "B", "hard")]
    total, per = choice_tells(bank)
    assert (per["easy"].longest, per["easy"].questions) == (1, 1)
    assert (per["hard"].longest, per["hard"].questions) == (1, 2)
    assert per["medium"].questions == 0
    assert total.longest == 2


def test_report_warns_above_the_limit_only() -> None:
    telling = [choice(f"q{i}", ["x", "the correct one, if so"], "B") for i in range(3)]
    lines = report_lines(telling)
    assert lines[0].startswith("choice questions: 3")
    assert any(line.startswith("warning: the correct option is the longest in 100%") for line in lines)
    assert any(line.startswith("warning: the correct option is the most hedged in 100%") for line in lines)
    fair = [choice("a", ["x", "longer", "mid"], "B"), choice("b", ["longer", "x", "mid"], "C"),
            choice("c", ["x", "longer", "mid"], "A")]  # one longest, one middle, one shortest
    assert not any(line.startswith("warning") for line in report_lines(fair))  # 1/3 = 33% is within 35%
    shortest = [choice(f"s{i}", ["a longer wrong one", "ok", "another wrong one"], "B") for i in range(2)]
    assert any(line.startswith("warning: the correct option is the shortest in 100%") for line in report_lines(shortest))
    assert report_lines([numeric("n")]) == ["choice questions: none"]
    assert all(line.strip() for line in report_lines(telling))  # no blank lines (the stats table is parsed by line)


def test_stats_command_prints_the_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["questions", "stats", str(REPO / "tests" / "fixtures" / "bank")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["track", "easy", "medium", "hard", "total"]
    assert "choice questions: 1; the correct option is (strictly, ties count as no):" in out
    assert any(line.split()[:2] == ["longest:", "1/1"] for line in out)
    assert any(line.startswith("warning: the correct option is the longest in 100%") for line in out)


def test_the_real_bank_has_no_length_or_hedging_tell() -> None:
    total, _ = choice_tells(Bank.load(REPO / "questions"))
    assert total.questions >= 76
    rates = {name: round(total.rate(name), 3) for name in ("longest", "hedged", "shortest")}
    assert total.rate("longest") <= TELL_LIMIT, f"'pick the longest' scores {rates['longest']:.0%}: {rates}"
    assert total.rate("hedged") <= TELL_LIMIT, f"'pick the most hedged' scores {rates['hedged']:.0%}: {rates}"
