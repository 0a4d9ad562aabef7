"""Picture cards: `/card stats [member]` and `/card leaderboard [period] [track]` as PNG images.

Decisions:
- Separate `/card ...` commands rather than a flag on `/stats` and `/leaderboard`: the text replies
  stay as they are, and a card is one word away. The reply is a `Message` whose `image` is the PNG's
  path: Discord and Slack attach the file, the console prints where it was saved.
- matplotlib is an optional extra (`pip install 'onsite[cards]'`), imported lazily inside the
  render functions with the Agg canvas (no display, no pyplot global state, safe in a worker
  thread). Without it the card commands reply with a clear message naming the extra.
- The stats card shows per-track progress (attempted vs solved, accuracy), points over time
  (cumulative) and an activity calendar of the last 16 weeks (questions solved per local day, the
  streak in the title). The leaderboard card shows the period's top 10 as bars and the top 5's
  points over the period (with a track, that track's points), each total held to the end of the
  last day and the axis at least a week wide, so its day labels never repeat one date.
- Theme: the card carries its own background, a mid-dark slate with light text and a mid-tone
  palette, so it reads the same on light and dark chat themes (no transparent edges that vanish).
- Files go to the data directory's `cards/` folder (next to the database) with a unique name;
  cards older than a day are deleted when a new one is rendered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.clock import Clock
from bot.core.errors import Conflict, NotFound, shown
from bot.core.leaderboard import PAGE_SIZE, Leaderboard, period_key
from bot.core.messages import Message
from bot.core.models import SOLVED_VERDICTS, TRACK_LABELS, TRACKS, Caller, Member, TrackStats
from bot.core.ports import Store

EXTRA_HINT = "Picture cards need matplotlib, the optional `cards` extra: pip install 'onsite[cards]'."
KEEP_S = 24 * 3600
CALENDAR_WEEKS = 16

BACKGROUND = "#2b3038"
PANEL = "#333a45"
TEXT = "#eceff3"
MUTED = "#a3acb8"
GRID = "#4a5260"
TRACK_COLOURS = {"coding": "#5b9bd5", "ml-coding": "#a085d6", "ml-theory": "#e3a244",
                 "system-design": "#4fb39a", "behavioral": "#e0798b", "sql": "#c9b458"}
CALENDAR_LEVELS = ("#3d4451", "#2f7a55", "#3fa26c", "#5cc98a", "#9be6b5")
LINE_COLOURS = ("#5b9bd5", "#e3a244", "#4fb39a", "#e0798b", "#a085d6")


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class StatsCardData:
    name: str
    points: int
    rank: int | None
    streak: int
    best_streak: int
    tracks: Sequence[TrackStats]
    activity: Mapping[date, int]  # local day -> questions solved
    points_over_time: Sequence[tuple[datetime, int]]  # ledger entries, oldest first
    today: date


@dataclass(frozen=True)
class LeaderboardCardData:
    title: str
    rows: Sequence[tuple[str, int]]  # (name, points), best first
    series: Mapping[str, Sequence[tuple[datetime, int]]]  # name -> ledger entries in the period


def _figure(width: float, height: float) -> Any:
    """A figure on the Agg canvas (imported here: matplotlib is optional)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120, facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    return fig


