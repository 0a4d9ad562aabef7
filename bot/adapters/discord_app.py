"""Discord: the whole command table as slash commands, with modals, buttons and threads (discord.py).

Decisions (see DESIGN.md for the layers):

- The client is an `AutoShardedClient` with the `guilds` intent only (no privileged intents). Slash
  commands are built at start-up from `core_table()`: "admin setup" becomes group `admin` +
  subcommand `setup`, so commands the core adds later appear without adapter changes. Options map
  from `Arg.kind`: int -> integer (min 1), choice/track -> choices, question -> string with
  autocomplete, member -> user, file -> attachment, text/rest -> string. Console-only commands are
  skipped. A group whose commands are all admin-only gets `default_permissions(manage_guild)`; the
  Manage Server permission is checked again at run time (`Caller.is_admin`), since server owners
  can override defaults.
- Each guild is one community (`platform="discord"`, external id = guild id); members are keyed by
  user id. Display names are stored neutralised (markdown escaped, no mentions), because the core
  embeds them in Markdown.
- Buttons carry `custom_id = "onsite:<action>:<value>"` and are handled in `on_interaction` by
  their custom id, never by a view kept in memory, so they keep working after a restart. A click
  whose message's buttons all re-run the same command (leaderboard pages) edits that message in
  place; other clicks answer privately. `form` opens a modal (`onsite-form:<name>:<rest>`), whose
  submission dispatches `form.command`; `discuss` opens (or links) the thread of the post. A modal
  holds at most 5 components: a form's note is a text block of its own while a place is left, else
  the first field's description; a form of more than 5 fields is refused naming its command.
- `/submit <id>` without an answer or file opens the answer modal (4,000 characters per Discord
  text input; larger answers go in a `.py`/`.sql`/`.txt`/`.md` attachment up to 64 KiB, checked by
  its size before downloading).
- Answering in time: Discord drops an interaction not acknowledged 3 s after it created it. Slow
  commands (`SLOW_COMMANDS`, plus any with an attachment) are deferred at once; anything else,
  database work included, runs while a timer set DEFER_AFTER_S (2 s) after `interaction.created_at`
  runs, and is deferred when it fires. A defer has the visibility of the reply to come
  (`Command.public`; buttons and forms answer privately), since the message that replaces a
  "thinking..." placeholder keeps the placeholder's visibility; a reply that wants the other one
  (an error of a public command) resolves the placeholder with a neutral line, goes as its own
  follow-up, and the line is deleted. Error handlers never raise: they try the reply, then a
  private follow-up, then log. An unexpected error (a bug, the database failing in the member
  lookup, the outbox) is counted per kind and logged once by the core's `Failures`, named after the
  command (`/stats`), button or form, with the community; never with its arguments or a token.
- Everything is sent with `AllowedMentions.none()`; text is neutralised (`@everyone`, `@here`,
  `<@id>`, `<@&id>` cannot ping or impersonate) and code fences inside code blocks are broken with
  zero-width spaces. Limits: title 256, description 4096 (longer text continues in more embeds, up
  to 10), fields 25 x (256, 1024), footer 2048, 6000 per message; whatever does not fit, or code
  too long for the description, is attached as a file.
- Posts: the community's channel is stored as a channel id (`/admin setup channel #daily`; a
  plain name is resolved to the id). Missing permissions are checked before sending and reported
  as a permanent `DeliveryError` naming them ("missing permission Send Messages in #daily"); 5xx
  and rate limits are transient. discord.py waits out limits up to 30 s itself; a longer one (or a
  request it halts before making) raises `discord.RateLimited`, which is not an HTTPException: it
  is caught everywhere a request is made and its `retry_after` goes to the outbox. Each post and
  DM carries a nonce derived from its outbox key with `enforce_nonce`, so a retry after a lost
  response or a timeout is not posted twice. Posts with a Discuss button get a public thread
  named after the question.
- Pair spaces are private threads in the community's channel with the members added; with no
  channel or no permission to create them, the members get DMs instead: the space's message is
  enqueued again as one outbox row per member (`<space key>:dm:<member id>`), each with its own
  nonce and retries, so one closed DM or a retry touches no one else. A rate limit or an outage
  while opening the thread (creating it, adding the members, its first message) raises instead, so
  the space is opened later rather than settled as DMs.
- Command sync: at start, only when a digest of what `tree.sync` would send differs from the one
  recorded in the database (`discord_state`, per application and target), or with `--sync`. A
  failed sync is logged and the bot runs with the commands Discord already has.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, TypeVar

import discord
from discord import app_commands
from discord.utils import escape_markdown

from bot.core.commands import Command, CommandTable, Context, core_table, dispatch, dispatch_line
from bot.core.errors import NotFound, OnsiteError, UsageError
from bot.core.forms import form_for
from bot.core.messages import Form, Message, error
from bot.core.models import Caller, Community, Member, OutboxItem
from bot.core.ports import DeliveryError
from bot.core.services import Services
from bot.core.submissions import MAX_CODE_BYTES, human_size
from bot.store.sqlite import Store as SqliteStore

log = logging.getLogger(__name__)
T = TypeVar("T")

PLATFORM = "discord"
BUTTON_PREFIX = "onsite:"
FORM_PREFIX = "onsite-form:"  # modals: onsite-form:<name>:<rest>, or onsite-form@<guild id>:... from a DM
ZWSP = "\u200b"

# Discord's limits
CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
MESSAGE_EMBED_MAX = 6000
EMBEDS_PER_MESSAGE = 10
CUSTOM_ID_MAX = 100
MODAL_TITLE_MAX = 45
MODAL_INPUT_MAX = 4000
MODAL_COMPONENTS_MAX = 5  # labels and text blocks together
MODAL_LABEL_MAX = 45
MODAL_DESCRIPTION_MAX = 100
MODAL_PLACEHOLDER_MAX = 100
THREAD_NAME_MAX = 100
CHOICES_MAX = 25
DESCRIPTION_OPTION_MAX = 100

MAX_ATTACHMENT_BYTES = MAX_CODE_BYTES
ATTACHMENT_SUFFIXES = (".py", ".sql", ".txt", ".md")  # code or a query, or a written answer (the core reads any)
# deferred at once (grading, posting a round, pairing, a DM): checked against the table by a test
SLOW_COMMANDS = frozenset({"submit", "admin post-now", "admin pair-now", "mock feedback"})
DEFER_AFTER_S = 2.0  # after Discord created the interaction, whose deadline is 3 s from then
DONE_PLACEHOLDER = "Done."
GROUP_DESCRIPTIONS = {
    "admin": "Community settings and rounds (Manage Server)",
    "settings": "Your own settings",
    "mock": "Peer mock interviews",
}
COLORS = {
    "info": 0x5865F2,
    "question": 0x3498DB,
    "error": 0xE74C3C,
    "success": 0x2ECC71,
    "announcement": 0xF1C40F,
    "reveal": 0x9B59B6,
    "leaderboard": 0xE67E22,
}
STYLES = {
    "primary": discord.ButtonStyle.primary,
    "secondary": discord.ButtonStyle.secondary,
    "success": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
}
NO_MENTIONS = discord.AllowedMentions.none()

# -- text safety -------------------------------------------------------------------------------------

_EVERYONE = re.compile(r"@(everyone|here)", re.IGNORECASE)
_MENTION = re.compile(r"<(@[!&]?|#|/)")
_CHANNEL_ID = re.compile(r"(?<![<\w])#(\d{15,21})\b")
_CHANNEL_REF = re.compile(r"^<#(\d{15,21})>$")


def neutralise(text: str) -> str:
    """No member text can ping or impersonate: @everyone/@here and <@id>/<@&id>/<#id> are broken.

    Afterwards the bot's own channel references (`#<channel id>`, as the core prints a channel
    setting) become channel links, which never ping."""
    text = _EVERYONE.sub(lambda m: f"@{ZWSP}{m.group(1)}", text)
    text = _MENTION.sub(lambda m: f"<{ZWSP}{m.group(1)}", text)
    return _CHANNEL_ID.sub(r"<#\1>", text)


def fence_safe(code: str) -> str:
    """Code shown inside a fenced block cannot close the block early."""
    return code.replace("```", f"`{ZWSP}`{ZWSP}`")


def safe_name(name: str) -> str:
    """A display name as stored for a Discord member: no markdown, no mentions, one line."""
    one_line = " ".join(name.split()) or "member"
    return escape_markdown(neutralise(one_line))[:64]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def split_text(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` characters, cut at line ends (or spaces) where possible."""
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = rest.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n")
    if rest or not chunks:
        chunks.append(rest)
    return chunks


