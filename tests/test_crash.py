"""Issue 10, crash safety: the real console process is killed with SIGKILL at the worst moments,
then restarted on the same database file; every case must resolve exactly once.

The kill comes from outside (grading) or from a failpoint (`bot.core.failpoints`), which sends the
process SIGKILL at an exact line: the same as `kill -9`, nothing flushed, no `finally` run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tests" / "fixtures" / "scripts"
KILLED = -signal.SIGKILL


def _env(failpoint: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}
    env.update({"ONSITE_QUESTIONS": str(REPO / "tests" / "fixtures" / "bank"), "USER": "admin",
                "PYTHONUNBUFFERED": "1"})  # whatever was printed before the kill is in the pipe
    if failpoint:
        env["ONSITE_FAILPOINTS"] = failpoint
    return env


def console(db: Path, script: str, *, failpoint: str | None = None) -> tuple[int, list[dict[str, object]]]:
    """Run a console session; returns its exit code (-9 when killed) and what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", str(db), "--json"],
        input=script, capture_output=True, text=True, timeout=180, cwd=SCRIPTS, env=_env(failpoint),
    )
    assert result.returncode in (0, KILLED), result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def rows(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def assert_consistent(db: Path) -> None:
    """Integrity, and standings equal to the ledger's sums (the ledger is the truth)."""
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    ledger = rows(db, "SELECT community_id, member_id, SUM(points) FROM points_ledger GROUP BY 1, 2 ORDER BY 1, 2")
    standings = rows(db, "SELECT community_id, member_id, points FROM standings WHERE period = 'all' AND track = '*'"
                         " AND points != 0 ORDER BY 1, 2")
    assert ledger == standings


def to(out: list[dict[str, object]], prefix: str) -> list[dict[str, object]]:
    return [o for o in out if str(o["to"]).startswith(prefix)]


# -- (a) during grading ----------------------------------------------------------------------------

def test_killed_while_the_judge_runs_the_code_is_regraded_after_restart(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(1.2)\n\n" + (SCRIPTS / "alice.py").read_text())
    console(db, "/as alice\n")  # the member exists before the run we kill
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "console", "--db", str(db), "--json"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=SCRIPTS, env=_env(None),
    )
    assert proc.stdin is not None
    proc.stdin.write(f"/as alice\n/submit pair-sum-count --file {slow}\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not rows(db, "SELECT 1 FROM grading_jobs WHERE finished_at IS NULL"):
        assert time.monotonic() < deadline and proc.poll() is None, "the submission never reached the judge"
        time.sleep(0.05)
    time.sleep(0.4)  # the sandbox is now sleeping inside the submission
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()
    proc.stdin.close()
    assert rows(db, "SELECT COUNT(*) FROM submissions") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM points_ledger") == [(0,)]

    code, out = console(db, "/help\n")  # any tick of the next process takes the orphaned job over
    assert code == 0
    dms = to(out, "dm:alice")
    assert len(dms) == 1 and str(dms[0]["title"]).startswith("Accepted ✓")
    assert "cut off by a restart" in str(dms[0]["body"])
    assert rows(db, "SELECT verdict FROM submissions") == [("accepted",)]
    assert rows(db, "SELECT outcome, attempts FROM grading_jobs") == [("recorded", 2)]
    assert rows(db, "SELECT reason, points FROM points_ledger") == [("solve", 5)]  # practice: half points
    assert_consistent(db)

    _, again = console(db, "/help\n")  # a third process finds nothing left to do
    assert to(again, "dm:") == []
    assert rows(db, "SELECT COUNT(*) FROM submissions") == [(1,)]


def test_a_job_cut_off_twice_is_reported_not_run_again(tmp_path: Path) -> None:
    db = tmp_path / "a2.db"
    code, _ = console(db, "/as alice\n/submit pair-sum-count --file alice.py\n", failpoint="grading.started")
    assert code == KILLED
    assert rows(db, "SELECT attempts FROM grading_jobs WHERE finished_at IS NULL") == [(1,)]
    code, _ = console(db, "/help\n", failpoint="store.ledger")  # the re-grade dies while writing its points
    assert code == KILLED
    assert rows(db, "SELECT attempts FROM grading_jobs WHERE finished_at IS NULL") == [(2,)]
    assert rows(db, "SELECT COUNT(*) FROM submissions") == [(0,)]

    code, out = console(db, "/help\n")
    assert code == 0
    dms = to(out, "dm:alice")
    assert [d["title"] for d in dms] == ["Your submission could not be graded"]
    assert "Nothing was recorded; please submit it again" in str(dms[0]["body"])
    assert rows(db, "SELECT COUNT(*) FROM submissions") == [(0,)]
    assert rows(db, "SELECT outcome FROM grading_jobs") == [("abandoned: grading it was interrupted 2 times",)]
    code, out = console(db, "/as alice\n/submit pair-sum-count --file alice.py\n")  # and it can be sent again
    assert str(to(out, "reply")[1]["title"]).startswith("Accepted ✓")
    assert_consistent(db)


# -- (b) between claiming and sending a daily post ------------------------------------------------

def test_killed_between_claiming_and_sending_the_posts_go_out_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    code, out = console(db, "/admin clock 2026-11-23T09:05\n/daily\n", failpoint="outbox.claimed")
    assert code == KILLED and to(out, "channel:") == []
    assert rows(db, "SELECT COUNT(*) FROM daily_posts") == [(5,)]  # one question per track
    leased = rows(db, "SELECT COUNT(*) FROM outbox WHERE purpose = 'post' AND sent_at IS NULL AND claimed_until IS NOT NULL")
    assert leased == [(5,)]

    # the lease (60 s) keeps a second process from sending too early; once it has expired, they go
    code, out = console(db, "/admin clock 2026-11-23T09:07\n/daily\n")
    assert code == 0
    posted = [o for o in to(out, "channel:#daily") if o["kind"] == "question"]
    assert len(posted) == 5 and len({str(o["footer"]) for o in posted}) == 5
    _, later = console(db, "/admin clock 2026-11-23T10:00\n/daily\n")
    assert to(later, "channel:") == []
    assert rows(db, "SELECT COUNT(*), COUNT(sent_at), MAX(attempts) FROM outbox WHERE purpose = 'post'") == [(5, 5, 2)]


# -- (c) in the middle of a pairing round ----------------------------------------------------------

def test_killed_mid_pairing_the_round_completes_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    joins = "".join(f"/as {name}\n/mock join\n" for name in ("alice", "bob", "carol", "dave"))
    code, _ = console(db, joins + "/as admin\n/admin pair-now\n", failpoint="mocks.round_created")
    assert code == KILLED
    assert rows(db, "SELECT COUNT(*), COUNT(report) FROM mock_rounds") == [(1, 0)]
    assert rows(db, "SELECT COUNT(*) FROM mock_pairs") == [(0,)]

    code, out = console(db, "/help\n")
    assert code == 0
    spaces = [o for o in to(out, "space:") if str(o["title"]).startswith("Mock interview")]
    assert rows(db, "SELECT COUNT(*), COUNT(report) FROM mock_rounds") == [(1, 1)]
    members = rows(db, "SELECT member_id FROM mock_pair_members")
    assert len(members) == 4 and len(set(members)) == 4  # everyone placed, once
    assert len({str(o["to"]) for o in spaces}) == rows(db, "SELECT COUNT(*) FROM mock_pairs")[0][0] == 2
    _, again = console(db, "/help\n")
    assert to(again, "space:") == [] and rows(db, "SELECT COUNT(*) FROM mock_pairs") == [(2,)]


# -- (d) while writing the ledger ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["theory", "code"])
def test_killed_while_writing_the_ledger_leaves_no_partial_points(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "d.db"
    submit = ("/submit precision-from-counts 0.8" if kind == "theory"
              else "/submit pair-sum-count --file alice.py")
    script = f"/admin clock 2026-11-23T09:05\n/as alice\n{submit}\n"
    code, _ = console(db, script, failpoint="store.ledger")
    assert code == KILLED
    assert rows(db, "SELECT COUNT(*) FROM submissions") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM points_ledger") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM standings WHERE points != 0") == [(0,)]

    # theory: the member sends it again; code: the next process re-grades the stored job
    code, out = console(db, script if kind == "theory" else "/admin clock 2026-11-23T09:06\n/help\n")
    assert code == 0
    assert rows(db, "SELECT COUNT(*) FROM submissions") == [(1,)]
    reasons = sorted(str(r[0]) for r in rows(db, "SELECT reason FROM points_ledger"))
    assert reasons == ["early", "solve"]  # the solve and the daily early bonus, each once
    assert_consistent(db)
    if kind == "code":
        assert str(to(out, "dm:alice")[0]["title"]).startswith("Accepted ✓")
