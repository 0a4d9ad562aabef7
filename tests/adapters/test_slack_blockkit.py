"""Block Kit within Slack's documented limits, whatever the core hands the renderer.

Random `Message`s and `Form`s of extreme sizes (empty, one character, thousands; markup that grows
when escaped, fences, astral characters, too many fields and buttons) are rendered and every payload
is checked by the validator in `slack_fake_api` (written from Slack's reference pages: header 150,
section text 3,000, fields 10 x 2,000, buttons 25 per block with text 75, action_id 255 and value
2,000, blocks 50 per message and 100 per view, modal title / submit / close 24, input label 2,000,
plain_text_input max_length 3,000, placeholder 150, context elements 10, private_metadata 3,000,
message text 40,000, ...). A form that cannot fit is refused with a `UsageError`, never sent cut.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.slack_app import Renderer
from bot.core.commands import core_table
from bot.core.errors import UsageError
from bot.core.messages import KINDS, Button, Field, Form, FormField, Message
from tests.adapters.slack_fake_api import message_errors, view_errors
from tests.adapters.test_slack_app import Slack, all_text, api, slack  # noqa: F401 - fixtures

render = Renderer(core_table())

PIECES = st.sampled_from(["a", "é", "&", "<", ">", "<!channel>", "*", "**bold**", "`", "```", "```python\n",
                          "\n", " ", "  \n", "#C0DAILY", "/leaderboard", "😀", "𝔘", "\u200b", "x" * 80, ":warning:"])


def sized(most: int) -> st.SearchStrategy[str]:
    """Text from nothing to `most` characters: a few random pieces, or one piece repeated many times."""
    few = st.lists(PIECES, max_size=12).map("".join)
    many = st.tuples(PIECES, st.integers(0, most)).map(lambda t: (t[0] * (t[1] // max(1, len(t[0])) + 1))[: t[1]])
    mixed = st.tuples(st.lists(PIECES, min_size=1, max_size=6), st.integers(1, 400)).map(
        lambda t: "".join(t[0]) * t[1])
    return st.one_of(few, many, mixed)


ACTIONS = st.one_of(st.sampled_from(["leaderboard", "hint", "form", "discuss", "mock checkin", "question"]),
                    sized(400))
buttons = st.builds(Button, label=sized(300), action=ACTIONS, value=sized(5000),
                    style=st.sampled_from(["primary", "danger", "secondary", "weird"]))
fields = st.builds(Field, name=sized(3000), value=sized(5000), inline=st.booleans())
images = st.one_of(st.none(), st.just("/tmp/card.png"),
                   st.integers(0, 4000).map(lambda n: "https://img.example/" + "p" * n + ".png"))
messages = st.builds(
    Message, title=sized(5000), body=sized(50_000), fields=st.lists(fields, max_size=40).map(tuple),
    code=st.one_of(st.none(), sized(50_000)), buttons=st.lists(buttons, max_size=40).map(tuple), image=images,
    footer=sized(5000), kind=st.sampled_from(sorted(KINDS)), ephemeral=st.booleans())
form_fields = st.builds(
    FormField, name=st.one_of(st.sampled_from(["answer", "scores", "notes"]), sized(300)), label=sized(3000),
    style=st.sampled_from(["short", "paragraph"]), required=st.booleans(),
    max_length=st.one_of(st.none(), st.integers(-5, 100_000)), placeholder=sized(500))
forms = st.builds(Form, title=sized(200), command=st.sampled_from(["submit", "mock feedback", "story add"]),
                  fields=st.lists(form_fields, max_size=110).map(tuple),
                  fixed=st.dictionaries(st.sampled_from(["id", "member", "theme"]), sized(4000)),
                  note=sized(5000))
owners = st.one_of(st.none(), st.just("U0ADA"))

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


def as_view(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "home", "blocks": blocks}


@FUZZ
@given(messages, owners)
def test_every_message_fits_block_kit(message: Message, owner: str | None) -> None:
    payload = render.payload(message, owner=owner)
    assert message_errors(payload) == []
    assert message_errors({"response_type": "ephemeral", **payload}) == []  # as an ack or a respond()
    assert view_errors(render.result_view(message, message.title)) == []
    assert view_errors(as_view(render.blocks(message, max_blocks=100))) == []


@FUZZ
@given(st.lists(messages, min_size=1, max_size=4), sized(300))
def test_every_home_tab_fits_block_kit(parts: list[Message], community: str) -> None:
    assert view_errors(render.home_view(community, parts)) == []


@FUZZ
@given(forms, sized(300))
def test_every_form_fits_block_kit_or_is_refused(form: Form, channel: str) -> None:
    metadata = {"command": form.command, "fixed": dict(form.fixed), "channel": channel}
    try:
        view = render.modal(form, metadata=metadata)
    except UsageError as exc:
        assert str(exc)  # refused with a reason, never sent cut
        return
    assert view_errors(view) == []
    assert json.loads(view["private_metadata"]) == metadata  # whole, valid JSON
    assert "notify_on_close" not in view  # nothing listens for view_closed


def test_the_largest_of_everything_fits() -> None:
    """The far end of every size at once (the fuzz mostly draws smaller ones)."""
    huge = "&<>" * 20_000
    message = Message(title=huge, body=huge, fields=tuple(Field(huge, huge, inline=i % 2 == 0) for i in range(40)),
                      code="```\n" + huge + "\n" + "y" * 9000, footer=huge, image="https://i.example/" + "p" * 2900,
                      buttons=tuple(Button("😀" * 300, "leaderboard", huge) for _ in range(40)), kind="error")
    for owner in (None, "U0ADA"):
        payload = render.payload(message, owner=owner)
        assert message_errors(payload) == [] and len(payload["blocks"]) == 50
    assert view_errors(render.result_view(message, huge)) == []
    assert view_errors(render.home_view(huge, [message, message])) == []
    form = Form(huge, "submit", tuple(FormField(f"f{i}", huge, "paragraph", max_length=10**6, placeholder=huge)
                                      for i in range(99)), {"id": "q"}, note=huge)
    assert view_errors(render.modal(form, metadata={"command": "submit", "fixed": {"id": "q"}, "channel": ""})) == []
    with pytest.raises(UsageError, match="at most 99"):
        render.modal(Form("t", "submit", tuple(FormField(f"f{i}", "l") for i in range(100)), {}), metadata={})


def test_a_title_that_grows_when_escaped_is_clipped() -> None:
    """The fuzzed case: 3,000 characters of `&` and `<` became 4,153 once escaped."""
    for title in ("&" * 3000, "<>" * 1500, "a & b " * 600):
        [first, *_] = render.blocks(Message(title=title, body="x"))
        assert len(first["text"]["text"]) <= 3000
        assert first["text"]["text"].endswith("…*")
        assert "&am…" not in first["text"]["text"] and "&a…" not in first["text"]["text"]  # no half entity


def test_private_metadata_too_large_for_slack_is_refused_cleanly() -> None:
    form = Form("Feedback", "mock feedback", (FormField("scores", "Scores"),), {"member": "é" * 2900})
    view = render.modal(form, metadata={"command": form.command, "fixed": dict(form.fixed), "channel": "C0X"})
    assert len(view["private_metadata"]) <= 3000  # non-ASCII is kept as is, not \\u-escaped six times longer
    assert json.loads(view["private_metadata"])["fixed"]["member"] == "é" * 2900
    big = Form("Feedback", "mock feedback", (FormField("scores", "Scores"),), {"member": "x" * 3100})
    with pytest.raises(UsageError, match="too long for a Slack form"):
        render.modal(big, metadata={"command": big.command, "fixed": dict(big.fixed), "channel": "C0X"})


async def test_a_command_whose_form_cannot_carry_its_values_says_so(slack: Slack) -> None:  # noqa: F811
    reply = await slack.command("mock feedback " + "x" * 3100)
    assert "too long for a Slack form" in all_text(reply) and reply["response_type"] == "ephemeral"
    assert slack.api.of("views.open") == []


async def test_no_view_asks_to_be_told_when_it_closes(slack: Slack) -> None:  # noqa: F811
    """Slack sends view_closed only for views with notify_on_close; none has it, so none is handled."""
    await slack.command("submit overfit-first-step")
    [opened] = slack.api.of("views.open")
    assert "notify_on_close" not in opened["view"]
    status, _ = await slack.interact({
        "type": "view_closed", "team": {"id": "T0TEAM", "domain": "onsite-test"},
        "user": {"id": "U0ADA", "name": "ada", "team_id": "T0TEAM"}, "api_app_id": "A0APP", "token": "legacy",
        "view": {**opened["view"], "id": "V0VIEW", "team_id": "T0TEAM"}, "is_cleared": False})
    assert status == 404  # no listener: Bolt answers an unhandled request
