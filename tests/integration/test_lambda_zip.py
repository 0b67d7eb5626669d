"""The Lambda zip, as Lambda would run it: built by scripts/build.sh, unpacked, its
``handler`` imported from the unpacked folder in a process that can import nothing else,
and invoked with Function URL (payload 2.0) events against DynamoDB and Secrets Manager on
a moto server and the fake Messages API. Also the gateway → team hop over Lambda Invoke.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.messages_api import FakeMessagesServer
from tests.integration import server_dynamodb

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "integration" / "lambda_probe.py"
FAKE_LAMBDA = ROOT / "tests" / "fakes" / "lambda_invoke.py"
INVEST = {"risk_tolerance": "medium", "amount": 250000}
SIGNING_KEY = "k1:" + "ab" * 32


def url_event(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              query: str = "") -> dict[str, Any]:
    """A Lambda Function URL request event (payload format 2.0), as AWS documents it."""
    raw = json.dumps(body) if body is not None else None
    all_headers = {
        "host": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
        "user-agent": "curl/8.5.0",
        "accept": "*/*",
        "x-amzn-trace-id": "Root=1-6740b6a2-3f1c2a7b5e9d4c8a1b2c3d4e",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **({"content-type": "application/json", "content-length": str(len(raw))} if raw is not None else {}),
        **(headers or {}),
    }
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all_headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz012345",
            "domainName": all_headers["host"],
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "curl/8.5.0"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        **({"body": raw} if raw is not None else {}),
        "isBase64Encoded": False,
    }


@pytest.fixture(scope="module")
def lambda_zip() -> tuple[Path, int]:
    """scripts/build.sh lambda (reuses build/lambda/ when its inputs are unchanged)."""
    result = subprocess.run(["bash", "scripts/build.sh", "lambda"], cwd=ROOT, capture_output=True, text=True,
                            timeout=900)
    if result.returncode != 0 and ("NewConnectionError" in result.stderr or "Could not find a version" in
                                   result.stderr):
        pytest.skip("the Lambda zip needs PyPI for its manylinux wheels, which is unreachable here")
    assert result.returncode == 0, result.stderr[-3000:]
    _, path, size, _ = result.stdout.strip().splitlines()[-1].split()
    print(f"\nLambda zip: {int(size) / 1048576:.1f} MB ({path})")
    return Path(path), int(size)


@pytest.fixture(scope="module")
def unpacked(lambda_zip: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lambda-task")
    with zipfile.ZipFile(lambda_zip[0]) as zf:
        zf.extractall(root)
    return root


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FakeMessagesServer]:
    with FakeMessagesServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def aws(fake_model: FakeMessagesServer) -> dict[str, Any]:
    """A table made by the store, secrets in Secrets Manager, a tenant with a key; the
    environment a deployed function would have (minus the Lambda runtime's own variables)."""
    import boto3

    from shared.catalog import load_catalog
    from shared.config import Settings
    from shared.store import open_store
    from shared.tenants import TenantAdmin

    url = server_dynamodb.start_server()
    prefix = f"zip{uuid.uuid4().hex[:10]}"
    store_url = f"dynamodb://{prefix}?region={server_dynamodb.REGION}"
    store = open_store(store_url)
    store.init()
    _, key = TenantAdmin(store, Settings.from_env({"MULTIAGENT_STORE": store_url}), load_catalog()).create("acme")
    store.close()
    model_key = f"sk-ant-test-{uuid.uuid4().hex[:8]}"
    sm = boto3.client("secretsmanager", endpoint_url=url, region_name=server_dynamodb.REGION)
    sm.create_secret(Name=f"{prefix}/anthropic-api-key", SecretString=model_key)
    sm.create_secret(Name=f"{prefix}/internal-signing-key", SecretString=SIGNING_KEY)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": server_dynamodb.REGION,
        "AWS_REGION": server_dynamodb.REGION,
        "MULTIAGENT_STORE": store_url,
        "MULTIAGENT_SECRETS": "aws",
        "MULTIAGENT_SECRETS_PREFIX": f"{prefix}/",
        "MULTIAGENT_MODEL_PROVIDER": "anthropic",
        "ANTHROPIC_BASE_URL": fake_model.url,
        "MULTIAGENT_LOG_LEVEL": "WARNING",
    }
    return {"env": env, "key": key, "model_key": model_key, "prefix": prefix}


