"""One command table for every platform: name + args + caller -> service -> Message.

Adapters either hand over a whole line (`dispatch_line`, the console) or a command name with
already-split options (`dispatch`, Discord and Slack options). Both end in the same handler, so a
feature is written once. Domain errors become one-line private error replies naming what was
wrong, with the command's usage when the syntax was at fault.

Line syntax: `/name [sub] arg arg "quoted arg" --flag value`. A command's last argument may be
`rest`: it takes the remainder of the line verbatim (written answers keep their spacing).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core import views
from bot.core.errors import Forbidden, NotFound, OnsiteError, UnknownCommand, UsageError
from bot.core.leaderboard import PERIODS
from bot.core.messages import Field, Message, error
from bot.core.models import TRACKS, Caller
from bot.core.services import Services


@dataclass(frozen=True)
class Arg:
    """One argument. `kind` drives validation here and native pickers in the adapters."""

    name: str
    help: str
    required: bool = False
    kind: str = "text"  # text | int | choice | question | track | member | rest
    choices: tuple[str, ...] = ()
    flag: bool = False  # given as --name value

    def label(self) -> str:
        if self.flag:
            text = f"--{self.name} {self.name.upper()}"
        elif self.choices:
            text = "|".join(self.choices)
        else:
            text = self.name
        return f"<{text}>" if self.required else f"[{text}]"


@dataclass(frozen=True)
class Context:
    """Everything a handler sees: the services, who is calling, and the table (for /help)."""

    services: Services
    caller: Caller
    table: CommandTable
    platform: str = "console"


Handler = Callable[[Context, Mapping[str, Any]], Awaitable[Message]]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    admin: bool = False
    platforms: frozenset[str] | None = None  # None: everywhere
    examples: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        return " ".join([f"/{self.name}", *(a.label() for a in self.args)])

    @property
    def group(self) -> str | None:
        return self.name.split(" ", 1)[0] if " " in self.name else None


@dataclass
class CommandTable:
    commands: dict[str, Command] = field(default_factory=dict)

    def add(self, command: Command) -> None:
        if command.name in self.commands:
            raise ValueError(f"command /{command.name} registered twice")
        self.commands[command.name] = command

    def extended(self, extra: Iterable[Command]) -> CommandTable:
        table = CommandTable(dict(self.commands))
        for command in extra:
            table.add(command)
        return table

    def for_platform(self, platform: str) -> list[Command]:
        return [c for c in self.commands.values() if c.platforms is None or platform in c.platforms]

    def resolve(self, words: Sequence[str], platform: str) -> tuple[Command, int]:
        """The longest command name matching the first words; returns it and how many words it used."""
        available = {c.name: c for c in self.for_platform(platform)}
        for length in (2, 1):
            if len(words) >= length:
                name = " ".join(w.lower() for w in words[:length])
                if name in available:
                    return available[name], length
        typed = " ".join(words[:2]).lower() if words else ""
        if words and any(n.startswith(words[0].lower() + " ") for n in available):
            subs = sorted(n for n in available if n.startswith(words[0].lower() + " "))
            raise UnknownCommand(f"/{typed} is not a command. Try one of: {', '.join('/' + s for s in subs)}.")
        close = difflib.get_close_matches(words[0].lower() if words else "", list(available), n=1)
        hint = f" Did you mean /{close[0]}?" if close else ""
        raise UnknownCommand(f"Unknown command /{words[0] if words else ''}.{hint} Type /help for the list.")


# -- line parsing --------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|(\S+))')


def tokenize(text: str) -> list[tuple[str, int]]:
    """Words and quoted strings, each with the offset where it starts (so `rest` can take raw text)."""
    tokens: list[tuple[str, int]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            break
        start = match.start(match.lastindex or 3)
        if match.group(1) is not None:
            tokens.append((re.sub(r"\\(.)", r"\1", match.group(1)), start - 1))
        elif match.group(2) is not None:
            tokens.append((match.group(2), start - 1))
        else:
            word = match.group(3)
            if word[0] in "\"'":
                raise UsageError(f"Unbalanced quote in {word!r}.")
            tokens.append((word, start))
        pos = match.end()
    return tokens


def bind_line(command: Command, text: str, tokens: list[tuple[str, int]]) -> dict[str, Any]:
    """Match the words after the command name to its arguments."""
    values: dict[str, Any] = {}
    flags = {a.name: a for a in command.args if a.flag}
    positional = [a for a in command.args if not a.flag]
    i = 0
    index = 0
    while i < len(tokens):
        word, offset = tokens[i]
        is_flag = word.startswith("--") and len(word) > 2
        current = positional[index] if index < len(positional) else None
        if current is not None and current.kind == "rest" and not (is_flag and word[2:] in flags):
            # free text runs to the end of the line, except a known --flag right here
            values[current.name] = text[offset:].strip()
            break
        if is_flag:
            name = word[2:]
            if name not in flags:
                known = ", ".join(f"--{f}" for f in flags) or "none"
                raise UsageError(f"/{command.name} has no option --{name} (options: {known}).", command.usage)
            if i + 1 >= len(tokens):
                raise UsageError(f"--{name} needs a value.", command.usage)
            values[name] = tokens[i + 1][0]
            i += 2
            continue
        if current is None:
            raise UsageError(f"Unexpected extra argument {word!r}.", command.usage)
        if current.choices and not current.required and word.lower() not in current.choices:
            # `/leaderboard coding`: skip an optional choice that this word cannot be
            later = next((j for j in range(index + 1, len(positional)) if word.lower() in positional[j].choices), None)
            if later is not None:
                index = later
                current = positional[index]
        values[current.name] = word
        index += 1
        i += 1
    return values


def validate(command: Command, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check required args, choices and types; returns clean values."""
    known = {a.name for a in command.args}
    for name in raw:
        if name not in known:
            raise UsageError(f"/{command.name} has no argument '{name}'.", command.usage)
    clean: dict[str, Any] = {}
    for arg in command.args:
        value = raw.get(arg.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if arg.required:
                raise UsageError(f"Missing {arg.name}: {arg.help}.", command.usage)
            continue
        if arg.kind == "int":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise UsageError(f"{arg.name} must be a whole number, got {value!r}.", command.usage) from None
            if value < 1:
                raise UsageError(f"{arg.name} must be 1 or more, got {value}.", command.usage)
        elif arg.choices:
            value = str(value).lower()
            if value not in arg.choices:
                raise UsageError(
                    f"{arg.name} must be one of {', '.join(arg.choices)}, got {raw[arg.name]!r}.", command.usage
                )
        else:
            value = str(value).strip()
        clean[arg.name] = value
    return clean


async def dispatch(ctx: Context, name: str, args: Mapping[str, Any]) -> Message:
    """Run a command by name with options from a platform; errors come back as error messages."""
    try:
        command = ctx.table.resolve(name.split(), ctx.platform)[0]
        return await _run(ctx, command, args)
    except OnsiteError as exc:
        return _error_message(exc)


async def dispatch_line(ctx: Context, line: str) -> Message:
    """Run a typed line such as `/leaderboard month coding`."""
    try:
        text = line.strip()
        if text.startswith("/"):
            text = text[1:]
        tokens = tokenize(text)
        if not tokens:
            raise UnknownCommand("Type a command, for example /help.")
        command, used = ctx.table.resolve([t for t, _ in tokens[:2]], ctx.platform)
        return await _run(ctx, command, bind_line(command, text, tokens[used:]))
    except OnsiteError as exc:
        return _error_message(exc)


async def _run(ctx: Context, command: Command, args: Mapping[str, Any]) -> Message:
    if command.admin and not ctx.caller.is_admin:
        raise Forbidden(f"Only community admins can use /{command.name}.")
    try:
        values = validate(command, args)
    except UsageError as exc:
        raise UsageError(str(exc), exc.usage or command.usage) from None
    return await command.handler(ctx, values)


def _error_message(exc: OnsiteError) -> Message:
    usage = exc.usage if isinstance(exc, UsageError) else None
    return error(str(exc), usage=usage)


# -- handlers ------------------------------------------------------------------------------------


async def cmd_help(ctx: Context, args: Mapping[str, Any]) -> Message:
    commands = ctx.table.for_platform(ctx.platform)
    if "command" in args:
        wanted = args["command"].lstrip("/").lower()
        matches = [c for c in commands if c.name == wanted or c.name.startswith(wanted + " ")]
        if not matches:
            raise NotFound(f"No command /{wanted}. Type /help for the list.")
        fields = []
        for c in matches:
            lines = [c.summary]
            lines += [f"`{a.label()}` {a.help}" for a in c.args]
            lines += [f"e.g. `{e}`" for e in c.examples]
            if c.admin:
                lines.append("Admins only.")
            fields.append(Field(c.usage, "\n".join(lines)))
        return Message(title=f"Help · /{wanted}", fields=tuple(fields), ephemeral=True)
    visible = [c for c in commands if not c.admin or ctx.caller.is_admin]
    lines = [f"`{c.usage}` {c.summary}" for c in visible]
    return Message(
        title="Onsite · practice for ML interview loops",
        body="\n".join(lines),
        footer="/help <command> shows the details of one command.",
        ephemeral=True,
    )


async def cmd_daily(ctx: Context, args: Mapping[str, Any]) -> Message:
    community = ctx.caller.community
    day, items = await ctx.services.daily.current_round(community)
    track = args.get("track")
    if track is None:
        return views.round_summary(day, items, community_name=community.name)
    for item in items:
        if item.post.track == track and item.question is not None:
            return views.question_card(item.question, heading=f"Daily {day:%d %b}")
    if track not in community.tracks:
        raise NotFound(f"The {track} round is not enabled in {community.name}.")
    raise NotFound(f"No {track} question is available today.")


async def cmd_question(ctx: Context, args: Mapping[str, Any]) -> Message:
    return views.question_card(ctx.services.bank.get(args["id"]))


async def cmd_leaderboard(ctx: Context, args: Mapping[str, Any]) -> Message:
    page = await ctx.services.leaderboard.page(
        ctx.caller.community,
        ctx.caller.member,
        period=args.get("period", "week"),
        track=args.get("track"),
        page=args.get("page", 1),
    )
    return views.leaderboard_page(page, community_name=ctx.caller.community.name)


async def cmd_stats(ctx: Context, args: Mapping[str, Any]) -> Message:
    community = ctx.caller.community
    member = ctx.caller.member
    if "member" in args:
        found = await ctx.services.store.find_member(community.id, args["member"].lstrip("@"))
        if found is None:
            raise NotFound(f"No member called {args['member']!r} in {community.name}.")
        member = found
    return views.stats_card(await ctx.services.leaderboard.member_stats(community, member))


def core_table() -> CommandTable:
    """The commands every platform offers."""
    table = CommandTable()
    track = Arg("track", "one of " + ", ".join(TRACKS), kind="track", choices=TRACKS)
    table.add(
        Command(
            "help",
            "List the commands, or explain one.",
            cmd_help,
            (Arg("command", "a command name, e.g. leaderboard"),),
            examples=("/help leaderboard",),
        )
    )
    table.add(
        Command(
            "daily",
            "Today's questions, one per round type; with a track, that question in full.",
            cmd_daily,
            (track,),
            examples=("/daily", "/daily ml-theory"),
        )
    )
    table.add(
        Command(
            "question",
            "Show any question of the bank by its id.",
            cmd_question,
            (Arg("id", "the question id shown with every question", required=True, kind="question"),),
            examples=("/question stable-softmax",),
        )
    )
    table.add(
        Command(
            "leaderboard",
            "Standings for the week, the month or all time, optionally for one track.",
            cmd_leaderboard,
            (
                Arg("period", "week (default), month or all", kind="choice", choices=PERIODS),
                track,
                Arg("page", "page number", kind="int", flag=True),
            ),
            examples=("/leaderboard", "/leaderboard month coding", "/leaderboard all --page 2"),
        )
    )
    table.add(
        Command(
            "stats",
            "Your record (or another member's): points, rank, solved and accuracy per track.",
            cmd_stats,
            (Arg("member", "a member's name", kind="member"),),
            examples=("/stats", "/stats alice"),
        )
    )
    return table
