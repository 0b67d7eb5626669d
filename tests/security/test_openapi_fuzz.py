"""Fuzz every operation of the OpenAPI document with schemathesis: no request is a server error.

Against a real ``multiagent serve`` (offline model, $0) with a tenant whose limits are never
reached, so generated calls go past the rate limiter into validation and the operations.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.live_server import LiveServer, live_server_fixture

pytestmark = pytest.mark.e2e
server = live_server_fixture(tenant_args=("--rpm", "1000000", "--tpm", "1000000000"))


def test_schemathesis_finds_no_server_error(server: LiveServer, tmp_path: Path) -> None:
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency (pyproject.toml [dev])"
    # when every operation is fuzzed (examples, boundary cases, random and stateful phases)
    proc = subprocess.run(
        [st, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "3",
         "--generation-deterministic", "--header", f"Authorization: Bearer {server.api_key}",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    summary = proc.stdout[-3000:]
    # then nothing answered 5xx and every operation was tested
    assert proc.returncode == 0, summary
    assert " passed" in summary and "failed" not in summary.split("Test cases:")[-1], summary
    assert server.proc.poll() is None, server.log_tail()
