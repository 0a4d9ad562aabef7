"""Submit -> grade or check -> store -> score, for every kind of question.

- Code (coding, ml-coding): at most `MAX_CODE_BYTES`; one submission per member in flight; graded by
  the sandboxed judge through the `Grader` port. The code is stored as a grading job before the judge
  sees it, and the stored verdict finishes the job in the same transaction, so a crash mid-grading
  leaves an open job that the next tick of any live process re-grades (`recover`), DMing the verdict. The private reply carries the verdict detail; a
  public line "<member> solved today's <track> question" (never the code) goes to the channel for
  a first daily solve. A judge fault (`internal_error`) or a busy judge stores nothing.
- ml-theory: one attempt per question (per daily post, when it comes round again in a new cycle),
  checked at once; the explanation comes with the verdict.
  A choice is a letter (`B`, `b)`, `(B)`); a number is plain (`0.8`, `-3`, `1e-3`, `1,000`), is
  compared with the key in exact decimals (an integer key stays an integer), and the reply shows it
  as typed beside the key as the question file writes it.
- Written (system-design, behavioral): 40 words to `MAX_WRITTEN_CHARS`, one answer per question.
  Rubric coverage is an estimate (`coverage.py`): a point counts only where a sentence of prose
  develops it (one of its keywords together with a second concept of the point, in a sentence that
  is not a list and not a template refilled with other terms), on word stems (`stemmer.py`), and
  nothing copied from what the member can read (prompt, rubric, outline) counts. The verdict shows
  each point found with the sentence it was found in. Measured on the bank (tests/core/test_coverage.py):
  every answer we wrote (18) reaches 57-100%; bare keyword lists, a pasted rubric or outline score 0%,
  one term per sentence at most 14%, a filler template refilled with two terms per sentence at most 40%.
  A good answer written for another question of the track covers nothing (`coverage.Topics`: it
  reads closer to another question's texts than `OFF_TOPIC` of its similarity to this one), and
  the verdict names the question it reads as written for. Measured on the bank: every answer we
  wrote reads as its own question's; sent to the other behavioral questions, our STAR stories
  reached the bar 172 times in 400 without this check and 27 times with it (the stories left fit
  related questions, as a reused story can in an interview); design answers sent to other design
  questions, 17 times in 328 without, none with it.
  An answer counts as solved (points, the channel line, a place among first solvers) only from the
  community's bar, `/admin setup coverage` (percent, default 50). Below it the verdict is
  `incomplete`: the member sees the estimate and the missed points, and may revise once
  (`WRITTEN_TRIES`); the second try is final, whatever its coverage. The default was measured on
  answers written for this purpose (8 full answers of 200-260 words and 2 short ones of 80-90 words
  to real behavioral and design questions: 57-100%, all but one at 60% or more) and on filler over
  all 65 written questions of the bank (vague prose, lorem ipsum, one word repeated: at most 20%;
  the prompt pasted back: 0% with the copy rule, up to 100% without). Filler that names the STAR
  steps or piles up buzzwords with no content still reaches 60% on about one question in six:
  keyword matching cannot tell those apart, peers' votes and the reveal can.
- A question whose answer was revealed in this community (today's post after a `reveal-time`, or a
  past daily that is not back in the current round) is still graded, like a past daily on
  LeetCode, but as practice with no points (the answer is public: `scoring.py`) and with the reveal
  in the reply: the reference solution, the key and explanation, or the model outline. It is not
  announced, takes no place among first solvers, and a written answer sent after the reveal is not
  listed by /answers. Scoring rules live in `scoring.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from bot.core import coverage as rubric_estimate
from bot.core import failpoints, scoring, views
from bot.core.bank import Bank
from bot.core.clock import Clock
from bot.core.daily import round_date
from bot.core.errors import Busy, Conflict, Forbidden, JobFinished, NotFound, OnsiteError, UsageError, shown
from bot.core.messages import Field, Message
from bot.core.models import (
    CODE_TRACKS,
    SOLVED_VERDICTS,
    TRACK_LABELS,
    WRITTEN_TRACKS,
    WRITTEN_TRIES,
    Caller,
    DailyPost,
    NewSubmission,
    OutboxItem,
    PointAward,
    Question,
    RubricPoint,
    Verdict,
    VerdictTest,
)
from bot.core.outbox import Outbox
from bot.core.ports import Grader, Store
from bot.core.review import Reviews

log = logging.getLogger(__name__)

MAX_CODE_BYTES = 64 * 1024
MAX_GRADING_ATTEMPTS = 2  # a job cut off this many times is reported, not re-run again
WAITER_MARGIN_S = 30.0  # a queued job's submitter is presumed gone this long after its wait should have ended
UNCLAIMED_AFTER = timedelta(days=1)  # a queued job no worker took by then is closed, with a DM
VerdictHook = Callable[[Caller, Question, Message], Awaitable[Message]]
MAX_NUMBER_CHARS = 40
MAX_WRITTEN_CHARS = 8000
MIN_WRITTEN_WORDS = 40
MAX_SHOWN = 300


def human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} bytes"


# -- answer parsing and rubric coverage ----------------------------------------------------------

_CHOICE = re.compile(r"^\(?\s*([A-Ha-h])\s*[).:]?$")
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][+-]?\d+)?$")


def parse_choice(text: str, choices: Sequence[str]) -> str:
    match = _CHOICE.match(text.strip())
    letters = "ABCDEFGH"[: len(choices)]
    if not match or match.group(1).upper() not in letters:
        raise UsageError(f"Answer with one letter from {', '.join(letters)}, for example: B.")
    return match.group(1).upper()


def number_text(text: str) -> str:
    """A numeric answer as the member typed it, checked: plain digits, an optional sign, decimals,
    exponent and thousands commas, at most `MAX_NUMBER_CHARS` and within a float's range."""
    cleaned = text.strip()
    if not cleaned or not _NUMBER.match(cleaned) or not re.search(r"\d", cleaned):
        raise UsageError(f"Answer with a plain number such as 0.25 (no units or %), got {text.strip()[:40]!r}.")
    if len(cleaned) > MAX_NUMBER_CHARS:
        raise UsageError(f"That number has {len(cleaned)} characters; an answer has at most {MAX_NUMBER_CHARS}.")
    if not math.isfinite(float(cleaned.replace(",", ""))):
        raise UsageError(f"{cleaned} is too large to be an answer.")
    return cleaned


