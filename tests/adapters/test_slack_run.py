"""`run_slack` end to end: HTTP mode behind a real port (signatures checked) and Socket Mode over a
WebSocket served by the fake Web API, each with the scheduler and the database of a real start."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.adapters.slack_app import run_slack
from bot.config import Secret, Settings
from tests.adapters.slack_fake_api import FakeSlackApi
from tests.conftest import FIXTURE_BANK

SECRET = "run-signing-secret"


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackApi]:
    fake = FakeSlackApi()
    await fake.start()
    fake.add_user("U0ADA", "Ada", admin=True)
    yield fake
    await fake.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings(tmp_path: Path) -> Settings:
    return Settings(database=tmp_path / "onsite.db", questions_dir=FIXTURE_BANK, grader_workers=1,
                    slack_bot_token=Secret("xoxb-test"), slack_app_token=Secret("xapp-test"),
                    slack_signing_secret=Secret(SECRET))


async def eventually(check: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running(coro: Awaitable[int], stop: asyncio.Event) -> AsyncIterator[None]:
    task = asyncio.ensure_future(coro)
    try:
        yield
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0


def command_form(text: str) -> dict[str, str]:
    return {"team_id": FakeSlackApi.TEAM, "team_domain": "onsite-test", "channel_id": "C0GENERAL",
            "user_id": "U0ADA", "user_name": "ada", "command": "/onsite", "text": text,
            "trigger_id": "t1", "response_url": "http://127.0.0.1:9/unused", "api_app_id": "A0APP"}


async def test_http_mode_serves_signed_requests_and_rejects_forged_ones(tmp_path: Path, api: FakeSlackApi) -> None:
    port, stop = free_port(), asyncio.Event()
    app = run_slack(settings(tmp_path), http_port=port, stop=stop, base_url=api.base_url)
    async with running(app, stop):
        url = f"http://127.0.0.1:{port}/slack/events"
        body = urlencode(command_form("help"))

        async def post(secret: str) -> tuple[int, str]:
            ts = str(int(time.time()))
            sig = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                       "X-Slack-Signature": sig}
            async with aiohttp.ClientSession() as session:
                for _ in range(200):
                    try:
                        async with session.post(url, data=body, headers=headers) as resp:
                            return resp.status, await resp.text()
                    except aiohttp.ClientConnectorError:
                        await asyncio.sleep(0.05)  # still starting
            raise AssertionError("the HTTP server never came up")

        status, text = await post("forged")
        assert status == 401
        status, text = await post(SECRET)
        assert status == 200 and "/onsite daily" in text
    assert "auth.test" in api.methods()


async def test_socket_mode_answers_an_envelope_with_the_reply(tmp_path: Path, api: FakeSlackApi) -> None:
    stop = asyncio.Event()
    app = run_slack(settings(tmp_path), stop=stop, base_url=api.base_url)
    async with running(app, stop):
        await eventually(lambda: bool(api.sockets))
        opened = [c for c in api.calls if c.method == "apps.connections.open"]
        assert len(opened) == 2  # the start-up check of the app token, then the SDK's own connection
        assert all(c.headers["Authorization"] == "Bearer xapp-test" for c in opened)
        await api.push({"envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
                        "payload": command_form("stats")})
        await eventually(lambda: any(a.get("envelope_id") == "env-1" for a in api.socket_acks))
        ack: dict[str, Any] = next(a for a in api.socket_acks if a.get("envelope_id") == "env-1")
        assert "Stats · Ada" in json.dumps(ack["payload"], ensure_ascii=False)
