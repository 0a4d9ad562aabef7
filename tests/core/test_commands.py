from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.core.bank import Bank
from bot.core.commands import (
    Arg,
    Command,
    CommandTable,
    Context,
    bind_line,
    core_table,
    dispatch,
    dispatch_line,
    tokenize,
)
from bot.core.errors import NotFound, UsageError
from bot.core.messages import Message
from bot.core.models import Caller, NewSubmission
from bot.core.services import Services

REPO = Path(__file__).resolve().parents[2]


def ctx(services: Services, caller: Caller, table: CommandTable | None = None) -> Context:
    return Context(services, caller, table or core_table(), "test")


def test_tokenize_keeps_offsets_and_quotes() -> None:
    assert tokenize('a "b c" \'d e\' f\\"g') == [("a", 0), ("b c", 2), ("d e", 8), ('f\\"g', 14)]
    with pytest.raises(UsageError, match="Unbalanced quote"):
        tokenize('say "unclosed')


def test_rest_argument_takes_the_raw_remainder_but_not_a_known_flag() -> None:
    async def noop(c: Context, a: Mapping[str, Any]) -> Message:
        return Message()

    cmd = Command("submit", "s", noop, (Arg("id", "id", required=True), Arg("answer", "a", kind="rest"), Arg("file", "f", flag=True)))
    text = "q1   two  spaces --not-a-flag"
    assert bind_line(cmd, text, tokenize(text)) == {"id": "q1", "answer": "two  spaces --not-a-flag"}
    text = "q1 --file sol.py"
    assert bind_line(cmd, text, tokenize(text)) == {"id": "q1", "file": "sol.py"}
    with pytest.raises(UsageError, match="has no option --nope"):
        bind_line(cmd, "--nope 1", tokenize("--nope 1"))


async def test_help_lists_commands_and_explains_one(services: Services, member: Caller) -> None:
    reply = await dispatch_line(ctx(services, member), "/help")
    for name in ("/daily", "/question <id>", "/leaderboard", "/stats", "/help"):
        assert name in reply.body
    one = await dispatch_line(ctx(services, member), "/help leaderboard")
    assert one.fields[0].name.startswith("/leaderboard [week|month|all]")
    assert "e.g. `/leaderboard month coding`" in one.fields[0].value
    missing = await dispatch_line(ctx(services, member), "/help nothing")
    assert missing.is_error and "No command /nothing" in missing.body


async def test_unknown_commands_and_bad_arguments_get_one_specific_line(services: Services, member: Caller) -> None:
    c = ctx(services, member)
    reply = await dispatch_line(c, "/nonsense")
    assert reply.is_error and reply.body == "Unknown command /nonsense. Type /help for the list."
    reply = await dispatch_line(c, "/leaderbord")
    assert "Did you mean /leaderboard?" in reply.body
    reply = await dispatch_line(c, "/leaderboard yearly")
    assert reply.is_error and "period must be one of week, month, all, got 'yearly'" in reply.body
    assert reply.footer.startswith("Usage: /leaderboard")
    reply = await dispatch_line(c, "/question")
    assert reply.is_error and reply.body.startswith("Missing id") and reply.ephemeral
    reply = await dispatch_line(c, "/question a b")
    assert reply.is_error and "Unexpected extra argument 'b'" in reply.body
    reply = await dispatch_line(c, "/leaderboard --page zero")
    assert "page must be a whole number" in reply.body
    reply = await dispatch_line(c, "/question no-such-id")
    assert reply.is_error and reply.body == "No question with id 'no-such-id'. /daily lists today's questions."
    reply = await dispatch(c, "stats", {"colour": "red"})
    assert reply.is_error and "no argument 'colour'" in reply.body


