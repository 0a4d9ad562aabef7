"""Issue 4's scripted session: a real console process, the real judge, a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "tests" / "fixtures" / "scripts"


def run(db: Path, script: str) -> list[dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}
    env.update({"ONSITE_QUESTIONS": str(REPO / "tests" / "fixtures" / "bank"), "USER": "admin"})
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", str(db), "--json"],
        input=script, capture_output=True, text=True, timeout=180, cwd=SCRIPTS, env=env,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def replies(out: list[dict[str, object]]) -> list[dict[str, object]]:
    return [o for o in out if o["to"] == "reply"]


def test_a_daily_round_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "round.db"
    out = run(db, (SCRIPTS / "daily_round.txt").read_text())
    posts = [o for o in out if o["to"] == "channel:#daily"]
    questions = [p for p in posts if p["kind"] == "question"]
    assert len(questions) == 5 and out.index(questions[0]) == 1  # posted right after the clock passed 09:00
    r = replies(out)
    alice_code, alice_theory, bob_code, bob_theory = r[2], r[3], r[5], r[6]
    assert str(alice_code["title"]).startswith("Accepted ✓ · 8/8 tests")
    assert "+10 points · +5 early bonus (daily)" in str(alice_code["footer"])
    assert str(bob_code["title"]).startswith("Wrong answer")
    assert str(alice_theory["title"]).startswith("Correct ✓") and "+4 points · +5 early bonus" in str(alice_theory["footer"])
    assert str(bob_theory["title"]).startswith("Not quite ✗")
    announcements = [p["body"] for p in posts if p["kind"] == "announcement"]
    assert announcements == ["**alice** solved today's Coding question (#1).",
                             "**alice** solved today's ML theory question (#1)."]
    board = str(r[7]["body"]).splitlines()
    assert board == ["`  1.` **alice** · 24 pts · 2 solved · streak 1"]
    stats = {f["name"]: f["value"] for f in r[8]["fields"]}  # type: ignore[union-attr]
    assert stats["Points"] == "24" and stats["Streak"] == "1 day(s), best 1"

    # a second process on the same database at the same clock does not post again
    again = run(db, "/admin clock 2026-11-23T09:30\n/daily\n")
    assert [o for o in again if o["to"] != "reply"] == []

    # the next day's post reveals yesterday's answers first
    nxt = run(db, (SCRIPTS / "next_day.txt").read_text())
    sent = [o for o in nxt if o["to"] == "channel:#daily"]
    assert [o["kind"] for o in sent] == ["reveal"] * 5 + ["question"] * 5
    coding = next(o for o in sent if o["kind"] == "reveal" and "pair-sum-count" in str(o["footer"]))
    fields = {f["name"]: f["value"] for f in coding["fields"]}  # type: ignore[union-attr]
    assert fields["Attempts"] == "2" and fields["Solve rate"] == "50%" and fields["First solvers"] == "alice"
    assert "def count_pairs" in str(coding["code"])
    assert str(replies(nxt)[1]["body"]).startswith("`  1.` **alice** · 24 pts")


def test_a_50_mb_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.py"
    with big.open("wb") as f:
        f.truncate(50 * 1024 * 1024)
    out = run(tmp_path / "x.db", f"/submit pair-sum-count --file {big}\n/submit pair-sum-count --file /no/such/file.py\n")
    r = replies(out)
    assert r[0]["kind"] == "error" and "is 50.0 MB; the limit is 64.0 KB" in str(r[0]["body"])
    assert r[1]["kind"] == "error" and "No file at /no/such/file.py" in str(r[1]["body"])
