"""The Python SDK against a live ``multiagent serve`` on the fake Messages API (real costs).

Every team is reachable with typed outputs; each error class comes from the real server's
answer; retries are observed on 429 and 503 and absent on 402; a retried idempotent call
is charged once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import multiagent_sdk
import pytest
from multiagent_sdk import (
    APIConnectionError,
    APIError,
    AsyncMultiAgentFramework,
    AuthenticationError,
    BudgetExceeded,
    BudgetExceededError,
    ConflictError,
    GatewayTimeout,
    InvalidJSON,
    ModelError,
    MultiAgentError,
    MultiAgentFramework,
    NotFoundError,
    PayloadTooLarge,
    PermissionDeniedError,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    ValidationError,
    types,
)
from multiagent_sdk._exceptions import APITimeoutError

from tests.e2e.live_server import LiveServer, live_server_fixture
from tests.fakes.messages_api import delay, error, example_for_schema

pytestmark = pytest.mark.e2e

UNLIMITED = ("--rpm", "100000", "--tpm", "1000000000", "--daily-usd", "1000", "--monthly-usd", "10000")
server = live_server_fixture(fake_model=True, tenant_args=UNLIMITED, env={"MULTIAGENT_DEADLINE_S": "3"})

FAST_RETRIES = RetryPolicy(max_retries=2, initial_retry_delay=0.01, max_retry_delay=0.05, max_retry_after=5.0)


def _pascal(name: str) -> str:
    return "".join(p.capitalize() for p in name.replace("-", "_").split("_"))


class Recorder:
    """Counts the HTTP requests a client really sends (retries included)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def client(self) -> httpx.Client:
        return httpx.Client(event_hooks={"request": [self.requests.append]})


@pytest.fixture
def framework(server: LiveServer) -> Any:
    server.fake.reset()
    with MultiAgentFramework(api_url=server.url, api_key=server.api_key, retry_policy=FAST_RETRIES) as client:
        yield client


# --- happy paths --------------------------------------------------------------------------------------------------


def test_every_team_is_reachable_with_typed_outputs(framework: MultiAgentFramework) -> None:
    # given the catalog as the server lists it
    teams = framework.teams.list()
    assert sorted(t.name for t in teams) == sorted(multiagent_sdk.TEAM_NAMES)
    for info in teams:
        op = next(o for o in info.operations if o.name != "ask")
        # when a typed team method is called with a schema-valid input
        method = getattr(getattr(framework.teams, info.name.replace("-", "_")), op.name)
        result = method(example_for_schema(op.input_schema))
        # then the output is the generated model of that operation, with its raw answer
        expected = getattr(types, f"{_pascal(info.name)}{_pascal(op.name)}Output")
        assert type(result) is expected, (info.name, op.name)
        assert result.raw.team == info.name and result.raw.operation == op.name
        assert result.raw.usage.cost_usd > 0


def test_kwargs_dict_and_model_inputs_give_typed_output_with_raw(framework: MultiAgentFramework) -> None:
    analysis = framework.teams.finance.analyze_investment(risk_tolerance="medium", amount=100000)
    assert isinstance(analysis, types.FinanceAnalyzeInvestmentOutput)
    assert analysis.allocation and isinstance(analysis.allocation[0], types.FinanceAllocationItem)
    raw = analysis.raw
    assert raw.usage.input_tokens > 0 and raw.usage.output_tokens > 0 and raw.usage.cost_usd > 0
    assert raw.model.startswith("claude-") and raw.request_id and raw.request_id == raw.headers["x-request-id"]
    assert raw.budget_remaining_usd is not None and raw.budget_remaining_usd < 1000
    assert raw.ratelimit_remaining_requests is not None and raw.ratelimit_remaining_tokens is not None
    assert raw.retries == 0 and raw.idempotency_key and not raw.replayed

    as_dict = framework.teams.marketing.analyze_campaign({"target": "developers", "budget": 5000})
    as_model = framework.teams.marketing.analyze_campaign(types.MarketingAnalyzeCampaignInput(target="devs", budget=1))
    for out in (as_dict, as_model):
        assert isinstance(out, types.MarketingAnalyzeCampaignOutput)
    by_name = framework.teams["customer-service"].ask(question="How do refunds work?")
    assert isinstance(by_name, types.CustomerServiceAskOutput) and by_name.answer
    untyped = framework.teams["legal"].call("ask", question="Is this enforceable?")
    assert untyped.model_dump()["answer"] and untyped.raw.team == "legal"