# -- rendering ---------------------------------------------------------------------------------------


class ButtonsView(discord.ui.View):
    """Buttons only: clicks are routed by custom id in `on_interaction`, so nothing is kept in memory
    (which is also what makes them survive a restart)."""

    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.stop()  # finished from the start: discord.py neither stores it nor runs a timeout for it

    def is_dispatchable(self) -> bool:
        return False


@dataclass
class Rendered:
    """A `Message` as discord.py send arguments."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    files: list[discord.File] = field(default_factory=list)
    view: discord.ui.View | None = None

    def kwargs(self, *, edit: bool = False) -> dict[str, Any]:
        args: dict[str, Any] = {"content": self.content, "embeds": self.embeds, "allowed_mentions": NO_MENTIONS}
        if edit:
            args["attachments"] = self.files
            args["view"] = self.view
        else:
            if self.files:
                args["files"] = self.files
            if self.view is not None:
                args["view"] = self.view
        return args


def button_id(action: str, value: str, guild_id: str | None = None) -> str:
    """`onsite:<action>:<value>`; in DMs `onsite@<guild id>:...`, since a DM click carries no server."""
    prefix = f"onsite@{guild_id}:" if guild_id else BUTTON_PREFIX
    return f"{prefix}{action}:{value}"


_BUTTON_ID = re.compile(r"^onsite(?:@(\d+))?:([^:]+):(.*)$", re.DOTALL)


_FORM_ID = re.compile(r"^onsite-form(?:@(\d+))?:([^:]+):(.*)$", re.DOTALL)


def parse_button_id(custom_id: str) -> tuple[str | None, str, str] | None:
    """(guild id or None, action, value) of one of our buttons; None for anything else."""
    match = _BUTTON_ID.match(custom_id)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def render_view(message: Message, guild_id: str | None = None) -> ButtonsView | None:
    if not message.buttons:
        return None
    view = ButtonsView()
    for b in message.buttons[:25]:
        custom_id = button_id(b.action, b.value, guild_id)
        if len(custom_id) > CUSTOM_ID_MAX:
            log.warning("button %r skipped: custom id over %d characters", b.label, CUSTOM_ID_MAX)
            continue
        view.add_item(discord.ui.Button(label=clip(b.label, 80), custom_id=custom_id,
                                        style=STYLES.get(b.style, discord.ButtonStyle.secondary)))
    return view if view.children else None


def render(message: Message, *, guild_id: str | None = None) -> Rendered:
    """A Message as content, embeds, files and buttons within Discord's limits (`guild_id`: for DMs)."""
    view = render_view(message, guild_id)
    if message.is_error:
        text = f"⚠️ {neutralise(message.body)}"
        if message.footer:
            text += f"\n{neutralise(message.footer)}"
        return Rendered(content=clip(text, CONTENT_MAX), view=view)

    files: list[discord.File] = []
    color = COLORS.get(message.kind, COLORS["info"])
    title = clip(neutralise(message.title), TITLE_MAX) if message.title else None
    footer = clip(neutralise(message.footer), FOOTER_MAX) if message.footer else ""
    body = neutralise(message.body.strip())
    if message.code:
        suffix = {"python": "py", "sql": "sql"}.get(message.code_language, "txt")
        block = f"```{message.code_language}\n{fence_safe(message.code.rstrip())}\n```"
        joined = f"{body}\n\n{block}".strip()
        if len(joined) <= DESCRIPTION_MAX and len(joined) + len(title or "") + len(footer) <= MESSAGE_EMBED_MAX // 2:
            body = joined
        else:
            files.append(discord.File(io.BytesIO(message.code.encode()), filename=f"code.{suffix}"))
            body = f"{body}\n\n(code attached: code.{suffix})".strip()

    budget = MESSAGE_EMBED_MAX - len(title or "") - len(footer) - len(" · full text attached")
    complete = True
    embeds = [discord.Embed(title=title, color=color)]
    chunks = split_text(body, DESCRIPTION_MAX) if body else []
    for i, chunk in enumerate(chunks):
        if i >= EMBEDS_PER_MESSAGE or len(chunk) > budget:
            complete = False
            if budget > 200 and i < EMBEDS_PER_MESSAGE:
                (embeds[-1] if i == 0 else _new_embed(embeds, color)).description = clip(chunk, budget)
                budget = 0
            break
        target = embeds[0] if i == 0 else _new_embed(embeds, color)
        target.description = chunk
        budget -= len(chunk)
    last = embeds[-1]
    for f in message.fields:
        name = clip(neutralise(f.name), FIELD_NAME_MAX) or ZWSP
        value = clip(neutralise(f.value), FIELD_VALUE_MAX) or ZWSP
        if len(last.fields) >= FIELDS_MAX or len(name) + len(value) > budget:
            complete = False
            break
        if value != neutralise(f.value) or name != neutralise(f.name):
            complete = False
        last.add_field(name=name, value=value, inline=f.inline)
        budget -= len(name) + len(value)
    if not complete:
        files.append(discord.File(io.BytesIO(message.plain_text().encode()), filename="message.txt"))
        footer = clip(f"{footer} · full text attached" if footer else "Full text attached", FOOTER_MAX)
    if footer:
        last.set_footer(text=footer)
    if message.image and Path(message.image).is_file():
        image = Path(message.image)
        files.append(discord.File(image, filename=image.name))
        embeds[0].set_image(url=f"attachment://{image.name}")
    return Rendered(embeds=embeds, files=files, view=view)


