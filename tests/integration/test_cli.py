"""The `multiagent` command line as a user runs it: real processes, one SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.servers import ServeProcess, server_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def multiagent(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, input=stdin, timeout=120)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return server_env(f"sqlite:///{tmp_path}/cli.db")


def assert_one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip() and "offline model" not in line]
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_tenant_lifecycle(env):
    created = json.loads(multiagent(env, "tenants", "create", "acme", "--daily-usd", "3", "--rpm", "7",
                                    "--teams", "legal,finance", "--json").stdout)
    assert created["api_key"].startswith("mak_") and created["daily_usd"] == 3 and created["teams"] == ["legal",
                                                                                                         "finance"]
    tenant_id = created["tenant_id"]
    listed = json.loads(multiagent(env, "tenants", "list", "--json").stdout)["tenants"]
    assert [t["tenant_id"] for t in listed] == [tenant_id] and "api_key" not in listed[0]
    updated = json.loads(multiagent(env, "tenants", "update", tenant_id, "--monthly-usd", "50", "--json").stdout)
    assert updated["monthly_usd"] == 50 and updated["daily_usd"] == 3
    assert json.loads(multiagent(env, "tenants", "show", tenant_id, "--json").stdout)["rpm"] == 7
    assert json.loads(multiagent(env, "tenants", "disable", tenant_id, "--json").stdout)["disabled"] is True
    text = multiagent(env, "tenants", "list").stdout
    assert tenant_id in text and "DISABLED" in text


def test_invoke_in_process_and_over_http_then_usage(env, tmp_path):
    key = json.loads(multiagent(env, "tenants", "create", "acme", "--json").stdout)["api_key"]
    (tmp_path / "input.json").write_text(json.dumps({"risk_tolerance": "low", "amount": 2500}))
    local = multiagent(env, "invoke", "finance", "analyze_investment", "--input", f"@{tmp_path}/input.json",
                       "--api-key", key, "--json")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["output"]["allocation"]
    assert "offline" in local.stderr and "ANTHROPIC_API_KEY" in local.stderr  # the banner says how to switch
    server = ServeProcess(env).wait_ready()
    try:
        remote = multiagent(env, "invoke", "legal", "ask", "--input", '{"question": "What is an NDA?"}',
                            "--api-url", server.url, "--api-key", key)
    finally:
        server.stop()
    assert remote.returncode == 0, remote.stderr
    assert "offline" in remote.stdout
    usage = json.loads(multiagent(env, "usage", "--json").stdout)["usage"][0]
    assert {row["team"] for row in usage["by_team"]} == {"finance", "legal"}


def test_teams_and_store_init(env):
    teams = json.loads(multiagent(env, "teams", "--json").stdout)["teams"]
    assert len(teams) == 24
    assert multiagent(env, "store", "init").returncode == 0
    assert multiagent(env, "store", "init").returncode == 0  # idempotent


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["invoke", "finance", "ask", "--input", "{not json", "--api-key", "mak_x"], ["not valid JSON"]),
        (["invoke", "finance", "ask", "--input", "@/nonexistent/file.json", "--api-key", "mak_x"], ["cannot read"]),
        (["invoke", "finance", "ask", "--input", '{"question": "q"}'], ["--api-key"]),
        (["invoke", "finance", "ask", "--input", '{"question": "q"}', "--api-key", "mak_wrong"], ["401"]),
        (["invoke", "nope", "ask", "--input", "{}", "--api-key", "mak_x"], ["404"]),
        (["tenants", "show", "ten_missing"], ["no tenant"]),
        (["tenants", "create", "x", "--teams", "legal,astrology"], ["astrology"]),
        (["invoke", "legal", "ask", "--input", '{"question": "q"}', "--api-url", "http://127.0.0.1:9",
          "--api-key", "mak_x"], ["cannot reach"]),
    ],
)
def test_bad_input_is_one_line_on_stderr(env, args, words):
    assert_one_line_error(multiagent(env, *args), *words)


def test_bad_environment_is_one_line(env):
    assert_one_line_error(multiagent({**env, "MULTIAGENT_STORE": "postgres://x"}, "tenants", "list"),
                          "MULTIAGENT_STORE")
    assert_one_line_error(multiagent({**env, "MULTIAGENT_MODEL_PROVIDER": "openai"}, "teams"),
                          "MULTIAGENT_MODEL_PROVIDER")


def test_serve_refuses_a_model_without_price(env, tmp_path):
    bad = {**env, "MULTIAGENT_MODEL_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "k", "MULTIAGENT_MODEL": "gpt-9"}
    out = subprocess.run([sys.executable, "-m", "shared.cli", "serve", "--port", "0"], env=bad, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert_one_line_error(out, "gpt-9", "price")