def _style(ax: Any, title: str) -> None:
    ax.set_facecolor(PANEL)
    ax.set_title(title, color=TEXT, fontsize=11, loc="left", pad=8, fontweight="bold")
    ax.tick_params(colors=MUTED, labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(GRID)


def _cumulative(entries: Sequence[tuple[datetime, int]], start: datetime | None = None) -> tuple[list[datetime], list[int]]:
    xs: list[datetime] = [start] if start is not None else []
    ys: list[int] = [0] if start is not None else []
    total = 0
    for at, pts in entries:
        total += pts
        xs.append(at)
        ys.append(total)
    return xs, ys


def render_stats_card(data: StatsCardData, path: Path) -> Path:
    fig = _figure(8.0, 6.4)
    grid = fig.add_gridspec(3, 2, height_ratios=(0.35, 1.6, 1.25), hspace=0.55, wspace=0.28,
                            left=0.18, right=0.97, top=0.95, bottom=0.05)
    head = fig.add_subplot(grid[0, :])
    head.axis("off")
    rank = f"#{data.rank}" if data.rank else "unranked"
    head.text(0.0, 0.75, data.name, color=TEXT, fontsize=18, fontweight="bold", transform=head.transAxes, va="center")
    head.text(0.0, 0.0, f"{data.points} points  ·  rank {rank}  ·  streak {data.streak} day(s), best {data.best_streak}",
              color=MUTED, fontsize=10, transform=head.transAxes, va="center")

    # per-track progress: attempted (pale) and solved (colour), accuracy at the end of the bar
    ax = fig.add_subplot(grid[1, 0])
    _style(ax, "Progress per track")
    by_track = {t.track: t for t in data.tracks}
    labels = [TRACK_LABELS[t] for t in TRACKS]
    attempted = [by_track[t].attempts if t in by_track else 0 for t in TRACKS]
    solved = [by_track[t].solved if t in by_track else 0 for t in TRACKS]
    ypos = list(range(len(TRACKS)))[::-1]
    colours = [TRACK_COLOURS[t] for t in TRACKS]
    ax.barh(ypos, attempted, color=GRID, height=0.6)
    ax.barh(ypos, solved, color=colours, height=0.6)
    ax.set_yticks(ypos, labels, color=TEXT, fontsize=9)
    top = max([*attempted, 1])
    ax.set_xlim(0, top * 1.45)
    for y, a, s in zip(ypos, attempted, solved, strict=True):
        text = f"{s}/{a} · {s / a:.0%}" if a else "not tried"
        ax.text(max(a, s) + top * 0.04, y, text, color=TEXT if a else MUTED, fontsize=8, va="center")
    ax.xaxis.get_major_locator().set_params(integer=True)

    # points over time
    ax = fig.add_subplot(grid[1, 1])
    _style(ax, "Points over time")
    if data.points_over_time:
        xs, ys = _cumulative(data.points_over_time, data.points_over_time[0][0] - timedelta(hours=12))
        end = xs[-1].replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        xs.append(end)
        ys.append(ys[-1])  # the total holds to the end of the last day
        ax.step(xs, ys, where="post", color=LINE_COLOURS[0], linewidth=2)
        ax.fill_between(xs, ys, step="post", color=LINE_COLOURS[0], alpha=0.25)
        ax.set_ylim(0, max(ys) * 1.15 + 1)
        ax.set_xlim(min(xs[0], end - timedelta(days=7)), end)  # at least a week, so one day is not a wall
        import matplotlib.dates as mdates

        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=4))
    else:
        ax.text(0.5, 0.5, "No points yet", color=MUTED, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.grid(axis="y", color=GRID, linewidth=0.6)

    # activity calendar: columns are weeks (Monday first), rows are weekdays
    ax = fig.add_subplot(grid[2, :])
    _style(ax, f"Activity · last {CALENDAR_WEEKS} weeks · streak {data.streak} day(s)")
    first_monday = data.today - timedelta(days=data.today.weekday() + 7 * (CALENDAR_WEEKS - 1))
    from matplotlib.patches import Rectangle

    for week in range(CALENDAR_WEEKS):
        for weekday in range(7):
            day = first_monday + timedelta(days=7 * week + weekday)
            if day > data.today:
                continue
            count = data.activity.get(day, 0)
            colour = CALENDAR_LEVELS[min(count, len(CALENDAR_LEVELS) - 1)]
            ax.add_patch(Rectangle((week + 0.08, 6 - weekday + 0.08), 0.84, 0.84, color=colour,
                                   ec=TEXT if day == data.today else colour, linewidth=1.2 if day == data.today else 0))
    ax.set_xlim(0, CALENDAR_WEEKS)
    ax.set_ylim(0, 7)
    ax.set_aspect("equal")
    ax.set_yticks([6.5, 4.5, 2.5, 0.5], ["Mon", "Wed", "Fri", "Sun"], color=MUTED, fontsize=8)
    month_ticks = [(w + 0.5, (first_monday + timedelta(days=7 * w)).strftime("%b")) for w in range(CALENDAR_WEEKS)
                   if w == 0 or (first_monday + timedelta(days=7 * w)).month != (first_monday + timedelta(days=7 * w - 7)).month]
    ax.set_xticks([t for t, _ in month_ticks], [m for _, m in month_ticks], color=MUTED, fontsize=8)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_facecolor(BACKGROUND)
    fig.savefig(path, format="png", facecolor=BACKGROUND)
    return path


def render_leaderboard_card(data: LeaderboardCardData, path: Path) -> Path:
    fig = _figure(8.0, 5.6)
    grid = fig.add_gridspec(2, 1, height_ratios=(1.5, 1.0), hspace=0.4, left=0.2, right=0.95, top=0.88, bottom=0.08)
    fig.suptitle(data.title, color=TEXT, fontsize=15, fontweight="bold", x=0.03, ha="left")
    ax = fig.add_subplot(grid[0])
    _style(ax, "Top 10")
    if data.rows:
        names = [f"{i}. {n}" for i, (n, _) in enumerate(data.rows, start=1)]
        values = [p for _, p in data.rows]
        ypos = list(range(len(names)))[::-1]
        ax.barh(ypos, values, color=[LINE_COLOURS[i % len(LINE_COLOURS)] for i in range(len(values))], height=0.65)
        ax.set_yticks(ypos, names, color=TEXT, fontsize=9)
        ax.set_xlim(0, max(values) * 1.18 + 1)
        for y, v in zip(ypos, values, strict=True):
            ax.text(v + max(values) * 0.02, y, f"{v} pts", color=TEXT, fontsize=8, va="center")
    else:
        ax.text(0.5, 0.5, "No points yet in this period", color=MUTED, ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xticks([])
    ax = fig.add_subplot(grid[1])
    _style(ax, "Points over the period (top 5)")
    plotted = False
    lines = [(i, name, entries) for i, (name, entries) in enumerate(list(data.series.items())[:5]) if entries]
    if lines:  # each total holds to the end of the last day; at least a week, so each day label is one day
        end = max(e[-1][0] for _, _, e in lines).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        start = min(e[0][0] for _, _, e in lines) - timedelta(hours=6)
        for i, name, entries in lines:
            xs, ys = _cumulative(entries, entries[0][0] - timedelta(hours=6))
            xs.append(end)
            ys.append(ys[-1])
            ax.step(xs, ys, where="post", color=LINE_COLOURS[i % len(LINE_COLOURS)], linewidth=2, label=name)
        ax.set_xlim(min(start, end - timedelta(days=7)), end)
        plotted = True
    if plotted:
        import matplotlib.dates as mdates

        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=5))
        legend = ax.legend(loc="upper left", fontsize=8, frameon=False)
        for text in legend.get_texts():
            text.set_color(TEXT)
        ax.grid(axis="y", color=GRID, linewidth=0.6)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.savefig(path, format="png", facecolor=BACKGROUND)
    return path