def run_probe(root: Path, module: str, events: list[dict[str, Any]], env: dict[str, str],
              tmp_path: Path) -> dict[str, Any]:
    events_file = tmp_path / f"events-{uuid.uuid4().hex[:6]}.json"
    events_file.write_text(json.dumps(events))
    # -S: no site-packages; the probe replaces its own folder on sys.path by the zip's root
    result = subprocess.run([sys.executable, "-S", str(PROBE), str(root), module, str(events_file)],
                            cwd=root, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def text_of(response: dict[str, Any]) -> str:
    """The response body (Mangum base64-encodes types it does not know as text)."""
    body = response.get("body") or ""
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else str(body)


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(text_of(response))


def test_zip_is_within_lambda_limits(lambda_zip: tuple[Path, int], unpacked: Path) -> None:
    # given the built zip
    path, size = lambda_zip
    # then it fits a direct upload and Lambda's unzipped limit, with bytecode and no tests inside
    unzipped = sum(p.stat().st_size for p in unpacked.rglob("*") if p.is_file())
    print(f"\nLambda zip {size / 1048576:.1f} MB, unzipped {unzipped / 1048576:.1f} MB")
    assert size < 50 * 1024 * 1024 and unzipped < 250 * 1024 * 1024
    names = zipfile.ZipFile(path).namelist()
    assert "functions/gateway/main.py" in names and "shared/entrypoints.py" in names
    assert any(n.startswith("functions/gateway/__pycache__/main.cpython-311") for n in names), "bytecode precompiled"
    assert not any("/tests/" in n or n.startswith("tests/") for n in names), "no test suites inside"
    gcp_only = ("google/cloud/firestore", "google/cloud/secretmanager", "google/auth/", "grpc/")
    assert not any(n.startswith(gcp_only) for n in names), "only the aws extra goes in"
    assert any(n.startswith("boto3/") for n in names) and any(n.startswith("botocore/data/dynamodb/") for n in names)


def test_gateway_handler_from_the_zip_serves_function_url_events(unpacked: Path, aws: dict[str, Any],
                                                                  fake_model: FakeMessagesServer,
                                                                  tmp_path: Path) -> None:
    # given the unpacked zip, a tenant's key and the model key in Secrets Manager
    fake_model.state.reset()
    events = [
        url_event("GET", "/health"),
        url_event("GET", "/v1/teams"),
        url_event("POST", "/v1/teams/finance/analyze_investment", INVEST, {"authorization": f"Bearer {aws['key']}"}),
        url_event("POST", "/v1/teams/finance/analyze_investment", INVEST),
    ]
    # when the handler imported from the zip gets real Function URL events
    out = run_probe(unpacked, "functions.gateway.main", events, aws["env"], tmp_path)
    health, teams, call, anonymous = out["responses"]
    # then it ran only code from the zip
    assert out["handler_file"].startswith(str(unpacked)) and out["foreign_modules"] == []
    print(f"\ncold import + app build from the zip: {out['cold_s'] * 1000:.0f} ms; "
          f"first /health {health['ms']} ms, operation {call['ms']} ms")
    # and /health checks the store and the secret store for real
    assert health["statusCode"] == 200, health
    checks = body_of(health)["checks"]
    assert checks["store"]["status"] == "pass" and checks["secrets"]["status"] == "pass"
    # and the catalog is served
    assert teams["statusCode"] == 200 and len(body_of(teams)["teams"]) == 24
    # and the operation ran on DynamoDB with the model key read from Secrets Manager
    assert call["statusCode"] == 200, call
    result = body_of(call)
    assert result["team"] == "finance" and result["usage"]["cost_usd"] > 0
    assert {h.lower() for h in call["headers"]} >= {"x-request-id", "x-budget-remaining-usd"}
    used_keys = {entry["api_key"] for entry in fake_model.state.log()}
    assert used_keys == {aws["model_key"]}
    # and a call without a key is refused as problem+json
    assert anonymous["statusCode"] == 401
    assert anonymous["headers"]["content-type"].startswith("application/problem+json")


def test_gateway_calls_a_team_function_through_lambda_invoke(unpacked: Path, aws: dict[str, Any],
                                                            tmp_path: Path) -> None:
    # given the team handler from the zip behind a loopback Lambda Invoke API
    log = tmp_path / "invocations.jsonl"
    team_env = {**aws["env"], "MULTIAGENT_TEAM": "finance",
                "MULTIAGENT_TEAM_URLS": json.dumps({"legal": "lambda://unused"})}
    fake = subprocess.Popen([sys.executable, "-S", str(FAKE_LAMBDA), "--root", str(unpacked), "--handler",
                             "functions.team.main.handler", "--log", str(log)], cwd=unpacked, env=team_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert fake.stdout is not None
        ready = fake.stdout.readline()
        assert ready.startswith("READY"), fake.stderr.read() if fake.stderr else ready
        port = int(ready.split()[1])
        function = f"{aws['prefix']}-finance"
        gateway_env = {**aws["env"], "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{port}",
                       "MULTIAGENT_TEAM_URLS": json.dumps({"finance": f"lambda://{function}"})}
        # when the gateway from the zip gets an operation for that team
        call = url_event("POST", "/v1/teams/finance/analyze_investment", INVEST,
                         {"authorization": f"Bearer {aws['key']}", "idempotency-key": "hop-1"})
        out = run_probe(unpacked, "functions.gateway.main", [call], gateway_env, tmp_path)
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    # then the team function answered it, invoked by name through Lambda's API
    response = out["responses"][0]
    assert response["statusCode"] == 200, text_of(response)
    assert body_of(response)["team"] == "finance"
    invocations = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(i["function"], i["path"], i["status"]) for i in invocations] == [
        (function, "/v1/teams/finance/analyze_investment", 200)]
    # and the tenant's own credentials travelled with the call: the team re-checks the tenant
    assert invocations[0]["headers"]["authorization"] == f"Bearer {aws['key']}"
