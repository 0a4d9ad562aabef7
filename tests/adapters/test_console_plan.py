"""Issue 9's scripted session in a real console process: plan, daily goal, weak-track practice, a timed
question, two stories and their gaps, and a stats card saved as a PNG."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "tests" / "fixtures" / "scripts"


def test_plan_session(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}
    env.update({"ONSITE_QUESTIONS": str(REPO / "tests" / "fixtures" / "bank"), "ONSITE_DAILY_GRACE_MINUTES": "0"})
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "plan.db"), "--json", "--as", "admin"],
        input=(SCRIPTS / "plan_session.txt").read_text(), capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert not [o for o in out if o["kind"] == "error"]

    def first(prefix: str, to: str = "reply") -> dict[str, object]:
        return next(o for o in out if o["to"] == to and str(o["title"]).startswith(prefix))

    def fields(o: dict[str, object]) -> dict[str, str]:
        return {str(f["name"]): str(f["value"]) for f in o["fields"]}  # type: ignore[attr-defined]

    plan = first("Your plan · 28 days until your interview on Mon 21 Dec")
    assert fields(plan)["Today's goal"] == "2 Coding questions + 1 ML theory question (aim: easy)"

    practice = first("Practice: ")
    assert "ML theory is your weakest track (0/1 solved)" in str(practice["body"])
    assert "precision-from-counts" in str(practice["footer"])

    assert first("Half time · Precision from a confusion matrix", "dm:alice")
    assert not [o for o in out if str(o["title"]).startswith("Time's up")]  # cancelled by the verdict
    verdict = first("Correct ✓ · Precision from a confusion matrix")
    assert re.search(r"Time taken: 3 min (19|20) s of 5 min$", str(verdict["footer"]))

    saved = [o["body"] for o in out if str(o["body"]).startswith("Story ")]
    assert saved == ["Story 1 saved: **Churn model shipped late** (failure).",
                     "Story 2 saved: **Argued for a simpler metric** (disagreement)."]
    gaps = first("Story gaps · 2/14 themes covered")
    assert fields(gaps)["Covered"] == "disagreement (1), failure (1)"
    assert "**ambiguity**" in fields(gaps)["No story yet (12 of 14)"]

    card = first("Stats card · alice")
    image = Path(str(card["image"]))
    assert image.parent == tmp_path / "cards" and image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    nudge = first("Today's plan · day 2 of 28 · Coding foundations", "dm:alice")
    assert nudge["body"] == "2 Coding questions + 1 ML theory question (aim: easy)"
    assert fields(first("Your plan · day 2 of 28"))["Progress"].startswith("1/6 due so far (behind by 2 questions)")