class Cards:
    """Builds the data for a card from the store and renders it in a worker thread."""

    def __init__(self, store: Store, leaderboard: Leaderboard, clock: Clock, directory: Path) -> None:
        self.store = store
        self.leaderboard = leaderboard
        self.clock = clock
        self.directory = directory

    def _path(self, kind: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - KEEP_S
        for old in self.directory.glob("*.png"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:
                pass
        return self.directory / f"{kind}-{self.clock.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}.png"

    @staticmethod
    def _require() -> None:
        if not matplotlib_available():
            raise Conflict(EXTRA_HINT)

    async def stats(self, caller: Caller, member: Member | None = None) -> Message:
        self._require()
        member = member or caller.member
        community = caller.community
        stats = await self.leaderboard.member_stats(community, member)
        tz = ZoneInfo(member.timezone or community.timezone)
        activity: dict[date, set[str]] = {}
        for r in await self.store.member_submissions(member.id):
            if str(r["verdict"]) in SOLVED_VERDICTS:
                day = datetime.fromisoformat(r["created_at"]).astimezone(tz).date()
                activity.setdefault(day, set()).add(str(r["question_id"]))
        history = (await self.store.points_history([member.id]))[member.id]
        data = StatsCardData(name=member.display_name, points=stats.points, rank=stats.rank, streak=stats.streak,
                             best_streak=stats.best_streak, tracks=stats.tracks,
                             activity={d: len(q) for d, q in activity.items()}, points_over_time=history,
                             today=self.clock.now().astimezone(tz).date())
        path = await asyncio.to_thread(render_stats_card, data, await asyncio.to_thread(self._path, "stats"))
        solved = sum(t.solved for t in stats.tracks)
        return Message(title=f"Stats card · {member.display_name}",
                       body=f"{stats.points} points, {solved} solved, streak {stats.streak} day(s).",
                       image=str(path), ephemeral=member.id == caller.member.id)

    async def leaderboard_card(self, caller: Caller, period: str = "week", track: str | None = None) -> Message:
        self._require()
        community = caller.community
        key = period_key(period, community, self.clock.now())
        rows = await self.store.leaderboard(community.id, period=key, track=track, limit=PAGE_SIZE)
        since = _period_start(period, community.timezone, self.clock.now())
        # with a track, the lines sum that track's ledger entries, as its standings do
        history = await self.store.points_history([r.member_id for r in rows[:5]], since=since, track=track)
        series = {r.display_name: history.get(r.member_id, []) for r in rows[:5]}
        scope = {"week": "This week", "month": "This month", "all": "All time"}[period]
        title = f"Leaderboard · {scope}" + (f" · {TRACK_LABELS[track]}" if track else "") + f" · {community.name}"
        data = LeaderboardCardData(title=title, rows=[(r.display_name, r.points) for r in rows], series=series)
        path = await asyncio.to_thread(render_leaderboard_card, data, await asyncio.to_thread(self._path, "leaderboard"))
        if not rows:
            body = "No points yet in this period."
        else:
            body = f"Leader: {rows[0].display_name} with {rows[0].points} points."
        return Message(title=title, body=body, image=str(path), kind="leaderboard")


def _period_start(period: str, timezone: str, now: datetime) -> datetime | None:
    """The UTC start of the current week or month in the community's timezone (None for all time)."""
    if period == "all":
        return None
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone).date()
    first = local - timedelta(days=local.weekday()) if period == "week" else local.replace(day=1)
    return datetime(first.year, first.month, first.day, tzinfo=zone)


async def find_member(store: Store, caller: Caller, name: str | None) -> Member | None:
    if not name:
        return None
    found = await store.find_member(caller.community.id, name.lstrip("@"))
    if found is None:
        raise NotFound(f"No member called {shown(name)} in {caller.community.name}.")
    return found
