"""The rubric stemmer: inflections of one word meet, unrelated words stay apart (issue 16, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.bank import Bank
from bot.core.models import RubricPoint
from bot.core.stemmer import stem, stems
from bot.core.submissions import rubric_coverage
from tests.conftest import REPO

SAME = [
    ("merge", "merges", "merged", "merging"),
    ("cache", "caches", "cached", "caching"),
    ("feature", "features", "featured", "featuring"),
    ("policy", "policies"),
    ("query", "queries", "querying", "queried"),
    ("key", "keys"),
    ("latency", "latencies"),
    ("index", "indexes"),
    ("box", "boxes"),
    ("match", "matches", "matched", "matching"),
    ("process", "processes", "processed", "processing"),
    ("bias", "biases"),
    ("loss", "losses"),
    ("replica", "replicas"),
    ("use", "uses", "used", "using"),
    ("rate", "rates", "rated", "rating"),
    ("create", "creates", "created", "creating"),
    ("model", "models", "modeling", "modelling", "modelled"),
    ("shard", "shards", "sharded", "sharding"),
    ("embedding", "embeddings", "embedded"),
    ("need", "needs", "needed"),
    ("exceed", "exceeds", "exceeded", "exceeding"),
    ("agree", "agrees", "agreed"),
    ("normalize", "normalized", "normalizing"),
    ("queue", "queues", "queued", "queuing"),
    ("retry", "retries", "retried", "retrying"),
    ("deploy", "deploys", "deployed", "deploying"),
    ("stop", "stops", "stopped", "stopping"),
    ("batch", "batches", "batched", "batching"),
]
APART = [
    ("feature", "future"), ("shard", "shared"), ("hop", "hope"), ("general", "generate"), ("cache", "cash"),
    ("rat", "rate"), ("us", "use"), ("string", "sting"), ("status", "state"), ("bias", "basis"),
    ("merge", "emerge"), ("need", "ne"), ("thing", "th"), ("spring", "spr"), ("model", "mode"),
]


@pytest.mark.parametrize("forms", SAME, ids=lambda forms: forms[0])
def test_inflections_of_a_word_share_a_stem(forms: tuple[str, ...]) -> None:
    assert {stem(w) for w in forms} == {stem(forms[0])}, {w: stem(w) for w in forms}


@pytest.mark.parametrize(("a", "b"), APART)
def test_unrelated_words_keep_different_stems(a: str, b: str) -> None:
    assert stem(a) != stem(b)


def test_short_words_numbers_and_percent() -> None:
    assert [stem(w) for w in ("its", "has", "gas", "new", "p99", "int8", "a")] == ["its", "has", "gas", "new", "p99", "int8", "a"]
    assert stems("Cut p99 latencies by 40%") == ["cut", "p99", "latenci", "by", "40", "percent"]


def test_rubric_matches_plurals_and_inflections_but_not_unrelated_words() -> None:
    rubric = [RubricPoint("Merging", "duplicate rows", ("merge",)), RubricPoint("Features", "online serving", ("feature store",)),
              RubricPoint("Caching", "latency", ("cache",)), RubricPoint("Sharding", "partitions", ("shard",)),
              RubricPoint("Retries", "failures", ("retry",))]
    covered, missed = rubric_coverage(  # one developed sentence per point (coverage.py), inflected forms
        "The nightly job merges duplicate rows before they reach the tables. We keep two feature stores so that "
        "online serving reads fresh values. The gateway caches answers for an hour to keep latency low. "
        "The team shared a plan for the partitions with everyone.", rubric)
    assert [p.point for p in covered] == ["Merging", "Features", "Caching"]
    assert [p.point for p in missed] == ["Sharding", "Retries"]  # "shared" is not "shard"


def test_real_bank_keywords_meet_their_inflections() -> None:
    """Plural and -ing forms of the real bank's one-word keywords count as covering the point."""
    bank = Bank.load(Path(REPO) / "questions")
    assert not bank.errors
    checked = 0
    for q in bank:
        for point in q.rubric:
            for keyword in point.keywords:
                if " " in keyword or not keyword.isalpha() or len(keyword) < 5 or keyword.endswith(("s", "y", "a", "u")):
                    continue
                forms = [keyword + "s"]
                if keyword.endswith("e") and not keyword.endswith("ee"):  # silent e: cache -> caching, cached
                    forms += [keyword[:-1] + "ing", keyword + "d"]
                for form in forms:
                    covered, _ = rubric_coverage(f"We talked about {form} at length, and {point.description}",
                                                 [point])
                    assert covered, (q.id, keyword, form)
                    checked += 1
    assert checked > 100
