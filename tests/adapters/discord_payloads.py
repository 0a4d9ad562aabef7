"""Gateway payloads and an HTTP-layer recorder for driving the Discord adapter through discord.py.

Nothing connects to Discord: the real client is built, its `HTTPClient.request` (every REST call) and
the webhook adapter's `request` (interaction callbacks and follow-ups) are replaced by a recorder
that answers with the JSON Discord would send, and INTERACTION_CREATE payloads are fed to the
client's own `ConnectionState.parse_interaction_create`, so discord.py parses them, runs its command
tree (option conversion, autocomplete, checks) and dispatches `on_interaction` as in production.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import discord
from discord.http import Route
from discord.webhook.async_ import AsyncWebhookAdapter

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
                nick: str | None = None) -> dict[str, Any]:
    """An INTERACTION_CREATE payload as the gateway sends it."""
    payload: dict[str, Any] = {
        "id": str(snowflake()), "application_id": str(APP_ID), "type": kind, "token": f"tok-{snowflake()}",
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


@dataclass
class Call:
    """One request discord.py made: method, route template, formatted path, JSON body, file names."""

    method: str
    template: str
    path: str
    payload: dict[str, Any]
    files: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_callback(self) -> bool:
        return self.template.endswith("/callback")


class Recorder:
    """Stands in for Discord's HTTP API: records each request, answers with plausible JSON."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: list[tuple[str, str, Exception]] = []  # (method, path regex, error): raised once each
        self.cdn: dict[str, bytes] = {}
        self.cdn_requests: list[str] = []
        self.guild_of_channel: dict[int, int] = {CHANNEL_ID: GUILD_ID}
        self.threads: dict[int, dict[str, Any]] = {}

    def fail_once(self, method: str, path_pattern: str, exc: Exception) -> None:
        self.failures.append((method, path_pattern, exc))

    # -- queries used by the tests ----------------------------------------------------------------

    def matching(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.search(pattern, c.path)]

    def callbacks(self) -> list[Call]:
        return [c for c in self.calls if c.is_callback]

    def replies(self) -> list[dict[str, Any]]:
        """What the member was shown: callback messages (types 4, 7) and follow-ups/edits, in order."""
        shown = []
        for c in self.calls:
            if c.is_callback and c.payload.get("type") in (4, 7):
                shown.append(c.payload.get("data") or {})
            elif c.template.startswith("/webhooks/{webhook_id}/{webhook_token}") and c.method in ("POST", "PATCH"):
                shown.append(c.payload)
        return shown

    def channel_posts(self, channel_id: int = CHANNEL_ID) -> list[Call]:
        return self.matching("POST", rf"^/channels/{channel_id}/messages$")

    def clear(self) -> None:
        self.calls.clear()

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
        self._maybe_fail(route.method, path)
        return call

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


async def settle(limit_s: float = 10.0) -> None:
    """Wait for every task the dispatch started (command tree invoker, on_interaction, deliveries)."""
    current = asyncio.current_task()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not pending:
            return
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"tasks still running: {pending}")
        await asyncio.wait(pending, timeout=remaining)


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

    async def feed(self, payload: dict[str, Any]) -> None:
        """Hand an INTERACTION_CREATE to discord.py's connection state, then wait for what it started."""
        self.client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
        await settle()

    def add_guild(self, data: dict[str, Any]) -> discord.Guild:
        """A GUILD_CREATE: the guild, its channels and the bot's own member are cached (permission checks)."""
        return self.client._connection._add_guild_from_data(data)  # type: ignore[arg-type]

    async def community(self, guild_id: int = GUILD_ID) -> Any:
        found = [c for c in await self.store.list_communities() if c.external_id == str(guild_id)]
        return found[0] if found else None


async def make_bot(store: Store, bank: Bank, clock: FixedClock, grader: Any, monkeypatch: Any) -> Bot:
    """The real client, never connected: loop bound, application id and bot user set, HTTP recorded."""
    client = OnsiteClient(timezone="UTC", post_time="09:00")
    await client._async_setup_hook()  # what login() does first
    client._connection.application_id = APP_ID
    client.http.token = "test-token"
    client._connection.user = discord.ClientUser(state=client._connection, data=user(BOT_ID, "onsite", bot=True))  # type: ignore[arg-type]
    recorder = Recorder()
    recorder.install(client, monkeypatch)
    services = Services.build(store, bank, clock, chat=DiscordChat(client), grader=grader)
    client.attach(services)
    return Bot(client, recorder, services, store, bank, clock, grader)


async def setup_channel(bot: Bot) -> None:
    await bot.feed(slash("admin setup", {"setting": "channel", "value": f"<#{CHANNEL_ID}>"}, permissions=MANAGE_GUILD))


def discord_http_error(status: int, code: int, text: str) -> discord.HTTPException:
    return discord.HTTPException(FakeResponse(status), {"code": code, "message": text})  # type: ignore[arg-type]
