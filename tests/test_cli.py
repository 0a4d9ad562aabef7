"""`python -m bot questions ...` and `python -m bot db migrate` as outside tools call them."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store.sqlite import load_migrations

REPO = Path(__file__).resolve().parents[1]
FIXTURE_BANK = REPO / "tests" / "fixtures" / "bank"


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_validate_passes_on_the_bank() -> None:
    result = run("questions", "validate")
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("ok: ")


def test_validate_fails_naming_both_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(FIXTURE_BANK, folder)
    text = (folder / "coding" / "pair-sum-count.yaml").read_text()
    (folder / "coding" / "no-entry.yaml").write_text(
        text.replace("id: pair-sum-count", "id: no-entry").replace("entry: count_pairs\n", "")
    )
    (folder / "ml-theory" / "broken.yaml").write_text("id: broken\nchoices: [a, b\n")
    result = run("questions", "validate", str(folder))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any("no-entry.yaml" in line and "field 'entry' is required for coding questions" in line for line in lines)
    assert any("broken.yaml" in line and "is not valid YAML at line" in line for line in lines)
    assert lines[-1].startswith("2 error(s) in 2 of 8 file(s)")


def test_stats_prints_counts_per_track_and_difficulty() -> None:
    result = run("questions", "stats", str(FIXTURE_BANK))
    assert result.returncode == 0
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert rows["track"] == ["easy", "medium", "hard", "total"]
    assert rows["ml-theory"] == ["2", "0", "0", "2"]
    assert rows["all"] == ["5", "1", "0", "6"]


def test_db_migrate_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    latest = len(load_migrations())
    first = run("db", "migrate", "--db", str(db))
    assert first.returncode == 0 and f"schema 0 -> {latest}" in first.stdout
    second = run("db", "migrate", "--db", str(db))
    assert second.returncode == 0 and f"already at schema {latest}, nothing to do" in second.stdout
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"communities", "members", "daily_posts", "submissions", "points_ledger", "mock_optins", "mock_rounds",
            "mock_pairs", "mock_pair_members", "mock_feedback", "mock_avoid", "outbox", "votes"} <= tables


def test_platform_commands_name_the_missing_tokens(tmp_path: Path) -> None:
    for args, missing in [(("discord",), "DISCORD_TOKEN must be set"),
                          (("slack",), "SLACK_BOT_TOKEN, SLACK_APP_TOKEN must be set"),
                          (("slack", "--http", "3000"), "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET must be set")]:
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2 and missing in result.stderr, result.stderr


def test_discord_and_slack_refuse_the_rlimit_tier_unless_allowed(tmp_path: Path) -> None:
    """Members' code from strangers gets the strong judge, or the operator said otherwise in writing."""
    env = {"PATH": str(tmp_path / "no-bwrap-here"), "HOME": str(tmp_path), "DISCORD_TOKEN": "x.y.z",
           "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "ONSITE_DB": str(tmp_path / "x.db")}
    for args in (("discord",), ("slack",)):
        result = subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=120,
                                cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr
        assert "the judge would run in the rlimit tier (bwrap unusable: bwrap is not installed)" in result.stderr
        assert "ONSITE_ALLOW_RLIMIT_TIER=1" in result.stderr


def test_the_weak_judge_guard_lets_an_operator_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.app import refuse_weak_judge
    from bot.config import Settings
    from bot.core.errors import ConfigError
    from graders import sandbox

    monkeypatch.setattr(sandbox, "detect_tier", lambda: "rlimit")
    with pytest.raises(ConfigError, match="ONSITE_ALLOW_RLIMIT_TIER=1"):
        refuse_weak_judge(Settings())
    refuse_weak_judge(Settings(allow_rlimit_tier=True))  # accepted: no error
    monkeypatch.setattr(sandbox, "detect_tier", lambda: "bwrap")
    refuse_weak_judge(Settings())
