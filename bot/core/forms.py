"""The forms (modals) behind buttons, described once for every platform.

`form_for("submit", "<question id>")` is the answer form of a question: a paragraph for code or a
written answer, a short line for a theory answer. `form_for("feedback", "<partner>")` is the
mock-interview feedback form (four 1-5 scores and notes), delivered privately to the partner. Platforms clamp lengths to their own limits
(Discord 4,000 characters per input, Slack 3,000) and say so in the form's note.
"""

from __future__ import annotations

from bot.core.bank import Bank
from bot.core.errors import NotFound, shown
from bot.core.messages import Form, FormField
from bot.core.mocks import FEEDBACK_AXES
from bot.core.models import CODE_TRACKS, WRITTEN_TRACKS
from bot.core.stories import MAX_PART, MAX_TITLE, PARTS, canonical_theme
from bot.core.submissions import MAX_CODE_BYTES, MAX_WRITTEN_CHARS

FORM_NAMES = ("submit", "feedback", "story")  # every name form_for accepts (adapters test each one)


def form_for(bank: Bank, name: str, value: str) -> Form:
    if name == "submit":
        q = bank.get(value)
        if q.is_sql:
            field = FormField("answer", "Your query", "paragraph", max_length=MAX_CODE_BYTES,
                              placeholder="SELECT ...")
            note = "One SELECT (or WITH) query over the tables in the question. Longer: /submit with a .sql file."
        elif q.track in CODE_TRACKS:
            field = FormField("answer", "Your code", "paragraph", max_length=MAX_CODE_BYTES,
                              placeholder=(q.starter or "").strip()[:100])
            note = f"Paste a Python solution defining {q.entry}(). Longer files: attach a .py file with /submit."
        elif q.track in WRITTEN_TRACKS:
            field = FormField("answer", "Your answer", "paragraph", max_length=MAX_WRITTEN_CHARS,
                              placeholder=", ".join(r.point for r in q.rubric)[:100])
            note = "At least 40 words; cover the rubric points."
        elif q.kind == "choice":
            field = FormField("answer", f"Your answer (a letter A-{'ABCDEFGH'[len(q.choices) - 1]})", max_length=4)
            note = "One attempt: the explanation comes with the verdict."
        else:
            field = FormField("answer", "Your answer (a number)", max_length=40)
            note = "One attempt: the explanation comes with the verdict."
        return Form(title=f"Submit · {q.title}"[:45], command="submit", fields=(field,), fixed={"id": q.id}, note=note)
    if name == "feedback":
        axes = ", ".join(a.lower() for a in FEEDBACK_AXES)
        return Form(
            title=f"Feedback for {value}"[:45],
            command="mock feedback",
            fields=(FormField("scores", f"Scores 1-5: {axes}"[:45], max_length=20, placeholder="4 3 5 4"),
                    FormField("notes", "What went well, what to work on", "paragraph", required=False, max_length=2000)),
            fixed={"member": value},
            note="Delivered privately to your partner.",
        )
    if name == "story":  # issue 9: `form_for("story", "<theme>")`, a STAR story for that theme
        theme = canonical_theme(value or "impact")
        return Form(
            title=f"A {theme} story (STAR)"[:45],
            command="story add",
            fields=(FormField("text", "Title", max_length=MAX_TITLE, placeholder="Churn model that shipped late"),
                    *(FormField(p, p.capitalize(), "paragraph", required=p == "situation", max_length=MAX_PART)
                      for p in PARTS)),
            fixed={"theme": theme},
            note="Private: only you see your stories. Situation, task, action, result; numbers in the result.",
        )
    raise NotFound(f"No form called {shown(name)}.")