def _new_embed(embeds: list[discord.Embed], color: int) -> discord.Embed:
    embed = discord.Embed(color=color)
    embeds.append(embed)
    return embed


# -- the Chat port -----------------------------------------------------------------------------------

PERMISSION_NAMES = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "create_public_threads": "Create Public Threads",
    "create_private_threads": "Create Private Threads",
    "send_messages_in_threads": "Send Messages in Threads",
}


def channel_ref(value: str) -> int | None:
    """A channel id from a stored setting: digits, `<#id>` or `#id`; None for a channel name."""
    text = value.strip()
    match = _CHANNEL_REF.match(text)
    if match:
        return int(match.group(1))
    text = text.lstrip("#")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


# what a discord.py request can raise: RateLimited (a limit longer than max_ratelimit_timeout, or a
# request halted before it was made) is not an HTTPException and carries Discord's retry_after
DISCORD_ERRORS = (discord.HTTPException, discord.RateLimited)


def delivery_error(exc: Exception, where: str) -> DeliveryError:
    """discord.py errors as the core's DeliveryError: permanent when an admin must fix something."""
    if isinstance(exc, discord.Forbidden):
        if exc.code == 50007:
            return DeliveryError(f"{where} does not accept direct messages", permanent=True)
        return DeliveryError(f"missing permission or access in {where} ({exc.text or exc.status})", permanent=True)
    if isinstance(exc, discord.NotFound):
        return DeliveryError(f"unknown channel {where}: it was deleted or the bot cannot see it", permanent=True)
    if isinstance(exc, discord.RateLimited):  # discord.py waits out short limits itself; this one was too long
        return DeliveryError(f"Discord rate limit in {where}", retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException) and exc.status < 500 and exc.status != 429:
        return DeliveryError(f"Discord refused the message in {where}: {exc.text or exc.status}", permanent=True)
    return DeliveryError(f"Discord is unavailable ({exc}); will retry")


def post_nonce(key: str, message: Message) -> str:
    """Same outbox row, same nonce: with enforce_nonce Discord drops a retried duplicate. The
    content is mixed in so that two different messages under one key never collide."""
    raw = json.dumps([key, message.to_dict()], sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:25]


