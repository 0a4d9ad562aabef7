"""Builders that turn domain objects into neutral `Message`s (one place, so every platform agrees)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from bot.core.leaderboard import Page
from bot.core.messages import Button, Field, Message
from bot.core.models import CODE_TRACKS, TRACK_LABELS, WRITTEN_TRACKS, MemberStats, PostStats, Question, RoundItem

PROMPT_PREVIEW = 280


def _call(entry: str, args: tuple[Any, ...], kwargs: Any) -> str:
    """A call as Python writes it: the judge's verdicts use the same notation (`True`, `None`, `nan`)."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in dict(kwargs).items()]
    return f"{entry}({', '.join(parts)})"


def preview(text: str, limit: int = PROMPT_PREVIEW) -> str:
    """The first paragraph of a prompt, cut at a word boundary."""
    first = text.strip().split("\n\n", 1)[0].replace("\n", " ")
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0] + " …"


def numeric_answer(q: Question) -> str:
    """The key of a numeric question exactly as its file writes it (`8388608`, never `8.38861e+06`)."""
    if q.answer_text:
        return q.answer_text
    return str(q.answer) if isinstance(q.answer, int) else repr(float(q.answer))


def question_header(q: Question) -> str:
    return f"{TRACK_LABELS[q.track]} · {q.difficulty}"


def question_card(q: Question, *, heading: str | None = None) -> Message:
    """The full question as a member reads it: prompt, examples or choices, starter code, its id."""
    fields: list[Field] = [Field("Id", f"`{q.id}`", inline=True), Field("Level", question_header(q), inline=True)]
    if q.topics:
        fields.append(Field("Topics", ", ".join(q.topics), inline=True))
    if q.is_sql:
        examples = [f"{t.args[0].strip() or '(no rows)'}\n→ {t.expected!r}" for t in q.visible_tests]
        if examples:
            fields.append(Field("Example data → rows", "\n".join(f"```sql\n{e}\n```" for e in examples)))
        hidden = len(q.tests) - len(q.visible_tests)
        fields.append(Field("Tests", f"{len(q.visible_tests)} shown, {hidden} hidden · rows compared "
                                     + ("in order" if q.ordered else "in any order")))
    elif q.is_code and q.entry:
        examples = [f"{_call(q.entry, t.args, t.kwargs)} → {t.expected!r}" for t in q.visible_tests]
        if examples:
            fields.append(Field("Examples", "\n".join(f"`{e}`" for e in examples)))
        hidden = len(q.tests) - len(q.visible_tests)
        fields.append(Field("Tests", f"{len(q.visible_tests)} shown, {hidden} hidden"))
    if q.kind == "choice":
        letters = "ABCDEFGH"
        fields.append(Field("Choices", "\n".join(f"**{letters[i]}.** {c}" for i, c in enumerate(q.choices))))
    elif q.kind == "numeric":
        fields.append(Field("Answer", "a number" + (f" (tolerance ±{q.tolerance:g})" if q.tolerance else "")))
    if q.rubric:
        fields.append(Field("A strong answer covers", ", ".join(r.point for r in q.rubric)))
    return Message(
        title=f"{heading + ': ' if heading else ''}{q.title}",
        body=q.prompt.strip(),
        fields=tuple(fields),
        code=q.schema if q.is_sql else q.starter if q.is_code else None,
        code_language="sql" if q.is_sql else "python",
        footer=f"Question id: {q.id}",
        kind="question",
    )


def round_summary(day: date, items: list[RoundItem], *, community_name: str) -> Message:
    """A community's round: one field per track with the title, id and a preview of the prompt."""
    if not items:
        return Message(
            title=f"Daily round · {day:%a %d %b %Y}",
            body="No questions are available for the enabled tracks yet.",
            kind="info",
        )
    fields = []
    for item in items:
        q = item.question
        label = TRACK_LABELS.get(item.post.track, item.post.track)
        if q is None:
            fields.append(Field(label, f"`{item.post.question_id}` (no longer in the bank)"))
            continue
        fields.append(Field(f"{label} · {q.difficulty}", f"**{q.title}** `{q.id}`\n{preview(q.prompt)}"))
    return Message(
        title=f"Daily round · {day:%a %d %b %Y}",
        body=f"Today's questions in {community_name}. Open one with /question <id>.",
        fields=tuple(fields),
        footer="One question per round type; the reference answers are revealed when the next round posts.",
        kind="question",
    )


