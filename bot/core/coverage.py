"""The built-in estimate of a written answer's rubric coverage, made hard to game.

A rubric point counts as covered only where the answer *develops* it:

- The answer is cut into sentences (at `.`, `!`, `?`, line breaks and bullets). Only a sentence
  of prose counts: at least `MIN_WORDS` words, function words in it ("the", "we", "because",
  "so"...) at least `MIN_FUNCTION_SHARE` of them, and not a list (fewer than one comma per
  `WORDS_PER_COMMA` words). "We stream tokens, cache, use bm25, chunking, a golden set" is a list.
- In such a sentence, or in it together with the next one, the point needs one of its keywords
  (or, without keywords, a word of its name) *and* a second concept of the same point: another
  keyword, or a content word of the point's name or description. A keyword alone is a mention,
  not a development.
- Words copied from what the member can read (the prompt, the rubric's names and descriptions, the
  model outline, key decisions, what to listen for) cover nothing: a run of `ECHO_WORDS` stems
  found there (with at least `ECHO_CONTENT` words that are not function words: "in hindsight I
  would have" is how anyone writes) is blanked before matching, so pasting the rubric or the
  outline scores low.
- A sentence names at most `MAX_POINTS_PER_SENTENCE` points (more is a list written as prose),
  except a long one whose rubric terms are sparse (one word in `SPARSE_KEYS` at most), which may
  touch one point more per `WORDS_PER_POINT` words.
- A good answer written for another question is off topic (`Topics`, applied by submissions.py):
  the rubrics of a track share words ("learned", "weeks", "monitoring"), so keywords alone would let
  a deadline story "cover" the production-incident question.

Matching is on word stems (`stemmer.py`), so "merges" meets "merge". The result says where each
point was found (the sentence, shortened), so the member sees why: the sentence that develops that
point most, by its terms, a label naming it ("Result: ...") and its place in the answer (`_where`),
not merely the first sentence that mentions one of its words. It is an estimate: peers' votes after
the reveal (and the optional AI review) judge the substance.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.models import Question, RubricPoint
from bot.core.stemmer import stems

ECHO_WORDS = 5
ECHO_CONTENT = 2  # ... with at least this many words that are not function words
MIN_WORDS = 6
MIN_FUNCTION_SHARE = 0.18
WORDS_PER_COMMA = 3.0
SNIPPET = 90
LONG_SENTENCE = 12  # words: a sentence this long, with this many content words besides the term,
MIN_CONTENT_WORDS = 5  # develops a point on its own
MAX_POINTS_PER_SENTENCE = 2  # a sentence naming more rubric points than this is a list
WORDS_PER_POINT = 12  # ... but a long sentence may touch one more point per this many words in passing,
SPARSE_KEYS = 8  # when at most one word in this many is a rubric term
LABEL_WORDS = 4  # "Trade-offs and failure modes:" labels what follows; a longer run before a colon is a sentence
LABEL_WEIGHT = 4  # where a point was found: a label naming it outweighs two keywords,
ORDER_WEIGHT = 3  # and a sentence at the point's place in the rubric's order counts a little;
SHARED = 2  # one sentence shown for two points costs a keyword's worth
CONTENT_CAP = 2  # words of a point's description count for at most a keyword's worth (they are common words)
REPEAT_SHARE = 0.8  # a sentence sharing this much of its non-rubric words with an earlier one is a template

FUNCTION_WORDS = frozenset(stems(
    "a an the and or but so because since although though while when whenever if unless then than that "
    "which who whom whose what where why how this these those it its we our us i my me you your they their "
    "them he she his her is are was were be been being am do does did done have has had will would can could "
    "should must may might shall to of in on at by for from with without into onto over under about after "
    "before during until between through against per via as not no nor also only just very too there here "
    "each every all any both either neither some such more most less least own same other another"
))
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+|(?:^|\s)[-*•]\s+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_PARAGRAPH = re.compile(r"\n\s*\n")
_LABEL = re.compile(r"^[*_#\s]*([A-Za-z][A-Za-z /&-]*?)[*_\s]*:")
_BULLET = re.compile(r"^(?:[-*•]|\d+[.)])\s+")


@dataclass(frozen=True)
class Found:
    point: RubricPoint
    where: str  # the sentence that develops it, shortened


@dataclass(frozen=True)
class _Sentence:
    text: str
    stems: list[str]
    prose: bool
    label: set[str] | None = None  # the stems of the label it is under ("Result:"), if any


def sentences(answer: str) -> list[str]:
    parts = (_BULLET.sub("", s.strip()) for s in _SENTENCE.split(answer) if s and s.strip())
    return [s for s in parts if s]


def is_prose(sentence: str) -> bool:
    words = _WORD.findall(sentence.lower())
    if len(words) < MIN_WORDS:
        return False
    function = sum(1 for w in stems(" ".join(words)) if w in FUNCTION_WORDS)
    commas = sentence.count(",") + sentence.count(";")
    return function >= MIN_FUNCTION_SHARE * len(words) and commas * WORDS_PER_COMMA < len(words)


def estimate(answer: str, rubric: Sequence[RubricPoint], *,
             copied_from: Iterable[str] = ()) -> tuple[list[Found], list[RubricPoint]]:
    """(found, missed): the points the answer develops, each with where, and the rest."""
    parts = _sentences(answer, rubric, copied_from)
    where = _where(rubric, parts)
    found = [Found(point, _short(parts[where[i]].text)) for i, point in enumerate(rubric) if i in where]
    missed = [point for i, point in enumerate(rubric) if i not in where]
    return found, missed


def _sentences(answer: str, rubric: Sequence[RubricPoint], copied_from: Iterable[str]) -> list[_Sentence]:
    """The answer's sentences, with copied words blanked, and which of them are prose that may develop a point."""
    echo = _runs(stems(" ".join(copied_from)))
    parts = []
    skeletons: list[set[str]] = []
    all_keys = [k for point in rubric for k in _concepts(point)[0]]
    for text, label in _labelled_sentences(answer):
        own = _blank_copied(stems(text), echo)
        named = sum(1 for point in rubric if any(_contains(own, k) for k in _concepts(point)[0]))
        # what the sentence says besides rubric terms; a template refilled with other terms repeats it
        keys_in = [k for k in all_keys if _contains(own, k)]
        key_words = {w for k in keys_in for w in k}
        skeleton = {w for w in own if w and w not in key_words}
        repeated = any(_similar(skeleton, seen) for seen in skeletons)
        skeletons.append(skeleton)
        # a sentence naming many rubric points at once is a list written as prose: it develops none;
        # but a long sentence whose rubric terms are few and far between ("I found that 30% of the
        # positives were near duplicates ... by random sampling") may touch a point more per
        # WORDS_PER_POINT words in passing
        sparse = len(keys_in) * SPARSE_KEYS <= len(own)
        allowed = max(MAX_POINTS_PER_SENTENCE, len(own) // WORDS_PER_POINT if sparse else 0)
        parts.append(_Sentence(text, own, is_prose(text) and named <= allowed and not repeated, label))
    return parts


def _where(rubric: Sequence[RubricPoint], parts: Sequence[_Sentence]) -> dict[int, int]:
    """For each developed point (by index), the sentence shown as where it was found.

    Every sentence that develops a point is a candidate, weighed by how much of the point it holds
    (its keywords, then its other content words), by a label naming the point ("Result: ...",
    "**Data pipeline:** ...", or a label naming another point, against), and by where it sits:
    answers follow the rubric's order (situation first and reflection last; requirements first and
    trade-offs late), so a sentence near the point's share of the answer weighs a little more. The
    choice is the one with the most weight overall (exactly: points are few, so over subsets of
    them), where a sentence shown for two points costs a keyword's worth, so each sentence goes to
    the point it develops most unless the other point has nowhere better.
    So the sentence that mentions "two weeks before launch" is shown as the situation, and the one
    that says "we delayed launch by three weeks" as the result."""
    m, n = len(rubric), len(parts)
    named = [_name_stems(point) for point in rubric]
    weight: dict[int, dict[int, float]] = {}  # sentence -> point -> weight
    for p, point in enumerate(rubric):
        for i, strength in _candidates(point, parts):
            label = parts[i].label
            fit = 0 if not label else 1 if label & named[p] else -1 if any(label & other for other in named) else 0
            place = 1 - abs((i + 0.5) / n - (p + 0.5) / m)
            w = strength + LABEL_WEIGHT * fit + ORDER_WEIGHT * place
            weight.setdefault(i, {})[p] = w
    # the best choice overall, one sentence per point, a sentence shown for two points costing SHARED
    plans: dict[int, tuple[float, dict[int, int]]] = {0: (0.0, {})}
    for i in sorted(weight):
        grown = dict(plans)
        options = list(weight[i].items())
        for mask, (total, chosen) in plans.items():
            for k in range(1, len(options) + 1):
                for group in itertools.combinations(options, k):
                    bits = sum(1 << p for p, _ in group)
                    if mask & bits:
                        continue
                    value = total + sum(w for _, w in group) - SHARED * (k - 1)
                    if value > grown.get(mask | bits, (float("-inf"), {}))[0]:
                        grown[mask | bits] = (value, {**chosen, **{p: i for p, _ in group}})
        plans = grown
    return plans[sum(1 << p for p in {p for ws in weight.values() for p in ws})][1]


class Topics:
    """Which question of a track an answer reads as written for, so that a good answer to another
    question (a STAR story about mentoring sent to the data-quality question, a spam filter design
    sent to the ETA question) does not pass for this one because the rubrics share words.

    Each question of the track is a TF-IDF vector of the stems of everything written about it
    (title, topics, prompt, rubric, outline, follow-ups...); an answer is compared with all of them.
    It is off topic when its similarity to its own question is below `OFF_TOPIC` of its similarity
    to the closest question: measured on the bank, every answer we wrote is closest or second
    closest to its own question (at least 0.75 of the best), while a good answer sent to an
    unrelated question sits far below. A track of fewer than `MIN_QUESTIONS` questions has too
    little to compare with, and nothing is judged off topic."""

    MIN_QUESTIONS = 8
    OFF_TOPIC = 0.4

    def __init__(self, questions: Iterable[Question]) -> None:
        self.questions = {q.id: q for q in questions}
        docs = {qid: Counter(_topic_words(_about(q))) for qid, q in self.questions.items()}
        df = Counter(w for doc in docs.values() for w in doc)
        n = len(docs)
        self._idf = {w: math.log(n / k) for w, k in df.items()}
        self._vectors = {qid: self._vector(doc) for qid, doc in docs.items()}

    def closest_other(self, answer: str, q: Question) -> Question | None:
        """The question this answer reads as written for, when that is clearly not `q`; else None."""
        if len(self._vectors) < self.MIN_QUESTIONS or q.id not in self._vectors:
            return None
        mine = self._vector(Counter(_topic_words(answer)))
        sims = {qid: sum(x * v.get(w, 0.0) for w, x in mine.items()) for qid, v in self._vectors.items()}
        best = max(sims, key=lambda qid: sims[qid])
        if sims[best] <= 0 or sims[q.id] >= self.OFF_TOPIC * sims[best]:
            return None
        return self.questions[best]

    def _vector(self, counts: Counter[str]) -> dict[str, float]:
        v = {w: (1 + math.log(k)) * self._idf[w] for w, k in counts.items() if self._idf.get(w)}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}


