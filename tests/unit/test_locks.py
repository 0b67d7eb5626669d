"""The lock files (requirements/*.txt, made by scripts/lock.sh) are what every artifact and
the test suite install: each pins, with hashes, every requirement pyproject.toml declares for
it at a version that satisfies it, at the version the tests run (requirements/dev.txt), and
nothing an artifact does not run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
# lock file -> the extras it installs (the runtime dependencies always)
LOCKS = {"dev": ["dev"], "aws": ["aws"], "gcp": ["gcp"], "gcf": ["gcp", "gcf"], "mcp": ["mcp"]}
LINUX_311 = {**default_environment(), "sys_platform": "linux", "platform_system": "Linux",
             "python_version": "3.11", "python_full_version": "3.11.9", "implementation_name": "cpython"}


def pins(name: str) -> dict[str, str]:
    """``{distribution: version}`` of a lock file; every pin carries hashes."""
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", block)
        if match:
            assert "--hash=sha256:" in block, f"{name}.txt: {match.group(1)} has no hash"
            out[canonicalize_name(match.group(1))] = match.group(2)
    return out


def declared(extras: list[str]) -> list[Requirement]:
    """The requirements of the runtime dependencies plus ``extras``, self-references expanded."""
    out, todo, seen = [Requirement(r) for r in PROJECT["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for raw in EXTRAS[extra]:
            req = Requirement(raw)
            if canonicalize_name(req.name) == canonicalize_name(PROJECT["name"]):
                todo += sorted(req.extras)
            else:
                out.append(req)
    return out


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_each_lock_pins_what_pyproject_declares_at_a_version_that_fits(lock: str) -> None:
    locked = pins(lock)
    for req in declared(LOCKS[lock]):
        if req.marker is not None and not req.marker.evaluate(LINUX_311):
            continue
        name = canonicalize_name(req.name)
        assert name in locked, f"requirements/{lock}.txt does not pin {req.name}: run scripts/lock.sh"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"requirements/{lock}.txt pins {req.name}=={locked[name]}, outside {req}: run scripts/lock.sh")


@pytest.mark.parametrize("lock", ["aws", "gcp", "gcf", "mcp"])
def test_artifacts_ship_the_versions_the_tests_run(lock: str) -> None:
    tested = pins("dev")
    different = {n: (v, tested.get(n)) for n, v in pins(lock).items() if tested.get(n) != v}
    assert not different, f"requirements/{lock}.txt differs from requirements/dev.txt: {different}"


def test_each_artifact_carries_only_what_it_runs() -> None:
    web_framework = {"functions-framework", "flask", "gunicorn", "werkzeug"}
    mcp_stack = {"mcp", "mcp-types", "sse-starlette", "pyjwt"}
    assert not (web_framework | mcp_stack) & set(pins("aws")), "the Lambda zip"
    assert not (web_framework | mcp_stack | {"boto3", "mangum"}) & set(pins("gcp")), "the Cloud Run image"
    assert web_framework <= set(pins("gcf")) and not mcp_stack & set(pins("gcf"))
    assert not {"google-cloud-firestore", "boto3", "functions-framework"} & set(pins("mcp"))
    # declared once, imported nowhere: gone (pydantic-settings stays in dev.txt only as a test tool's dependency)
    everything = {canonicalize_name(r.name) for r in declared(sorted(EXTRAS))}
    assert not {"pydantic-settings", "awslambdaric"} & everything
    for lock in ("aws", "gcp", "gcf", "mcp"):
        assert not {"pydantic-settings", "awslambdaric"} & set(pins(lock)), lock


def test_mcp_is_the_2x_api_the_code_imports() -> None:
    [req] = [Requirement(r) for r in EXTRAS["mcp"] if Requirement(r).name == "mcp"]
    assert not req.specifier.contains("1.99") and req.specifier.contains("2.0.0")
    assert int(pins("mcp")["mcp"].split(".")[0]) == 2
    code = (ROOT / "functions" / "mcp" / "server.py").read_text()
    assert "from mcp.server.context import ServerRequestContext" in code and "import mcp_types" in code
