"""Issue 16 (a newcomer's first evening): what the console reads, driven as a user would.

A real `python -m bot console` process each time: piped stdin for scripts, a real pseudo-terminal
(python's pty module) for the interactive prompt, the real judge and a real SQLite file.
"""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURE_BANK = REPO / "tests" / "fixtures" / "bank"
REFERENCE = yaml.safe_load((FIXTURE_BANK / "coding" / "pair-sum-count.yaml").read_text())["reference"]
# the pasted code has what a line parser trips over: an apostrophe, a blank line and a `#` comment
PASTED = "# the reference, pasted: don't re-count pairs\n\n" + REFERENCE.rstrip("\n")
WRITTEN = ("We rank with a two stage model: candidate features from follows and trending, then a ranking model "
           "on engagement features. Scale: 2M users, about 500 qps at peak, a latency budget of 150 ms. We "
           "monitor online metrics such as dwell time and run an a/b test for every change before launch.")


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}
    far = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:00")  # no post falls due while a test runs
    e.update({"ONSITE_QUESTIONS": str(FIXTURE_BANK), "XDG_DATA_HOME": str(tmp_path / "data"), "USER": "tester",
              "ONSITE_POST_TIME": far})
    e.update(extra)
    return e


def run(tmp_path: Path, script: str, *args: str) -> tuple[list[dict[str, object]], str]:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "c.db"), "--json", *args],
        input=script, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def replies(out: list[dict[str, object]]) -> list[dict[str, object]]:
    return [o for o in out if o["to"] == "reply"]


def rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(tmp_path / "c.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# -- item 8: pasted code in ``` fences -------------------------------------------------------------


def test_a_fenced_multi_line_paste_is_one_submission(tmp_path: Path) -> None:
    script = f"/submit pair-sum-count ```python\n{PASTED}\n```\n/stats\n"
    r = replies(run(tmp_path, script)[0])
    assert len(r) == 2, r  # the submission and /stats: no line of the code ran as a command
    assert str(r[0]["title"]).startswith("Accepted ✓"), r[0]
    assert str(r[1]["title"]).startswith("Stats")
    [(content,)] = rows(tmp_path, "SELECT content FROM submissions")
    assert content == PASTED  # the fences and the language tag are gone, the code is intact


def test_single_line_fences_are_stripped(tmp_path: Path) -> None:
    one_line = "def count_pairs(nums, target): return sum(1 for i in range(len(nums)) for j in range(i + 1, len(nums)) if nums[i] + nums[j] == target)"
    script = f"/submit overfit-first-step `B`\n/submit precision-from-counts ```0.8```\n/submit pair-sum-count ```{one_line}```\n"
    r = replies(run(tmp_path, script)[0])
    assert [str(x["title"])[:10] for x in r] == ["Correct ✓ ", "Correct ✓ ", "Accepted ✓"], r
    assert rows(tmp_path, "SELECT content FROM submissions WHERE question_id = 'pair-sum-count'") == [(one_line,)]


def test_a_fence_never_closed_runs_nothing(tmp_path: Path) -> None:
    out, _ = run(tmp_path, f"/stats\n/submit pair-sum-count ```python\n{PASTED}\n/leaderboard\n")
    r = replies(out)
    assert len(r) == 2, r
    assert r[1]["kind"] == "error"
    assert "The code block opened on line 2 (/submit pair-sum-count ```python) was never closed" in str(r[1]["body"])
    assert "nothing was run" in str(r[1]["body"])
    assert rows(tmp_path, "SELECT COUNT(*) FROM submissions") == [(0,)]


def test_a_block_without_a_command_is_refused_whole(tmp_path: Path) -> None:
    r = replies(run(tmp_path, f"```python\n{PASTED}\n```\n/stats\n")[0])
    assert len(r) == 2, r
    assert r[0]["kind"] == "error" and "needs a command in front of it" in str(r[0]["body"])
    assert str(r[1]["title"]).startswith("Stats")


# -- item 9: a written answer from a file ----------------------------------------------------------


def test_a_written_answer_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "answer.md").write_text(WRITTEN + "\n")
    big = tmp_path / "big.md"
    with big.open("wb") as f:
        f.truncate(50 * 1024 * 1024)
    r = replies(run(tmp_path, f"/submit feed-ranking-lite --file {big}\n/submit feed-ranking-lite --file answer.md\n"
                              f"/submit feed-ranking-lite --file answer.md some inline text too\n")[0])
    assert r[0]["kind"] == "error" and "is 50.0 MB; the limit is 64.0 KB" in str(r[0]["body"])
    assert r[1]["kind"] != "error" and "you wrote" not in str(r[1]["body"]), r[1]
    assert rows(tmp_path, "SELECT kind, content FROM submissions") == [("written", WRITTEN)]
    assert r[2]["kind"] == "error"  # one answer per question (or both forms at once): nothing more stored
    assert rows(tmp_path, "SELECT COUNT(*) FROM submissions") == [(1,)]


# -- items 12 and 13: /as never renames; --as is an admin for that run only -------------------------


