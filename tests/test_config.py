from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Secret, load_settings, read_dotenv
from bot.core.errors import ConfigError


def test_defaults_without_environment(tmp_path: Path) -> None:
    s = load_settings({}, dotenv=tmp_path / "missing.env")
    assert s.timezone == "UTC" and s.post_time == "09:00"
    assert s.database.name == "onsite.db"
    assert s.discord_token is None


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nexport ONSITE_TIMEZONE='Europe/Berlin'\nONSITE_POST_TIME=07:30  # early\n"
        'DISCORD_TOKEN="abc.def"\n\nONSITE_DB=~/x.db\n'
    )
    s = load_settings({"ONSITE_POST_TIME": "08:15"}, dotenv=env_file)
    assert s.timezone == "Europe/Berlin"
    assert s.post_time == "08:15"
    assert s.discord_token == Secret("abc.def")
    assert s.database == Path("~/x.db").expanduser()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ONSITE_TIMEZONE": "Mars/Olympus"}, "ONSITE_TIMEZONE='Mars/Olympus' is not an IANA timezone"),
        ({"ONSITE_TIMEZONE": "Europe/" + "x" * 300}, "is not an IANA timezone"),  # zoneinfo raises OSError here
        ({"ONSITE_POST_TIME": "9am"}, "ONSITE_POST_TIME='9am' must be a 24-hour time HH:MM"),
        ({"ONSITE_POST_TIME": "24:00"}, "ONSITE_POST_TIME='24:00'"),
        ({"ONSITE_LOG_LEVEL": "LOUD"}, "ONSITE_LOG_LEVEL='LOUD' must be one of"),
        ({"ONSITE_GRADER_WORKERS": "65"}, "ONSITE_GRADER_WORKERS='65'"),
        ({"DISCORD_GUILD_ID": "abc"}, "DISCORD_GUILD_ID must be a numeric"),
        ({"DISCORD_GUILD_ID": "12²"}, "DISCORD_GUILD_ID must be a numeric"),  # isdigit() says yes, int() says no
        ({"ONSITE_GRADER_WORKERS": "²"}, "ONSITE_GRADER_WORKERS='²' must be a whole number"),
        ({"ONSITE_DAILY_GRACE_MINUTES": "6" * 5000}, "ONSITE_DAILY_GRACE_MINUTES="),
        ({"ONSITE_FAILPOINTS": "outbox.claimed,nowhere"}, "ONSITE_FAILPOINTS names unknown points nowhere"),
        ({"SLACK_BOT_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN must be a bot token"),
        ({"SLACK_APP_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN must be an app-level token"),
        ({"ONSITE_ALLOW_RLIMIT_TIER": "yes"}, "ONSITE_ALLOW_RLIMIT_TIER='yes' must be 1 (allow) or 0"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env, dotenv=tmp_path / "none")
    assert message in str(err.value)


def test_malformed_dotenv_line_names_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GOOD=1\nthis is not an assignment\n")
    with pytest.raises(ConfigError, match=r"\.env:2: expected KEY=VALUE"):
        read_dotenv(env_file)


def test_secrets_never_print(tmp_path: Path) -> None:
    s = load_settings(
        {"DISCORD_TOKEN": "tok-A1B2C3", "SLACK_BOT_TOKEN": "xoxb-D4E5F6", "SLACK_APP_TOKEN": "xapp-G7H8I9"},
        dotenv=tmp_path / "none",
    )
    for text in (repr(s), str(s), s.describe(), f"{s.discord_token}", repr(s.slack_bot_token)):
        for raw in ("A1B2C3", "D4E5F6", "G7H8I9"):
            assert raw not in text
    assert s.discord_token is not None and s.discord_token.reveal() == "tok-A1B2C3"


def test_require_names_missing_variables(tmp_path: Path) -> None:
    s = load_settings({}, dotenv=tmp_path / "none")
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN, SLACK_APP_TOKEN must be set"):
        s.require("slack_bot_token", "slack_app_token")