async def test_admin_commands_refuse_members(services: Services, member: Caller, admin: Caller) -> None:
    async def secret(c: Context, a: Mapping[str, Any]) -> Message:
        return Message(body="done")

    table = core_table().extended([Command("admin thing", "x", secret, admin=True)])
    refused = await dispatch_line(ctx(services, member, table), "/admin thing")
    assert refused.is_error and refused.body == "Only community admins can use /admin thing."
    assert (await dispatch_line(ctx(services, admin, table), "/admin thing")).body == "done"
    assert "/admin thing" not in (await dispatch_line(ctx(services, member, table), "/help")).body
    # a member is refused before the line is parsed: no usage text of an admin command leaks to them
    malformed = await dispatch_line(ctx(services, member, table), "/admin setup time 25:99 --no-such-flag")
    assert malformed.body == "Only community admins can use /admin setup." and not malformed.footer
    wrong_sub = await dispatch_line(ctx(services, admin, table), "/admin nope")
    assert wrong_sub.body == "/admin nope is not a command. Try one of: /admin pair-now, /admin post-now, /admin setup, /admin thing."


async def test_question_shows_id_examples_and_starter(services: Services, member: Caller) -> None:
    reply = await dispatch_line(ctx(services, member), "/question pair-sum-count")
    assert reply.kind == "question" and "pair-sum-count" in reply.footer
    fields = {f.name: f.value for f in reply.fields}
    assert "`count_pairs([1, 2, 3, 4], 5) → 2`" in fields["Examples"]
    assert fields["Tests"] == "2 shown, 6 hidden"
    assert reply.code is not None and "def count_pairs" in reply.code
    assert "40 true positives" not in reply.body
    choice = await dispatch_line(ctx(services, member), "/question overfit-first-step")
    assert "**B.** Stop at the epoch" in {f.name: f.value for f in choice.fields}["Choices"]


async def test_daily_shows_every_enabled_track_with_ids(services: Services, member: Caller) -> None:
    reply = await dispatch_line(ctx(services, member), "/daily")
    assert reply.title == "Daily round · Mon 23 Nov 2026"
    assert len(reply.fields) == 5
    for f in reply.fields:
        assert "`" in f.value  # every question carries its id
    one = await dispatch_line(ctx(services, member), "/daily ml-coding")
    assert one.title.startswith("Daily 23 Nov: ") and one.footer == "Question id: mean-center"


async def test_daily_for_a_disabled_track(services: Services, member: Caller) -> None:
    await services.store.update_community(member.community.id, tracks=("coding",))
    community = await services.store.get_community(member.community.id)
    assert community is not None
    caller = Caller(member.member, community)
    reply = await dispatch_line(ctx(services, caller), "/daily behavioral")
    assert reply.is_error and "not enabled" in reply.body


async def test_leaderboard_and_stats(services: Services, member: Caller, admin: Caller) -> None:
    c = ctx(services, member)
    empty = await dispatch_line(c, "/leaderboard")
    assert "No points yet" in empty.body
    store, now = services.store, services.clock.now()
    cid = member.community.id
    others = [await store.ensure_member(cid, f"m{i}", f"M{i:02d}", now=now) for i in range(12)]
    for i, m in enumerate(others):
        await store.add_points(community_id=cid, member_id=m.id, points=100 - i, reason="solve", track="coding", question_id="q", now=now)
    await store.add_points(community_id=cid, member_id=member.member.id, points=1, reason="solve", track="coding", question_id="q", now=now)
    board = await dispatch_line(c, "/leaderboard week")
    lines = board.body.splitlines()
    assert lines[0] == "`  1.` **M00** · 100 pts · 1 solved"
    assert lines[-1] == "` 13.` **Bob** (you) · 1 pts"
    assert board.footer.startswith("Page 1 of 2")
    page2 = await dispatch_line(c, "/leaderboard --page 2")
    assert "**Bob**" in page2.body and "(you)" not in page2.body
    track_only = await dispatch_line(c, "/leaderboard ml-theory")
    assert track_only.title == "Leaderboard · This week · ML theory" and "No points yet" in track_only.body

    for qid, verdict in (("q", "wrong_answer"), ("q", "accepted"), ("q2", "wrong_answer")):
        await store.record_submission(
            NewSubmission(community_id=cid, member_id=member.member.id, question_id=qid, track="coding", kind="code",
                          content="x", verdict=verdict, correct=verdict == "accepted"),
            now=now, points=lambda position, first: [])
    stats = await dispatch_line(c, "/stats")
    fields = {f.name: f.value for f in stats.fields}
    assert fields["Points"] == "1" and fields["Rank"] == "#13"
    assert fields["Coding"] == "1/2 solved · accuracy 50%"
    other = await dispatch_line(c, "/stats m00")
    assert other.title == "Stats · M00"
    missing = await dispatch_line(c, "/stats nobody")
    assert missing.is_error and "No member called 'nobody'" in missing.body


