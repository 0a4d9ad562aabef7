"""One command table for every platform: name + args + caller -> service -> Message.

Adapters either hand over a whole line (`dispatch_line`, the console) or a command name with
already-split options (`dispatch`, Discord and Slack options). Both end in the same handler, so a
feature is written once. Domain errors become one-line private error replies naming what was
wrong, with the command's usage when the syntax was at fault.

Line syntax: `/name [sub] arg arg "quoted arg" --flag value`. A command's last argument may be
`rest`: it takes the remainder of the line verbatim (written answers keep their spacing); a remainder
wholly in ``` fences or `backticks` is what is inside them. A block of lines pasted after a command
(`dispatch_line(..., block=)`, the console's multi-line ``` fences) is that free-text argument as is.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core import views
from bot.core.cards import find_member as find_card_member
from bot.core.clock import is_timezone
from bot.core.daily import parse_pattern
from bot.core.errors import Forbidden, NotFound, OnsiteError, UnknownCommand, UsageError, as_typed, shown
from bot.core.leaderboard import PERIODS
from bot.core.messages import Field, Message, error
from bot.core.mocks import DAYS
from bot.core.models import CODE_TRACKS, TRACKS, Caller
from bot.core.services import Services
from bot.core.stories import parse_story
from bot.core.submissions import MAX_CODE_BYTES


@dataclass(frozen=True)
class Arg:
    """One argument. `kind` drives validation here and native pickers in the adapters."""

    name: str
    help: str
    required: bool = False
    kind: str = "text"  # text | int | choice | question | track | member | rest | switch (a flag without a value)
    choices: tuple[str, ...] = ()
    flag: bool = False  # given as --name value

    def label(self) -> str:
        if self.flag:
            text = f"--{self.name}" if self.kind == "switch" else f"--{self.name} {self.name.upper()}"
        elif self.choices:
            text = "|".join(self.choices)
        else:
            text = self.name
        return f"<{text}>" if self.required else f"[{text}]"


FileReader = Callable[[str, int], Awaitable[str]]


@dataclass(frozen=True)
class Context:
    """Everything a handler sees: the services, who is calling, the table (for /help), and how
    this platform reads a `file` argument (a path on the console, an attachment elsewhere)."""

    services: Services
    caller: Caller
    table: CommandTable
    platform: str = "console"
    read_file: FileReader | None = None


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
    # the reply is for everyone in the channel (errors still private): a platform that must decide a
    # reply's visibility before it is ready (Discord's deferred answers) decides it from this
    public: bool = False

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
            raise UnknownCommand(f"{as_typed('/' + typed)} is not a command. Try one of: {', '.join('/' + s for s in subs)}.")
        close = difflib.get_close_matches(words[0].lower() if words else "", list(available), n=1)
        hint = f" Did you mean /{close[0]}?" if close else ""
        raise UnknownCommand(f"Unknown command {as_typed('/' + (words[0] if words else ''))}.{hint} Type /help for the list.")


# -- line parsing --------------------------------------------------------------------------------

TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: str) -> str:
    """Lone surrogates (a platform's JSON can carry them) cannot be stored, printed or sent back."""
    if _SURROGATE.search(text):
        raise UsageError("Your message holds characters that are not valid text (lone surrogates); please retype it.")
    return text


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
                raise UsageError(f"Unbalanced quote in {shown(word)}.")
            tokens.append((word, start))
        pos = match.end()
    return tokens


_WHOLE_FENCE = re.compile(r"```[A-Za-z0-9_+-]*\n(.*?)\n?```|```(.+?)```|`([^`]+)`", re.S)


def unfence(text: str) -> str:
    """Free text wholly inside ``` fences or `backticks` (a pasted answer) is the text inside them."""
    match = _WHOLE_FENCE.fullmatch(text)
    return next(g for g in match.groups() if g is not None) if match else text


def bind_block(command: Command, values: dict[str, Any], block: str) -> None:
    """A block of lines pasted after the command (the console's ``` fences) is its free-text argument."""
    rest = next((a for a in command.args if a.kind == "rest"), None)
    if rest is None:
        raise UsageError(f"/{command.name} takes no pasted block of text.", command.usage)
    before = values.get(rest.name)
    values[rest.name] = f"{before}\n{block}" if before else block


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
            values[current.name] = unfence(text[offset:].strip())
            break
        if is_flag:
            name = word[2:]
            if name not in flags:
                known = ", ".join(f"--{f}" for f in flags) or "none"
                raise UsageError(f"/{command.name} has no option {as_typed('--' + name)} (options: {known}).", command.usage)
            if flags[name].kind == "switch":  # `--force` alone means yes
                values[name] = "yes"
                i += 1
                continue
            if i + 1 >= len(tokens):
                raise UsageError(f"{as_typed('--' + name)} needs a value.", command.usage)
            values[name] = tokens[i + 1][0]
            i += 2
            continue
        if current is None:
            raise UsageError(f"Unexpected extra argument {shown(word)}.", command.usage)
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


MAX_WHOLE = 1_000_000  # beyond any page, story or hint number, and inside SQLite's 64-bit integers
_WHOLE = re.compile(r"[+-]?[0-9]+")


def _whole_number(arg: Arg, raw: Any, usage: str) -> int:
    """Digits or an integral number; no silent rounding of 2.5, no int('1_000'), no 5000-digit parse."""
    value = raw
    if isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and _WHOLE.fullmatch(raw.strip()):
        text = raw.strip()
        value = int(text) if len(text) <= 19 else (-1 if text.startswith("-") else MAX_WHOLE + 1)
    if not isinstance(value, int):
        raise UsageError(f"{arg.name} must be a whole number, got {shown(raw)}.", usage)
    if value < 1:
        raise UsageError(f"{arg.name} must be 1 or more, got {shown(raw)}.", usage)
    if value > MAX_WHOLE:
        raise UsageError(f"{arg.name} must be at most {MAX_WHOLE:,}, got {shown(raw)}.", usage)
    return value


def validate(command: Command, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check required args, choices and types; returns clean values."""
    known = {a.name for a in command.args}
    for name in raw:
        if name not in known:
            raise UsageError(f"/{command.name} has no argument {shown(name)}.", command.usage)
    clean: dict[str, Any] = {}
    for arg in command.args:
        value = raw.get(arg.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if arg.required:
                raise UsageError(f"Missing {arg.name}: {arg.help}.", command.usage)
            continue
        # platforms send text and numbers; anything else is an adapter's mistake, refused by name
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise UsageError(f"{arg.name} must be text or a number, got {type(value).__name__}.", command.usage)
        if isinstance(value, int) and value.bit_length() > 64:
            raise UsageError(f"{arg.name} is too large a number.", command.usage)
        if arg.kind == "int":
            value = _whole_number(arg, value, command.usage)
        elif arg.choices:
            value = str(value).lower()
            if value not in arg.choices:
                raise UsageError(
                    f"{arg.name} must be one of {', '.join(arg.choices)}, got {shown(raw[arg.name])}.", command.usage
                )
        else:
            value = check_text(str(value)).strip()
        clean[arg.name] = value
    return clean


async def dispatch(ctx: Context, name: str, args: Mapping[str, Any]) -> Message:
    """Run a command by name with options from a platform; errors come back as error messages."""
    try:
        command = ctx.table.resolve(check_text(name).split(), ctx.platform)[0]
        return await _run(ctx, command, args)
    except OnsiteError as exc:
        return _error_message(exc)


async def dispatch_line(ctx: Context, line: str, *, block: str | None = None) -> Message:
    """Run a typed line such as `/leaderboard month coding`; `block`: lines pasted after it (code), the
    command's free-text argument as they are (never split into words)."""
    try:
        text = check_text(line).strip()
        if text.startswith("/"):
            text = text[1:]
        tokens = tokenize(text)
        if not tokens:
            raise UnknownCommand("Type a command, for example /help.")
        command, used = ctx.table.resolve([t for t, _ in tokens[:2]], ctx.platform)
        _require_admin(ctx, command)  # before parsing: a member learns nothing of an admin command's syntax
        values = bind_line(command, text, tokens[used:])
        if block is not None:
            bind_block(command, values, block)
        return await _run(ctx, command, values)
    except OnsiteError as exc:
        return _error_message(exc)


def _require_admin(ctx: Context, command: Command) -> None:
    if command.admin and not ctx.caller.is_admin:
        raise Forbidden(f"Only community admins can use /{command.name}.")


async def _run(ctx: Context, command: Command, args: Mapping[str, Any]) -> Message:
    if ctx.services.cooldown is not None:
        ctx.services.cooldown.check(ctx.caller.community.id, ctx.caller.member.id, ctx.services.clock.now())
    _require_admin(ctx, command)
    try:
        values = validate(command, args)
    except UsageError as exc:
        raise UsageError(str(exc), exc.usage or command.usage) from None
    try:
        return await command.handler(ctx, values)
    except OnsiteError:
        raise
    except Exception as exc:  # a bug or an outage: counted and logged here, answered by the adapter
        ctx.services.failures.record(exc, where=f"/{command.name}", community_id=ctx.caller.community.id)
        raise


def _error_message(exc: OnsiteError) -> Message:
    usage = exc.usage if isinstance(exc, UsageError) else None
    return error(str(exc), usage=usage)


# -- handlers ------------------------------------------------------------------------------------


async def cmd_help(ctx: Context, args: Mapping[str, Any]) -> Message:
    commands = ctx.table.for_platform(ctx.platform)
    if "command" in args:
        # `/help mock join`, `/help /admin pair-now`: a group and a subcommand, unquoted
        wanted = " ".join(w.lstrip("/") for w in args["command"].lower().split()).strip()
        matches = [c for c in commands if c.name == wanted or c.name.startswith(wanted + " ")]
        if not matches:
            names = sorted({n for c in commands for n in (c.name, c.group) if n})
            close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
            listed = [f"/{n}" for n in close]
            hint = f" Did you mean {' or '.join(filter(None, (', '.join(listed[:-1]), listed[-1])))}?" if close else ""
            raise NotFound(f"No command {as_typed('/' + wanted)}.{hint} Type /help for the list.")
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
            raise NotFound(f"No member called {shown(args['member'])} in {community.name}.")
        member = found
    return views.stats_card(await ctx.services.leaderboard.member_stats(community, member))


async def cmd_submit(ctx: Context, args: Mapping[str, Any]) -> Message:
    code, text = None, args.get("answer")
    if "file" in args:
        if ctx.read_file is None:
            raise UsageError("This platform takes code as an attachment or pasted text, not a --file path.")
        if text:
            raise UsageError("Give your answer after the id or with --file, not both.")
        content = await ctx.read_file(args["file"], MAX_CODE_BYTES)  # the same size limit for every answer
        if ctx.services.bank.get(args["id"]).track in CODE_TRACKS:
            code = content
        else:  # a written (or theory) answer can come from a file too
            text = content
    return await ctx.services.submissions.submit(ctx.caller, args["id"], text=text, code=code)


async def cmd_hint(ctx: Context, args: Mapping[str, Any]) -> Message:
    q = ctx.services.bank.get(args["id"])
    if not q.hints:
        raise NotFound(f"`{q.id}` has no hints.")
    n = args.get("number", 1)
    if n > len(q.hints):
        raise UsageError(f"`{q.id}` has {len(q.hints)} hint(s).")
    more = f" Next: /hint {q.id} --number {n + 1}" if n < len(q.hints) else ""
    return Message(title=f"Hint {n} of {len(q.hints)} · {q.title}", body=q.hints[n - 1], footer=more.strip(),
                   ephemeral=True)


async def cmd_answers(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.submissions.answers(ctx.caller, args["id"])


async def cmd_vote(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.submissions.vote(ctx.caller, args["id"], args["member"])


async def cmd_hide(ctx: Context, args: Mapping[str, Any]) -> Message:
    hide = args["value"] == "on"
    await ctx.services.store.update_member(ctx.caller.member.id, hide_from_leaderboard=int(hide))
    text = "You are hidden from the leaderboard" if hide else "You are shown on the leaderboard again"
    return Message(body=f"{text}; your points still count.", ephemeral=True)


async def cmd_delete_my_data(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.privacy.delete_my_data(ctx.caller, args.get("confirm"))


async def cmd_my_timezone(ctx: Context, args: Mapping[str, Any]) -> Message:
    tz = check_timezone(args["timezone"])
    await ctx.services.store.update_member(ctx.caller.member.id, timezone=tz)
    return Message(body=f"Your timezone is now {tz}; streaks count days in it.", ephemeral=True)


def check_timezone(value: str) -> str:
    if not is_timezone(value):
        raise UsageError(f"{shown(value)} is not an IANA timezone such as Europe/Berlin or America/New_York.")
    return value


def check_time(value: str) -> str:
    if not TIME_OF_DAY.match(value):
        raise UsageError(f"{shown(value)} is not a 24-hour time HH:MM such as 09:00.")
    return value


_CHANNEL_NAME = re.compile(r"[\w-]{1,100}")


def check_channel(value: str) -> str:
    """`#daily`, `daily` or a platform's channel id; `off` (bare) is the explicit no-daily-round, stored as ""."""
    text = value.strip()
    if text.lower() == "off":
        return ""
    name = text[1:] if text.startswith("#") else text
    if not _CHANNEL_NAME.fullmatch(name):
        raise UsageError(f"{shown(value)} is not a channel name: letters, digits, - and _, e.g. "
                         "/admin setup channel #daily (or /admin setup channel off: no daily round).")
    return name


def _channel_note(channel: str | None) -> str:
    if channel:
        return ""
    if channel == "":
        return "The daily round is off: nothing is posted until /admin setup channel <name> sets a channel."
    return "No channel is set, so the daily round is not posted (admins get a DM at post time): /admin setup channel <name>."


async def cmd_setup(ctx: Context, args: Mapping[str, Any]) -> Message:
    store = ctx.services.store
    community = ctx.caller.community
    what, value = args.get("setting"), args.get("value", "")
    if what is not None:
        if not value:
            raise UsageError(f"Give a value: /admin setup {what} <value>.")
        changes: dict[str, Any] = {}
        if what == "channel":
            changes["channel"] = check_channel(value)
        elif what == "time":
            changes["post_time"] = check_time(value)
        elif what == "timezone":
            changes["timezone"] = check_timezone(value)
        elif what == "tracks":
            tracks = [t for t in re.split(r"[\s,]+", value.lower()) if t]
            unknown = [t for t in tracks if t not in TRACKS]
            if unknown or not tracks:
                raise UsageError(f"Tracks are {', '.join(TRACKS)}; got {as_typed(', '.join(unknown)) if unknown else 'none'}.")
            changes["tracks"] = tuple(t for t in TRACKS if t in tracks)
        elif what == "reveal-time":
            changes["reveal_time"] = None if value == "next-round" else check_time(value)
        elif what == "mock-day":
            day = value.strip().lower()[:3]
            if day not in DAYS:
                raise UsageError(f"mock-day is a weekday (mon..sun), got {shown(value)}.")
            changes["mock_weekday"] = DAYS.index(day)
        elif what == "mock-time":
            changes["mock_time"] = check_time(value)
        elif what == "mock-cadence":
            cadence = {"weekly": 7, "biweekly": 14, "fortnightly": 14}.get(value.strip().lower(), None)
            if cadence is None and re.fullmatch(r"[0-9]{1,2}", value.strip()) and 1 <= int(value) <= 28:
                cadence = int(value)
            if cadence is None:
                raise UsageError(f"mock-cadence is weekly, biweekly or a number of days (1-28), got {shown(value)}.")
            changes["mock_cadence_days"] = cadence
        elif what == "pattern":
            try:
                changes["difficulty_pattern"] = ",".join(parse_pattern(value))
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        elif what == "coverage":  # the rubric coverage from which a written answer counts as solved
            percent = re.fullmatch(r"\s*([0-9]{1,3})\s*%?\s*", value)
            if percent is None or int(percent.group(1)) > 100:
                raise UsageError(f"coverage is a percentage from 0 to 100, such as 50 or 50%, got {shown(value)}.")
            changes["solve_coverage"] = int(percent.group(1))
        community = await store.update_community(community.id, **changes)
        await ctx.services.schedule_changed(community)
    reveal = await store.community_setting(community.id, "reveal_time")
    pattern = await store.community_setting(community.id, "difficulty_pattern")
    mock_day = DAYS[int(await store.community_setting(community.id, "mock_weekday"))]
    mock_time = await store.community_setting(community.id, "mock_time")
    cadence = int(await store.community_setting(community.id, "mock_cadence_days"))
    bar = int(await store.community_setting(community.id, "solve_coverage"))
    return Message(
        title=f"Settings · {community.name}" if what is None else f"Updated {what} · {community.name}",
        body=_channel_note(community.channel),
        fields=(
            Field("Channel", f"#{community.channel}" if community.channel else
                  "not set" if community.channel is None else "off (no daily posts)", True),
            Field("Post time", f"{community.post_time} {community.timezone}", True),
            Field("Reveal", f"{reveal} {community.timezone}" if reveal else "when the next round posts", True),
            Field("Tracks", ", ".join(community.tracks)),
            Field("Difficulty by weekday (Mon-Sun)", pattern),
            Field("Mock pairing", f"{mock_day} {mock_time} {community.timezone}, every {cadence} day(s)"),
            Field("Written answers count as solved from", f"{bar}% estimated rubric coverage (coverage)"),
        ),
        ephemeral=True,
    )


async def cmd_post_now(ctx: Context, args: Mapping[str, Any]) -> Message:
    day = await ctx.services.daily.post_now(ctx.caller.community)
    return Message(body=f"Posted the round of {day:%a %d %b} in #{ctx.caller.community.channel}.", ephemeral=True)


async def cmd_mock_join(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.mocks.join(ctx.caller, tracks=args.get("tracks"), level=args.get("level"),
                                         timezone=args.get("timezone"), availability=args.get("availability"))


async def cmd_mock_leave(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.mocks.leave(ctx.caller)


async def cmd_mock_pause(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.mocks.pause(ctx.caller, args["until"])


async def cmd_mock_status(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.mocks.status(ctx.caller)


async def cmd_mock_avoid(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.mocks.avoid(ctx.caller, args["member"])


async def cmd_mock_checkin(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.mocks.checkin(ctx.caller, args["outcome"], args.get("member"))


async def cmd_mock_feedback(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.mocks.feedback(ctx.caller, args["member"], args["scores"], args.get("notes"))


async def cmd_pair_now(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.mocks.pair_now(ctx.caller, force=args.get("force") == "yes")


# -- issue 9: study plans, practice, timed attempts, STAR stories, picture cards -------------------


async def cmd_practice(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.practice.practice(ctx.caller, args.get("track"))


async def cmd_timed(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.timed.start(ctx.caller, args["id"])


async def cmd_plan_start(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.plans.start(ctx.caller, args.get("weeks"), args.get("date"))


async def cmd_plan_status(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.plans.status(ctx.caller)


async def cmd_plan_stop(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.plans.stop(ctx.caller)


_STORY_FLAGS = ("title", "situation", "task", "action", "result")


def story_flags(text: str) -> tuple[str, dict[str, str]]:
    """`<title> --situation "..." --task ...` in a story's text: the text before the first flag and each
    flag's value (one word, or quoted). Only --title and the STAR parts are flags here."""
    tokens = tokenize(text)

    def flag(i: int) -> str | None:
        word, offset = tokens[i]
        return word[2:] if text[offset] not in "\"'" and word.startswith("--") and len(word) > 2 else None

    first = next((i for i in range(len(tokens)) if flag(i) is not None), None)
    if first is None:
        return text, {}
    parts: dict[str, str] = {}
    i = first
    while i < len(tokens):
        name = flag(i)
        if name is None:
            last = list(parts)[-1]
            raise UsageError(f"Put quotes around a value with spaces: --{last} \"{parts[last]} {tokens[i][0]} ...\".")
        if name not in _STORY_FLAGS:
            raise UsageError(f"/story add has no option {as_typed('--' + name)} (options: "
                             f"{', '.join('--' + f for f in _STORY_FLAGS)}).")
        if name in parts:
            raise UsageError(f"The {name} is given twice.")
        if i + 1 >= len(tokens) or flag(i + 1) is not None or not tokens[i + 1][0].strip():
            raise UsageError(f"--{name} needs a value.")
        parts[name] = tokens[i + 1][0]
        i += 2
    return text[: tokens[first][1]].strip(), parts


async def cmd_story_add(ctx: Context, args: Mapping[str, Any]) -> Message:
    # the flag form (`<title> --situation "..." ...`) and the `|` form save the same story
    text, flagged = story_flags(args.get("text", ""))
    parts = {p: args[p] for p in _STORY_FLAGS[1:] if p in args}
    for name, value in flagged.items():
        if name in parts or (name == "title" and text):
            raise UsageError(f"The {name} is given twice.")
        parts[name] = value
    text = parts.pop("title", text)
    if parts and "|" in text:
        piped = parse_story(text)
        for name in parts:
            if getattr(piped, name):
                raise UsageError(f"The {name} is given twice: after a | and as --{name}.")
        parts.update({p: getattr(piped, p) for p in _STORY_FLAGS[1:] if getattr(piped, p)})
        text = piped.title
    return await ctx.services.stories.add(ctx.caller, args["theme"], text, parts)


async def cmd_story_list(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.stories.list_stories(ctx.caller)


async def cmd_story_edit(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.stories.edit(ctx.caller, args["number"], args.get("text", ""))


async def cmd_story_remove(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.stories.remove(ctx.caller, args["number"])


async def cmd_story_gaps(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.stories.gaps(ctx.caller)


async def cmd_card_stats(ctx: Context, args: Mapping[str, Any]) -> Message:
    member = await find_card_member(ctx.services.store, ctx.caller, args.get("member"))
    return await ctx.services.cards.stats(ctx.caller, member)


async def cmd_card_leaderboard(ctx: Context, args: Mapping[str, Any]) -> Message:
    return await ctx.services.cards.leaderboard_card(ctx.caller, args.get("period", "week"), args.get("track"))


def core_table() -> CommandTable:
    """The commands every platform offers."""
    table = CommandTable()
    track = Arg("track", "one of " + ", ".join(TRACKS), kind="track", choices=TRACKS)
    table.add(
        Command(
            "help",
            "List the commands, or explain one.",
            cmd_help,
            (Arg("command", "a command name, e.g. leaderboard or mock join", kind="rest"),),
            examples=("/help leaderboard", "/help mock join"),
        )
    )
    table.add(
        Command(
            "daily",
            "Today's questions, one per round type; with a track, that question in full.",
            cmd_daily,
            (track,),
            examples=("/daily", "/daily ml-theory"),
            public=True,
        )
    )
    table.add(
        Command(
            "question",
            "Show any question of the bank by its id.",
            cmd_question,
            (Arg("id", "the question id shown with every question", required=True, kind="question"),),
            examples=("/question softmax-rows-stable",),
            public=True,
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
            public=True,
        )
    )
    table.add(
        Command(
            "submit",
            "Answer a question: code (a file or pasted), a letter or number, or a written answer "
            "(a revealed daily is still graded, for no points).",
            cmd_submit,
            (
                Arg("id", "the question id", required=True, kind="question"),
                Arg("answer", "your answer: a letter, a number, written text or pasted code", kind="rest"),
                Arg("file", "a file with your answer: a .py solution, or a written answer (.md, .txt)", kind="file",
                    flag=True),
            ),
            examples=("/submit first-repeated-request-id --file solution.py", "/submit eval-pr-auc-for-rare-fraud B",
                      "/submit ab-experimentation-platform --file answer.md"),
        )
    )
    table.add(
        Command(
            "hint",
            "A hint for a question, one at a time.",
            cmd_hint,
            (Arg("id", "the question id", required=True, kind="question"), Arg("number", "which hint", kind="int", flag=True)),
            examples=("/hint first-repeated-request-id",),
        )
    )
    table.add(
        Command(
            "answers",
            "Read the community's written answers to a revealed design or behavioral question.",
            cmd_answers,
            (Arg("id", "the question id", required=True, kind="question"),),
        )
    )
    table.add(
        Command(
            "vote",
            "Vote for a member's written answer after the reveal (+1 point to them).",
            cmd_vote,
            (Arg("id", "the question id", required=True, kind="question"), Arg("member", "the author", required=True, kind="member")),
        )
    )
    table.add(
        Command(
            "settings hide-from-leaderboard",
            "Hide yourself from the leaderboard (your points still count).",
            cmd_hide,
            (Arg("value", "on or off", required=True, kind="choice", choices=("on", "off")),),
        )
    )
    table.add(
        Command(
            "settings timezone",
            "Your timezone, so streaks follow your own days.",
            cmd_my_timezone,
            (Arg("timezone", "an IANA name such as Europe/Berlin", required=True),),
        )
    )
    table.add(
        Command(
            "settings delete-my-data",
            "Delete your submissions, stories, feedback and points in this community (asks you to confirm).",
            cmd_delete_my_data,
            (Arg("confirm", "the confirmation the first call shows you (confirm:<code>)"),),
            examples=("/settings delete-my-data",),
        )
    )
    table.add(
        Command(
            "admin setup",
            "Show or change the community's settings: channel, time, timezone, tracks, reveal-time, pattern, "
            "mock pairing, coverage.",
            cmd_setup,
            (
                Arg("setting", "what to change", kind="choice",
                    choices=("channel", "time", "timezone", "tracks", "reveal-time", "pattern",
                             "mock-day", "mock-time", "mock-cadence", "coverage")),
                Arg("value", "the new value", kind="rest"),
            ),
            admin=True,
            examples=("/admin setup channel #daily", "/admin setup channel off",
                      "/admin setup time 08:30", "/admin setup timezone Europe/Berlin",
                      "/admin setup tracks coding ml-theory", "/admin setup pattern easy,easy,medium,medium,medium,hard,hard",
                      "/admin setup coverage 50%"),
        )
    )
    member_arg = Arg("member", "a member's name", required=True, kind="member")
    for command in (
        Command("mock join", "Join peer mock interviews (tracks, level, timezone, weekly availability).", cmd_mock_join,
                (Arg("tracks", "comma-separated tracks, e.g. coding,system-design"),
                 Arg("level", "junior, mid, senior or staff", kind="choice", choices=("junior", "mid", "senior", "staff")),
                 Arg("timezone", "an IANA timezone, e.g. Europe/Berlin"),
                 Arg("availability", "weekly windows in your timezone, e.g. weekdays 18-21, sat 10-14", kind="rest")),
                examples=("/mock join coding,system-design senior Europe/Berlin weekdays 18-21, sat 10-14",)),
        Command("mock leave", "Leave the mock rotation (your history is kept).", cmd_mock_leave),
        Command("mock pause", "Pause until a date or for a number of weeks; you come back by yourself.", cmd_mock_pause,
                (Arg("until", "a date (2026-12-24) or weeks (2)", required=True),), examples=("/mock pause 2",)),
        Command("mock status", "Your mock settings, pause and latest group.", cmd_mock_status),
        Command("mock avoid", "Never be paired with a member (kept private).", cmd_mock_avoid, (member_arg,)),
        Command("mock checkin", "Tell us whether your mock happened: met, or no-show (naming who did not come).",
                cmd_mock_checkin,
                (Arg("outcome", "met or no-show", required=True, kind="choice", choices=("met", "no-show")),
                 Arg("member", "who did not come (groups of three)", kind="member")),
                examples=("/mock checkin met", "/mock checkin no-show bob")),
        Command("mock feedback", "Private feedback to your partner: 4 scores from 1 to 5 and notes.", cmd_mock_feedback,
                (member_arg, Arg("scores", "communication, problem solving, depth, structure, e.g. 4,3,5,4", required=True),
                 Arg("notes", "what went well and what to work on", kind="rest")),
                examples=("/mock feedback bob 4,3,5,4 Clear structure; quantify the latency budget earlier.",)),
        Command("admin pair-now", "Run a mock pairing round now and show its report (once per period; --force pairs "
                "again, replacing the current groups).", cmd_pair_now,
                (Arg("force", "pair again although this period already has its round", kind="switch",
                     choices=("yes", "no"), flag=True),), admin=True, examples=("/admin pair-now", "/admin pair-now --force")),
    ):
        table.add(command)
    table.add(
        Command(
            "admin post-now",
            "Post the current daily round now (never twice).",
            cmd_post_now,
            admin=True,
        )
    )
    table.add(
        Command(
            "stats",
            "Your record (or another member's): points, rank, solved and accuracy per track.",
            cmd_stats,
            (Arg("member", "a member's name", kind="member"),),
            examples=("/stats", "/stats alice"),
            public=True,
        )
    )
    # issue 9: study plans, practice, timed attempts, STAR stories, picture cards
    story_parts = tuple(Arg(p, f"the {p} (STAR)", flag=True) for p in ("situation", "task", "action", "result"))
    for command in (
        Command("practice", "A question for you: from your weakest track and topic, one you have not seen.",
                cmd_practice, (track,), examples=("/practice", "/practice ml-theory")),
        Command("timed", "Answer a question against the round's usual clock (coding 25 min, design 45, ...).",
                cmd_timed, (Arg("id", "the question id", required=True, kind="question"),),
                examples=("/timed first-repeated-request-id",)),
        Command("plan start", "A study plan over the weeks left: phases, a daily goal and a private nudge each day.",
                cmd_plan_start, (Arg("weeks", "1 to 12 weeks (default 6)"),
                                 Arg("date", "your interview date, e.g. 2027-01-15 (sets the end)")),
                examples=("/plan start", "/plan start 8", "/plan start 2027-01-15")),
        Command("plan status", "Your plan: today's goal and your progress against it.", cmd_plan_status),
        Command("plan stop", "Stop your plan and its daily nudges.", cmd_plan_stop),
        Command("story add", "Add a private STAR story: <theme> <title> | <situation> | <task> | <action> | <result>.",
                cmd_story_add, (Arg("theme", "disagreement, failure, ambiguity, leadership, ... (comma-separated)",
                                    required=True),
                                Arg("text", "title | situation | task | action | result, or the title and the flags "
                                    "below (quote values with spaces)", required=True, kind="rest"),
                                *story_parts),
                examples=("/story add failure Churn model that shipped late | Q3 churn project | Own the launch | "
                          "Cut scope, daily check-ins | Shipped 2 weeks late, +4% retention",
                          '/story add failure Churn model that shipped late --situation "Q3 churn project" '
                          '--task "Own the launch" --action "Cut scope, daily check-ins" --result "Shipped 2 weeks late"')),
        Command("story list", "Your STAR stories (only you see them).", cmd_story_list),
        Command("story edit", "Change one part of a story (<n> <part> <text>) or the whole story.", cmd_story_edit,
                (Arg("number", "the story's number in /story list", required=True, kind="int"),
                 Arg("text", "situation|task|action|result|title|theme <text>, or title | S | T | A | R",
                     required=True, kind="rest")),
                examples=("/story edit 1 result Shipped; retention +4% in a month",)),
        Command("story remove", "Remove one of your stories.", cmd_story_remove,
                (Arg("number", "the story's number in /story list", required=True, kind="int"),)),
        Command("story gaps", "The common behavioral themes you have no story for yet.", cmd_story_gaps),
        Command("card stats", "Your stats (or a member's) as a picture: progress per track, points, activity.",
                cmd_card_stats, (Arg("member", "a member's name", kind="member"),), examples=("/card stats",)),
        Command("card leaderboard", "The leaderboard as a picture.", cmd_card_leaderboard,
                (Arg("period", "week (default), month or all", kind="choice", choices=PERIODS), track),
                examples=("/card leaderboard month",), public=True),
    ):
        table.add(command)
    return table
