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
- The modal's `private_metadata` (command, fixed values, channel) is compact JSON with non-ASCII
  kept as is; when it would not fit Slack's 3,000 characters the form is refused with a `UsageError`
  saying so (never cut: cut JSON is not JSON). No view sets `notify_on_close`, so there is no
  `view_closed` listener: a modal closed while grading still gets its verdict as an ephemeral post.
- Buttons: `action_id` is `onsite:<action>:<n>`, the value the argument text. A click runs
  `/<action> <value>`; when all buttons of a block re-run one command (leaderboard pages) the block
  id is `onsite-actions:inplace:<owner>` (the member whose command made the message; no owner for
  the bot's own posts). The owner's click replaces the message with the next page, like Discord;
  anyone else gets their own copy of that page, ephemeral (and paging it replaces that copy).
  `discuss` starts a thread under the post.
- Rendering: `Message` -> Block Kit within the limits Slack's reference pages state (section text
  3,000, 10 fields of 2,000, 25 buttons with text 75, action_id 255, value 2,000, 50 blocks per
  message and 100 per view, modal title 24, input label 2,000, placeholder 150, image URL 3,000 and
  alt text 2,000, private_metadata 3,000); the fallback `text` is always set and never blank.
  Cuts happen after escaping and never split an entity (`&amp;`). A button whose action cannot
  round-trip through an `action_id` is left out. tests/adapters/test_slack_blockkit.py fuzzes
  this against a validator written from the docs. All text from the core is escaped (`&`, `<`,
  `>`), which neutralises `<!channel>`, `<!here>` and `<@U...>` in member-controlled text; Markdown
  bold becomes mrkdwn bold, `/command` mentions become `/onsite command`, and `#C0123` channel ids
  become channel links.
- Communities are workspaces (`team_id`), named from `team.info`. Members are Slack users; workspace
  admins and owners (`users.info`, cached for `USER_TTL_S`) are the community's admins. When
  `users.info` fails the caller is not an admin for that request (fail closed, not cached).
