"""Gateway payloads and an HTTP-layer recorder for driving the Discord adapter through discord.py.

Nothing connects to Discord: the real client is built, its `HTTPClient.request` (every REST call) and
the webhook adapter's `request` (interaction callbacks and follow-ups) are replaced by a recorder
that answers with the JSON Discord would send, and INTERACTION_CREATE payloads are fed to the
client's own `ConnectionState.parse_interaction_create`, so discord.py parses them, runs its command
tree (option conversion, autocomplete, checks) and dispatches `on_interaction` as in production.

The fake is as strict as Discord where the adapter can get it wrong: an interaction is answered
within 3 seconds of its creation (the time in its snowflake id) or Discord says Unknown interaction
(10062); it is acknowledged once (40060); follow-ups need an acknowledgement (10015); the first
message after a "thinking" defer takes the defer's visibility, whatever flags it asks for; modals
and messages over Discord's limits are refused (50035). `feed` fails the test when a handler let an
exception escape (discord.py would only log it). `Transport` stands in for aiohttp under discord.py's
real `HTTPClient.request`, so its rate-limit handling (429, X-RateLimit-* headers) runs for real.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import discord
from discord.http import Route
from discord.webhook.async_ import AsyncWebhookAdapter
from multidict import CIMultiDict

from bot.adapters.discord_app import DiscordChat, OnsiteClient
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.services import Services
from bot.store.sqlite import Store

APP_ID = 900000000000000001
BOT_ID = 900000000000000002
GUILD_ID = 800000000000000001
OTHER_GUILD_ID = 800000000000000002
CHANNEL_ID = 700000000000000001
DM_CHANNEL_BASE = 600000000000000000
ALICE = 500000000000000001
BOB = 500000000000000002
CAROL = 500000000000000003
TIMESTAMP = "2026-11-23T12:00:00.000000+00:00"
MANAGE_GUILD = 1 << 5
ALL_PERMISSIONS = (1 << 50) - 1
_ids = itertools.count(100000000000000000)


def snowflake() -> int:
    return next(_ids)


_sequence = itertools.count()


def interaction_id(at: datetime | None = None) -> int:
    """An interaction id made `at` (now): Discord's 3-second deadline counts from the time it carries."""
    return discord.utils.time_snowflake(at or discord.utils.utcnow()) + next(_sequence) % (1 << 22)


def user(user_id: int, name: str = "alice", *, bot: bool = False, global_name: str | None = None) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": global_name or name,
            "avatar": None, "bot": bot}


def member(user_id: int, name: str = "alice", *, permissions: int = 0, nick: str | None = None) -> dict[str, Any]:
    return {"user": user(user_id, name), "nick": nick, "roles": [], "joined_at": TIMESTAMP, "deaf": False,
            "mute": False, "flags": 0, "permissions": str(permissions)}


