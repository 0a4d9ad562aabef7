"""Slack: the whole bot on Bolt for Python (async), over Socket Mode or HTTP.

Decisions, so the next reader does not have to rediscover them:

- One slash command, `/onsite`. The text after it is the core's command line, run through
  `commands.dispatch_line`, so every command of the core table (including ones added later) works
  with no change here. `/onsite` alone is `/onsite help`. Slack escapes mentions in the text
  (`should_escape` in the manifest): `<@U123|ada>` becomes the member id `U123` and `<#C123|daily>`
  the channel id `C123` before the core sees the line.
- Ack within 3 seconds: a command runs as a task; if it finishes within `ack_budget_s` its reply
  *is* the ack, otherwise the ack says "working on it" and the reply follows through the
  `response_url` (`respond`). Post-ack work runs in tasks the adapter tracks (`drain()` awaits
  them), and Bolt runs with `process_before_response=True`, so nothing the adapter starts is lost.
- `/onsite submit <id>` without an answer opens the question's form (`forms.form_for`) as a modal
  (`views.open` with the trigger id); so does any command typed with only the arguments its form
  fixes (`/onsite mock feedback bob` -> the feedback form). Any form the core describes opens the
  same way from a button whose action is `form`. Slack's inputs hold at most 3,000 characters;
  the modal says so. A modal submission acks at once: a usage error goes back as the input's error,
  a quick verdict replaces the modal, a slow one shows "grading..." and the verdict replaces it when
  done; the verdict is also posted with `chat.postEphemeral` in the channel the modal came from
  (or as a DM when the bot cannot post there), so it stays readable after the modal closes.
- Buttons: `action_id` is `onsite:<action>:<n>`, the value the argument text. A click runs
  `/<action> <value>`; when all buttons of a block re-run one command (leaderboard pages) the block
  id ends in `:inplace` and the reply replaces the message; otherwise the reply is ephemeral.
  `discuss` starts a thread under the post.
- Rendering: `Message` -> Block Kit within Slack's limits (3,000 characters per section text, 10
  fields of 2,000, 25 buttons, 50 blocks, value 2,000); the fallback `text` is always set. All text
  from the core is escaped (`&`, `<`, `>`), which neutralises `<!channel>`, `<!here>` and `<@U...>`
  in member-controlled text; Markdown bold becomes mrkdwn bold, `/command` mentions become
  `/onsite command`, and `#C0123` channel ids become channel links.
- Communities are workspaces (`team_id`), named from `team.info`. Members are Slack users; workspace
  admins and owners (`users.info`, cached for `USER_TTL_S`) are the community's admins. When
  `users.info` fails the caller is not an admin for that request (fail closed, not cached).
- Outbound (`SlackChat`): `chat.postMessage`; `not_in_channel` / `channel_not_found` / `is_archived`
  and token or scope problems are permanent `DeliveryError`s that tell the admin what to fix
  ("invite it with /invite @Onsite"); rate limits (429 + Retry-After) and 5xx are retried by the
  SDK's own retry handlers attached to the `AsyncWebClient`. DMs and pair spaces go through
  `conversations.open` (a group DM for a pair; its id is the space's reference, posted to like a channel).
- App Home: on `app_home_opened` the Home tab is published (`views.publish`) with the member's
  `/stats` and, when the table has it, `/mock status`.
- A `--file` argument is a Slack file (its id or permalink): read with `files.info` and downloaded
  with the bot token (scope `files:read`).
- Single-workspace tokens (`SLACK_BOT_TOKEN`) are what `run_slack` uses; Bolt's OAuth install flow
  is not wired (each workspace would need its own client in `SlackChat.client_for`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import App, build_app
from bot.config import Settings
from bot.core.commands import CommandTable, Context, bind_line, core_table, dispatch, dispatch_line, tokenize
from bot.core.errors import NotFound, OnsiteError, UsageError
from bot.core.forms import form_for
from bot.core.messages import Button, Form, Message
from bot.core.models import Caller, Community, Member
from bot.core.ports import DeliveryError
from bot.scheduler import Scheduler

log = logging.getLogger(__name__)

PLATFORM = "slack"
SLASH = "/onsite"
ACK_BUDGET_S = 2.0  # Slack wants the ack within 3 s; keep a margin for the network
USER_TTL_S = 600.0

# Block Kit limits (https://api.slack.com/reference/block-kit)
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_BUTTONS = 25
MAX_BUTTON_LABEL = 75
MAX_VALUE = 2000
MAX_FALLBACK = 3000
MAX_INPUT = 3000  # plain_text_input max_length
MAX_MODAL_TITLE = 24
MAX_HOME_BLOCKS = 100

PERMANENT_ERRORS = {
    "not_in_channel": "Onsite is not in {where}: invite it with /invite @Onsite",
    "channel_not_found": "Onsite cannot see {where}: check the name, or invite it with /invite @Onsite "
                         "if the channel is private",
    "is_archived": "{where} is archived: choose another channel with /onsite admin setup channel",
    "restricted_action": "this workspace does not let Onsite post in {where}",
    "missing_scope": "the Slack app lacks a scope ({detail}); reinstall it from slack/manifest.yaml",
    "invalid_auth": "the Slack bot token is invalid; set SLACK_BOT_TOKEN again",
    "token_revoked": "the Slack bot token was revoked; reinstall the app",
    "account_inactive": "the Slack app was uninstalled or deactivated; reinstall it",
    "user_not_found": "that Slack user does not exist any more",
    "cannot_dm_bot": "Slack does not allow DMs to bots",
}


# -- rendering ---------------------------------------------------------------------------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
_FENCE_LANG = re.compile(r"```[A-Za-z0-9_+-]+\n")
_CHANNEL_ID = re.compile(r"(?<![\w<])#([CG][A-Z0-9]{6,})\b")


def escape(text: str) -> str:
    """Slack's three control characters; neutralises `<!channel>`, `<!here>`, `<@U…>` and links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Renderer:
    """Turns neutral `Message`s into Block Kit for one command table (for `/command` mentions)."""

    def __init__(self, table: CommandTable) -> None:
        words = sorted({c.name.split(" ", 1)[0] for c in table.for_platform(PLATFORM)}, key=len, reverse=True)
        self._commands = re.compile(r"(?<![\w/.:-])/(" + "|".join(map(re.escape, words)) + r")\b") if words else None

    def mrkdwn(self, text: str) -> str:
        """Core Markdown -> escaped Slack mrkdwn."""
        out = escape(text)
        out = _BOLD.sub(r"*\1*", out)
        out = _FENCE_LANG.sub("```\n", out)
        if self._commands is not None:
            out = self._commands.sub(SLASH + r" \1", out)
        return _CHANNEL_ID.sub(r"<#\1>", out)

    def fallback(self, message: Message) -> str:
        """The notification / screen-reader text every Slack message carries."""
        parts = [message.title, message.body] if message.title else [message.body]
        if not any(parts):
            parts = [f.name for f in message.fields[:3]] or ["Onsite"]
        text = self.mrkdwn("\n".join(p for p in parts if p))
        if message.is_error:
            text = ":warning: " + text
        return _cut(text, MAX_FALLBACK)

    def blocks(self, message: Message, *, max_blocks: int = MAX_BLOCKS) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if message.title:
            blocks.append(_section(f"*{self.mrkdwn(message.title)}*"))
        if message.body:
            body = self.mrkdwn(message.body)
            if message.is_error:
                body = ":warning: " + body
            blocks += [_section(chunk) for chunk in split_text(body, MAX_SECTION_TEXT)]
        inline: list[dict[str, Any]] = []

        def flush() -> None:
            if inline:
                blocks.append({"type": "section", "fields": list(inline)})
                inline.clear()

        for f in message.fields:
            name, value = self.mrkdwn(f.name), self.mrkdwn(f.value) or " "
            if f.inline and len(name) + len(value) + 4 <= MAX_FIELD_TEXT:
                inline.append({"type": "mrkdwn", "text": f"*{name}*\n{value}"})
                if len(inline) == MAX_FIELDS:
                    flush()
                continue
            flush()
            blocks += [_section(chunk) for chunk in split_text(f"*{name}*\n{value}", MAX_SECTION_TEXT)]
        flush()
        if message.code:
            code = escape(message.code.rstrip())
            blocks += [_section(f"```\n{chunk}\n```") for chunk in split_text(code, MAX_SECTION_TEXT - 8)]
        if message.image and message.image.startswith(("https://", "http://")):
            blocks.append({"type": "image", "image_url": message.image, "alt_text": _cut(message.title or "image", 2000)})
        if message.buttons:
            blocks.append(self.actions(message.buttons))
        if message.footer:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(self.mrkdwn(message.footer),
                                                                                           MAX_SECTION_TEXT)}]})
        if len(blocks) > max_blocks:
            tail = [b for b in blocks[-2:] if b["type"] in ("actions", "context")]
            blocks = blocks[: max_blocks - 1 - len(tail)]
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "… (cut to fit Slack)"}]})
            blocks += tail
        return blocks

    def actions(self, buttons: Sequence[Button]) -> dict[str, Any]:
        in_place = len({b.action for b in buttons}) == 1 and buttons[0].action not in ("form", "discuss")
        elements = []
        for i, b in enumerate(buttons[:MAX_BUTTONS]):
            element: dict[str, Any] = {
                "type": "button",
                "action_id": f"onsite:{b.action.replace(' ', '.')}:{i}",  # "mock checkin" -> mock.checkin
                "text": {"type": "plain_text", "text": _cut(b.label, MAX_BUTTON_LABEL), "emoji": True},
                "value": b.value[:MAX_VALUE],
            }
            if b.style in ("primary", "danger"):
                element["style"] = b.style
            elements.append(element)
        return {"type": "actions", "block_id": f"onsite-actions{':inplace' if in_place else ''}", "elements": elements}

    def payload(self, message: Message) -> dict[str, Any]:
        """`text` + `blocks` for chat.postMessage, ack, respond."""
        return {"text": self.fallback(message), "blocks": self.blocks(message)}

    def modal(self, form: Form, *, metadata: Mapping[str, Any]) -> dict[str, Any]:
        blocks: list[dict[str, Any]] = []
        limited = False
        for f in form.fields:
            max_length = min(f.max_length or MAX_INPUT, MAX_INPUT)
            limited = limited or (f.max_length or MAX_INPUT) >= MAX_INPUT
            element: dict[str, Any] = {
                "type": "plain_text_input",
                "action_id": "value",
                "multiline": f.style == "paragraph",
                "max_length": max_length,
            }
            if f.placeholder:
                element["placeholder"] = {"type": "plain_text", "text": _cut(f.placeholder, 150)}
            blocks.append({
                "type": "input",
                "block_id": f.name,
                "optional": not f.required,
                "label": {"type": "plain_text", "text": _cut(f.label, 2000)},
                "element": element,
            })
        notes = [form.note] if form.note else []
        if limited:
            notes.append(f"Slack limits this box to {MAX_INPUT:,} characters; for a longer solution upload the file "
                         f"and run {SLASH} submit <id> --file <the file's link>.")
        if notes:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": self.mrkdwn(" ".join(notes))}]})
        return {
            "type": "modal",
            "callback_id": "onsite:form",
            "title": {"type": "plain_text", "text": _cut(form.title, MAX_MODAL_TITLE)},
            "submit": {"type": "plain_text", "text": "Submit"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "private_metadata": json.dumps(dict(metadata))[:3000],
            "blocks": blocks,
        }

    def result_view(self, message: Message, title: str = "Onsite") -> dict[str, Any]:
        """A modal showing a reply (the verdict after a submission)."""
        return {
            "type": "modal",
            "callback_id": "onsite:result",
            "title": {"type": "plain_text", "text": _cut(title, MAX_MODAL_TITLE)},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": [b for b in self.blocks(message, max_blocks=MAX_HOME_BLOCKS) if b["type"] != "actions"],
        }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def split_text(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` characters, cut at line ends; a code fence cut in two is re-opened."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    fenced = False
    for line in text.split("\n"):
        while len(line) > limit - 8:  # one enormous line: hard cut
            head, line = line[: limit - 8], line[limit - 8 :]
            if current:
                chunks.append(_close("\n".join(current), fenced))
                current, size = ["```"] if fenced else [], 4 if fenced else 0
            chunks.append(_close("\n".join([*current, head]), fenced))
            current, size = ["```"] if fenced else [], 4 if fenced else 0
        if size + len(line) + 1 > limit - 4 and current:
            chunks.append(_close("\n".join(current), fenced))
            current, size = ["```"] if fenced else [], 4 if fenced else 0
        current.append(line)
        size += len(line) + 1
        if line.strip().startswith("```"):
            fenced = not fenced
    if current:
        chunks.append("\n".join(current))
    return chunks


def _close(chunk: str, fenced: bool) -> str:
    return chunk + "\n```" if fenced else chunk


_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL_MENTION = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")
_SPECIAL = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>")


def unescape_command_text(text: str) -> str:
    """Slash-command text as the member meant it: mentions become ids, links plain URLs."""
    text = _USER_MENTION.sub(r"\1", text)
    text = _CHANNEL_MENTION.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _SPECIAL.sub(lambda m: m.group(2) or "@" + m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- outbound: the Chat port ------------------------------------------------------------------------


def make_client(token: str, *, base_url: str | None = None, max_retries: int = 2) -> AsyncWebClient:
    """A Web API client that retries rate limits (honouring Retry-After) and 5xx on its own."""
    kwargs: dict[str, Any] = {"token": token}
    if base_url is not None:
        kwargs["base_url"] = base_url
    client = AsyncWebClient(**kwargs)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=max_retries))
    client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=max_retries))
    return client