async def test_admin_setup_validates_and_shows_settings(services: Services, admin: Caller, member: Caller) -> None:
    c = ctx(services, admin)
    shown = await dispatch_line(c, "/admin setup")
    assert {f.name: f.value for f in shown.fields}["Channel"] == "#daily"
    for line, message in [
        ("/admin setup time 9am", "'9am' is not a 24-hour time"),
        ("/admin setup timezone Mars/Base", "'Mars/Base' is not an IANA timezone"),
        ("/admin setup tracks coding chess", "got chess"),
        ("/admin setup pattern easy,hard", "7 comma-separated"),
        ("/admin setup colour blue", "setting must be one of channel, time"),
        ("/admin setup time", "Give a value"),
    ]:
        reply = await dispatch_line(c, line)
        assert reply.is_error and message in reply.body, (line, reply.body)
    reply = await dispatch_line(c, "/admin setup tracks coding, ml-theory")
    assert {f.name: f.value for f in reply.fields}["Tracks"] == "coding, ml-theory"
    reply = await dispatch_line(c, "/admin setup channel #interview-prep")
    assert {f.name: f.value for f in reply.fields}["Channel"] == "#interview-prep"
    refused = await dispatch_line(ctx(services, member), "/admin setup time 10:00")
    assert refused.is_error and refused.body == "Only community admins can use /admin setup."
    community = await services.store.get_community(admin.community.id)
    assert community is not None and community.post_time == "09:00" and community.channel == "interview-prep"


async def test_member_settings(services: Services, member: Caller) -> None:
    c = ctx(services, member)
    assert "hidden from the leaderboard" in (await dispatch_line(c, "/settings hide-from-leaderboard on")).body
    m = await services.store.get_member(member.member.id)
    assert m is not None and m.hide_from_leaderboard
    assert (await dispatch_line(c, "/settings timezone Asia/Kolkata")).body.startswith("Your timezone is now Asia/Kolkata")
    bad = await dispatch_line(c, "/settings timezone Somewhere")
    assert bad.is_error


async def test_hint_and_submit_through_the_table(services: Services, member: Caller) -> None:
    c = ctx(services, member)
    hint = await dispatch_line(c, "/hint pair-sum-count")
    assert hint.title.startswith("Hint 1 of 1") and "Count how often" in hint.body
    assert (await dispatch_line(c, "/hint pair-sum-count --number 2")).is_error
    no_file_reader = await dispatch_line(c, "/submit pair-sum-count --file x.py")
    assert no_file_reader.is_error and "not a --file path" in no_file_reader.body
    answer = await dispatch_line(c, "/submit precision-from-counts 0.8")
    assert answer.title.startswith("Correct ✓")


async def test_leaderboard_buttons_page_through_the_same_command(services: Services, member: Caller) -> None:
    store, now, cid = services.store, services.clock.now(), member.community.id
    for i in range(15):
        m = await store.ensure_member(cid, f"p{i}", f"P{i:02d}", now=now)
        await store.add_points(community_id=cid, member_id=m.id, points=50 - i, reason="solve", track="coding", now=now)
    first = await dispatch_line(ctx(services, member), "/leaderboard month coding")
    assert [(b.label, b.action, b.value) for b in first.buttons] == [("Next ▶", "leaderboard", "month coding --page 2")]
    second = await dispatch_line(ctx(services, member), f"/{first.buttons[0].action} {first.buttons[0].value}")
    assert second.footer.startswith("Page 2 of 2") and second.buttons[0].value == "month coding --page 1"


