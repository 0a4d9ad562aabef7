"""Answer tells in the choice questions of a bank: can a guesser beat it without knowing anything?

Two surface strategies are measured over the `kind: choice` questions:

- "pick the longest": the correct option is the longest when its text (stripped of surrounding
  whitespace) has strictly more characters than every other option of the question. A tie for the
  longest counts as NOT longest, since a guesser cannot tell the tied options apart.
- "pick the most hedged": an option's hedge score is the number of qualifier words in it (the
  words of `HEDGE_WORDS`, matched whole and case-insensitively, each occurrence counted) plus the
  number of semicolons (each one joins a further clause). The correct option is the most hedged
  when its score is strictly greater than every other option's; ties, including all-zero scores,
  count as NOT most hedged.

The shortest option (strictly shorter than every other) is counted the same way, because trimming
right answers to their essential claim must not swap one tell for the opposite one. For the same
reason the report shows where the correct option ranks by length (1 + the number of options strictly
longer than it), so "pick the second longest" shows up too.

A rate above `TELL_LIMIT` is a tell (with five options, chance is 20%): the report warns about it, and
tests/core/test_bank_stats.py keeps the real bank's longest and most-hedged rates within it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.core.models import DIFFICULTIES, Question

TELL_LIMIT = 0.35

# Qualifiers that soften or condition a claim. Kept short and literal so the count is easy to check.
HEDGE_WORDS: frozenset[str] = frozenset(
    {
        # frequency and degree
        "usually", "typically", "often", "generally", "mostly", "largely", "mainly", "partly",
        "sometimes", "roughly", "about", "approximately", "around", "nearly", "almost",
        # modality
        "may", "might", "can", "could", "likely", "probably", "possibly", "perhaps", "tends", "tend",
        # conditions and exceptions
        "depends", "depend", "depending", "unless", "if", "provided", "except", "although", "though",
    }
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def hedge_score(text: str) -> int:
    """Qualifier words (each occurrence) plus semicolons in `text`."""
    words = _WORD.findall(text.lower())
    return sum(1 for w in words if w in HEDGE_WORDS) + text.count(";")


def _unique_extreme(values: Sequence[int], *, largest: bool = True) -> int | None:
    """The index of the one strictly largest (or smallest) value, or None on a tie for it."""
    best = max(values) if largest else min(values)
    hits = [i for i, v in enumerate(values) if v == best]
    return hits[0] if len(hits) == 1 else None


@dataclass
class TellCounts:
    """How often each surface strategy finds the correct option, over `questions` choice questions."""

    questions: int = 0
    longest: int = 0
    shortest: int = 0
    hedged: int = 0
    letters: Counter[str] = field(default_factory=Counter)
    length_ranks: Counter[int] = field(default_factory=Counter)  # 1 + options strictly longer than the correct one

    def rate(self, name: str) -> float:
        return getattr(self, name) / self.questions if self.questions else 0.0

    def add(self, q: Question) -> None:
        lengths = [len(c.strip()) for c in q.choices]
        hedges = [hedge_score(c) for c in q.choices]
        correct = "ABCDEFGH".index(q.answer)
        self.questions += 1
        self.longest += _unique_extreme(lengths) == correct
        self.shortest += _unique_extreme(lengths, largest=False) == correct
        self.hedged += _unique_extreme(hedges) == correct
        self.letters[q.answer] += 1
        self.length_ranks[1 + sum(n > lengths[correct] for n in lengths)] += 1


def choice_tells(questions: Iterable[Question]) -> tuple[TellCounts, dict[str, TellCounts]]:
    """Counts over every choice question, and per difficulty."""
    total = TellCounts()
    per: dict[str, TellCounts] = {d: TellCounts() for d in DIFFICULTIES}
    for q in questions:
        if q.kind != "choice" or not q.choices:
            continue
        total.add(q)
        per[q.difficulty].add(q)
    return total, per


def _pct(count: TellCounts, name: str) -> str:
    return f"{getattr(count, name)}/{count.questions} = {count.rate(name):.0%}"


def report_lines(questions: Iterable[Question]) -> list[str]:
    """The lines `python -m bot questions stats` prints under the counts (no blank lines)."""
    total, per = choice_tells(questions)
    if not total.questions:
        return ["choice questions: none"]
    lines = [f"choice questions: {total.questions}; the correct option is (strictly, ties count as no):"]
    for name, label in (("longest", "longest"), ("hedged", "most hedged"), ("shortest", "shortest")):
        parts = [f"{d} {_pct(per[d], name)}" for d in DIFFICULTIES if per[d].questions]
        lines.append(f"  {label + ':':<13} {_pct(total, name):<12} ({'; '.join(parts)})")
    lines.append("  answer letters: " + ", ".join(f"{k} {v}" for k, v in sorted(total.letters.items())))
    ranks = ", ".join(f"{r}: {n}" for r, n in sorted(total.length_ranks.items()))
    lines.append(f"  length rank of the correct option (1 = longest): {ranks}")
    for name, label in (("longest", "longest"), ("hedged", "most hedged"), ("shortest", "shortest")):
        if total.rate(name) > TELL_LIMIT:
            lines.append(
                f"warning: the correct option is the {label} in {total.rate(name):.0%} of choice questions "
                f"(limit {TELL_LIMIT:.0%}): 'pick the {label}' beats the bank"
            )
    return lines