- Outbound (`SlackChat`): `chat.postMessage`; `not_in_channel` / `channel_not_found` / `is_archived`
  and token or scope problems are permanent `DeliveryError`s that tell the admin what to fix
  ("invite it with /invite @Onsite"); rate limits (429 + Retry-After) and 5xx are retried by the
  SDK's own retry handlers attached to the `AsyncWebClient`. DMs and pair spaces go through
  `conversations.open` (a group DM for a pair; its id is the space's reference, posted to like a channel).
- Scopes (`BOT_SCOPES`, the bot scopes of slack/manifest.yaml): `commands`, `chat:write`,
  `im:write` (DMs), `mpim:write` (group DMs), `users:read`, `team:read`, `files:read` (`--file`) and
  `files:write` (cards: `files_upload_v2` is files.getUploadURLExternal + completeUploadExternal).
  A delivery a member asked for that Slack refuses (a card, a Discuss thread, a form) is answered to
  that member, ephemerally, with the reason (`delivery_error`), not only logged.
- Unexpected errors (a bug, the database failing in the member lookup, a follow-up that breaks,
  what a listener lets out to Bolt) are counted per kind and logged once by the core's `Failures`,
  named after the command (`/leaderboard`) or the step, with the workspace's community; never with
  the command's text or a token. The member gets "Something went wrong".
- App Home: on `app_home_opened` the Home tab is published (`views.publish`) with the member's
  `/stats` and, when the table has it, `/mock status`.
- A `--file` argument is a Slack file (its id or permalink): read with `files.info` and downloaded
  with the bot token (scope `files:read`).
- Two ways to run. One workspace: `SLACK_BOT_TOKEN` (Socket Mode with `SLACK_APP_TOKEN`, or HTTP).
  Any number of workspaces: Bolt's OAuth install flow in HTTP mode (`SLACK_CLIENT_ID`,
  `SLACK_CLIENT_SECRET`, `SLACK_STATE_SECRET`, `SLACK_SIGNING_SECRET`; `check_slack_settings` says
  which is set up and refuses a mix). `/slack/install` shows Bolt's "Add to Slack" page asking for
  the manifest's scopes; `/slack/oauth_redirect` finishes it. `SlackInstallations` is slack_sdk's
  `AsyncInstallationStore` over our database (migration 0009, "issue 17: slack"): Bolt finds each
  request's bot token there (`installation_store_bot_only`), and `SlackChat.client_for_team` finds the
  token of the workspace it sends to (one client per token). The `state` is HMAC-signed with
  `SLACK_STATE_SECRET`, expires after 10 minutes and is good once (`SignedStateStore`; Bolt also checks
  it against the installer's browser cookie). An install makes the workspace its own community,
  marks it installed and DMs the installer how to set it up.
- `app_uninstalled` and `tokens_revoked` (for the bot) remove the workspace's tokens and mark it
  uninstalled (table `slack_workspaces`): its daily channel is set aside and the community's channel
  becomes '' (off: no posts, no admin DMs), and `SlackChat` refuses every send there as a permanent
  `DeliveryError` without calling Slack. Installing again (or, with one token, starting with a new
  one) puts the channel back. Lookups are cached in this process: exactly one process serves Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import App, build_app
from bot.config import ENV_NAMES, Settings
from bot.core.commands import CommandTable, Context, bind_line, core_table, dispatch, dispatch_line, tokenize
from bot.core.errors import ConfigError, NotFound, OnsiteError, UsageError
from bot.core.forms import form_for
from bot.core.messages import Button, Form, Message
from bot.core.models import Caller, Community, Member
from bot.core.ports import DeliveryError
from bot.scheduler import Scheduler
from bot.store.sqlite import Store

log = logging.getLogger(__name__)

PLATFORM = "slack"
SLASH = "/onsite"
ACK_BUDGET_S = 2.0  # Slack wants the ack within 3 s; keep a margin for the network
USER_TTL_S = 600.0

# Block Kit limits (docs.slack.dev/reference/block-kit: blocks, block elements, views)
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_BUTTONS = 25
MAX_BUTTON_LABEL = 75
MAX_VALUE = 2000
MAX_ACTION_ID = 255
MAX_FALLBACK = 3000
MAX_INPUT = 3000  # plain_text_input max_length
MAX_MODAL_TITLE = 24
MAX_HOME_BLOCKS = 100
MAX_HEADER = 150
MAX_LABEL = 2000
MAX_PLACEHOLDER = 150
MAX_IMAGE_URL = 3000
MAX_ALT_TEXT = 2000
MAX_METADATA = 3000
MAX_BLOCK_ID = 255

# The bot scopes of slack/manifest.yaml (tests/adapters/test_slack_scopes.py keeps the two equal);
# the OAuth install asks for the manifest's when the file is there, these otherwise (the image).
BOT_SCOPES = ("commands", "chat:write", "im:write", "mpim:write", "users:read", "team:read", "files:read",
              "files:write")
MANIFEST = Path(__file__).resolve().parents[2] / "slack" / "manifest.yaml"
STATE_TTL_S = 600  # an OAuth `state` is good for 10 minutes (Bolt's cookie lives as long)
UNINSTALLED = "Onsite was uninstalled from this Slack workspace (or its token revoked); install it again to resume"
GONE = frozenset({"token_revoked", "account_inactive"})  # Slack's answers once a workspace removed the app

PERMANENT_ERRORS = {
    "not_in_channel": "Onsite is not in {where}: invite it with /invite @Onsite",
    "channel_not_found": "Onsite cannot see {where}: check the name, or invite it with /invite @Onsite "
                         "if the channel is private",
    "is_archived": "{where} is archived: choose another channel with /onsite admin setup channel",
    "restricted_action": "this workspace does not let Onsite post in {where}",
    "missing_scope": "the Slack app lacks a scope ({detail}); reinstall it from slack/manifest.yaml",
    "invalid_auth": "the Slack bot token is invalid; set SLACK_BOT_TOKEN again (or reinstall the app)",
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
        """The notification / screen-reader text every Slack message carries (never blank)."""
        parts = [p[:MAX_FALLBACK] for p in (message.title, message.body) if p.strip()]  # escaping only grows
        if not parts:
            parts = [f.name[:MAX_FALLBACK] for f in message.fields[:3] if f.name.strip()]
        text = self.mrkdwn("\n".join(parts)).strip() or "Onsite"
        if message.is_error:
            text = ":warning: " + text
        return _cut(text, MAX_FALLBACK)

    def blocks(self, message: Message, *, max_blocks: int = MAX_BLOCKS, owner: str | None = None
               ) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        room = MAX_SECTION_TEXT * max_blocks  # more than this cannot be shown: not worth escaping
        if message.title.strip():
            blocks.append(_section("*" + _cut(self.mrkdwn(message.title[:MAX_SECTION_TEXT]), MAX_SECTION_TEXT - 2)
                                   + "*"))
        if message.body.strip():
            body = self.mrkdwn(message.body[:room])
            if message.is_error:
                body = ":warning: " + body
            blocks += _sections(split_text(body, MAX_SECTION_TEXT))
        inline: list[dict[str, Any]] = []

        def flush() -> None:
            if inline:
                blocks.append({"type": "section", "fields": list(inline)})
                inline.clear()

        for f in message.fields:
            if len(blocks) > max_blocks:
                break  # cut below anyway
            name, value = self.mrkdwn(f.name[:MAX_SECTION_TEXT]), self.mrkdwn(f.value[:room])
            text = "\n".join(part for part in (f"*{name}*" if name.strip() else "", value) if part.strip())
            if not text:
                continue
            if f.inline and len(text) <= MAX_FIELD_TEXT:
                inline.append({"type": "mrkdwn", "text": text})
                if len(inline) == MAX_FIELDS:
                    flush()
                continue
            flush()
            blocks += _sections(split_text(text, MAX_SECTION_TEXT))
        flush()
        if message.code and message.code.strip() and len(blocks) <= max_blocks:
            code = escape(message.code[:room].rstrip())
            blocks += [_section(f"```\n{chunk}\n```") for chunk in split_text(code, MAX_SECTION_TEXT - 8)]
        image = message.image or ""
        if image.startswith(("https://", "http://")) and len(image) <= MAX_IMAGE_URL:
            blocks.append({"type": "image", "image_url": image,
                           "alt_text": _cut(message.title.strip() or "image", MAX_ALT_TEXT)})
        actions = self.actions(message.buttons, owner=owner)
        if actions is not None:
            blocks.append(actions)
        footer = self.mrkdwn(message.footer[:MAX_SECTION_TEXT])
        if footer.strip():
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(footer, MAX_SECTION_TEXT)}]})
        if len(blocks) > max_blocks:
            tail = [b for b in blocks[-2:] if b["type"] in ("actions", "context")]
            blocks = blocks[: max_blocks - 1 - len(tail)]
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "… (cut to fit Slack)"}]})
            blocks += tail
        return blocks

    def actions(self, buttons: Sequence[Button], *, owner: str | None = None) -> dict[str, Any] | None:
        """One actions block, or None when no button can be carried (an action must survive its
        `action_id`: no ':' or '.', at most 255 characters with the prefix)."""
        usable = [b for b in buttons if b.action.strip() and ":" not in b.action and "." not in b.action
                  and len(f"onsite:{b.action}:{MAX_BUTTONS}") <= MAX_ACTION_ID][:MAX_BUTTONS]
        if not usable:
            return None
        in_place = len({b.action for b in usable}) == 1 and usable[0].action not in ("form", "discuss")
        elements = []
        for i, b in enumerate(usable):
            element: dict[str, Any] = {
                "type": "button",
                "action_id": f"onsite:{b.action.replace(' ', '.')}:{i}",  # "mock checkin" -> mock.checkin
                "text": {"type": "plain_text", "text": _cut(b.label.strip() or b.action, MAX_BUTTON_LABEL),
                         "emoji": True},
            }
            if b.value:
                element["value"] = b.value[:MAX_VALUE]
            if b.style in ("primary", "danger"):
                element["style"] = b.style
            elements.append(element)
        block_id = "onsite-actions"
        if in_place:
            block_id += ":inplace" + (f":{owner}" if owner and _USER_ID.fullmatch(owner) else "")
        return {"type": "actions", "block_id": block_id, "elements": elements}

    def payload(self, message: Message, *, owner: str | None = None) -> dict[str, Any]:
        """`text` + `blocks` for chat.postMessage, ack, respond; `owner` may page it in place."""
        return {"text": self.fallback(message), "blocks": self.blocks(message, owner=owner)}

    def modal(self, form: Form, *, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The form as a modal; a form Slack could not hold (or whose values do not fit in
        `private_metadata`) is a `UsageError` saying why."""
        private = json.dumps(dict(metadata), ensure_ascii=False, separators=(",", ":"))
        if len(private) > MAX_METADATA:
            raise UsageError(f"That is too long for a Slack form ({len(private) - MAX_METADATA:,} characters over "
                             f"Slack's {MAX_METADATA:,}): shorten it, or type the whole command with its values.")
        if len(form.fields) > MAX_HOME_BLOCKS - 1:
            raise UsageError(f"This form has {len(form.fields)} fields; a Slack form holds at most "
                             f"{MAX_HOME_BLOCKS - 1}.")
        names = [f.name for f in form.fields]
        if any(not n.strip() or len(n) > MAX_BLOCK_ID for n in names) or len(set(names)) != len(names):
            raise UsageError("This form cannot be shown in Slack (its fields need distinct names of 1 to 255 "
                             "characters); type the command with its values instead.")
        blocks: list[dict[str, Any]] = []
        limited = False
        for f in form.fields:
            wanted = MAX_INPUT if f.max_length is None else f.max_length
            limited = limited or f.max_length is None or f.max_length > MAX_INPUT  # the core allows more
            element: dict[str, Any] = {
                "type": "plain_text_input",
                "action_id": "value",
                "multiline": f.style == "paragraph",
                "max_length": max(1, min(wanted, MAX_INPUT)),
            }
            if f.placeholder.strip():
                element["placeholder"] = {"type": "plain_text", "text": _cut(f.placeholder, MAX_PLACEHOLDER)}
            blocks.append({
                "type": "input",
                "block_id": f.name,
                "optional": not f.required,
                "label": {"type": "plain_text", "text": _cut(f.label.strip() or f.name, MAX_LABEL)},
                "element": element,
            })
        notes = [form.note] if form.note.strip() else []
        if limited:
            notes.append(f"Slack limits this box to {MAX_INPUT:,} characters; for a longer solution upload the file "
                         f"and run {SLASH} submit <id> --file <the file's link>.")
        if notes:
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": _cut(self.mrkdwn(" ".join(notes)), MAX_SECTION_TEXT)}]})
        return {
            "type": "modal",
            "callback_id": "onsite:form",
            "title": {"type": "plain_text", "text": _cut(form.title.strip() or "Onsite", MAX_MODAL_TITLE)},
            "submit": {"type": "plain_text", "text": "Submit"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "private_metadata": private,
            "blocks": blocks,
        }

    def result_view(self, message: Message, title: str = "Onsite") -> dict[str, Any]:
        """A modal showing a reply (the verdict after a submission)."""
        blocks = [b for b in self.blocks(message, max_blocks=MAX_HOME_BLOCKS) if b["type"] != "actions"]
        return {
            "type": "modal",
            "callback_id": "onsite:result",
            "title": {"type": "plain_text", "text": _cut(title.strip() or "Onsite", MAX_MODAL_TITLE)},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": blocks or [_section(self.fallback(message))],
        }

    def home_view(self, community: str, parts: Sequence[Message]) -> dict[str, Any]:
        """The App Home tab: a header, a hint, then each part (stats, mock status) without buttons."""
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(f"Onsite · {community}", MAX_HEADER)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": self.mrkdwn(
                f"Practice for ML interview loops. Type {SLASH} help in any channel for the commands.")}]},
        ]
        for part in parts:
            blocks.append({"type": "divider"})
            blocks += [b for b in self.blocks(part, max_blocks=MAX_HOME_BLOCKS) if b["type"] != "actions"]
        if len(blocks) > MAX_HOME_BLOCKS:
            blocks = blocks[: MAX_HOME_BLOCKS - 1]
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "… (cut to fit Slack)"}]})
        return {"type": "home", "blocks": blocks}


_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _sections(chunks: Sequence[str]) -> list[dict[str, Any]]:
    return [_section(c) for c in chunks if c.strip()]  # Slack refuses a blank text


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut; an escape (`&amp;`) is never split."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    amp = head.rfind("&", len(head) - 5)
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + "…"


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


def make_client(token: str | None, *, base_url: str | None = None, max_retries: int = 2) -> AsyncWebClient:
    """A Web API client that retries rate limits (honouring Retry-After) and 5xx on its own (no token:
    the OAuth flow's, which Bolt gives each request's token)."""
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
    """The `Chat` port on the Slack Web API: one client (one token), or one per installed workspace."""

    def __init__(self, client: AsyncWebClient, renderer: Renderer | None = None) -> None:
        self.client = client
        self.renderer = renderer or Renderer(core_table())
        self.workspaces: SlackInstallations | None = None
        self.multi = False  # OAuth: each workspace's bot token from `workspaces`
        self._dm_channels: dict[tuple[str, str], str] = {}
        self._clients: dict[str, AsyncWebClient] = {}
        self._team_of: dict[int, str] = {}

    def attach(self, workspaces: SlackInstallations, *, multi: bool) -> None:
        """The adapter hands over the installation store (installed / uninstalled, tokens)."""
        self.workspaces = workspaces
        self.multi = multi

    def forget(self, team_id: str) -> None:
        """A workspace was (un)installed: its DM channels and clients are looked up again."""
        self._dm_channels = {k: v for k, v in self._dm_channels.items() if k[0] != team_id}
        self._clients.clear()

    async def client_for_team(self, team_id: str) -> AsyncWebClient:
        """The client that speaks for one workspace; a workspace without Onsite is a permanent error
        (nothing is sent there, not even a try)."""
        if self.workspaces is not None and await self.workspaces.is_uninstalled(team_id):
            raise DeliveryError(UNINSTALLED, permanent=True)
        if not self.multi:
            return self.client
        assert self.workspaces is not None
        bot = await self.workspaces.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            raise DeliveryError(f"Onsite is not installed in the Slack workspace {team_id}: install it from "
                                "/slack/install", permanent=True)
        client = self._clients.get(bot.bot_token)
        if client is None:
            client = self._clients[bot.bot_token] = make_client(bot.bot_token, base_url=self.client.base_url)
        return client

    async def workspace_of(self, community_id: int) -> str:
        if community_id not in self._team_of:
            community = await self.workspaces.store.get_community(community_id) if self.workspaces else None
            if community is None:
                raise DeliveryError("the community no longer exists", permanent=True)
            self._team_of[community_id] = community.external_id
        return self._team_of[community_id]

    async def _failed(self, team_id: str, exc: SlackApiError, where: str) -> DeliveryError:
        """Slack's error as the outbox's; a revoked token or an uninstalled app (an event we missed,
        say while down) marks the workspace uninstalled, so nothing is tried there again."""
        code = str(exc.response.get("error", "")) if exc.response is not None else ""
        if code in GONE and self.workspaces is not None:
            await self.workspaces.mark_uninstalled(team_id, now=datetime.now(UTC))
            self.forget(team_id)
        return delivery_error(exc, where)

    async def post(self, community: Community, channel: str, message: Message, *, key: str = "") -> str:
        target = channel.strip().lstrip("#")
        where = f"#{target}"
        client = await self.client_for_team(community.external_id)
        try:
            resp = await client.chat_postMessage(
                channel=target, unfurl_links=False, unfurl_media=False, **self.renderer.payload(message)
            )
        except SlackApiError as exc:
            raise await self._failed(community.external_id, exc, where) from None
        return f"{resp['channel']}:{resp['ts']}"

    async def dm_channel(self, team_id: str, user_id: str) -> str:
        key = (team_id, user_id)
        if key not in self._dm_channels:
            client = await self.client_for_team(team_id)
            resp = await client.conversations_open(users=user_id)
            self._dm_channels[key] = resp["channel"]["id"]
        return self._dm_channels[key]

    async def send_dm(self, member: Member, message: Message, *, key: str = "") -> None:
        team = await self.workspace_of(member.community_id) if self.workspaces is not None else ""
        client = await self.client_for_team(team)
        try:
            channel = await self.dm_channel(team, member.external_id)
            await client.chat_postMessage(channel=channel, **self.renderer.payload(message))
        except SlackApiError as exc:
            raise await self._failed(team, exc, f"a DM to {member.display_name}") from None

    async def open_pair_space(self, community: Community, members: Sequence[Member], title: str) -> str:
        client = await self.client_for_team(community.external_id)
        try:
            resp = await client.conversations_open(users=",".join(m.external_id for m in members))
        except SlackApiError as exc:
            raise await self._failed(community.external_id, exc, "a group DM") from None
        # the core posts the pairing message (titled `title`) into the space next: no intro of our own
        return str(resp["channel"]["id"])


# -- many workspaces: Bolt's installation store and OAuth state over our database --------------------


def _key(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
         ) -> tuple[str, str]:
    """The row key of an install: '' for no enterprise; an org-wide install has no team."""
    return enterprise_id or "", "" if is_enterprise_install else team_id or ""


def _to_json(data: Mapping[str, Any]) -> str:
    return json.dumps({k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()})


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class SlackInstallations(AsyncInstallationStore):
    """slack_sdk's `AsyncInstallationStore` over our database, plus whether each workspace still has
    Onsite. Every install is kept per (enterprise, team, installer); the workspace's current bot is
    its own row, as in slack_sdk's own stores. Lookups are cached in this process."""

    def __init__(self, store: Store, *, on_saved: Callable[[Installation], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.on_saved = on_saved
        self._bots: dict[tuple[str, str], Bot | None] = {}
        self._uninstalled: dict[str, bool] = {}

    @property
    def logger(self) -> logging.Logger:
        return log

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self.store.transaction() as db, db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def async_save(self, installation: Installation) -> None:
        enterprise, team = _key(installation.enterprise_id, installation.team_id, installation.is_enterprise_install)
        at = _stamp(installation.installed_at)
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT INTO slack_installations (enterprise_id, team_id, user_id, data, installed_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (enterprise_id, team_id, user_id)"
                " DO UPDATE SET data = excluded.data, installed_at = excluded.installed_at",
                (enterprise, team, installation.user_id, _to_json(installation.to_dict_for_copying()), at))
            if installation.bot_token:
                await self._save_bot_in(db, installation.to_bot(), enterprise, team)
        self._bots.pop((enterprise, team), None)
        if self.on_saved is not None:
            try:
                await self.on_saved(installation)
            except Exception:  # the install itself is stored; the welcome is a nicety
                log.exception("after installing in %s", team)

    async def async_save_bot(self, bot: Bot) -> None:
        enterprise, team = _key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        async with self.store.transaction() as db:
            await self._save_bot_in(db, bot, enterprise, team)
        self._bots.pop((enterprise, team), None)

    async def _save_bot_in(self, db: Any, bot: Bot, enterprise: str, team: str) -> None:
        await db.execute(
            "INSERT INTO slack_bots (enterprise_id, team_id, data, installed_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (enterprise_id, team_id) DO UPDATE SET data = excluded.data,"
            " installed_at = excluded.installed_at",
            (enterprise, team, _to_json(bot.to_dict_for_copying()), _stamp(bot.installed_at)))

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        key = _key(enterprise_id, team_id, is_enterprise_install)
        if key not in self._bots:
            rows = await self._rows("SELECT data FROM slack_bots WHERE enterprise_id = ? AND team_id = ?", key)
            if rows:
                data = json.loads(rows[0]["data"])
                data["bot_scopes"] = data.get("bot_scopes") or ""
                self._bots[key] = Bot(**data)
            else:
                self._bots[key] = None
        return self._bots[key]

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None, is_enterprise_install: bool | None = False
                                      ) -> Installation | None:
        enterprise, team = _key(enterprise_id, team_id, is_enterprise_install)
        sql = "SELECT data FROM slack_installations WHERE enterprise_id = ? AND team_id = ?"
        params: list[Any] = [enterprise, team]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        rows = await self._rows(sql + " ORDER BY installed_at DESC, id DESC LIMIT 1", params)
        if not rows:
            return None
        data = json.loads(rows[0]["data"])
        data["bot_scopes"] = data.get("bot_scopes") or ""
        data["user_scopes"] = data.get("user_scopes") or ""
        bot = await self.async_find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                        is_enterprise_install=is_enterprise_install)
        # the workspace's bot now, whichever install brought it; none once it was revoked
        for name in ("bot_token", "bot_id", "bot_user_id", "bot_refresh_token", "bot_token_expires_at"):
            data[name] = getattr(bot, name, None) if bot is not None else None
        data["bot_scopes"] = ",".join(bot.bot_scopes or []) if bot is not None else ""
        return Installation(**data)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        key = _key(enterprise_id, team_id)
        async with self.store.transaction() as db:
            await db.execute("DELETE FROM slack_bots WHERE enterprise_id = ? AND team_id = ?", key)
        self._bots[key] = None

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        enterprise, team = _key(enterprise_id, team_id)
        sql, params = "DELETE FROM slack_installations WHERE enterprise_id = ? AND team_id = ?", [enterprise, team]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        async with self.store.transaction() as db:
            await db.execute(sql, params)

    # -- whether a workspace still has Onsite ---------------------------------------------------------

    async def is_uninstalled(self, team_id: str) -> bool:
        if team_id not in self._uninstalled:
            rows = await self._rows("SELECT uninstalled_at FROM slack_workspaces WHERE team_id = ?", (team_id,))
            self._uninstalled[team_id] = bool(rows and rows[0]["uninstalled_at"])
        return self._uninstalled[team_id]

    async def _community(self, team_id: str) -> Community | None:
        return next((c for c in await self.store.list_communities()
                     if c.platform == PLATFORM and c.external_id == team_id), None)

    async def mark_uninstalled(self, team_id: str, *, now: datetime) -> None:
        """Nothing goes to this workspace any more; its daily channel is set aside (the community's
        channel becomes '', off) until it installs again."""
        community = await self._community(team_id)
        paused = community.channel if community is not None and community.channel else None
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT INTO slack_workspaces (team_id, uninstalled_at, paused_channel) VALUES (?, ?, ?)"
                " ON CONFLICT (team_id) DO UPDATE SET uninstalled_at = excluded.uninstalled_at,"
                " paused_channel = COALESCE(slack_workspaces.paused_channel, excluded.paused_channel)",
                (team_id, now.isoformat(), paused))
        self._uninstalled[team_id] = True
        if community is not None and community.channel:
            await self.store.update_community(community.id, channel="")

    async def mark_installed(self, team_id: str, *, now: datetime) -> None:
        """The workspace has Onsite (again): the channel set aside at the uninstall comes back."""
        rows = await self._rows("SELECT paused_channel FROM slack_workspaces WHERE team_id = ?", (team_id,))
        paused = rows[0]["paused_channel"] if rows else None
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT INTO slack_workspaces (team_id, installed_at) VALUES (?, ?) ON CONFLICT (team_id)"
                " DO UPDATE SET installed_at = excluded.installed_at, uninstalled_at = NULL, paused_channel = NULL",
                (team_id, now.isoformat()))
        self._uninstalled[team_id] = False
        community = await self._community(team_id)
        if paused and community is not None and community.channel == "":
            await self.store.update_community(community.id, channel=paused)