def delivery_error(exc: SlackApiError, where: str) -> DeliveryError:
    """A Slack API error as the outbox understands it: permanent ones say what the admin must fix."""
    code = str(exc.response.get("error", "")) if exc.response is not None else ""
    template = PERMANENT_ERRORS.get(code)
    if template is not None:
        detail = str(exc.response.get("needed", "")) if exc.response is not None else ""
        return DeliveryError(template.format(where=where, detail=detail or "see the manifest"), permanent=True)
    retry_after = None
    if exc.response is not None and exc.response.status_code == 429:  # still limited after the SDK's own retries
        header = (exc.response.headers or {}).get("Retry-After") or (exc.response.headers or {}).get("retry-after")
        retry_after = float(header) if header and str(header).isdigit() else 60.0
    return DeliveryError(f"Slack answered {code or exc}", permanent=False, retry_after=retry_after)


class SlackChat:
    """The `Chat` port on the Slack Web API."""

    def __init__(self, client: AsyncWebClient, renderer: Renderer | None = None) -> None:
        self.client = client
        self.renderer = renderer or Renderer(core_table())
        self._dm_channels: dict[str, str] = {}

    def client_for(self, community: Community | None = None) -> AsyncWebClient:
        """The client of a workspace (one token: the same client; an OAuth install store would look it up)."""
        return self.client

    async def post(self, community: Community, channel: str, message: Message, *, key: str = "") -> str:
        target = channel.strip().lstrip("#")
        where = f"#{target}"
        try:
            resp = await self.client_for(community).chat_postMessage(
                channel=target, unfurl_links=False, unfurl_media=False, **self.renderer.payload(message)
            )
        except SlackApiError as exc:
            raise delivery_error(exc, where) from None
        return f"{resp['channel']}:{resp['ts']}"

    async def dm_channel(self, user_id: str, client: AsyncWebClient | None = None) -> str:
        if user_id not in self._dm_channels:
            resp = await (client or self.client).conversations_open(users=user_id)
            self._dm_channels[user_id] = resp["channel"]["id"]
        return self._dm_channels[user_id]

    async def send_dm(self, member: Member, message: Message, *, key: str = "") -> None:
        try:
            channel = await self.dm_channel(member.external_id)
            await self.client.chat_postMessage(channel=channel, **self.renderer.payload(message))
        except SlackApiError as exc:
            raise delivery_error(exc, f"a DM to {member.display_name}") from None

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        client = self.client_for(community)
        try:
            resp = await client.conversations_open(users=",".join(m.external_id for m in members))
        except SlackApiError as exc:
            raise delivery_error(exc, "a group DM") from None
        # the core posts the pairing message (titled `title`) into the space next: no intro of our own
        return str(resp["channel"]["id"])