def parse_number(text: str) -> float:
    return float(number_text(text).replace(",", ""))


def numeric_correct(typed: str, q: Question) -> bool:
    """Within the tolerance, in exact decimal arithmetic: 8388609 is not 8388608 (a float rounds such
    integers together past 2**53), and 0.645 is within ±0.005 of 0.64 (in floats it is not)."""
    given = Decimal(typed.replace(",", ""))
    key = Decimal(q.answer) if isinstance(q.answer, int) else Decimal(repr(float(q.answer)))
    tolerance = Decimal(repr(float(q.tolerance or 0.0)))
    with localcontext() as exact:
        exact.prec = 400  # every typed digit counts: at most MAX_NUMBER_CHARS of them, exponents up to 308
        return abs(given - key) <= tolerance


def rubric_coverage(
    answer: str, rubric: Sequence[RubricPoint], *, prompt: str = ""
) -> tuple[list[RubricPoint], list[RubricPoint]]:
    """(covered, missed) rubric points of a written answer (`coverage.py`); text copied from `prompt` covers nothing."""
    found, missed = rubric_estimate.estimate(answer, rubric, copied_from=[prompt])
    return [f.point for f in found], missed


def readable_texts(q: Question) -> list[str]:
    """What a member can read of a written question: copying any of it develops no rubric point."""
    return [q.prompt, *(f"{r.point}. {r.description}" for r in q.rubric), q.outline or "", *q.key_decisions,
            *q.listen_for, *q.follow_ups]


def strip_fences(code: str) -> str:
    """Code pasted in chat often comes wrapped in ``` fences."""
    match = re.match(r"^\s*```[a-zA-Z0-9_+-]*\n(.*?)\n?```\s*$", code, re.S)
    return match.group(1) if match else code


@dataclass(frozen=True)
class Context:
    question: Question
    post: DailyPost | None
    revealed: DailyPost | None = None  # graded after this community's reveal of it: practice, no points

    @property
    def daily(self) -> bool:
        return self.post is not None