class DiscordChat:
    """The `Chat` port over a discord.py client."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def _channel(self, community: Community, ref: str) -> discord.TextChannel | discord.Thread:
        guild_id = int(community.external_id)
        is_thread = ref.startswith("thread:")
        channel_id = int(ref.removeprefix("thread:")) if is_thread else channel_ref(ref)
        channel: Any
        if channel_id is not None:
            channel = self.client.get_channel(channel_id)
            if channel is None:
                try:
                    channel = await self.client.fetch_channel(channel_id)
                except DISCORD_ERRORS as exc:
                    raise delivery_error(exc, f"#{ref}") from exc
        else:
            guild = self.client.get_guild(guild_id)
            if guild is None:
                try:
                    found = [c for c in await (await self.client.fetch_guild(guild_id)).fetch_channels()
                             if isinstance(c, discord.TextChannel) and c.name == ref.lstrip("#")]
                except DISCORD_ERRORS as exc:
                    raise delivery_error(exc, f"#{ref}") from exc
                channel = found[0] if found else None
            else:
                channel = discord.utils.get(guild.text_channels, name=ref.lstrip("#"))
            if channel is None:
                raise DeliveryError(f"no channel #{ref} in this server; set one with /admin setup channel",
                                    permanent=True)
        kind = discord.Thread if is_thread else discord.TextChannel
        if not isinstance(channel, kind) or channel.guild.id != guild_id:
            raise DeliveryError(f"#{ref} is not a text channel of this server; set one with /admin setup channel",
                                permanent=True)
        return channel

    @staticmethod
    def missing(channel: discord.abc.GuildChannel | discord.Thread, needed: Sequence[str]) -> list[str]:
        """The permissions the bot lacks in a channel (empty when it cannot tell)."""
        me = channel.guild.me
        if me is None:
            return []
        perms = channel.permissions_for(me)
        lacking = [p for p in needed if not getattr(perms, p)]
        for base, implied in (("view_channel", needed), ("send_messages", ("embed_links", "attach_files"))):
            if base in lacking:  # Discord denies these implicitly: name only what the admin must grant
                lacking = [p for p in lacking if p == base or p not in implied]
        return [PERMISSION_NAMES[p] for p in lacking]

    async def post(self, community: Community, channel: str, message: Message, *, key: str = "") -> str:
        """Post in a channel, or in a pair space (`thread:<id>`, or `dm:<user ids>` when it fell back to DMs)."""
        if channel.startswith("dm:"):
            return await self._post_to_dms(community, channel, message, key)
        target = await self._channel(community, channel)
        rendered = render(message)
        wants_thread = isinstance(target, discord.TextChannel) and any(b.action == "discuss" for b in message.buttons)
        sending = "send_messages_in_threads" if isinstance(target, discord.Thread) else "send_messages"
        needed = ["view_channel", sending, "embed_links"] + (["attach_files"] if rendered.files else [])
        lacking = self.missing(target, needed)
        if lacking:
            raise DeliveryError(f"missing permission {', '.join(lacking)} in #{target.name}", permanent=True)
        try:
            sent = await target.send(**rendered.kwargs(), nonce=post_nonce(key or f"{community.id}:{channel}", message))
        except DISCORD_ERRORS as exc:
            raise delivery_error(exc, f"#{target.name}") from exc
        # The message is out: from here on nothing may raise, or the outbox would post it again.
        if wants_thread:
            await self._open_thread(sent, message.title)
        return str(sent.id)

    async def _post_to_dms(self, community: Community, ref: str, message: Message, key: str) -> str:
        """A pair space that fell back to DMs: one outbox row per member (`<key>:dm:<member id>`), so
        each DM carries its own nonce and is retried on its own, and one member's closed DMs stop no
        one else. Written once (a retry of the space row finds the keys taken) and sent at once."""
        if not isinstance(self.client, OnsiteClient):
            raise DeliveryError("a pair space as DMs needs the Onsite client", permanent=True)
        services = self.client.services
        items = []
        for user_id in [u for u in ref.removeprefix("dm:").split(",") if u.isdigit()]:
            member = await services.store.find_member(community.id, user_id)
            if member is None or member.external_id != user_id:
                log.warning("pair space %s: member %s is no longer in %s", ref, user_id, community.name)
                continue
            items.append(OutboxItem(community_id=community.id, key=f"{key or ref}:dm:{member.id}", purpose="dm",
                                    member_id=member.id, message=message))
        await services.store.enqueue(items, now=services.clock.now())
        self.client.deliver_soon()
        return ref

    async def _open_thread(self, sent: discord.Message, title: str) -> int | None:
        try:
            thread = await sent.create_thread(name=clip(title or "Discussion", THREAD_NAME_MAX),
                                              auto_archive_duration=1440)
        except DISCORD_ERRORS as exc:
            if isinstance(exc, discord.HTTPException) and exc.code == 160004:  # it exists: it has the message's id
                return sent.id
            log.warning("could not open a thread on message %s: %s", sent.id, exc)
            return None
        return thread.id

    async def send_dm(self, member: Member, message: Message, *, key: str = "") -> None:
        user_id = int(member.external_id)
        guild_id = None
        if isinstance(self.client, OnsiteClient) and message.buttons:
            community = await self.client.services.store.get_community(member.community_id)
            guild_id = community.external_id if community is not None else None
        try:
            user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
            await user.send(**render(message, guild_id=guild_id).kwargs(), nonce=post_nonce(key or member.external_id, message))
        except DISCORD_ERRORS as exc:
            raise delivery_error(exc, member.display_name) from exc

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        """A private thread in the community's channel with the members added; DMs (a `dm:` ref) when
        there is no channel or no permission. A rate limit or an outage raises instead, so the
        outbox opens the space later rather than settling for DMs."""
        try:
            if not community.channel:
                raise LookupError("no channel")
            channel = await self._channel(community, community.channel)
            if not isinstance(channel, discord.TextChannel):
                raise LookupError("the community's channel is not a text channel")
            lacking = self.missing(channel, ["view_channel", "create_private_threads", "send_messages_in_threads"])
            if lacking:
                raise PermissionError(", ".join(lacking))
            try:
                thread = await channel.create_thread(name=clip(title, THREAD_NAME_MAX), invitable=False,
                                                     type=discord.ChannelType.private_thread, auto_archive_duration=10080)
            except DISCORD_ERRORS as exc:
                raise delivery_error(exc, f"#{channel.name}") from exc
            users = [discord.Object(int(m.external_id)) for m in members]
            try:
                for user in users:
                    await thread.add_user(user)
                mentions = " ".join(f"<@{u.id}>" for u in users)
                await thread.send(f"{mentions} your private space for this round's mock interview.",
                                  allowed_mentions=discord.AllowedMentions(users=users, everyone=False, roles=False))
            except DISCORD_ERRORS as exc:  # a limit or an outage is tried again later, like the thread itself
                failure = delivery_error(exc, f"the private thread {thread.name}")
                if not failure.permanent:
                    log.warning("pair space %r: thread %s is open but %s; the space is opened again later",
                                title, thread.id, failure)
                raise failure from exc
            return f"thread:{thread.id}"
        except DeliveryError as exc:
            if not exc.permanent:
                raise
            log.info("pair space %r as DMs: %s", title, exc)
        except Exception as exc:  # no channel, no permission, or Discord refused: fall back to DMs
            log.info("pair space %r as DMs: %s", title, exc)
        # The outbox posts the group's introduction into the space: here, to each member by DM.
        return "dm:" + ",".join(m.external_id for m in members)


# -- slash commands ----------------------------------------------------------------------------------


def py_name(arg_name: str) -> str:
    return re.sub(r"\W", "_", arg_name)


def option_annotation(kind: str, required: bool) -> Any:
    base: Any = {
        "int": app_commands.Range[int, 1, None],
        "member": discord.User,
        "file": discord.Attachment,
    }.get(kind, str)
    return base if required else Optional[base]  # noqa: UP045 - discord.py reads typing.Optional


class OnsiteTree(app_commands.CommandTree):
    """The command tree; failures inside discord.py's own checks become private error replies."""

    async def on_error(self, interaction: discord.Interaction, exc: app_commands.AppCommandError) -> None:
        client = interaction.client
        if isinstance(exc, app_commands.CommandInvokeError):
            name = interaction.command.qualified_name if interaction.command is not None else "?"
            if isinstance(client, OnsiteClient):
                client.record_failure(exc.original, where=f"/{name}", guild_id=interaction.guild_id)
            else:  # pragma: no cover - the tree belongs to an OnsiteClient
                log.error("/%s failed: %s", name, type(exc.original).__name__)
            text = "Something went wrong on our side; it has been logged. Please try again."
        elif isinstance(exc, app_commands.TransformerError):
            text = f"{exc.value!r} is not a valid {exc.type.name}."
        else:
            text = str(exc) or type(exc).__name__
        if isinstance(client, OnsiteClient):
            await client.reply_safely(interaction, error(text))


class NotHere(Exception):
    """The caller cannot use Onsite where they are (outside a server; a DM button of a server they are not in)."""


def defer_delay(interaction: discord.Interaction) -> float:
    """Seconds left before deferring: DEFER_AFTER_S after Discord created the interaction (its
    3-second deadline counts from there, whatever our own work took), and never more than
    DEFER_AFTER_S from now, should our clock run behind Discord's."""
    age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    return max(0.0, min(DEFER_AFTER_S, DEFER_AFTER_S - age))


