"""SQL questions: the member's query runs inside the sandbox against an in-memory SQLite database
that each test builds from the question's `schema` and the test's `data`.

The judge grades a SQL answer as a program like any other: ``program(query)`` is a short Python
file whose ``run_query(schema, data)`` builds the database, then runs the query (embedded as a
string literal, never as code) under an authorizer that allows reading only: SELECT, WITH and
recursive CTEs, functions and reads. Writes, ATTACH, PRAGMA and extension loading are refused
(``sqlite3.DatabaseError: not authorized``), so a query cannot reach a file or change the data a
later test reads (every test gets a fresh database anyway). Exactly one statement: ``execute``
refuses a second one. The result is the list of rows (each a list), at most ``MAX_ROWS``; the
comparison is ordered (``ordered: true``, the prompt asks for an ORDER BY) or a multiset.
"""

from __future__ import annotations

MAX_ROWS = 10_000
ENTRY = "run_query"

_PROGRAM = '''import sqlite3

QUERY = {query!r}
MAX_ROWS = {max_rows}
_READ_ONLY = {{sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
               getattr(sqlite3, "SQLITE_RECURSIVE", 33)}}


def _authorize(action, arg1, arg2, db_name, trigger):
    return sqlite3.SQLITE_OK if action in _READ_ONLY else sqlite3.SQLITE_DENY


def run_query(schema, data):
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(schema)
        con.executescript(data)
        con.commit()
        con.set_authorizer(_authorize)
        try:
            cur = con.execute(QUERY)
        except sqlite3.ProgrammingError as e:
            raise sqlite3.ProgrammingError(str(e).replace("You can only execute one statement at a time.",
                                           "Send one SQL statement (a single SELECT or WITH query).")) from None
        except sqlite3.DatabaseError as e:
            if "not authorized" not in str(e):
                raise
            raise sqlite3.DatabaseError("not authorized: the query may only read (one SELECT or WITH; no "
                                        "INSERT, UPDATE, DELETE, CREATE, ATTACH or PRAGMA)") from None
        if cur.description is None:
            raise ValueError("the query returns no rows: send a single SELECT or WITH query")
        rows = cur.fetchmany(MAX_ROWS + 1)
        if len(rows) > MAX_ROWS:
            raise ValueError("the query returned more than %d rows" % MAX_ROWS)
        return [list(r) for r in rows]
    finally:
        con.close()
'''


def program(query: str) -> str:
    """The Python the sandbox runs for a member's query."""
    return _PROGRAM.format(query=query.strip().rstrip(";").strip() + ";" if query.strip() else "",
                           max_rows=MAX_ROWS)


__all__ = ["ENTRY", "MAX_ROWS", "program"]
