"""SQL questions: the query runs in the sandbox against a fresh in-memory database per test, read-only;
verdicts, selftest and the bot's grading path as for code. Real sandboxes, both tiers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from graders import sandbox
from graders.__main__ import main as graders_main
from graders.spec import load_spec

BANK = Path(__file__).resolve().parents[1] / "fixtures" / "sql_bank"
QUESTION = BANK / "sql" / "sql-demo.yaml"


def grade(query: str, tier: str) -> sandbox.GradeResult:
    return sandbox.run(query, load_spec(str(QUESTION)), tier=tier)


def test_a_correct_query_is_accepted_and_row_order_matters_when_asked(tier: str) -> None:
    ok = grade("SELECT day, COUNT(DISTINCT user_id) AS n FROM events GROUP BY day ORDER BY day;", tier)
    assert ok.verdict == "accepted", ok.message
    wrong = grade("SELECT day, COUNT(*) FROM events GROUP BY day ORDER BY day", tier)
    assert wrong.verdict == "wrong_answer"
    assert wrong.message.startswith("Wrong answer on test 'example': the query should return "
                                    "[['2026-01-01', 1], ['2026-01-02', 1]], got [['2026-01-01', 2], ['2026-01-02', 1]]")
    unordered = grade("SELECT day, COUNT(DISTINCT user_id) FROM events GROUP BY day ORDER BY day DESC", tier)
    assert unordered.verdict == "wrong_answer"


@pytest.mark.parametrize(("query", "message"), [
    ("DELETE FROM events", "DatabaseError: not authorized: the query may only read"),
    ("ATTACH DATABASE '/etc/passwd' AS x", "not authorized"),
    ("SELECT * FROM pragma_table_info('events')", "not authorized"),
    ("SELECT load_extension('/tmp/evil')", "not authorized"),
    ("SELECT 1; DROP TABLE events", "Send one SQL statement (a single SELECT or WITH query)."),
    ("SELEC day FROM events", 'OperationalError: near "SELEC": syntax error'),
    ("-- only a comment", "the query returns no rows"),
    ("SELECT nope FROM events", "OperationalError: no such column: nope"),
])
def test_a_query_that_is_not_a_single_read_is_refused_clearly(tier: str, query: str, message: str) -> None:
    r = grade(query, tier)
    assert r.verdict == "runtime_error", r.message
    assert r.message.startswith("On test 'example': ") and message in r.message, r.message
    assert "Traceback" not in r.message and "run_query" not in r.message  # the judge's program stays out of view


def test_a_query_cannot_leak_the_expected_rows_or_reach_files(tier: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.db"
    import sqlite3
    con = sqlite3.connect(secret)
    con.execute("CREATE TABLE t (x TEXT)")
    con.execute("INSERT INTO t VALUES ('top secret')")
    con.commit()
    con.close()
    os.chmod(secret, 0o644)
    r = grade(f"SELECT x, 1 FROM (SELECT * FROM t) -- {secret}", tier)  # no table t in the sandbox's database
    assert r.verdict == "runtime_error" and "no such table: t" in r.message
    attach = grade(f"ATTACH '{secret}' AS s", tier)
    assert "not authorized" in attach.message
    endless = grade("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT day, x FROM events, c", tier)
    assert endless.verdict in ("time_limit", "runtime_error"), endless.message  # bounded: time, or the 10,000-row cap


def test_selftest_runs_reference_second_and_wrong_queries(tier: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert graders_main(["selftest", str(BANK), "--tier", tier]) == 0, capsys.readouterr().out
    assert "selftest: 1 code questions, 4 runs, 0 failures" in capsys.readouterr().out