class Submissions:
    def __init__(self, store: Store, bank: Bank, clock: Clock, outbox: Outbox, grader: Grader | None) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock
        self.outbox = outbox
        self.grader = grader
        self._grading: set[int] = set()
        self.queue_wait_s: float | None = None  # set by Services.build: no local judge, workers grade (issue 19)
        self.after_verdict: VerdictHook | None = None  # set by Services.build (timed attempts)
        self.reviews: Reviews | None = None  # set by Services.build (the optional AI review)
        self._topic_index: dict[str, rubric_estimate.Topics] = {}

    def _topics(self, track: str) -> rubric_estimate.Topics:
        """Which question of the track a written answer reads as written for (built once per track)."""
        if track not in self._topic_index:
            self._topic_index[track] = rubric_estimate.Topics(self.bank.by_track(track))
        return self._topic_index[track]

    async def open_question(self, caller: Caller, question_id: str, *, after_reveal: bool = False) -> Context:
        """The question and its current daily post. Once its answer was revealed here (today's post
        after a reveal-time, or a past post while it is not back in the round) it is closed, `Conflict`,
        unless `after_reveal`: then it opens for grading against the reveal, for no points."""
        question = self.bank.get(question_id)
        community = caller.community
        day = round_date(community, self.clock.now())
        current = next(
            (p for p in await self.store.daily_posts_on(community.id, day) if p.question_id == question.id), None
        )
        if current is not None and current.revealed_at is None:
            return Context(question, current)
        revealed = current or await self.store.revealed_post(community.id, question.id)
        if revealed is None:
            return Context(question, None)
        if not after_reveal:
            raise Conflict(
                f"The answer to `{question.id}` was revealed on {revealed.date:%a %d %b}, so it can no longer be "
                f"timed. /submit {question.id} still grades it against the reveal, for no points."
            )
        return Context(question, None, revealed)

    async def submit(self, caller: Caller, question_id: str, *, text: str | None, code: str | None) -> Message:
        ctx = await self.open_question(caller, question_id, after_reveal=True)
        q = ctx.question
        if q.track in CODE_TRACKS:
            reply = await self._code(caller, ctx, code if code is not None else text)
        elif q.track in WRITTEN_TRACKS:  # one attempt each: the store re-checks inside its write transaction
            reply = await self._written(caller, ctx, text)
        else:
            reply = await self._theory(caller, ctx, text)
        if ctx.revealed is not None:
            reply = with_reveal(reply, ctx)
        # -- hook (issue 9, timed.py): a /timed attempt stops with the verdict and shows the time taken
        if self.after_verdict is not None:
            reply = await self.after_verdict(caller, q, reply)
        return reply

    # -- code --------------------------------------------------------------------------------------

    async def _code(self, caller: Caller, ctx: Context, code: str | None) -> Message:
        q = ctx.question
        if code is None or not code.strip():
            if q.is_sql:
                raise UsageError(f"Send your query: /submit {q.id} SELECT ..., or --file query.sql.")
            raise UsageError(f"Send your code: /submit {q.id} --file solution.py, or paste it after the id.")
        code = strip_fences(code)
        size = len(code.encode("utf-8", "surrogatepass"))
        if size > MAX_CODE_BYTES:
            raise UsageError(f"Your {q.answer_noun} is {human_size(size)}; the limit is {human_size(MAX_CODE_BYTES)}.")
        if self.grader is None and self.queue_wait_s is None:
            raise Conflict("Code grading is not available in this installation.")
        member = caller.member
        if member.id in self._grading:
            raise Busy("Your previous submission is still being graded; wait for its verdict, then try again.")
        self._grading.add(member.id)
        try:
            if self.queue_wait_s is not None:
                return await self._queued(caller, ctx, code, self.queue_wait_s)
            job_id = await self.store.start_grading_job(
                community_id=caller.community.id, member_id=member.id, question_id=q.id,
                daily_post_id=ctx.post.id if ctx.post else None, code=code, now=self.clock.now())
            failpoints.hit("grading.started")
            try:
                return await self._grade(caller, ctx, code, job_id)
            except Exception as exc:  # the member is told now (busy, judge fault); a cancellation leaves the
                # job open, so the next process re-grades it
                await self.store.finish_grading_job(job_id, f"abandoned: {type(exc).__name__}", now=self.clock.now())
                raise
        finally:
            self._grading.discard(member.id)

    async def _grade(self, caller: Caller, ctx: Context, code: str, job_id: int) -> Message:
        """Grade a stored job and store its verdict, which finishes the job in the same transaction."""
        assert self.grader is not None
        verdict = await self.grader.grade(ctx.question, code, key=str(caller.member.id))
        return await self._conclude(caller, ctx, code, job_id, verdict)

    async def _queued(self, caller: Caller, ctx: Context, code: str, wait_s: float) -> Message:
        """Queue the code for the workers and show their verdict if it comes within `wait_s`; after
        that the member is told it will come by DM, and the leader's tick sends it (`recover`)."""
        q, now = ctx.question, self.clock.now()
        job_id = await self.store.queue_grading_job(
            community_id=caller.community.id, member_id=caller.member.id, question_id=q.id,
            daily_post_id=ctx.post.id if ctx.post else None, code=code, spec=json.dumps(q.to_dict()),
            now=now, waiter_until=now + timedelta(seconds=wait_s + WAITER_MARGIN_S))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        result = await self.store.grading_result(job_id)
        while result is None:
            left = deadline - loop.time()
            if left <= 0:
                await self.store.hand_over_to_dm(job_id, now=self.clock.now())
                if (result := await self.store.grading_result(job_id)) is None:
                    return Message(title="Queued for grading",
                                   body=f"The judges are busy, so your code for `{q.id}` waits in the queue (job "
                                        f"{job_id}). Its verdict will come to you by DM; nothing else to do.",
                                   kind="info")
                break
            await self.store.wait_graded(job_id, min(left, 1.0))
            result = await self.store.grading_result(job_id)
        try:
            return await self._conclude(caller, ctx, code, job_id, Verdict.from_dict(json.loads(result)))
        except JobFinished:  # the tick recorded it first, once the wait was over: its DM has the verdict
            return Message(title="Graded", body=f"Your code for `{q.id}` was graded; the verdict was sent to you "
                                                "by DM.", kind="info")

    async def _conclude(self, caller: Caller, ctx: Context, code: str, job_id: int, verdict: Verdict) -> Message:
        """Store a verdict for a job (which finishes it, once) and word the reply."""
        q = ctx.question
        if verdict.verdict == "internal_error":
            await self.store.finish_grading_job(job_id, "abandoned: judge fault", now=self.clock.now())
            raise Conflict(f"The judge failed on our side ({verdict.message or 'internal error'}); nothing was "
                           "recorded. Please submit again.")
        detail = json.dumps({"message": verdict.message, "time_ms": verdict.time_ms, "tier": verdict.tier})
        recorded = await self._record(caller, ctx, NewSubmission(
            community_id=caller.community.id, member_id=caller.member.id, question_id=q.id, track=q.track,
            kind="code", content=code, verdict=verdict.verdict, correct=verdict.accepted,
            daily_post_id=ctx.post.id if ctx.post else None, passed=verdict.passed, total=verdict.total,
            score=verdict.passed / verdict.total if verdict.total else None, detail=detail, job_id=job_id,
        ))
        reply = verdict_message(q, verdict, recorded_note(recorded, ctx))
        if verdict.accepted and self.reviews is not None and not q.is_sql:  # after the verdict, in the background
            reply = _with_review_line(reply, await self.reviews.request_code(caller, q, code))
        return reply

    async def recover(self) -> int:
        """Re-grade code whose grading a crash cut off (its process is gone); the verdict goes by DM.

        A job interrupted `MAX_GRADING_ATTEMPTS` times, or whose question left the bank, is closed
        with a DM saying nothing was recorded. Returns how many jobs were taken over."""
        taken = 0
        if self.queue_wait_s is not None:
            taken += await self._deliver_queued()
        if self.grader is None:
            return taken
        jobs = await self.store.claim_orphaned_jobs(now=self.clock.now())
        for job in jobs:
            try:
                await self._recover_one(job)
            except Exception:  # must not stop the tick's other work; tried again next tick, up to the limit
                log.exception("re-grading job %s failed", job["id"])
                await self.store.release_grading_job(int(job["id"]))
        return taken + len(jobs)

    async def _deliver_queued(self) -> int:
        """Verdicts the workers wrote after their submitter stopped waiting go by DM, once (the record
        finishes the job by compare-and-set); jobs no worker took for a day are closed with a DM."""
        now = self.clock.now()
        jobs = await self.store.graded_for_dm(now=now)
        for job in jobs:
            try:
                await self._recover_one(job, Verdict.from_dict(json.loads(str(job["result"]))))
            except Exception:  # tried again at the next tick
                log.exception("delivering the verdict of job %s failed", job["id"])
        for job in await self.store.unclaimed_jobs(before=now - UNCLAIMED_AFTER):
            message = Message(title="Your submission could not be graded",
                              body=f"No judge took your submission to `{job['question_id']}` within "
                                   f"{UNCLAIMED_AFTER.days} day; nothing was recorded. Please submit it again.",
                              kind="error")
            log.error("grading job %s waited %s for a worker: is `python -m graders worker` running?",
                      job["id"], UNCLAIMED_AFTER)
            await self.store.finish_grading_job(int(job["id"]), "abandoned: no worker took it", now=now, items=[
                _dm(int(job["community_id"]), int(job["member_id"]), f"regrade:{job['id']}", message)])
        return len(jobs)

    async def _recover_one(self, job: Any, verdict: Verdict | None = None) -> None:
        """Re-grade a job cut off by a crash (or take a worker's `verdict` for it) and DM the result."""
        job_id, question_id = int(job["id"]), str(job["question_id"])
        member = await self.store.get_member(int(job["member_id"]))
        community = await self.store.get_community(int(job["community_id"]))
        now = self.clock.now()
        if member is None or community is None:
            await self.store.finish_grading_job(job_id, "abandoned: member or community gone", now=now)
            return
        caller = Caller(member, community, is_admin=member.is_admin)
        when = f"{datetime.fromisoformat(str(job['created_at'])):%a %d %b %H:%M} UTC"
        note = (f"Your submission to `{question_id}` of {when} was cut off by a restart of the bot" if verdict is None
                else f"Your submission to `{question_id}` of {when} waited in the grading queue")
        try:
            if verdict is None and int(job["attempts"]) > MAX_GRADING_ATTEMPTS:  # workers count their own
                raise Conflict(f"grading it was interrupted {MAX_GRADING_ATTEMPTS} times")
            post = await self.store.get_daily_post(int(job["daily_post_id"])) if job["daily_post_id"] else None
            # graded with the daily post it was sent for: a reveal meanwhile does not cost its points;
            # code sent after a reveal stays graded against it
            revealed = None if post else await self.store.revealed_post(community.id, question_id)
            if revealed is not None and (revealed.revealed_at is None
                                         or revealed.revealed_at > datetime.fromisoformat(str(job["created_at"]))):
                revealed = None
            ctx = Context(self.bank.get(question_id), post, revealed)
            if verdict is None:
                reply = await self._grade(caller, ctx, str(job["code"]), job_id)
            else:
                reply = await self._conclude(caller, ctx, str(job["code"]), job_id, verdict)
            if revealed is not None:
                reply = with_reveal(reply, ctx)
        except Busy:
            await self.store.release_grading_job(job_id)
            return
        except JobFinished:
            return
        except OnsiteError as exc:
            message = Message(title="Your submission could not be graded",
                              body=f"{note}, and could not be graded again: {exc} Nothing was recorded; "
                                   "please submit it again.", kind="error")
            await self.store.finish_grading_job(job_id, f"abandoned: {exc}", now=now, items=[
                _dm(community.id, member.id, f"regrade:{job_id}", message)])
            return
        if self.after_verdict is not None:
            reply = await self.after_verdict(caller, self.bank.get(question_id), reply)
        body = f"{note}; here is its verdict. " + reply.body
        await self.store.enqueue([_dm(community.id, member.id, f"regrade:{job_id}",
                                      replace(reply, body=body, ephemeral=False))], now=now)

    # -- theory ------------------------------------------------------------------------------------

    async def _theory(self, caller: Caller, ctx: Context, text: str | None) -> Message:
        q = ctx.question
        if text is None or not text.strip():
            raise UsageError(f"Give your answer after the id: /submit {q.id} " + ("B" if q.kind == "choice" else "0.25"))
        if q.kind == "choice":
            given = parse_choice(text, q.choices)
            correct = given == q.answer
            shown = f"**{q.answer}.** {q.choices['ABCDEFGH'.index(str(q.answer))]}"
        else:  # shown as typed and as the question file writes the key, never rounded (8.38861e+06)
            given = number_text(text)
            correct = numeric_correct(given, q)
            shown = views.numeric_answer(q)
        post_id = ctx.post.id if ctx.post else None
        previous = [r for r in await self.store.submissions_of(caller.member.id, q.id) if r["daily_post_id"] == post_id]
        if previous:
            raise Conflict(f"You already answered `{q.id}` ({previous[0]['content']}); theory questions take one attempt.")
        recorded = await self._record(caller, ctx, NewSubmission(
            community_id=caller.community.id, member_id=caller.member.id, question_id=q.id, track=q.track,
            kind=q.kind or "choice", content=given, verdict="correct" if correct else "incorrect", correct=correct,
            daily_post_id=ctx.post.id if ctx.post else None,
        ))
        return Message(
            title=("Correct ✓ " if correct else "Not quite ✗ ") + f"· {q.title}",
            body=(q.explanation or "").strip(),
            fields=(Field("Your answer", given, inline=True), Field("Answer", shown, inline=True)),
            footer=recorded_note(recorded, ctx),
            kind="success" if correct else "info",
            ephemeral=True,
        )

    # -- written -----------------------------------------------------------------------------------

    async def _written(self, caller: Caller, ctx: Context, text: str | None) -> Message:
        q = ctx.question
        answer = (text or "").strip()
        words = len(answer.split())
        if words < MIN_WRITTEN_WORDS:
            raise UsageError(f"Write at least {MIN_WRITTEN_WORDS} words (you wrote {words}); "
                             f"structure it along the rubric: {', '.join(r.point for r in q.rubric)}.")
        if len(answer) > MAX_WRITTEN_CHARS:
            raise UsageError(f"Your answer is {len(answer)} characters; the limit is {MAX_WRITTEN_CHARS}.")
        tries = [r for r in await self.store.submissions_of(caller.member.id, q.id) if r["kind"] == "written"]
        if any(r["verdict"] in SOLVED_VERDICTS for r in tries):
            raise Conflict(f"You already answered `{q.id}` and it counted as solved; one written answer per question.")
        if len(tries) >= WRITTEN_TRIES:
            raise Conflict(f"You already revised your answer to `{q.id}` once and that second try was final; "
                           "one written answer per question.")
        bar = int(await self.store.community_setting(caller.community.id, "solve_coverage"))
        found, missed = rubric_estimate.estimate(answer, q.rubric, copied_from=readable_texts(q))
        other = self._topics(q.track).closest_other(answer, q)
        if other is not None:  # a good answer to another question: the terms its rubric shares count for nothing
            found, missed = [], list(q.rubric)
        covered = [f.point for f in found]
        coverage = len(covered) / len(q.rubric)
        solved = len(covered) * 100 >= bar * len(q.rubric)
        final = solved or len(tries) + 1 >= WRITTEN_TRIES
        recorded = await self._record(caller, ctx, NewSubmission(
            community_id=caller.community.id, member_id=caller.member.id, question_id=q.id, track=q.track,
            kind="written", content=answer, verdict="recorded" if solved else "incomplete", correct=solved,
            daily_post_id=ctx.post.id if ctx.post else None, score=coverage,
            detail=json.dumps({"covered": [r.point for r in covered], "missed": [r.point for r in missed],
                               "bar": bar, "try": len(tries) + 1, **({"off_topic": other.id} if other else {})}),
        ), coverage=coverage)
        developed = "\n".join(f"✓ {f.point.point}: “{f.where}”" for f in found) or "none"
        if other is not None:
            developed = (f"none: this reads as an answer to another question, `{other.id}` ({other.title}), so the "
                         "terms it shares with this rubric count for nothing. Answer the question asked.")
        fields = [Field("Developed", developed)]
        if missed:
            fields.append(Field("Missed", "\n".join(f"✗ **{r.point}**: {r.description}" for r in missed)))
        ratio = f"estimated rubric coverage {len(covered)}/{len(q.rubric)} ({coverage:.0%})"
        estimate = ("This is an estimate: a point counts where a sentence of yours develops it (its key terms "
                    "together, in prose; lists of terms and text copied from the question or rubric do not count)")
        if solved:
            title = f"Answer recorded · {ratio}"
            body = f"{estimate}; here an answer counts as solved from {bar}%." + (
                "" if ctx.revealed else " Peers can vote on answers after the reveal.")
        elif not final:
            title = f"Not counted yet · {ratio}"
            body = (f"{estimate}. Here an answer counts as solved from {bar}%, so this one does not count yet (no "
                    "points, no announcement); the points it misses are below. You can revise it once: send the whole "
                    f"improved answer with /submit {q.id} <answer>. That second try is final.")
        else:
            title = f"Final answer recorded · {ratio}"
            body = (f"{estimate}. It is below this community's bar of {bar}%, so it does not count as solved; this "
                    "was your second and final try. The missed points are below, and the reveal shows a model outline.")
        reply = Message(
            title=title,
            body=body,
            fields=tuple(fields),
            footer=recorded_note(recorded, ctx),
            kind="success" if solved else "info",
            ephemeral=True,
        )
        if self.reviews is not None:  # after the verdict is stored; the review comes later, by DM
            reply = _with_review_line(reply, await self.reviews.request_written(caller, q, answer))
        return reply

    # -- storing and scoring -----------------------------------------------------------------------

    async def _record(self, caller: Caller, ctx: Context, sub: NewSubmission, *, coverage: float | None = None) -> RecordedNote:
        q, member = ctx.question, caller.member

        def awards(position: int, first: bool) -> list[PointAward]:
            if not first or not sub.correct or ctx.revealed is not None:  # after the reveal: no points
                return []
            out = [PointAward(scoring.solve_points(q.track, q.difficulty, daily=ctx.daily, coverage=coverage),
                              "solve", f"solve:{member.id}:{q.id}")]
            bonus = scoring.early_bonus(position) if ctx.daily else 0
            if bonus:
                out.append(PointAward(bonus, "early", f"early:{sub.daily_post_id}:{member.id}"))
            return out

        now = self.clock.now()
        first_for_post = ctx.daily and sub.correct and not any(
            r["daily_post_id"] == sub.daily_post_id and r["verdict"] in SOLVED_VERDICTS
            for r in await self.store.submissions_of(member.id, q.id)
        )
        recorded = await self.store.record_submission(sub, now=now, points=awards)
        awarded = list(recorded.awarded)
        streak = 0
        if first_for_post:
            tz = member.timezone or caller.community.timezone
            times = (await self.store.daily_solve_times([member.id]))[member.id]
            streak, _ = scoring.streaks((scoring.local_day(t, tz) for t in times), scoring.local_day(now, tz))
            if streak and streak % scoring.STREAK_MILESTONE_DAYS == 0:
                key = f"streak:{member.id}:{scoring.local_day(now, tz).isoformat()}"
                if await self.store.add_points(community_id=caller.community.id, member_id=member.id,
                                               points=scoring.STREAK_MILESTONE_POINTS, reason="streak", now=now,
                                               dedupe_key=key):
                    awarded.append(PointAward(scoring.STREAK_MILESTONE_POINTS, "streak", key))
            if caller.community.channel and ctx.post is not None:
                await self.store.enqueue([OutboxItem(
                    community_id=caller.community.id, key=f"announce:{ctx.post.id}:{member.id}", purpose="announce",
                    channel=caller.community.channel, daily_post_id=ctx.post.id,
                    message=Message(body=f"**{member.display_name}** solved today's {TRACK_LABELS[q.track]} question"
                                    + (f" (#{recorded.position})" if recorded.position <= 3 else "") + ".",
                                    kind="announcement"),
                )], now=now)
        return RecordedNote(recorded.first_solve, tuple(awarded), streak, sub.correct)

    # -- written answers after the reveal ----------------------------------------------------------

    async def answers(self, caller: Caller, question_id: str) -> Message:
        q = self.bank.get(question_id)
        if q.track not in WRITTEN_TRACKS:
            raise UsageError(f"`{q.id}` is not a written question; /answers is for system design and behavioral.")
        await self._require_revealed(caller, q)
        rows = await self.store.written_answers(caller.community.id, q.id)
        if not rows:
            return Message(title=f"Answers · {q.title}", body="Nobody answered this question.", ephemeral=True)
        fields = []
        for r in rows:
            text = str(r["content"])
            shown = text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN].rsplit(" ", 1)[0] + " …"
            below = " (below the bar)" if r["verdict"] not in SOLVED_VERDICTS else ""
            fields.append(Field(f"{r['display_name']} · coverage {float(r['score'] or 0):.0%}{below} · "
                                f"{r['votes']} vote(s)", shown))
        return Message(title=f"Answers · {q.title}", fields=tuple(fields),
                       footer=f"Vote for the most useful: /vote {q.id} <member>", ephemeral=True)

    async def vote(self, caller: Caller, question_id: str, author_name: str) -> Message:
        q = self.bank.get(question_id)
        await self._require_revealed(caller, q)
        author = await self.store.find_member(caller.community.id, author_name.lstrip("@"))
        if author is None:
            raise NotFound(f"No member called {shown(author_name)} here.")
        if author.id == caller.member.id:
            raise Forbidden("You cannot vote for your own answer.")
        answer = next((r for r in await self.store.written_answers(caller.community.id, q.id)
                       if int(r["member_id"]) == author.id), None)
        if answer is None:
            raise NotFound(f"{author.display_name} did not answer `{q.id}`.")
        now = self.clock.now()
        if not await self.store.add_vote(int(answer["id"]), caller.member.id, now=now):
            raise Conflict(f"You already voted for {author.display_name}'s answer.")
        votes = int(answer["votes"]) + 1
        if votes <= scoring.MAX_VOTE_POINTS:
            await self.store.add_points(community_id=caller.community.id, member_id=author.id,
                                        points=scoring.VOTE_POINTS, reason="vote", track=q.track, question_id=q.id,
                                        now=now, dedupe_key=f"vote:{answer['id']}:{caller.member.id}")
        return Message(body=f"Vote counted for {author.display_name}'s answer to `{q.id}` ({votes} so far).",
                       kind="success", ephemeral=True)

    async def _require_revealed(self, caller: Caller, q: Question) -> None:
        if await self.store.revealed_post(caller.community.id, q.id) is None:
            raise Conflict(f"Answers to `{q.id}` open for reading and votes after its reveal.")


