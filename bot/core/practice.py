"""`/practice [track]`: a question chosen for the member, aimed at their weakest area.

The rule, in order:

1. Accuracy is counted per distinct question from the member's own submissions: a question is
   *attempted* once they submitted to it and *solved* once any submission was accepted, correct or
   (for written answers) recorded. Tracks and topics are scored the same way.
2. Each track gets a smoothed accuracy `solved / (attempted + 1)`: the `+ 1` is a small prior, so an
   unattempted track counts as 0 and a single solve does not look like a perfect record.
3. Tracks are ranked by (smoothed accuracy, then more attempts first, then the track's position in
   the community's enabled tracks); the first with a question left wins. So a brand-new member gets
   their enabled tracks in order, a track they tried and failed comes before one they have not
   tried (same accuracy, more evidence that it is weak), and ties always break the same way.
   `/practice <track>` uses that track only (any track of the bank, enabled in the community or not).
4. A question is *left* when the member never submitted to it and it has never been a daily
   question in the community (dailies were shown to everyone and may already be revealed). Questions
   /practice has not offered them yet go first; when every question left was offered, the least
   offered ones are used again, so repeated `/practice` walks through a track instead of repeating.
5. Within the track, topics of those questions are ranked the same way (smoothed accuracy, more
   attempts first, name); among the topic's questions: easy before medium before hard, then by id.

Practice answers score half points (`scoring.py`); `/timed <id>` puts a clock on the same question.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from bot.core import views
from bot.core.bank import Bank
from bot.core.clock import Clock
from bot.core.errors import NotFound
from bot.core.messages import Message
from bot.core.models import DIFFICULTIES, SOLVED_VERDICTS, TRACK_LABELS, TRACKS, Caller, Question
from bot.core.ports import Store

PRIOR_ATTEMPTS = 1


@dataclass(frozen=True)
class Record:
    """Distinct questions attempted and solved in one track or topic."""

    attempted: int = 0
    solved: int = 0

    @property
    def smoothed(self) -> float:
        return self.solved / (self.attempted + PRIOR_ATTEMPTS)

    def describe(self) -> str:
        return "not tried yet" if self.attempted == 0 else f"{self.solved}/{self.attempted} solved"


@dataclass(frozen=True)
class Pick:
    question: Question
    track: str
    topic: str
    track_record: Record
    topic_record: Record


def records(rows: Iterable[Mapping[str, object]], bank: Bank) -> tuple[dict[str, Record], dict[str, Record]]:
    """(per track, per topic) records from a member's submissions; questions no longer in the bank
    still count for their track."""
    attempted: dict[str, str] = {}
    solved: set[str] = set()
    for r in rows:
        qid = str(r["question_id"])
        attempted.setdefault(qid, str(r["track"]))
        if str(r["verdict"]) in SOLVED_VERDICTS:
            solved.add(qid)
    tracks: dict[str, Record] = {}
    topics: dict[str, Record] = {}
    for qid, track in attempted.items():
        ok = int(qid in solved)
        t = tracks.get(track, Record())
        tracks[track] = Record(t.attempted + 1, t.solved + ok)
        if qid in bank:
            for topic in bank.get(qid).topics:
                p = topics.get(topic, Record())
                topics[topic] = Record(p.attempted + 1, p.solved + ok)
    return tracks, topics


def choose(
    bank: Bank,
    *,
    tracks: Sequence[str],
    track_records: Mapping[str, Record],
    topic_records: Mapping[str, Record],
    excluded: set[str],
    shown: Mapping[str, int],
) -> Pick | None:
    """The rule of the module docstring, as a pure function."""
    order = {t: i for i, t in enumerate(tracks)}
    ranked = sorted(tracks, key=lambda t: (track_records.get(t, Record()).smoothed,
                                           -track_records.get(t, Record()).attempted, order[t]))
    for track in ranked:
        left = [q for q in bank.by_track(track) if q.id not in excluded]
        if not left:
            continue
        fewest = min(shown.get(q.id, 0) for q in left)
        left = [q for q in left if shown.get(q.id, 0) == fewest]
        topics = sorted({topic for q in left for topic in q.topics},
                        key=lambda tp: (topic_records.get(tp, Record()).smoothed,
                                        -topic_records.get(tp, Record()).attempted, tp))
        topic = topics[0]
        pool = [q for q in left if topic in q.topics]
        question = min(pool, key=lambda q: (DIFFICULTIES.index(q.difficulty), q.id))
        return Pick(question, track, topic, track_records.get(track, Record()), topic_records.get(topic, Record()))
    return None


class Practice:
    def __init__(self, store: Store, bank: Bank, clock: Clock) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock

    async def pick(self, caller: Caller, track: str | None = None) -> Pick:
        member = caller.member
        rows = await self.store.member_submissions(member.id)
        track_records, topic_records = records(rows, self.bank)
        submitted = {str(r["question_id"]) for r in rows}
        excluded = submitted | await self.store.community_daily_ids(caller.community.id)
        if track is not None:
            tracks: Sequence[str] = (track,)
        else:
            tracks = [t for t in caller.community.tracks if t in TRACKS] or list(TRACKS)
        pick = choose(self.bank, tracks=tracks, track_records=track_records, topic_records=topic_records,
                      excluded=excluded, shown=await self.store.practice_shown(member.id))
        if pick is None:
            where = TRACK_LABELS.get(track, track) if track else "your tracks"
            raise NotFound(f"You have seen every question in {where}: nothing new to practise. "
                           "Try another track, or /daily for today's round.")
        await self.store.mark_practice_shown(member.id, pick.question.id, now=self.clock.now())
        return pick

    async def practice(self, caller: Caller, track: str | None = None) -> Message:
        """A question card for the member's weakest area, with why it was chosen."""
        pick = await self.pick(caller, track)
        label = TRACK_LABELS.get(pick.track, pick.track)
        reason = (f"Why this one: {'you asked for ' + label if track else label + ' is your weakest track'} "
                  f"({pick.track_record.describe()}), and within it topic **{pick.topic}** "
                  f"({pick.topic_record.describe()}). You have not submitted to this question yet.")
        card = views.question_card(pick.question, heading="Practice")
        return replace(card, body=f"{reason}\n\n{card.body}",
                       footer=f"Question id: {pick.question.id} · practice scores half points · "
                              f"put a clock on it: /timed {pick.question.id}",
                       ephemeral=True)
