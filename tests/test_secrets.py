"""Tokens never reach a log line, an error, a reply or a sandbox.

Each test holds distinctive fake tokens, runs a code path that logs or fails (settings, config
errors, a refused Discord login against a local HTTP server, Slack start-up and requests whose Web
API calls fail, the console, grading), captures everything (every logger at DEBUG, stdout and
stderr, replies, stored errors, verdicts) and asserts that no token appears. Where the token must
have been used (the Authorization header the fake server saw), that is asserted too, so the test
cannot pass by never touching the token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.config import Secret, Settings, load_settings, read_dotenv
from bot.core.bank import Bank
from bot.core.errors import ConfigError
from tests.conftest import FIXTURE_BANK, REPO

DISCORD = "MTk4NjIyNDgzNDcxOTI1MjQ4.DISCORDSECRET.q1w2e3r4t5y6u7i8o9p0"
SLACK_BOT = "xoxb-111-222-SLACKBOTSECRET"
SLACK_APP = "xapp-1-A111-SLACKAPPSECRET"
SIGNING = "SIGNINGSECRET0123456789abcdef"
TOKENS = (DISCORD, SLACK_BOT, SLACK_APP, SIGNING)
# distinctive parts: a leak of a fragment (a truncated or re-encoded token) is a leak too
FRAGMENTS = ("DISCORDSECRET", "SLACKBOTSECRET", "SLACKAPPSECRET", "SIGNINGSECRET")
ENV = {"DISCORD_TOKEN": DISCORD, "SLACK_BOT_TOKEN": SLACK_BOT, "SLACK_APP_TOKEN": SLACK_APP,
       "SLACK_SIGNING_SECRET": SIGNING}


def leaks(*texts: Any) -> list[str]:
    blob = "\n".join(t if isinstance(t, str) else repr(t) for t in texts)
    return [f for f in FRAGMENTS if f in blob]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record, formatted with its arguments and any traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records)


def settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(database=tmp_path / "onsite.db", questions_dir=FIXTURE_BANK, grader_workers=1,
                    discord_token=Secret(DISCORD), slack_bot_token=Secret(SLACK_BOT),
                    slack_app_token=Secret(SLACK_APP), slack_signing_secret=Secret(SIGNING), **extra)


# -- settings and configuration errors ---------------------------------------------------------------


def test_settings_never_show_tokens(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = load_settings(ENV, dotenv=tmp_path / "none")
    log = logging.getLogger("onsite.test")
    log.debug("settings %s %r", s, s)
    log.info("described: %s", s.describe())
    texts = [repr(s), str(s), s.describe(), f"{s}", repr(dataclasses.asdict(s)), repr(vars(s)),
             json.dumps({k: str(v) for k, v in vars(s).items()}), logged(caplog)]
    assert not leaks(*texts)
    assert s.discord_token is not None and s.discord_token.reveal() == DISCORD  # the value is kept


@pytest.mark.parametrize("line", [SLACK_BOT, f"DISCORD_TOKEN: {DISCORD}", f"export  SLACK_BOT_TOKEN {SLACK_BOT}",
                                  f"{DISCORD}=x"])
def test_a_malformed_env_line_is_reported_without_its_content(tmp_path: Path, line: str) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"ONSITE_TIMEZONE=UTC\n{line}\n")
    with pytest.raises(ConfigError) as err:
        read_dotenv(env_file)
    assert f"{env_file}:2" in str(err.value)
    assert not leaks(str(err.value), repr(err.value))


@pytest.mark.parametrize("env", [{"SLACK_BOT_TOKEN": SLACK_APP}, {"SLACK_APP_TOKEN": SLACK_BOT},
                                 {"DISCORD_GUILD_ID": DISCORD}])
def test_config_errors_never_echo_a_token(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env, dotenv=tmp_path / "none")
    assert not leaks(str(err.value))


def test_the_cli_reports_a_bad_env_file_without_the_token(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"{DISCORD}\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bot", "discord"], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert ".env:1: expected KEY=VALUE" in result.stderr
    assert not leaks(result.stdout, result.stderr)


# -- Discord: a refused login, through discord.py's real HTTP client --------------------------------------


@pytest.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[dict[str, str]]]:
    """Discord's REST API on 127.0.0.1: every request is refused with 401, as for a revoked token."""
    import discord.http

    seen: list[dict[str, str]] = []

    async def refuse(request: web.Request) -> web.Response:
        seen.append({"path": request.path, **dict(request.headers)})
        return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    yield seen
    await runner.cleanup()