class SignedStateStore(AsyncOAuthStateStore):
    """The OAuth `state`: `nonce.expiry.hmac` signed with SLACK_STATE_SECRET, so a forged or
    expired one is refused without a lookup; each is good once (used nonces are kept until they
    expire, in the database, so a restart does not reopen them)."""

    def __init__(self, secret: str, store: Store, *, expiration_s: int = STATE_TTL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = secret.encode()
        self.store = store
        self.expiration_s = expiration_s
        self.clock = clock

    @property
    def logger(self) -> logging.Logger:
        return log

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        body = f"{secrets.token_hex(16)}.{int(self.clock()) + self.expiration_s}"
        return f"{body}.{self._sign(body)}"

    async def async_consume(self, state: str) -> bool:
        nonce, _, rest = (state or "").partition(".")
        expires, _, signature = rest.partition(".")
        if not (nonce and expires.isdigit() and signature):
            return False
        if not hmac.compare_digest(signature, self._sign(f"{nonce}.{expires}")):
            return False
        now = int(self.clock())
        if int(expires) < now:
            return False
        async with self.store.transaction() as db:
            await db.execute("DELETE FROM slack_oauth_states WHERE expires_at < ?", (_stamp(now),))
            cur = await db.execute("INSERT INTO slack_oauth_states (nonce, expires_at) VALUES (?, ?)"
                                   " ON CONFLICT (nonce) DO NOTHING", (nonce, _stamp(int(expires))))
            return bool(cur.rowcount == 1)


@dataclass(frozen=True)
class OAuthConfig:
    """What the OAuth install flow needs; the secrets never show in a repr."""

    client_id: str
    client_secret: str = field(repr=False)
    state_secret: str = field(repr=False)
    scopes: tuple[str, ...] = BOT_SCOPES
    redirect_uri: str | None = None


def manifest_scopes(path: Path = MANIFEST) -> tuple[str, ...]:
    """The bot scopes slack/manifest.yaml asks for (the operator's source of truth), else `BOT_SCOPES`."""
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
        return tuple(manifest["oauth_config"]["scopes"]["bot"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return BOT_SCOPES


OAUTH_SETTINGS = ("slack_client_id", "slack_client_secret", "slack_state_secret")


def oauth_config(settings: Settings) -> OAuthConfig | None:
    """The OAuth settings when any is set (all three must be), else None (one workspace, one token)."""
    given = [n for n in OAUTH_SETTINGS if getattr(settings, n)]
    if not given:
        return None
    settings.require(*OAUTH_SETTINGS)
    assert settings.slack_client_id and settings.slack_client_secret and settings.slack_state_secret
    return OAuthConfig(client_id=settings.slack_client_id, client_secret=settings.slack_client_secret.reveal(),
                       state_secret=settings.slack_state_secret.reveal(), scopes=manifest_scopes())


def check_slack_settings(settings: Settings, *, http: bool) -> None:
    """Which way Slack runs, refused early with what is missing: one token, or the OAuth flow (HTTP)."""
    if oauth_config(settings) is not None:
        if settings.slack_bot_token:
            names = ", ".join(ENV_NAMES[n] for n in OAUTH_SETTINGS)
            raise ConfigError(f"set SLACK_BOT_TOKEN (one workspace) or {names} (the OAuth install flow, any number "
                              "of workspaces), not both")
        if not http:
            raise ConfigError("the OAuth install flow needs HTTP mode: python -m bot slack --http PORT")
        settings.require("slack_signing_secret")
    elif http:
        settings.require("slack_bot_token", "slack_signing_secret")
    else:
        settings.require("slack_bot_token", "slack_app_token")


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
        oauth: OAuthConfig | None = None,
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
        self._community_ids: dict[str, int] = {}  # team id -> community id, for failure log lines
        self.installations = SlackInstallations(app.store, on_saved=self._installed)
        self.chat.attach(self.installations, multi=oauth is not None)
        oauth_settings = None
        if oauth is not None:
            oauth_settings = AsyncOAuthSettings(
                client_id=oauth.client_id, client_secret=oauth.client_secret, scopes=list(oauth.scopes),
                user_scopes=[], redirect_uri=oauth.redirect_uri, installation_store=self.installations,
                installation_store_bot_only=True, state_store=SignedStateStore(oauth.state_secret, app.store),
                state_expiration_seconds=STATE_TTL_S,
            )
            authorize = oauth_settings.authorize
            assert isinstance(authorize, AsyncInstallationStoreAuthorize)
            authorize.cache_enabled = True  # auth.test once per token, not once per request
        self.bolt = AsyncApp(
            client=client,
            signing_secret=signing_secret or "",
            request_verification_enabled=bool(signing_secret),
            process_before_response=True,
            oauth_settings=oauth_settings,
            name="onsite",
        )
        self.bolt.command(SLASH)(self._on_command)
        self.bolt.action(re.compile(r"^onsite:"))(self._on_action)
        self.bolt.view_submission("onsite:form")(self._on_form)
        self.bolt.event("app_home_opened")(self._on_home)
        self.bolt.event("app_uninstalled")(self._on_uninstalled)
        self.bolt.event("tokens_revoked")(self._on_tokens_revoked)
        self.bolt.error(self._on_error)

    # -- tasks -------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], *, where: str = "a Slack follow-up",
              team: str | None = None) -> asyncio.Task[Any]:
        """Post-ack work: tracked, so `drain()` (tests, shutdown) can wait for it; a failure is counted
        as an unexpected error of `where` (in workspace `team`)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._done(done, where, team))
        return task

    def _done(self, task: asyncio.Task[Any], where: str, team: str | None) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.record_failure(task.exception(), where=where, team=team)  # type: ignore[arg-type]

    def record_failure(self, exc: BaseException, *, where: str, team: str | None = None) -> None:
        """An unexpected error, counted per kind and logged by the core's `Failures` (tokens masked,
        no arguments), with the community of the workspace when this process has seen it. One the
        core already counted (a failing command handler) is not counted or logged twice."""
        community_id = self._community_ids.get(team) if team else None
        self.app.services.failures.record(exc, where=where, community_id=community_id)

    def command_name(self, text: str) -> str:
        """The command a typed line runs (`/leaderboard`), as failures are counted; `/onsite` if none."""
        try:
            tokens = tokenize(text)
            return "/" + self.table.resolve([t for t, _ in tokens[:2]], PLATFORM)[0].name
        except Exception:  # not a command: the core answers that itself
            return SLASH

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
            user = (await (await self._client(team_id)).users_info(user=user_id))["user"]
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
                self._teams[team_id] = str((await (await self._client(team_id)).team_info(team=team_id))["team"]["name"])
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
        self._community_ids[team_id] = community.id
        person = await self._person(team_id, user_id, user_name)
        member = await services.store.ensure_member(community.id, user_id, person.name, now=now,
                                                    is_admin=person.is_admin)
        if member.is_admin != person.is_admin:
            member = await services.store.update_member(member.id, is_admin=person.is_admin)
        return Caller(member, community, is_admin=person.is_admin)

    async def _client(self, team_id: str) -> AsyncWebClient:
        """The Web API client of the workspace a request came from."""
        return await self.chat.client_for_team(team_id)

    def context(self, caller: Caller) -> Context:
        team = caller.community.external_id

        async def read_file(ref: str, max_bytes: int) -> str:
            return await self.read_file(team, ref, max_bytes)

        return Context(self.app.services, caller, self.table, PLATFORM, read_file)

    async def read_file(self, team_id: str, ref: str, max_bytes: int) -> str:
        """A `--file` argument: a Slack file id or permalink, downloaded with the workspace's bot token."""
        match = re.search(r"\b(F[A-Z0-9]{6,})\b", ref)
        if match is None:
            raise UsageError(f"{ref!r} is not a Slack file: upload your .py file in Slack and give its link "
                             "(More actions > Copy link).")
        client = await self._client(team_id)
        try:
            info = (await client.files_info(file=match.group(1)))["file"]
        except SlackApiError as exc:
            raise NotFound(f"Onsite cannot read that file ({exc.response.get('error', 'error')}); "
                           "share it in a channel Onsite is in.") from None
        size = int(info.get("size") or 0)
        if size > max_bytes:
            raise UsageError(f"{info.get('name', 'That file')} is {size:,} bytes; the limit is {max_bytes:,}.")
        url = str(info.get("url_private_download") or info.get("url_private") or "")
        if not url or not self._trusted_download(url, client):
            raise NotFound("That file has no downloadable content.")
        headers = {"Authorization": f"Bearer {client.token}"}
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

    @staticmethod
    def _trusted_download(url: str, client: AsyncWebClient) -> bool:
        """The bot token is only ever sent to Slack's own file hosts (or the API host the client uses)."""
        host = urlsplit(url).hostname or ""
        return (urlsplit(url).scheme == "https" and (host == "slack.com" or host.endswith((".slack.com", ".slack-edge.com")))
                ) or host == urlsplit(client.base_url).hostname

    async def _guarded(self, work: Awaitable[Message | None], *, where: str, team: str | None) -> Message | None:
        """The member's answer to `work`: a domain error as itself, anything else counted (`where`:
        the command) and answered "Something went wrong"."""
        try:
            return await work
        except OnsiteError as exc:  # raised outside dispatch (form lookups, files)
            return Message(body=str(exc), kind="error", ephemeral=True)
        except Exception as exc:
            self.record_failure(exc, where=where, team=team)
            return Message(body="Something went wrong on Onsite's side; it was logged. Please try again.",
                           kind="error", ephemeral=True)

    # -- /onsite -----------------------------------------------------------------------------------

    async def _on_command(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        team = str(body.get("team_id") or "")
        where = self.command_name(unescape_command_text(body.get("text") or "").strip() or "help")
        work = self.spawn(self._guarded(self._run_command(body), where=where, team=team), where=where, team=team)
        done, _ = await asyncio.wait({work}, timeout=self.ack_budget_s)
        if work in done:
            reply = work.result()
            if reply is None:  # a modal was opened
                await ack()
            else:
                await ack(response_type=_response_type(reply), **self.renderer.payload(reply, owner=body["user_id"]))
                self.spawn(self.attach_image(body, reply, respond), where="the card upload", team=team)
            self.spawn(self.deliver(), where="the outbox delivery", team=team)
            return
        await ack(response_type="ephemeral", text="Working on it…")

        async def follow_up() -> None:
            reply = await work
            if reply is not None:
                await respond(response_type=_response_type(reply), **self.renderer.payload(reply, owner=body["user_id"]))
                await self.attach_image(body, reply, respond)
            await self.deliver()

        self.spawn(follow_up(), where=where, team=team)

    async def attach_image(self, body: Mapping[str, Any], reply: Message, respond: Any = None) -> None:
        """A reply's local picture (a stats or leaderboard card) is uploaded to the member's DM with
        Onsite: a slash-command response cannot carry a file, and the card is theirs. When Slack
        refuses, the member is told why (ephemerally), not only the log."""
        if not reply.image or not await asyncio.to_thread(Path(reply.image).is_file):
            return
        team, user = str(body["team_id"]), str(body["user_id"])
        try:
            client = await self._client(team)
            channel = await self.chat.dm_channel(team, user)
            await client.files_upload_v2(channel=channel, file=reply.image, filename=Path(reply.image).name,
                                         title=reply.title or "Onsite card",
                                         initial_comment=escape(reply.title or "Your card"))
        except (SlackApiError, DeliveryError) as exc:
            reason = str(delivery_error(exc, "your DM with Onsite") if isinstance(exc, SlackApiError) else exc)
            log.warning("could not upload the card for %s in %s: %s", user, team, reason)
            await self._tell(respond, f"Onsite could not send your card to your DM: {reason}.")

    async def _tell(self, respond: Any, text: str) -> None:
        """A failure of something the member asked for, told to that member only."""
        if respond is None:
            return
        try:
            await respond(response_type="ephemeral", replace_original=False,
                          **self.renderer.payload(Message(body=text, kind="error", ephemeral=True)))
        except Exception:  # the response_url expired (30 minutes): the log line is all that is left
            log.warning("could not tell the member: %s", text)

    async def _run_command(self, body: Mapping[str, Any]) -> Message | None:
        caller = await self.caller(body["team_id"], body["user_id"], user_name=body.get("user_name", ""),
                                   team_domain=body.get("team_domain", ""))
        ctx = self.context(caller)
        text = unescape_command_text(body.get("text") or "").strip()
        if not text:
            text = "help"
        form = self._form_for_line(text)
        if form is not None and body.get("trigger_id"):
            await self.open_form(body["team_id"], body["trigger_id"], form, channel=body.get("channel_id"))
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

    async def open_form(self, team_id: str, trigger_id: str, form: Form, *, channel: str | None) -> None:
        """Open the form as a modal; one Slack cannot show (or refuses) is a `UsageError` saying why."""
        metadata = {"command": form.command, "fixed": dict(form.fixed), "channel": channel or ""}
        view = self.renderer.modal(form, metadata=metadata)
        try:
            await (await self._client(team_id)).views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            code = exc.response.get("error", "error") if exc.response is not None else "error"
            raise UsageError(f"Slack did not open the form ({code}); please try again.") from None

    # -- buttons -----------------------------------------------------------------------------------

    async def _on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        verb = action["action_id"].split(":")[1].replace(".", " ")
        value = str(action.get("value") or "")
        if verb == "form":
            await self._open_form_button(body, value, respond)  # the trigger id expires in 3 s: no task
            return
        self.spawn(self._run_action(body, verb, value, action.get("block_id", ""), respond), where=f"/{verb}",
                   team=_team_id(body))

    async def _open_form_button(self, body: Mapping[str, Any], value: str, respond: Any) -> None:
        name, _, rest = value.partition(" ")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        try:
            form = form_for(self.app.services.bank, name, rest.strip())
            await self.open_form(_team_id(body), body["trigger_id"], form, channel=channel)
        except OnsiteError as exc:
            self.spawn(self._reply_to_action(body, Message(body=str(exc), kind="error", ephemeral=True), respond),
                       where="the form button", team=_team_id(body))

    async def _run_action(self, body: Mapping[str, Any], verb: str, value: str, block_id: str, respond: Any) -> None:
        if verb == "discuss":
            await self._discuss(body, value, respond)
            return
        team = _team_id(body)
        user = body["user"]

        async def run() -> Message | None:
            caller = await self.caller(team, user["id"], user_name=user.get("name", ""),
                                       team_domain=(body.get("team") or {}).get("domain", ""))
            return await dispatch_line(self.context(caller), f"/{verb} {value}")

        reply = await self._guarded(run(), where=f"/{verb}", team=team)
        if reply is not None:
            # onsite-actions:inplace[:owner]: only the owner (or anyone, on the bot's own post) turns the
            # message's page, and only to another page of the same command; anyone else gets a copy
            parts = block_id.split(":")
            owner = parts[2] if len(parts) > 2 else ""
            in_place = (parts[:2] == ["onsite-actions", "inplace"] and owner in ("", user["id"])
                        and not reply.is_error and not reply.ephemeral and {b.action for b in reply.buttons} == {verb})
            await self._reply_to_action(body, reply, respond, replace=in_place,
                                        owner=owner if in_place else user["id"])
        await self.deliver()

    async def _reply_to_action(self, body: Mapping[str, Any], reply: Message, respond: Any, *,
                               replace: bool = False, owner: str | None = None) -> None:
        payload = self.renderer.payload(reply, owner=owner)
        if respond is not None and body.get("response_url"):
            if replace:
                await respond(replace_original=True, **payload)
            else:
                await respond(response_type="ephemeral", replace_original=False, **payload)
            return
        # a click in the App Home or a modal has no response_url: answer in the member's DM
        team = _team_id(body)
        channel = await self.chat.dm_channel(team, body["user"]["id"])
        await (await self._client(team)).chat_postMessage(channel=channel, **payload)

    async def _discuss(self, body: Mapping[str, Any], question_id: str, respond: Any = None) -> None:
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        ts = message.get("thread_ts") or message.get("ts") or (body.get("container") or {}).get("message_ts")
        if not channel or not ts:
            return
        if message.get("reply_count"):
            return  # the thread exists; Slack shows it under the post
        try:
            await (await self._client(_team_id(body))).chat_postMessage(
                channel=channel, thread_ts=ts,
                text=self.renderer.mrkdwn(f"Discussion of `{question_id}`: reply in this thread. "
                                          "Please keep full solutions out until the answer is revealed."),
            )
        except SlackApiError as exc:
            await self._tell(respond, f"Onsite could not start the thread: {delivery_error(exc, 'this channel')}.")

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

        where = f"/{meta.get('command', 'form')}"
        work = self.spawn(self._guarded(run(), where=where, team=team), where=where, team=team)
        done, _ = await asyncio.wait({work}, timeout=self.ack_budget_s)
        title = view.get("title", {}).get("text", "Onsite")
        if work in done:
            reply = work.result()
            if reply is not None and reply.is_error and values:
                await ack(response_action="errors", errors={next(iter(values)): _cut(reply.body.strip() or "Not valid.",
                                                                                    150)})
                return
            await ack(response_action="update", view=self.renderer.result_view(reply or Message(body="Done."), title))
            if reply is not None:
                self.spawn(self._after_form(body, meta, reply, view_id=None), where=where, team=team)
            return
        await ack(response_action="update", view=self.renderer.result_view(
            Message(title="Grading…", body="The verdict appears here and in the channel (only you see it) when "
                                            "the judge is done."), title))

        async def follow_up() -> None:
            reply = await work
            if reply is not None:
                await self._after_form(body, meta, reply, view_id=view.get("id"))

        self.spawn(follow_up(), where=where, team=team)

    async def _after_form(self, body: Mapping[str, Any], meta: Mapping[str, Any], reply: Message, *,
                          view_id: str | None) -> None:
        """The verdict of a modal submission: into the modal (if still open) and ephemerally in the channel."""
        user_id = body["user"]["id"]
        team = _team_id(body)
        client = await self._client(team)
        if view_id:
            with contextlib.suppress(SlackApiError):  # closed meanwhile: the ephemeral post is enough
                await client.views_update(view_id=view_id, view=self.renderer.result_view(reply))
        payload = self.renderer.payload(reply, owner=user_id)
        channel = meta.get("channel")
        try:
            if not channel:
                raise LookupError("no channel")
            await client.chat_postEphemeral(channel=channel, user=user_id, **payload)
        except (SlackApiError, LookupError):
            dm = await self.chat.dm_channel(team, user_id)
            await client.chat_postMessage(channel=dm, **payload)
        await self.deliver()

    # -- App Home ----------------------------------------------------------------------------------

    async def _on_home(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        team = body.get("team_id") or event.get("view", {}).get("team_id", "")
        self.spawn(self.publish_home(team, event["user"]), where="the App Home", team=team)

    async def publish_home(self, team_id: str, user_id: str) -> None:
        caller = await self.caller(team_id, user_id)
        ctx = self.context(caller)
        parts = [await dispatch(ctx, "stats", {})]
        names = {c.name for c in self.table.for_platform(PLATFORM)}
        if "mock status" in names:
            status = await dispatch(ctx, "mock status", {})
            # "you're not in the rotation" is an error to a command, but just a state on a Home tab
            parts.append(replace(status, title="Mock interviews", kind="info") if status.is_error else status)
        view = self.renderer.home_view(caller.community.name, parts)
        await (await self._client(team_id)).views_publish(user_id=user_id, view=view)

    # -- installs and uninstalls ---------------------------------------------------------------------

    async def _installed(self, installation: Installation) -> None:
        """After an OAuth install: the workspace is its own community, installed, and the installer
        hears how to set it up."""
        team = installation.team_id or ""
        if not team:
            return
        settings, now = self.app.settings, self.app.services.clock.now()
        if installation.team_name:
            self._teams[team] = installation.team_name
        await self.app.services.store.ensure_community(PLATFORM, team, installation.team_name or team, now=now,
                                                       timezone=settings.timezone, post_time=settings.post_time)
        await self.workspace_installed(team)
        log.info("Slack: installed in %s (%s)", installation.team_name or team, team)
        if installation.user_id:
            self.spawn(self._welcome(team, installation.user_id, installation.team_name or "this workspace"),
                       where="the install welcome", team=team)

    async def _welcome(self, team: str, user_id: str, name: str) -> None:
        message = Message(
            title="Onsite is installed",
            body=f"Thanks for adding Onsite to {name}. A workspace admin or owner sets it up: invite Onsite to "
                 "the channel for the daily round (/invite @Onsite there), then /admin setup channel #daily, "
                 "/admin setup time 09:00 and /admin setup timezone Europe/Berlin. Everyone: /help.",
            kind="success")
        try:
            channel = await self.chat.dm_channel(team, user_id)
            await (await self._client(team)).chat_postMessage(channel=channel, **self.renderer.payload(message))
        except (SlackApiError, DeliveryError) as exc:
            log.warning("could not welcome the installer in %s: %s", team, exc)

    async def workspace_installed(self, team_id: str) -> None:
        """The workspace has Onsite (again): sends resume and its channel set aside comes back."""
        await self.installations.mark_installed(team_id, now=self.app.services.clock.now())
        self.chat.forget(team_id)

    async def workspace_uninstalled(self, team_id: str) -> None:
        await self.installations.mark_uninstalled(team_id, now=self.app.services.clock.now())
        self.chat.forget(team_id)
        self._people = {k: v for k, v in self._people.items() if k[0] != team_id}
        log.info("Slack: %s uninstalled Onsite or revoked its token; nothing is sent there until it installs again",
                 team_id)

    async def _on_uninstalled(self, body: dict[str, Any], context: Any) -> None:
        team = str(body.get("team_id") or context.team_id or "")
        await self.installations.async_delete_all(enterprise_id=context.enterprise_id, team_id=team)
        await self.workspace_uninstalled(team)

    async def _on_tokens_revoked(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        team = str(body.get("team_id") or context.team_id or "")
        tokens = event.get("tokens") or {}
        for user_id in tokens.get("oauth") or []:
            await self.installations.async_delete_installation(enterprise_id=context.enterprise_id, team_id=team,
                                                               user_id=user_id)
        if tokens.get("bot"):
            await self.installations.async_delete_bot(enterprise_id=context.enterprise_id, team_id=team)
            await self.workspace_uninstalled(team)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        """What a listener let out (Bolt answers the request with an error)."""
        kind = (body.get("event") or {}).get("type") or body.get("type") or body.get("command") or "request"
        self.record_failure(error, where=f"the Slack {kind}", team=_team_id(body) or None)


def _response_type(message: Message) -> str:
    return "ephemeral" if message.ephemeral or message.is_error else "in_channel"


def _team_id(body: Mapping[str, Any]) -> str:
    team = body.get("team") or {}
    return str(team.get("id") or (body.get("user") or {}).get("team_id") or body.get("team_id") or "")


# -- running -----------------------------------------------------------------------------------------


async def run_slack(settings: Settings, *, http_port: int | None = None,
                    stop: asyncio.Event | None = None, base_url: str | None = None) -> int:
    """`python -m bot slack`: one workspace's token in Socket Mode (app token) or HTTP on `http_port`
    (signing secret); or, with the OAuth settings, any number of workspaces installed over HTTP."""
    try:
        check_slack_settings(settings, http=http_port is not None)
        oauth = oauth_config(settings)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    client = make_client(settings.slack_bot_token.reveal() if settings.slack_bot_token else None, base_url=base_url)
    secret = settings.slack_signing_secret.reveal() if settings.slack_signing_secret else None
    chat = SlackChat(client)
    app = await build_app(settings, chat=chat, cooldown=True)
    adapter = SlackAdapter(app, client, signing_secret=secret, chat=chat, oauth=oauth)
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
        if oauth is None:
            auth = await client.auth_test()
            log.info("Slack: signed in as %s in %s", auth.get("user"), auth.get("team"))
            await adapter.workspace_installed(str(auth.get("team_id") or ""))  # a new token: resume there
        else:
            log.info("Slack: OAuth install flow; add a workspace at /slack/install (scopes: %s)",
                     ",".join(oauth.scopes))
        await scheduler.start()
        if http_port is not None:
            from aiohttp import web

            # Bolt's routes only (events; with OAuth the install pages); the port is our TCPSite's below
            # (slack-bolt 1.18, pyproject's floor, has no `port` parameter on web_app)
            runner = web.AppRunner(adapter.bolt.web_app(path="/slack/events"))
            await runner.setup()
            await web.TCPSite(runner, port=http_port).start()
            closers.append(runner.cleanup)
            log.info("Slack: HTTP mode, listening on :%d/slack/events%s", http_port,
                     " (and /slack/install, /slack/oauth_redirect)" if oauth is not None else "")
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
        log.info("unexpected errors since the start, per kind: %s", app.services.failures.summary())
        await app.close()
    return 0
