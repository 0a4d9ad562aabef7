"""Composition root: Store + Bank + Grader + services + chat, handed to an adapter."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.config import Settings, default_data_dir
from bot.core.bank import Bank
from bot.core.clock import Clock, SystemClock
from bot.core.cooldown import Cooldown
from bot.core.errors import Busy, ConfigError
from bot.core.models import Question, Verdict
from bot.core.ports import Chat, Grader
from bot.core.review import ReviewModel, ReviewSettings
from bot.core.services import Services
from bot.store import open_store
from bot.store.sqlite import Store
from graders import generated, sandbox
from graders.pool import Busy as PoolBusy
from graders.pool import GraderPool
from graders.spec import CodeSpec

log = logging.getLogger("onsite")
QUEUE_WAIT_S = 120.0  # with no local judge: how long a command waits for a worker's verdict before it goes by DM


class PoolGrader:
    """The `Grader` port over the sandboxed pool: question -> CodeSpec, result -> Verdict."""

    def __init__(self, pool: GraderPool) -> None:
        self.pool = pool

    async def grade(self, question: Question, code: str, *, key: str) -> Verdict:
        spec = CodeSpec.from_dict(question.to_dict())
        try:  # generated tests are graded in a short-lived process (generated.grade)
            result = await self.pool.grade(code, spec, key=key, run=generated.grade)
        except PoolBusy as exc:
            raise Busy(f"{exc}.", exc.retry_after_s) from None
        except generated.GenerationError as exc:
            log.error("generated tests of %s cannot be built: %s", question.id, exc)
            return Verdict("internal_error", 0, len(spec.tests), 0.0,
                           "The judge cannot build this question's large tests (logged for the operator); "
                           "your code was not graded.")
        return Verdict.from_dict(result.to_dict())

    async def close(self) -> None:
        await self.pool.close()


@dataclass
class App:
    settings: Settings
    store: Store
    services: Services
    grader: PoolGrader | None = None

    async def close(self) -> None:
        await self.services.reviews.drain()  # each review is bounded by its timeout
        model = self.services.reviews.model
        if model is not None and hasattr(model, "close"):
            await model.close()
        if self.grader is not None:
            await self.grader.close()
        await self.store.close()


def report_judge_tier() -> str:
    """Say at start which sandbox tier will grade and which defences it lacks here, so an operator
    sees a weaker judge before members do."""
    tier = sandbox.detect_tier()
    ok, why = sandbox.bwrap_status()
    if ok:
        log.info("judge: bwrap tier (namespaces, read-only system view)")
    else:
        log.warning("judge: rlimit tier, bwrap unusable here (%s); see SECURITY.md for what that tier does not cover",
                    why)
    for name, available, detail in sandbox.capabilities(tier)[1:]:
        (log.info if available or name == "memory cgroup" else log.warning)(
            "judge: %s: %s", name, detail if available else "unavailable, " + detail)
    return tier


def refuse_weak_judge(settings: Settings) -> None:
    """Discord and Slack serve strangers: refuse the rlimit tier unless the operator opted in (with
    ONSITE_GRADER_WORKERS=0 nothing is graded here; each worker checks its own tier)."""
    if settings.grader_workers != 0 and sandbox.detect_tier() == "rlimit" and not settings.allow_rlimit_tier:
        why = sandbox.bwrap_status()[1]
        raise ConfigError(
            f"the judge would run in the rlimit tier (bwrap unusable: {why}), which does not isolate "
            "submissions as well (SECURITY.md); install bubblewrap, or set ONSITE_ALLOW_RLIMIT_TIER=1 to accept it")


def load_bank(settings: Settings) -> Bank:
    """Load the bank; files with errors are reported and skipped so the bot still starts."""
    bank = Bank.load(settings.questions_dir)
    for problem in bank.errors:
        log.warning("question skipped: %s", problem)
    log.info("loaded %d questions from %s", len(bank), settings.questions_dir)
    return bank


def review_model(settings: Settings) -> ReviewModel | None:
    """The AI reviewer when ONSITE_LLM_BASE_URL and ONSITE_LLM_MODEL are set (bot/ai.py), else None."""
    if not settings.llm_base_url or not settings.llm_model:
        return None
    from bot.ai import OpenAIReviewModel

    log.info("AI review on: model %s at %s", settings.llm_model, settings.llm_base_url)
    return OpenAIReviewModel(settings.llm_base_url, settings.llm_model, settings.llm_api_key)


async def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    chat: Chat | None = None,
    bank: Bank | None = None,
    grader: Grader | None = None,
    cooldown: bool = False,
) -> App:
    """`cooldown`: limit each member's commands as the settings say; `python -m bot discord|slack`
    turn it on, the console (one person at a keyboard, often a script) and tests leave it off."""
    store = await open_store(settings.database_url.reveal() if settings.database_url else settings.database)
    pool_grader = None
    queue_wait_s = None
    if grader is None and settings.grader_workers == 0:  # graded by `python -m graders worker` elsewhere
        queue_wait_s = QUEUE_WAIT_S
        log.info("judge: none in this process; code is queued for `python -m graders worker` processes")
    elif grader is None:
        # the database, the bank and the data folder stay out of every sandbox, even world-readable
        sandbox.keep_private(settings.database.parent, settings.questions_dir, default_data_dir())
        pool_grader = PoolGrader(GraderPool(max_workers=settings.grader_workers))
        grader = pool_grader
        await asyncio.to_thread(report_judge_tier)
    services = Services.build(
        store,
        bank if bank is not None else load_bank(settings),
        clock or SystemClock(),
        chat=chat,
        grader=grader,
        grace=timedelta(minutes=settings.daily_grace_minutes),
        cooldown=Cooldown(settings.command_burst, settings.commands_per_minute) if cooldown else None,
        review_model=review_model(settings),
        cards_dir=None if store.files_dir else default_data_dir() / "cards",
        review_settings=ReviewSettings(member_daily=settings.llm_member_daily,
                                       community_daily=settings.llm_community_daily,
                                       timeout_s=float(settings.llm_timeout_s)),
        queue_wait_s=queue_wait_s,
    )
    return App(settings=settings, store=store, services=services, grader=pool_grader)
