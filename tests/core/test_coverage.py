"""The built-in estimate of written answers resists stuffing and copying and still credits real answers.

Measured on the real bank: the answers we wrote ourselves (tests/fixtures/written*), bare keyword lists,
one term per sentence, a filler template refilled with rubric terms, a pasted rubric or outline, and a
good answer sent to another question."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest

from bot.core.bank import Bank
from bot.core.coverage import estimate, is_prose, sentences
from bot.core.models import Question
from bot.core.submissions import readable_texts

REPO = Path(__file__).resolve().parents[2]
BANK = Bank.load(REPO / "questions")
WRITTEN = [q for q in BANK if q.rubric]
GOOD = sorted((REPO / "tests" / "fixtures" / "written").glob("*.txt")) + \
    sorted((REPO / "tests" / "fixtures" / "written_answers").glob("*.md"))
BAR = 0.5


def share(text: str, q: Question) -> float:
    found, _ = estimate(text, q.rubric, copied_from=readable_texts(q))
    return len(found) / len(q.rubric)


def question_of(path: Path) -> Question:
    return BANK.get(path.stem.removeprefix("short-"))


def test_there_are_good_answers_for_both_written_tracks() -> None:
    assert len(GOOD) >= 12
    assert {question_of(p).track for p in GOOD} == {"system-design", "behavioral"}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_a_real_answer_reaches_the_bar(path: Path) -> None:
    assert share(path.read_text(encoding="utf-8"), question_of(path)) >= BAR


def test_the_buzzword_list_of_the_issue_scores_low() -> None:
    q = BANK.get("rag-support-assistant")
    buzz = ("we stream tokens, cache, use bm25, a prompt with citations, chunking, a golden set, hybrid retrieval, "
            "reranker, embeddings, vector database, guardrails, evals, feedback, latency, p95, cost per query, "
            "fallback to a human, access control, freshness, deduplication, monitoring, drift, dashboards")
    assert share(buzz, q) <= 1 / len(q.rubric)


def stuffings(q: Question, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    keys = [k for r in q.rubric for k in r.keywords] or [r.point for r in q.rubric]
    shuffled = keys[:]
    rng.shuffle(shuffled)
    pairs = zip(shuffled[::2], shuffled[1::2], strict=False)
    return {
        "keyword list": "We use " + ", ".join(keys) + ".",
        "one term per sentence": " ".join(f"We use {k} here." for k in keys),
        "template refilled": " ".join(f"In our design we rely on {a} and {b} to make the whole thing work well."
                                      for a, b in pairs),
        "pasted rubric": " ".join(f"{r.point}: {r.description}" for r in q.rubric),
        "pasted outline": q.outline or "",
    }


def test_stuffed_and_copied_answers_stay_below_the_bar_on_every_written_question() -> None:
    worst: dict[str, float] = {}
    for q in WRITTEN:
        for kind, text in stuffings(q, seed=len(q.id)).items():
            worst[kind] = max(worst.get(kind, 0.0), share(text, q))
    assert worst["keyword list"] == 0.0 and worst["pasted rubric"] == 0.0 and worst["pasted outline"] == 0.0, worst
    assert worst["one term per sentence"] <= 0.2 and worst["template refilled"] < BAR, worst


def test_a_design_answer_fits_its_own_question_better_than_the_others() -> None:
    for path in GOOD:
        q = question_of(path)
        if q.track != "system-design":
            continue
        text = path.read_text(encoding="utf-8")
        others = [share(text, o) for o in BANK.by_track("system-design") if o.id != q.id]
        assert statistics.mean(others) < 0.3 and share(text, q) > max(statistics.median(others), BAR), path.name


def test_what_counts_as_prose() -> None:
    assert is_prose("We shard the index by region so each replica fits in memory.")
    assert not is_prose("sharding, replicas, caching, bm25, reranking, embeddings")  # a list
    assert not is_prose("Caching. BM25.")  # too short to develop anything
    assert sentences("First point.\n- a bullet here\nAnd a last one!") == ["First point.", "a bullet here",
                                                                           "And a last one!"]


def test_each_point_found_says_where() -> None:
    q = BANK.get("rag-support-assistant")
    text = (REPO / "tests" / "fixtures" / "written" / "rag-support-assistant.txt").read_text(encoding="utf-8")
    found, _ = estimate(text, q.rubric, copied_from=readable_texts(q))
    flat = " ".join(text.split())
    for f in found:  # the snippet is the member's own sentence, shortened
        assert f.where.removesuffix(" …") in flat, f.where
