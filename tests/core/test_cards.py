"""Picture cards: rendered for real with matplotlib, then the PNG is opened and checked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.core import cards
from bot.core.bank import Bank
from bot.core.cards import LeaderboardCardData, StatsCardData, render_leaderboard_card, render_stats_card
from bot.core.clock import FixedClock
from bot.core.commands import Context, core_table, dispatch_line
from bot.core.errors import Conflict
from bot.core.models import Caller, TrackStats
from bot.core.services import Services

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def pixels(path: Path) -> object:
    from matplotlib import image

    return image.imread(str(path))


def check_png(path: Path, width: int, height: int) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    data = pixels(path)
    assert data.shape[:2] == (height, width)  # type: ignore[attr-defined]
    # not a blank image: many distinct colours (bars, text, calendar cells)
    flat = data.reshape(-1, data.shape[2])  # type: ignore[attr-defined]
    assert len({tuple(p) for p in flat[:: max(1, len(flat) // 20000)].round(2)}) > 20


def test_stats_card_renders(tmp_path: Path) -> None:
    today = date(2026, 11, 23)
    start = datetime(2026, 10, 1, 9, tzinfo=UTC)
    data = StatsCardData(
        name="alice", points=123, rank=2, streak=4, best_streak=9,
        tracks=(TrackStats("coding", 10, 7), TrackStats("ml-theory", 12, 6), TrackStats("behavioral", 3, 3)),
        activity={today - timedelta(days=d): 1 + d % 4 for d in range(0, 60, 2)},
        points_over_time=[(start + timedelta(days=3 * i), 5 + i % 10) for i in range(18)],
        today=today,
    )
    path = render_stats_card(data, tmp_path / "stats.png")
    check_png(path, 960, 768)


def test_empty_cards_still_render(tmp_path: Path) -> None:
    empty = StatsCardData(name="new", points=0, rank=None, streak=0, best_streak=0, tracks=(), activity={},
                          points_over_time=[], today=date(2026, 11, 23))
    check_png(render_stats_card(empty, tmp_path / "empty.png"), 960, 768)
    board = LeaderboardCardData(title="Leaderboard · This week", rows=[], series={})
    check_png(render_leaderboard_card(board, tmp_path / "board.png"), 960, 672)


@pytest.mark.sqlite_only  # beside the database *file*
async def test_card_commands_save_pngs_beside_the_database(
    wired: Services, member: Caller, admin: Caller, bank: Bank, clock: FixedClock, tmp_path: Path
) -> None:
    await wired.tick()
    await wired.submissions.submit(member, "pair-sum-count", text=None, code=bank.get("pair-sum-count").reference)
    await wired.submissions.submit(member, "overfit-first-step", text="B", code=None)
    clock.advance(timedelta(days=1))
    await wired.tick()
    await wired.submissions.submit(admin, "mean-center", text=None, code=bank.get("mean-center").reference)

    table = core_table()
    own = await dispatch_line(Context(wired, member, table), "/card stats")
    assert own.title == "Stats card · Bob" and own.ephemeral and own.image is not None
    assert own.body.startswith("17 points, 2 solved")  # 10 + 5 early + 2 (theory practice)
    path = Path(own.image)
    assert path.parent == tmp_path / "cards"
    check_png(path, 960, 768)

    other = await dispatch_line(Context(wired, member, table), "/card stats Ada")
    assert other.title == "Stats card · Ada" and not other.ephemeral and other.image != own.image

    board = await dispatch_line(Context(wired, member, table), "/card leaderboard all")
    assert board.title == "Leaderboard · All time · Test guild" and board.body.startswith("Leader: ")
    assert board.image is not None
    check_png(Path(board.image), 960, 672)

    missing = await dispatch_line(Context(wired, member, table), "/card stats nobody")
    assert missing.is_error and "No member called 'nobody'" in missing.body


async def test_without_matplotlib_the_reply_names_the_extra(
    wired: Services, member: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cards, "matplotlib_available", lambda: False)
    with pytest.raises(Conflict, match=r"pip install 'onsite\[cards\]'"):
        await wired.cards.stats(member)
    reply = await dispatch_line(Context(wired, member, core_table()), "/card leaderboard")
    assert reply.is_error and "optional `cards` extra" in reply.body


def _has_colour(region: object, hex_colour: str) -> bool:
    import numpy as np

    want = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = np.asarray(region)[..., :3]
    return bool((np.abs(rgb - want).max(axis=-1) < 0.02).any())


async def test_a_track_leaderboard_card_draws_that_tracks_points_over_the_period(
    wired: Services, member: Caller, admin: Caller, bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    await wired.tick()
    await wired.submissions.submit(member, "pair-sum-count", text=None, code=bank.get("pair-sum-count").reference)
    await wired.submissions.submit(member, "overfit-first-step", text="B", code=None)  # another track's points
    drawn: list[LeaderboardCardData] = []

    def render(data: LeaderboardCardData, path: Path) -> Path:
        drawn.append(data)
        return render_leaderboard_card(data, path)

    monkeypatch.setattr(cards, "render_leaderboard_card", render)
    board = await dispatch_line(Context(wired, member, core_table()), "/card leaderboard week coding")
    assert board.title.startswith("Leaderboard · This week · Coding") and board.image is not None
    (data,) = drawn
    (name, points), = data.rows
    assert name == "Bob" and sum(p for _, p in data.series["Bob"]) == points  # the line sums what the row ranks
    lower = pixels(Path(board.image))[420:640, 160:]  # type: ignore[index]  # the "points over the period" panel
    assert _has_colour(lower, cards.LINE_COLOURS[0])  # a line is drawn in it, in the leader's colour


def test_points_over_the_period_has_one_label_per_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16 item 18: points earned within a few hours drew a panel whose date axis read
    "03 Dec, 03 Dec, 03 Dec" (hourly ticks in a day format). The axis spans at least a week, each
    label a different day, and every line holds its total to the end of the last day."""
    from matplotlib.figure import Figure

    drawn: list[Figure] = []
    save = Figure.savefig

    def keep(self: Figure, *args: object, **kwargs: object) -> None:
        drawn.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    morning = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    data = LeaderboardCardData(title="Leaderboard · This week · Coding", rows=[("ada", 15), ("bob", 5)],
                               series={"ada": [(morning, 10), (morning + timedelta(hours=3), 5)],
                                       "bob": [(morning + timedelta(hours=1), 5)]})
    render_leaderboard_card(data, tmp_path / "board.png")
    (fig,) = drawn
    panel = fig.axes[1]
    labels = [t.get_text() for t in panel.get_xticklabels() if t.get_text()]
    assert len(labels) >= 2 and len(labels) == len(set(labels)), labels
    lo, hi = panel.get_xlim()
    assert hi - lo >= 7  # days, in matplotlib's date numbers
    for line in panel.get_lines():
        assert line.get_xdata()[-1] == datetime(2026, 12, 4, tzinfo=UTC)  # to the end of the last day