def test_submit_forms_fit_the_question(bank: Bank) -> None:
    from bot.core.forms import form_for

    code = form_for(bank, "submit", "pair-sum-count")
    assert code.command == "submit" and code.fixed == {"id": "pair-sum-count"} and code.fields[0].style == "paragraph"
    choice = form_for(bank, "submit", "overfit-first-step")
    assert choice.fields[0].label == "Your answer (a letter A-C)" and choice.fields[0].style == "short"
    with pytest.raises(NotFound):
        form_for(bank, "submit", "nope")


async def test_admin_sets_the_mock_schedule(services: Services, admin: Caller) -> None:
    c = ctx(services, admin)
    for line in ("/admin setup mock-day thursday", "/admin setup mock-time 18:30", "/admin setup mock-cadence biweekly"):
        reply = await dispatch_line(c, line)
        assert not reply.is_error, reply.body
    assert {f.name: f.value for f in reply.fields}["Mock pairing"] == "thu 18:30 UTC, every 14 day(s)"
    for line, message in [("/admin setup mock-day someday", "mock-day is a weekday"),
                          ("/admin setup mock-cadence 40", "mock-cadence is weekly, biweekly")]:
        bad = await dispatch_line(c, line)
        assert bad.is_error and message in bad.body


def test_member_output_cannot_break_out_of_its_code_block(bank: Bank) -> None:
    from bot.core.models import Verdict
    from bot.core.submissions import verdict_message

    message = verdict_message(bank.get("pair-sum-count"), Verdict("wrong_answer", 0, 8, 1.0, stdout="```\n@everyone"), "")
    output = {f.name: f.value for f in message.fields}["Your output"]
    assert output.count("```") == 2 and output.startswith("```\n") and output.endswith("\n```")


# -- issue 16 (a newcomer's first evening): help, stories, the channel, examples ------------------


async def test_help_takes_a_group_and_subcommand_unquoted(services: Services, admin: Caller) -> None:
    c = ctx(services, admin)
    join = await dispatch_line(c, "/help mock join")
    assert not join.is_error, join.body
    assert join.title == "Help · /mock join" and [f.name.split()[0] for f in join.fields] == ["/mock"]
    assert join.fields[0].name.startswith("/mock join")
    pair = await dispatch_line(c, "/help admin pair-now")
    assert pair.title == "Help · /admin pair-now" and len(pair.fields) == 1
    assert len((await dispatch_line(c, "/help /mock")).fields) >= 5  # a whole group, with or without its slash
    typo = await dispatch_line(c, "/help mock jion")
    assert typo.is_error and typo.body.startswith("No command /mock jion.")
    assert "Did you mean /mock join, " in typo.body  # the closest first
    far = await dispatch_line(c, "/help zzzz")
    assert far.is_error and far.body == "No command /zzzz. Type /help for the list."


