"""The console, driven as a user would: a real process, real stdin, a real SQLite file."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE_BANK = REPO / "tests" / "fixtures" / "bank"


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}
    e.update({"ONSITE_QUESTIONS": str(FIXTURE_BANK), "XDG_DATA_HOME": str(tmp_path / "data"), "USER": "tester"})
    e.update(extra)
    return e


def console(tmp_path: Path, script: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "x.db"), *args],
        input=script, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env(tmp_path, **extra),
    )


SCRIPT = "/help\n/daily\n/nonsense\n/question no-such-id\n"


def test_script_mode_prints_four_replies_and_exits_0(tmp_path: Path) -> None:
    # whatever the time of day, the console is live: no catch-up post at start, only the four replies
    result = console(tmp_path, SCRIPT)
    assert result.returncode == 0, result.stderr
    replies = [r for r in result.stdout.split("\n\n") if r.strip()]
    assert len(replies) == 4
    assert replies[0].startswith("Onsite · practice for ML interview loops")
    assert replies[1].startswith("Daily round · ")
    assert "pair-sum-count" in replies[1] and "mean-center" in replies[1]
    assert replies[2] == "error: Unknown command /nonsense. Type /help for the list."
    assert replies[3] == "error: No question with id 'no-such-id'. /daily lists today's questions."
    assert "\033[" not in result.stdout  # no colour codes when not on a terminal


def test_json_mode_prints_one_object_per_reply(tmp_path: Path) -> None:
    result = console(tmp_path, SCRIPT, "--json")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 4
    assert [o["kind"] for o in objects] == ["info", "question", "error", "error"]
    assert all(o["to"] == "reply" for o in objects)
    assert {"title", "body", "fields", "code", "buttons", "image", "footer", "ephemeral"} <= set(objects[0])


def test_as_clock_and_admin_rights(tmp_path: Path) -> None:
    script = (
        "# comments and blank lines are skipped\n\n"
        "/admin clock 2026-11-24T10:00\n"
        "/daily\n"
        "/as alice\n"
        "/admin clock 2026-11-25T10:00\n"
        "/as tester\n"
        "/admin clock nonsense\n"
    )
    result = console(tmp_path, script, "--json")
    assert result.returncode == 0, result.stderr
    everything = [json.loads(line) for line in result.stdout.splitlines()]
    out = [o for o in everything if o["to"] == "reply"]
    assert len(out) == 6
    # moving the clock past the post time posted the round in the channel, right after the reply
    assert everything[0]["to"] == "reply"
    posts = [o for o in everything if o["to"] == "channel:#daily"]
    assert len(posts) == 5 and all(p["title"].startswith("Daily ") for p in posts)
    assert everything.index(posts[0]) == 1
    assert out[0]["body"] == "Clock set to Tue 24 Nov 2026 10:00 UTC."
    assert out[1]["title"] == "Daily round · Tue 24 Nov 2026"
    assert out[2]["body"] == "You are now alice, a member of Local community."
    assert out[3]["kind"] == "error" and out[3]["body"] == "Only community admins can use /admin clock."
    assert out[4]["body"] == "You are now tester, the admin of Local community for this console run."
    assert out[5]["kind"] == "error" and "'nonsense' is not an ISO time" in out[5]["body"]


def test_the_round_is_shared_between_processes_on_one_database(tmp_path: Path) -> None:
    first = console(tmp_path, "/admin clock 2026-11-24T10:00\n/daily\n", "--json")
    second = console(tmp_path, "/admin clock 2026-11-24T23:00\n/daily\n", "--json")
    a = [json.loads(line) for line in first.stdout.splitlines()]
    b = [json.loads(line) for line in second.stdout.splitlines()]
    daily_a = next(o for o in a if o["to"] == "reply" and o["title"].startswith("Daily round"))
    daily_b = next(o for o in b if o["to"] == "reply" and o["title"].startswith("Daily round"))
    assert daily_a["fields"] == daily_b["fields"]
    # the first process posted the round; the second, at the same day, did not post it again
    assert sum(o["to"] == "channel:#daily" for o in a) == 5
    assert sum(o["to"] == "channel:#daily" for o in b) == 0


def test_a_bad_question_file_is_reported_and_skipped_and_the_bot_starts(tmp_path: Path) -> None:
    bank = tmp_path / "bank"
    (bank / "coding").mkdir(parents=True)
    (bank / "coding" / "pair-sum-count.yaml").write_text((FIXTURE_BANK / "coding" / "pair-sum-count.yaml").read_text())
    (bank / "coding" / "broken.yaml").write_text("id: broken\ntitle: [\n")
    result = console(tmp_path, "/question pair-sum-count\n", ONSITE_QUESTIONS=str(bank))
    assert result.returncode == 0
    assert "Count pairs that sum to a target" in result.stdout
    assert "broken.yaml" in result.stderr and "is not valid YAML" in result.stderr


def test_bad_setting_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = console(tmp_path, "/help\n", ONSITE_TIMEZONE="Nowhere/Land")
    assert result.returncode == 2
    assert "ONSITE_TIMEZONE='Nowhere/Land' is not an IANA timezone" in result.stderr


def test_interactive_terminal_shows_todays_questions_and_answers_help(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "t.db")],
        stdin=follower, stdout=follower, stderr=follower, cwd=tmp_path, env=env(tmp_path, TERM="dumb"),
        close_fds=True,
    )
    os.close(follower)

    def read_until(marker: bytes, timeout: float = 30.0) -> bytes:
        seen = b""
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
        return seen

    try:
        start = read_until(b"onsite (tester)> ")
        assert b"Onsite console" in start and b"Daily round" in start and b"pair-sum-count" in start
        os.write(leader, b"/help\n")
        assert b"List the commands" in read_until(b"onsite (tester)> ")
        os.write(leader, b"\x04")  # Ctrl-D
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert (tmp_path / "data" / "onsite" / "console_history").exists() is False  # --db given: history sits beside it
    assert (tmp_path / "console_history").exists()


def test_terminal_rendering_turns_markdown_bold_into_bold() -> None:
    from bot.adapters.console import BOLD, render_text
    from bot.core.messages import Field, Message

    message = Message(title="Leaderboard", body="`  1.` **alice** · 24 pts", fields=(Field("Top", "**bob**"),))
    on_terminal = render_text(message, color=True)
    assert f"{BOLD}alice" in on_terminal and "**" not in on_terminal
    assert "**alice**" in render_text(message, color=False)  # scripts see the Markdown as written


async def test_a_bug_in_a_command_is_a_short_reply_and_a_logged_traceback(tmp_path: Path) -> None:
    """The console's last resort: an unexpected exception never reaches the member as a traceback."""
    import io

    from bot.adapters.console import Console, Output
    from bot.app import build_app
    from bot.config import Settings
    from bot.core.commands import Command
    from tests.conftest import StandInGrader

    async def broken(ctx: object, args: object) -> object:
        raise RuntimeError("a bug of ours")

    settings = Settings(database=tmp_path / "x.db", questions_dir=FIXTURE_BANK)
    app = await build_app(settings, grader=StandInGrader())
    out = io.StringIO()
    try:
        console = Console(app, Output(out, as_json=True), name="tester")
        console.table = console.table.extended([Command("broken", "Always fails.", broken)])  # type: ignore[arg-type]
        await console.start()
        reply = await console.handle("/broken")
        after = await console.handle("/daily")
    finally:
        await app.close()
    assert reply is not None and reply.kind == "error"
    assert "Something went wrong on our side" in reply.body and "Traceback" not in out.getvalue()
    assert "RuntimeError: a bug of ours" in (tmp_path / "console-errors.log").read_text()
    assert after is not None and after.kind != "error"  # the console carries on


def test_start_says_when_the_judge_falls_back_to_the_rlimit_tier(tmp_path: Path) -> None:
    """An operator sees a weaker sandbox at start, before a member's code meets it."""
    hidden = console(tmp_path, "/help\n", PATH=str(tmp_path / "no-bwrap-here"))
    assert hidden.returncode == 0, hidden.stderr
    assert "judge: rlimit tier, bwrap unusable here (bwrap is not installed)" in hidden.stderr
    assert hidden.stdout.startswith("Onsite · practice for ML interview loops")
    if shutil.which("bwrap"):
        from graders import sandbox

        if sandbox.bwrap_status()[0]:
            assert "rlimit tier" not in console(tmp_path, "/help\n").stderr