def test_usage_reflects_calls_and_team_description(framework: MultiAgentFramework) -> None:
    before = framework.usage().spent_usd["day"]
    cost = framework.teams.hr.ask(question="What is a good onboarding plan?").raw.usage.cost_usd
    report = framework.usage()
    assert report.spent_usd["day"] == pytest.approx(before + cost, abs=1e-6)
    assert any(row["team"] == "hr" for row in report.by_team)
    assert {o.name for o in framework.teams.finance.describe().operations} >= {"analyze_investment", "ask"}


async def test_async_twin_runs_calls_concurrently(server: LiveServer) -> None:
    async with AsyncMultiAgentFramework(api_url=server.url, api_key=server.api_key) as framework:
        results = await asyncio.gather(
            framework.teams.finance.analyze_investment(risk_tolerance="low", amount=5000),
            framework.teams.marketing.analyze_campaign(target="smb", budget=100),
            framework.teams.support.ask(question="Reset my password?"),
        )
        assert [type(r).__name__ for r in results] == [
            "FinanceAnalyzeInvestmentOutput", "MarketingAnalyzeCampaignOutput", "SupportAskOutput"]
        assert len(await framework.teams.list()) == len(multiagent_sdk.TEAM_NAMES)
        assert (await framework.usage()).tenant_id == server.tenant.tenant_id
        with pytest.raises(AuthenticationError):
            await AsyncMultiAgentFramework(api_url=server.url, api_key="mak_wrong").usage()


# --- each error class from the real server ------------------------------------------------------------------------


def test_authentication_error(server: LiveServer) -> None:
    with MultiAgentFramework(api_url=server.url, api_key="mak_not_a_key") as framework:
        with pytest.raises(AuthenticationError) as info:
            framework.teams.finance.ask(question="hi")
    assert info.value.status_code == 401 and info.value.slug == "unauthenticated" and info.value.request_id


def test_permission_denied_for_a_team_outside_the_allow_list(server: LiveServer) -> None:
    tenant = server.create_tenant("marketing-only", "--teams", "marketing")
    with MultiAgentFramework(api_url=server.url, api_key=tenant.api_key) as framework:
        with pytest.raises(PermissionDeniedError) as info:
            framework.teams.finance.ask(question="hi")
    assert info.value.status_code == 403 and "finance" in info.value.detail


def test_not_found_for_unknown_team_and_operation(framework: MultiAgentFramework) -> None:
    with pytest.raises(NotFoundError):
        framework.teams["no-such-team"].call("ask", question="hi")
    with pytest.raises(NotFoundError) as info:
        framework.teams.finance.call("no_such_operation", question="hi")
    assert "no_such_operation" in info.value.detail


def test_validation_error_lists_the_fields(framework: MultiAgentFramework) -> None:
    with pytest.raises(ValidationError) as info:
        framework.teams.finance.analyze_investment({"risk_tolerance": "extreme", "amount": -1})
    locs = {tuple(e["loc"]) for e in info.value.errors}
    assert ("body", "risk_tolerance") in locs and ("body", "amount") in locs