def with_reveal(reply: Message, ctx: Context) -> Message:
    """A grade after the reveal carries the reveal: the reference solution and its explanation, or the
    model outline (a theory reply always shows the key and the explanation)."""
    q, post = ctx.question, ctx.revealed
    assert post is not None
    parts = [reply.body]
    code = reply.code
    if q.track in CODE_TRACKS:
        code = q.reference
        parts.append(f"**Revealed on {post.date:%a %d %b}**: the reference {'query' if q.is_sql else 'solution'} is below."
                     + (f"\n{q.explanation.strip()}" if q.explanation else ""))
    elif q.track in WRITTEN_TRACKS and q.outline:
        parts.append(f"**Model outline** (revealed on {post.date:%a %d %b})\n{q.outline.strip()}")
    return replace(reply, body="\n\n".join(p for p in parts if p), code=code)


def _dm(community_id: int, member_id: int, key: str, message: Message) -> OutboxItem:
    return OutboxItem(community_id=community_id, key=key, purpose="dm", member_id=member_id, message=message)


@dataclass(frozen=True)
class RecordedNote:
    first_solve: bool
    awarded: tuple[PointAward, ...]
    streak: int
    correct: bool


def recorded_note(note: RecordedNote, ctx: Context) -> str:
    if ctx.revealed is not None:
        return f"Graded after the reveal of {ctx.revealed.date:%a %d %b}: practice, no points."
    streak = f" · streak {note.streak} day(s)" if note.streak else ""
    if note.awarded:
        parts = [f"+{a.points} {'points' if a.reason == 'solve' else a.reason + ' bonus'}" for a in note.awarded]
        return " · ".join(parts) + (" (daily)" if ctx.daily else " (practice: half points)") + streak
    if note.correct and not note.first_solve:
        return "Already solved before: no new points." + streak
    return "No points this time." if not note.correct else streak.lstrip(" ·")