async def test_story_flags_save_what_the_pipe_form_saves(services: Services, member: Caller) -> None:
    c = ctx(services, member)
    piped = await dispatch_line(c, "/story add failure Churn model shipped late | Q3 churn project, two teams | "
                                   "Own the launch | Cut scope, daily check-ins | Shipped 2 weeks late, +4% retention")
    flagged = await dispatch_line(c, '/story add failure Churn model shipped late --situation "Q3 churn project, two teams" '
                                     "--task 'Own the launch' --action \"Cut scope, daily check-ins\" "
                                     '--result "Shipped 2 weeks late, +4% retention"')
    leading = await dispatch_line(c, '/story add failure --situation "Q3 churn project, two teams" --title "Churn model '
                                     'shipped late" --task "Own the launch" --action "Cut scope, daily check-ins" '
                                     '--result "Shipped 2 weeks late, +4% retention"')
    for reply in (piped, flagged, leading):
        assert reply.kind == "success" and "**Churn model shipped late** (failure)." in reply.body, reply.body
        assert "Missing" not in reply.body
    stored = [tuple(r[k] for k in ("themes", "title", "situation", "task", "action", "result"))
              for r in await services.store.stories_of(member.member.id)]
    assert len(stored) == 3 and stored[0] == stored[1] == stored[2], stored
    assert stored[0][2] == "Q3 churn project, two teams"
    some = await dispatch_line(c, "/story add failure Late launch --result Shipped")
    assert some.kind == "success" and "Missing: situation, task, action" in some.body
    twice = await dispatch_line(c, "/story add failure T | S --situation S2")
    assert twice.is_error and "situation is given twice" in twice.body
    empty = await dispatch_line(c, "/story add failure Title --result")
    assert empty.is_error and "--result needs a value" in empty.body
    unquoted = await dispatch_line(c, "/story add failure Title --task Own the launch")
    assert unquoted.is_error and 'Put quotes around a value with spaces: --task "Own the ...' in unquoted.body
    unknown = await dispatch_line(c, "/story add failure Title --lesson learned")
    assert unknown.is_error and "has no option --lesson" in unknown.body
    assert len(await services.store.stories_of(member.member.id)) == 4


async def test_setup_channel_is_validated_and_off_is_explicit(services: Services, admin: Caller) -> None:
    c = ctx(services, admin)
    for line in ("/admin setup channel #", "/admin setup channel ##", "/admin setup channel two words",
                 "/admin setup channel #a#b", "/admin setup channel " + "x" * 101):
        reply = await dispatch_line(c, line)
        assert reply.is_error and "is not a channel name" in reply.body, (line, reply.body)
    community = await services.store.get_community(admin.community.id)
    assert community is not None and community.channel == "daily"  # nothing changed
    off = await dispatch_line(c, "/admin setup channel off")
    assert not off.is_error and {f.name: f.value for f in off.fields}["Channel"] == "off (no daily posts)"
    assert "The daily round is off" in off.body
    named_off = await dispatch_line(c, "/admin setup channel #off")
    assert {f.name: f.value for f in named_off.fields}["Channel"] == "#off"
    back = await dispatch_line(c, "/admin setup channel interview_prep-2")
    assert {f.name: f.value for f in back.fields}["Channel"] == "#interview_prep-2"


def _question_ids_in(line: str, table: CommandTable) -> list[str]:
    """The question ids an example line names (placeholders such as <id> are not ids)."""
    text = line.strip().removeprefix("/onsite ").lstrip("/")
    tokens = tokenize(text)
    try:
        command, used = table.resolve([t for t, _ in tokens[:2]], "console")
    except Exception:
        return []
    kinds = {a.name: a.kind for a in command.args}
    try:
        values = bind_line(command, text, tokens[used:])
    except UsageError:
        values = {}
    return [str(v) for k, v in values.items() if kinds.get(k) == "question" and re.fullmatch(r"[a-z0-9-]+", str(v))]


def test_every_question_id_in_an_example_exists_in_the_real_bank() -> None:
    """README.md and every command's help name questions a newcomer can really open."""
    real = Bank.load(REPO / "questions")
    table = core_table()
    examples = {e: f"/help {c.name}" for c in table.commands.values() for e in c.examples}
    readme = (REPO / "README.md").read_text()
    for match in re.finditer(r"onsite \([^)]*\)> (/[^\n]*)|`(/[^`\n]+)`", readme):
        line = match.group(1) or match.group(2)
        examples[re.split(r"\s{2,}", line)[0]] = "README.md"
    checked = []
    for line, where in examples.items():
        for qid in _question_ids_in(line, table):
            checked.append(qid)
            assert qid in real, f"{where}: {line!r} names {qid!r}, which is not in questions/"
    assert len(checked) >= 8, checked  # the README's and the help's examples were read
