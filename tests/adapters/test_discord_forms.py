"""Every form the core defines opens as a real discord.ui.Modal within Discord's limits (issue 17, item 1).

Discord takes at most 5 top-level components in a modal (discord.py refuses a sixth with "maximum
number of children exceeded"); titles and labels up to 45 characters, descriptions and placeholders
up to 100, inputs up to 4,000. The strict fake refuses a modal over any of them, as Discord does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import discord
import pytest

from bot.adapters.discord_app import FORM_PREFIX, build_modal
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.errors import NotFound
from bot.core.forms import FORM_NAMES, form_for
from bot.core.messages import Form
from bot.core.models import TRACKS
from bot.core.stories import THEMES
from bot.store.sqlite import Store
from tests.adapters import discord_payloads as dp
from tests.conftest import REPO, StandInGrader

REAL_BANK = Bank.load(REPO / "questions")
PARTNERS = ("bob", "a" * 64, "Zoë O'Brien-Smith")


@pytest.fixture
async def bot(store: Store, bank: Bank, clock: FixedClock, grader: StandInGrader,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dp.Bot]:
    yield await dp.make_bot(store, bank, clock, grader, monkeypatch)
    await dp.settle()


def every_form(bank: Bank) -> Iterator[tuple[str, str, Form]]:
    """(name, value, form) for every name form_for accepts: each question of the bank, partner, theme."""
    values = {"submit": [q.id for t in TRACKS for q in bank.by_track(t)], "feedback": PARTNERS, "story": ("", *THEMES)}
    assert set(values) == set(FORM_NAMES), "a new form: add the values it takes here"
    for name in FORM_NAMES:
        for value in values[name]:
            yield name, value, form_for(bank, name, value)


def modal_text(payload: dict[str, object]) -> str:
    """What the member reads in a modal: labels, their descriptions, placeholders and text blocks."""
    parts = []
    for c in dp.walk_components(payload["components"]):  # type: ignore[arg-type]
        parts += [str(c[k]) for k in ("label", "description", "placeholder", "content") if c.get(k)]
    return "\n".join(parts)


def test_the_real_bank_has_questions_of_every_track() -> None:
    assert not REAL_BANK.errors
    assert {t for t in TRACKS if REAL_BANK.by_track(t)} >= {"coding", "ml-coding", "ml-theory", "system-design",
                                                             "behavioral"}


def test_an_unknown_form_is_refused_by_name() -> None:
    with pytest.raises(NotFound, match="No form called"):
        form_for(REAL_BANK, "survey", "")


@pytest.mark.parametrize("name", FORM_NAMES)
def test_every_form_builds_a_modal_discord_accepts(name: str) -> None:
    built = 0
    for form_name, value, form in every_form(REAL_BANK):
        if form_name != name:
            continue
        modal = build_modal(form, f"{FORM_PREFIX}{name}:{value}")  # raises as discord.py would
        assert isinstance(modal, discord.ui.Modal)
        payload = modal.to_dict()
        assert dp.modal_problems(payload) == [], (name, value, payload)
        inputs = [c for c in dp.walk_components(payload["components"]) if c.get("type") == 4]
        assert [i["custom_id"] for i in inputs] == [f.name for f in form.fields]  # every field can be filled
        assert form.note in modal_text(payload), "the form's note is shown in full"
        built += 1
    assert built


def test_the_story_form_keeps_every_field_and_its_note() -> None:
    form = form_for(REAL_BANK, "story", "conflict")
    assert len(form.fields) == 5 and form.note  # as many fields as Discord allows, plus a note
    payload = build_modal(form, f"{FORM_PREFIX}story:conflict").to_dict()
    assert len(payload["components"]) == 5
    labels = [c for c in payload["components"] if c["type"] == 18]
    assert [c["label"] for c in labels] == ["Title", "Situation", "Task", "Action", "Result"]
    assert form.note in modal_text(payload)


async def test_add_a_story_from_story_gaps_opens_its_form_and_saves_the_story(bot: dp.Bot) -> None:
    await bot.feed(dp.slash("story gaps"))
    gaps = bot.http.replies()[-1]
    add = next(i for i in dp.custom_ids(gaps) if i.startswith("onsite:form:story "))
    shown = dp.message_json(dp.snowflake(), dp.CHANNEL_ID, gaps, interaction_user=dp.ALICE)
    bot.http.clear()
    await bot.feed(dp.click(add, shown))
    (call,) = bot.http.callbacks()
    assert call.payload["type"] == 9, dp.text_of(bot.http.replies()[-1]) if bot.http.replies() else call.payload
    modal = call.payload["data"]
    theme = add.split(" ", 1)[1]
    assert modal["custom_id"] == f"{FORM_PREFIX}story:{theme}"
    bot.http.clear()
    await bot.feed(dp.modal_submit(modal["custom_id"], {
        "text": "Churn model that shipped late", "situation": "The launch slipped two weeks.",
        "task": "Own the recovery plan.", "action": "Cut scope and paired daily with the data team.",
        "result": "Shipped in 9 days; churn fell 4%."}))
    reply = bot.http.replies()[-1]
    assert "Something went wrong" not in dp.text_of(reply) and reply["flags"] == 64
    community = await bot.community()
    alice = await bot.store.find_member(community.id, str(dp.ALICE))
    assert alice is not None
    (story,) = await bot.store.stories_of(alice.id)
    assert story["title"] == "Churn model that shipped late" and story["result"] == "Shipped in 9 days; churn fell 4%."


@pytest.mark.parametrize("track", TRACKS)
async def test_the_submit_button_of_each_track_opens_through_discord(bot: dp.Bot, track: str) -> None:
    if not bot.bank.by_track(track):
        pytest.skip(f"no {track} question in the fixture bank")
    question = bot.bank.by_track(track)[0]
    await bot.feed(dp.click(f"onsite:form:submit {question.id}", dp.message_json(dp.snowflake(), dp.CHANNEL_ID, None)))
    (call,) = bot.http.callbacks()
    assert call.payload["type"] == 9 and call.payload["data"]["custom_id"] == f"{FORM_PREFIX}submit:{question.id}"


async def test_a_form_that_cannot_fit_a_modal_is_refused_with_a_reason(bot: dp.Bot,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.adapters import discord_app
    from bot.core.messages import FormField

    big = Form(title="Six", command="story add", fields=tuple(FormField(f"f{i}", f"F{i}") for i in range(6)),
               fixed={})
    monkeypatch.setattr(discord_app, "form_for", lambda bank, name, value: big)
    await bot.feed(dp.click("onsite:form:story conflict", dp.message_json(dp.snowflake(), dp.CHANNEL_ID, None)))
    reply = bot.http.replies()[-1]
    assert reply["flags"] == 64 and "/story add" in dp.text_of(reply) and "Something went wrong" not in dp.text_of(reply)
