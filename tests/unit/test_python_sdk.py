"""The Python SDK without a server (httpx.MockTransport), and its static types under mypy."""

from __future__ import annotations

import asyncio
import email.utils
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import multiagent_sdk
import pytest
from multiagent_sdk import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncMultiAgentFramework,
    BudgetExceeded,
    BudgetExceededError,
    ModelError,
    MultiAgentError,
    MultiAgentFramework,
    RateLimited,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailable,
    StreamEvent,
    ValidationError,
    types,
)
from multiagent_sdk._base import parse_retry_after, retry_delay, should_retry
from multiagent_sdk._exceptions import InternalServerError, error_for
from multiagent_sdk._streaming import SSEDecoder

REPO = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(max_retries=2, initial_retry_delay=0.001, max_retry_delay=0.002)
OK_BODY = {"id": "req_1", "team": "finance", "operation": "analyze_investment", "model": "offline", "duration_ms": 2,
           "usage": {"input_tokens": 1, "output_tokens": 2, "cost_usd": 0.0},
           "output": {"summary": "s", "allocation": [{"asset_class": "cash", "percent": 100, "amount": 1,
                                                      "rationale": "r"}],
                      "expected_annual_return_low_percent": 1, "expected_annual_return_high_percent": 2,
                      "risks": [], "disclaimer": "d"}}


def problem(status: int, slug: str, **extra: Any) -> dict[str, Any]:
    return {"type": f"/problems/{slug}", "title": slug, "status": status, "detail": slug, **extra}


def scripted(*answers: httpx.Response | Exception) -> tuple[MultiAgentFramework, list[httpx.Request]]:
    queue, seen = list(answers), []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return MultiAgentFramework(api_url="http://t", api_key="k", retry_policy=FAST, http_client=client), seen


def test_kwargs_and_dict_merge_into_one_body_and_the_output_is_typed() -> None:
    framework, seen = scripted(httpx.Response(200, json=OK_BODY, headers={"x-request-id": "req_1"}))
    out = framework.teams.finance.analyze_investment({"risk_tolerance": "low"}, amount=5, idempotency_key="k-1")
    body = seen[0].read()
    assert b'"risk_tolerance":"low"' in body.replace(b" ", b"") and b'"amount":5' in body.replace(b" ", b"")
    assert seen[0].headers["idempotency-key"] == "k-1" and seen[0].headers["authorization"] == "Bearer k"
    assert isinstance(out, types.FinanceAnalyzeInvestmentOutput) and out.allocation[0].asset_class == "cash"
    assert out.raw.request_id == "req_1" and out.raw.usage.output_tokens == 2


def test_503_is_retried_with_one_idempotency_key() -> None:
    framework, seen = scripted(
        httpx.Response(503, json=problem(503, "unavailable"), headers={"retry-after": "0", "x-should-retry": "true"}),
        httpx.ConnectError("reset"),
        httpx.Response(200, json=OK_BODY))
    out = framework.teams.finance.analyze_investment(risk_tolerance="low", amount=1)
    assert out.raw.retries == 2 and len({r.headers["idempotency-key"] for r in seen}) == 1


def test_402_is_never_retried_even_if_retries_are_allowed() -> None:
    framework, seen = scripted(httpx.Response(402, json=problem(402, "budget-exceeded",
                                                                reset_at="2030-01-01T00:00:00Z")))
    with pytest.raises(BudgetExceeded) as info:
        framework.teams.finance.ask(question="q")
    assert len(seen) == 1 and info.value.reset_at is not None and info.value.reset_at.year == 2030


def test_retries_stop_at_max_retries() -> None:
    limited = httpx.Response(429, json=problem(429, "rate-limited", retry_after_s=3), headers={"retry-after": "3"})
    framework, seen = scripted(limited, limited, limited)
    policy = RetryPolicy(max_retries=2, initial_retry_delay=0.001, max_retry_delay=0.002, max_retry_after=0.01)
    framework.retry_policy = policy
    with pytest.raises(RateLimited) as info:
        framework.teams.finance.ask(question="q")
    assert len(seen) == 3 and info.value.retry_after == 3


