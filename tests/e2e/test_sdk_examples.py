"""Both SDK examples, run as a user would, against a live ``multiagent serve`` on the fake Messages API.

The examples get nothing but ``MULTIAGENT_API_URL`` and ``MULTIAGENT_API_KEY`` (plus ``PATH`` and
``HOME`` for the interpreters). The TypeScript SDK is copied WITHOUT ``node_modules``, ``dist`` and
``build`` to a temporary directory and installed there with ``npm install``, as from a fresh clone:
its ``prepare`` script must build it, and ``npm run example`` must then run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.live_server import REPO_ROOT, LiveServer, live_server_fixture

pytestmark = pytest.mark.e2e

UNLIMITED = ("--rpm", "100000", "--tpm", "1000000000", "--daily-usd", "1000", "--monthly-usd", "10000")
server = live_server_fixture(fake_model=True, tenant_args=UNLIMITED)

PY_EXAMPLE = REPO_ROOT / "sdk" / "python" / "examples" / "quickstart.py"
TS_SDK = REPO_ROOT / "sdk" / "typescript"


def only(**variables: str) -> dict[str, str]:
    """An environment with the given variables and nothing else but PATH and HOME."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **variables}


def client_env(server: LiveServer) -> dict[str, str]:
    return only(MULTIAGENT_API_URL=server.url, MULTIAGENT_API_KEY=server.api_key)


def check_output(proc: subprocess.CompletedProcess[str]) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def test_python_example_runs_with_only_the_two_variables(server: LiveServer, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(PY_EXAMPLE)], cwd=tmp_path, env=client_env(server),
                          capture_output=True, text=True, timeout=180)
    output = check_output(proc)
    # the sync tour, its stream (every event up to done) and the async tour with its stream
    for line in ("event step.started", "event model.delta", "event step.completed", "event done",
                 "async event done", "streamed cost", "cost ", "answer "):
        assert line in output, output[-3000:]

    # without the variables: a clear error naming the one to set
    bare = subprocess.run([sys.executable, str(PY_EXAMPLE)], cwd=tmp_path, env=only(), capture_output=True,
                          text=True, timeout=60)
    assert bare.returncode != 0
    assert "no API URL" in bare.stderr and "MULTIAGENT_API_URL" in bare.stderr, bare.stderr[-2000:]
    no_key = subprocess.run([sys.executable, str(PY_EXAMPLE)], cwd=tmp_path, env=only(MULTIAGENT_API_URL=server.url),
                            capture_output=True, text=True, timeout=60)
    assert no_key.returncode != 0 and "MULTIAGENT_API_KEY" in no_key.stderr, no_key.stderr[-2000:]


def test_typescript_example_from_a_fresh_copy(server: LiveServer, tmp_path: Path) -> None:
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("node and npm are needed for the TypeScript SDK (Node 20+)")
    clone = tmp_path / "typescript"
    shutil.copytree(TS_SDK, clone, ignore=shutil.ignore_patterns("node_modules", "dist", "build"))
    assert not (clone / "dist").exists()
    # npm install as anyone would run it (the user's npm settings kept, no MULTIAGENT_* variable)
    install_env = {k: v for k, v in os.environ.items() if not k.startswith("MULTIAGENT_")}
    proc = subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=clone, env=install_env,
                          capture_output=True, text=True, timeout=300)
    check_output(proc)
    assert (clone / "dist" / "index.js").exists(), "npm install did not build dist/ (the prepare script)"

    proc = subprocess.run([npm, "run", "example"], cwd=clone, env=client_env(server), capture_output=True,
                          text=True, timeout=180)
    output = check_output(proc)
    for line in ("event step.started", "event model.delta", "event step.completed", "event done",
                 "streamed cost", "rejected:", "body.risk_tolerance", "cost "):
        assert line in output, output[-3000:]

    # without the variables: a clear error naming the one to set
    bare = subprocess.run([node, "build/examples/quickstart.js"], cwd=clone, env=only(), capture_output=True,
                          text=True, timeout=60)
    assert bare.returncode != 0 and "no API URL" in bare.stderr and "MULTIAGENT_API_URL" in bare.stderr, \
        bare.stderr[-2000:]
    no_key = subprocess.run([node, "build/examples/quickstart.js"], cwd=clone,
                            env=only(MULTIAGENT_API_URL=server.url), capture_output=True, text=True, timeout=60)
    assert no_key.returncode != 0 and "MULTIAGENT_API_KEY" in no_key.stderr, no_key.stderr[-2000:]