def test_invalid_json(framework: MultiAgentFramework) -> None:
    with pytest.raises(InvalidJSON) as info:
        framework.request("POST", "/v1/teams/finance/ask", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert info.value.status_code == 400


def test_payload_too_large(framework: MultiAgentFramework) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        framework.teams.finance.ask(question="x" * 300_000)
    assert info.value.limit_bytes == 256 * 1024


def test_budget_exceeded_is_never_retried(server: LiveServer) -> None:
    tenant = server.create_tenant("poor", "--daily-usd", "0.0001")
    recorder = Recorder()
    with MultiAgentFramework(api_url=server.url, api_key=tenant.api_key, retry_policy=FAST_RETRIES,
                             http_client=recorder.client()) as framework:
        with pytest.raises(BudgetExceeded) as info:
            framework.teams.finance.analyze_investment(risk_tolerance="high", amount=10)
    exc = info.value
    assert len(recorder.requests) == 1  # no retry on 402
    assert exc.headers["x-should-retry"] == "false"
    assert exc.window == "day" and exc.limit_usd == pytest.approx(0.0001)
    assert exc.reset_at is not None and exc.reset_at > datetime.now(UTC)


def test_rate_limited_is_retried_then_raised(server: LiveServer) -> None:
    tenant = server.create_tenant("slow", "--rpm", "1")
    recorder = Recorder()
    policy = RetryPolicy(max_retries=2, initial_retry_delay=0.01, max_retry_delay=0.05, max_retry_after=1.0)
    with MultiAgentFramework(api_url=server.url, api_key=tenant.api_key, retry_policy=policy,
                             http_client=recorder.client()) as framework:
        framework.teams.sales.ask(question="first call uses the one request of this minute")
        with pytest.raises(RateLimited) as info:
            framework.teams.sales.ask(question="second call")
    assert len(recorder.requests) == 1 + 3  # the second call: first try + 2 retries
    keys = {r.headers["idempotency-key"] for r in recorder.requests[1:]}
    assert len(keys) == 1  # one key per logical call, reused by its retries
    assert info.value.retry_after is not None and info.value.retry_after > 1  # ~60 s: backoff was used instead
    assert info.value.headers["x-should-retry"] == "true"


def test_service_unavailable_retry_honours_retry_after_and_succeeds(server: LiveServer) -> None:
    # given the model provider overloaded for one whole server-side attempt (the anthropic SDK retries twice)
    overloaded = error(529, headers={"retry-after": "1", "retry-after-ms": "1"})
    server.fake.push(overloaded, overloaded, overloaded)
    recorder = Recorder()
    with MultiAgentFramework(api_url=server.url, api_key=server.api_key, http_client=recorder.client()) as framework:
        started = time.monotonic()
        result = framework.teams.research.ask(question="anything new?")
        elapsed = time.monotonic() - started
    assert result.raw.retries == 1 and len(recorder.requests) == 2
    assert elapsed >= 1.0  # waited the server's Retry-After: 1
    assert recorder.requests[0].headers["idempotency-key"] == recorder.requests[1].headers["idempotency-key"]


def test_service_unavailable_error(server: LiveServer) -> None:
    overloaded = error(529, headers={"retry-after": "1", "retry-after-ms": "1"})
    server.fake.push(overloaded, overloaded, overloaded)
    with MultiAgentFramework(api_url=server.url, api_key=server.api_key, max_retries=0) as framework:
        with pytest.raises(ServiceUnavailable) as info:
            framework.teams.research.ask(question="anything new?")
    assert info.value.status_code == 503 and info.value.retry_after == 1.0


def test_model_error_is_not_retried(server: LiveServer) -> None:
    server.fake.push(error(400, message="bad request from the fake"))
    recorder = Recorder()
    with MultiAgentFramework(api_url=server.url, api_key=server.api_key, retry_policy=FAST_RETRIES,
                             http_client=recorder.client()) as framework:
        with pytest.raises(ModelError) as info:
            framework.teams.strategy.ask(question="what now?")
    assert info.value.status_code == 502 and len(recorder.requests) == 1


def test_gateway_timeout_past_the_deadline(server: LiveServer) -> None:
    server.fake.push(delay(8))  # the server's deadline is 3 s
    with MultiAgentFramework(api_url=server.url, api_key=server.api_key, retry_policy=FAST_RETRIES) as framework:
        with pytest.raises(GatewayTimeout) as info:
            framework.teams.operations.ask(question="slow?")
    assert info.value.status_code == 504


def test_conflict_while_the_same_idempotency_key_runs(server: LiveServer) -> None:
    server.fake.push(delay(2))
    seen = len(server.fake.log())
    with MultiAgentFramework(api_url=server.url, api_key=server.api_key, max_retries=0) as framework:
        first: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: first.setdefault(
            "out", framework.teams.product.ask(question="q", idempotency_key="same-key-1")))
        thread.start()
        deadline = time.monotonic() + 10
        while len(server.fake.log()) == seen and time.monotonic() < deadline:  # the first call reached the model
            time.sleep(0.05)
        with pytest.raises(ConflictError):
            framework.teams.product.ask(question="q", idempotency_key="same-key-1")
        thread.join(10)
    assert first["out"].answer


def test_client_timeout(server: LiveServer) -> None:
    server.fake.push(delay(2))
    with MultiAgentFramework(api_url=server.url, api_key=server.api_key, timeout=0.5, max_retries=0) as framework:
        with pytest.raises(APITimeoutError):
            framework.teams.design_creative.ask(question="slow?")
    time.sleep(1.6)  # let the abandoned call finish before the next test scripts the fake


def test_connection_error_is_an_api_error(server: LiveServer) -> None:
    with MultiAgentFramework(api_url="http://127.0.0.1:9", api_key="k", retry_policy=FAST_RETRIES) as framework:
        with pytest.raises(APIError) as info:  # `except APIError` sees network failures too
            framework.usage()
    assert isinstance(info.value, APIConnectionError) and isinstance(info.value, MultiAgentError)