def test_retry_rules_and_delays() -> None:
    def resp(status: int, **headers: str) -> httpx.Response:
        return httpx.Response(status, headers=headers)

    assert should_retry(resp(503)) and should_retry(resp(429)) and should_retry(resp(409))
    assert not should_retry(resp(402)) and not should_retry(resp(502)) and not should_retry(resp(504))
    assert should_retry(resp(500, **{"x-should-retry": "true"}))
    assert not should_retry(resp(429, **{"x-should-retry": "false"}))
    assert retry_delay(RetryPolicy(), 0, resp(429, **{"retry-after": "2"})) == 2
    assert retry_delay(RetryPolicy(), 0, resp(429, **{"retry-after-ms": "250"})) == 0.25
    backoff = retry_delay(RetryPolicy(initial_retry_delay=1, max_retry_delay=3), 5, resp(429, **{"retry-after": "999"}))
    assert 2.25 <= backoff <= 3
    future = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3 <= (parse_retry_after(httpx.Headers({"retry-after": future})) or 0) <= 5


def test_errors_map_by_problem_type_then_status() -> None:
    def err(status: int, body: Any) -> Any:
        return error_for(httpx.Response(status, json=body) if body is not None else httpx.Response(status))

    assert isinstance(err(422, problem(422, "validation-error", errors=[{"loc": ["body"], "msg": "m"}])),
                      ValidationError)
    assert isinstance(err(503, None), ServiceUnavailable)
    assert isinstance(err(500, problem(500, "internal")), InternalServerError)


def test_mypy_accepts_the_example_and_rejects_wrong_fields(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from multiagent_sdk import MultiAgentFramework\n"
        "f = MultiAgentFramework()\n"
        "f.teams.finance.analyze_investment(risk_tolerance='extreme', amount=1)\n"
        "f.teams.finance.analyze_investmnt(risk_tolerance='low', amount=1)\n"
        "x: int = f.teams.marketing.analyze_campaign(target='t', budget=1).summary\n")
    cmd = [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", str(REPO / ".mypy_cache")]
    good = subprocess.run([*cmd, str(REPO / "sdk/python/examples/quickstart.py")], capture_output=True, text=True,
                          cwd=REPO, timeout=240)
    assert good.returncode == 0, good.stdout + good.stderr
    wrong = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, cwd=REPO, timeout=240)
    assert wrong.returncode == 1
    assert "bad.py:3" in wrong.stdout and "bad.py:4" in wrong.stdout and "bad.py:5" in wrong.stdout, wrong.stdout


# --- the exception hierarchy (the anthropic SDK's shape) ----------------------------------------------------------


def test_connection_and_timeout_errors_are_api_errors_and_every_name_ends_in_error() -> None:
    assert issubclass(APITimeoutError, APIConnectionError) and issubclass(APIConnectionError, APIError)
    assert issubclass(APIStatusError, APIError) and issubclass(APIError, MultiAgentError)
    assert issubclass(ModelError, InternalServerError) and issubclass(InternalServerError, APIStatusError)
    classes = {name: obj for name, obj in vars(multiagent_sdk).items()
               if isinstance(obj, type) and issubclass(obj, Exception)}
    assert len(classes) >= 20
    assert all(obj.__name__.endswith("Error") for obj in classes.values()), classes
    # the 0.1 names are the same classes
    assert BudgetExceeded is BudgetExceededError and RateLimited is RateLimitError
    assert ServiceUnavailable is multiagent_sdk.ServiceUnavailableError
    assert multiagent_sdk.GatewayTimeout is multiagent_sdk.GatewayTimeoutError
    assert multiagent_sdk.InvalidJSON is multiagent_sdk.InvalidJSONError
    assert multiagent_sdk.PayloadTooLarge is multiagent_sdk.PayloadTooLargeError


def test_except_api_error_catches_a_network_failure() -> None:
    framework, seen = scripted(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.ConnectError("again"))
    with pytest.raises(APIError) as info:
        framework.usage()
    assert isinstance(info.value, APIConnectionError) and len(seen) == 3
    assert info.value.request is not None and "cannot reach http://t/v1/usage" in str(info.value)


def test_validation_error_message_names_the_fields() -> None:
    errors = [{"loc": ["body", "risk_tolerance"], "msg": "Input should be 'low', 'medium' or 'high'"},
              {"loc": ["body", "amount"], "msg": "Input should be greater than 0"}]
    framework, _ = scripted(httpx.Response(422, json=problem(422, "validation-error", errors=errors),
                                           headers={"x-request-id": "req_v"}))
    with pytest.raises(ValidationError) as info:
        framework.teams.finance.analyze_investment(risk_tolerance="low", amount=-1)
    message = str(info.value)
    assert "body.risk_tolerance: Input should be" in message and "body.amount: Input should be greater" in message
    assert info.value.errors == errors and info.value.status_code == 422 and "req_v" in message