def _show(test: VerdictTest, part: str) -> str:
    """A visible test's input, expected or got value as a Python literal: the judge's own text when it
    sent one (the notation of its message, `nan` included), else the literal of the plain value."""
    text = (test.shown or {}).get(part) or repr(getattr(test, part))
    return text if len(text) <= 400 else text[:400] + " …"


def _with_review_line(reply: Message, line: str) -> Message:
    return replace(reply, body=f"{reply.body}\n\n{line}".strip()) if line else reply


def verdict_message(q: Question, v: Verdict, note: str) -> Message:
    """The private verdict: what happened, the first failing visible test, the member's own output."""
    label = v.verdict.replace("_", " ").capitalize()
    title = f"{'Accepted ✓' if v.accepted else label} · {v.passed}/{v.total} tests · {v.time_ms:.0f} ms"
    fields: list[Field] = []
    failure = v.first_failure
    if failure is not None and failure.visible and failure.verdict == "wrong_answer":
        fields += [Field("Failing test", failure.name), Field("Input", f"`{_show(failure, 'input')}`"),
                   Field("Expected", f"`{_show(failure, 'expected')}`", True),
                   Field("Got", f"`{_show(failure, 'got')}`", True)]
    elif failure is not None and not failure.visible:
        fields.append(Field("Failing test", f"{failure.name} (hidden)"))
    if v.stdout.strip():
        shown = v.stdout.strip()[:500].replace("```", "`\u200b``")  # the member's output cannot close the fence
        fields.append(Field("Your output", f"```\n{shown}\n```"))
    return Message(
        title=f"{title} · {q.title}",
        body=v.message if not v.accepted else "All tests passed.",
        fields=tuple(fields),
        footer=" · ".join(p for p in (note, f"sandbox: {v.tier}" if v.tier else "") if p),
        kind="success" if v.accepted else "info",
        ephemeral=True,
    )
