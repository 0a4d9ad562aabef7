"""The embedded default: a local community in the terminal, with no tokens and no network.

- On a terminal: a prompt with line editing and history (readline), replies rendered readably.
  readline runs in the main thread, so Ctrl-C reaches it: it drops the line being typed (or the
  code block being pasted) and shows a new prompt; Ctrl-D on an empty prompt (or /quit) leaves. The
  bot itself runs on an event loop in a second thread, so scheduled posts still print while the
  prompt waits. Ctrl-C while a command runs does not stop it (its writes are never cut in half).
- When stdin is not a terminal: one command per line (blank lines and `#` comments skipped), every
  reply printed, exit 0 at end of input. Each command finishes before the next line is read.
- Pasted code: a line whose text after the command opens a ``` fence (`/submit ID ```python`) goes
  on until the line that closes it (a line ending in ```), on a terminal with a `... ` prompt; the
  lines in between (blank lines and `#` comments included) are the command's free-text argument, as
  they are. A fence still open at the end of the input is an error and nothing of it runs; a block
  with no command in front of it is refused whole, never run line by line. A whole remainder in
  single-line fences (```code``` or `B`) is what is inside them.
- `--json`: every message as one JSON object per line: the `Message` fields plus `to` (`reply`,
  `channel:#name`, `dm:NAME` or `space:REF`).
- The console's own user (`--as NAME`, else the login name) is the local community's admin for that
  run only: at start it becomes the admin and whoever was the admin of an earlier run is an ordinary
  member again (a note on stderr says so when `--as` chose the admin; on a terminal the banner does).
  `/as NAME` acts as another member (created on first use, an ordinary member; switching back to the
  run's own user gives the admin rights back). Names are matched case-insensitively and a switch
  never renames anyone: the stored display name stays (an erased member's name comes back).
  `/admin clock ISO-TIME` moves the clock the whole core reads; a time without an offset is read in
  the community's timezone.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
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
from bot.core.privacy import ERASED_NAME
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
        self._lock = threading.Lock()  # on a terminal, the prompt's thread and the bot's both print

    def emit(self, message: Message, where: str = "reply") -> None:
        if self.as_json:
            text = json.dumps({"to": where, **message.to_dict()}, ensure_ascii=False) + "\n"
        else:
            text = render_text(message, where=where, color=self.color) + "\n\n"
        with self._lock:
            self.stream.write(text)
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


FENCE = "```"
_LANGUAGE = re.compile(r"[A-Za-z0-9_+-]*")
QUIT = ("/quit", "/exit", "quit", "exit")


def fence_opening(line: str) -> tuple[str, str] | None:
    """`/submit ID ```python`: the command in front of a fence left open, and what follows the fence on
    that line when it is code rather than a language tag; None when the line opens no block."""
    text = line.rstrip("\r\n")
    if text.count(FENCE) % 2 == 0 or text.lstrip().startswith("#"):
        return None
    at = text.rindex(FENCE)
    after = text[at + len(FENCE):]
    return text[:at].strip(), "" if _LANGUAGE.fullmatch(after.strip()) else after


def fence_closing(line: str) -> str | None:
    """The code on a line that closes a block (a line ending in ```), or None when it does not close it."""
    text = line.rstrip()
    return text[: -len(FENCE)] if text.endswith(FENCE) else None


def unclosed(opening: str, number: int | None = None) -> Message:
    where = f" opened on line {number}" if number is not None else ""
    return error(f"The code block{where} ({opening.strip()[:80]}) was never closed with ```; nothing was run.")


def read_block(first: str, lines: Iterator[str]) -> str | None:
    """The lines of a block up to its closing fence (the fence's own line included when it holds code);
    None when the lines end first."""
    body = [first] if first else []
    for line in lines:
        closing = fence_closing(line)
        if closing is not None:
            if closing.strip():
                body.append(closing)
            return "\n".join(body)
        body.append(line.rstrip("\r\n"))
    return None


class Console:
    """One local community and the member typing into it."""

    def __init__(self, app: App, output: Output, *, name: str | None = None) -> None:
        self.app = app
        self.output = output
        self.founder = (name or default_name()).strip()
        self.founder_chosen = name is not None  # --as NAME: the run's admin was chosen on the command line
        self.founder_id: int | None = None
        self.caller: Caller | None = None
        self.watermark = app.services.clock.now()
        self.catch_up = False
        self.table = core_table().extended(self._console_commands())

    # -- set-up ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create (or open) the local community and make the console's own user its admin for this run."""
        settings = self.app.settings
        store = self.app.services.store
        now = self.app.services.clock.now()
        community = await store.ensure_community(
            PLATFORM, COMMUNITY_ID, "Local community", now=now, timezone=settings.timezone,
            post_time=settings.post_time, channel="daily",
        )
        member = await self._member_named(community, self.founder)
        # admin for this run only: the stored flag (who gets the bot's admin DMs) follows the run
        for other in await store.admins(community.id):
            if other.id != member.id:
                await store.update_member(other.id, is_admin=False)
        if not member.is_admin:
            member = await store.update_member(member.id, is_admin=True)
        self.founder_id = member.id
        self.caller = Caller(member, community, is_admin=True)
        self.watermark = now

    def admin_note(self) -> str:
        assert self.caller is not None
        return (f"{self.caller.member.display_name} is the admin of {self.caller.community.name} for this console "
                "run only; /as NAME acts as an ordinary member.")

    async def _member_named(self, community: Community, name: str) -> Member:
        """The member of that name (any case), created on first use; an existing one is never renamed."""
        store = self.app.services.store
        key = name.lower()
        found = await store.find_member(community.id, key)
        if found is not None and found.external_id == key and found.display_name != ERASED_NAME:
            name = found.display_name
        return await store.ensure_member(community.id, key, name, now=self.app.services.clock.now())

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
                "Act as another member (created on first use; any case, nobody is renamed; your own name "
                "gives back this run's admin rights).",
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
        member = await self._member_named(ctx.caller.community, name)
        is_admin = member.id == self.founder_id
        self.caller = Caller(member, ctx.caller.community, is_admin=is_admin)
        community = ctx.caller.community.name
        if is_admin:
            return Message(body=f"You are now {member.display_name}, the admin of {community} for this console run.")
        return Message(body=f"You are now {member.display_name}, a member of {community}.")

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

    async def handle(self, line: str, block: str | None = None) -> Message | None:
        """Run one line (with the code block pasted after it) and print its reply; blank lines and
        comments do nothing."""
        text = line.strip()
        if block is None and (not text or text.startswith("#")):
            return None
        if block is not None and not text:
            reply = error("A code block needs a command in front of it, on the fence's line: "
                          "/submit <id> ```python; nothing was run.")
            self.output.emit(reply)
            return reply
        caller = await self._refresh_caller()
        ctx = Context(self.app.services, caller, self.table, PLATFORM, read_local_file)
        try:
            reply = await dispatch_line(ctx, text, block=block)
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
        numbered = enumerate(lines, start=1)
        rest = (line for _, line in numbered)
        for number, line in numbered:
            opened = fence_opening(line)
            if opened is None:
                await self.handle(line)
                continue
            block = read_block(opened[1], rest)
            if block is None:
                self.output.emit(unclosed(line, number))
                return
            await self.handle(opened[0], block)

    def prompt(self) -> str:
        assert self.caller is not None
        return f"onsite ({self.caller.member.display_name})> "

    async def open_prompt(self) -> None:
        """What a terminal shows first: who you are, what fell due, today's round; then the live ticker."""
        assert self.caller is not None
        self.output.emit(
            Message(
                title="Onsite console",
                body=(
                    f"{self.caller.community.name}, you are {self.caller.member.display_name} (the admin for this "
                    "console run). Type /help for the commands, /quit or Ctrl-D to leave. Paste code after "
                    "/submit <id> ```python, up to a closing ```."
                ),
            )
        )
        await self.tick()
        await self.handle("/daily")
        self._ticker = asyncio.create_task(self._tick_forever())

    async def close_prompt(self) -> None:
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)


