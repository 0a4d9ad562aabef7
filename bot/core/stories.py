"""A private bank of STAR stories per member, tagged by behavioral theme, and the themes still missing.

Decisions:
- Stories belong to one member and are never shown to anyone else: every reply is ephemeral and
  every lookup is by the caller's own member id. A story is numbered by its position in the
  member's list (`/story list`), oldest first; numbers close up after a removal.
- One-line syntax (works on the console and in a slash command's text option):
  `/story add <themes> <title> | <situation> | <task> | <action> | <result>`, where `<themes>` is
  one theme or several joined by commas (`failure,mistake`). Only the title is required; missing
  STAR parts are listed as missing and can be filled in later with `/story edit <n> <part> <text>`
  (part: theme, title, situation, task, action, result), or the whole story replaced with
  `/story edit <n> <title> | <situation> | ...`. Discord and Slack get a form (`forms.form_for("story",
  "<theme>")`): title plus the four STAR parts, the theme fixed by the button that opened it.
- Themes are a fixed list of what behavioral loops ask about (`THEMES`); common synonyms and
  spellings are accepted (`prioritization`, `disagree`, `pushback`, ...). `/story gaps` lists the
  themes without a story, each with a question from the bank that asks about it when there is one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.bank import Bank
from bot.core.clock import Clock
from bot.core.errors import NotFound, UsageError, shown
from bot.core.messages import Button, Field, Message
from bot.core.models import Caller
from bot.core.ports import Store

# canonical theme -> accepted synonyms (also used to find bank questions about the theme)
THEMES: Mapping[str, tuple[str, ...]] = {
    "disagreement": ("disagree", "disagreed", "pushback", "push-back", "pushed-back"),
    "failure": ("fail", "failed", "failing"),
    "ambiguity": ("ambiguous", "uncertainty", "unclear", "incomplete-information"),
    "leadership": ("lead", "led", "leading", "ownership"),
    "conflict": ("conflicts", "tension", "underperforming-teammate"),
    "prioritisation": ("prioritization", "prioritise", "prioritize", "priorities", "trade-offs", "tradeoffs",
                       "competing-requests"),
    "influence": ("influencing", "influenced", "persuasion", "persuade", "without-authority",
                  "stakeholder-management"),
    "mistake": ("mistakes", "error", "blunder"),
    "deadline": ("deadlines", "time-pressure", "scope"),
    "ethics": ("ethical", "fairness", "integrity", "responsible-ai", "privacy"),
    "feedback": ("criticism", "tough-feedback"),
    "mentoring": ("mentor", "mentored", "mentorship", "coaching"),
    "impact": ("proud", "achievement", "success"),
    "learning": ("learn", "learned", "growth", "new-domain", "ramped-up"),
}
PARTS = ("situation", "task", "action", "result")
EDITABLE = ("theme", "themes", "title", *PARTS)
MAX_TITLE = 120
MAX_PART = 2000

_SYNONYMS = {alias: theme for theme, aliases in THEMES.items() for alias in (theme, *aliases)}


def canonical_theme(word: str) -> str:
    """The canonical theme for a theme or synonym, or a UsageError listing the themes."""
    key = word.strip().lower().replace("_", "-").replace(" ", "-")
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    if key.endswith("s") and key[:-1] in _SYNONYMS:
        return _SYNONYMS[key[:-1]]
    raise UsageError(f"{shown(word)} is not a theme. Themes: {', '.join(THEMES)}.")


def parse_themes(text: str) -> tuple[str, ...]:
    themes = [canonical_theme(w) for w in re.split(r"[,\s]+", text) if w]
    if not themes:
        raise UsageError(f"Give a theme: {', '.join(THEMES)}.")
    return tuple(dict.fromkeys(themes))


@dataclass(frozen=True)
class StoryText:
    title: str
    situation: str = ""
    task: str = ""
    action: str = ""
    result: str = ""

    def missing(self) -> list[str]:
        return [p for p in PARTS if not getattr(self, p)]


def parse_story(text: str) -> StoryText:
    """`<title> | <situation> | <task> | <action> | <result>` (only the title is required)."""
    parts = [p.strip() for p in text.split("|")]
    if len(parts) > 5:
        raise UsageError("A story has at most 5 parts: title | situation | task | action | result.")
    parts += [""] * (5 - len(parts))
    story = StoryText(*parts)
    _check(story)
    return story


def _check(story: StoryText) -> None:
    if not story.title:
        raise UsageError("Give the story a title: /story add <theme> <title> | <situation> | <task> | <action> | <result>.")
    if len(story.title) > MAX_TITLE:
        raise UsageError(f"Keep the title under {MAX_TITLE} characters (it has {len(story.title)}).")
    for part in PARTS:
        if len(getattr(story, part)) > MAX_PART:
            raise UsageError(f"The {part} is over {MAX_PART} characters; tell it in fewer words.")


def _row_text(row: Mapping[str, Any]) -> StoryText:
    return StoryText(str(row["title"]), *(str(row[p]) for p in PARTS))


class Stories:
    def __init__(self, store: Store, bank: Bank, clock: Clock) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock

    async def add(self, caller: Caller, themes: str, text: str | None, parts: Mapping[str, str] | None = None) -> Message:
        """Add a story from the one-line syntax, or from a form's separate fields (`parts`)."""
        canonical = parse_themes(themes)
        if parts and any(parts.get(p) for p in PARTS):
            story = StoryText((text or "").strip(), *((parts.get(p) or "").strip() for p in PARTS))
            _check(story)
        else:
            story = parse_story(text or "")
        await self.store.add_story(caller.member.id, themes=canonical, title=story.title, situation=story.situation,
                                   task=story.task, action=story.action, result=story.result, now=self.clock.now())
        number = len(await self.store.stories_of(caller.member.id))
        missing = story.missing()
        note = f" Missing: {', '.join(missing)} (/story edit {number} <part> <text>)." if missing else ""
        return Message(body=f"Story {number} saved: **{story.title}** ({', '.join(canonical)}).{note}",
                       footer="/story list shows your stories, /story gaps the themes still without one.",
                       kind="success", ephemeral=True)

    async def list_stories(self, caller: Caller) -> Message:
        rows = await self.store.stories_of(caller.member.id)
        if not rows:
            return Message(title="Your STAR stories", body="No stories yet. Add one: /story add failure <title> | "
                           "<situation> | <task> | <action> | <result>", ephemeral=True)
        fields = []
        for n, row in enumerate(rows, start=1):
            story = _row_text(row)
            lines = [f"**{p[0].upper()}** {getattr(story, p)}" for p in PARTS if getattr(story, p)]
            if story.missing():
                lines.append(f"_missing: {', '.join(story.missing())}_")
            fields.append(Field(f"{n}. {story.title} · {str(row['themes']).replace(',', ', ')}", "\n".join(lines)))
        return Message(title=f"Your STAR stories ({len(rows)})", fields=tuple(fields),
                       footer="Only you see these. /story edit <n> <part> <text> · /story remove <n> · /story gaps",
                       ephemeral=True)

    async def _nth(self, caller: Caller, number: int) -> Mapping[str, Any]:
        rows = await self.store.stories_of(caller.member.id)
        if not 1 <= number <= len(rows):
            raise NotFound(f"You have no story {number}" + (f" (you have {len(rows)})." if rows else "; /story add adds one."))
        return rows[number - 1]

    async def edit(self, caller: Caller, number: int, text: str) -> Message:
        row = await self._nth(caller, number)
        words = text.strip().split(None, 1)
        if not words:
            raise UsageError(f"Say what to change: /story edit {number} <{'|'.join(EDITABLE[1:])}> <text>, or the "
                             "whole story: /story edit <n> <title> | <situation> | <task> | <action> | <result>.")
        part = words[0].lower()
        if part in EDITABLE and "|" not in text:
            value = words[1].strip() if len(words) > 1 else ""
            if part in ("theme", "themes"):
                changes = {"themes": ",".join(parse_themes(value))}
            else:
                current = _row_text(row)
                story = StoryText(**{**current.__dict__, part: value})
                _check(story)
                changes = {part: value}
        else:
            story = parse_story(text)
            changes = {"title": story.title, **{p: getattr(story, p) for p in PARTS}}
        await self.store.update_story(int(row["id"]), now=self.clock.now(), **changes)
        return Message(body=f"Story {number} updated ({', '.join(changes)}).", kind="success", ephemeral=True)

    async def remove(self, caller: Caller, number: int) -> Message:
        row = await self._nth(caller, number)
        await self.store.delete_story(int(row["id"]))
        return Message(body=f"Story {number} removed: {row['title']}.", kind="success", ephemeral=True)

    async def gaps(self, caller: Caller) -> Message:
        rows = await self.store.stories_of(caller.member.id)
        covered: dict[str, int] = {}
        for row in rows:
            for theme in str(row["themes"]).split(","):
                covered[theme] = covered.get(theme, 0) + 1
        missing = [t for t in THEMES if t not in covered]
        fields = []
        if covered:
            fields.append(Field("Covered", ", ".join(f"{t} ({covered[t]})" for t in THEMES if t in covered)))
        if missing:
            lines = []
            suggested = self.questions_about(missing)
            for theme in missing:
                q = suggested.get(theme)
                lines.append(f"**{theme}**" + (f" · practise with `{q}`" if q else ""))
            fields.append(Field(f"No story yet ({len(missing)} of {len(THEMES)})", "\n".join(lines)))
        body = ("Every common theme has a story. Rehearse them out loud, 2 minutes each." if not missing else
                "Interviewers ask about these themes; prepare one story for each (one story can cover several).")
        buttons = tuple(Button(f"Add {'an' if t[0] in 'aeiou' else 'a'} {t} story", "form", f"story {t}") for t in missing[:3])
        return Message(title=f"Story gaps · {len(THEMES) - len(missing)}/{len(THEMES)} themes covered", body=body,
                       fields=tuple(fields), buttons=buttons, ephemeral=True)

    def question_about(self, theme: str) -> str | None:
        """The behavioral question of the bank that asks most directly about the theme, or None."""
        return self.questions_about([theme]).get(theme)

    def questions_about(self, themes: Sequence[str]) -> dict[str, str]:
        """theme -> a behavioral question about it, the closest match first, and a different question
        for each theme while the bank has one: a question whose id names the theme beats one whose
        first topic is the theme, which beats one that lists it among its other topics."""
        ranked: dict[str, list[tuple[int, str]]] = {}
        for theme in themes:
            ranks = [(r, q.id) for q in self.bank.by_track("behavioral")
                     if (r := _closeness(theme, q.id, q.topics)) is not None]
            ranked[theme] = sorted(ranks)
        chosen: dict[str, str] = {}
        taken: set[str] = set()
        for theme in sorted(themes, key=lambda t: (ranked[t][0][0] if ranked[t] else 9, len(ranked[t]))):
            free = [qid for _, qid in ranked[theme] if qid not in taken]
            pick = free[0] if free else (ranked[theme][0][1] if ranked[theme] else None)
            if pick is not None:
                chosen[theme] = pick
                taken.add(pick)
        return chosen


def _closeness(theme: str, qid: str, topics: Sequence[str]) -> int | None:
    """0: the id names the theme; 1: the theme is the question's first topic; 2: one of its topics; None: unrelated."""
    words = {theme, *THEMES[theme]}
    id_words = qid.split("-")
    if any(w in id_words or ("-" in w and w in qid) for w in words):
        return 0
    if topics and topics[0] in words:
        return 1
    if words & set(topics):
        return 2
    return None
