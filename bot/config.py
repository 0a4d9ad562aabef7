"""Settings from the environment and an optional `.env` file, built once in `main()` and passed down.

Real environment variables win over `.env`. Every value is validated at start; a bad one raises
`ConfigError` naming the variable and what is wrong. Tokens are held as `Secret`, whose repr and str
are masked, so printing or logging the settings never shows them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from bot.core import failpoints
from bot.core.clock import is_timezone
from bot.core.errors import ConfigError, shown

TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Secret:
    """A token that never shows itself in repr, str, f-strings or logs; `reveal()` is explicit."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def default_data_dir() -> Path:
    """Where the console keeps its database and history: $XDG_DATA_HOME/onsite or ~/.local/share/onsite."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "onsite"


def default_questions_dir() -> Path:
    """The bank beside the package in a checkout, else ./questions."""
    beside = Path(__file__).resolve().parents[1] / "questions"
    return beside if beside.is_dir() else Path.cwd() / "questions"


@dataclass(frozen=True)
class Settings:
    database: Path = field(default_factory=lambda: default_data_dir() / "onsite.db")
    # issue 19: a PostgreSQL database instead of the SQLite file (postgresql://user:password@host/db);
    # a secret, since it usually carries the password (bot/store/__init__.py open_store)
    database_url: Secret | None = None
    questions_dir: Path = field(default_factory=default_questions_dir)
    timezone: str = "UTC"
    post_time: str = "09:00"
    log_level: str = "INFO"
    grader_workers: int | None = None
    daily_grace_minutes: int = 360
    discord_token: Secret | None = None
    discord_guild_id: int | None = None
    slack_bot_token: Secret | None = None
    slack_app_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    # Slack's OAuth install flow (any number of workspaces, HTTP mode): the app's credentials and the
    # key that signs the OAuth `state` (bot.adapters.slack_app)
    slack_client_id: str | None = None
    slack_client_secret: Secret | None = None
    slack_state_secret: Secret | None = None
    failpoints: frozenset[str] = frozenset()  # crash-safety tests only (bot.core.failpoints)
    allow_rlimit_tier: bool = False  # let Discord/Slack run with the weaker judge tier (SECURITY.md)
    command_burst: int = 8  # commands a member may send in a row (Discord/Slack; bot.core.cooldown)
    commands_per_minute: int = 20  # and then how many a minute
    # issue 20: the optional AI review (off unless a base URL and a model are set; bot/core/review.py)
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: Secret | None = None
    llm_timeout_s: int = 30
    llm_member_daily: int = 5
    llm_community_daily: int = 200

    def require(self, *names: str) -> None:
        """Fail early, naming the variables a platform needs and does not have."""
        missing = [ENV_NAMES[n] for n in names if not getattr(self, n)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} must be set (in the environment or .env)")

    def describe(self) -> str:
        """Every setting, tokens masked: safe to print or log."""
        return ", ".join(f"{ENV_NAMES[f.name]}={getattr(self, f.name)!s}" for f in fields(self))


ENV_NAMES: Mapping[str, str] = {
    "database": "ONSITE_DB",
    "database_url": "ONSITE_DATABASE_URL",
    "questions_dir": "ONSITE_QUESTIONS",
    "timezone": "ONSITE_TIMEZONE",
    "post_time": "ONSITE_POST_TIME",
    "log_level": "ONSITE_LOG_LEVEL",
    "grader_workers": "ONSITE_GRADER_WORKERS",
    "daily_grace_minutes": "ONSITE_DAILY_GRACE_MINUTES",
    "discord_token": "DISCORD_TOKEN",
    "discord_guild_id": "DISCORD_GUILD_ID",
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_client_id": "SLACK_CLIENT_ID",
    "slack_client_secret": "SLACK_CLIENT_SECRET",
    "slack_state_secret": "SLACK_STATE_SECRET",
    "failpoints": "ONSITE_FAILPOINTS",
    "allow_rlimit_tier": "ONSITE_ALLOW_RLIMIT_TIER",
    "command_burst": "ONSITE_COMMAND_BURST",
    "commands_per_minute": "ONSITE_COMMANDS_PER_MINUTE",
    "llm_base_url": "ONSITE_LLM_BASE_URL",
    "llm_model": "ONSITE_LLM_MODEL",
    "llm_api_key": "ONSITE_LLM_API_KEY",
    "llm_timeout_s": "ONSITE_LLM_TIMEOUT_S",
    "llm_member_daily": "ONSITE_LLM_MEMBER_DAILY",
    "llm_community_daily": "ONSITE_LLM_COMMUNITY_DAILY",
}


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines (comments, blank lines, `export`, single or double quotes)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = ENV_LINE.match(line)
        if not match:
            # the line itself is not shown: a malformed line is often a pasted token
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE (the line is not shown, it may hold a secret)")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def _digits(text: str, most: int) -> bool:
    """ASCII digits only (`isdigit` also takes '²', which `int` refuses), at most `most` of them."""
    return text.isascii() and text.isdigit() and len(text) <= most


def validate_timezone(name: str, variable: str) -> str:
    if not is_timezone(name):
        raise ConfigError(f"{variable}={name!r} is not an IANA timezone (for example Europe/Berlin)")
    return name


def validate_time_of_day(value: str, variable: str) -> str:
    if not TIME_OF_DAY.match(value):
        raise ConfigError(f"{variable}={value!r} must be a 24-hour time HH:MM (for example 09:00)")
    return value


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Build and validate the settings: real environment over `.env` over defaults."""
    env: dict[str, str] = dict(read_dotenv(dotenv)) if dotenv is not None else {}
    env.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = env.get(ENV_NAMES[name])
        return value if value not in (None, "") else None

    kwargs: dict[str, object] = {}
    if (db := get("database")) is not None:
        kwargs["database"] = Path(db).expanduser()
    if (url := get("database_url")) is not None:
        if not re.match(r"^(postgresql|postgres)://", url):
            raise ConfigError("ONSITE_DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:5432/db); "
                              "leave it unset for the SQLite file at ONSITE_DB")
        kwargs["database_url"] = Secret(url)
    if (qdir := get("questions_dir")) is not None:
        kwargs["questions_dir"] = Path(qdir).expanduser()
    if (tz := get("timezone")) is not None:
        kwargs["timezone"] = validate_timezone(tz, "ONSITE_TIMEZONE")
    if (post := get("post_time")) is not None:
        kwargs["post_time"] = validate_time_of_day(post, "ONSITE_POST_TIME")
    if (level := get("log_level")) is not None:
        if level.upper() not in LOG_LEVELS:
            raise ConfigError(f"ONSITE_LOG_LEVEL={level!r} must be one of {', '.join(LOG_LEVELS)}")
        kwargs["log_level"] = level.upper()
    if (workers := get("grader_workers")) is not None:
        if not _digits(workers, 2) or not 0 <= int(workers) <= 64:
            raise ConfigError(f"ONSITE_GRADER_WORKERS={workers!r} must be a whole number from 0 (no judge in this "
                              "process: `python -m graders worker` grades) to 64")
        kwargs["grader_workers"] = int(workers)
    if (grace := get("daily_grace_minutes")) is not None:
        if not _digits(grace, 4) or int(grace) > 24 * 60:
            raise ConfigError(f"ONSITE_DAILY_GRACE_MINUTES={grace!r} must be a whole number of minutes from 0 to 1440")
        kwargs["daily_grace_minutes"] = int(grace)
    if (guild := get("discord_guild_id")) is not None:
        if not _digits(guild, 20):
            raise ConfigError("DISCORD_GUILD_ID must be a numeric Discord server id")
        kwargs["discord_guild_id"] = int(guild)
    if (points := get("failpoints")) is not None:
        names = frozenset(p.strip() for p in points.split(",") if p.strip())
        if unknown := sorted(names - failpoints.POINTS):
            raise ConfigError(f"ONSITE_FAILPOINTS names unknown points {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(failpoints.POINTS))}")
        kwargs["failpoints"] = names
    if (allow := get("allow_rlimit_tier")) is not None:
        if allow not in ("0", "1"):
            raise ConfigError(f"ONSITE_ALLOW_RLIMIT_TIER={shown(allow)} must be 1 (allow) or 0")
        kwargs["allow_rlimit_tier"] = allow == "1"
    if (url := get("llm_base_url")) is not None:
        if not re.match(r"^https?://[^\s/]+", url):
            raise ConfigError(f"ONSITE_LLM_BASE_URL={shown(url)} must be an http(s) URL such as "
                              "http://127.0.0.1:11434/v1 or https://api.openai.com/v1")
        kwargs["llm_base_url"] = url
        if get("llm_model") is None:
            raise ConfigError("ONSITE_LLM_MODEL must be set with ONSITE_LLM_BASE_URL (the model's name at that server)")
    if (model := get("llm_model")) is not None:
        if get("llm_base_url") is None:
            raise ConfigError("ONSITE_LLM_MODEL is set but ONSITE_LLM_BASE_URL is not")
        kwargs["llm_model"] = model
    for name, least, most in (("llm_timeout_s", 1, 300), ("llm_member_daily", 0, 1000),
                              ("llm_community_daily", 0, 100000)):
        if (value := get(name)) is not None:
            if not _digits(value, 6) or not least <= int(value) <= most:
                raise ConfigError(f"{ENV_NAMES[name]}={shown(value)} must be a whole number from {least} to {most}")
            kwargs[name] = int(value)
    for name, most in (("command_burst", 100), ("commands_per_minute", 600)):
        if (value := get(name)) is not None:
            if not _digits(value, 3) or not 1 <= int(value) <= most:
                raise ConfigError(f"{ENV_NAMES[name]}={shown(value)} must be a whole number from 1 to {most}")
            kwargs[name] = int(value)
    for name in ("discord_token", "slack_bot_token", "slack_app_token", "slack_signing_secret",
                 "slack_client_secret", "slack_state_secret", "llm_api_key"):
        if (token := get(name)) is not None:
            kwargs[name] = Secret(token)
    if (client_id := get("slack_client_id")) is not None:
        if not re.fullmatch(r"\d+\.\d+", client_id):
            raise ConfigError(f"SLACK_CLIENT_ID={shown(client_id)} must be the app's Client ID (digits.digits, "
                              "from Basic Information > App Credentials)")
        kwargs["slack_client_id"] = client_id
    if (state_secret := kwargs.get("slack_state_secret")) is not None:
        assert isinstance(state_secret, Secret)
        if len(state_secret.reveal()) < 32:
            raise ConfigError("SLACK_STATE_SECRET must be at least 32 characters (for example: openssl rand -hex 32)")
    if (bot_token := kwargs.get("slack_bot_token")) is not None:
        assert isinstance(bot_token, Secret)
        if not bot_token.reveal().startswith("xoxb-"):
            raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    if (app_token := kwargs.get("slack_app_token")) is not None:
        assert isinstance(app_token, Secret)
        if not app_token.reveal().startswith("xapp-"):
            raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    return Settings(**kwargs)  # type: ignore[arg-type]
