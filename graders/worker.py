"""``python -m graders worker --database URL``: grade queued jobs on any machine that reaches the database.

The bot writes a code submission as a row of ``grading_jobs`` (with the question as the judge's JSON,
``queued = 1``) and shows the verdict once a worker has written ``result``. This process holds no chat
token and imports nothing from ``bot``: the table is the contract.

- **Claim**: one job at a time, oldest first: on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so workers never
  wait on each other; on SQLite inside ``BEGIN IMMEDIATE``.
- **Lease**: the claim sets ``lease_until``; a thread renews it every third of the lease while the sandbox
  runs. A worker killed mid-run stops renewing, and another worker takes the job once the lease has
  passed; ``attempts`` counts the takes, and a job taken more than ``MAX_ATTEMPTS`` times gets an
  ``internal_error`` result instead of a fourth run (hostile code must not take every worker down in turn).
- **Result**: written with a compare-and-set on the owner, so a worker whose lease was lost cannot
  overwrite the one that took over; on PostgreSQL it also ``NOTIFY``s ``onsite_graded`` with the job id.
- **Wake-up**: on PostgreSQL the worker ``LISTEN``s on ``onsite_grading`` (the bot notifies when it queues)
  and also polls every ``--poll`` seconds as a safety net; on SQLite it polls.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from . import generated, sandbox
from .result import INTERNAL_ERROR, GradeResult
from .spec import CodeSpec, SpecError

log = logging.getLogger("onsite.worker")

MAX_ATTEMPTS = 3
QUEUE_CHANNEL = "onsite_grading"
GRADED_CHANNEL = "onsite_graded"


def identity() -> str:
    """host:pid:start-ticks, the same shape the bot writes as a job's owner."""
    try:
        ticks = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        ticks = "?"
    return f"{socket.gethostname()}:{os.getpid()}:{ticks}"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Job:
    id: int
    question_id: str
    spec: str | None
    code: str
    attempts: int


class QueueError(RuntimeError):
    """The database cannot be used as a grading queue (bad URL, old schema, unreachable)."""


class _Queue:
    """The SQL of the job table, written once: ``?`` placeholders, translated for psycopg."""

    postgres = False

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self.db = connect()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _begin(self, db: Any) -> None:
        db.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")

    def execute(self, sql: str, params: Sequence[Any] = (), *, db: Any = None) -> list[Any]:
        db = db or self.db
        cur = db.execute(self._sql(sql), tuple(params))
        rows = cur.fetchall() if cur.description else []
        return list(rows)

    def transaction(self, fn: Callable[[Any], Any], db: Any = None) -> Any:
        db = db or self.db
        self._begin(db)
        try:
            out = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return out

    def check_schema(self) -> None:
        try:
            self.execute("SELECT queued, spec, lease_until, result, graded_at FROM grading_jobs WHERE 1 = 0")
        except Exception as exc:  # sqlite3.OperationalError or psycopg's UndefinedColumn/UndefinedTable
            raise QueueError(f"the database has no grading queue ({exc}); run `python -m bot db migrate` "
                             "with this Onsite version first") from None

    def claim(self, worker: str, *, lease_s: float) -> Job | None:
        now = datetime.now(UTC)
        lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""

        def take(db: Any) -> Job | None:
            rows = self.execute(
                "SELECT id FROM grading_jobs WHERE queued = 1 AND result IS NULL AND finished_at IS NULL"
                " AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT 1" + lock, (iso(now),), db=db)
            if not rows:
                return None
            rows = self.execute(
                "UPDATE grading_jobs SET owner = ?, lease_until = ?,"
                " attempts = CASE WHEN lease_until IS NULL THEN attempts ELSE attempts + 1 END WHERE id = ?"
                " RETURNING id, question_id, spec, code, attempts",
                (worker, iso(now + timedelta(seconds=lease_s)), rows[0][0]), db=db)
            r = rows[0]
            return Job(int(r[0]), str(r[1]), r[2], str(r[3]), int(r[4]))

        result: Job | None = self.transaction(take)
        return result

    def renew(self, job_id: int, worker: str, *, lease_s: float, db: Any) -> bool:
        until = iso(datetime.now(UTC) + timedelta(seconds=lease_s))
        rows = self.execute("UPDATE grading_jobs SET lease_until = ? WHERE id = ? AND owner = ? AND result IS NULL"
                            " AND finished_at IS NULL RETURNING id", (until, job_id, worker), db=db)
        return bool(rows)

    def complete(self, job_id: int, worker: str, result: GradeResult) -> bool:
        payload = json.dumps(result.to_dict(), ensure_ascii=False)

        def write(db: Any) -> bool:
            rows = self.execute(
                "UPDATE grading_jobs SET result = ?, graded_at = ?, spec = NULL, lease_until = NULL"
                " WHERE id = ? AND owner = ? AND result IS NULL AND finished_at IS NULL RETURNING id",
                (payload, iso(datetime.now(UTC)), job_id, worker), db=db)
            if rows and self.postgres:
                self.execute("SELECT pg_notify(?, ?)", (GRADED_CHANNEL, str(job_id)), db=db)
            return bool(rows)

        done: bool = self.transaction(write)
        return done

    def release(self, job_id: int, worker: str) -> None:
        """Give a job back at once (this worker is stopping), without counting a try."""
        self.transaction(lambda db: self.execute(
            "UPDATE grading_jobs SET lease_until = NULL, owner = 'queued' WHERE id = ? AND owner = ?"
            " AND result IS NULL", (job_id, worker), db=db))

    def wait(self, timeout_s: float) -> None:
        time.sleep(timeout_s)

    def second_connection(self) -> Any:
        return self._connect()

    def close(self) -> None:
        self.db.close()


