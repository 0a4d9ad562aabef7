"""A local stand-in for Slack's Web API, as bolt-python's own tests use a mock server.

An aiohttp server on 127.0.0.1 that records every call (method, parameters merged from the query,
form or JSON body) and answers `{"ok": true, ...}` with payloads shaped like Slack's. It also takes
`response_url` posts (`/response/<n>`) and serves file downloads (`/files/<id>`). Failures are
queued per method: `fail("chat.postMessage", "not_in_channel")`, `rate_limit(method)` (429 with
Retry-After: 1), `server_error(method)` (500).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeSlackApi:
    TEAM = "T0TEAM"
    BOT_USER = "U0BOT"

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, bytes] = {}
        self.failures: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = {}
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []
        self.port = 0

    # -- control -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def add_user(self, user_id: str, name: str, *, admin: bool = False, owner: bool = False) -> None:
        self.users[user_id] = {
            "id": user_id, "team_id": self.TEAM, "name": name.lower(), "real_name": name,
            "is_admin": admin, "is_owner": owner, "is_primary_owner": False, "is_bot": False,
            "profile": {"display_name": name, "real_name": name},
        }

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

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params, dict(request.headers)))
        queued = self.failures.get(method)
        if queued:
            status, body, headers = queued.pop(0)
            return web.json_response(body, status=status, headers=headers)
        return web.json_response({"ok": True, **self._answer(method, params)})

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
        file_id = request.match_info["file_id"]
        self.calls.append(Call("download", {"file": file_id}, dict(request.headers)))
        if request.headers.get("Authorization") != "Bearer xoxb-test" or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    def _answer(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"url": "https://onsite-test.slack.com/", "team": "Onsite Test", "user": "onsite",
                    "team_id": self.TEAM, "user_id": self.BOT_USER, "bot_id": "B0BOT", "is_enterprise_install": False}
        if method == "apps.connections.open":
            return {"url": f"ws://127.0.0.1:{self.port}/socket"}
        if method == "team.info":
            return {"team": {"id": params.get("team", self.TEAM), "name": "Onsite Test", "domain": "onsite-test"}}
        if method == "users.info":
            user = self.users.get(str(params.get("user")))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"user": user}
        if method == "conversations.open":
            users = str(params.get("users", "")).split(",")
            prefix = "G" if len(users) > 1 else "D"
            return {"channel": {"id": prefix + "".join(u[-3:] for u in users)}}
        if method in ("chat.postMessage", "chat.update"):
            return {"channel": params.get("channel"), "ts": f"1700000000.{next(self._ts):06d}",
                    "message": {"text": params.get("text", "")}}
        if method == "chat.postEphemeral":
            return {"message_ts": f"1700000000.{next(self._ts):06d}"}
        if method in ("views.open", "views.update", "views.publish"):
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