async def test_a_refused_discord_login_logs_no_token(tmp_path: Path, fake_discord: list[dict[str, str]],
                                                    caplog: pytest.LogCaptureFixture,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from bot.adapters.discord_app import run_discord

    caplog.set_level(logging.DEBUG)  # discord.http, discord.client, aiohttp, asyncio, onsite: everything
    assert await run_discord(settings(tmp_path)) == 2
    assert any(h.get("Authorization") == f"Bot {DISCORD}" for h in fake_discord), fake_discord  # it was used
    text = logged(caplog)
    assert "Discord refused the token" in text
    out = capsys.readouterr()
    assert not leaks(text, out.out, out.err)


# -- Slack: start-up failures and requests whose Web API calls fail -------------------------------------


async def test_a_refused_slack_start_logs_no_token(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from bot.adapters.slack_app import run_slack
    from tests.adapters.slack_fake_api import FakeSlackApi

    caplog.set_level(logging.DEBUG)
    api = FakeSlackApi()
    await api.start()
    try:
        api.fail("auth.test", "invalid_auth")
        assert await run_slack(settings(tmp_path), http_port=0, base_url=api.base_url) == 1
        # Socket Mode: auth.test passes, the app token is refused: the bot stops with an error, not a retry loop
        api.failures["apps.connections.open"] = [(200, {"ok": False, "error": "invalid_auth"}, {})] * 50
        assert await asyncio.wait_for(run_slack(settings(tmp_path), base_url=api.base_url), 30) == 1
    finally:
        await api.stop()
    headers = [c.headers.get("Authorization", "") for c in api.calls]
    assert f"Bearer {SLACK_BOT}" in headers and f"Bearer {SLACK_APP}" in headers  # both were used
    text = logged(caplog)
    assert text.count("Slack refused to start: invalid_auth") == 2
    out = capsys.readouterr()
    assert not leaks(text, out.out, out.err)


async def test_slack_requests_whose_api_calls_fail_log_no_token(tmp_path: Path, bank: Bank,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    from bot.adapters.slack_app import SlackAdapter, SlackChat, make_client
    from bot.app import build_app
    from tests.adapters.slack_fake_api import FakeSlackApi
    from tests.adapters.test_slack_app import Slack, all_text
    from tests.conftest import StandInGrader

    caplog.set_level(logging.DEBUG)
    api = FakeSlackApi()
    await api.start()
    # a file whose download URL points at another host: the token must not be sent there
    elsewhere: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        elsewhere.append(dict(request.headers))
        return web.Response(body=b"def count_pairs(nums, target):\n    return 0\n")

    other = web.Application()
    other.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(other)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.2", 0)
    await site.start()
    other_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    answer = api._answer

    def answer_with_foreign_file(method: str, params: Any) -> dict[str, Any]:
        if method == "files.info" and params.get("file") == "F0FOREIGN1":
            return {"file": {"id": "F0FOREIGN1", "name": "x.py", "size": 40,
                             "url_private_download": f"http://127.0.0.2:{other_port}/steal"}}
        return answer(method, params)

    api._answer = answer_with_foreign_file  # type: ignore[method-assign]
    api.add_user("U0ADA", "Ada", admin=True)
    client = make_client(SLACK_BOT, base_url=api.base_url, max_retries=0)
    chat = SlackChat(client)
    app = await build_app(settings(tmp_path), chat=chat, bank=bank, grader=StandInGrader())
    adapter = SlackAdapter(app, client, signing_secret=SIGNING, chat=chat)
    driver = Slack(adapter, api, app)
    driver.verifier.__init__(SIGNING)  # type: ignore[misc]
    try:
        replies = []

        async def command(text: str) -> dict[str, Any]:
            form_secret = SIGNING
            from urllib.parse import urlencode

            driver._n += 1
            form = {"team_id": FakeSlackApi.TEAM, "team_domain": "t", "channel_id": "C0GENERAL", "user_id": "U0ADA",
                    "user_name": "ada", "command": "/onsite", "text": text, "api_app_id": "A0APP",
                    "trigger_id": f"trigger-{driver._n}", "response_url": f"{api.base_url}response/{driver._n}"}
            status, body = await driver.send(driver.signed(urlencode(form), "application/x-www-form-urlencoded",
                                                           secret=form_secret))
            assert status == 200
            return body

        api.fail("team.info", "invalid_auth")
        api.fail("users.info", "invalid_auth")
        replies.append(await command("stats"))
        replies.append(await command("admin setup channel <#C0DAILY|daily>"))
        api.fail("chat.postMessage", "invalid_auth")
        api.fail("chat.postMessage", "token_revoked")
        replies.append(await command("admin post-now"))
        await adapter.deliver()
        api.fail("files.info", "invalid_auth")
        replies.append(await command("submit pair-sum-count --file F0ABCDEF1"))
        replies.append(await command("submit pair-sum-count --file F0FOREIGN1"))
        api.fail("files.getUploadURLExternal", "invalid_auth")
        replies.append(await command("card stats"))
        await adapter.drain()
    finally:
        await adapter.drain()
        await app.close()
        await api.stop()
        await runner.cleanup()
    assert any(c.headers.get("Authorization") == f"Bearer {SLACK_BOT}" for c in api.calls)
    assert not any("Authorization" in h for h in elsewhere)  # the foreign host never got the token
    con = sqlite3.connect(tmp_path / "onsite.db")
    try:
        stored = [r[0] for r in con.execute("SELECT last_error FROM outbox WHERE last_error IS NOT NULL")]
    finally:
        con.close()
    assert stored, "the failed post recorded its error"
    responses = [json.dumps(c.params) for c in api.calls if c.method == "response_url"]
    assert not leaks(logged(caplog), *[all_text(r) for r in replies], *stored, *responses)


# -- the sandbox ------------------------------------------------------------------------------------------

ENV_DUMP = textwrap.dedent("""\
    import os

    def count_pairs(nums, target):
        seen = {"environ": dict(os.environ)}
        for pid in ["self", "1", str(os.getppid()), *os.listdir("/proc")]:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    seen[pid] = f.read().decode("latin-1")
            except OSError as exc:
                seen[pid] = type(exc).__name__
        print(seen)
        return seen
    """)


def tiers() -> list[Any]:
    from graders import sandbox

    ok, why = sandbox.bwrap_status()
    return ["rlimit", pytest.param("bwrap", marks=pytest.mark.skipif(not ok, reason=f"bubblewrap unusable: {why}"))]


@pytest.mark.parametrize("tier", tiers())
async def test_graded_code_never_sees_the_bots_tokens(tmp_path: Path, bank: Bank, tier: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The real judge behind the bot's own Grader port, while the bot has the tokens in its environment."""
    from bot.app import PoolGrader
    from bot.core.clock import FixedClock
    from bot.core.models import Caller
    from bot.core.services import Services
    from bot.store.sqlite import Store
    from graders.pool import GraderPool
    from tests.conftest import RecordingChat

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    store = await Store.open(tmp_path / "s.db")
    grader = PoolGrader(GraderPool(max_workers=1, tier=tier))
    try:
        from datetime import UTC, datetime

        clock = FixedClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
        services = Services.build(store, bank, clock, chat=RecordingChat(), grader=grader)
        community = await store.ensure_community("discord", "g", "G", now=clock.now())
        member = await store.ensure_member(community.id, "u", "U", now=clock.now())
        reply = await services.submissions.submit(Caller(member, community), "pair-sum-count", text=None,
                                                  code=ENV_DUMP)
        verdict = await grader.grade(bank.get("pair-sum-count"), ENV_DUMP, key="direct")
    finally:
        await grader.close()
        await store.close()
    assert verdict.tier == tier and verdict.verdict == "wrong_answer", verdict
    assert verdict.tests and isinstance(verdict.tests[0].got, dict)  # the dump came back: the check is real
    con = sqlite3.connect(tmp_path / "s.db")
    try:
        rows = con.execute("SELECT content, detail FROM submissions").fetchall()
    finally:
        con.close()
    assert rows
    assert not leaks(json.dumps(reply.to_dict()), repr(verdict), repr(rows))


def _nobody_python() -> str | None:
    """An interpreter an unprivileged uid can run, with PyYAML (the judge's only dependency)."""
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if not candidate or not os.path.exists(candidate):
            continue
        try:
            probe = subprocess.run([candidate, "-c", "import yaml"], capture_output=True, timeout=30,
                                   preexec_fn=_drop if os.geteuid() == 0 else None)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return candidate
    return None


def _drop() -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_an_unprivileged_judge_does_not_expose_its_environment(tmp_path: Path) -> None:
    """Rlimit tier without root: the sandbox runs as the judge's uid and could read the judge's
    /proc/<pid>/environ, where a token exported in the bot's shell lives (the initial environment,
    which os.environ changes do not touch: hence a real child process started with the tokens)."""
    python = _nobody_python()
    if python is None:
        pytest.skip("no interpreter with PyYAML that an unprivileged uid can run")
    script = textwrap.dedent(f"""\
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        from graders import sandbox
        from graders.spec import CodeSpec
        spec = CodeSpec.from_dict({{"id": "t", "track": "coding", "entry": "count_pairs", "time_limit_s": 5,
                                    "tests": [{{"name": "one", "args": [[1], 1], "expected": 0, "visible": True}}]}})
        r = sandbox.run(sys.stdin.read(), spec, tier="rlimit")
        print(json.dumps(r.to_dict()))
        """)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", **ENV}
    result = subprocess.run([python, "-c", script], input=ENV_DUMP, capture_output=True, text=True, timeout=60,
                            env=env, cwd="/tmp", preexec_fn=_drop if os.geteuid() == 0 else None)
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout.splitlines()[-1])
    got = verdict["tests"][0]["got"]
    assert isinstance(got, dict) and "environ" in got, verdict  # the submission ran and reported
    assert not leaks(result.stdout, result.stderr)


def test_console_json_output_carries_no_token(tmp_path: Path) -> None:
    """A console whose own environment holds the tokens grades a submission that dumps every environment."""
    (tmp_path / "evil.py").write_text(ENV_DUMP)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ONSITE_QUESTIONS": str(FIXTURE_BANK),
           "XDG_DATA_HOME": str(tmp_path / "data"), "USER": "tester", "HOME": str(tmp_path),
           "ONSITE_LOG_LEVEL": "DEBUG", **ENV}
    script = f"/help\n/stats\n/submit pair-sum-count --file {tmp_path / 'evil.py'}\n/admin setup\n/nonsense\n"
    result = subprocess.run([sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "c.db"), "--json"],
                            input=script, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    verdicts = [o for o in out if o["title"].startswith(("Wrong answer", "Runtime error"))]
    assert verdicts and "Your output" in json.dumps(verdicts[0]), out  # the dump was printed back
    assert not leaks(result.stdout, result.stderr)


async def test_the_database_drivers_log_no_statement_parameters_at_debug(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """ONSITE_LOG_LEVEL=DEBUG: aiosqlite would log every statement with its parameters (stored Slack
    tokens, members' code); the bot's logging set-up keeps the drivers at INFO."""
    from datetime import UTC, datetime

    from bot.__main__ import QUIET_LOGGERS, configure_logging
    from bot.store.sqlite import Store

    for name in QUIET_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.getLogger(name).level)
    caplog.set_level(logging.DEBUG)
    configure_logging("DEBUG")
    store = await Store.open(tmp_path / "onsite.db")
    now = datetime.now(UTC)
    community = await store.ensure_community("slack", "T1", "Workspace", now=now)
    await store.ensure_member(community.id, "U1", SLACK_BOT, now=now)
    await store.close()
    logging.getLogger("onsite").debug("the bot's own debug lines still show")
    assert any("own debug lines" in r.getMessage() for r in caplog.records)
    assert not [r.getMessage() for r in caplog.records if any(t in r.getMessage() for t in TOKENS)]
