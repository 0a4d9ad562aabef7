"""The embedded default: a local community in the terminal, with no tokens and no network.

- On a terminal: a prompt with line editing and history (readline), replies rendered readably.
- When stdin is not a terminal: one command per line (blank lines and `#` comments skipped), every
  reply printed, exit 0 at end of input. Each command finishes before the next line is read.
- `--json`: every message as one JSON object per line: the `Message` fields plus `to` (`reply`,
  `channel:#name`, `dm:NAME` or `space:REF`).
- The console's own user, before any `/as`, is the community's admin; `/as NAME` acts as another
  member (created on first use, an ordinary member). `/admin clock ISO-TIME` moves the clock the
  whole core reads; a time without an offset is read in the community's timezone.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.app import App, build_app
from bot.config import Settings
from bot.core.clock import AdjustableClock
from bot.core.commands import Arg, Command, Context, core_table, dispatch_line
from bot.core.errors import Conflict, NotFound, UsageError
from bot.core.messages import Message, error
from bot.core.models import Caller, Community, Member
from bot.core.ports import Grader
from bot.core.submissions import human_size

PLATFORM = "console"
COMMUNITY_ID = "local"
BOLD, DIM, RED, CYAN, RESET = "\033[1m", "\033[2m", "\033[31m", "\033[36m", "\033[0m"


def render_text(message: Message, *, where: str = "reply", color: bool = False) -> str:
    """A readable, plain rendering: where it goes, title, body, fields, code, buttons, footer."""

    def style(text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if color else text

    def md(text: str) -> str:
        """On a terminal, **bold** becomes bold, `code` cyan and a fenced block its lines between two
        rules: no Markdown mark is printed there. In plain output (a pipe, a file) the Markdown stays."""
        if not color:
            return text
        text = re.sub(r"```[\w+-]*\n?(.*?)\n?```", lambda m: f"{rule}\n{m.group(1)}\n{rule}", text, flags=re.S)
        text = re.sub(r"`([^`\n]+)`", lambda m: style(m.group(1), CYAN), text)
        return re.sub(r"\*\*(.+?)\*\*", lambda m: style(m.group(1), BOLD), text)

    rule = style("─" * 24, DIM)

    lines: list[str] = []
    if where != "reply":
        lines.append(style(f"[{where}]", DIM))
    if message.is_error:
        lines.append(style("error: ", RED) + md(message.body))
        if message.footer:
            lines.append(md(message.footer))
        return "\n".join(lines)
    if message.title:
        lines.append(style(message.title, BOLD))
        lines.append(style("─" * min(len(message.title), 72), DIM))
    if message.body:
        lines.append(md(message.body.rstrip()))
    for f in message.fields:
        value = md(f.value.rstrip()).replace("\n", "\n    ")
        lines.append(f"  {style(f.name, BOLD)}: {value}" if "\n" not in f.value else f"  {style(f.name, BOLD)}:\n    {value}")
    if message.code:
        lines.append(md(f"```{message.code_language}\n{message.code.rstrip()}\n```"))
    if message.buttons:
        lines.append("  ".join(f"[{b.label}]" for b in message.buttons))
    if message.image:
        lines.append(f"(image saved to {message.image})")
    if message.footer:
        lines.append(style(md(message.footer), DIM))
    return "\n".join(lines)


class Output:
    """Where everything the bot says is printed: text for people, JSON lines for scripts."""

    def __init__(self, stream: TextIO, *, as_json: bool = False, color: bool = False) -> None:
        self.stream = stream
        self.as_json = as_json
        self.color = color

    def emit(self, message: Message, where: str = "reply") -> None:
        if self.as_json:
            self.stream.write(json.dumps({"to": where, **message.to_dict()}, ensure_ascii=False) + "\n")
        else:
            self.stream.write(render_text(message, where=where, color=self.color) + "\n\n")
        self.stream.flush()


class ConsoleChat:
    """The `Chat` port for the console: posts, DMs and pair spaces are printed with where they go."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self._refs = 0

    def _ref(self, prefix: str) -> str:
        self._refs += 1
        return f"{prefix}-{self._refs}"

    async def post(self, community: Community, channel: str, message: Message, *, key: str = "") -> str:
        self.output.emit(message, f"space:{channel}" if channel.startswith("space-") else f"channel:#{channel}")
        return self._ref("post")

    async def send_dm(self, member: Member, message: Message, *, key: str = "") -> None:
        self.output.emit(message, f"dm:{member.display_name}")

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        ref = self._ref("space")
        names = ", ".join(m.display_name for m in members)
        self.output.emit(Message(title=title, body=f"A private space for {names}."), f"space:{ref}")
        return ref