def test_url_and_key_come_from_the_environment_else_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTIAGENT_API_URL", "http://from-env:1/")
    monkeypatch.setenv("MULTIAGENT_API_KEY", "mak_env")
    framework = MultiAgentFramework()
    assert framework.api_url == "http://from-env:1" and framework.api_key == "mak_env"
    assert MultiAgentFramework(api_url="http://arg", api_key="k").api_url == "http://arg"
    monkeypatch.delenv("MULTIAGENT_API_KEY")
    with pytest.raises(MultiAgentError, match="no API key: pass api_key=.* or set MULTIAGENT_API_KEY"):
        MultiAgentFramework()
    monkeypatch.delenv("MULTIAGENT_API_URL")
    with pytest.raises(MultiAgentError, match="no API URL: pass api_url=.* or set MULTIAGENT_API_URL"):
        AsyncMultiAgentFramework(api_key="k")
    with pytest.raises(MultiAgentError, match="api_url must be an http:// or https:// URL"):
        MultiAgentFramework(api_url="localhost:8080", api_key="k")


# --- streams --------------------------------------------------------------------------------------------------------


def sse(*events: tuple[str, Any]) -> bytes:
    return "".join(f"id: {i}\nevent: {name}\ndata: {json.dumps(data)}\n\n"
                   for i, (name, data) in enumerate(events, 1)).encode()


def sse_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream", "x-request-id": "req_s"})


def test_sse_decoder_joins_data_lines_and_skips_comments() -> None:
    decoder = SSEDecoder()
    lines = [": keep-alive", "", "id: 7", "event: model.delta", 'data: {"a":', "data: 1}", "", "data: plain", ""]
    events = [e for e in (decoder.feed(line) for line in lines) if e is not None]
    assert events == [StreamEvent("model.delta", {"a": 1}, "7"), StreamEvent("message", "plain", "7")]


def test_stream_yields_events_until_done_after_a_retried_503() -> None:
    framework, seen = scripted(
        httpx.Response(503, json=problem(503, "unavailable"), headers={"retry-after": "0", "x-should-retry": "true"}),
        sse_response(sse(("step.started", {"team": "finance"}), ("usage", {"cost_usd": 0.1}), ("done", OK_BODY))))
    with framework.stream("finance", "analyze_investment", {"risk_tolerance": "low"}, amount=5,
                          idempotency_key="s-1") as events:
        names = [event.event for event in events]
    assert names == ["step.started", "usage", "done"] and events.done == OK_BODY and events.retries == 1
    assert events.request_id == "req_s" and events.final() == OK_BODY
    assert [r.headers["accept"] for r in seen] == ["text/event-stream"] * 2
    assert {r.headers["idempotency-key"] for r in seen} == {"s-1"}
    assert json.loads(seen[1].read()) == {"risk_tolerance": "low", "amount": 5}


def test_an_error_event_raises_its_typed_error_and_an_early_end_is_a_connection_error() -> None:
    budget = problem(402, "budget-exceeded", reset_at="2030-01-01T00:00:00Z", request_id="req_b")
    framework, _ = scripted(sse_response(sse(("step.started", {}), ("error", budget))),
                            sse_response(sse(("step.started", {}))),
                            httpx.Response(401, json=problem(401, "unauthenticated")))
    seen: list[str] = []
    with pytest.raises(BudgetExceededError) as info:
        for event in framework.teams.finance.stream("ask", question="q"):
            seen.append(event.event)
    assert seen == ["step.started"] and info.value.status_code == 402 and info.value.response is None
    assert info.value.reset_at is not None and info.value.reset_at.year == 2030 and info.value.request_id == "req_b"
    with pytest.raises(APIConnectionError, match="ended before its `done` event"):
        framework.stream_run("a task").final()
    with pytest.raises(multiagent_sdk.AuthenticationError):
        framework.stream("finance", "ask", question="q")


def test_async_stream_is_sent_when_iteration_starts() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return sse_response(sse(("step.started", {}), ("done", {"id": "run_1", "status": "succeeded"})))

    async def main() -> tuple[list[str], Any]:
        async with AsyncMultiAgentFramework(api_url="http://t", api_key="k", retry_policy=FAST,
                                            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler))
                                            ) as framework:
            stream = framework.stream_run("a task", teams=["finance"])
            assert not seen
            names = [event.event async for event in stream]
            return names, await framework.teams.finance.stream("ask", question="q").final()

    names, done = asyncio.run(main())
    assert names == ["step.started", "done"] and done == {"id": "run_1", "status": "succeeded"}
    assert [r.url.path for r in seen] == ["/v1/runs", "/v1/teams/finance/ask"]
    assert json.loads(seen[0].read()) == {"task": "a task", "teams": ["finance"]}
