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
        # usage errors: one line naming the command, not argparse's usage block
        ([], ["required", "command"]),
        (["tenants", "bogus"], ["tenants", "invalid choice", "enable"]),
        (["invoke", "finance"], ["invoke", "required", "--input"]),
        (["audit", "--limit", "x"], ["audit", "--limit"]),
        (["audit", "--since", "yesterday"], ["--since", "yesterday", "7d"]),
        (["audit", "--since", "3 fortnights"], ["--since"]),
        (["audit", "--limit", "0"], ["--limit"]),
        (["run"], ["run", "required", "task"]),
        (["run", "t", "--max-usd", "nan", "--api-key", "mak_x"], ["max_usd"]),
        (["tenants", "enable", "nobody"], ["no tenant", "nobody"]),
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



def test_tenants_by_name_or_id_names_unique_enable_and_money_digits(env):
    created = json.loads(multiagent(env, "tenants", "create", "acme", "--daily-usd", "0.004", "--json").stdout)
    tenant_id = created["tenant_id"]
    # a name is unique (case-insensitively): one line, non-zero
    assert_one_line_error(multiagent(env, "tenants", "create", "ACME"), "409", "acme", "already exists")
    # every tenant command takes the name or the id
    assert json.loads(multiagent(env, "tenants", "show", "acme", "--json").stdout)["tenant_id"] == tenant_id
    assert json.loads(multiagent(env, "tenants", "show", tenant_id, "--json").stdout)["name"] == "acme"
    renamed = json.loads(multiagent(env, "tenants", "update", "acme", "--name", "acme-eu", "--json").stdout)
    assert renamed["tenant_id"] == tenant_id and renamed["name"] == "acme-eu"
    assert json.loads(multiagent(env, "tenants", "disable", "acme-eu", "--json").stdout)["disabled"] is True
    # and a disabled tenant can be enabled again
    assert json.loads(multiagent(env, "tenants", "enable", "ACME-EU", "--json").stdout)["disabled"] is False
    assert json.loads(multiagent(env, "tenants", "key", "acme-eu", "--json").stdout)["api_key"].startswith("mak_")
    other = json.loads(multiagent(env, "tenants", "create", "beta", "--json").stdout)["tenant_id"]
    assert_one_line_error(multiagent(env, "tenants", "update", other, "--name", "Acme-EU"), "409", "acme-eu")
    # money under a cent is printed with the digits that make it non-zero
    shown = multiagent(env, "tenants", "show", "acme-eu").stdout
    assert "daily $0.004 " in shown and "monthly $" in shown and "$0.00 " not in shown
    listed = multiagent(env, "tenants", "list").stdout
    assert "acme-eu" in listed and "active" in listed and "beta" in listed


def test_admin_api_refuses_a_taken_name_with_409(env):
    server = ServeProcess({**env, "MULTIAGENT_ADMIN_KEY": "admin-secret"}).wait_ready()
    try:
        import httpx

        admin = {"authorization": "Bearer admin-secret"}
        first = httpx.post(server.url + "/v1/admin/tenants", json={"name": "acme"}, headers=admin, timeout=30)
        assert first.status_code == 201, first.text
        again = httpx.post(server.url + "/v1/admin/tenants", json={"name": " Acme "}, headers=admin, timeout=30)
        other = httpx.post(server.url + "/v1/admin/tenants", json={"name": "beta"}, headers=admin, timeout=30)
        rename = httpx.patch(server.url + f"/v1/admin/tenants/{other.json()['tenant_id']}", json={"name": "ACME"},
                             headers=admin, timeout=30)
        same = httpx.patch(server.url + f"/v1/admin/tenants/{first.json()['tenant_id']}", json={"name": "acme"},
                           headers=admin, timeout=30)
    finally:
        server.stop()
    for refused in (again, rename):
        assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/conflict" and "acme" in refused.json()["detail"]
    assert same.status_code == 200  # keeping its own name is no conflict


def test_audit_since_iso_or_relative(env):
    multiagent(env, "tenants", "create", "acme")
    recent = multiagent(env, "audit", "--since", "1h")
    assert recent.returncode == 0 and "admin.tenant_created" in recent.stdout, recent.stderr
    assert "admin.tenant_created" in multiagent(env, "audit", "--since", "2020-01-01T00:00:00+02:00",
                                                "--tenant", "acme").stdout
    assert "admin.tenant_created" in multiagent(env, "audit", "--since", "7d", "--json").stdout
    future = multiagent(env, "audit", "--since", "2999-01-01")
    assert future.returncode == 0 and future.stdout.strip() == "no events"


def test_invoke_says_where_it_runs(env):
    key = json.loads(multiagent(env, "tenants", "create", "acme", "--json").stdout)["api_key"]
    question = ["invoke", "legal", "ask", "--input", '{"question": "What is an NDA?"}']
    # no URL: the gateway runs inside the command, and stderr says so
    local = multiagent(env, *question, "--api-key", key)
    assert local.returncode == 0 and "in-process" in local.stderr and "--api-url" in local.stderr, local.stderr
    # MULTIAGENT_API_URL / MULTIAGENT_API_KEY: the server is called (a dead one cannot be reached)
    dead = multiagent({**env, "MULTIAGENT_API_URL": "http://127.0.0.1:9", "MULTIAGENT_API_KEY": key}, *question)
    assert_one_line_error(dead, "cannot reach", "127.0.0.1:9")
    server = ServeProcess(env).wait_ready()
    try:
        remote = multiagent({**env, "MULTIAGENT_API_URL": server.url, "MULTIAGENT_API_KEY": key}, *question)
    finally:
        server.stop()
    assert remote.returncode == 0, remote.stderr
    assert f"at {server.url} (MULTIAGENT_API_URL)" in remote.stderr and "in-process" not in remote.stderr
