"""A small English stemmer for rubric matching: plurals, -ing, -ed and a silent final -e.

It is steps 1a, 1b, 1c and 5 of Porter's algorithm (1980) and nothing else, so inflections of one
word meet (`merges`, `merged`, `merging` and `merge` all give `merg`; `caches`/`cache`, `policies`/
`policy`) while derivations keep apart (`feature`/`future`, `shard`/`shared`, `hop`/`hope`,
`general`/`generate` stay different). Our own changes to Porter, each for a word answers use:
- words of three letters or fewer are kept as they are (`its`, `has`, `gas`, `bus`, `new`);
- a final `s` after `u`, `i`, `s` or `ia` is not a plural (`status`, `analysis`, `loss`, `bias`),
  so `biases` and `bias` meet (`replicas`, `ideas` are still plurals);
- a stem of one or two letters left by -ed/-ing gets its `e` back, and a final `e` is never
  dropped from a three-letter stem, so `use`, `uses`, `used` and `using` all give `use`;
- `eed` is read the same wherever it ends up (`exceed`, `exceeds`, `exceeded` give `excee`), a final
  `ee` keeps its `e` (`agree`, `agreed`), and a final `y` turns into `i` only after a consonant
  (Porter2's rule: `queries`/`query` meet, `keys`/`key` too).
Digits and words with digits (`p99`, `int8`) are left alone.
"""

from __future__ import annotations

import re

_VOWELS = frozenset("aeiou")
_WORD = re.compile(r"[a-z0-9]+")


def _is_consonant(word: str, i: int) -> bool:
    ch = word[i]
    if ch in _VOWELS:
        return False
    if ch == "y":
        return i == 0 or not _is_consonant(word, i - 1)
    return True


def _measure(stem: str) -> int:
    """Porter's m: how many vowel-consonant sequences the stem has ([C](VC)^m[V])."""
    m = 0
    previous_vowel = False
    for i in range(len(stem)):
        consonant = _is_consonant(stem, i)
        if consonant and previous_vowel:
            m += 1
        previous_vowel = not consonant
    return m


def _has_vowel(stem: str) -> bool:
    return any(not _is_consonant(stem, i) for i in range(len(stem)))


def _double_consonant(stem: str) -> bool:
    return len(stem) >= 2 and stem[-1] == stem[-2] and _is_consonant(stem, len(stem) - 1)


def _cvc(stem: str) -> bool:
    """Ends consonant-vowel-consonant, the last not w, x or y (`hop`, `rat`, but not `box`, `saw`)."""
    n = len(stem)
    return (n >= 3 and _is_consonant(stem, n - 1) and not _is_consonant(stem, n - 2)
            and _is_consonant(stem, n - 3) and stem[-1] not in "wxy")


def _step_1a(w: str) -> str:
    if w.endswith("sses"):
        return w[:-2]
    if w.endswith("ies"):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is", "ias")):
        return w[:-1]
    return w


def _eed(w: str) -> str:
    """`agreed` and `exceed` keep `ee` (`agree`, `excee`); `need`, `speed`, `feed` stay whole."""
    return w[:-1] if _measure(w[:-3]) > 0 else w


def _step_1b(w: str) -> str:
    if w.endswith("eed"):
        return _eed(w)
    for suffix in ("ed", "ing"):
        if w.endswith(suffix) and _has_vowel(w[: -len(suffix)]):
            stem = w[: -len(suffix)]
            if stem.endswith("eed"):  # exceeded, exceeding: as exceed
                return _eed(stem)
            if stem.endswith(("at", "bl", "iz")):
                return stem + "e"
            if _double_consonant(stem) and stem[-1] not in "lsz":
                return stem[:-1]
            if (_measure(stem) == 1 and _cvc(stem)) or len(stem) <= 2:
                return stem + "e"
            return stem
    return w


def _step_1c(w: str) -> str:
    """A final y after a consonant (not the first letter) is i: `query`/`queries`; `keys` stays `key`."""
    return w[:-1] + "i" if len(w) > 2 and w.endswith("y") and _is_consonant(w, len(w) - 2) else w


def _step_5(w: str) -> str:
    if w.endswith("e") and not w.endswith("ee") and len(w) > 3:
        m = _measure(w[:-1])
        if m > 1 or (m == 1 and not _cvc(w[:-1])) or w.endswith("ue"):  # ours: queue, queued, queuing
            w = w[:-1]
    if w.endswith("ll") and _measure(w) > 1:
        w = w[:-1]
    return w


def stem(word: str) -> str:
    """The stem of one lowercase word (see the module docstring)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    return _step_5(_step_1c(_step_1b(_step_1a(word))))


def stems(text: str) -> list[str]:
    """The stems of a text's words, lowercased, with `%` read as the word "percent"."""
    return [stem(w) for w in _WORD.findall(text.lower().replace("%", " percent "))]