def _about(q: Question) -> str:
    return " ".join([q.title, " ".join(q.topics), q.prompt, q.outline or "", q.explanation or "",
                     *(f"{r.point} {r.description} {' '.join(r.keywords)}" for r in q.rubric),
                     *q.key_decisions, *q.listen_for, *q.follow_ups, *q.hints])


def _topic_words(text: str) -> list[str]:
    return [w for w in stems(text) if len(w) > 2 and w not in FUNCTION_WORDS and not w.isdigit()]


@functools.lru_cache(maxsize=4096)
def _concepts(point: RubricPoint) -> tuple[list[list[str]], set[str]]:
    """(keywords as stem sequences, content stems of the point's name and description)."""
    keys = list(point.keywords) or [w for w in re.findall(r"[a-z]+", point.point.lower()) if len(w) > 3]
    key_stems = [s for s in (stems(k) for k in keys) if s]
    content = {w for w in stems(f"{point.point} {point.description}") if len(w) > 3 and w not in FUNCTION_WORDS}
    return key_stems, content


def _candidates(point: RubricPoint, parts: Sequence[_Sentence]) -> list[tuple[int, int]]:
    """(sentence index, strength) of every sentence that develops the point."""
    keys, content = _concepts(point)
    out = []
    for i, sentence in enumerate(parts):
        if not sentence.prose:
            continue
        hits = [k for k in keys if _contains(sentence.stems, k)]
        if not hits:
            continue
        near = [w for j in (i - 1, i, i + 1) if 0 <= j < len(parts) and parts[j].prose for w in parts[j].stems]
        used = set(hits[0])
        second = any(k is not hits[0] and _contains(near, k) for k in keys) or bool((content - used) & set(near))
        # a long sentence that says something besides the term (or another sentence near it does) develops it
        said = {w for w in sentence.stems if len(w) > 3 and w not in FUNCTION_WORDS and w not in used}
        substantial = len(sentence.stems) >= LONG_SENTENCE and len(said) >= MIN_CONTENT_WORDS
        if second or substantial:
            key_words = {w for k in hits for w in k}
            out.append((i, 2 * len(hits) + min(CONTENT_CAP, len((content - key_words) & set(sentence.stems)))))
    return out


