"""Block Kit rendering within Slack's limits, and the manifest a new user installs from."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.adapters.slack_app import Renderer, escape, split_text, unescape_command_text
from bot.core.commands import core_table
from bot.core.messages import Button, Field, Form, FormField, Message

REPO = Path(__file__).resolve().parents[2]
render = Renderer(core_table())


def texts(blocks: list[dict]) -> list[str]:
    out = []
    for b in blocks:
        if "text" in b and isinstance(b["text"], dict):
            out.append(b["text"]["text"])
        out += [f["text"] for f in b.get("fields", [])]
        out += [e["text"] for e in b.get("elements", []) if e.get("type") == "mrkdwn"]
    return out


def test_escaping_neutralises_pings_and_links() -> None:
    hostile = "<!channel> <!here> <@U0ADA> <https://evil.example|click> & co"
    assert escape(hostile) == "&lt;!channel&gt; &lt;!here&gt; &lt;@U0ADA&gt; &lt;https://evil.example|click&gt; &amp; co"
    blocks = render.blocks(Message(title=hostile, body=hostile, fields=(Field(hostile, hostile, True),),
                                   code=hostile, footer=hostile))
    for text in texts(blocks):
        assert "<!" not in text and "<@" not in text and "<http" not in text
    assert "<!channel>" not in render.fallback(Message(body=hostile))


def test_markdown_becomes_mrkdwn_and_commands_become_onsite_subcommands() -> None:
    text = render.mrkdwn("**Bold** then `/submit pair-sum-count B` or /leaderboard; see https://x.example/daily")
    assert text.startswith("*Bold*")
    assert "`/onsite submit pair-sum-count B`" in text and "/onsite leaderboard" in text
    assert "https://x.example/daily" in text
    assert render.mrkdwn("```python\nx = 1\n```") == "```\nx = 1\n```"
    assert render.mrkdwn("posting in #C0DAILY") == "posting in <#C0DAILY>"


def test_long_messages_stay_within_block_kit_limits() -> None:
    long_body = "\n".join(f"line {i} " + "x" * 80 for i in range(200))
    code = "\n".join(f"print({i})  # " + "y" * 60 for i in range(300))
    fields = tuple(Field(f"f{i}", "v" * 50, inline=True) for i in range(23))
    big = Message(title="T" * 500, body=long_body, fields=fields, code=code,
                  buttons=tuple(Button(f"b{i}" * 30, "leaderboard", "v" * 3000) for i in range(30)), footer="foot")
    blocks = render.blocks(big)
    assert len(blocks) <= 50
    assert blocks[-1]["type"] == "context" and blocks[-2]["type"] == "actions"  # buttons and footer survive a cut
    for b in blocks:
        if "text" in b:
            assert len(b["text"]["text"]) <= 3000
        assert len(b.get("fields", [])) <= 10
        for f in b.get("fields", []):
            assert len(f["text"]) <= 2000
    actions = blocks[-2]
    assert len(actions["elements"]) <= 25
    assert all(len(e["value"]) <= 2000 and len(e["text"]["text"]) <= 75 for e in actions["elements"])
    assert len({e["action_id"] for e in actions["elements"]}) == len(actions["elements"])
    assert len(render.fallback(big)) <= 3000


def test_split_code_keeps_every_chunk_fenced() -> None:
    text = "intro\n```\n" + "\n".join("z" * 70 for _ in range(100)) + "\n```\nafter"
    chunks = split_text(text, 1000)
    assert len(chunks) > 5 and all(len(c) <= 1000 for c in chunks)
    assert all(c.count("```") % 2 == 0 for c in chunks)
    assert "".join(chunks).count("z" * 70) == 100


def test_modal_states_slacks_limit_and_fits_its_title() -> None:
    form = Form("Submit · A very long question title indeed", "submit",
                (FormField("answer", "Your code", "paragraph", max_length=65536, placeholder="p" * 400),),
                {"id": "pair-sum-count"}, note="Paste a solution.")
    view = render.modal(form, metadata={"command": "submit"})
    assert len(view["title"]["text"]) <= 24
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["element"]["max_length"] == 3000 and len(field["element"]["placeholder"]["text"]) <= 150
    assert "3,000 characters" in view["blocks"][-1]["elements"][0]["text"]


def test_command_text_mentions_become_ids() -> None:
    assert unescape_command_text("vote q <@U0BOB|bob>") == "vote q U0BOB"
    assert unescape_command_text("admin setup channel <#C0DAILY|daily>") == "admin setup channel C0DAILY"
    assert unescape_command_text("submit q a &lt; b &amp;&amp; <https://x.example|x>") == "submit q a < b && https://x.example"


def test_manifest_declares_what_the_adapter_uses() -> None:
    manifest = yaml.safe_load((REPO / "slack" / "manifest.yaml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/onsite" and command["should_escape"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "im:write", "mpim:write", "users:read", "team:read", "files:read",
            "files:write"} <= scopes
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened", "app_uninstalled", "tokens_revoked"]
    assert settings["socket_mode_enabled"] is True
