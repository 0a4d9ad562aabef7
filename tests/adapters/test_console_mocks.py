"""Issue 5's scripted session: five members, two rounds, a pause and feedback, in a real console process."""

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
    env.update({"ONSITE_QUESTIONS": str(REPO / "questions"), "ONSITE_DAILY_GRACE_MINUTES": "0"})
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", str(db), "--json", "--as", "admin"],
        input=script, capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def groups(out: list[dict[str, object]]) -> list[set[str]]:
    titles = {str(o["title"]) for o in out if str(o["to"]).startswith("space:") and str(o["title"]).startswith("Mock interview · ")}
    return [set(t.removeprefix("Mock interview · ").split(" & ")) for t in titles]


def test_five_members_two_rounds_pause_and_feedback(tmp_path: Path) -> None:
    db = tmp_path / "mocks.db"
    first = run(db, (SCRIPTS / "mock_round.txt").read_text())
    report = next(o for o in first if o["title"] == "Mock round · pairing report")
    fields = {f["name"]: f["value"] for f in report["fields"]}  # type: ignore[union-attr]
    assert fields["Paired"] == "4 member(s) in 2 group(s)"  # erin paused herself until 10 Dec
    assert "erin (until 2026-12-10)" in str(fields["Paused or sitting out"])
    round1 = groups(first)
    assert sorted(map(len, round1)) == [2, 2] and set().union(*round1) == {"alice", "bob", "carol", "dan"}
    packs = [o for o in first if str(o["to"]).startswith("dm:") and str(o["title"]).startswith("Your interviewer pack")]
    assert sorted(str(o["to"]) for o in packs) == ["dm:alice", "dm:bob", "dm:carol", "dm:dan"]

    # everyone checks in; one member sends feedback to their partner
    a, b = sorted(next(iter(round1)))
    lines = ["/admin clock 2026-11-24T09:00"]
    for name in ("alice", "bob", "carol", "dan"):
        lines += [f"/as {name}", "/mock checkin met"]
    lines += [f"/as {a}", f"/mock feedback {b} 4,3,5,4 Clear structure; state the latency budget earlier."]
    second = run(db, "\n".join(lines) + "\n")
    feedback = [o for o in second if o["to"] == f"dm:{b}" and str(o["title"]).startswith("Mock feedback")]
    assert len(feedback) == 1 and "latency budget" in str(feedback[0]["body"])

    # a week later the next round keeps last round's partners apart; erin is still paused
    third = run(db, "/admin clock 2026-11-30T09:00\n/admin pair-now\n")
    round2 = groups(third)
    assert set().union(*round2) == {"alice", "bob", "carol", "dan"}
    for g in round2:
        assert all(len(g & old) < 2 for old in round1)

    # after the pause ends erin is paired again
    fourth = run(db, "/admin clock 2026-12-11T09:00\n/admin pair-now\n")
    assert "erin" in set().union(*groups(fourth))
