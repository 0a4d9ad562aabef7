"""The SQL track in the bot: the bank's rules for it, the card a member reads, and a query graded
by the real judge behind the bot's Grader port (same verdicts, points and reveal as code)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bot.app import PoolGrader
from bot.core import views
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.errors import UsageError
from bot.core.models import Caller
from bot.core.services import Services
from bot.store.sqlite import Store
from graders.pool import GraderPool
from tests.conftest import RecordingChat
from tests.core.test_bank import only_error

SQL_BANK = Path(__file__).resolve().parents[1] / "fixtures" / "sql_bank"


def test_a_sql_question_loads_and_its_card_shows_the_tables() -> None:
    bank = Bank.load(SQL_BANK)
    assert bank.errors == []
    q = bank.get("sql-demo")
    assert q.is_sql and q.is_code and q.ordered and q.compare == "exact" and len(q.second) == 1
    card = views.question_card(q)
    assert card.code == q.schema and card.code_language == "sql"
    fields = {f.name: f.value for f in card.fields}
    assert "→ [['2026-01-01', 1], ['2026-01-02', 1]]" in fields["Example data → rows"]
    assert fields["Tests"] == "1 shown, 3 hidden · rows compared in order"
    assert views.how_to_submit(q) == "Submit: /submit sql-demo <your query> (or --file query.sql)"


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"schema": "CREATE TABEL x (a INT);"}, "tests[0].data", "does not run after the schema"),
    ({"schema": "ATTACH DATABASE '/tmp/x.db' AS other;"}, "tests[0].data", "not authorized"),
    ({"reference": "SELECT 'unclosed"}, "reference", "is not a complete SQL statement"),
    ({"ordered": "yes"}, "ordered", "must be true"),
    ({"entry": "f"}, "entry", "is not a field of a sql question"),
])
def test_bad_sql_questions_name_the_field(tmp_path: Path, change: dict[str, object], field: str, reason: str) -> None:
    root = tmp_path / "bank"
    shutil.copytree(SQL_BANK, root)
    path = root / "sql" / "sql-demo.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(change)
    path.write_text(yaml.safe_dump(data))
    _, got_field, got_reason = only_error(Bank.load(root))
    assert got_field == field and reason in got_reason, (got_field, got_reason)


def test_expected_rows_must_be_rows(tmp_path: Path) -> None:
    root = tmp_path / "bank"
    shutil.copytree(SQL_BANK, root)
    path = root / "sql" / "sql-demo.yaml"
    data = yaml.safe_load(path.read_text())
    data["tests"][1]["expected"] = 3
    path.write_text(yaml.safe_dump(data))
    assert only_error(Bank.load(root))[1:] == ("tests[1].expected",
                                               "must be the list of rows the query returns, each a list of values")


async def test_a_daily_sql_query_is_graded_by_the_judge_and_scored_like_code(tmp_path: Path) -> None:
    bank = Bank.load(SQL_BANK)
    store = await Store.open(tmp_path / "s.db")
    grader = PoolGrader(GraderPool(max_workers=1, tier="rlimit"))
    clock = FixedClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    try:
        services = Services.build(store, bank, clock, chat=RecordingChat(), grader=grader)
        community = await store.ensure_community("console", "local", "Local", now=clock.now())
        await store.update_community(community.id, tracks=("sql",), channel="daily")
        community = await store.get_community(community.id)
        assert community is not None
        member = await store.ensure_member(community.id, "u", "Una", now=clock.now())
        caller = Caller(member, community)
        await services.tick()
        wrong = await services.submissions.submit(caller, "sql-demo", text="```sql\nSELECT day, COUNT(*) FROM events "
                                                  "GROUP BY day ORDER BY day\n```", code=None)
        assert wrong.title.startswith("Wrong answer · 2/4 tests"), wrong.title
        fields = {f.name: f.value for f in wrong.fields}
        assert fields["Expected"] == "`[['2026-01-01', 1], ['2026-01-02', 1]]`"
        with pytest.raises(UsageError, match=r"Send your query: /submit sql-demo SELECT \.\.\., or --file query.sql"):
            await services.submissions.submit(caller, "sql-demo", text="   ", code=None)
        ok = await services.submissions.submit(caller, "sql-demo", text=bank.get("sql-demo").reference, code=None)
        assert ok.title.startswith("Accepted ✓ · 4/4 tests"), ok.title
        assert "+10 points" in ok.footer
    finally:
        await grader.close()
        await store.close()
