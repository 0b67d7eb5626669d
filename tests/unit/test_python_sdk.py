"""The Python SDK without a server (httpx.MockTransport), and its static types under mypy."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from multiagent_sdk import (
    BudgetExceeded,
    MultiAgentFramework,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    ValidationError,
    types,
)
from multiagent_sdk._base import parse_retry_after, retry_delay, should_retry
from multiagent_sdk._exceptions import InternalServerError, error_for

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
