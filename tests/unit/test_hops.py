"""shared/hops: which platform pieces a gateway installs, and the Lambda transport's edges
(events, responses, a failing team function) against the loopback Invoke fake."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from shared.errors import Unavailable
from shared.hops import platform_hops
from shared.hops.aws import LambdaInvoker, function_url_event, parse_function_response
from shared.hops.gcp import GoogleIdTokens, audience_for, token_expiry
from tests.fakes.gcp import id_token

ROOT = Path(__file__).resolve().parents[2]


def test_platform_hops_picks_the_pieces_the_settings_ask_for() -> None:
    # given a Cloud Run gateway, a Lambda gateway and a local one
    cloud_run = Settings.from_env({"MULTIAGENT_TEAM_AUTH": "google-id-token",
                                   "MULTIAGENT_TEAM_URLS": json.dumps({"finance": "https://finance-1.a.run.app"})})
    lambda_ = Settings.from_env({"MULTIAGENT_TEAM_URLS": json.dumps({"finance": "lambda://multiagent-dev-finance"})})
    local = Settings.from_env({})
    # when the hop pieces are picked for each
    identity, transport = platform_hops(cloud_run)
    # then each gets exactly what its platform needs
    assert isinstance(identity, GoogleIdTokens) and transport is None
    identity, transport = platform_hops(lambda_)
    assert identity is None and isinstance(transport, LambdaInvoker)
    assert platform_hops(local) == (None, None)


def test_function_url_events_and_responses_round_trip() -> None:
    # given a request as the gateway forwards it
    event = function_url_event("POST", "/v1/teams/finance/ask", {"Authorization": "Bearer k", "X-Request-Id": "r1"},
                               b'{"question": "q"}', query="a=1")
    # then it is a payload 2.0 event with lower-case headers and the body base64-encoded
    assert event["version"] == "2.0" and event["rawPath"] == "/v1/teams/finance/ask"
    assert event["rawQueryString"] == "a=1"
    assert event["headers"]["authorization"] == "Bearer k" and event["requestContext"]["http"]["method"] == "POST"
    assert base64.b64decode(event["body"]) == b'{"question": "q"}' and event["isBase64Encoded"] is True
    # and a handler's answers, plain or base64, come back as status, headers and bytes
    plain = {"statusCode": 201, "headers": {"content-type": "application/json"}, "body": '{"ok": true}',
             "isBase64Encoded": False, "cookies": ["a=b"]}
    encoded = {"statusCode": 503, "headers": {}, "body": base64.b64encode(b"\x00\x01").decode(),
               "isBase64Encoded": True}
    assert parse_function_response(plain) == (201, {"content-type": "application/json", "set-cookie": "a=b"},
                                              b'{"ok": true}')
    assert parse_function_response(encoded) == (503, {}, b"\x00\x01")


def test_google_id_token_helpers() -> None:
    assert audience_for("https://svc-123.us-central1.run.app/v1/teams/x?y=1") == "https://svc-123.us-central1.run.app"
    token = id_token("https://svc", lifetime_s=100)
    assert token_expiry(token) == json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["exp"]
    assert token_expiry("not-a-jwt") is None


@pytest.fixture
def failing_function(tmp_path: Path) -> Iterator[str]:
    """The Invoke fake serving a handler that raises, as an unhandled Lambda error."""
    (tmp_path / "boom.py").write_text("def handler(event, context):\n    raise RuntimeError('team crashed')\n")
    proc = subprocess.Popen([sys.executable, "-S", str(ROOT / "tests" / "fakes" / "lambda_invoke.py"), "--root",
                             str(tmp_path), "--handler", "boom.handler", "--log", str(tmp_path / "log.jsonl")],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    yield f"http://127.0.0.1:{line.split()[1]}"
    proc.terminate()
    proc.wait(timeout=10)


def test_a_failing_team_function_is_unavailable_not_a_crash(failing_function: str) -> None:
    import boto3

    client = boto3.client("lambda", endpoint_url=failing_function, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    invoker = LambdaInvoker(client=client)
    # when the gateway calls a team function that raises
    with pytest.raises(Unavailable, match="team crashed") as raised:
        asyncio.run(invoker("POST", "lambda://multiagent-dev-finance/v1/teams/finance/ask", {}, b"{}"))
    # then the caller gets a retryable 503, and a malformed team URL is refused the same way
    assert raised.value.status == 503
    with pytest.raises(Unavailable, match="not a lambda://FUNCTION URL"):
        asyncio.run(invoker("POST", "https://example.com/x", {}, b""))