def _continuation(prompt: str = "... ") -> Iterator[str]:
    """The lines of a pasted block, read at a continuation prompt, until Ctrl-D."""
    while True:
        try:
            yield input(prompt)
        except EOFError:
            return


def run_prompt(console: Console, call: Callable[[Coroutine[Any, Any, Any]], Any], out: TextIO,
               history: Path | None = None) -> None:
    """The prompt, in the main thread so that Ctrl-C reaches readline; `call` runs a coroutine on the
    bot's loop and waits for it. Ctrl-C drops the line (or block) being typed, Ctrl-D leaves."""
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
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            try:
                line = input(console.prompt())
                if line.strip() in QUIT:
                    return
                opened = fence_opening(line)
                if opened is None:
                    call(console.handle(line))
                    continue
                block = read_block(opened[1], _continuation())
                if block is None:
                    out.write("\n")
                    console.output.emit(unclosed(line))
                    continue
                call(console.handle(opened[0], block))
            except KeyboardInterrupt:  # the line (or block) being typed is dropped: a new prompt
                out.write("\n")
                out.flush()
            except EOFError:
                out.write("\n")
                return
    finally:
        signal.signal(signal.SIGINT, previous)
        if readline is not None and history is not None:
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history)
            except OSError:
                pass


def run_terminal(settings: Settings, *, name: str | None, grader: Grader | None = None) -> int:
    """The interactive console: the prompt in this (the main) thread, the bot on an event loop in another."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="onsite-console-bot", daemon=True)
    thread.start()
    out = sys.stdout

    def call(coro: Coroutine[Any, Any, Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        while True:
            try:
                return future.result()
            except KeyboardInterrupt:  # a command is never cut in half; it finishes first
                out.write("\n(still running; it finishes first)\n")
                out.flush()

    output = Output(out, color=out.isatty())
    try:
        app = call(build_app(settings, clock=AdjustableClock(), chat=ConsoleChat(output), grader=grader))
        console = Console(app, output, name=name)
        try:
            call(console.start())
            call(console.open_prompt())
            run_prompt(console, call, out, settings.database.parent / "console_history")
        finally:
            call(console.close_prompt())
            call(app.close())
    finally:
        call(_finish(loop))
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
    return 0


async def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """What `asyncio.run` does at its end: cancel what is left, close generators and the thread pool."""
    tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


async def run_console(
    settings: Settings,
    *,
    name: str | None,
    as_json: bool,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    grader: Grader | None = None,
) -> int:
    """Script mode: one command per line from `stdin` (pasted ``` blocks included), every reply printed."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    output = Output(stdout, as_json=as_json)
    app = await build_app(settings, clock=AdjustableClock(), chat=ConsoleChat(output), grader=grader)
    try:
        console = Console(app, output, name=name)
        await console.start()
        if console.founder_chosen:
            print(f"console: {console.admin_note()}", file=sys.stderr)
        await console.run_script(stdin)
    finally:
        await app.close()
    return 0


def console_main(settings: Settings, *, name: str | None, as_json: bool) -> int:
    """`python -m bot console`: the prompt on a terminal, else the script reader."""
    if sys.stdin.isatty() and not as_json:
        return run_terminal(settings, name=name)
    return asyncio.run(run_console(settings, name=name, as_json=as_json))
