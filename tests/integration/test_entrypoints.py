"""The three platform entry points, started the way each platform starts them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import server_env
from tests.ports import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def function_url_event(method: str, path: str, body: dict | None = None, headers: dict | None = None) -> dict:
    """A Lambda Function URL request (payload format 2.0), as AWS sends it."""
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "abc.lambda-url.us-east-1.on.aws", "content-type": "application/json",
                    "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9", "x-forwarded-port": "443",
                    **(headers or {})},
        "requestContext": {
            "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                            "sourceIp": "203.0.113.9", "userAgent": "curl/8"},
            "requestId": "8a1d-4c1e", "routeKey": "$default", "stage": "$default", "time": "22/Nov/2026:01:00:00 +0000",
            "timeEpoch": 1795309200000,
        },
        "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False,
    }


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return server_env(f"sqlite:///{tmp_path}/store.db", **extra)


def create_tenant(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "shared.cli", "tenants", "create", "acme", "--json"], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)["api_key"]


@pytest.mark.parametrize("module", ["functions.gateway.main", "functions.team.main"])
def test_lambda_handler_with_function_url_events(tmp_path, module):
    env = env_for(tmp_path, MULTIAGENT_TEAM="finance" if "team" in module else "")
    key = create_tenant(env)
    script = textwrap.dedent(f"""
        import json, sys
        from {module} import handler
        events = json.load(sys.stdin)
        print(json.dumps([handler(e, None) for e in events]))
    """)
    events = [
        function_url_event("GET", "/health"),
        function_url_event("GET", "/v1/teams"),
        function_url_event("POST", "/v1/teams/finance/analyze_investment",
                           {"risk_tolerance": "low", "amount": 5000}, {"authorization": f"Bearer {key}"}),
        function_url_event("POST", "/v1/teams/finance/ask", {"question": "hi"}),
    ]
    out = subprocess.run([sys.executable, "-c", script], input=json.dumps(events), env=env, capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    health, teams, operation, unauthenticated = json.loads(out.stdout)
    assert health["statusCode"] == 200 and json.loads(health["body"])["status"] in ("healthy", "degraded")
    names = [t["name"] for t in json.loads(teams["body"])["teams"]]
    assert names == (["finance"] if "team" in module else sorted(names)) and len(names) in (1, 24)
    assert operation["statusCode"] == 200, operation["body"]
    assert json.loads(operation["body"])["output"]["allocation"]
    assert unauthenticated["statusCode"] == 401
    assert unauthenticated["headers"]["content-type"].startswith("application/problem+json")


def wait_ok(url: str, proc: subprocess.Popen, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@contextmanager
def functions_framework(source: str, target: str, port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``functions-framework --asgi`` on ``source``'s ``target``, as a Cloud Run source deploy
    starts it; stopped on exit."""
    proc = subprocess.Popen([str(Path(sys.executable).parent / "functions-framework"), "--asgi", "--source",
                             str(ROOT / source), "--target", target, "--port", str(port), "--host", "127.0.0.1"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_functions_framework_target_as_cloud_run_starts_it(tmp_path):
    port = free_port()
    env = env_for(tmp_path, MULTIAGENT_TEAM="legal", PORT=str(port))
    key = create_tenant(env)
    with functions_framework("functions/team/main.py", "team", port, env) as proc:
        health = wait_ok(f"http://127.0.0.1:{port}/health", proc)
        assert health.status_code == 200
        resp = httpx.post(f"http://127.0.0.1:{port}/v1/teams/legal/ask", json={"question": "NDA basics?"},
                          headers={"authorization": f"Bearer {key}"}, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["team"] == "legal"
        other = httpx.post(f"http://127.0.0.1:{port}/v1/teams/finance/ask", json={"question": "q"},
                           headers={"authorization": f"Bearer {key}"}, timeout=30)
        assert other.status_code == 404  # a team function serves its own team only


def test_mcp_function_as_functions_framework_target_lists_tools(tmp_path):
    port = free_port()
    env = env_for(tmp_path, MULTIAGENT_API_URL="http://127.0.0.1:9", MULTIAGENT_MCP_TEAMS="legal")
    with functions_framework("functions/mcp/main.py", "mcp", port, env) as proc:
        assert wait_ok(f"http://127.0.0.1:{port}/health", proc).status_code == 200
        resp = httpx.post(f"http://127.0.0.1:{port}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"accept": "application/json, text/event-stream",
                                   "authorization": "Bearer mak_caller_key"}, timeout=30)
        assert resp.status_code == 200, resp.text  # (keyless is 401 over HTTP: tests/security/test_mcp_http.py)
        names = {t["name"] for t in resp.json()["result"]["tools"]}
        assert "legal_ask" in names and "finance_ask" not in names


def test_functions_framework_target_starts_no_thread_before_the_fork(tmp_path):
    """functions-framework builds the target in gunicorn's master and forks the worker: a
    thread alive at the fork (the provider warm-up, mid-import) deadlocked the worker."""
    script = "import threading\nfrom functions.team.main import team\nprint(threading.active_count())"
    out = subprocess.run([sys.executable, "-c", script], env=env_for(tmp_path, MULTIAGENT_TEAM="legal"),
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_team_function_without_team_says_what_to_set(tmp_path):
    out = subprocess.run([sys.executable, "-c", "from functions.team.main import app"], env=env_for(tmp_path),
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0 and "MULTIAGENT_TEAM" in out.stderr
