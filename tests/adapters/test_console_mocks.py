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


def replies(out: list[dict[str, object]]) -> list[dict[str, object]]:
    return [o for o in out if o["to"] == "reply"]


def test_one_round_per_period_one_outcome_per_pair_and_reminders_that_are_never_stale(tmp_path: Path) -> None:
    """Issue 16: a second /admin pair-now needs --force; contradictory check-ins make the pair disputed
    and are never paid twice; nobody with a recorded outcome is asked again; late reminders are dropped."""
    db = tmp_path / "mocks.db"
    first = run(db, (SCRIPTS / "mock_round.txt").read_text())  # paired on Mon 23 Nov 08:00 UTC
    a, b = sorted(next(g for g in groups(first) if len(g) == 2))
    again = run(db, "/admin clock 2026-11-23T10:00\n/admin pair-now\n")  # each run starts on the real clock
    refused = replies(again)[-1]
    assert refused["kind"] == "error"
    assert "already paired on Mon 23 Nov 08:00 (UTC)" in str(refused["body"])
    assert "next round is due Mon 30 Nov 17:00 (UTC)" in str(refused["body"]) and "--force" in str(refused["body"])
    assert groups(again) == []  # nothing was paired: round one is still everyone's group

    lines = ["/admin clock 2026-11-23T11:00", f"/as {a}", "/mock checkin met", "/mock checkin met", f"/as {b}", f"/mock checkin no-show {a}",
             f"/as {a}", "/mock status"]
    checkins = replies(run(db, "\n".join(lines) + "\n"))
    bodies = [str(o["body"]) for o in checkins if "mock" in str(o["body"]).lower()]
    assert len(bodies) == 3
    assert "+10 points" in bodies[0] and "Already recorded" in bodies[1] and "+10" not in bodies[1]
    assert "disputed" in bodies[2] and "nobody sits out" in bodies[2]
    status = next(o for o in checkins if o["title"] == "Your mock interviews")
    assert status["footer"] == "Mocks done: 0"  # a disputed mock does not count

    # the slots were on Mon 23 Nov evening: a day later no "in 1 hour" reminder arrives
    late = run(db, "/admin clock 2026-11-24T20:00\n")
    assert not [o for o in late if "in 1 hour" in str(o["title"]) + str(o["body"])]
    # a day before the next round the check-in prompt goes to the other pair only
    prompts = run(db, "/admin clock 2026-11-29T09:00\n")
    asked = sorted(str(o["to"]) for o in prompts if o["title"] == "Did your mock interview happen?")
    others = sorted(f"dm:{n}" for n in {"alice", "bob", "carol", "dan"} - {a, b})
    assert asked == others

    forced = replies(run(db, "/admin clock 2026-11-23T12:00\n/admin pair-now --force\n"))[-1]
    assert forced["title"] == "Mock round · pairing report" and "Forced" in str(forced["footer"])
