"""Many workspaces, one deployment: Bolt's OAuth install flow with its installation store in our database.

The install goes through Bolt's real OAuth flow (its install page, the `state` cookie, the redirect,
`oauth.v2.access` and `auth.test` answered by the fake Web API, which issues each workspace its own
bot token with the scopes the install URL asked for). Each workspace becomes its own community and
every call for it uses its own token. `app_uninstalled` and `tokens_revoked` remove the tokens, turn
the workspace's daily channel off and stop everything Onsite would send there.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.signature import SignatureVerifier

from bot.adapters.slack_app import (
    BOT_SCOPES,
    OAuthConfig,
    SignedStateStore,
    SlackAdapter,
    SlackChat,
    SlackInstallations,
    check_slack_settings,
    make_client,
    oauth_config,
    run_slack,
)
from bot.app import build_app
from bot.config import Secret, Settings, load_settings
from bot.core.bank import Bank
from bot.core.clock import FixedClock
from bot.core.errors import ConfigError
from bot.core.messages import Message
from bot.core.ports import DeliveryError
from bot.store.sqlite import Store
from tests.adapters.slack_fake_api import FakeSlackApi
from tests.adapters.test_slack_app import SECRET, Slack, all_text
from tests.adapters.test_slack_run import free_port, running
from tests.conftest import FIXTURE_BANK, StandInGrader

STATE_SECRET = "s" * 40
ONE, TWO = "T0ONE", "T0TWO"
ANN, BEN = "U0ANN", "U0BEN"  # Ann is an admin of workspace one, Ben of workspace two


def oauth_settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(database=tmp_path / "onsite.db", questions_dir=FIXTURE_BANK, grader_workers=1,
                    slack_signing_secret=Secret(SECRET), slack_client_id=FakeSlackApi.CLIENT_ID,
                    slack_client_secret=Secret(FakeSlackApi.CLIENT_SECRET),
                    slack_state_secret=Secret(STATE_SECRET), **extra)


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackApi]:
    fake = FakeSlackApi()
    await fake.start()
    fake.add_team(ONE, "Workspace One")
    fake.add_team(TWO, "Workspace Two")
    fake.add_user(ANN, "Ann", admin=True, team=ONE)
    fake.add_user(BEN, "Ben", admin=True, team=TWO)
    yield fake
    await fake.stop()
    assert not fake.rejected, fake.rejected


def signed(body: str, content_type: str) -> AsyncBoltRequest:
    ts = str(int(time.time()))
    return AsyncBoltRequest(body=body, headers={
        "content-type": [content_type], "x-slack-request-timestamp": [ts],
        "x-slack-signature": [SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)]})


def command_body(api: FakeSlackApi, text: str, team: str, user: str, n: int = 1) -> str:
    return urlencode({"team_id": team, "team_domain": team.lower(), "channel_id": "C0GENERAL", "user_id": user,
                      "user_name": user.lower(), "command": "/onsite", "text": text, "api_app_id": "A0APP",
                      "trigger_id": f"trigger-{n}", "response_url": f"{api.base_url}response/{team}-{n}"})


def event_body(team: str, event: dict[str, Any]) -> str:
    return json.dumps({"token": "legacy", "team_id": team, "api_app_id": "A0APP", "type": "event_callback",
                       "event": event, "event_id": f"Ev{time.monotonic_ns()}", "event_time": int(time.time())})


def install_link(page: str) -> str:
    match = re.search(r'<a href="([^"]+)"', page)
    assert match, page
    return html.unescape(match.group(1))


# -- end to end: run_slack in HTTP mode with the install flow ------------------------------------------


async def test_two_workspaces_install_through_the_oauth_flow_and_get_their_own_communities(
        tmp_path: Path, api: FakeSlackApi) -> None:
    port, stop = free_port(), asyncio.Event()
    settings = oauth_settings(tmp_path)
    async with running(run_slack(settings, http_port=port, stop=stop, base_url=api.base_url), stop):
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{base}/slack/install") as resp:
                        page = await resp.text()
                        assert resp.status == 200 and "slack-app-oauth-state=" in resp.headers["Set-Cookie"]
                    break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.05)
            url = install_link(page)
            asked = parse_qs(urlsplit(url).query)
            assert set(asked["scope"][0].split(",")) == set(BOT_SCOPES)  # the manifest's scopes

            async def install(team: str, installer: str) -> int:
                async with session.get(f"{base}/slack/install") as resp:
                    link, cookie = install_link(await resp.text()), resp.headers["Set-Cookie"].split(";")[0]
                back = urlsplit(api.authorize(link, team=team, installer=installer))
                async with session.get(f"{base}/slack/oauth_redirect?{back.query}",
                                       headers={"Cookie": cookie}) as resp:
                    return resp.status

            assert await install(ONE, ANN) == 200
            assert await install(TWO, BEN) == 200
            assert [c for c in api.of("oauth.v2.access")] and not api.grants  # both codes redeemed

            async def command(text: str, team: str, user: str) -> dict[str, Any]:
                body = command_body(api, text, team, user)
                ts = str(int(time.time()))
                headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                           "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)}
                async with session.post(f"{base}/slack/events", data=body, headers=headers) as resp:
                    assert resp.status == 200
                    return dict(await resp.json())

            one = await command("stats", ONE, ANN)
            two = await command("stats", TWO, BEN)
            assert "Stats · Ann" in all_text(one) and "Stats · Ben" in all_text(two)
            assert "/onsite admin setup" in all_text(await command("help", ONE, ANN))  # an admin of her workspace
    store = await Store.open(settings.database)
    try:
        communities = {c.external_id: c for c in await store.list_communities()}
    finally:
        await store.close()
    assert set(communities) == {ONE, TWO}
    assert communities[ONE].name == "Workspace One" and communities[TWO].name == "Workspace Two"
    # every call for a workspace used that workspace's own token
    for call in api.calls:
        if call.method in ("users.info", "team.info"):
            token = api.tokens[call.headers["Authorization"][7:]]
            asked = call.params.get("team") or api.users[call.params["user"]]["team_id"]
            assert token.team == asked, call


async def test_a_forged_or_replayed_state_installs_nothing(tmp_path: Path, api: FakeSlackApi) -> None:
    app, adapter = await oauth_app(oauth_settings(tmp_path), api, bank=Bank.load(FIXTURE_BANK), grader=StandInGrader())
    try:
        flow = adapter.bolt.oauth_flow
        assert flow is not None
        page = await flow.handle_installation(AsyncBoltRequest(body="", query={}, headers={}))
        cookie = page.headers["set-cookie"][0].split(";")[0]
        back = api.authorize(install_link(page.body), team=ONE, installer=ANN)
        query = parse_qs(urlsplit(back).query)
        state = query["state"][0]
        forged = state[:-4] + ("0000" if not state.endswith("0000") else "1111")
        for bad_state, bad_cookie in ((forged, f"slack-app-oauth-state={forged}"), (state, "")):
            resp = await flow.handle_callback(AsyncBoltRequest(
                body="", query=urlencode({"code": query["code"][0], "state": bad_state}),
                headers={"cookie": bad_cookie} if bad_cookie else {}))
            assert resp.status in (400, 401)
        assert await adapter.installations.async_find_bot(enterprise_id=None, team_id=ONE) is None
        ok = await flow.handle_callback(AsyncBoltRequest(body="", query=urlsplit(back).query,
                                                         headers={"cookie": cookie}))
        assert ok.status == 200
        again = await flow.handle_callback(AsyncBoltRequest(body="", query=urlsplit(back).query,
                                                            headers={"cookie": cookie}))
        assert again.status == 401  # a state is good once
    finally:
        await adapter.drain()
        await app.close()


# -- the adapter in OAuth mode, through Bolt's dispatch -------------------------------------------------


async def oauth_app(settings: Settings, api: FakeSlackApi, **kwargs: Any) -> tuple[Any, SlackAdapter]:
    """The composition run_slack makes in OAuth mode: a token-less client, a chat per workspace."""
    client = make_client(None, base_url=api.base_url)
    chat = SlackChat(client)
    app = await build_app(settings, chat=chat, **kwargs)
    config = oauth_config(settings)
    assert config is not None
    return app, SlackAdapter(app, client, signing_secret=SECRET, chat=chat, oauth=config)


@pytest.fixture
async def multi(tmp_path: Path, api: FakeSlackApi, bank: Bank, clock: FixedClock,
                grader: StandInGrader) -> AsyncIterator[Slack]:
    app, adapter = await oauth_app(oauth_settings(tmp_path), api, clock=clock, bank=bank, grader=grader)
    try:
        yield Slack(adapter, api, app)
    finally:
        await adapter.drain()
        await app.close()


async def install(slack: Slack, team: str, installer: str) -> None:
    flow = slack.adapter.bolt.oauth_flow
    assert flow is not None
    page = await flow.handle_installation(AsyncBoltRequest(body="", query={}, headers={}))
    cookie = page.headers["set-cookie"][0].split(";")[0]
    back = slack.api.authorize(install_link(page.body), team=team, installer=installer)
    done = await flow.handle_callback(AsyncBoltRequest(body="", query=urlsplit(back).query,
                                                       headers={"cookie": cookie}))
    assert done.status == 200, done.body
    await slack.adapter.drain()


async def command(slack: Slack, text: str, team: str, user: str) -> dict[str, Any]:
    slack._n += 1
    status, body = await slack.send(signed(command_body(slack.api, text, team, user, slack._n),
                                           "application/x-www-form-urlencoded"))
    assert status == 200, body
    return body


async def community_of(slack: Slack, team: str) -> Any:
    return next(c for c in await slack.app.store.list_communities() if c.external_id == team)


async def test_the_installer_is_welcomed_and_each_workspace_is_a_community(multi: Slack) -> None:
    await install(multi, ONE, ANN)
    await install(multi, TWO, BEN)
    assert {c.external_id for c in await multi.app.store.list_communities()} == {ONE, TWO}
    welcome = [p for p in multi.api.of("chat.postMessage") if "/onsite admin setup channel" in all_text(p)]
    assert len(welcome) == 2  # a DM to each installer
    assert "Ann" not in all_text(await command(multi, "leaderboard all", TWO, BEN))


async def test_an_uninstalled_workspace_gets_nothing_again(multi: Slack, clock: FixedClock) -> None:
    await install(multi, ONE, ANN)
    await install(multi, TWO, BEN)
    for team, user in ((ONE, ANN), (TWO, BEN)):
        assert "Updated channel" in all_text(await command(multi, "admin setup channel <#C0DAILY|daily>", team, user))
    one = await community_of(multi, ONE)
    multi.api.uninstall(ONE)  # Slack revokes the tokens, then tells the app
    status, _ = await multi.send(signed(event_body(ONE, {"type": "app_uninstalled"}), "application/json"))
    assert status == 200
    assert await multi.adapter.installations.async_find_bot(enterprise_id=None, team_id=ONE) is None
    assert (await community_of(multi, ONE)).channel == ""  # the daily round is off there
    before = len(multi.api.posts_to(ONE))
    with pytest.raises(DeliveryError) as refused:
        await multi.adapter.chat.post(one, "C0DAILY", Message(title="hello"))
    assert refused.value.permanent and "uninstalled" in str(refused.value)
    ann = await multi.app.store.ensure_member(one.id, ANN, "Ann", now=clock.now())
    with pytest.raises(DeliveryError):
        await multi.adapter.chat.send_dm(ann, Message(body="hi"))
    await multi.app.services.tick()
    assert len(multi.api.posts_to(ONE)) == before  # not one call reached workspace one
    await command(multi, "admin post-now", TWO, BEN)
    await multi.adapter.deliver()
    assert [c for c in multi.api.posts_to(TWO) if c.method == "chat.postMessage"
            and c.params["channel"] == "C0DAILY"]  # workspace two still gets its round

    # installed again: the tokens are new, the channel comes back
    await install(multi, ONE, ANN)
    assert (await community_of(multi, ONE)).channel == "C0DAILY"
    ref = await multi.adapter.chat.post(await community_of(multi, ONE), "C0DAILY", Message(title="back"))
    assert ref.startswith("C0DAILY:")


async def test_a_revoked_bot_token_is_an_uninstall(multi: Slack) -> None:
    await install(multi, ONE, ANN)
    assert "Updated channel" in all_text(await command(multi, "admin setup channel <#C0DAILY|daily>", ONE, ANN))
    bot = await multi.adapter.installations.async_find_bot(enterprise_id=None, team_id=ONE)
    assert bot is not None
    event = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [bot.bot_user_id]}}
    status, _ = await multi.send(signed(event_body(ONE, event), "application/json"))
    assert status == 200
    assert await multi.adapter.installations.async_find_bot(enterprise_id=None, team_id=ONE) is None
    assert (await community_of(multi, ONE)).channel == ""
    with pytest.raises(DeliveryError, match="uninstalled"):
        await multi.adapter.chat.post(await community_of(multi, ONE), "C0DAILY", Message(title="x"))


async def test_an_uninstall_whose_event_was_missed_is_noticed_at_the_first_refusal(multi: Slack) -> None:
    """Down when Slack sent app_uninstalled: the first send answered account_inactive marks it."""
    await install(multi, ONE, ANN)
    one = await community_of(multi, ONE)
    multi.api.uninstall(ONE)
    with pytest.raises(DeliveryError) as refused:
        await multi.adapter.chat.post(one, "C0DAILY", Message(title="hello"))
    assert refused.value.permanent
    before = len(multi.api.posts_to(ONE))
    with pytest.raises(DeliveryError, match="uninstalled"):
        await multi.adapter.chat.post(one, "C0DAILY", Message(title="again"))
    assert len(multi.api.posts_to(ONE)) == before


async def test_single_token_mode_also_stops_after_an_uninstall(tmp_path: Path, bank: Bank, clock: FixedClock,
                                                               grader: StandInGrader) -> None:
    api = FakeSlackApi()
    await api.start()
    api.add_user("U0ADA", "Ada", admin=True)
    client = make_client("xoxb-test", base_url=api.base_url)
    chat = SlackChat(client)
    app = await build_app(Settings(database=tmp_path / "onsite.db", questions_dir=FIXTURE_BANK), clock=clock,
                          chat=chat, bank=bank, grader=grader)
    adapter = SlackAdapter(app, client, signing_secret=SECRET, chat=chat)
    try:
        slack = Slack(adapter, api, app)
        assert "Updated channel" in all_text(await slack.command("admin setup channel <#C0DAILY|daily>"))
        status, _ = await slack.send(signed(event_body(FakeSlackApi.TEAM, {"type": "app_uninstalled"}),
                                            "application/json"))
        assert status == 200
        community = (await app.store.list_communities())[0]
        assert community.channel == ""
        calls = len(api.calls)
        with pytest.raises(DeliveryError, match="uninstalled"):
            await chat.post(community, "C0DAILY", Message(title="x"))
        assert len(api.calls) == calls
        await adapter.workspace_installed(FakeSlackApi.TEAM)  # what run_slack does at start with a new token
        assert (await app.store.list_communities())[0].channel == "C0DAILY"
    finally:
        await adapter.drain()
        await app.close()
        await api.stop()


# -- the installation store and the state store on their own -------------------------------------------


async def test_the_installation_store_keeps_bolts_installations(store: Store) -> None:
    installations = SlackInstallations(store)
    first = Installation(app_id="A0APP", team_id=ONE, team_name="One", bot_token="xoxb-1", bot_id="B1",
                         bot_user_id="U0B1", bot_scopes="commands,chat:write", user_id=ANN, installed_at=1700000000.5)
    await installations.async_save(first)
    bot = await installations.async_find_bot(enterprise_id=None, team_id=ONE)
    assert bot is not None and bot.bot_token == "xoxb-1" and bot.bot_scopes == ["commands", "chat:write"]
    assert bot.installed_at == 1700000000.5
    found = await installations.async_find_installation(enterprise_id=None, team_id=ONE)
    assert found is not None and found.user_id == ANN and found.bot_token == "xoxb-1"
    second = Installation(app_id="A0APP", team_id=ONE, team_name="One", bot_token="xoxb-2", bot_id="B1",
                          bot_user_id="U0B1", bot_scopes="commands", user_id="U0OTHER", installed_at=1700000100.0)
    await installations.async_save(second)
    latest = await installations.async_find_installation(enterprise_id=None, team_id=ONE)
    assert latest is not None and latest.user_id == "U0OTHER" and latest.bot_token == "xoxb-2"
    mine = await installations.async_find_installation(enterprise_id=None, team_id=ONE, user_id=ANN)
    assert mine is not None and mine.user_id == ANN and mine.bot_token == "xoxb-2"  # the workspace's bot now
    assert await installations.async_find_bot(enterprise_id=None, team_id=TWO) is None
    await installations.async_delete_installation(enterprise_id=None, team_id=ONE, user_id="U0OTHER")
    assert (await installations.async_find_installation(enterprise_id=None, team_id=ONE)).user_id == ANN  # type: ignore[union-attr]
    await installations.async_delete_bot(enterprise_id=None, team_id=ONE)
    assert await installations.async_find_bot(enterprise_id=None, team_id=ONE) is None
    await installations.async_save(first)
    await installations.async_delete_all(enterprise_id=None, team_id=ONE)
    assert await installations.async_find_bot(enterprise_id=None, team_id=ONE) is None
    assert await installations.async_find_installation(enterprise_id=None, team_id=ONE) is None


async def test_a_state_is_signed_expires_and_is_good_once(store: Store) -> None:
    now = [1_000_000.0]
    states = SignedStateStore(STATE_SECRET, store, clock=lambda: now[0], expiration_s=600)
    state = await states.async_issue()
    other = await SignedStateStore("t" * 40, store).async_issue()
    assert await states.async_consume(other) is False  # signed with another secret
    assert await states.async_consume(state.replace(state[0], "f" if state[0] != "f" else "e", 1)) is False
    assert await states.async_consume(state) is True
    assert await states.async_consume(state) is False  # replayed
    late = await states.async_issue()
    now[0] += 601
    assert await states.async_consume(late) is False  # expired
    assert await states.async_consume("") is False and await states.async_consume("a.b.c") is False


# -- settings ---------------------------------------------------------------------------------------------


def test_oauth_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "cs", "SLACK_STATE_SECRET": "x" * 32,
           "SLACK_SIGNING_SECRET": "sig"}
    settings = load_settings(env, dotenv=None)
    config = oauth_config(settings)
    assert config == OAuthConfig(client_id="1111.2222", client_secret="cs", state_secret="x" * 32,
                                 scopes=BOT_SCOPES)
    assert "cs" not in settings.describe() and "x" * 32 not in settings.describe()
    check_slack_settings(settings, http=True)
    with pytest.raises(ConfigError, match="--http"):
        check_slack_settings(settings, http=False)
    with pytest.raises(ConfigError, match="not both"):
        check_slack_settings(load_settings({**env, "SLACK_BOT_TOKEN": "xoxb-1"}, dotenv=None), http=True)
    with pytest.raises(ConfigError, match="SLACK_STATE_SECRET"):
        check_slack_settings(load_settings({"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "cs",
                                            "SLACK_SIGNING_SECRET": "sig"}, dotenv=None), http=True)
    with pytest.raises(ConfigError, match="SLACK_CLIENT_ID"):
        load_settings({**env, "SLACK_CLIENT_ID": "my-app"}, dotenv=None)
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings({**env, "SLACK_STATE_SECRET": "short"}, dotenv=None)
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        check_slack_settings(load_settings({"SLACK_BOT_TOKEN": "xoxb-1"}, dotenv=None), http=False)


async def test_run_slack_waits_for_installs_without_any_token(tmp_path: Path, api: FakeSlackApi) -> None:
    """OAuth mode starts with no workspace at all; the first request comes after an install."""
    port, stop = free_port(), asyncio.Event()
    async with running(run_slack(oauth_settings(tmp_path), http_port=port, stop=stop, base_url=api.base_url), stop):
        async with aiohttp.ClientSession() as session:
            async def up() -> bool:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/slack/install") as resp:
                        return resp.status == 200
                except aiohttp.ClientConnectorError:
                    return False

            deadline = time.monotonic() + 10
            while not await up():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    assert "auth.test" not in api.methods()  # no token to test yet