class _SqliteQueue(_Queue):
    def __init__(self, path: str) -> None:
        if not Path(path).exists():
            raise QueueError(f"no database at {path}")

        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout = 30000")
            return db
        super().__init__(connect)


class _PostgresQueue(_Queue):
    postgres = True

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise QueueError("PostgreSQL needs the postgres extra: pip install 'onsite[postgres]'") from None
        self._psycopg = psycopg

        def connect() -> Any:
            try:
                return psycopg.connect(url, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise QueueError(f"cannot reach the database: {str(exc).strip().splitlines()[0]}") from None
        super().__init__(connect)
        self._listener = connect()
        self._listener.execute(f"LISTEN {QUEUE_CHANNEL}")

    def wait(self, timeout_s: float) -> None:
        for _ in self._listener.notifies(timeout=timeout_s, stop_after=1):
            pass

    def close(self) -> None:
        self._listener.close()
        super().close()


def open_queue(url: str) -> _Queue:
    """postgresql://... or sqlite:///FILE (or a plain path) to a database the bot has migrated."""
    if url.startswith(("postgresql://", "postgres://")):
        q: _Queue = _PostgresQueue(url)
    else:
        path = unquote(urlparse(url).path) if url.startswith("sqlite:") else url
        if url.startswith("sqlite:///") and path.startswith("//"):
            path = path[1:]
        q = _SqliteQueue(path)
    q.check_schema()
    return q


def grade_job(job: Job, tier: str | None) -> GradeResult:
    """The judge's verdict on one job; any failure to read its question is an internal error, not a crash."""
    try:
        if job.spec is None:
            raise SpecError("the job carries no question")
        # a worker lives long: generated tests are graded in a short-lived process, as in the bot
        return generated.grade(job.code, CodeSpec.from_dict(json.loads(job.spec)), tier)
    except (SpecError, ValueError, generated.GenerationError) as exc:  # sandbox.run itself never raises
        log.error("job %s (%s): the question cannot be read: %s", job.id, job.question_id, exc)
        return _internal(f"the judge could not read this question ({type(exc).__name__})")


def _internal(message: str) -> GradeResult:
    return GradeResult(INTERNAL_ERROR, 0, 0, (), 0, message, sandbox.detect_tier())


class Worker:
    """One grading worker: claim, grade with the lease held, write the result, repeat."""

    def __init__(self, queue: _Queue, *, lease_s: float = 60.0, poll_s: float = 5.0, tier: str | None = None) -> None:
        self.queue = queue
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.tier = tier
        self.name = identity()
        self.stopping = threading.Event()
        self.graded = 0

    def run(self, *, max_jobs: int | None = None, idle_exit_s: float | None = None) -> int:
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            if max_jobs is not None and self.graded >= max_jobs:
                break
            job = self.queue.claim(self.name, lease_s=self.lease_s)
            if job is None:
                if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    break
                self.queue.wait(self.poll_s)
                continue
            self.one(job)
            idle_since = time.monotonic()
        return self.graded

    def one(self, job: Job) -> None:
        if job.attempts > MAX_ATTEMPTS:
            result = _internal(f"grading this submission was cut off {MAX_ATTEMPTS} times")
        else:
            lost = threading.Event()
            done = threading.Event()
            renewer = threading.Thread(target=self._renew, args=(job.id, done, lost), daemon=True)
            renewer.start()
            try:
                result = grade_job(job, self.tier)
            finally:
                done.set()
                renewer.join()
            if lost.is_set():
                log.warning("job %s: the lease was lost while grading; another worker has it", job.id)
                return
        if self.queue.complete(job.id, self.name, result):
            self.graded += 1
            log.info("job %s (%s): %s", job.id, job.question_id, result.verdict)

    def _renew(self, job_id: int, done: threading.Event, lost: threading.Event) -> None:
        db = self.queue.second_connection()
        try:
            while not done.wait(self.lease_s / 3):
                if not self.queue.renew(job_id, self.name, lease_s=self.lease_s, db=db):
                    lost.set()
                    return
        finally:
            db.close()


def main(args: Any) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = args.database or os.environ.get("ONSITE_DATABASE_URL", "")
    if not url:
        log.error("give --database URL (or set ONSITE_DATABASE_URL)")
        return 2
    tier = args.tier or sandbox.detect_tier()
    if tier != "bwrap" and os.environ.get("ONSITE_ALLOW_RLIMIT_TIER") != "1":
        log.error("refusing to grade in the rlimit tier (bwrap unusable here: %s); install bubblewrap, or set "
                  "ONSITE_ALLOW_RLIMIT_TIER=1 to accept the weaker tier (SECURITY.md)", sandbox.bwrap_status()[1])
        return 2
    if not url.startswith(("postgresql://", "postgres://")):  # the database file stays out of every sandbox
        sandbox.keep_private(unquote(urlparse(url).path) if url.startswith("sqlite:") else url)
    try:
        queue = open_queue(url)
    except QueueError as exc:
        log.error("%s", exc)
        return 2
    worker = Worker(queue, lease_s=args.lease, poll_s=args.poll, tier=tier)

    def stop(_sig: int, _frame: Any) -> None:
        worker.stopping.set()  # the job in hand is finished first (its run is time-limited)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s grading from %s in the %s tier", worker.name, _masked(url), tier)
    try:
        worker.run(max_jobs=args.max_jobs, idle_exit_s=args.idle_exit)
    finally:
        queue.close()
    log.info("worker %s stopped after %d jobs", worker.name, worker.graded)
    return 0


def _masked(url: str) -> str:
    p = urlparse(url)
    if p.password:
        return url.replace(f":{p.password}@", ":***@", 1)
    return url
