"""The container image's entry point, started the way the image starts it.

No Docker engine is needed: the Dockerfile's final stage is read (ENV, USER, CMD), and its
CMD is run with the image's environment plus what Cloud Run sets (PORT) and what
Terraform sets (MULTIAGENT_TEAM), with this repository's venv standing in for /opt/venv.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"


def final_stage() -> list[tuple[str, str]]:
    """(instruction, argument) pairs of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    start = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines[start:]]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arg in final_stage():
        if instruction == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", arg):
                env[key] = value
    return env


def image_cmd() -> list[str]:
    [cmd] = [json.loads(arg) for instruction, arg in final_stage() if instruction == "CMD"]
    return list(cmd)



def start(tmp_path: Path, **extra: str) -> tuple[subprocess.Popen[str], int]:
    """Run the image's CMD with the image's ENV (PATH pointing at this venv instead of /opt/venv)."""
    port = free_port()
    env = {k: v.replace("/opt/venv/bin", str(VENV_BIN)).replace("$PATH", os.environ.get("PATH", ""))
           for k, v in image_env().items()}
    env.update({"PORT": str(port), "HOME": str(tmp_path), "MULTIAGENT_STORE": f"sqlite:///{tmp_path}/store.db",
                "MULTIAGENT_INTERNAL_SIGNING_KEY": "k1:" + "cd" * 32, **extra})
    proc = subprocess.Popen(image_cmd(), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    return proc, port


def wait_healthy(proc: subprocess.Popen[str], port: int, timeout_s: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("no answer on $PORT")


def test_the_image_is_one_non_root_runtime_for_every_function() -> None:
    # given the Dockerfile
    stage = final_stage()
    text = (ROOT / "Dockerfile").read_text()
    # then the final stage runs as an unprivileged user, listens on $PORT and starts our entry point
    [user] = [arg for instruction, arg in stage if instruction == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert image_env()["PORT"] == "8080" and ("EXPOSE", "8080") in stage
    assert image_cmd() == ["python", "-m", "functions.container"]
    assert not any(instruction == "ENV" and "MULTIAGENT_TEAM" in arg for instruction, arg in stage)
    # and it installs the runtime dependencies with the gcp extra only
    assert '".[gcp]"' in text and "[dev" not in text and "aws]" not in text
    assert (ROOT / ".dockerignore").read_text().startswith("# Only pyproject.toml")


@pytest.mark.parametrize("team", ["finance", None], ids=["team", "gateway"])
def test_the_entry_command_serves_health_on_port(tmp_path: Path, team: str | None) -> None:
    # given the image's command and environment, as Cloud Run starts it for a team or the gateway
    proc, port = start(tmp_path, **({"MULTIAGENT_TEAM": team} if team else {}))
    try:
        # when /health is asked on $PORT
        health = wait_healthy(proc, port)
        teams = httpx.get(f"http://127.0.0.1:{port}/v1/teams", timeout=5).json()["teams"]
        # then it answers 200, serving one team or all of them
        assert health.status_code == 200, health.text
        assert health.json()["checks"]["store"]["status"] == "pass"
        assert [t["name"] for t in teams] == ["finance"] if team else len(teams) == 24
        # and it stops on SIGTERM within Cloud Run's 10 s (uvicorn drains, then re-raises the signal)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM) and time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bad_team_fails_the_start_with_one_line(tmp_path: Path) -> None:
    # given a revision configured with a team that does not exist
    proc, _ = start(tmp_path, MULTIAGENT_TEAM="astrology")
    # when it starts, then it exits non-zero with one line saying what is valid (no traceback)
    assert proc.wait(timeout=30) != 0
    err = proc.stderr.read() if proc.stderr else ""
    assert "astrology" in err and "finance" in err and "Traceback" not in err