# --- streams (Server-Sent Events) ---------------------------------------------------------------------------------


def test_stream_of_an_operation_ends_with_the_json_answers_body(framework: MultiAgentFramework) -> None:
    with framework.stream("finance", "analyze_investment", {"risk_tolerance": "low"}, amount=1000) as stream:
        events = list(stream)
    names = [e.event for e in events]
    assert names[0] == "step.started" and names[-2:] == ["step.completed", "done"]
    assert names.count("model.delta") == names.count("usage") >= 1
    done = stream.final()
    assert done == events[-1].data and done["team"] == "finance" and stream.request_id == done["id"]
    output = types.FinanceAnalyzeInvestmentOutput.model_validate(done["output"])
    assert output.allocation and events[-2].data["output"] == done["output"] and done["usage"]["cost_usd"] > 0
    usage = [e.data for e in events if e.event == "usage"][-1]
    assert usage["cost_usd"] == pytest.approx(done["usage"]["cost_usd"])


def test_stream_of_a_run_and_an_error_event(server: LiveServer, framework: MultiAgentFramework) -> None:
    run = framework.stream_run("Launch a budgeting app", teams=["marketing", "finance"])
    names = [e.event for e in run]
    assert names[-1] == "done" and names.count("step.started") >= 2 and "error" not in names
    assert run.done["status"] == "succeeded" and run.done["usage"]["cost_usd"] > 0
    assert framework.get_run(run.done["id"]).status == "succeeded"
    # a refusal after the stream began arrives as an `error` event: raised as its typed error
    poor = server.create_tenant("stream-poor", "--daily-usd", "0.0001")
    seen: list[str] = []
    with MultiAgentFramework(api_url=server.url, api_key=poor.api_key) as client:
        with pytest.raises(BudgetExceededError) as info:
            for event in client.teams.finance.stream("ask", question="q"):
                seen.append(event.event)
    assert seen == ["step.started"] and info.value.status_code == 402 and info.value.reset_at is not None


async def test_async_stream_of_an_operation_and_a_run(server: LiveServer) -> None:
    server.fake.reset()
    async with AsyncMultiAgentFramework(api_url=server.url, api_key=server.api_key) as framework:
        names = [e.event async for e in framework.teams.customer_service.stream("ask", question="refunds?")]
        assert names[0] == "step.started" and names[-1] == "done"
        run = framework.stream_run("Plan a product launch", teams=["marketing", "sales"])
        async with run:
            async for _event in run:
                pass
        assert run.done["status"] == "succeeded" and run.request_id


# --- idempotency: a retried call is charged once ------------------------------------------------------------------


class DropFirstAnswer(httpx.BaseTransport):
    """Delivers the first POST to the server, then loses its answer (as a reset connection would)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.keys: list[str | None] = []
        self.dropped = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST":
            self.keys.append(request.headers.get("idempotency-key"))
            if not self.dropped:
                self.dropped = True
                response.read()
                response.close()
                raise httpx.ReadError("connection reset after the server answered", request=request)
        return response


def test_retried_idempotent_call_is_charged_once(server: LiveServer) -> None:
    tenant = server.create_tenant("idem", *UNLIMITED)
    transport = DropFirstAnswer()
    with MultiAgentFramework(api_url=server.url, api_key=tenant.api_key, retry_policy=FAST_RETRIES,
                             http_client=httpx.Client(transport=transport)) as framework:
        # when the first answer is lost and the SDK retries
        result = framework.teams.marketing.analyze_campaign(target="developers", budget=5000)
        report = framework.usage()
    # then the retry carried the same key and got the stored first result, charged once
    assert len(transport.keys) == 2 and transport.keys[0] == transport.keys[1]
    assert result.raw.retries == 1 and result.raw.replayed
    rows = [r for r in report.by_team if r["team"] == "marketing"]
    assert rows and rows[0]["cost_usd"] == pytest.approx(result.raw.usage.cost_usd, abs=1e-6)
    assert report.spent_usd["day"] == pytest.approx(result.raw.usage.cost_usd, abs=1e-6)


def test_the_served_openapi_is_the_committed_export(server: LiveServer) -> None:
    from openapi_spec_validator import validate

    from shared.sdkgen import OPENAPI_PATH

    served = httpx.get(server.url + "/openapi.json", timeout=10).json()
    validate(served)
    assert served == json.loads(OPENAPI_PATH.read_text()), "sdk/openapi.json is stale: run scripts/generate_sdks.sh"
