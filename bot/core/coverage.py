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
  found there is blanked before matching, so pasting the rubric or the outline scores low.

Matching is on word stems (`stemmer.py`), so "merges" meets "merge". The result says where each
point was found (the sentence, shortened), so the member sees why. It is an estimate: peers' votes
after the reveal (and the optional AI review) judge the substance.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.models import RubricPoint
from bot.core.stemmer import stems

ECHO_WORDS = 5
MIN_WORDS = 6
MIN_FUNCTION_SHARE = 0.18
WORDS_PER_COMMA = 3.0
SNIPPET = 90
LONG_SENTENCE = 12  # words: a sentence this long, with this many content words besides the term,
MIN_CONTENT_WORDS = 5  # develops a point on its own
MAX_POINTS_PER_SENTENCE = 2  # a sentence naming more rubric points than this is a list
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
    echo = _runs(stems(" ".join(copied_from)))
    parts = []
    skeletons: list[set[str]] = []
    all_keys = [k for point in rubric for k in _concepts(point)[0]]
    for text in sentences(answer):
        own = _blank_copied(stems(text), echo)
        named = sum(1 for point in rubric if any(_contains(own, k) for k in _concepts(point)[0]))
        # what the sentence says besides rubric terms; a template refilled with other terms repeats it
        key_words = {w for k in all_keys if _contains(own, k) for w in k}
        skeleton = {w for w in own if w and w not in key_words}
        repeated = any(_similar(skeleton, seen) for seen in skeletons)
        skeletons.append(skeleton)
        # a sentence naming many rubric points at once is a list written as prose: it develops none
        parts.append(_Sentence(text, own, is_prose(text) and named <= MAX_POINTS_PER_SENTENCE and not repeated))
    found: list[Found] = []
    missed: list[RubricPoint] = []
    for point in rubric:
        where = _developed(point, parts)
        if where is None:
            missed.append(point)
        else:
            found.append(Found(point, _short(where)))
    return found, missed


@functools.lru_cache(maxsize=4096)
def _concepts(point: RubricPoint) -> tuple[list[list[str]], set[str]]:
    """(keywords as stem sequences, content stems of the point's name and description)."""
    keys = list(point.keywords) or [w for w in re.findall(r"[a-z]+", point.point.lower()) if len(w) > 3]
    key_stems = [s for s in (stems(k) for k in keys) if s]
    content = {w for w in stems(f"{point.point} {point.description}") if len(w) > 3 and w not in FUNCTION_WORDS}
    return key_stems, content


def _developed(point: RubricPoint, parts: Sequence[_Sentence]) -> str | None:
    keys, content = _concepts(point)
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
            return sentence.text
    return None


def _similar(a: set[str], b: set[str]) -> bool:
    return bool(a) and bool(b) and len(a & b) >= REPEAT_SHARE * min(len(a), len(b))


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    return n > 0 and any(list(haystack[i:i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def _runs(words: list[str]) -> set[tuple[str, ...]]:
    n = ECHO_WORDS
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


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


__all__ = ["ECHO_WORDS", "Found", "estimate", "is_prose", "sentences"]