def leaderboard_page(page: Page, *, community_name: str) -> Message:
    scope = {"week": "This week", "month": "This month", "all": "All time"}[page.period]
    track = f" · {TRACK_LABELS.get(page.track, page.track)}" if page.track else ""
    if not page.rows:
        return Message(
            title=f"Leaderboard · {scope}{track}",
            body="No points yet in this period. Solve a daily question to get on the board.",
            kind="leaderboard",
        )
    def streak(member_id: int) -> str:
        days = page.streaks.get(member_id, 0)
        return f" · streak {days}" if days else ""

    lines = [f"`{r.rank:>3}.` **{r.display_name}** · {r.points} pts · {r.solved} solved{streak(r.member_id)}"
             for r in page.rows]
    if page.own is not None:
        own = page.own
        lines += ["…", f"`{own.rank:>3}.` **{own.display_name}** (you) · {own.points} pts{streak(own.member_id)}"]
    base = " ".join(p for p in (page.period, page.track or "") if p)
    buttons = []
    if page.page > 1:
        buttons.append(Button("◀ Previous", "leaderboard", f"{base} --page {page.page - 1}"))
    if page.page < page.pages:
        buttons.append(Button("Next ▶", "leaderboard", f"{base} --page {page.page + 1}"))
    return Message(
        title=f"Leaderboard · {scope}{track}",
        body="\n".join(lines),
        buttons=tuple(buttons),
        footer=f"Page {page.page} of {page.pages} · {community_name}",
        kind="leaderboard",
    )


def stats_card(stats: MemberStats) -> Message:
    fields = [
        Field("Points", str(stats.points), inline=True),
        Field("Rank", f"#{stats.rank}" if stats.rank else "unranked", inline=True),
        Field("Streak", f"{stats.streak} day(s), best {stats.best_streak}", inline=True),
        Field("Mocks done", str(stats.mocks_done), inline=True),
    ]
    for t in stats.tracks:
        accuracy = f"{t.accuracy:.0%}" if t.accuracy is not None else "-"
        fields.append(
            Field(TRACK_LABELS.get(t.track, t.track), f"{t.solved}/{t.attempts} solved · accuracy {accuracy}", True)
        )
    body = "" if stats.tracks else "No submissions yet."
    return Message(title=f"Stats · {stats.member.display_name}", body=body, fields=tuple(fields))


def how_to_submit(q: Question) -> str:
    if q.is_sql:
        return f"Submit: /submit {q.id} <your query> (or --file query.sql)"
    if q.track in CODE_TRACKS:
        return f"Submit: /submit {q.id} --file solution.py (or paste the code after the id)"
    if q.kind == "choice":
        return f"Answer: /submit {q.id} <letter>"
    if q.kind == "numeric":
        return f"Answer: /submit {q.id} <number>"
    return f"Answer: /submit {q.id} <your answer in writing>"


def daily_post(q: Question, day: date) -> Message:
    """The public post of one daily question, with its actions."""
    card = question_card(q, heading=f"Daily {TRACK_LABELS[q.track]} · {day:%a %d %b}")
    buttons = (
        Button("Submit", "form", f"submit {q.id}", style="primary"),
        Button("Hint", "hint", q.id),
        Button("Discuss", "discuss", q.id),
    )
    return replace(card, buttons=buttons if q.hints else (buttons[0], buttons[2]), footer=f"{how_to_submit(q)} · id: {q.id}")


def reveal(q: Question, day: date, stats: PostStats) -> Message:
    """The answer to a past daily question, with how the community did."""
    fields: list[Field] = [Field("Question", f"{q.title} `{q.id}`")]
    code = None
    body = q.explanation or ""
    if q.track in CODE_TRACKS:
        code = q.reference
    elif q.kind == "choice":
        letter = str(q.answer)
        fields.append(Field("Answer", f"**{letter}.** {q.choices['ABCDEFGH'.index(letter)]}"))
    elif q.kind == "numeric":
        fields.append(Field("Answer", numeric_answer(q) + (f" (±{q.tolerance:g})" if q.tolerance else "")))
    if q.track in WRITTEN_TRACKS:
        body = (q.outline or "").strip()
        fields.append(Field("Rubric", "\n".join(f"**{r.point}**: {r.description}" for r in q.rubric)))
        fields.append(Field("Peer votes", f"Read the answers with /answers {q.id} and vote with /vote {q.id} <member>."))
    rate = f"{stats.solve_rate:.0%}" if stats.solve_rate is not None else "-"
    fields.append(Field("Attempts", str(stats.attempted), inline=True))
    fields.append(Field("Solve rate", rate, inline=True))
    fields.append(Field("First solvers", ", ".join(stats.first_solvers) or "nobody yet", inline=True))
    return Message(
        title=f"Answer · {TRACK_LABELS[q.track]} of {day:%a %d %b}",
        body=body,
        fields=tuple(fields),
        code=code,
        code_language="sql" if q.is_sql else "python",
        footer=f"Question id: {q.id}",
        kind="reveal",
    )