# -- inbound: the Bolt app ---------------------------------------------------------------------------


@dataclass
class _Person:
    name: str
    is_admin: bool
    at: float


class SlackAdapter:
    """Everything inbound: the Bolt app, its listeners and the translation to `commands.dispatch`."""

    def __init__(
        self,
        app: App,
        client: AsyncWebClient,
        *,
        signing_secret: str | None,
        chat: SlackChat | None = None,
        table: CommandTable | None = None,
        ack_budget_s: float = ACK_BUDGET_S,
    ) -> None:
        self.app = app
        self.client = client
        self.table = table or core_table()
        self.renderer = Renderer(self.table)
        self.chat = chat or SlackChat(client, self.renderer)
        self.ack_budget_s = ack_budget_s
        self._people: dict[tuple[str, str], _Person] = {}
        self._teams: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.bolt = AsyncApp(
            client=client,
            signing_secret=signing_secret or "",
            request_verification_enabled=bool(signing_secret),
            process_before_response=True,
            name="onsite",
        )
        self.bolt.command(SLASH)(self._on_command)
        self.bolt.action(re.compile(r"^onsite:"))(self._on_action)
        self.bolt.view_submission("onsite:form")(self._on_form)
        self.bolt.view_closed("onsite:form")(self._on_closed)
        self.bolt.event("app_home_opened")(self._on_home)
        self.bolt.error(self._on_error)

    # -- tasks -------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Post-ack work: tracked, so `drain()` (tests, shutdown) can wait for it; failures are logged."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack task failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait until every task started by a request has finished (and the ones they started)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def deliver(self) -> None:
        await self.app.services.outbox.deliver()

    # -- who is calling ----------------------------------------------------------------------------

    async def _person(self, team_id: str, user_id: str, fallback_name: str) -> _Person:
        key = (team_id, user_id)
        known = self._people.get(key)
        if known is not None and time.monotonic() - known.at < USER_TTL_S:
            return known
        try:
            user = (await self.client.users_info(user=user_id))["user"]
            profile = user.get("profile") or {}
            name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
            admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
            person = _Person(str(name or fallback_name or user_id), admin, time.monotonic())
        except SlackApiError as exc:  # fail closed: no admin rights we cannot confirm, and ask again next time
            log.warning("users.info %s failed: %s", user_id, exc)
            return _Person(known.name if known else fallback_name or user_id, False, time.monotonic())
        self._people[key] = person
        return person

    async def _team_name(self, team_id: str, fallback: str) -> str:
        if team_id not in self._teams:
            try:
                self._teams[team_id] = str((await self.client.team_info(team=team_id))["team"]["name"])
            except SlackApiError as exc:
                log.warning("team.info %s failed: %s", team_id, exc)
                return fallback or team_id
        return self._teams[team_id]

    async def caller(self, team_id: str, user_id: str, *, user_name: str = "", team_domain: str = "") -> Caller:
        """The community (workspace) and member (user) behind a request, created on first sight."""
        services = self.app.services
        settings = self.app.settings
        now = services.clock.now()
        community = await services.store.ensure_community(
            PLATFORM, team_id, await self._team_name(team_id, team_domain), now=now,
            timezone=settings.timezone, post_time=settings.post_time,
        )
        person = await self._person(team_id, user_id, user_name)
        member = await services.store.ensure_member(community.id, user_id, person.name, now=now,
                                                    is_admin=person.is_admin)
        if member.is_admin != person.is_admin:
            member = await services.store.update_member(member.id, is_admin=person.is_admin)
        return Caller(member, community, is_admin=person.is_admin)

    def context(self, caller: Caller) -> Context:
        return Context(self.app.services, caller, self.table, PLATFORM, self.read_file)

    async def read_file(self, ref: str, max_bytes: int) -> str:
        """A `--file` argument: a Slack file id or permalink, downloaded with the bot token."""
        match = re.search(r"\b(F[A-Z0-9]{6,})\b", ref)
        if match is None:
            raise UsageError(f"{ref!r} is not a Slack file: upload your .py file in Slack and give its link "
                             "(More actions > Copy link).")
        try:
            info = (await self.client.files_info(file=match.group(1)))["file"]
        except SlackApiError as exc:
            raise NotFound(f"Onsite cannot read that file ({exc.response.get('error', 'error')}); "
                           "share it in a channel Onsite is in.") from None
        size = int(info.get("size") or 0)
        if size > max_bytes:
            raise UsageError(f"{info.get('name', 'That file')} is {size:,} bytes; the limit is {max_bytes:,}.")
        url = str(info.get("url_private_download") or info.get("url_private") or "")
        if not url or not self._trusted_download(url):
            raise NotFound("That file has no downloadable content.")
        headers = {"Authorization": f"Bearer {self.client.token}"}
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
            if resp.status != 200:
                raise NotFound(f"Slack refused the download of that file (HTTP {resp.status}).")
            data = await resp.content.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UsageError(f"That file is over the limit of {max_bytes:,} bytes.")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("That file is not UTF-8 text.") from None

    def _trusted_download(self, url: str) -> bool:
        """The bot token is only ever sent to Slack's own file hosts (or the API host the client uses)."""
        host = urlsplit(url).hostname or ""
        return (urlsplit(url).scheme == "https" and (host == "slack.com" or host.endswith((".slack.com", ".slack-edge.com")))
                ) or host == urlsplit(self.client.base_url).hostname

    async def _guarded(self, work: Awaitable[Message | None]) -> Message | None:
        try:
            return await work
        except OnsiteError as exc:  # raised outside dispatch (form lookups, files)
            return Message(body=str(exc), kind="error", ephemeral=True)
        except Exception:
            log.exception("slack request failed")
            return Message(body="Something went wrong on Onsite's side; it was logged. Please try again.",
                           kind="error", ephemeral=True)

    # -- /onsite -----------------------------------------------------------------------------------

    async def _on_command(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        work = self.spawn(self._guarded(self._run_command(body)))
        done, _ = await asyncio.wait({work}, timeout=self.ack_budget_s)
        if work in done:
            reply = work.result()
            if reply is None:  # a modal was opened
                await ack()
            else:
                await ack(response_type=_response_type(reply), **self.renderer.payload(reply))
                self.spawn(self.attach_image(body, reply))
            self.spawn(self.deliver())
            return
        await ack(response_type="ephemeral", text="Working on it…")

        async def follow_up() -> None:
            reply = await work
            if reply is not None:
                await respond(response_type=_response_type(reply), **self.renderer.payload(reply))
                await self.attach_image(body, reply)
            await self.deliver()

        self.spawn(follow_up())

    async def attach_image(self, body: Mapping[str, Any], reply: Message) -> None:
        """A reply's local picture (a stats or leaderboard card) is uploaded to the member's DM with
        Onsite: a slash-command response cannot carry a file, and the card is theirs."""
        if not reply.image or not await asyncio.to_thread(Path(reply.image).is_file):
            return
        client = self.chat.client_for()
        try:
            channel = await self.chat.dm_channel(str(body["user_id"]), client)
            await client.files_upload_v2(channel=channel, file=reply.image, filename=Path(reply.image).name,
                                         title=reply.title or "Onsite card",
                                         initial_comment=escape(reply.title or "Your card"))
        except SlackApiError as exc:
            log.warning("could not upload the card: %s", exc)

    async def _run_command(self, body: Mapping[str, Any]) -> Message | None:
        caller = await self.caller(body["team_id"], body["user_id"], user_name=body.get("user_name", ""),
                                   team_domain=body.get("team_domain", ""))
        ctx = self.context(caller)
        text = unescape_command_text(body.get("text") or "").strip()
        if not text:
            text = "help"
        form = self._form_for_line(text)
        if form is not None and body.get("trigger_id"):
            await self.open_form(body["trigger_id"], form, channel=body.get("channel_id"))
            return None
        return await dispatch_line(ctx, "/" + text)

    def _form_for_line(self, text: str) -> Form | None:
        """The core's form for a command typed without the values the form collects (`submit <id>`)."""
        try:
            tokens = tokenize(text)
            command, used = self.table.resolve([t for t, _ in tokens[:2]], PLATFORM)
            bound = bind_line(command, text, tokens[used:])
            rest = " ".join(t for t, _ in tokens[used:])
        except (OnsiteError, KeyError, ValueError):
            return None
        # the form named like the command, or like its last word (`mock feedback bob` -> form "feedback")
        for name in dict.fromkeys((command.name, command.name.split(" ")[-1])):
            try:
                form = form_for(self.app.services.bank, name, rest)
            except (OnsiteError, KeyError, ValueError):
                continue
            if form.command != command.name or not rest:
                continue
            if any(f.name in bound for f in form.fields) or "file" in bound:
                return None
            return form
        return None

    async def open_form(self, trigger_id: str, form: Form, *, channel: str | None) -> None:
        metadata = {"command": form.command, "fixed": dict(form.fixed), "channel": channel or ""}
        await self.client.views_open(trigger_id=trigger_id, view=self.renderer.modal(form, metadata=metadata))

    # -- buttons -----------------------------------------------------------------------------------

    async def _on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        verb = action["action_id"].split(":")[1].replace(".", " ")
        value = str(action.get("value") or "")
        if verb == "form":
            await self._open_form_button(body, value)  # the trigger id expires in 3 s: no task
            return
        self.spawn(self._run_action(body, verb, value, action.get("block_id", ""), respond))

    async def _open_form_button(self, body: Mapping[str, Any], value: str) -> None:
        name, _, rest = value.partition(" ")
        try:
            form = form_for(self.app.services.bank, name, rest.strip())
        except OnsiteError as exc:
            self.spawn(self._reply_to_action(body, Message(body=str(exc), kind="error", ephemeral=True), None))
            return
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        await self.open_form(body["trigger_id"], form, channel=channel)

    async def _run_action(self, body: Mapping[str, Any], verb: str, value: str, block_id: str, respond: Any) -> None:
        if verb == "discuss":
            await self._discuss(body, value)
            return
        team = _team_id(body)
        user = body["user"]

        async def run() -> Message | None:
            caller = await self.caller(team, user["id"], user_name=user.get("name", ""),
                                       team_domain=(body.get("team") or {}).get("domain", ""))
            return await dispatch_line(self.context(caller), f"/{verb} {value}")

        reply = await self._guarded(run())
        if reply is not None:
            in_place = block_id.endswith(":inplace") and not reply.is_error
            await self._reply_to_action(body, reply, respond, replace=in_place)
        await self.deliver()

    async def _reply_to_action(self, body: Mapping[str, Any], reply: Message, respond: Any, *,
                               replace: bool = False) -> None:
        payload = self.renderer.payload(reply)
        if respond is not None and body.get("response_url"):
            if replace:
                await respond(replace_original=True, **payload)
            else:
                await respond(response_type="ephemeral", replace_original=False, **payload)
            return
        # a click in the App Home or a modal has no response_url: answer in the member's DM
        channel = await self.chat.dm_channel(body["user"]["id"], self.client)
        await self.client.chat_postMessage(channel=channel, **payload)

    async def _discuss(self, body: Mapping[str, Any], question_id: str) -> None:
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        ts = message.get("thread_ts") or message.get("ts") or (body.get("container") or {}).get("message_ts")
        if not channel or not ts:
            return
        if message.get("reply_count"):
            return  # the thread exists; Slack shows it under the post
        await self.client.chat_postMessage(
            channel=channel, thread_ts=ts,
            text=self.renderer.mrkdwn(f"Discussion of `{question_id}`: reply in this thread. "
                                      "Please keep full solutions out until the answer is revealed."),
        )

    # -- modals ------------------------------------------------------------------------------------

    async def _on_form(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        values = {
            block_id: (element.get("value") or "")
            for block_id, inputs in ((view.get("state") or {}).get("values") or {}).items()
            for element in inputs.values()
        }
        user = body["user"]
        team = _team_id(body)

        async def run() -> Message | None:
            caller = await self.caller(team, user["id"], user_name=user.get("name", ""),
                                       team_domain=(body.get("team") or {}).get("domain", ""))
            return await dispatch(self.context(caller), meta["command"], {**meta.get("fixed", {}), **values})

        work = self.spawn(self._guarded(run()))
        done, _ = await asyncio.wait({work}, timeout=self.ack_budget_s)
        title = view.get("title", {}).get("text", "Onsite")
        if work in done:
            reply = work.result()
            if reply is not None and reply.is_error and values:
                await ack(response_action="errors", errors={next(iter(values)): _cut(reply.body, 150)})
                return
            await ack(response_action="update", view=self.renderer.result_view(reply or Message(body="Done."), title))
            if reply is not None:
                self.spawn(self._after_form(body, meta, reply, view_id=None))
            return
        await ack(response_action="update", view=self.renderer.result_view(
            Message(title="Grading…", body="The verdict appears here and in the channel (only you see it) when "
                                            "the judge is done."), title))

        async def follow_up() -> None:
            reply = await work
            if reply is not None:
                await self._after_form(body, meta, reply, view_id=view.get("id"))

        self.spawn(follow_up())

    async def _after_form(self, body: Mapping[str, Any], meta: Mapping[str, Any], reply: Message, *,
                          view_id: str | None) -> None:
        """The verdict of a modal submission: into the modal (if still open) and ephemerally in the channel."""
        user_id = body["user"]["id"]
        if view_id:
            with contextlib.suppress(SlackApiError):  # closed meanwhile: the ephemeral post is enough
                await self.client.views_update(view_id=view_id, view=self.renderer.result_view(reply))
        payload = self.renderer.payload(reply)
        channel = meta.get("channel")
        try:
            if not channel:
                raise LookupError("no channel")
            await self.client.chat_postEphemeral(channel=channel, user=user_id, **payload)
        except (SlackApiError, LookupError):
            dm = await self.chat.dm_channel(user_id, self.client)
            await self.client.chat_postMessage(channel=dm, **payload)
        await self.deliver()

    async def _on_closed(self, ack: Any) -> None:
        await ack()

    # -- App Home ----------------------------------------------------------------------------------

    async def _on_home(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        self.spawn(self.publish_home(body.get("team_id") or event.get("view", {}).get("team_id", ""), event["user"]))

    async def publish_home(self, team_id: str, user_id: str) -> None:
        caller = await self.caller(team_id, user_id)
        ctx = self.context(caller)
        parts = [await dispatch(ctx, "stats", {})]
        names = {c.name for c in self.table.for_platform(PLATFORM)}
        if "mock status" in names:
            status = await dispatch(ctx, "mock status", {})
            # "you're not in the rotation" is an error to a command, but just a state on a Home tab
            parts.append(replace(status, title="Mock interviews", kind="info") if status.is_error else status)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(f"Onsite · {caller.community.name}", 150)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": self.renderer.mrkdwn(
                f"Practice for ML interview loops. Type {SLASH} help in any channel for the commands.")}]},
        ]
        for part in parts:
            blocks.append({"type": "divider"})
            blocks += [b for b in self.renderer.blocks(part) if b["type"] != "actions"]
        await self.client.views_publish(user_id=user_id, view={"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]})

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled Slack request error (%s)", body.get("type") or body.get("command"), exc_info=error)


def _response_type(message: Message) -> str:
    return "ephemeral" if message.ephemeral or message.is_error else "in_channel"


def _team_id(body: Mapping[str, Any]) -> str:
    team = body.get("team") or {}
    return str(team.get("id") or (body.get("user") or {}).get("team_id") or body.get("team_id") or "")


# -- running -----------------------------------------------------------------------------------------


async def run_slack(settings: Settings, *, http_port: int | None = None,
                    stop: asyncio.Event | None = None, base_url: str | None = None) -> int:
    """`python -m bot slack`: Socket Mode with the app token, or HTTP on `http_port` with the signing secret."""
    assert settings.slack_bot_token is not None
    client = make_client(settings.slack_bot_token.reveal(), base_url=base_url)
    secret = settings.slack_signing_secret.reveal() if settings.slack_signing_secret else None
    if http_port is not None and not secret:
        log.error("HTTP mode needs SLACK_SIGNING_SECRET")
        return 2
    chat = SlackChat(client)
    app = await build_app(settings, chat=chat)
    adapter = SlackAdapter(app, client, signing_secret=secret, chat=chat)
    chat.renderer = adapter.renderer
    scheduler = Scheduler(app.services)
    if stop is None:  # run until SIGINT / SIGTERM
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    closers: list[Callable[[], Awaitable[Any]]] = []
    try:
        auth = await client.auth_test()
        log.info("Slack: signed in as %s in %s", auth.get("user"), auth.get("team"))
        await scheduler.start()
        if http_port is not None:
            from aiohttp import web

            runner = web.AppRunner(adapter.bolt.web_app(path="/slack/events", port=http_port))
            await runner.setup()
            await web.TCPSite(runner, port=http_port).start()
            closers.append(runner.cleanup)
            log.info("Slack: HTTP mode, listening on :%d/slack/events", http_port)
        else:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            assert settings.slack_app_token is not None
            app_token = settings.slack_app_token.reveal()
            # the SDK retries a refused app token without end; asking once ourselves turns it into a clean exit
            await make_client(app_token, base_url=base_url).apps_connections_open(app_token=app_token)
            handler = AsyncSocketModeHandler(adapter.bolt, app_token)
            await handler.connect_async()
            closers.append(handler.close_async)
            log.info("Slack: connected in Socket Mode")
        await stop.wait()
    except SlackApiError as exc:
        log.error("Slack refused to start: %s", exc.response.get("error") if exc.response else exc)
        return 1
    finally:
        await scheduler.shutdown()
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                await close()
        await adapter.drain()
        await app.close()
    return 0