def commands_digest(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> str:
    """A digest of what `tree.sync(guild=guild)` would send."""
    payload = sorted((c.to_dict(tree) for c in tree.get_commands(guild=guild)), key=lambda d: str(d["name"]))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class SyncRecord:
    """The digest of the commands last synced, per application and target (table `discord_state`)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    @classmethod
    def of(cls, store: object) -> SyncRecord | None:
        return cls(store) if isinstance(store, SqliteStore) else None  # another engine: sync at every start

    async def get(self, key: str) -> str | None:
        async with self.store.transaction() as db, db.execute(
                "SELECT value FROM discord_state WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def put(self, key: str, value: str, *, now: datetime) -> None:
        async with self.store.transaction() as db:
            await db.execute("INSERT INTO discord_state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key)"
                             " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                             (key, value, now.isoformat()))


class OnsiteClient(discord.AutoShardedClient):
    """The bot: slash commands from the core table, buttons and modals by custom id, the scheduler."""

    def __init__(
        self,
        *,
        services: Services | None = None,
        table: CommandTable | None = None,
        timezone: str = "UTC",
        post_time: str = "09:00",
        guild_id: int | None = None,
        on_ready_hook: Callable[[], Awaitable[None]] | None = None,
        sync: bool = False,
        **options: Any,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        # a rate limit longer than this raises RateLimited, so the outbox reschedules instead of hanging
        options.setdefault("max_ratelimit_timeout", 30.0)  # the smallest discord.py allows
        super().__init__(intents=intents, allowed_mentions=NO_MENTIONS, **options)
        self._services = services
        self.table = table or core_table()
        self.timezone = timezone
        self.post_time = post_time
        self.guild_id = guild_id
        self.force_sync = sync  # sync the commands even if unchanged (`python -m bot discord --sync`)
        self.on_ready_hook = on_ready_hook
        self._started = False
        self._thinking: dict[int, bool] = {}  # interaction id -> private, while its "thinking..." placeholder waits
        self._community_ids: dict[int, int] = {}  # guild id -> community id, for failure log lines
        self._background: set[asyncio.Task[None]] = set()
        self.tree = OnsiteTree(self)
        self.commands = build_commands(self, self.table)
        for command in self.commands:
            self.tree.add_command(command)

    @property
    def services(self) -> Services:
        assert self._services is not None, "services are attached before connecting"
        return self._services

    def attach(self, services: Services) -> None:
        self._services = services

    async def setup_hook(self) -> None:
        """Sync the commands, to one guild while developing (instant), globally in production, when
        they differ from the last sync this database recorded (or `force_sync`: `--sync`). A failed
        sync is logged: the bot runs with the commands Discord has, and the next start tries again."""
        guild = discord.Object(self.guild_id) if self.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        where = f"guild {self.guild_id}" if self.guild_id else "global"
        key = f"commands:{self.application_id}:{self.guild_id or 'global'}"
        digest = commands_digest(self.tree, guild)
        record = SyncRecord.of(self._services.store) if self._services is not None else None
        if record is not None and not self.force_sync:
            try:
                last = await record.get(key)
            except Exception as exc:  # an old database without the table: sync as before
                log.warning("cannot read the last command sync (%s); syncing", exc)
                last = None
            if last == digest:
                log.info("slash commands (%s) unchanged since the last sync; `python -m bot discord --sync` "
                         "syncs anyway", where)
                return
        try:
            synced = await self.tree.sync(guild=guild)
        except Exception as exc:  # 5xx, 429 (RateLimited), a refused command: never fatal
            log.error("could not sync the slash commands (%s): %s; running with the commands Discord has, "
                      "the next start tries again", where, exc, exc_info=not isinstance(exc, DISCORD_ERRORS))
            return
        log.info("synced %d %s commands%s", len(synced), where,
                 "" if guild is not None else " (they can take a while to show up)")
        if record is not None:
            try:
                await record.put(key, digest, now=self.services.clock.now())
            except Exception as exc:
                log.warning("could not record the command sync (%s); the next start syncs again", exc)

    async def on_ready(self) -> None:
        log.info("connected as %s to %d servers", self.user, len(self.guilds))
        if not self._started and self.on_ready_hook is not None:
            self._started = True
            await self.on_ready_hook()

    # -- who is calling ------------------------------------------------------------------------------

    async def context(self, interaction: discord.Interaction, dm_guild: str | None = None) -> Context:
        """The community (this guild) and the member; NotHere (saying why) outside a server.

        A button in a DM names its server (`dm_guild`); there the caller must already be a member by
        exact user id (never by a display name, which anyone can set to someone's id), and is never
        an admin: a DM carries no server permissions and the stored flag may be stale."""
        store = self.services.store
        now = self.services.clock.now()
        user = interaction.user
        display = safe_name(user.display_name)
        if interaction.guild_id is None:
            found = None
            if dm_guild is not None:
                found = next((c for c in await store.list_communities()
                              if c.platform == PLATFORM and c.external_id == dm_guild), None)
            member = await store.find_member(found.id, str(user.id)) if found is not None else None
            if found is None or member is None or member.external_id != str(user.id):
                raise NotHere("Onsite works inside a server: use its commands there.")
            self._community_ids[int(found.external_id)] = found.id
            return Context(self.services, Caller(member, found, is_admin=False), self.table, PLATFORM)
        guild = interaction.guild
        name = (guild.name if guild is not None and guild.name else None) or f"Discord server {interaction.guild_id}"
        community = await store.ensure_community(PLATFORM, str(interaction.guild_id), name, now=now,
                                                 timezone=self.timezone, post_time=self.post_time)
        self._community_ids[interaction.guild_id] = community.id
        is_admin = bool(interaction.permissions.manage_guild)
        member = await store.ensure_member(community.id, str(user.id), display, now=now, is_admin=is_admin)
        if member.is_admin != is_admin or member.display_name != display:
            member = await store.update_member(member.id, is_admin=int(is_admin), display_name=display)
        return Context(self.services, Caller(member, community, is_admin=is_admin), self.table, PLATFORM)

    # -- replies -------------------------------------------------------------------------------------

    async def reply(self, interaction: discord.Interaction, message: Message, *, ephemeral: bool | None = None) -> None:
        """Answer an interaction (or follow up a deferred one); never pings anyone.

        Errors are always private. After a "thinking..." defer, Discord gives the message that
        replaces the placeholder the defer's visibility whatever it asks for: when the reply wants
        the other one, the placeholder is resolved with a neutral line, the reply goes as a message
        of its own, and the line is removed."""
        rendered = render(message)
        private = (message.ephemeral or message.is_error) if ephemeral is None else ephemeral
        if not interaction.response.is_done():
            await interaction.response.send_message(**rendered.kwargs(), ephemeral=private)
            return
        placeholder = self._thinking.pop(interaction.id, None)
        if placeholder is None or placeholder == private:
            await interaction.followup.send(**rendered.kwargs(), ephemeral=private)
            return
        await interaction.edit_original_response(content=DONE_PLACEHOLDER, embeds=[], attachments=[], view=None)
        await interaction.followup.send(**rendered.kwargs(), ephemeral=private)
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.warning("could not remove the placeholder of interaction %s: %s", interaction.id, exc)

    async def reply_safely(self, interaction: discord.Interaction, message: Message) -> None:
        """An answer from an error handler: the interaction may have expired or been answered already.
        Tries the reply, then a private follow-up; logs what failed and never raises."""
        try:
            await self.reply(interaction, message)
            return
        except Exception as exc:  # 10062 Unknown interaction, InteractionResponded, a 5xx...
            first: Exception = exc
        try:
            await interaction.followup.send(**render(message).kwargs(), ephemeral=True)
        except Exception as exc:
            log.warning("could not answer interaction %s (%s): %s; follow-up: %s", interaction.id,
                        interaction.type.name, first, exc)

    async def defer(self, interaction: discord.Interaction, *, private: bool, thinking: bool = True) -> None:
        """Acknowledge now, with the visibility the reply will have (`thinking`: show a placeholder;
        a button without it answers by editing its message later)."""
        if interaction.response.is_done():
            return
        await interaction.response.defer(ephemeral=private, thinking=thinking)
        if thinking or interaction.type is discord.InteractionType.application_command:
            if len(self._thinking) > 10_000:  # answers that never came (a crash mid-command)
                self._thinking.clear()
            self._thinking[interaction.id] = private

    async def within_deadline(
        self, interaction: discord.Interaction, work: Awaitable[T], *, private: bool, thinking: bool = True,
        where: str = "an interaction",
    ) -> T:
        """Run `work` (which never answers the interaction itself) and defer if it is still running
        DEFER_AFTER_S after Discord created the interaction, so its 3-second deadline holds."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=defer_delay(interaction))
        if not done:
            try:
                await self.defer(interaction, private=private, thinking=thinking)
            except Exception:
                try:  # the work may already have written; let it finish, its answer has nowhere to go
                    await task
                except Exception as exc:
                    self.record_failure(exc, where=where, guild_id=interaction.guild_id)
                raise
        return await task

    def record_failure(self, exc: BaseException, *, where: str, guild_id: int | None = None) -> None:
        """An unexpected error, counted per kind and logged by the core's `Failures` (tokens masked,
        no arguments), with the community when this process has seen the server. One the core
        already counted (a failing command handler) is not counted or logged twice."""
        if self._services is None:  # pragma: no cover - services are attached before connecting
            log.error("%s failed: %s", where, type(exc).__name__)
            return
        community_id = self._community_ids.get(guild_id) if guild_id is not None else None
        self.services.failures.record(exc, where=where, community_id=community_id)

    def deliver_soon(self) -> None:
        """Deliver in the background what a delivery itself enqueued (a pair space's DMs), rather than
        at the next scheduler tick."""
        task = asyncio.get_running_loop().create_task(self.deliver())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def deliver(self) -> None:
        """What the command enqueued (announcements, posts) goes out after the member's own reply."""
        try:
            await self.services.outbox.deliver()
        except Exception as exc:  # the scheduler retries; a reply already went out
            self.record_failure(exc, where="the outbox delivery")

    # -- slash commands ------------------------------------------------------------------------------

    async def run_command(self, interaction: discord.Interaction, command: Command, options: Mapping[str, Any]) -> None:
        """A slash command: deferred at once when slow, else by the deadline, as publicly as it replies."""
        attachment = next((v for v in options.values() if isinstance(v, discord.Attachment)), None)
        if command.name == "submit" and not options.get("answer") and attachment is None and options.get("id"):
            await self.open_form(interaction, "submit", str(options["id"]))  # a modal must be the first answer
            return
        private = not command.public
        if command.name in SLOW_COMMANDS or attachment is not None:
            await self.defer(interaction, private=private)
        reply = await self.within_deadline(interaction, self._command_reply(interaction, command, options, attachment),
                                           private=private, where=f"/{command.name}")
        await self.reply(interaction, reply)
        await self.deliver()

    async def _command_reply(self, interaction: discord.Interaction, command: Command, options: Mapping[str, Any],
                             attachment: discord.Attachment | None) -> Message:
        try:
            ctx = await self.context(interaction)
        except NotHere as exc:
            return error(str(exc))
        raw: dict[str, Any] = {}
        for arg in command.args:
            value = options.get(py_name(arg.name))
            if value is None:
                continue
            if isinstance(value, discord.Attachment):
                raw[arg.name] = value.filename
            elif isinstance(value, discord.User | discord.Member):
                raw[arg.name] = await self.member_ref(ctx, value)
            else:
                raw[arg.name] = value
        if command.name == "admin setup" and raw.get("setting") == "channel" and raw.get("value"):
            raw["value"] = self.channel_setting(interaction, str(raw["value"]))
        if attachment is not None:
            ctx = Context(ctx.services, ctx.caller, ctx.table, PLATFORM, read_file=attachment_reader(attachment))
        return await dispatch(ctx, command.name, raw)

    async def member_ref(self, ctx: Context, user: discord.User | discord.Member) -> str:
        """A chosen user as the core looks members up: their id when known here, else their name."""
        known = await ctx.services.store.find_member(ctx.caller.community.id, str(user.id))
        return str(user.id) if known is not None else safe_name(user.display_name)

    @staticmethod
    def channel_setting(interaction: discord.Interaction, value: str) -> str:
        """`#daily`, `daily` or a channel link -> the channel id, so renaming it breaks nothing."""
        channel_id = channel_ref(value)
        if channel_id is not None:
            return str(channel_id)
        guild = interaction.guild
        if guild is not None:
            found = discord.utils.get(guild.text_channels, name=value.strip().lstrip("#"))
            if found is not None:
                return str(found.id)
        return value

    async def autocomplete_question(self, current: str) -> list[app_commands.Choice[str]]:
        bank = self.services.bank
        return [app_commands.Choice(name=clip(f"{qid} · {bank.get(qid).title}", 100), value=qid)
                for qid in bank.ids_starting(current, CHOICES_MAX)]

    # -- forms (modals) ------------------------------------------------------------------------------

    async def open_form(
        self, interaction: discord.Interaction, name: str, rest: str, *, dm_guild: str | None = None
    ) -> None:
        try:
            form = form_for(self.services.bank, name, rest)
        except OnsiteError as exc:
            await self.reply(interaction, error(str(exc)))
            return
        custom_id = f"{FORM_PREFIX}{name}:{rest}" if dm_guild is None else f"onsite-form@{dm_guild}:{name}:{rest}"
        if len(custom_id) > CUSTOM_ID_MAX:
            await self.reply(interaction, error(f"Use /{form.command} with your answer: this form cannot open here."))
            return
        try:
            modal = build_modal(form, custom_id)
        except UsageError as exc:
            await self.reply(interaction, error(str(exc)))
            return
        await interaction.response.send_modal(modal)
        modal.stop()  # the submission is handled by custom id in on_interaction, not by this object

    async def on_form(self, interaction: discord.Interaction, dm_guild: str | None, name: str, rest: str) -> None:
        try:
            form = form_for(self.services.bank, name, rest)
        except OnsiteError as exc:
            await self.reply(interaction, error(str(exc)))
            return
        command = self.table.commands.get(form.command)
        private = command is None or not command.public
        if form.command in SLOW_COMMANDS:
            await self.defer(interaction, private=private)
        reply = await self.within_deadline(interaction, self._form_reply(interaction, dm_guild, form), private=private,
                                           where=f"the {name} form")
        await self.reply(interaction, reply)
        await self.deliver()

    async def _form_reply(self, interaction: discord.Interaction, dm_guild: str | None, form: Form) -> Message:
        try:
            ctx = await self.context(interaction, dm_guild)
        except NotHere as exc:
            return error(str(exc))
        data: Mapping[str, Any] = interaction.data or {}
        wanted = {f.name for f in form.fields}
        filled = {k: v for k, v in modal_values(data.get("components", [])).items() if k in wanted}
        return await dispatch(ctx, form.command, {**form.fixed, **filled})

    # -- buttons -------------------------------------------------------------------------------------

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        data: Mapping[str, Any] = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        button = parse_button_id(custom_id)
        form = _FORM_ID.match(custom_id)
        try:
            if interaction.type is discord.InteractionType.component and button is not None:
                await self.on_button(interaction, button[1], button[2], dm_guild=button[0])
            elif interaction.type is discord.InteractionType.modal_submit and form is not None:
                await self.on_form(interaction, form.group(1), form.group(2), form.group(3))
        except Exception as exc:
            if form is not None:
                where = f"the {form.group(2)} form"
            elif button is not None and button[1] not in ("form", "discuss"):
                where = f"/{button[1]}"
            else:
                where = f"the {button[1] if button is not None else 'unknown'} button"
            self.record_failure(exc, where=where, guild_id=interaction.guild_id)
            await self.reply_safely(interaction, error("Something went wrong on our side; it has been logged."))

    async def on_button(
        self, interaction: discord.Interaction, action: str, value: str, *, dm_guild: str | None = None
    ) -> None:
        if action == "form":
            name, _, rest = value.partition(" ")
            await self.open_form(interaction, name, rest, dm_guild=dm_guild)
            return
        if action == "discuss":
            await self.reply(interaction, await self.within_deadline(interaction, self.discuss(interaction, dm_guild),
                                                                     private=True, where="the discuss button"))
            return
        in_place = self.updates_in_place(interaction, action)
        reply = await self.within_deadline(interaction, self._line_reply(interaction, dm_guild, f"/{action} {value}"),
                                           private=True, thinking=not in_place, where=f"/{action}")
        if in_place and not reply.is_error and not reply.ephemeral and {b.action for b in reply.buttons} == {action}:
            rendered = render(reply)
            if interaction.response.is_done():
                await interaction.edit_original_response(**rendered.kwargs(edit=True))
            else:
                await interaction.response.edit_message(**rendered.kwargs(edit=True))
            return
        await self.reply(interaction, reply, ephemeral=True)
        await self.deliver()

    async def _line_reply(self, interaction: discord.Interaction, dm_guild: str | None, line: str) -> Message:
        try:
            ctx = await self.context(interaction, dm_guild)
        except NotHere as exc:
            return error(str(exc))
        return await dispatch_line(ctx, line)

    @staticmethod
    def updates_in_place(interaction: discord.Interaction, action: str) -> bool:
        """Pages of the same command replace the message, when it is the clicker's own (or the bot's).

        Checked again on the reply: only a public reply whose buttons are that command's (another
        page) replaces the message; anything else (a hint from a lone Hint button) answers privately."""
        message = interaction.message
        if message is None:
            return False
        ids = [getattr(c, "custom_id", None) or "" for row in message.components
               for c in getattr(row, "children", [row])]
        actions = {parsed[1] for parsed in map(parse_button_id, ids) if parsed is not None}
        if actions != {action}:
            return False
        origin = message.interaction_metadata
        return origin is None or origin.user.id == interaction.user.id

    async def discuss(self, interaction: discord.Interaction, dm_guild: str | None = None) -> Message:
        """The thread of the clicked post, opened on first use."""
        try:
            await self.context(interaction, dm_guild)
        except NotHere as exc:
            return error(str(exc))
        message = interaction.message
        if message is None:
            return error("This post has no discussion.")
        thread = message.thread
        thread_id = thread.id if thread is not None else None
        if thread_id is None:
            title = message.embeds[0].title if message.embeds and message.embeds[0].title else "Discussion"
            try:
                thread_id = (await message.create_thread(name=clip(title, THREAD_NAME_MAX),
                                                         auto_archive_duration=1440)).id
            except discord.RateLimited as exc:
                return error(f"Discord is rate limiting new threads; try again in {exc.retry_after:.0f} s.")
            except discord.HTTPException as exc:
                if exc.code != 160004:
                    if not isinstance(exc, discord.Forbidden):
                        return error("Discord did not open the thread; try again in a minute.")
                    channel = getattr(message.channel, "name", "this channel")
                    return error(f"I could not open a thread: an admin must give me Create Public Threads in #{channel}.")
                thread_id = message.id
        return Message(body=f"Discuss it in <#{thread_id}>.", ephemeral=True)


def build_modal(form: Form, custom_id: str) -> discord.ui.Modal:
    """A Form as a modal: one labelled input per field, clamped to Discord's 4,000, and the note.

    Discord takes at most 5 components in a modal: the note is a text block of its own while a
    place is left, else it is the first field's description (100 characters); a form with more
    fields than that is refused with a UsageError naming the command to use instead."""
    if len(form.fields) > MODAL_COMPONENTS_MAX:
        raise UsageError(f"This form has {len(form.fields)} fields and a Discord form holds {MODAL_COMPONENTS_MAX}: "
                         f"use /{form.command} instead.")
    modal = discord.ui.Modal(title=clip(form.title, MODAL_TITLE_MAX), custom_id=custom_id, timeout=None)
    limits = [min(f.max_length or MODAL_INPUT_MAX, MODAL_INPUT_MAX) for f in form.fields]
    note = form.note.strip()
    if limits and max(limits) == MODAL_INPUT_MAX:
        note += (f" Discord takes up to {MODAL_INPUT_MAX:,} characters here; for more, attach a file "
                 f"(up to {human_size(MAX_ATTACHMENT_BYTES)}) with /{form.command}.")
    note = note.strip()
    note_block = bool(note) and len(form.fields) < MODAL_COMPONENTS_MAX
    for i, (f, limit) in enumerate(zip(form.fields, limits, strict=True)):
        text_input: discord.ui.TextInput[Any] = discord.ui.TextInput(
            custom_id=f.name,
            style=discord.TextStyle.paragraph if f.style == "paragraph" else discord.TextStyle.short,
            required=f.required,
            max_length=limit,
            placeholder=clip(f.placeholder, MODAL_PLACEHOLDER_MAX) if f.placeholder else None,
        )
        description = f"Up to {limit:,} characters."
        if i == 0 and note and not note_block:
            description = clip(note, MODAL_DESCRIPTION_MAX)
        modal.add_item(discord.ui.Label(text=clip(f.label, MODAL_LABEL_MAX), component=text_input,
                                        description=description))
    if note_block:
        modal.add_item(discord.ui.TextDisplay(clip(note, MODAL_INPUT_MAX)))
    return modal


def modal_values(components: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The filled-in values of a modal submission (action rows of old, labels of new)."""
    values: dict[str, str] = {}
    for component in components:
        if component.get("type") == 1:
            values.update(modal_values(component.get("components", [])))
        elif component.get("type") == 18 and "component" in component:
            values.update(modal_values([component["component"]]))
        elif "custom_id" in component and isinstance(component.get("value"), str):
            values[str(component["custom_id"])] = component["value"]
    return values


def attachment_reader(attachment: discord.Attachment) -> Callable[[str, int], Awaitable[str]]:
    """The `read_file` of a slash command: the attachment, refused by name and size before downloading."""

    async def read(_ref: str, max_bytes: int) -> str:
        limit = min(max_bytes, MAX_ATTACHMENT_BYTES)
        if not attachment.filename.lower().endswith(ATTACHMENT_SUFFIXES):
            raise UsageError(f"{attachment.filename} is not a {', '.join(ATTACHMENT_SUFFIXES)} file.")
        if attachment.size > limit:
            raise UsageError(f"{attachment.filename} is {human_size(attachment.size)}; the limit is {human_size(limit)}.")
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            raise NotFound(f"Could not download {attachment.filename} ({exc.status}); try again.") from None
        if len(data) > limit:
            raise UsageError(f"{attachment.filename} is over {human_size(limit)}.")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{attachment.filename} is not UTF-8 text.") from None

    return read


def build_commands(client: OnsiteClient, table: CommandTable) -> list[app_commands.Command[Any, ..., Any] | app_commands.Group]:
    """The slash commands of every command this platform offers, grouped by their first word."""
    commands = [c for c in table.for_platform(PLATFORM)]
    groups: dict[str, list[Command]] = {}
    top: list[app_commands.Command[Any, ..., Any] | app_commands.Group] = []
    for command in commands:
        if command.group is not None:
            groups.setdefault(command.group, []).append(command)
    for command in commands:
        if command.group is None:
            if command.name in groups:
                log.warning("/%s is both a command and a group on Discord; the group wins", command.name)
                continue
            top.append(slash_command(client, command, command.name, parent=None))
    for name, members in groups.items():
        all_admin = all(c.admin for c in members)
        group = app_commands.Group(
            name=name,
            description=clip(GROUP_DESCRIPTIONS.get(name, f"Onsite {name} commands"), DESCRIPTION_OPTION_MAX),
            guild_only=True,
            default_permissions=discord.Permissions(manage_guild=True) if all_admin else None,
        )
        for command in members:
            group.add_command(slash_command(client, command, command.name.split(" ", 1)[1], parent=group))
        top.append(group)
    return top


def slash_command(
    client: OnsiteClient, command: Command, name: str, *, parent: app_commands.Group | None
) -> app_commands.Command[Any, ..., Any]:
    """One core command as a discord.py command whose signature is built from its args."""
    params = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)]
    descriptions: dict[str, str] = {}
    choices: dict[str, list[app_commands.Choice[str]]] = {}
    autocomplete: dict[str, Any] = {}
    renames: dict[str, str] = {}
    for arg in command.args:
        pname = py_name(arg.name)
        params.append(inspect.Parameter(
            pname, inspect.Parameter.KEYWORD_ONLY, annotation=option_annotation(arg.kind, arg.required),
            default=inspect.Parameter.empty if arg.required else None,
        ))
        help_text = arg.help
        if arg.kind == "file":
            help_text = f"{arg.help}; up to {human_size(MAX_ATTACHMENT_BYTES)}"
        descriptions[pname] = clip(help_text, DESCRIPTION_OPTION_MAX)
        if pname != arg.name:
            renames[pname] = arg.name
        if arg.choices and len(arg.choices) <= CHOICES_MAX and arg.kind not in ("int", "member", "file"):
            choices[pname] = [app_commands.Choice(name=c, value=c) for c in arg.choices]
        elif arg.kind == "question":
            autocomplete[pname] = _question_autocomplete(client)

    async def callback(interaction: discord.Interaction, **options: Any) -> None:
        await client.run_command(interaction, command, options)

    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__qualname__ = callback.__name__ = py_name(command.name)
    markers: dict[str, Any] = {"param_description": descriptions}
    if choices:
        markers["param_choices"] = choices
    if autocomplete:
        markers["param_autocomplete"] = autocomplete
    if renames:
        markers["param_rename"] = renames
    if parent is None:
        markers["guild_only"] = True
        if command.admin:
            markers["default_permissions"] = discord.Permissions(manage_guild=True)
    for key, value in markers.items():  # what discord.py's decorators (describe, choices, ...) would set
        setattr(callback, f"__discord_app_commands_{key}__", value)
    summary = command.summary
    if command.admin and len(summary) + len(" (admins)") <= DESCRIPTION_OPTION_MAX:
        summary += " (admins)"
    summary = clip(summary, DESCRIPTION_OPTION_MAX)
    return app_commands.Command(name=name, description=summary, callback=callback, parent=parent)


def _question_autocomplete(client: OnsiteClient) -> Callable[[discord.Interaction, str], Awaitable[list[Any]]]:
    async def question_ids(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await client.autocomplete_question(current)

    question_ids.__qualname__ = question_ids.__name__
    return question_ids


# -- entry point -------------------------------------------------------------------------------------


async def run_discord(settings: Any, *, sync: bool = False) -> int:
    """`python -m bot discord [--sync]`: connect with DISCORD_TOKEN, serve every guild, run the
    scheduler; `sync`: register the slash commands even if they have not changed."""
    from bot.app import build_app
    from bot.scheduler import Scheduler

    client = OnsiteClient(timezone=settings.timezone, post_time=settings.post_time,
                          guild_id=settings.discord_guild_id, sync=sync)
    app = await build_app(settings, chat=DiscordChat(client), cooldown=True)
    client.attach(app.services)
    scheduler = Scheduler(app.services)
    client.on_ready_hook = scheduler.start
    try:
        async with client:
            await client.start(settings.discord_token.reveal())
    except discord.LoginFailure:
        log.error("Discord refused the token: check DISCORD_TOKEN (Bot tab of the developer portal)")
        return 2
    except discord.PrivilegedIntentsRequired:  # pragma: no cover - we request none
        log.error("Discord asked for a privileged intent; Onsite needs none")
        return 2
    except (OSError, discord.GatewayNotFound) as exc:
        log.error("cannot reach Discord: %s", exc)
        return 1
    finally:
        await scheduler.shutdown()
        log.info("unexpected errors since the start, per kind: %s", app.services.failures.summary())
        await app.close()
    return 0