def default_name() -> str:
    name = os.environ.get("USER") or os.environ.get("USERNAME") or "you"
    return name if name != "root" else "admin"


async def read_local_file(path: str, max_bytes: int) -> str:
    """The console's `--file`: a local text file, refused before reading when it is too big."""
    return await asyncio.to_thread(_read_local_file, path, max_bytes)


def _read_local_file(path: str, max_bytes: int) -> str:
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
    except OSError:
        raise NotFound(f"No file at {path}.") from None
    if not file.is_file():
        raise UsageError(f"{path} is not a file.")
    if size > max_bytes:
        raise UsageError(f"{path} is {human_size(size)}; the limit is {human_size(max_bytes)}.")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text.") from None


class Console:
    """One local community and the member typing into it."""

    def __init__(self, app: App, output: Output, *, name: str | None = None) -> None:
        self.app = app
        self.output = output
        self.founder = (name or default_name()).strip()
        self.caller: Caller | None = None
        self.watermark = app.services.clock.now()
        self.catch_up = False
        self.table = core_table().extended(self._console_commands())

    # -- set-up ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create (or open) the local community and make the console's own user its admin."""
        settings = self.app.settings
        store = self.app.services.store
        now = self.app.services.clock.now()
        community = await store.ensure_community(
            PLATFORM, COMMUNITY_ID, "Local community", now=now, timezone=settings.timezone,
            post_time=settings.post_time, channel="daily",
        )
        member = await store.ensure_member(community.id, self.founder.lower(), self.founder, now=now, is_admin=True)
        if not member.is_admin:
            member = await store.update_member(member.id, is_admin=True)
        self.caller = Caller(member, community, is_admin=True)
        self.watermark = now

    async def _refresh_caller(self) -> Caller:
        """The caller as stored now: settings, names and an erasure change between commands."""
        assert self.caller is not None
        store = self.app.services.store
        community = await store.get_community(self.caller.community.id)
        member = await store.get_member(self.caller.member.id)
        assert community is not None and member is not None
        self.caller = Caller(member, community, self.caller.is_admin)
        return self.caller

    # -- console-only commands -------------------------------------------------------------------

    def _console_commands(self) -> list[Command]:
        return [
            Command(
                "as",
                "Act as another member of the local community (created on first use).",
                self._cmd_as,
                (Arg("name", "the member's name", required=True),),
                platforms=frozenset({PLATFORM}),
                examples=("/as alice",),
            ),
            Command(
                "admin clock",
                "Move the clock the whole bot reads, so schedules can be shown without waiting.",
                self._cmd_clock,
                (Arg("time", "ISO time, e.g. 2026-11-23T09:05 (community timezone) or with +00:00", required=True),),
                admin=True,
                platforms=frozenset({PLATFORM}),
                examples=("/admin clock 2026-11-23T09:05",),
            ),
        ]

    async def _cmd_as(self, ctx: Context, args: Mapping[str, Any]) -> Message:
        name = args["name"].lstrip("@")
        if not name or len(name) > 64 or any(c in name for c in "\n\t"):
            raise UsageError("A member name is 1 to 64 characters on one line.")
        store = self.app.services.store
        member = await store.ensure_member(
            ctx.caller.community.id, name.lower(), name, now=self.app.services.clock.now()
        )
        self.caller = Caller(member, ctx.caller.community, is_admin=member.is_admin)
        role = "an admin" if member.is_admin else "a member"
        return Message(body=f"You are now {member.display_name}, {role} of {ctx.caller.community.name}.")

    async def _cmd_clock(self, ctx: Context, args: Mapping[str, Any]) -> Message:
        clock = self.app.services.clock
        if not isinstance(clock, AdjustableClock):
            raise Conflict("This clock cannot be moved.")
        text = args["time"]
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(f"{text!r} is not an ISO time such as 2026-11-23T09:05.") from None
        zone = ZoneInfo(ctx.caller.community.timezone)
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=zone)
        clock.set(instant)
        self.catch_up = True
        local = clock.now().astimezone(zone)
        return Message(body=f"Clock set to {local:%a %d %b %Y %H:%M} {ctx.caller.community.timezone}.")

    # -- running ---------------------------------------------------------------------------------

    async def handle(self, line: str) -> Message | None:
        """Run one line and print its reply; blank lines and comments do nothing."""
        text = line.strip()
        if not text or text.startswith("#"):
            return None
        caller = await self._refresh_caller()
        ctx = Context(self.app.services, caller, self.table, PLATFORM, read_local_file)
        try:
            reply = await dispatch_line(ctx, text)
        except Exception:  # a bug of ours: the member gets a short reply, the traceback goes to a file
            reply = error(f"Something went wrong on our side; the details are in {self._log_crash(text)}. "
                          "Please try again.")
        self.output.emit(reply)
        await self._safe_tick()
        return reply

    async def _safe_tick(self) -> None:
        try:
            await self.tick()
        except Exception:
            self._log_crash("(scheduled work)")

    def _log_crash(self, what: str) -> Path:
        """Append the current exception's traceback to `console-errors.log` beside the database."""
        path = self.app.settings.database.parent / "console-errors.log"
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {datetime.now(UTC).isoformat(timespec='seconds')} {what[:200]!r}\n{traceback.format_exc()}\n")
        return path

    async def tick(self) -> None:
        """Print what fell due since the last tick; right after `/admin clock`, everything due at the
        new time within its grace window (as a bot restarting at that time would)."""
        now = self.app.services.clock.now()
        since = None if self.catch_up else min(self.watermark, now)
        self.catch_up = False
        await self.app.services.tick(since=since)
        self.watermark = self.app.services.clock.now()

    async def _tick_forever(self, every_s: float = 30.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self._safe_tick()

    async def run_script(self, lines: Iterable[str]) -> None:
        for line in lines:
            await self.handle(line)

    async def run_interactive(self, history: Path | None = None) -> None:
        """A prompt with line editing and history; Ctrl-D or /quit leaves."""
        try:
            import readline
        except ImportError:  # pragma: no cover - Windows without pyreadline
            readline = None  # type: ignore[assignment]
        if readline is not None and history is not None:
            try:
                readline.read_history_file(history)
            except OSError:
                pass
            readline.set_history_length(1000)
        assert self.caller is not None
        self.output.emit(
            Message(
                title="Onsite console",
                body=(
                    f"{self.caller.community.name}, you are {self.caller.member.display_name} (admin). "
                    "Type /help for the commands, /quit or Ctrl-D to leave."
                ),
            )
        )
        await self.tick()
        await self.handle("/daily")
        ticker = asyncio.create_task(self._tick_forever())
        try:
            while True:
                assert self.caller is not None
                prompt = f"onsite ({self.caller.member.display_name})> "
                try:
                    line = await asyncio.to_thread(input, prompt)
                except EOFError:
                    print()
                    break
                if line.strip() in ("/quit", "/exit", "quit", "exit"):
                    break
                await self.handle(line)
        finally:
            ticker.cancel()
            if readline is not None and history is not None:
                try:
                    history.parent.mkdir(parents=True, exist_ok=True)
                    readline.write_history_file(history)
                except OSError:
                    pass


async def run_console(
    settings: Settings,
    *,
    name: str | None,
    as_json: bool,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    grader: Grader | None = None,
) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty() and not as_json
    output = Output(stdout, as_json=as_json, color=interactive and stdout.isatty())
    app = await build_app(settings, clock=AdjustableClock(), chat=ConsoleChat(output), grader=grader)
    try:
        console = Console(app, output, name=name)
        await console.start()
        if interactive:
            await console.run_interactive(settings.database.parent / "console_history")
        else:
            await console.run_script(stdin)
    finally:
        await app.close()
    return 0

