"""Data ownership: `/settings delete-my-data` erases what a member put into their community.

Decisions:
- Two steps through the neutral model, so every platform gets the same flow. The first call
  replies privately with the counts of what would go and a button whose command is
  `/settings delete-my-data confirm:<token>`; the same line typed by hand works where buttons do
  not (the console). Anything else after the command (a wrong, stale, someone else's or expired
  token) deletes nothing and says why.
- The token is random (`secrets.token_urlsafe`), shown only to the member, and only its SHA-256
  is stored (`erasure_requests`, one row per member, 10-minute expiry; asking again replaces it).
  Chosen over an HMAC of member id and expiry because the bot has no signing key to keep and
  rotate, and a stored row is single-use: the erasing transaction consumes it. The row is keyed by
  the member, so a token shown to someone else is not valid for you, and the confirm only ever
  erases the caller's own data anyway.
- One transaction (`Store.erase_member`) checks the token and deletes: submissions (code and written
  answers), votes on them and votes the member cast, ledger rows, STAR stories, mock feedback
  given and received, the mock opt-in, avoid-list entries in both directions, timers, study plans,
  practice history, grading jobs, and every outbox message addressed to them (pending ones must
  not go out; sent ones are copies of their private DMs). It then rebuilds the community's
  standings from the ledger, so the leaderboard no longer shows them and every other rank is exact.
  The ledger stays append-only for everyone else: migration 0008's trigger lets rows go only while
  a confirmed request for that member exists, which is only inside that transaction.
- The member row stays, anonymised: its display name becomes "Deleted member", timezone,
  leaderboard setting and last-seen time are cleared. Other members' mock groups keep their
  history (who they were grouped with, for their check-ins and for pairing), so the member's
  `mock_pair_members` rows stay, with their check-in and no-show marks cleared. The platform id
  is kept too, so someone who comes back is the same account starting from zero (their name
  returns with their next command on Discord and Slack, on the console with the next `/as` or
  start); their id, community, admin flag and join date are not data they contributed. Names in stored pairing reports are replaced by the anonymous name.
- Not touched: what others earned because of the member (feedback points of a partner, vote points
  an author got from their vote) belongs to those others; channel posts already sent (reveals
  naming first solvers, pair-space intros) live on the platform, which we cannot edit.
- Erasure is per community: the same person in another community is another member.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from bot.core.clock import Clock
from bot.core.errors import Conflict, Forbidden, NotFound, UsageError
from bot.core.messages import Button, Field, Message
from bot.core.models import Caller
from bot.core.ports import Store

COMMAND = "settings delete-my-data"
CONFIRM_TTL = timedelta(minutes=10)
ERASED_NAME = "Deleted member"
_TOKEN = re.compile(r"^(?:confirm:)?([A-Za-z0-9_-]{16,64})$")

# What the warning and the receipt list, in order: (count key, label).
LABELS: tuple[tuple[str, str], ...] = (
    ("submissions", "Code and answer submissions"),
    ("written_answers", "Written answers"),
    ("votes_received", "Votes on your written answers"),
    ("votes_cast", "Votes you cast"),
    ("ledger_rows", "Leaderboard point entries"),
    ("stories", "STAR stories"),
    ("feedback_given", "Mock feedback you gave"),
    ("feedback_received", "Mock feedback you received"),
    ("mock_optin", "Mock interview sign-up"),
    ("avoid_entries", "Avoid-list entries (yours and ones naming you)"),
    ("mock_checkins", "Mock check-ins and no-show reports (cleared)"),
    ("timers", "Timed attempts"),
    ("study_plans", "Study plans"),
    ("practice_history", "Practice history entries"),
    ("messages_pending", "Messages waiting to be sent to you"),
    ("messages_sent", "Copies of messages sent to you"),
    ("grading_jobs", "Code waiting for or past grading"),
    ("ai_reviews", "AI reviews of your answers and code"),
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def describe(counts: dict[str, int]) -> str:
    """One line per kind that has anything, so the member sees exactly what goes."""
    lines = []
    for key, label in LABELS:
        if counts.get(key, 0):
            extra = f" ({counts.get('points', 0)} points)" if key == "ledger_rows" else ""
            lines.append(f"- {label}: {counts[key]}{extra}")
    return "\n".join(lines) or "- Nothing: we hold no submissions, stories, feedback or points of yours."


class Privacy:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def delete_my_data(self, caller: Caller, confirm: str | None = None) -> Message:
        if confirm is None:
            return await self.warn(caller)
        return await self.confirm(caller, confirm)

    async def warn(self, caller: Caller) -> Message:
        """Counts of what would go, and a fresh token behind a button."""
        now = self.clock.now()
        counts = await self.store.member_data_counts(caller.member.id)
        token = secrets.token_urlsafe(12)
        await self.store.request_erasure(caller.member.id, token_hash(token), now=now, expires_at=now + CONFIRM_TTL)
        minutes = int(CONFIRM_TTL.total_seconds() // 60)
        return Message(
            title=f"Delete your data in {caller.community.name}?",
            body=("This permanently deletes everything below and cannot be undone. Your points leave the "
                  "leaderboard and the standings are recomputed without you. Your name is replaced by "
                  f"\"{ERASED_NAME}\" in mock groups you were part of.\n\n{describe(counts)}"),
            fields=(Field("To confirm", f"Press the button, or type `/{COMMAND} confirm:{token}` within "
                                        f"{minutes} minutes. Anything else keeps your data."),),
            buttons=(Button("Delete my data", COMMAND, f"confirm:{token}", style="danger"),),
            ephemeral=True,
        )

    async def confirm(self, caller: Caller, text: str) -> Message:
        match = _TOKEN.match(text.strip())
        if match is None:
            raise UsageError(f"Nothing was deleted. Run /{COMMAND} first; it shows what would be deleted and "
                             "how to confirm.")
        wanted = token_hash(match.group(1))
        pending = await self.store.erasure_request(caller.member.id)
        if pending is None:
            raise NotFound(f"Nothing was deleted: you have no deletion waiting for confirmation. Run /{COMMAND} "
                           "first.")
        if not hmac.compare_digest(str(pending["token_hash"]), wanted):
            raise Forbidden(f"Nothing was deleted: that confirmation is not your latest one. Run /{COMMAND} "
                            "again and use the code it shows you.")
        now = self.clock.now()
        if datetime.fromisoformat(str(pending["expires_at"])) <= now:
            raise Conflict(f"Nothing was deleted: that confirmation expired. Run /{COMMAND} again.")
        counts = await self.store.erase_member(caller.member.id, wanted, now=now, display_name=ERASED_NAME)
        if counts is None:  # replaced or used between the check and the transaction
            raise Conflict(f"Nothing was deleted: that confirmation is no longer valid. Run /{COMMAND} again.")
        return Message(
            title="Your data is deleted",
            body=f"Deleted from {caller.community.name}:\n{describe(counts)}",
            footer="The leaderboard was recomputed without you. Anything you do from now on starts a new record.",
            kind="success",
            ephemeral=True,
        )