def _name_stems(point: RubricPoint) -> set[str]:
    return {w for w in stems(point.point) if len(w) > 3 and w not in FUNCTION_WORDS}


def _labelled_sentences(answer: str) -> list[tuple[str, set[str] | None]]:
    """The answer's sentences, each with the stems of the label it is under: a sentence starting
    "Label:" (at most LABEL_WORDS words) labels itself and the rest of its paragraph."""
    out: list[tuple[str, set[str] | None]] = []
    for paragraph in _PARAGRAPH.split(answer):
        label: set[str] | None = None
        for text in sentences(paragraph):
            match = _LABEL.match(text)
            if match and len(match.group(1).split()) <= LABEL_WORDS:
                label = {w for w in stems(match.group(1)) if len(w) > 3 and w not in FUNCTION_WORDS}
            out.append((text, label))
    return out


def _similar(a: set[str], b: set[str]) -> bool:
    return bool(a) and bool(b) and len(a & b) >= REPEAT_SHARE * min(len(a), len(b))


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    return n > 0 and any(list(haystack[i:i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def _runs(words: list[str]) -> set[tuple[str, ...]]:
    """The runs of `ECHO_WORDS` stems a member could copy; a run of common words around one term
    ("in hindsight I would have") is how anyone writes, not a copy."""
    n = ECHO_WORDS
    runs = (tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return {run for run in runs if sum(1 for w in run if w not in FUNCTION_WORDS) >= ECHO_CONTENT}


def _blank_copied(words: list[str], echo: set[tuple[str, ...]]) -> list[str]:
    n = ECHO_WORDS
    out = list(words)
    for i in range(len(words) - n + 1):
        if tuple(words[i:i + n]) in echo:
            out[i:i + n] = [""] * n
    return out


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[:SNIPPET].rsplit(" ", 1)[0] + " …"


__all__ = ["ECHO_WORDS", "Found", "Topics", "estimate", "is_prose", "sentences"]
