"""Soak test (issue 10, item 3): thousands of mixed commands from hundreds of members at once.

What runs is the real thing, minus the platforms: `Services.build` over a `Store` on a SQLite file
in a temp dir, the real question bank (`questions/`), the real command table reached through
`commands.dispatch` / `dispatch_line` (the path the console, Discord and Slack take), and the real
sandboxed judge (`bot.app.PoolGrader` over `graders.pool.GraderPool`, bwrap tier when it works,
else rlimit) for a share of the code submissions. The rest of the code goes to a stand-in judge
(`StandInJudge`: reference accepted, anything else a wrong answer, after a few ms) so the run is
about the core under load, not about sandbox start-up; `--code-share 1` sends every code submission
to the real judge. The chat is a counting fake that keeps no messages (so memory stays a property
of the core, not of the recorder).

Decisions:
- Time is simulated: a `FixedClock` walks through `--days` days (from Monday 2026-11-23) in six
  slots a day (01, 05, 09, 13, 17, 21 UTC). Communities sit in seven timezones and post at 09:00
  local, so daily posts, reveals, the weekly mock round (Monday 17:00 local) and plan nudges all
  fall due during the run. Each slot starts with a `Services.tick()` that runs *concurrently* with
  that slot's commands (as the scheduler does beside live interactions). The clock only jumps
  between slots, after in-flight commands drained: a jump of hours while a delivery holds its 60 s
  outbox lease would expire the lease in simulated time and resend, which no real clock does.
- Within a slot, commands run as asyncio tasks with a bounded concurrency (`--concurrency`), the
  same member may have several in flight (double clicks, two devices). Each command builds its
  caller as the Discord adapter does (`ensure_community` + `ensure_member`, two writes), dispatches,
  and then delivers the outbox, as adapters do after each interaction.
- Code submissions and some leaderboards use `dispatch(name, options)` (Discord/Slack options, a
  modal's pasted code); everything else a typed line through `dispatch_line`.

Checks (each a line in `SoakResult.problems()`; the CI test asserts the list is empty):
- every command got exactly one reply: a `Message` came back from dispatch for every command id,
  once; no exception escaped dispatch, no command hung (`--timeout-s`), no reply shows a traceback
  of the bot (a member's own code may show its own: `File "submission.py"`);
- commands that must fail (unknown ids, bad arguments, a non-admin's admin command) got an error
  reply, and commands that cannot fail (/question <id>, /leaderboard, /stats, /daily, ...) did not;
- the real judge accepted every reference solution and rejected every wrong one it graded;
- one theory attempt per member, question and daily post; one written answer per member and
  question; at most one `solve` ledger row per member and question;
- `PRAGMA integrity_check` is `ok` and `PRAGMA foreign_key_check` is empty;
- the `standings` table equals the sums recomputed here, in Python, from `points_ledger` for every
  community, member, period (all, each local week, each local month) and track (each and '*'):
  points, solves and the hidden flag; no standing row without ledger rows behind it;
- no grading job is left open (every verdict, refusal or judge fault finishes its job);
- every outbox row that is due was delivered (none failed; reminders scheduled after the end may
  wait, a timed attempt's reminders are cancelled when it ends, and a reminder found stale when it
  falls due is dropped, see bot/core/outbox.py); the chat saw each delivered
  row's key exactly once and no other key;
- memory stays flat: RSS after warm-up (a quarter of the slots) and at the end differ by less than
  `MEMORY_BOUND_MB` (see there for why that bound).

Prints throughput (commands/s over the whole run, ticks included, and while commands ran) and
p50/p99 reply latency (caller lookup + dispatch, as a member waits for it; the delivery after it is
not included) per command kind and overall. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import re
import sqlite3
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import engines
from bot.app import PoolGrader
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.commands import Context, core_table, dispatch, dispatch_line
from bot.core.daily import round_date
from bot.core.messages import Message
from bot.core.models import TRACKS, WRITTEN_TRIES, Caller, Community, Member, Question, Verdict, VerdictTest
from bot.core.services import Services
from bot.store.sqlite import Store, iso
from graders import sandbox
from graders.pool import GraderPool

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday
SLOT_HOURS = (1, 5, 9, 13, 17, 21)
PLATFORM = "soak"
TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata", "America/Los_Angeles",
             "Australia/Sydney")
REAL_MARK = "# soak: real judge\n"
# Memory bound, measured as RSS growth between the warm-up sample (a quarter of the slots) and the
# end. What may legitimately grow after warm-up: SQLite's page cache (default cache_size -2000, up to
# ~2 MB, filled as the database grows), this script's own records (per command a reply count, a kind
# and a latency, and the chat's count per outbox key: ~3 MB at 10,000 commands), and allocator
# fragmentation. Measured: +1.1 to +2.1 MB in full runs. 12 MB leaves room for those and still
# catches a leak of ~1.6 KB per command in the full run (7,500 commands after warm-up), ~8 KB per
# command in the CI size (1,500): keeping every reply, verdict or delivered message alive.
# It also catches memory that no object holds: on 2026-12-03 the run grew +13.6 MB (45 -> 86 MB by the
# warm-up, 99 at the end) while tracemalloc saw +1.9 MB, as it does now. The real judge decoded generated
# tests (expected values and the run's answers: up to ~50 MB of small objects per grading) in its
# worker threads here, and glibc kept each thread arena's high-water mark once they were freed. Those
# gradings now run in a short-lived process (graders.generated.grade_in_child): +3.0 MB. Bounded
# caches that fill after warm-up: the written-answer coverage's per-rubric-point stems
# (coverage._concepts, one entry per rubric point of the bank: 499, 2.3 MB when full) and its topic
# vectors (coverage.Topics, built once per written track: 2.3 MB). `--tracemalloc` prints what grew.
MEMORY_BOUND_MB = 12.0

# command kind -> weight in the mix
MIX: dict[str, int] = {
    "daily": 7, "question": 6, "leaderboard": 9, "theory-right": 6, "theory-wrong": 5, "written": 5,
    "code-reference": 6, "code-wrong": 5, "stats": 5, "practice": 4, "hint": 4, "timed": 1,
    "mock-join": 3, "mock-status": 2, "settings-timezone": 2, "story-add": 2, "story-list": 2,
    "plan-start": 2, "plan-status": 2, "answers": 1, "vote": 1, "admin": 4, "admin-forbidden": 1, "error": 6,
}
MUST_FAIL = frozenset({"admin-forbidden", "error"})
CANNOT_FAIL = frozenset({"daily", "question", "leaderboard", "stats", "hint", "mock-status", "story-list",
                         "settings-timezone", "story-add", "mock-join"})
SERVER_TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "(?!submission\.py")[^"]*", line \d')
FILLER = ("We start from the requirements and the scale, then walk through the data flow, the model, "
          "the serving path and how we monitor it, naming the trade-offs at each step and what we would "
          "measure before and after launch so the team can decide with numbers rather than opinions.")


class CountingChat:
    """A `Chat` that counts what the bot sends, per kind and per outbox key, and keeps no messages
    (so memory stays the core's)."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()  # outbox key -> sends: exactly once each is the contract

    async def post(self, community: Community, channel: str, message: Message, *, key: str = "") -> str:
        self.sent[f"post:{message.kind}"] += 1
        self.keys[key] += 1
        return f"m{sum(self.sent.values())}"

    async def send_dm(self, member: Member, message: Message, *, key: str = "") -> None:
        self.sent["dm"] += 1
        self.keys[key] += 1

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        self.sent["space"] += 1
        return f"space{self.sent['space']}"

    @property
    def messages(self) -> int:
        """Posts and DMs (a pair space is opened, then posted in: the post counts, the opening not)."""
        return sum(n for k, n in self.sent.items() if k != "space")


class StandInJudge:
    """The judge's stand-in: the question's reference is accepted, anything else is a wrong answer."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.calls = 0

    async def grade(self, question: Question, code: str, *, key: str) -> Verdict:
        self.calls += 1
        await asyncio.sleep(self.rng.uniform(0.001, 0.02))
        total = len(question.tests)
        if code.strip() == (question.reference or "").strip():
            return Verdict("accepted", total, total, 12.0, tier="stand-in")
        first = question.tests[0]
        failing = VerdictTest(first.name, "wrong_answer", first.visible, 1.0, list(first.args), first.expected, "nope")
        return Verdict("wrong_answer", total - 1, total, 12.0, "1 test failed", (failing,), tier="stand-in")


class SplitJudge:
    """The `Grader` port: code carrying `REAL_MARK` goes to the real sandboxed judge, the rest to the stand-in."""

    def __init__(self, real: PoolGrader | None, stand_in: StandInJudge) -> None:
        self.real = real
        self.stand_in = stand_in
        self.real_calls = 0

    async def grade(self, question: Question, code: str, *, key: str) -> Verdict:
        if self.real is not None and code.startswith(REAL_MARK):
            self.real_calls += 1
            return await self.real.grade(question, code, key=key)
        return await self.stand_in.grade(question, code.removeprefix(REAL_MARK), key=key)


@dataclass(frozen=True)
class Options:
    commands: int = 10_000
    members: int = 500
    communities: int = 20
    code_share: float = 0.05  # share of code submissions graded by the real sandboxed judge
    concurrency: int = 64
    days: int = 8
    seed: int = 10
    tier: str | None = None  # None: bwrap when it works, else rlimit
    workers: int = 2
    timeout_s: float = 120.0
    memory_bound_mb: float = MEMORY_BOUND_MB
    tracemalloc_frames: int = 0  # > 0: trace allocations (that many frames) and report growth after warm-up


@dataclass
class Seat:
    """A member as the driver knows them: enough to build the caller like an adapter does."""

    community_key: str
    community_name: str
    external_id: str
    name: str
    is_admin: bool
    index: int  # position in its community's member list


@dataclass(frozen=True)
class Planned:
    id: int
    kind: str
    seat: Seat
    seed: int


@dataclass
class SoakResult:
    options: Options
    tier: str
    elapsed_s: float = 0.0
    planned: int = 0
    replies: Counter[int] = field(default_factory=Counter)
    kinds: dict[int, str] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcome: Counter[tuple[str, str]] = field(default_factory=Counter)  # (command kind, reply kind)
    escaped: list[str] = field(default_factory=list)
    hung: list[int] = field(default_factory=list)
    wrong_outcome: list[str] = field(default_factory=list)
    judge: Counter[str] = field(default_factory=Counter)
    integrity: str = ""
    foreign_keys: int = 0
    standings_rows: int = 0
    ledger_rows: int = 0
    standings_mismatch: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    outbox: Counter[str] = field(default_factory=Counter)
    chat: Counter[str] = field(default_factory=Counter)
    chat_messages: int = 0
    chat_keys: Counter[str] = field(default_factory=Counter)
    sent_keys: set[str] = field(default_factory=set)  # outbox rows marked sent
    command_s: float = 0.0  # wall time while commands ran (each slot until its last reply)
    failed_rows: list[str] = field(default_factory=list)
    open_jobs: int = 0  # grading jobs never finished (each verdict, refusal or judge fault finishes one)
    rss_mb: list[tuple[int, float]] = field(default_factory=list)  # (commands done, RSS)
    warmup_index: int = 0
    ticks: int = 0
    tick_s: float = 0.0
    table_counts: dict[str, int] = field(default_factory=dict)
    tracemalloc_top: list[str] = field(default_factory=list)  # top growth sites (opt-in: --tracemalloc)

    @property
    def memory_growth_mb(self) -> float:
        if not self.rss_mb:
            return 0.0
        return self.rss_mb[-1][1] - self.rss_mb[self.warmup_index][1]

    def problems(self) -> list[str]:
        """Every failed check, one line each; empty when the soak passed."""
        out: list[str] = []
        missing = [i for i in range(self.planned) if self.replies[i] == 0]
        doubled = [i for i, n in self.replies.items() if n > 1]
        if missing:
            out.append(f"{len(missing)} command(s) got no reply, e.g. ids {missing[:5]}")
        if doubled:
            out.append(f"{len(doubled)} command(s) got more than one reply, e.g. ids {doubled[:5]}")
        if self.escaped:
            out.append(f"{len(self.escaped)} exception(s) escaped dispatch; first:\n{self.escaped[0]}")
        if self.hung:
            out.append(f"{len(self.hung)} command(s) hung past {self.options.timeout_s} s, e.g. ids {self.hung[:5]}")
        out += [f"wrong outcome: {w}" for w in self.wrong_outcome[:10]]
        if len(self.wrong_outcome) > 10:
            out.append(f"... and {len(self.wrong_outcome) - 10} more wrong outcomes")
        if self.judge["reference-rejected"] or self.judge["wrong-accepted"]:
            out.append(f"real judge misjudged: {self.judge['reference-rejected']} reference(s) rejected, "
                       f"{self.judge['wrong-accepted']} wrong solution(s) accepted")
        if self.integrity != "ok":
            out.append(f"PRAGMA integrity_check: {self.integrity}")
        if self.foreign_keys:
            out.append(f"PRAGMA foreign_key_check: {self.foreign_keys} violation(s)")
        out += [f"standings: {m}" for m in self.standings_mismatch[:10]]
        if len(self.standings_mismatch) > 10:
            out.append(f"... and {len(self.standings_mismatch) - 10} more standings mismatches")
        out += [f"duplicate: {d}" for d in self.duplicates[:10]]
        if self.outbox["pending"] or self.outbox["failed"]:
            out.append(f"outbox not drained: {self.outbox['pending']} pending, {self.outbox['failed']} failed "
                       f"{self.failed_rows[:3]}")
        if self.chat_messages != self.outbox["sent"]:
            out.append(f"chat saw {self.chat_messages} sends for {self.outbox['sent']} delivered outbox rows")
        twice = [k for k, n in self.chat_keys.items() if n > 1]
        if twice:
            out.append(f"{len(twice)} outbox message(s) sent more than once, e.g. {twice[:3]}")
        if set(self.chat_keys) != self.sent_keys:
            out.append(f"sent keys differ: {len(set(self.chat_keys) - self.sent_keys)} sent but not marked sent, "
                       f"{len(self.sent_keys - set(self.chat_keys))} marked sent but never sent")
        if self.open_jobs:
            out.append(f"{self.open_jobs} grading job(s) left open with no process grading them")
        if self.memory_growth_mb >= self.options.memory_bound_mb:
            out.append(f"memory grew {self.memory_growth_mb:.1f} MB after warm-up "
                       f"(bound {self.options.memory_bound_mb:.0f} MB)")
        return out


def rss_mb() -> float:
    """Resident set size of this process (Linux), in MB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def plan_members(opts: Options, rng: random.Random) -> list[list[Seat]]:
    """Members spread unevenly over the communities (a few big ones), at least 3 each, 1-2 admins each."""
    n = opts.communities
    weights = [1.0 / (i + 1) ** 0.7 for i in range(n)]
    sizes = [3] * n
    for _ in range(max(0, opts.members - 3 * n)):
        sizes[rng.choices(range(n), weights)[0]] += 1
    communities: list[list[Seat]] = []
    serial = 0
    for c, size in enumerate(sizes):
        seats = []
        admins = 2 if size >= 20 else 1
        for i in range(size):
            serial += 1
            seats.append(Seat(f"guild-{c}", f"Community {c}", f"user-{serial}", f"m{serial}", i < admins, i))
        communities.append(seats)
    return communities


class Driver:
    """Builds each command's text at run time (it may depend on today's round) and runs it."""

    def __init__(self, opts: Options, services: Services, chat: CountingChat, judge: SplitJudge,
                 seats: list[list[Seat]], result: SoakResult) -> None:
        self.opts = opts
        self.services = services
        self.store = services.store
        self.bank = services.bank
        self.clock = services.clock
        self.chat = chat
        self.judge = judge
        self.seats = seats
        self.result = result
        self.table = core_table()
        self.by_track = {t: self.bank.by_track(t) for t in TRACKS}
        self.stocked = [t for t in TRACKS if self.by_track[t]]  # tracks with questions in this bank
        self.hinted = [q for q in self.bank if q.hints]
        self.community_ids: dict[str, int] = {}
        self.code_real: dict[int, bool] = {}

    # -- the caller, as an adapter builds it ---------------------------------------------------------

    async def caller(self, seat: Seat) -> Caller:
        now = self.clock.now()
        community = await self.store.ensure_community(PLATFORM, seat.community_key, seat.community_name, now=now,
                                                       channel="daily")
        member = await self.store.ensure_member(community.id, seat.external_id, seat.name, now=now,
                                                is_admin=seat.is_admin)
        return Caller(member, community, is_admin=seat.is_admin)

    async def today(self, community: Community, track: str) -> Question | None:
        """The community's current daily question of a track, if its round was claimed already."""
        day = round_date(community, self.clock.now())
        for post in await self.store.daily_posts_on(community.id, day):
            if post.track == track and post.question_id in self.bank:
                return self.bank.get(post.question_id)
        return None

    async def pick(self, rng: random.Random, community: Community, tracks: Sequence[str]) -> Question:
        """Mostly today's question of one of these tracks (the daily path), else any (practice)."""
        track = rng.choice(list(tracks))
        if rng.random() < 0.6:
            q = await self.today(community, track)
            if q is not None:
                return q
        return rng.choice(self.by_track[track])

    # -- one command -------------------------------------------------------------------------------------

    async def build(self, cmd: Planned, caller: Caller) -> tuple[str, Callable[[Context], Awaitable[Message]]]:
        """(a label, how to dispatch it) for one planned command."""
        rng = random.Random(cmd.seed)
        kind = cmd.kind
        community = caller.community

        def line(text: str) -> tuple[str, Callable[[Context], Awaitable[Message]]]:
            return text[:60], lambda ctx: dispatch_line(ctx, text)

        def options(name: str, args: dict[str, Any]) -> tuple[str, Callable[[Context], Awaitable[Message]]]:
            return f"{name} {sorted(args)}", lambda ctx: dispatch(ctx, name, args)

        if kind == "daily":
            return line("/daily" if rng.random() < 0.6 else f"/daily {rng.choice(community.tracks)}")
        if kind == "question":
            return line(f"/question {rng.choice(list(self.bank)).id}")
        if kind == "leaderboard":
            period = rng.choice(("week", "month", "all"))
            track = rng.choice((None, None, *TRACKS))
            page = rng.choice((None, None, 1, 2, 3))
            if rng.random() < 0.5:
                args: dict[str, Any] = {"period": period}
                if track:
                    args["track"] = track
                if page:
                    args["page"] = page
                return options("leaderboard", args)
            return line(" ".join(["/leaderboard", period, track or "", f"--page {page}" if page else ""]).strip())
        if kind in ("theory-right", "theory-wrong"):
            q = await self.pick(rng, community, ["ml-theory"])
            if q.kind == "choice":
                letters = "ABCDEFGH"[: len(q.choices)]
                answer = str(q.answer) if kind == "theory-right" else rng.choice([x for x in letters if x != q.answer])
                answer = rng.choice((answer, answer.lower(), f"({answer})", f"{answer})"))
            else:
                value = float(q.answer)
                answer = f"{value:g}" if kind == "theory-right" else f"{value * 3 + 7:g}"
            return line(f"/submit {q.id} {answer}")
        if kind == "written":
            q = await self.pick(rng, community, ["system-design", "behavioral"])
            keys = [k for r in q.rubric for k in (r.keywords or (r.point,))]
            words = rng.sample(keys, k=min(len(keys), rng.randint(1, max(1, len(keys)))))
            text = " ".join(words) + ". " + FILLER
            return line(f"/submit {q.id} {text}")
        if kind in ("code-reference", "code-wrong"):
            q = await self.pick(rng, community, ["coding", "ml-coding"])
            code = (q.reference or "") if kind == "code-reference" else rng.choice(q.wrong)
            real = self.judge.real is not None and rng.random() < self.opts.code_share
            self.code_real[cmd.id] = real
            if real:
                code = REAL_MARK + code
            if rng.random() < 0.3:
                code = f"```python\n{code}\n```"  # pasted in chat with fences
            return options("submit", {"id": q.id, "answer": code})
        if kind == "stats":
            seats = self.seats_of(cmd.seat)
            return line("/stats" if rng.random() < 0.6 else f"/stats {rng.choice(seats).name}")
        if kind == "practice":
            return line("/practice" if rng.random() < 0.5 else f"/practice {rng.choice(self.stocked)}")
        if kind == "hint":
            q = rng.choice(self.hinted)
            n = rng.randint(1, len(q.hints))
            return line(f"/hint {q.id}" if n == 1 else f"/hint {q.id} --number {n}")
        if kind == "timed":
            return line(f"/timed {rng.choice(list(self.bank)).id}")
        if kind == "mock-join":
            tracks = ",".join(rng.sample(TRACKS, k=rng.randint(1, 2)))
            level = rng.choice(("junior", "mid", "senior", "staff"))
            return line(f"/mock join {tracks} {level} {rng.choice(TIMEZONES)} weekdays 17-22, sat 10-14")
        if kind == "mock-status":
            return line("/mock status")
        if kind == "settings-timezone":
            return line(f"/settings timezone {rng.choice(TIMEZONES)}")
        if kind == "story-add":
            theme = rng.choice(("failure", "disagreement", "ambiguity", "leadership", "conflict"))
            return line(f"/story add {theme} Story {cmd.id} | A churn model late by {rng.randint(1, 9)} weeks | "
                        "Own the launch | Cut scope, daily check-ins | Shipped, +4% retention")
        if kind == "story-list":
            return line("/story list")
        if kind == "plan-start":
            return line(rng.choice(("/plan start", "/plan start 6", "/plan start 2027-01-15", "/plan start 3")))
        if kind == "plan-status":
            return line("/plan status")
        if kind in ("answers", "vote"):
            yesterday = round_date(community, self.clock.now()) - timedelta(days=1)
            posts = [p for p in await self.store.daily_posts_on(community.id, yesterday)
                     if p.track in ("system-design", "behavioral")]
            qid = rng.choice(posts).question_id if posts else rng.choice(self.by_track["behavioral"]).id
            if kind == "answers":
                return line(f"/answers {qid}")
            return line(f"/vote {qid} {rng.choice(self.seats_of(cmd.seat)).name}")
        if kind == "admin":
            return line(rng.choice((
                "/admin setup", "/admin setup", f"/admin setup time {rng.choice(('08:30', '09:00', '09:30'))}",
                "/admin post-now", "/admin setup pattern easy,easy,medium,medium,medium,hard,hard",
                f"/admin setup timezone {rng.choice(TIMEZONES)}", "/admin setup mock-time 17:00",
                "/admin pair-now" if rng.random() < 0.2 else "/admin setup",
            )))
        if kind == "admin-forbidden":
            return line(rng.choice(("/admin setup time 03:00", "/admin post-now", "/admin pair-now",
                                    "/admin setup tracks coding")))
        if kind == "error":
            q = rng.choice(list(self.bank))
            choices: list[tuple[str, Callable[[Context], Awaitable[Message]]]] = [
                line(f"/question no-such-question-{cmd.id}"),
                line(f"/submit no-such-question-{cmd.id} B"),
                line("/leaderboard sideways"),
                line("/leaderboard week --page 0"),
                line(f"/frobnicate {cmd.id}"),
                line('/submit "unbalanced B'),
                line(f"/hint {q.id} --number {len(q.hints) + 5}"),
                line("/settings timezone Mars/Olympus_Mons"),
                line(f"/stats nobody-{cmd.id}"),
                line("/daily not-a-track"),
                line(f"/timed no-such-question-{cmd.id}"),
                line("/story edit 999 result nothing"),
                options("leaderboard", {"period": "week", "bogus": 1}),
                options("submit", {"id": q.id, "answer": "x" * 70_000} if q.is_code else {"id": "nope-" + q.id}),
            ]
            return rng.choice(choices)
        raise AssertionError(kind)

    def seats_of(self, seat: Seat) -> list[Seat]:
        return next(s for s in self.seats if s and s[0].community_key == seat.community_key)

    async def run_one(self, cmd: Planned) -> None:
        result = self.result
        result.kinds[cmd.id] = cmd.kind
        label = "?"
        try:
            t0 = time.perf_counter()
            caller = await self.caller(cmd.seat)
            label, call = await self.build(cmd, caller)
            ctx = Context(self.services, caller, self.table, "discord")
            reply = await asyncio.wait_for(call(ctx), self.opts.timeout_s)
            result.latencies[cmd.kind].append(time.perf_counter() - t0)
        except TimeoutError:
            result.hung.append(cmd.id)
            return
        except Exception:
            result.escaped.append(f"command {cmd.id} ({cmd.kind}: {label}):\n{traceback.format_exc()}")
            return
        if not isinstance(reply, Message):
            result.escaped.append(f"command {cmd.id} ({cmd.kind}: {label}) returned {type(reply).__name__}")
            return
        result.replies[cmd.id] += 1
        result.outcome[(cmd.kind, reply.kind)] += 1
        self.check_outcome(cmd, label, reply)
        try:
            await self.services.outbox.deliver()  # as adapters do after each interaction
        except Exception:
            result.escaped.append(f"delivery after command {cmd.id}:\n{traceback.format_exc()}")

    def check_outcome(self, cmd: Planned, label: str, reply: Message) -> None:
        text = f"{reply.title} {reply.body} {' '.join(f.value for f in reply.fields)}"
        wrong = self.result.wrong_outcome
        if SERVER_TRACEBACK.search(text):  # the member's own code may show its traceback, ours never
            wrong.append(f"{cmd.kind} `{label}` replied with a traceback of the bot")
        is_error = reply.kind == "error"
        if cmd.kind in MUST_FAIL and not is_error:
            wrong.append(f"{cmd.kind} `{label}` did not fail: {reply.title or reply.body[:80]!r}")
        if cmd.kind == "admin-forbidden" and "Only community admins" not in reply.body:
            wrong.append(f"non-admin `{label}` was not refused as such: {reply.body[:80]!r}")
        if cmd.kind in CANNOT_FAIL and is_error:
            wrong.append(f"{cmd.kind} `{label}` failed: {reply.body[:120]!r}")
        if cmd.kind.startswith("code-") and not is_error:
            judge = "real" if self.code_real.get(cmd.id) else "stand-in"
            accepted = reply.title.startswith("Accepted")
            self.result.judge[f"{judge} graded"] += 1
            if judge == "real":
                if cmd.kind == "code-reference" and not accepted:
                    self.result.judge["reference-rejected"] += 1
                    wrong.append(f"real judge rejected a reference solution ({label}): {reply.title!r} {reply.body[:200]!r}")
                if cmd.kind == "code-wrong" and accepted:
                    self.result.judge["wrong-accepted"] += 1
                    wrong.append(f"real judge accepted a wrong solution ({label})")
        elif cmd.kind.startswith("code-"):
            self.result.judge[f"{'real' if self.code_real.get(cmd.id) else 'stand-in'} refused"] += 1


# -- checks after the run --------------------------------------------------------------------------------


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def check_database(path: Path, result: SoakResult, now: datetime) -> None:
    """Integrity, standings recomputed from the ledger, one-attempt rules, outbox drained."""
    conn = sqlite3.connect(path)
    try:
        result.integrity = "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
        result.foreign_keys = len(conn.execute("PRAGMA foreign_key_check").fetchall())

        expected: dict[tuple[int, str, str, int], list[int]] = defaultdict(lambda: [0, 0])
        rows = conn.execute("SELECT community_id, member_id, points, reason, track, local_date FROM points_ledger")
        ledger = 0
        for community_id, member_id, points, reason, track, local_date in rows:
            ledger += 1
            day = date.fromisoformat(local_date)
            for period in ("all", f"w:{monday(day).isoformat()}", f"m:{day:%Y-%m}"):
                for t in ("*", track) if track else ("*",):
                    entry = expected[(community_id, period, t, member_id)]
                    entry[0] += points
                    entry[1] += reason == "solve"
        result.ledger_rows = ledger
        hidden = dict(conn.execute("SELECT id, hide_from_leaderboard FROM members").fetchall())
        home = dict(conn.execute("SELECT id, community_id FROM members").fetchall())
        seen = set()
        mismatch = result.standings_mismatch
        for community_id, period, track, member_id, points, solved, is_hidden in conn.execute(
            "SELECT community_id, period, track, member_id, points, solved, hidden FROM standings"
        ):
            key = (community_id, period, track, member_id)
            seen.add(key)
            result.standings_rows += 1
            want = expected.get(key)
            if want is None:
                mismatch.append(f"{key}: standing {points} points without ledger rows")
            elif [points, solved] != want:
                mismatch.append(f"{key}: standing {points} points / {solved} solved, ledger {want[0]} / {want[1]}")
            if is_hidden != hidden[member_id]:
                mismatch.append(f"{key}: hidden={is_hidden}, member's setting {hidden[member_id]}")
            if home[member_id] != community_id:
                mismatch.append(f"{key}: member {member_id} belongs to community {home[member_id]}")
        for key in expected.keys() - seen:
            mismatch.append(f"{key}: ledger {expected[key]} with no standing row")

        dup = result.duplicates
        for member_id, question_id, post, n in conn.execute(
            "SELECT member_id, question_id, daily_post_id, COUNT(*) FROM submissions WHERE track = 'ml-theory'"
            " GROUP BY member_id, question_id, daily_post_id HAVING COUNT(*) > 1"
        ):
            dup.append(f"member {member_id} has {n} theory attempts at {question_id} (post {post})")
        for member_id, question_id, n, solved in conn.execute(  # a first try below the bar may be revised once
            "SELECT member_id, question_id, COUNT(*), SUM(verdict = 'recorded') FROM submissions WHERE kind = 'written'"
            " GROUP BY member_id, question_id HAVING COUNT(*) > ? OR SUM(verdict = 'recorded') > 1", (WRITTEN_TRIES,)
        ):
            dup.append(f"member {member_id} has {n} written answers ({solved} solved) to {question_id}")
        for member_id, question_id, n in conn.execute(
            "SELECT member_id, question_id, COUNT(*) FROM points_ledger WHERE reason = 'solve'"
            " GROUP BY member_id, question_id HAVING COUNT(*) > 1"
        ):
            dup.append(f"member {member_id} was paid {n} times for solving {question_id}")

        for state, n in conn.execute(
            "SELECT CASE WHEN sent_at IS NOT NULL THEN 'sent' WHEN last_error LIKE 'cancelled:%' THEN 'cancelled'"
            " WHEN last_error LIKE 'dropped:%' THEN 'dropped'"
            " WHEN failed_at IS NOT NULL THEN 'failed'"
            " WHEN not_before > ? THEN 'scheduled' ELSE 'pending' END, COUNT(*) FROM outbox GROUP BY 1",
            (iso(now),),
        ):
            result.outbox[state] = n
        result.sent_keys = {r[0] for r in conn.execute("SELECT key FROM outbox WHERE sent_at IS NOT NULL")}
        result.failed_rows = [f"{k} ({purpose}): {err}" for k, purpose, err in conn.execute(
            "SELECT key, purpose, last_error FROM outbox WHERE sent_at IS NULL AND failed_at IS NOT NULL"
            " AND last_error NOT LIKE 'cancelled:%' AND last_error NOT LIKE 'dropped:%'")]
        result.open_jobs = conn.execute("SELECT COUNT(*) FROM grading_jobs WHERE finished_at IS NULL").fetchone()[0]
        for table in ("communities", "members", "submissions", "points_ledger", "standings", "daily_posts",
                      "outbox", "mock_rounds", "mock_pairs", "stories", "study_plans", "timers"):
            try:
                result.table_counts[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    finally:
        conn.close()


# -- the run ---------------------------------------------------------------------------------------------


def plan_commands(opts: Options, seats: list[list[Seat]], rng: random.Random) -> list[Planned]:
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    everyone = [s for group in seats for s in group]
    admins = [s for s in everyone if s.is_admin]
    members = [s for s in everyone if not s.is_admin]
    planned = []
    for i in range(opts.commands):
        kind = rng.choices(kinds, weights)[0]
        if kind == "admin":
            seat = rng.choice(admins)
        elif kind == "admin-forbidden":
            seat = rng.choice(members)
        else:
            seat = rng.choice(everyone)
        planned.append(Planned(i, kind, seat, rng.randrange(2**31)))
    return planned


async def run_soak(opts: Options, workdir: Path, *, log: Callable[[str], None] = print,
                   postgres_url: str | None = None) -> SoakResult:
    """Run the soak in `workdir` (the database goes there) and return what it measured and checked.
    With `postgres_url` the bot's store is that PostgreSQL database; it is copied into a SQLite file
    by `db convert` at the end (which checks counts and standings itself), and that file is checked."""
    rng = random.Random(opts.seed)
    bank = Bank.load(REPO / "questions")
    if bank.errors:
        raise SystemExit(f"the question bank has errors: {bank.errors[:3]}")
    tier = opts.tier or sandbox.detect_tier()
    result = SoakResult(opts, tier)
    log(f"bank: {len(bank)} questions; sandbox tier of the real judge: {tier}; "
        f"{opts.code_share:.0%} of code submissions go to it, the rest to the stand-in judge")

    db_path = workdir / "soak.db"
    if postgres_url is not None:
        from bot.store.postgres import PostgresStore

        store: Store = await PostgresStore.open(postgres_url, max_size=opts.concurrency)
    else:
        store = await Store.open(db_path)
    clock = FixedClock(START)
    chat = CountingChat()
    pool = PoolGrader(GraderPool(max_workers=opts.workers, tier=tier)) if opts.code_share > 0 else None
    judge = SplitJudge(pool, StandInJudge(random.Random(opts.seed + 1)))
    services = Services.build(store, bank, clock, chat=chat, grader=judge, grace=timedelta(hours=6))
    services.cards_dir = workdir / "cards"

    seats = plan_members(opts, rng)
    for c, group in enumerate(seats):
        community = await store.ensure_community(PLATFORM, group[0].community_key, group[0].community_name,
                                                 now=clock.now(), timezone=TIMEZONES[c % len(TIMEZONES)],
                                                 channel="daily")
        for seat in group:
            await store.ensure_member(community.id, seat.external_id, seat.name, now=clock.now(),
                                      is_admin=seat.is_admin)
    log(f"{len(seats)} communities, {sum(map(len, seats))} members "
        f"({sum(s.is_admin for g in seats for s in g)} admins), sizes {sorted(map(len, seats), reverse=True)}")

    driver = Driver(opts, services, chat, judge, seats, result)
    planned = plan_commands(opts, seats, rng)
    result.planned = len(planned)
    slots = [START.replace(hour=h) + timedelta(days=d) for d in range(opts.days) for h in SLOT_HOURS]
    per_slot = [planned[len(planned) * i // len(slots): len(planned) * (i + 1) // len(slots)] for i in range(len(slots))]
    result.warmup_index = max(1, len(slots) // 4)

    async def tick() -> None:
        t0 = time.perf_counter()
        try:
            await services.tick()
        except Exception:
            result.escaped.append(f"tick at {clock.now():%a %d %b %H:%M}:\n{traceback.format_exc()}")
        result.ticks += 1
        result.tick_s += time.perf_counter() - t0

    done = 0
    snapshots: list[tracemalloc.Snapshot] = []  # at the start and at the warm-up sample (opt-in)
    if opts.tracemalloc_frames > 0:
        tracemalloc.start(opts.tracemalloc_frames)
    gc.collect()
    result.rss_mb.append((0, rss_mb()))
    if tracemalloc.is_tracing():
        snapshots.append(tracemalloc.take_snapshot())
    started = time.perf_counter()
    for n, (slot, batch) in enumerate(zip(slots, per_slot, strict=True)):
        clock.set(slot)
        queue: asyncio.Queue[Planned] = asyncio.Queue()
        for cmd in batch:
            queue.put_nowait(cmd)

        async def worker(queue: asyncio.Queue[Planned] = queue) -> None:
            while not queue.empty():
                await driver.run_one(queue.get_nowait())

        async def commands(workers: int = min(opts.concurrency, len(batch))) -> None:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(workers)))
            result.command_s += time.perf_counter() - t0

        await asyncio.gather(tick(), commands())
        done += len(batch)
        gc.collect()
        result.rss_mb.append((done, rss_mb()))
        if tracemalloc.is_tracing() and len(result.rss_mb) - 1 == result.warmup_index:
            snapshots.append(tracemalloc.take_snapshot())
        if (n + 1) % len(SLOT_HOURS) == 0:
            rate = done / (time.perf_counter() - started)
            log(f"  day {(n + 1) // len(SLOT_HOURS)} ({slot:%a %d %b}): {done:,} commands, {rate:.0f}/s, "
                f"RSS {result.rss_mb[-1][1]:.1f} MB")
    clock.set(slots[-1] + timedelta(hours=4))
    await tick()  # a last delivery round, then everything queued must be out
    await services.outbox.deliver()
    result.elapsed_s = time.perf_counter() - started
    result.chat = Counter(chat.sent)
    result.chat_messages = chat.messages
    result.chat_keys = Counter(chat.keys)
    if len(snapshots) == 2:
        gc.collect()
        start, warm, end = *snapshots, tracemalloc.take_snapshot()
        tracemalloc.stop()
        result.tracemalloc_top = [
            "from the start to the warm-up sample:", *growth_sites(start, warm, opts.tracemalloc_frames),
            "from the warm-up sample to the end:", *growth_sites(warm, end, opts.tracemalloc_frames)]
    if pool is not None:
        await pool.close()
    if postgres_url is not None:
        from bot.store.convert import convert

        copy = await Store.open(db_path, migrate=True)
        await convert(store, copy)
        await copy.close()
    await store.close()
    check_database(db_path, result, clock.now())
    return result


def growth_sites(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, frames: int, top: int = 15) -> list[str]:
    """The `top` allocation sites that grew most from `before` to `after` (by file:line, or by traceback
    when more than one frame was traced), one line each, with the total traced growth first."""
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]  # lazy imports stay in: they are growth too
    before, after = before.filter_traces(keep), after.filter_traces(keep)
    stats = after.compare_to(before, "traceback" if frames > 1 else "lineno")
    total = sum(s.size_diff for s in stats)
    lines = [f"traced growth: {total / 2**20:+.2f} MB in {sum(s.count_diff for s in stats):+,} blocks"]
    for stat in stats[:top]:
        where = stat.traceback.format(limit=frames, most_recent_first=True)
        lines.append(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7,} blocks "
                     f"(now {stat.size / 1024:,.1f} KiB)  " + " <- ".join(w.strip() for w in where if not w.startswith("    ")))
    return lines


def report(result: SoakResult) -> str:
    """The figures as printed by the script (and pasted into bench/README.md)."""
    o = result.options
    lines = [
        f"soak: {result.planned:,} commands, {o.members} members, {o.communities} communities, {o.days} days, "
        f"concurrency {o.concurrency}, seed {o.seed}",
        f"real judge: {result.tier} tier, {o.workers} workers, {o.code_share:.0%} of code submissions "
        f"({result.judge['real graded']} graded, {result.judge['real refused']} refused before grading); "
        f"stand-in judge: {result.judge['stand-in graded']} graded",
        f"elapsed {result.elapsed_s:.1f} s: throughput {result.planned / result.elapsed_s:.0f} commands/s over the "
        f"whole run, {result.planned / max(result.command_s, 1e-9):.0f}/s while commands ran ({result.command_s:.1f} s; "
        f"{result.ticks} ticks took {result.tick_s:.1f} s, concurrently with the commands and after them)",
        "",
        f"{'kind':<18} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}",
    ]
    every: list[float] = []
    for kind in sorted(result.latencies, key=lambda k: -len(result.latencies[k])):
        values = result.latencies[kind]
        every += values
        errors = result.outcome[(kind, "error")]
        lines.append(f"{kind:<18} {len(values):>6} {percentile(values, 0.5) * 1000:>8.1f} "
                     f"{percentile(values, 0.99) * 1000:>8.1f} {errors:>7}")
    lines.append(f"{'overall':<18} {len(every):>6} {percentile(every, 0.5) * 1000:>8.1f} "
                 f"{percentile(every, 0.99) * 1000:>8.1f} {sum(n for (_, r), n in result.outcome.items() if r == 'error'):>7}")
    warm = result.rss_mb[result.warmup_index] if result.rss_mb else (0, 0.0)
    lines += [
        "",
        f"replies: {sum(result.replies.values()):,} for {result.planned:,} commands "
        f"(max per command {max(result.replies.values(), default=0)}); escaped exceptions {len(result.escaped)}, "
        f"hung {len(result.hung)}",
        f"database: integrity_check {result.integrity!r}, foreign key violations {result.foreign_keys}; "
        f"{result.ledger_rows:,} ledger rows vs {result.standings_rows:,} standings rows, "
        f"{len(result.standings_mismatch)} mismatches",
        f"rows: {', '.join(f'{k} {v:,}' for k, v in result.table_counts.items())}",
        f"outbox: {dict(result.outbox)}; chat: {dict(sorted(result.chat.items()))}, "
        f"{len(result.chat_keys):,} distinct keys, most sends of one key {max(result.chat_keys.values(), default=0)}",
        f"memory: RSS {result.rss_mb[0][1]:.1f} MB at start, {warm[1]:.1f} MB after warm-up "
        f"({warm[0]:,} commands), {result.rss_mb[-1][1]:.1f} MB at the end; growth after warm-up "
        f"{result.memory_growth_mb:+.1f} MB (bound {o.memory_bound_mb:.0f} MB)",
        "RSS by commands done: " + ", ".join(f"{n:,}:{mb:.0f}" for n, mb in result.rss_mb[:: max(1, len(result.rss_mb) // 12)]),
    ]
    if result.tracemalloc_top:
        lines += ["tracemalloc, top growth sites (the RSS above then includes tracemalloc's own traces and the "
                  "snapshots it holds from the warm-up sample on: compare the traced figures, not the RSS):",
                  *(f"  {line}" for line in result.tracemalloc_top)]
    problems = result.problems()
    lines.append("checks: all passed" if not problems else "checks FAILED:\n  " + "\n  ".join(problems))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--communities", type=int, default=20)
    parser.add_argument("--code-share", type=float, default=0.05,
                        help="share of code submissions graded by the real sandboxed judge (0 = none)")
    parser.add_argument("--concurrency", type=int, default=64, help="commands in flight at once")
    parser.add_argument("--days", type=int, default=8, help="simulated days (six clock slots a day)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--tier", choices=("bwrap", "rlimit"), default=None)
    parser.add_argument("--workers", type=int, default=2, help="sandboxes at once in the real judge's pool")
    parser.add_argument("--memory-bound-mb", type=float, default=MEMORY_BOUND_MB)
    parser.add_argument("--timeout-s", type=float, default=120.0, help="a command taking longer counts as hung")
    parser.add_argument("--tracemalloc", type=int, nargs="?", const=1, default=0, metavar="FRAMES",
                        help="trace allocations (FRAMES frames each, default 1) and print the 15 sites that grew "
                             "most from the start to the warm-up sample and from there to the end (slower; the RSS "
                             "then includes tracemalloc's own memory, so only the traced figures compare)")
    engines.add_arguments(parser)
    args = parser.parse_args()
    opts = Options(commands=args.commands, members=args.members, communities=args.communities,
                   code_share=args.code_share, concurrency=args.concurrency, days=args.days, seed=args.seed,
                   tier=args.tier, workers=args.workers, memory_bound_mb=args.memory_bound_mb,
                   timeout_s=args.timeout_s, tracemalloc_frames=args.tracemalloc)
    with tempfile.TemporaryDirectory(prefix="onsite-soak-") as tmp:
        result = asyncio.run(run_soak(opts, Path(tmp)))
    print(report(result))
    with engines.postgres(args.postgres) as server:
        if server is None:
            return
        with tempfile.TemporaryDirectory(prefix="onsite-soak-pg-") as tmp:
            url = asyncio.run(server.fresh_database())
            on_pg = asyncio.run(run_soak(opts, Path(tmp), postgres_url=url))
        print("\n[postgres]\n" + report(on_pg))
        print(engines.ratio_line("soak throughput while commands ran", result.planned / result.command_s,
                                 on_pg.planned / on_pg.command_s, "commands/s"))
        every = [v for values in result.latencies.values() for v in values]
        every_pg = [v for values in on_pg.latencies.values() for v in values]
        print(engines.ratio_line("soak p99 reply latency", percentile(every, 0.99) * 1000,
                                 percentile(every_pg, 0.99) * 1000, "ms"))
    sys.exit(1 if result.problems() else 0)


if __name__ == "__main__":
    main()