def guild(guild_id: int = GUILD_ID, *, name: str = "ML Interview Prep", everyone: int = ALL_PERMISSIONS & ~8,
          channels: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A GUILD_CREATE payload: @everyone's permissions decide what the bot may do."""
    return {
        "id": str(guild_id), "name": name, "owner_id": "1", "icon": None, "features": [], "emojis": [], "stickers": [],
        "roles": [{"id": str(guild_id), "name": "@everyone", "permissions": str(everyone), "position": 0,
                   "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}],
        "channels": list(channels) or [text_channel(CHANNEL_ID, "daily", guild_id)],
        "members": [{"user": user(BOT_ID, "onsite", bot=True), "roles": [], "joined_at": TIMESTAMP,
                     "deaf": False, "mute": False, "flags": 0}],
        "threads": [], "member_count": 3, "large": False, "verification_level": 0, "default_message_notifications": 0,
        "explicit_content_filter": 0, "mfa_level": 0, "premium_tier": 0, "preferred_locale": "en-US",
        "system_channel_flags": 0, "nsfw_level": 0,
    }


def text_channel(channel_id: int, name: str, guild_id: int = GUILD_ID, *,
                 deny_everyone: int = 0) -> dict[str, Any]:
    overwrites = [{"id": str(guild_id), "type": 0, "allow": "0", "deny": str(deny_everyone)}] if deny_everyone else []
    return {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": name, "position": 0,
            "permission_overwrites": overwrites, "nsfw": False, "parent_id": None, "topic": None,
            "last_message_id": None, "rate_limit_per_user": 0}


def interaction(kind: int, data: Mapping[str, Any] | None, *, user_id: int = ALICE, username: str = "alice",
                permissions: int = 0, guild_id: int | None = GUILD_ID, message: Mapping[str, Any] | None = None,
                nick: str | None = None, created_at: datetime | None = None) -> dict[str, Any]:
    """An INTERACTION_CREATE payload as the gateway sends it."""
    payload: dict[str, Any] = {
        "id": str(interaction_id(created_at)), "application_id": str(APP_ID), "type": kind, "token": f"tok-{snowflake()}",
        "version": 1, "locale": "en-US", "entitlements": [], "authorizing_integration_owners": {"0": str(guild_id)} if guild_id else {"1": str(user_id)},
        "attachment_size_limit": 10 * 1024 * 1024, "app_permissions": str(ALL_PERMISSIONS),
    }
    if data is not None:
        payload["data"] = dict(data)
    if guild_id is not None:
        payload.update(guild_id=str(guild_id), guild_locale="en-US", context=0,
                       channel=text_channel(CHANNEL_ID, "daily", guild_id),
                       channel_id=str(CHANNEL_ID), member=member(user_id, username, permissions=permissions, nick=nick))
    else:
        payload.update(context=1, user=user(user_id, username),
                       channel={"id": str(DM_CHANNEL_BASE), "type": 1, "recipients": [user(user_id, username)]},
                       channel_id=str(DM_CHANNEL_BASE))
    if message is not None:
        payload["message"] = dict(message)
    return payload


def command_data(name: str, options: Mapping[str, Any] | None = None, *, types: Mapping[str, int] | None = None,
                 resolved: Mapping[str, Any] | None = None, focused: str | None = None) -> dict[str, Any]:
    """`data` of a slash command: "admin setup" is group `admin` with subcommand option `setup`."""
    types = types or {}
    opts = []
    for key, value in (options or {}).items():
        kind = types.get(key, 4 if isinstance(value, int) and not isinstance(value, bool) else 3)
        opt: dict[str, Any] = {"name": key, "type": kind, "value": value}
        if key == focused:
            opt["focused"] = True
        opts.append(opt)
    words = name.split(" ")
    data: dict[str, Any] = {"id": str(snowflake()), "name": words[0], "type": 1}
    if len(words) == 2:
        data["options"] = [{"name": words[1], "type": 1, "options": opts}]
    else:
        data["options"] = opts
    if resolved:
        data["resolved"] = dict(resolved)
    return data


def slash(name: str, options: Mapping[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    data_kw = {k: kw.pop(k) for k in ("types", "resolved") if k in kw}
    return interaction(2, command_data(name, options, **data_kw), **kw)


def autocomplete(name: str, options: Mapping[str, Any], focused: str, **kw: Any) -> dict[str, Any]:
    return interaction(4, command_data(name, options, focused=focused), **kw)


def click(custom_id: str, message: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
    return interaction(3, {"custom_id": custom_id, "component_type": 2}, message=message, **kw)


def modal_submit(custom_id: str, values: Mapping[str, str], **kw: Any) -> dict[str, Any]:
    """A modal submission as sent for Label-wrapped inputs (component type 18)."""
    components = [{"type": 18, "id": i + 1, "component": {"type": 4, "id": i + 10, "custom_id": k, "value": v}}
                  for i, (k, v) in enumerate(values.items())]
    return interaction(5, {"custom_id": custom_id, "components": components}, **kw)


def attachment(att_id: int, filename: str, size: int) -> dict[str, Any]:
    url = f"https://cdn.discordapp.com/attachments/{CHANNEL_ID}/{att_id}/{filename}"
    return {"id": str(att_id), "filename": filename, "size": size, "url": url, "proxy_url": url,
            "content_type": "text/x-python"}


def message_json(message_id: int, channel_id: int, payload: Mapping[str, Any] | None, *,
                 guild_id: int | None = GUILD_ID, author: Mapping[str, Any] | None = None,
                 interaction_user: int | None = None) -> dict[str, Any]:
    payload = payload or {}
    data: dict[str, Any] = {
        "id": str(message_id), "channel_id": str(channel_id), "author": dict(author or user(BOT_ID, "onsite", bot=True)),
        "content": payload.get("content") or "", "timestamp": TIMESTAMP, "edited_timestamp": None, "tts": False,
        "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": payload.get("embeds") or [], "pinned": False, "type": 0, "components": payload.get("components") or [],
        "flags": payload.get("flags") or 0,
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    if interaction_user is not None:
        data["interaction_metadata"] = {"id": str(snowflake()), "type": 2, "user": user(interaction_user),
                                        "authorizing_integration_owners": {}}
    return data


class FakeResponse:
    """What discord.HTTPException reads from an aiohttp response."""

    def __init__(self, status: int, reason: str = "") -> None:
        self.status = status
        self.reason = reason


def forbidden(code: int = 50013, text: str = "Missing Permissions") -> discord.Forbidden:
    return discord.Forbidden(FakeResponse(403, "Forbidden"), {"code": code, "message": text})  # type: ignore[arg-type]


def server_error() -> discord.DiscordServerError:
    return discord.DiscordServerError(FakeResponse(503, "Service Unavailable"), {"code": 0, "message": "overloaded"})  # type: ignore[arg-type]


def invalid_form_body(problem: str) -> discord.HTTPException:
    return discord.HTTPException(FakeResponse(400, "Bad Request"), {"code": 50035, "message": f"Invalid Form Body: {problem}"})  # type: ignore[arg-type]


def unknown_interaction() -> discord.NotFound:
    return discord.NotFound(FakeResponse(404, "Not Found"), {"code": 10062, "message": "Unknown interaction"})  # type: ignore[arg-type]


# Discord's limits (developer docs: message resource, embed limits, component reference, modals)
MODAL_LIMITS = {"title": 45, "custom_id": 100, "components": 5, "label": 45, "description": 100, "placeholder": 100,
                "input_length": 4000, "text_display": 4000}


def modal_problems(data: Mapping[str, Any]) -> list[str]:
    """What Discord would refuse in a modal (interaction callback type 9)."""
    problems = []
    title, custom_id = data.get("title") or "", data.get("custom_id") or ""
    if not 1 <= len(title) <= MODAL_LIMITS["title"]:
        problems.append(f"title: {len(title)} characters (1-45)")
    if not 1 <= len(custom_id) <= MODAL_LIMITS["custom_id"]:
        problems.append(f"custom_id: {len(custom_id)} characters (1-100)")
    top = list(data.get("components") or [])
    if not 1 <= len(top) <= MODAL_LIMITS["components"]:
        problems.append(f"components: {len(top)} (1-5)")
    inputs = []
    for c in top:
        kind = c.get("type")
        if kind == 18:  # Label: text (1-45), description (up to 100), one component
            if not 1 <= len(c.get("label") or "") <= MODAL_LIMITS["label"]:
                problems.append(f"label {c.get('label')!r}: 1-45 characters")
            if len(c.get("description") or "") > MODAL_LIMITS["description"]:
                problems.append(f"label description: {len(c['description'])} characters (up to 100)")
            inputs.append(c.get("component") or {})
        elif kind == 1:  # an action row of old, holding one text input with its own label
            row = c.get("components") or []
            if len(row) != 1 or not 1 <= len(row[0].get("label") or "") <= MODAL_LIMITS["label"]:
                problems.append("action row: exactly one labelled text input")
            inputs.extend(row)
        elif kind == 10:
            if not 1 <= len(c.get("content") or "") <= MODAL_LIMITS["text_display"]:
                problems.append("text display: 1-4000 characters")
        else:
            problems.append(f"component type {kind} is not allowed in a modal")
    ids = [i.get("custom_id") for i in inputs]
    if len(set(ids)) != len(ids):
        problems.append("custom ids of inputs repeat")
    for i in inputs:
        if i.get("type") != 4:
            problems.append(f"type {i.get('type')} inside a label is not a text input")
            continue
        if not 1 <= len(i.get("custom_id") or "") <= MODAL_LIMITS["custom_id"]:
            problems.append("input custom_id: 1-100 characters")
        if not 1 <= int(i.get("max_length", 4000)) <= MODAL_LIMITS["input_length"]:
            problems.append(f"input max_length {i.get('max_length')} (1-4000)")
        if len(i.get("placeholder") or "") > MODAL_LIMITS["placeholder"]:
            problems.append("input placeholder: up to 100 characters")
        if len(i.get("value") or "") > MODAL_LIMITS["input_length"]:
            problems.append("input value: up to 4000 characters")
    return problems


def message_problems(data: Mapping[str, Any], files: Sequence[str] = (), *, new: bool = True) -> list[str]:
    """What Discord would refuse in a message (content, embeds, buttons); `new`: not an edit."""
    problems = []
    content = data.get("content") or ""
    embeds = list(data.get("embeds") or [])
    rows = list(data.get("components") or [])
    if new and not (content or embeds or files or rows):
        problems.append("Cannot send an empty message")
    if len(content) > 2000:
        problems.append(f"content: {len(content)} characters (up to 2000)")
    if len(embeds) > 10:
        problems.append(f"embeds: {len(embeds)} (up to 10)")
    total = 0
    for e in embeds:
        fields = e.get("fields") or []
        sizes = {"title": (len(e.get("title") or ""), 256), "description": (len(e.get("description") or ""), 4096),
                 "footer": (len((e.get("footer") or {}).get("text") or ""), 2048), "fields": (len(fields), 25)}
        problems += [f"embed {k}: {n} (up to {limit})" for k, (n, limit) in sizes.items() if n > limit]
        for f in fields:
            if not 1 <= len(f.get("name") or "") <= 256 or not 1 <= len(f.get("value") or "") <= 1024:
                problems.append("embed field: name 1-256, value 1-1024 characters")
        total += sizes["title"][0] + sizes["description"][0] + sizes["footer"][0]
        total += sum(len(f.get("name") or "") + len(f.get("value") or "") for f in fields)
    if total > 6000:
        problems.append(f"embeds: {total} characters in all (up to 6000)")
    if len(rows) > 5:
        problems.append(f"components: {len(rows)} action rows (up to 5)")
    for row in rows:
        buttons = row.get("components") or []
        if row.get("type") != 1 or not 1 <= len(buttons) <= 5:
            problems.append("action row: 1-5 buttons")
        for b in buttons:
            if len(b.get("label") or "") > 80 or not 1 <= len(b.get("custom_id") or "") <= 100:
                problems.append("button: label up to 80, custom_id 1-100 characters")
    return problems


@dataclass
class Call:
    """One request discord.py made: method, route template, formatted path, JSON body, file names."""

    method: str
    template: str
    path: str
    payload: dict[str, Any]
    files: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=discord.utils.utcnow)
    failed: Exception | None = None  # what Discord answered instead, when it refused the request

    @property
    def is_callback(self) -> bool:
        return self.template.endswith("/callback")


@dataclass
class Shown:
    """A message the member sees as the answer to an interaction, with the visibility Discord gave it."""

    token: str
    private: bool
    payload: dict[str, Any] | None  # None while it is still a "thinking..." placeholder
    original: bool
    deleted: bool = False


@dataclass
class Acknowledged:
    """An interaction Discord has an answer for: the callback type, and its "thinking" placeholder if any."""

    kind: int
    flags: int
    placeholder: Shown | None = None


class Recorder:
    """Stands in for Discord's HTTP API: records each request, answers with plausible JSON."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: list[tuple[str, str, Exception]] = []  # (method, path regex, error): raised once each
        self.cdn: dict[str, bytes] = {}
        self.cdn_requests: list[str] = []
        self.guild_of_channel: dict[int, int] = {CHANNEL_ID: GUILD_ID}
        self.threads: dict[int, dict[str, Any]] = {}
        self.deadline_s = 3.0  # an interaction unanswered this long after its creation is gone
        self.acknowledged: dict[str, Acknowledged] = {}  # by interaction token
        self.shown: list[Shown] = []

    def fail_once(self, method: str, path_pattern: str, exc: Exception) -> None:
        self.failures.append((method, path_pattern, exc))

    # -- queries used by the tests ----------------------------------------------------------------

    def matching(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.search(pattern, c.path)]

    def callbacks(self) -> list[Call]:
        """The interaction callbacks Discord accepted."""
        return [c for c in self.calls if c.is_callback and c.failed is None]

    def replies(self) -> list[dict[str, Any]]:
        """What the member was shown: callback messages (types 4, 7) and follow-ups/edits, in order."""
        shown = []
        for c in self.calls:
            if c.failed is not None:
                continue
            if c.is_callback and c.payload.get("type") in (4, 7):
                shown.append(c.payload.get("data") or {})
            elif c.template.startswith("/webhooks/{webhook_id}/{webhook_token}") and c.method in ("POST", "PATCH"):
                shown.append(c.payload)
        return shown

    def visible(self) -> list[Shown]:
        """The answers to interactions as members see them now (deleted ones gone), in order."""
        return [m for m in self.shown if not m.deleted]

    def channel_posts(self, channel_id: int = CHANNEL_ID) -> list[Call]:
        return self.matching("POST", rf"^/channels/{channel_id}/messages$")

    def clear(self) -> None:
        self.calls.clear()
        self.shown.clear()

    # -- the fake API -----------------------------------------------------------------------------

    def _maybe_fail(self, method: str, path: str) -> None:
        for i, (m, pattern, exc) in enumerate(self.failures):
            if m == method and re.search(pattern, path):
                del self.failures[i]
                raise exc

    def record(self, route: Route, payload: Any, form: Sequence[Mapping[str, Any]] | None,
               files: Sequence[discord.File] | None, params: Mapping[str, Any] | None) -> Call:
        body: Any = payload if isinstance(payload, list) else dict(payload or {})
        for part in form or ():
            if part.get("name") == "payload_json":
                body = json.loads(part["value"])
        path = route.url.split("/api/v10", 1)[-1].split("?")[0]
        call = Call(route.method, route.path, path, body, [f.filename or "" for f in files or ()], dict(params or {}))
        self.calls.append(call)
        try:
            self._maybe_fail(route.method, path)
            self.enforce(call)
        except Exception as exc:
            call.failed = exc
            raise
        return call

    # -- Discord's rules for interactions ---------------------------------------------------------

    def enforce(self, call: Call) -> None:
        """Refuse what Discord refuses: late or repeated callbacks, follow-ups before one, over-limit payloads."""
        callback = re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", call.path)
        if callback:
            self._callback(int(callback.group(1)), callback.group(2), call)
            return
        hook = re.fullmatch(r"/webhooks/\d+/([^/]+)(/messages/(@original|\d+))?", call.path)
        if hook:
            self._webhook(hook.group(1), hook.group(3), call)
        elif re.fullmatch(r"/channels/\d+/messages", call.path) and call.method == "POST":
            problems = message_problems(call.payload, call.files)
            if problems:
                raise invalid_form_body("; ".join(problems))

    def _callback(self, interaction_id: int, token: str, call: Call) -> None:
        age = (call.at - discord.utils.snowflake_time(interaction_id)).total_seconds()
        if age > self.deadline_s:
            raise unknown_interaction()
        if token in self.acknowledged:
            raise discord.HTTPException(FakeResponse(400, "Bad Request"),  # type: ignore[arg-type]
                                        {"code": 40060, "message": "Interaction has already been acknowledged."})
        kind = int(call.payload.get("type", 0))
        data = call.payload.get("data") or {}
        problems = modal_problems(data) if kind == 9 else message_problems(data, call.files) if kind == 4 else \
            message_problems(data, call.files, new=False) if kind == 7 else []
        if problems:
            raise invalid_form_body("; ".join(problems))
        flags = int(data.get("flags") or 0)
        ack = self.acknowledged[token] = Acknowledged(kind, flags)
        if kind == 4:
            self.shown.append(Shown(token, bool(flags & 64), dict(data), original=True))
        elif kind == 5:  # "thinking...": the message that resolves it keeps these flags
            ack.placeholder = Shown(token, bool(flags & 64), None, original=True)
            self.shown.append(ack.placeholder)

    def _webhook(self, token: str, which: str | None, call: Call) -> None:
        ack = self.acknowledged.get(token)
        if ack is None:
            raise discord.NotFound(FakeResponse(404, "Not Found"), {"code": 10015, "message": "Unknown Webhook"})  # type: ignore[arg-type]
        if call.method in ("POST", "PATCH"):
            problems = message_problems(call.payload, call.files, new=call.method == "POST")
            if problems:
                raise invalid_form_body("; ".join(problems))
        pending = ack.placeholder if ack.placeholder is not None and ack.placeholder.payload is None else None
        if call.method == "POST":
            if pending is not None and not pending.deleted:  # the first follow-up replaces the placeholder
                pending.payload = dict(call.payload)
            else:
                self.shown.append(Shown(token, bool(int(call.payload.get("flags") or 0) & 64), dict(call.payload),
                                        original=False))
        elif which == "@original" and call.method == "PATCH":
            if pending is not None:
                pending.payload = dict(call.payload)
            elif ack.placeholder is not None:
                ack.placeholder.payload = {**(ack.placeholder.payload or {}), **call.payload}
            else:
                original = next((m for m in self.shown if m.token == token and m.original), None)
                if original is not None:
                    original.payload = {**(original.payload or {}), **call.payload}
        elif which == "@original" and call.method == "DELETE":
            for m in self.shown:
                if m.token == token and m.original:
                    m.deleted = True

    def answer(self, call: Call) -> Any:
        m, path, body = call.method, call.path, call.payload
        if call.is_callback:
            return {"interaction": {"id": path.split("/")[2], "type": 2}}
        if re.fullmatch(r"/webhooks/\d+/[^/]+(/messages/@original)?", path):
            return message_json(snowflake(), CHANNEL_ID, body)
        match = re.fullmatch(r"/channels/(\d+)/messages", path)
        if match and m == "POST":
            channel_id = int(match.group(1))
            return message_json(snowflake(), channel_id, body, guild_id=self.guild_of_channel.get(channel_id))
        match = re.fullmatch(r"/channels/(\d+)/messages/(\d+)/threads", path)
        if match:
            return self.thread_json(int(match.group(2)), int(match.group(1)), body, kind=11)
        match = re.fullmatch(r"/channels/(\d+)/threads", path)
        if match:
            return self.thread_json(snowflake(), int(match.group(1)), body, kind=int(body.get("type", 11)))
        if re.fullmatch(r"/channels/\d+/thread-members/\d+", path):
            return None
        if path == "/users/@me/channels":
            recipient = int(body["recipient_id"])
            return {"id": str(DM_CHANNEL_BASE + recipient % 1000), "type": 1, "recipients": [user(recipient, "someone")]}
        match = re.fullmatch(r"/users/(\d+)", path)
        if match:
            return user(int(match.group(1)), "someone")
        match = re.fullmatch(r"/channels/(\d+)", path)
        if match and m == "GET":
            channel_id = int(match.group(1))
            if channel_id in self.threads:
                return self.threads[channel_id]
            return text_channel(channel_id, "daily", self.guild_of_channel.get(channel_id, GUILD_ID))
        return {}

    def thread_json(self, thread_id: int, parent_id: int, body: Mapping[str, Any], *, kind: int) -> dict[str, Any]:
        self.guild_of_channel[thread_id] = self.guild_of_channel.get(parent_id, GUILD_ID)
        self.threads[thread_id] = data = {"id": str(thread_id), "type": kind, "guild_id": str(self.guild_of_channel.get(parent_id, GUILD_ID)),
                "parent_id": str(parent_id), "name": body.get("name", "thread"), "owner_id": str(BOT_ID),
                "member_count": 1, "message_count": 0, "rate_limit_per_user": 0,
                "thread_metadata": {"archived": False, "auto_archive_duration": body.get("auto_archive_duration", 1440),
                                    "archive_timestamp": TIMESTAMP, "locked": False}}
        return data

    def install(self, client: discord.Client, monkeypatch: Any) -> None:
        """Replace the two HTTP entry points of discord.py (REST and webhooks) and the CDN download."""
        recorder = self

        async def rest(route: Route, *, files: Sequence[discord.File] | None = None,
                       form: Sequence[Mapping[str, Any]] | None = None, **kwargs: Any) -> Any:
            return recorder.answer(recorder.record(route, kwargs.get("json"), form, files, kwargs.get("params")))

        async def webhook(self: AsyncWebhookAdapter, route: Route, session: Any, *,
                          payload: Mapping[str, Any] | None = None, multipart: Sequence[Mapping[str, Any]] | None = None,
                          files: Sequence[discord.File] | None = None, params: Mapping[str, Any] | None = None,
                          **kwargs: Any) -> Any:
            return recorder.answer(recorder.record(route, payload, multipart, files, params))

        async def cdn(url: str) -> bytes:
            recorder.cdn_requests.append(url)
            return recorder.cdn[url]

        monkeypatch.setattr(client.http, "request", rest)
        monkeypatch.setattr(AsyncWebhookAdapter, "request", webhook)
        monkeypatch.setattr(client.http, "get_from_cdn", cdn)


async def settle(limit_s: float = 10.0) -> list[BaseException]:
    """Wait for every task the dispatch started (command tree invoker, on_interaction, deliveries);
    returns the exceptions those tasks ended with."""
    current = asyncio.current_task()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    seen: set[asyncio.Task[Any]] = set()
    while True:
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        seen.update(pending)
        if not pending:
            return [exc for t in seen if not t.cancelled() and (exc := t.exception()) is not None]
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"tasks still running: {pending}")
        await asyncio.wait(pending, timeout=remaining)


class TransportResponse:
    """An aiohttp response as discord.py's HTTPClient reads it: status, reason, headers, text."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None, *,
                 delay_s: float = 0.0) -> None:
        self.delay_s = delay_s  # how long Discord takes to answer
        self.status = status
        self.reason = {200: "OK", 204: "No Content", 429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "")
        self.headers = CIMultiDict({"Content-Type": "application/json", **(headers or {})})
        self._text = body if isinstance(body, str) else json.dumps(body)

    async def text(self, encoding: str = "utf-8") -> str:
        return self._text

    async def __aenter__(self) -> TransportResponse:
        await asyncio.sleep(self.delay_s)
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def rate_limited(retry_after: float, *, scope: str = "user", bucket: str = "b0cket") -> TransportResponse:
    """A 429 as Discord sends it (behind Google's proxy, hence `Via`), with the X-RateLimit-* headers."""
    return TransportResponse(429, {"message": "You are being rate limited.", "retry_after": retry_after,
                                   "global": scope == "global", "code": 0},
                             {"Via": "1.1 google", "Retry-After": str(int(retry_after + 0.999)),
                              "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                              "X-RateLimit-Reset-After": f"{retry_after:.3f}", "X-RateLimit-Bucket": bucket,
                              "X-RateLimit-Scope": scope})


class Transport:
    """aiohttp's session under discord.py's real HTTPClient: every request is recorded by the Recorder
    (which also answers it), unless a scripted response for its method and path comes first."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.script: list[tuple[str, str, TransportResponse]] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) as they reached the wire

    def respond_once(self, method: str, path_pattern: str, response: TransportResponse) -> None:
        self.script.append((method, path_pattern, response))

    def request(self, method: str, url: str, **kwargs: Any) -> TransportResponse:
        path = url.split("/api/v10", 1)[-1].split("?")[0]
        self.requests.append((method, path))
        for i, (m, pattern, response) in enumerate(self.script):
            if m == method and re.search(pattern, path):
                del self.script[i]
                return response
        payload, files = _decode(kwargs.get("data"))
        call = Call(method, "", path, payload, files, dict(kwargs.get("params") or {}))
        self.recorder.calls.append(call)
        try:
            self.recorder._maybe_fail(method, path)
            self.recorder.enforce(call)
        except discord.HTTPException as exc:
            call.failed = exc
            return TransportResponse(exc.status, {"code": exc.code, "message": exc.text})
        answer = self.recorder.answer(call)
        return TransportResponse(200, answer, {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
                                               "X-RateLimit-Reset-After": "1.000", "X-RateLimit-Bucket": "b0cket"})


def _decode(data: Any) -> tuple[Any, list[str]]:
    """The JSON body and file names of what discord.py handed aiohttp (JSON text or multipart form)."""
    if data is None:
        return {}, []
    if isinstance(data, str | bytes):
        return json.loads(data), []
    payload: Any = {}
    files = []
    for options, _headers, value in data._fields:
        if options.get("name") == "payload_json":
            payload = json.loads(value)
        elif options.get("filename"):
            files.append(str(options["filename"]))
    return payload, files


def walk_components(components: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for c in components:
        yield c
        yield from walk_components(c.get("components", []))
        if "component" in c:
            yield from walk_components([c["component"]])


def custom_ids(payload: Mapping[str, Any]) -> list[str]:
    return [c["custom_id"] for c in walk_components(payload.get("components") or []) if "custom_id" in c]


def text_of(payload: Mapping[str, Any]) -> str:
    """Everything readable in a message payload: content, embed titles, descriptions, fields, footers."""
    parts = [payload.get("content") or ""]
    for e in payload.get("embeds") or []:
        parts += [e.get("title", ""), e.get("description", "")]
        parts += [f"{f['name']}: {f['value']}" for f in e.get("fields", [])]
        parts.append((e.get("footer") or {}).get("text", ""))
    return "\n".join(p for p in parts if p)


@dataclass
class Bot:
    client: OnsiteClient
    http: Recorder
    services: Services
    store: Store
    bank: Bank
    clock: FixedClock
    grader: Any
    errors: list[str] = field(default_factory=list)  # what discord.py's Client.on_error was handed
    transport: Transport | None = None

    async def feed(self, payload: dict[str, Any]) -> None:
        """Hand an INTERACTION_CREATE to discord.py's connection state, then wait for what it started.

        A handler that lets an exception out (discord.py would log it and the member would see
        "This interaction failed") fails the test."""
        self.client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
        escaped = [f"{type(e).__name__}: {e}" for e in await settle()] + self.errors
        self.errors = []
        assert not escaped, f"exceptions escaped the interaction handlers: {escaped}"

    def add_guild(self, data: dict[str, Any]) -> discord.Guild:
        """A GUILD_CREATE: the guild, its channels and the bot's own member are cached (permission checks)."""
        return self.client._connection._add_guild_from_data(data)  # type: ignore[arg-type]

    async def community(self, guild_id: int = GUILD_ID) -> Any:
        found = [c for c in await self.store.list_communities() if c.external_id == str(guild_id)]
        return found[0] if found else None


async def make_bot(store: Store, bank: Bank, clock: FixedClock, grader: Any, monkeypatch: Any, *,
                   transport: bool = False) -> Bot:
    """The real client, never connected: loop bound, application id and bot user set, HTTP recorded.

    `transport`: REST calls go through discord.py's real `HTTPClient.request` (rate limits, retries)
    down to a `Transport` instead of being recorded above it."""
    client = OnsiteClient(timezone="UTC", post_time="09:00")
    await client._async_setup_hook()  # what login() does first
    client._connection.application_id = APP_ID
    client.http.token = "test-token"
    client._connection.user = discord.ClientUser(state=client._connection, data=user(BOT_ID, "onsite", bot=True))  # type: ignore[arg-type]
    recorder = Recorder()
    recorder.install(client, monkeypatch)
    fake = None
    if transport:
        fake = Transport(recorder)
        monkeypatch.delattr(client.http, "request")  # discord.py's own again
        monkeypatch.setattr(client.http, "_HTTPClient__session", fake)
        client.http._global_over = asyncio.Event()  # what static_login sets up
        client.http._global_over.set()
    services = Services.build(store, bank, clock, chat=DiscordChat(client), grader=grader)
    client.attach(services)
    bot = Bot(client, recorder, services, store, bank, clock, grader, transport=fake)

    async def on_error(event: str, *args: Any, **kwargs: Any) -> None:
        bot.errors.append(f"{event}: {traceback.format_exc()}")

    client.on_error = on_error  # type: ignore[method-assign]
    return bot


async def setup_channel(bot: Bot) -> None:
    await bot.feed(slash("admin setup", {"setting": "channel", "value": f"<#{CHANNEL_ID}>"}, permissions=MANAGE_GUILD))


def discord_http_error(status: int, code: int, text: str) -> discord.HTTPException:
    return discord.HTTPException(FakeResponse(status), {"code": code, "message": text})  # type: ignore[arg-type]
