"""The TypeScript SDK's own tests (``npm test`` in sdk/typescript: build, typecheck of the
example, ``node --test``) against a live ``multiagent serve`` on the fake Messages API."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.e2e.live_server import REPO_ROOT, LiveServer, live_server_fixture
from tests.fakes.messages_api import delay, error

pytestmark = pytest.mark.e2e

SDK = REPO_ROOT / "sdk" / "typescript"
UNLIMITED = ("--rpm", "100000", "--tpm", "1000000000")
server = live_server_fixture(fake_model=True, tenant_args=UNLIMITED, env={"MULTIAGENT_DEADLINE_S": "3"})


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("node and npm are needed for the TypeScript SDK (Node 20+)")
    return npm


def test_npm_test_against_a_live_server(server: LiveServer) -> None:
    npm = _npm()
    if not (SDK / "node_modules" / "typescript").exists():  # scripts/test.d/typescript.sh normally did this
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SDK, check=True, capture_output=True, timeout=300)
    overloaded = error(529, headers={"retry-after": "1", "retry-after-ms": "1"})
    env = {
        **os.environ,
        "MULTIAGENT_API_URL": server.url,
        "MULTIAGENT_API_KEY": server.api_key,
        "MA_TEST_FAKE_URL": server.fake.url,
        "MA_TEST_POOR_KEY": server.create_tenant("ts-poor", "--daily-usd", "0.0001").api_key,
        "MA_TEST_SLOW_KEY": server.create_tenant("ts-slow", "--rpm", "1").api_key,
        "MA_TEST_MARKETING_ONLY_KEY": server.create_tenant("ts-marketing", "--teams", "marketing").api_key,
        "MA_TEST_IDEM_KEY": server.create_tenant("ts-idem", *UNLIMITED).api_key,
        "MA_TEST_BEHAVIOURS": json.dumps({"overloaded": overloaded.to_dict(),
                                          "bad_request": error(400, message="bad request from the fake").to_dict(),
                                          "slow": delay(8).to_dict()}),
    }
    proc = subprocess.run([npm, "test"], cwd=SDK, env=env, capture_output=True, text=True, timeout=240)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped) (\d+)$", output, re.M)}
    assert counts.get("fail") == 0 and counts.get("skipped") == 0, output[-3000:]
    assert counts.get("pass", 0) >= 20, output[-3000:]
