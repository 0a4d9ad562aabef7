"""A local stand-in for Slack's Web API, as bolt-python's own tests use a mock server.

An aiohttp server on 127.0.0.1 that records every call (method, parameters merged from the query,
form or JSON body) and answers `{"ok": true, ...}` with payloads shaped like Slack's. It also takes
`response_url` posts (`/response/<n>`) and serves file downloads (`/files/<id>`). Failures are
queued per method: `fail("chat.postMessage", "not_in_channel")`, `rate_limit(method)` (429 with
Retry-After: 1), `server_error(method)` (500).

As strict as Slack where a test on today's code should be able to fail:

- Tokens: every method but `oauth.v2.access` needs one (`not_authed`, `invalid_auth`, `token_revoked`,
  `account_inactive` once the app is uninstalled). Any `xoxb-` token the fake did not issue is the
  bot token of the default workspace (`TEAM`), granted the bot scopes of slack/manifest.yaml; `xapp-`
  tokens are app-level tokens (`connections:write`). Tokens issued by `oauth.v2.access` belong to
  their workspace and carry the scopes the installer approved.
- Scopes: each method checks the scopes its reference page on docs.slack.dev lists (`SCOPES`) and
  answers Slack's `missing_scope` shape (`needed`, `provided`) plus the `x-oauth-scopes` /
  `x-accepted-oauth-scopes` headers. An unknown method is `unknown_method`.
- Block Kit: every message and view is checked against the documented limits (`message_errors`,
  `view_errors`); a violation answers `invalid_blocks` / `invalid_arguments` and is recorded in
  `rejected`, which the tests' fixtures require to be empty.
- OAuth: `authorize(url, ...)` plays slack.com/oauth/v2/authorize (the installer approves the scopes
  the URL asks for and is sent back with a one-time code); `oauth.v2.access` checks the client id and
  secret (HTTP Basic, as slack_sdk sends them) and the code, and issues a bot token for that workspace.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import yaml
from aiohttp import WSMsgType, web

MANIFEST = Path(__file__).resolve().parents[2] / "slack" / "manifest.yaml"


def manifest_bot_scopes(path: Path = MANIFEST) -> frozenset[str]:
    """The bot scopes slack/manifest.yaml asks for: what an install of the app is granted."""
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    return frozenset(manifest["oauth_config"]["scopes"]["bot"])


# Bot-token scopes per Web API method, from each method's reference page (docs.slack.dev/reference/
# methods/<method>, "Scopes" > "Bot token"). One of the listed scopes is enough; () is "No scopes
# required"; None is a method called without a token (oauth.v2.access authenticates the app itself).
SCOPES: Mapping[str, tuple[str, ...] | None] = {
    "auth.test": (),
    "apps.connections.open": ("connections:write",),  # an app-level (xapp-) token
    "oauth.v2.access": None,
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    # the page lists channels:manage, groups:write, im:write, mpim:write; Slack checks the one for the
    # kind of conversation opened: a DM needs im:write, a group DM mpim:write (see _needed)
    "conversations.open": ("channels:manage", "groups:write", "im:write", "mpim:write"),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "files.info": ("files:read",),
    "team.info": ("team:read",),
    "users.info": ("users:read",),
    "views.open": (),
    "views.update": (),
    "views.push": (),
    "views.publish": (),
}


@dataclass
class Token:
    team: str
    scopes: frozenset[str]
    kind: str = "bot"  # "bot" or "app"
    revoked: bool = False
    bot_user: str = "U0BOT"
    bot_id: str = "B0BOT"


@dataclass
class Grant:
    """A code the installer brought back from the authorize page, redeemable once."""

    team: str
    installer: str
    scopes: frozenset[str]
    redirect_uri: str | None


# -- Block Kit, as Slack's docs state it ---------------------------------------------------------------
#
# Every limit below is the one the reference pages on docs.slack.dev state (blocks, block elements,
# composition objects, views, chat.postMessage). A payload the renderer builds is checked against
# these rules by the fake before it "posts"; a violation answers as Slack does: `invalid_blocks`
# (messages) or `invalid_arguments` (views) with `[json-pointer:...]` messages.

MESSAGE_BLOCKS = 50  # "up to 50 blocks in each message"
VIEW_BLOCKS = 100  # "100 blocks in modals or Home tabs"
MESSAGE_TEXT = 40_000  # chat.postMessage: Slack truncates text over 40,000 characters
TEXT_OBJECT = 3000  # a text object: 1..3000 characters
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
BLOCK_ID = 255
ACTION_ID = 255
ACTIONS_ELEMENTS = 25
CONTEXT_ELEMENTS = 10
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
URL = 3000
IMAGE_ALT = 2000
IMAGE_TITLE = 2000
INPUT_LABEL = 2000
INPUT_HINT = 2000
PLACEHOLDER = 150
INPUT_LENGTH = 3000  # plain_text_input min_length / max_length
OPTION_TEXT = 75
OPTION_VALUE = 150
OPTION_DESCRIPTION = 75
MODAL_TITLE = 24  # title, submit and close
PRIVATE_METADATA = 3000
CALLBACK_ID = 255
EXTERNAL_ID = 255


class _Check:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, pointer: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def string(self, value: Any, pointer: str, most: int, *, least: int = 0, required: bool = True) -> None:
        if value is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(value, str):
            self.fail(pointer, "must be a string")
        elif len(value) > most:
            self.fail(pointer, f"must be less than {most + 1} characters")
        elif len(value.strip()) < least:
            self.fail(pointer, f"must be more than {least - 1} characters")

    def text(self, obj: Any, pointer: str, most: int = TEXT_OBJECT, *, plain: bool = False,
             required: bool = True) -> None:
        if obj is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(obj, dict):
            self.fail(pointer, "must be a text object")
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.fail(f"{pointer}/type", f"must be one of {', '.join(allowed)}")
        self.string(obj.get("text"), f"{pointer}/text", min(most, TEXT_OBJECT), least=1)
        if "emoji" in obj and kind != "plain_text":
            self.fail(f"{pointer}/emoji", "emoji is only valid for plain_text")
        self.unknown(obj, pointer, {"type", "text", "emoji", "verbatim"})

    def unknown(self, obj: Mapping[str, Any], pointer: str, known: set[str]) -> None:
        for key in obj:
            if key not in known:
                self.fail(f"{pointer}/{key}", "unknown field")

    def block_id(self, block: Mapping[str, Any], pointer: str, seen: set[str]) -> None:
        if "block_id" in block:
            self.string(block["block_id"], f"{pointer}/block_id", BLOCK_ID, least=1)
            if block["block_id"] in seen:
                self.fail(f"{pointer}/block_id", "duplicate block_id")
            seen.add(block["block_id"])

    def element(self, element: Any, pointer: str, action_ids: set[str]) -> None:
        if not isinstance(element, dict):
            self.fail(pointer, "must be an element object")
            return
        kind = element.get("type")
        if "action_id" in element:
            self.string(element["action_id"], f"{pointer}/action_id", ACTION_ID, least=1)
            if element["action_id"] in action_ids:
                self.fail(f"{pointer}/action_id", "duplicate action_id")
            action_ids.add(element["action_id"])
        if kind == "button":
            self.text(element.get("text"), f"{pointer}/text", BUTTON_TEXT, plain=True)
            self.string(element.get("value"), f"{pointer}/value", BUTTON_VALUE, required=False)
            self.string(element.get("url"), f"{pointer}/url", URL, required=False)
            if "style" in element and element["style"] not in ("primary", "danger"):
                self.fail(f"{pointer}/style", "must be primary or danger")
            self.unknown(element, pointer, {"type", "text", "action_id", "value", "url", "style", "confirm",
                                            "accessibility_label"})
        elif kind == "plain_text_input":
            self.text(element.get("placeholder"), f"{pointer}/placeholder", PLACEHOLDER, plain=True, required=False)
            for key in ("min_length", "max_length"):
                if key in element:
                    value = element[key]
                    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= INPUT_LENGTH:
                        self.fail(f"{pointer}/{key}", f"must be a whole number from 0 to {INPUT_LENGTH}")
            if isinstance(element.get("max_length"), int) and element["max_length"] < 1:
                self.fail(f"{pointer}/max_length", "must be at least 1")
            if "initial_value" in element:
                self.string(element["initial_value"], f"{pointer}/initial_value",
                            int(element.get("max_length") or INPUT_LENGTH))
            self.unknown(element, pointer, {"type", "action_id", "placeholder", "initial_value", "multiline",
                                            "min_length", "max_length", "dispatch_action_config", "focus_on_load"})
        elif kind == "image":
            self.string(element.get("image_url"), f"{pointer}/image_url", URL, least=1)
            self.string(element.get("alt_text"), f"{pointer}/alt_text", IMAGE_ALT, least=1)
        elif kind in ("static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"):
            for i, option in enumerate(element.get("options") or []):
                self.option(option, f"{pointer}/options/{i}")
        else:
            self.fail(f"{pointer}/type", f"unsupported element type {kind!r}")

    def option(self, option: Any, pointer: str) -> None:
        if not isinstance(option, dict):
            self.fail(pointer, "must be an option object")
            return
        self.text(option.get("text"), f"{pointer}/text", OPTION_TEXT)
        self.string(option.get("value"), f"{pointer}/value", OPTION_VALUE, least=1)
        self.text(option.get("description"), f"{pointer}/description", OPTION_DESCRIPTION, required=False)

    def blocks(self, blocks: Any, pointer: str, most: int, surface: str) -> None:
        if not isinstance(blocks, list):
            self.fail(pointer, "must be an array")
            return
        if len(blocks) > most:
            self.fail(pointer, f"no more than {most} items allowed")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            at = f"{pointer}/{i}"
            action_ids: set[str] = set()  # "unique among all other action_ids in the containing block"
            if not isinstance(block, dict):
                self.fail(at, "must be a block object")
                continue
            self.block_id(block, at, seen)
            kind = block.get("type")
            if kind == "section":
                if "text" not in block and "fields" not in block:
                    self.fail(at, "must provide either text or fields")
                self.text(block.get("text"), f"{at}/text", SECTION_TEXT, required=False)
                fields = block.get("fields")
                if fields is not None:
                    if not isinstance(fields, list) or not fields:
                        self.fail(f"{at}/fields", "must be a non-empty array")
                    else:
                        if len(fields) > SECTION_FIELDS:
                            self.fail(f"{at}/fields", f"no more than {SECTION_FIELDS} items allowed")
                        for j, f in enumerate(fields):
                            self.text(f, f"{at}/fields/{j}", FIELD_TEXT)
                if "accessory" in block:
                    self.element(block["accessory"], f"{at}/accessory", action_ids)
                self.unknown(block, at, {"type", "block_id", "text", "fields", "accessory", "expand"})
            elif kind == "header":
                self.text(block.get("text"), f"{at}/text", HEADER_TEXT, plain=True)
                self.unknown(block, at, {"type", "block_id", "text"})
            elif kind == "divider":
                self.unknown(block, at, {"type", "block_id"})
            elif kind == "image":
                self.string(block.get("image_url"), f"{at}/image_url", URL, least=1)
                self.string(block.get("alt_text"), f"{at}/alt_text", IMAGE_ALT, least=1)
                self.text(block.get("title"), f"{at}/title", IMAGE_TITLE, plain=True, required=False)
                self.unknown(block, at, {"type", "block_id", "image_url", "alt_text", "title", "slack_file"})
            elif kind == "context":
                elements = block.get("elements")
                if not isinstance(elements, list) or not elements:
                    self.fail(f"{at}/elements", "must be a non-empty array")
                    continue
                if len(elements) > CONTEXT_ELEMENTS:
                    self.fail(f"{at}/elements", f"no more than {CONTEXT_ELEMENTS} items allowed")
                for j, e in enumerate(elements):
                    if isinstance(e, dict) and e.get("type") == "image":
                        self.element(e, f"{at}/elements/{j}", action_ids)
                    else:
                        self.text(e, f"{at}/elements/{j}")
                self.unknown(block, at, {"type", "block_id", "elements"})
            elif kind == "actions":
                elements = block.get("elements")
                if not isinstance(elements, list) or not elements:
                    self.fail(f"{at}/elements", "must be a non-empty array")
                    continue
                if len(elements) > ACTIONS_ELEMENTS:
                    self.fail(f"{at}/elements", f"no more than {ACTIONS_ELEMENTS} items allowed")
                for j, e in enumerate(elements):
                    self.element(e, f"{at}/elements/{j}", action_ids)
                self.unknown(block, at, {"type", "block_id", "elements"})
            elif kind == "input":
                self.text(block.get("label"), f"{at}/label", INPUT_LABEL, plain=True)
                self.text(block.get("hint"), f"{at}/hint", INPUT_HINT, plain=True, required=False)
                if "element" not in block:
                    self.fail(f"{at}/element", "missing required field")
                else:
                    self.element(block["element"], f"{at}/element", action_ids)
                self.unknown(block, at, {"type", "block_id", "label", "element", "hint", "optional",
                                         "dispatch_action"})
            else:
                self.fail(f"{at}/type", f"unsupported block type {kind!r}")


def message_errors(payload: Mapping[str, Any]) -> list[str]:
    """What Slack would refuse in a message payload (chat.postMessage / postEphemeral / update,
    a response_url post, a slash command's ack)."""
    check = _Check()
    text, blocks = payload.get("text"), payload.get("blocks")
    if not text and not blocks:
        check.fail("/text", "no_text: provide text or blocks")
    check.string(text, "/text", MESSAGE_TEXT, required=False)
    if blocks is not None:
        check.blocks(blocks, "/blocks", MESSAGE_BLOCKS, "message")
    return check.errors


def view_errors(view: Any) -> list[str]:
    """What Slack would refuse in a view (views.open / update / push: modal; views.publish: home)."""
    check = _Check()
    if not isinstance(view, dict):
        return ["must be a view object [json-pointer:/view]"]
    kind = view.get("type")
    check.blocks(view.get("blocks"), "/view/blocks", VIEW_BLOCKS, str(kind))
    check.string(view.get("private_metadata"), "/view/private_metadata", PRIVATE_METADATA, required=False)
    check.string(view.get("callback_id"), "/view/callback_id", CALLBACK_ID, required=False)
    check.string(view.get("external_id"), "/view/external_id", EXTERNAL_ID, required=False)
    if kind == "modal":
        check.text(view.get("title"), "/view/title", MODAL_TITLE, plain=True)
        check.text(view.get("close"), "/view/close", MODAL_TITLE, plain=True, required=False)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        check.text(view.get("submit"), "/view/submit", MODAL_TITLE, plain=True, required=has_input)
        check.unknown(view, "/view", {"type", "title", "blocks", "close", "submit", "private_metadata",
                                      "callback_id", "clear_on_close", "notify_on_close", "external_id",
                                      "submit_disabled"})
    elif kind == "home":
        check.unknown(view, "/view", {"type", "blocks", "private_metadata", "callback_id", "external_id"})
    else:
        check.fail("/view/type", "must be modal or home")
    return check.errors


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeSlackApi:
    TEAM = "T0TEAM"
    BOT_USER = "U0BOT"
    CLIENT_ID = "1111.2222"
    CLIENT_SECRET = "fake-client-secret"

    def __init__(self, *, scopes: frozenset[str] | None = None) -> None:
        self.calls: list[Call] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.teams: dict[str, dict[str, Any]] = {self.TEAM: {"id": self.TEAM, "name": "Onsite Test",
                                                            "domain": "onsite-test"}}
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, bytes] = {}
        self.failures: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = {}
        self.rejected: list[tuple[str, list[str]]] = []  # (method, Slack's error messages)
        self.refusals: list[tuple[str, str]] = []  # (method, error) of every call Slack's own checks refused
        self.default_scopes = manifest_bot_scopes() if scopes is None else scopes
        self.tokens: dict[str, Token] = {}
        self.grants: dict[str, Grant] = {}
        self.uninstalled: set[str] = set()
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []
        self.port = 0

    # -- control -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def add_user(self, user_id: str, name: str, *, admin: bool = False, owner: bool = False,
                 team: str | None = None) -> None:
        self.users[user_id] = {
            "id": user_id, "team_id": team or self.TEAM, "name": name.lower(), "real_name": name,
            "is_admin": admin, "is_owner": owner, "is_primary_owner": False, "is_bot": False,
            "profile": {"display_name": name, "real_name": name},
        }

    def add_team(self, team_id: str, name: str) -> None:
        self.teams[team_id] = {"id": team_id, "name": name, "domain": name.lower().replace(" ", "-")}

    def fail(self, method: str, error: str, **extra: Any) -> None:
        self.failures.setdefault(method, []).append((200, {"ok": False, "error": error, **extra}, {}))

    def rate_limit(self, method: str, retry_after: int = 1) -> None:
        self.failures.setdefault(method, []).append(
            (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}))

    def server_error(self, method: str) -> None:
        self.failures.setdefault(method, []).append((500, {"ok": False, "error": "internal_error"}, {}))

    def of(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every call of one method, in order."""
        return [c.params for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def token_of(self, token: str) -> Token | None:
        """What a token is: issued here, or any other xoxb-/xapp- token as the default workspace's."""
        known = self.tokens.get(token)
        if known is not None:
            return known
        if token.startswith("xoxb-"):
            return self.tokens.setdefault(token, Token(self.TEAM, self.default_scopes))
        if token.startswith("xapp-"):
            return self.tokens.setdefault(token, Token(self.TEAM, frozenset({"connections:write"}), kind="app"))
        return None

    def authorize(self, url: str, *, team: str, installer: str, approve: bool = True) -> str:
        """slack.com/oauth/v2/authorize: the installer approves what the URL asks; returns the redirect."""
        query = parse_qs(urlsplit(url).query)
        assert query["client_id"] == [self.CLIENT_ID], query
        redirect = (query.get("redirect_uri") or ["http://127.0.0.1/slack/oauth_redirect"])[0]
        state = (query.get("state") or [""])[0]
        if not approve:
            return f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}"
        code = f"code-{secrets.token_hex(4)}"
        scopes = frozenset(s for s in (query.get("scope") or [""])[0].split(",") if s)
        self.grants[code] = Grant(team, installer, scopes, (query.get("redirect_uri") or [None])[0])
        return f"{redirect}?{urlencode({'code': code, 'state': state})}"

    def uninstall(self, team: str) -> None:
        """The workspace removed the app: every token it had stops working (`account_inactive`)."""
        self.uninstalled.add(team)
        for token in self.tokens.values():
            if token.team == team:
                token.revoked = True

    def posts_to(self, team: str) -> list[Call]:
        """Every call made with one workspace's tokens (what reached that workspace)."""
        out = []
        for call in self.calls:
            token = self.tokens.get(_bearer(call.headers) or str(call.params.get("token", "")))
            if token is not None and token.team == team:
                out.append(call)
        return out

    # -- server ------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/files/{file_id}", self._download)
        app.router.add_route("POST", "/upload/{file_id}", self._upload)
        app.router.add_route("POST", "/response/{n}", self._response_url)
        app.router.add_route("GET", "/socket", self._socket)
        app.router.add_route("*", "/{method}", self._api)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in self.sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        for key in ("blocks", "view", "attachments"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    def _refuse(self, method: str, params: Mapping[str, Any], token: Token | None,
                headers: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]] | None:
        """Slack's own checks before a method runs: the method, the token, the scopes, the payload."""
        if method not in SCOPES:
            return {"ok": False, "error": "unknown_method"}, {}
        required = SCOPES[method]
        if required is None:
            return None
        if token is None:
            given = _bearer(headers) or params.get("token")
            return {"ok": False, "error": "invalid_auth" if given else "not_authed"}, {}
        if token.revoked:
            error = "account_inactive" if token.team in self.uninstalled else "token_revoked"
            return {"ok": False, "error": error}, {}
        if (token.kind == "app") != (method == "apps.connections.open"):
            return {"ok": False, "error": "not_allowed_token_type"}, {}
        needed = _needed(method, params, required)
        scope_headers = {"x-oauth-scopes": ",".join(sorted(token.scopes)),
                         "x-accepted-oauth-scopes": ",".join(needed)}
        if needed and not set(needed) & token.scopes:
            return ({"ok": False, "error": "missing_scope", "needed": ",".join(needed),
                     "provided": ",".join(sorted(token.scopes))}, scope_headers)
        errors: list[str] = []
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            errors = message_errors(params)
            if errors:
                self.rejected.append((method, errors))
                return ({"ok": False, "error": "invalid_blocks", "errors": errors,
                         "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}, scope_headers)
        if method in ("views.open", "views.update", "views.push", "views.publish"):
            errors = view_errors(params.get("view"))
            if errors:
                self.rejected.append((method, errors))
                return ({"ok": False, "error": "invalid_arguments",
                         "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}, scope_headers)
        return None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params, dict(request.headers)))
        queued = self.failures.get(method)
        if queued:
            status, body, headers = queued.pop(0)
            return web.json_response(body, status=status, headers=headers)
        token = self.token_of(_bearer(request.headers) or str(params.get("token") or ""))
        refused = self._refuse(method, params, token, request.headers)
        if refused is not None:
            body, headers = refused
            self.refusals.append((method, str(body["error"])))
            return web.json_response(body, headers=headers)
        if method == "oauth.v2.access":
            return web.json_response(self._oauth_access(request.headers, params))
        assert token is not None
        answer = self._answer_for(method, params, token)
        if answer.get("ok") is False:
            return web.json_response(answer)
        return web.json_response({"ok": True, **answer})

    def _oauth_access(self, headers: Mapping[str, str], params: Mapping[str, Any]) -> dict[str, Any]:
        auth = headers.get("Authorization", "")
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if client_id != self.CLIENT_ID:
            return {"ok": False, "error": "invalid_client_id"}
        if client_secret != self.CLIENT_SECRET:
            return {"ok": False, "error": "bad_client_secret"}
        grant = self.grants.pop(str(params.get("code")), None)
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        if grant.redirect_uri is not None and params.get("redirect_uri") != grant.redirect_uri:
            return {"ok": False, "error": "bad_redirect_uri"}
        self.uninstalled.discard(grant.team)
        token = f"xoxb-{grant.team}-{secrets.token_hex(6)}"
        bot_user = f"U0BOT{grant.team[-3:]}"
        self.tokens[token] = Token(grant.team, grant.scopes, bot_user=bot_user, bot_id=f"B0BOT{grant.team[-3:]}")
        team = self.teams.setdefault(grant.team, {"id": grant.team, "name": grant.team, "domain": grant.team.lower()})
        return {"ok": True, "access_token": token, "token_type": "bot", "scope": ",".join(sorted(grant.scopes)),
                "bot_user_id": bot_user, "app_id": "A0APP", "team": {"id": team["id"], "name": team["name"]},
                "enterprise": None, "is_enterprise_install": False,
                "authed_user": {"id": grant.installer}}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: say hello, then record every envelope ack the app sends back."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP"},
                            "debug_info": {"host": "fake", "approximate_connection_time": 3600}})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(msg.data))
        return ws

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to the connected app."""
        await self.sockets[-1].send_json(envelope)

    async def _response_url(self, request: web.Request) -> web.Response:
        params = await request.json()
        self.calls.append(Call("response_url", params, dict(request.headers)))
        if not params.get("delete_original"):
            errors = message_errors(params)
            if errors:
                self.rejected.append(("response_url", errors))
                return web.json_response({"ok": False, "error": "invalid_blocks", "errors": errors}, status=400)
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL that files.getUploadURLExternal hands out (files_upload_v2's second step)."""
        file_id = request.match_info["file_id"]
        data = await request.read()
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            data = b""
            async for part in reader:
                data += await part.read()  # type: ignore[union-attr]
        self.uploads[file_id] = data
        self.calls.append(Call("upload", {"file": file_id, "bytes": len(data)}, dict(request.headers)))
        return web.Response(text="OK")

    async def _download(self, request: web.Request) -> web.Response:
        """A file's private URL: only a live bot token of the file's workspace with files:read gets it."""
        file_id = request.match_info["file_id"]
        self.calls.append(Call("download", {"file": file_id}, dict(request.headers)))
        token = self.token_of(_bearer(request.headers) or "")
        if (token is None or token.revoked or token.team != self.TEAM or "files:read" not in token.scopes
                or file_id not in self.files):
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    def _answer_for(self, method: str, params: Mapping[str, Any], token: Token) -> dict[str, Any]:
        """The answers that depend on whose token called; everything else is `_answer`."""
        team = self.teams.get(token.team, {"id": token.team, "name": token.team, "domain": token.team.lower()})
        if method == "auth.test":
            return {"url": f"https://{team['domain']}.slack.com/", "team": team["name"], "user": "onsite",
                    "team_id": token.team, "user_id": token.bot_user, "bot_id": token.bot_id,
                    "is_enterprise_install": False}
        if method == "team.info":
            asked = str(params.get("team") or token.team)
            return {"team": self.teams.get(asked, team)}
        if method == "users.info":
            user = self.users.get(str(params.get("user")))
            if user is None or (token.team != self.TEAM and user["team_id"] != token.team):
                return {"ok": False, "error": "user_not_found"}
            return {"user": user}
        return self._answer(method, params)

    def _answer(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if method == "apps.connections.open":
            return {"url": f"ws://127.0.0.1:{self.port}/socket"}
        if method == "conversations.open":
            users = str(params.get("users", "")).split(",")
            prefix = "G" if len(users) > 1 else "D"
            return {"channel": {"id": prefix + "".join(u[-3:] for u in users)}}
        if method in ("chat.postMessage", "chat.update"):
            return {"channel": params.get("channel"), "ts": f"1700000000.{next(self._ts):06d}",
                    "message": {"text": params.get("text", "")}}
        if method == "chat.postEphemeral":
            return {"message_ts": f"1700000000.{next(self._ts):06d}"}
        if method in ("views.open", "views.update", "views.publish", "views.push"):
            view = params.get("view") or {}
            return {"view": {"id": "V0VIEW", **(view if isinstance(view, dict) else {})}}
        if method == "files.getUploadURLExternal":
            file_id = f"F0UP{len(self.uploads) + 1}"
            return {"upload_url": f"{self.base_url}upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            return {"files": [{"id": f["id"], "title": f.get("title", "")} for f in json.loads(params.get("files", "[]"))]}
        if method == "files.info":
            file_id = str(params.get("file"))
            if file_id not in self.files:
                return {"ok": False, "error": "file_not_found"}
            return {"file": {"id": file_id, "name": "solution.py", "size": len(self.files[file_id]),
                             "url_private_download": f"{self.base_url}files/{file_id}"}}
        return {}


def _bearer(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("Authorization") or headers.get("authorization") or ""
    return auth[7:] if auth.startswith("Bearer ") else None


def _needed(method: str, params: Mapping[str, Any], listed: Sequence[str]) -> tuple[str, ...]:
    """The scopes that would let this call through: for conversations.open, the conversation's kind."""
    if method == "conversations.open" and params.get("users"):
        return ("mpim:write",) if "," in str(params["users"]) else ("im:write",)
    return tuple(listed)
