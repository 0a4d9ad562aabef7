"""The grading queue across processes (issue 19 item 4), on both engines: real `python -m graders worker`
processes claim jobs from the database the bot wrote, grade them in the real sandbox, and the member
gets each verdict exactly once, whether the bot was still waiting or had handed it to a DM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.messages import Message
from bot.core.models import Caller
from bot.core.services import Services
from bot.store import sqlite as sqlite_store
from bot.store.sqlite import Store
from graders import worker as worker_module
from tests.conftest import REPO, RecordingChat

BAD = "def count_pairs(nums, target):\n    return 0\n"


def dms(chat: RecordingChat) -> list[Message]:
    return [m for kind, _, m in chat.sent if kind == "dm"]


def db_url(store: Store) -> str:
    return str(getattr(store, "url", None) or f"sqlite:///{store.path}")


@contextmanager
def workers(store: Store, n: int, *extra: str) -> Iterator[list[subprocess.Popen[str]]]:
    env = dict(os.environ, ONSITE_ALLOW_RLIMIT_TIER="1", PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-m", "graders", "worker", "--database", db_url(store), "--poll", "0.3",
                               *extra], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
            if p.stdout:
                p.stdout.close()


def queued_services(store: Store, bank: Bank, clock: FixedClock, chat: RecordingChat, wait_s: float) -> Services:
    return Services.build(store, bank, clock, chat=chat, queue_wait_s=wait_s)


async def queue(store: Store, bank: Bank, caller: Caller, code: str, clock: FixedClock) -> int:
    q = bank.get("pair-sum-count")
    return await store.queue_grading_job(
        community_id=caller.community.id, member_id=caller.member.id, question_id=q.id, daily_post_id=None,
        code=code, spec=json.dumps(q.to_dict()), now=clock.now(), waiter_until=clock.now() + timedelta(minutes=5))


async def until(check: object, timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def test_the_worker_and_the_store_name_the_same_channels() -> None:
    assert (worker_module.QUEUE_CHANNEL, worker_module.GRADED_CHANNEL) == (
        sqlite_store.GRADING_CHANNEL, sqlite_store.GRADED_CHANNEL)


async def test_a_member_gets_the_verdict_of_a_worker_on_another_process(
        store: Store, bank: Bank, clock: FixedClock, chat: RecordingChat, member: Caller) -> None:
    services = queued_services(store, bank, clock, chat, wait_s=60)
    reference = bank.get("pair-sum-count").reference or ""
    with workers(store, 1, "--max-jobs", "2"):
        good = await services.submissions.submit(member, "pair-sum-count", text=None, code=reference)
        bad = await services.submissions.submit(member, "pair-sum-count", text=None, code=BAD)
    assert "Accepted" in (good.title or "") + good.body, good
    assert "Wrong answer" in (bad.title or "") + bad.body, bad
    rows = await store.submissions_of(member.member.id, "pair-sum-count")
    assert [r["verdict"] for r in rows] == ["accepted", "wrong_answer"]
    assert [json.loads(r["detail"])["tier"] for r in rows] != ["", ""]  # graded by the real judge, not a stand-in
    jobs = await store._all("SELECT owner, attempts, outcome, spec, result FROM grading_jobs ORDER BY id")
    assert [(j["attempts"], j["outcome"], j["spec"]) for j in jobs] == [(1, "recorded", None), (1, "recorded", None)]
    assert all(j["owner"] != "queued" and j["result"] for j in jobs)
    assert dms(chat) == []  # shown to the member in the reply, not again by DM
    await services.tick()
    assert dms(chat) == []


async def test_two_workers_share_the_queue_and_grade_each_job_once(
        store: Store, bank: Bank, clock: FixedClock, member: Caller) -> None:
    reference = bank.get("pair-sum-count").reference or ""
    ids = [await queue(store, bank, member, reference if i % 2 else BAD, clock) for i in range(8)]
    with workers(store, 2, "--idle-exit", "3") as procs:
        async def all_graded() -> bool:
            return all([await store.grading_result(i) for i in ids])
        await until(all_graded, 120)
        for p in procs:
            p.wait(timeout=60)
        logs = [p.stdout.read() if p.stdout else "" for p in procs]
    jobs = await store._all("SELECT id, owner, attempts, result FROM grading_jobs ORDER BY id")
    assert [j["attempts"] for j in jobs] == [1] * 8
    assert [json.loads(j["result"])["verdict"] for j in jobs] == ["wrong_answer", "accepted"] * 4
    assert len({j["owner"] for j in jobs}) == 2, logs  # both workers took a share
    graded = sum(log.count(": accepted") + log.count(": wrong_answer") for log in logs)
    assert graded == 8, logs  # and no job was graded twice


async def test_a_killed_workers_job_is_graded_again_once_by_another(
        store: Store, bank: Bank, clock: FixedClock, member: Caller) -> None:
    slow = "import time\ntime.sleep(1.5)\n" + (bank.get("pair-sum-count").reference or "")
    job = await queue(store, bank, member, slow, clock)
    with workers(store, 1, "--lease", "2") as (first,):
        async def claimed() -> bool:
            row = await store._one("SELECT owner FROM grading_jobs WHERE id = ?", (job,))
            return str(row["owner"]) != "queued"
        await until(claimed)
        first.send_signal(signal.SIGKILL)  # mid-run: no result, no release, the lease just runs out
        first.wait(timeout=30)
    row = await store._one("SELECT owner, attempts, result, lease_until FROM grading_jobs WHERE id = ?", (job,))
    assert row["result"] is None and row["attempts"] == 1
    dead_owner = str(row["owner"])
    with workers(store, 1, "--max-jobs", "1", "--idle-exit", "30") as (second,):
        second.wait(timeout=120)
        log = second.stdout.read() if second.stdout else ""
    row = await store._one("SELECT owner, attempts, result FROM grading_jobs WHERE id = ?", (job,))
    assert row["owner"] != dead_owner and row["attempts"] == 2, log
    assert json.loads(row["result"])["verdict"] == "accepted", log


async def test_a_verdict_after_the_wait_goes_by_dm_exactly_once(
        store: Store, bank: Bank, clock: FixedClock, chat: RecordingChat, member: Caller) -> None:
    services = queued_services(store, bank, clock, chat, wait_s=0.5)
    reference = bank.get("pair-sum-count").reference or ""
    reply = await services.submissions.submit(member, "pair-sum-count", text=None, code=reference)
    assert reply.title == "Queued for grading" and "by DM" in reply.body
    await services.tick()
    assert dms(chat) == []  # not graded yet: nothing to say
    with workers(store, 1, "--max-jobs", "1", "--idle-exit", "30") as (w,):
        w.wait(timeout=120)
    for _ in range(3):  # every tick after it: one DM, one recorded submission
        await services.tick()
    sent = dms(chat)
    assert len(sent) == 1 and "waited in the grading queue" in sent[0].body and "Accepted" in (
        (sent[0].title or "") + sent[0].body), sent
    assert [r["verdict"] for r in await store.submissions_of(member.member.id, "pair-sum-count")] == ["accepted"]


async def test_a_waiter_that_died_leaves_its_verdict_to_the_tick(
        store: Store, bank: Bank, clock: FixedClock, chat: RecordingChat, member: Caller) -> None:
    """The submitting process crashed while waiting: once its wait would have ended, the DM goes."""
    services = queued_services(store, bank, clock, chat, wait_s=60)
    job = await queue(store, bank, member, BAD, clock)  # as the crashed process left it: waiting until +5 min
    with workers(store, 1, "--max-jobs", "1", "--idle-exit", "30") as (w,):
        w.wait(timeout=120)
    await services.tick()
    assert dms(chat) == []  # its submitter might still show it
    clock.advance(timedelta(minutes=6))
    await services.tick()
    await services.tick()
    sent = dms(chat)
    assert len(sent) == 1 and "Wrong answer" in (sent[0].title or "") + sent[0].body
    row = await store._one("SELECT outcome FROM grading_jobs WHERE id = ?", (job,))
    assert row["outcome"] == "recorded"


async def test_a_job_no_worker_takes_is_closed_with_a_dm(
        store: Store, bank: Bank, clock: FixedClock, chat: RecordingChat, member: Caller) -> None:
    services = queued_services(store, bank, clock, chat, wait_s=60)
    job = await queue(store, bank, member, BAD, clock)
    clock.advance(timedelta(days=1, minutes=1))
    await services.tick()
    sent = dms(chat)
    assert len(sent) == 1 and "No judge took your submission" in sent[0].body
    row = await store._one("SELECT outcome FROM grading_jobs WHERE id = ?", (job,))
    assert row["outcome"] == "abandoned: no worker took it"
    assert await store.submissions_of(member.member.id, "pair-sum-count") == []


async def test_a_job_cut_off_three_times_is_not_run_a_fourth(
        store: Store, bank: Bank, clock: FixedClock, member: Caller) -> None:
    job = await queue(store, bank, member, BAD, clock)
    async with store.transaction() as db:  # three takes whose workers all died
        await db.execute("UPDATE grading_jobs SET owner = 'gone:1:1', attempts = 3, lease_until = ? WHERE id = ?",
                         ("2000-01-01T00:00:00.000000+00:00", job))
    with workers(store, 1, "--max-jobs", "1", "--idle-exit", "30") as (w,):
        w.wait(timeout=120)
    row = await store._one("SELECT attempts, result FROM grading_jobs WHERE id = ?", (job,))
    result = json.loads(row["result"])
    assert row["attempts"] == 4 and result["verdict"] == "internal_error" and "cut off 3 times" in result["message"]


def test_the_worker_refuses_a_database_without_the_queue(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    sqlite3.connect(path).execute("CREATE TABLE grading_jobs (id INTEGER PRIMARY KEY)").connection.close()
    env = dict(os.environ, ONSITE_ALLOW_RLIMIT_TIER="1", PYTHONPATH=str(REPO))
    for url, says in ((f"sqlite:///{path}", "has no grading queue"), (str(tmp_path / "missing.db"), "no database at")):
        done = subprocess.run([sys.executable, "-m", "graders", "worker", "--database", url], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and says in done.stderr, done.stderr


async def test_on_postgresql_workers_and_waiters_are_woken_by_notify(
        store: Store, bank: Bank, clock: FixedClock, member: Caller) -> None:
    """LISTEN/NOTIFY, not polling: the worker polls every 60 s here and the waiter waits up to 60 s,
    yet the job queued after the worker went to sleep is graded and seen within seconds."""
    if not hasattr(store, "url"):
        pytest.skip("SQLite has no notifications: its worker and waiter poll")
    with workers(store, 1, "--poll", "60", "--max-jobs", "1") as (w,):
        await asyncio.sleep(3)  # the worker has looked, found nothing and is listening
        started = asyncio.get_running_loop().time()
        job = await queue(store, bank, member, BAD, clock)
        while await store.grading_result(job) is None:
            await store.wait_graded(job, 60)
            assert asyncio.get_running_loop().time() - started < 45, "no notification arrived"
        w.wait(timeout=60)
    assert asyncio.get_running_loop().time() - started < 45
