"""The locks and the deployment files say the same thing as pyproject.toml, so a fresh machine installs
what CI tested.

The lock must satisfy every range (run, test, cards extras and the build backend) for each Python the
project supports, pin each package once with its hashes, and be what README, the Dockerfile and
compose.yaml install. (The Dockerfile's commands themselves are run by `.ci/dockerfile-dry-run`.)
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PYTHONS = ("3.11", "3.12", "3.13", "3.14")


def read_lock(name: str) -> list[tuple[str, Version, Marker | None, int]]:
    """(package, version, marker, number of hashes) per pin of a pip requirements file."""
    pins = []
    text = (ROOT / name).read_text()
    for block in re.split(r"\n(?=\S)", text):
        line = block.split("\n", 1)[0].rstrip(" \\")
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{name}: {line} is not an exact pin"
        pins.append((canonicalize_name(req.name), Version(spec.version), req.marker, block.count("--hash=sha256:")))
    return pins


def environment(python: str) -> dict[str, str]:
    return {"python_version": python, "python_full_version": python + ".0", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def pinned(name: str, python: str) -> dict[str, Version]:
    out: dict[str, Version] = {}
    for pkg, version, marker, _ in read_lock(name):
        if marker is None or marker.evaluate(environment(python)):
            assert pkg not in out, f"{name} pins {pkg} twice for Python {python}"
            out[pkg] = version
    return out


def wanted(extras: tuple[str, ...]) -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [*project["dependencies"], *PYPROJECT["build-system"]["requires"]]
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return [Requirement(r) for r in reqs]


@pytest.mark.parametrize("lock, extras", [("requirements.txt", ()), ("requirements-test.txt", ("test", "cards"))])
@pytest.mark.parametrize("python", PYTHONS)
def test_the_lock_satisfies_every_range_of_pyproject(lock: str, extras: tuple[str, ...], python: str) -> None:
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(python)
    pins = pinned(lock, python)
    for req in wanted(extras):
        if req.marker is not None and not req.marker.evaluate(environment(python)):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{lock} has no pin for {req} (Python {python}): run .ci/lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside pyproject's {req} (Python {python}): run .ci/lock")


@pytest.mark.parametrize("lock", ["requirements.txt", "requirements-test.txt"])
def test_every_pin_carries_its_hashes(lock: str) -> None:
    pins = read_lock(lock)
    assert len(pins) >= 15
    assert [p for p in pins if p[3] == 0] == []


@pytest.mark.parametrize("python", PYTHONS)
def test_the_test_lock_runs_what_the_run_lock_runs(python: str) -> None:
    run, test = pinned("requirements.txt", python), pinned("requirements-test.txt", python)
    assert {k: test.get(k) for k in run} == run


def readme_commands() -> tuple[str, str]:
    text = (ROOT / "README.md").read_text()
    run = re.search(r"^python3 -m venv .*bot console$", text, re.M)
    test = re.search(r"^python3 -m venv .*pytest$", text, re.M)
    assert run and test, "README's first lines must hold the run and test commands"
    return run.group(0), test.group(0)


def test_readme_installs_from_the_lock() -> None:
    run, test = readme_commands()
    assert "pip install --require-hashes -r requirements.txt" in run
    assert "pip install --require-hashes -r requirements-test.txt" in test
    for command in (run, test):
        # our own package on top, without letting pip re-resolve anything or fetch a build backend
        assert "pip install --no-deps --no-build-isolation -e ." in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert "grep -m1 -E '^python3 -m venv .*pytest' README.md" in ci  # CI runs README's command itself


def dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def test_the_image_is_built_from_the_lock_and_runs_as_a_user() -> None:
    rows = dockerfile()
    words = [w for w, _ in rows]
    base = dict(rows)["FROM"]
    version = re.match(r"python:(\d+\.\d+)-slim", base)
    assert version and SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(version.group(1))
    installs = [r for w, r in rows if w == "RUN" and "pip install" in r]
    assert installs and all("--require-hashes -r requirements.txt" in r for r in installs)
    assert [r for w, r in rows if w == "COPY" and "requirements" in r] == ["requirements.txt ./"]
    user = [r for w, r in rows if w == "USER"]
    assert len(user) == 1 and user[0].split(":")[0].isdigit() and int(user[0].split(":")[0]) >= 1000
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")  # nothing runs as root after
    assert shlex.split(dict(rows)["ENTRYPOINT"].replace('"', "").strip("[]").replace(",", " ")) == ["python", "-m", "bot"]
    env = " ".join(r for w, r in rows if w == "ENV")
    assert "ONSITE_DB=/data/onsite.db" in env and dict(rows)["VOLUME"] == '["/data"]'
    copied = {r.split()[0] for w, r in rows if w == "COPY"}
    assert {"bot", "graders", "questions"} <= copied  # the migrations ship inside bot/, the bank beside it


def test_compose_keeps_the_database_on_a_volume_and_lets_the_sandbox_work() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    (service,) = compose["services"].values()
    assert service["build"] == "."
    assert "onsite-data:/data" in service["volumes"] and "onsite-data" in compose["volumes"]
    assert service["environment"]["ONSITE_DB"].startswith("/data/")
    assert {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"} <= set(service["security_opt"])
    assert "privileged" not in service and "cap_add" not in service  # bwrap needs a user namespace, not root
    platform = re.fullmatch(r"\$\{ONSITE_PLATFORM:-(\w+)\}", service["command"][0])
    assert platform and platform.group(1) in ("discord", "slack")


def test_the_postgres_compose_runs_the_bot_without_a_judge_beside_workers_that_can_sandbox() -> None:
    from bot.config import load_settings
    from graders.__main__ import main as graders_main

    compose = yaml.safe_load((ROOT / "compose.postgres.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "bot", "worker"}
    password = "s3cret"

    def filled(text: str) -> str:
        return text.replace("${ONSITE_PG_PASSWORD}", password)
    bot, worker = services["bot"], services["worker"]
    settings = load_settings({k: filled(v) for k, v in bot["environment"].items()}, dotenv=None)
    assert settings.grader_workers == 0 and settings.database_url is not None
    url = settings.database_url.reveal()
    assert url == filled(worker["command"][1]) and "@postgres:5432/" in url  # the service's own name
    assert worker["entrypoint"] == ["python", "-m", "graders", "worker"] and worker["image"] == bot["image"]
    with pytest.raises(SystemExit) as done:  # the image's worker command line is one the CLI accepts
        graders_main(["worker", *[filled(a) for a in worker["command"]], "--help"])
    assert done.value.code == 0
    assert {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"} <= set(worker["security_opt"])
    assert "security_opt" not in bot  # the bot runs no submission
    assert "onsite-pg:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_procfile_runs_the_bot_from_the_checkout() -> None:
    lines = (ROOT / "Procfile").read_text().split("\n")
    commands = dict(line.split(": ", 1) for line in lines if line.strip())
    assert commands == {"discord": "python -m bot discord", "slack": "python -m bot slack"}