def test_switching_members_never_renames_them(tmp_path: Path) -> None:
    r = replies(run(tmp_path, "/as alice\n/as ALICE\n/as Alice\n")[0])
    assert [x["body"] for x in r] == ["You are now alice, a member of Local community."] * 3
    run(tmp_path, "/help\n", "--as", "ALICE")
    assert rows(tmp_path, "SELECT external_id, display_name FROM members ORDER BY id") == [
        ("tester", "tester"), ("alice", "alice")]


def test_as_makes_an_admin_for_that_run_only_and_says_so(tmp_path: Path) -> None:
    out, err = run(tmp_path, "/admin setup time 08:00\n/as tester\n/as alice\n", "--as", "alice")
    r = replies(out)
    assert "Updated time" in str(r[0]["title"])
    assert "alice is the admin of Local community for this console run only" in err
    assert r[1]["body"] == "You are now tester, a member of Local community."
    assert r[2]["body"] == "You are now alice, the admin of Local community for this console run."
    # the next run, without --as: alice is an ordinary member again, tester the admin
    r = replies(run(tmp_path, "/as alice\n/admin setup time 07:00\n/as tester\n/admin setup time 07:00\n")[0])
    assert r[0]["body"] == "You are now alice, a member of Local community."
    assert r[1]["kind"] == "error" and r[1]["body"] == "Only community admins can use /admin setup."
    assert r[2]["body"] == "You are now tester, the admin of Local community for this console run."
    assert "Updated time" in str(r[3]["title"])
    assert rows(tmp_path, "SELECT display_name, is_admin FROM members ORDER BY id") == [("alice", 0), ("tester", 1)]


# -- the interactive prompt, on a real pseudo-terminal ------------------------------------------------


class Terminal:
    """`python -m bot console` on a pseudo-terminal that is its controlling terminal (pty.fork), so ^C
    typed there is a real SIGINT from the line discipline: type bytes, read until a marker appears."""

    def __init__(self, tmp_path: Path) -> None:
        argv = [sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "t.db")]
        environment = env(tmp_path, TERM="dumb")
        self.pid, self.leader = pty.fork()
        if self.pid == 0:  # the child: exec at once, never back into pytest
            try:
                os.chdir(tmp_path)
                os.execve(sys.executable, argv, environment)
            finally:
                os._exit(127)
        self.seen = b""
        self.status: int | None = None

    def read_until(self, marker: bytes, timeout: float = 60.0) -> bytes:
        """Everything printed from now until `marker` (inclusive), or what came before the timeout."""
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        while marker not in self.seen[start:] and time.monotonic() < deadline:
            ready, _, _ = select.select([self.leader], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.leader, 65536)
                except OSError:
                    break
        return self.seen[start:]

    def type(self, data: bytes) -> None:
        os.write(self.leader, data)

    def running(self) -> bool:
        return self.status is None and os.waitpid(self.pid, os.WNOHANG) == (0, 0)

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.status is None and time.monotonic() < deadline:
            self.read_until(b"\0", timeout=0.2)  # keep the pty drained while it exits
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        assert self.status is not None, "the console did not exit"
        return self.status

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.leader)


PROMPT = b"onsite (tester)> "


def test_ctrl_c_clears_the_line_and_ctrl_d_leaves(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    try:
        assert b"Daily round" in term.read_until(PROMPT)
        term.type(b"/nonsense-typed-then-dropped")
        term.read_until(b"dropped")
        term.type(b"\x03")  # Ctrl-C: the typed line is dropped and a new prompt is shown at once
        after_ctrl_c = term.read_until(PROMPT, timeout=30)
        assert after_ctrl_c.endswith(PROMPT), after_ctrl_c
        assert term.running()
        term.type(b"/help\n")
        shown = term.read_until(PROMPT)
        assert b"List the commands" in shown
        assert b"nonsense" not in shown and b"Unknown command" not in shown
        term.type(b"\x04")  # Ctrl-D at an empty prompt leaves
        assert term.wait() == 0
    finally:
        term.close()


def test_a_fenced_paste_at_the_prompt_reads_until_the_closing_fence(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    try:
        term.read_until(PROMPT)
        term.type(b"/submit pair-sum-count ```python\n")
        assert term.read_until(b"... ", timeout=30).endswith(b"... ")  # a continuation prompt, nothing run
        for line in PASTED.splitlines():
            term.type(line.encode() + b"\n")
            term.read_until(b"... ", timeout=30)
        term.type(b"```\n")
        graded = term.read_until(PROMPT, timeout=120)
        assert b"Accepted" in graded, graded
        assert b"Unknown command" not in graded
        term.type(b"/submit pair-sum-count ```\n")
        term.read_until(b"... ", timeout=30)
        term.type(b"def f():\n")
        term.read_until(b"... ", timeout=30)
        term.type(b"\x03")  # Ctrl-C in a block drops the block
        dropped = term.read_until(PROMPT, timeout=30)
        assert b"Accepted" not in dropped and b"Wrong" not in dropped
        term.type(b"\x04")
        assert term.wait() == 0
    finally:
        term.close()
    con = sqlite3.connect(tmp_path / "t.db")
    try:
        assert con.execute("SELECT content FROM submissions").fetchall() == [(PASTED,)]
    finally:
        con.close()
