"""The simulated model provider (``MULTIAGENT_MODEL_PROVIDER=simulated``): the offline
answers, billed as a real model would bill them at the team's model price and labelled
``simulated:<model>``; the offline provider still bills $0. Through the real gateway app,
its budget guard and a SQLite store."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from shared.budget import input_token_bound, usage_problem
from shared.catalog import load_catalog
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.models import open_provider
from shared.models.base import ModelRequest
from shared.models.offline import OfflineProvider, example_from_schema
from shared.models.simulated import SimulatedProvider
from shared.pricing import cost_micros, price_for
from tests.helpers import LocalApp, local_app

pytestmark = pytest.mark.integration

CATALOG = load_catalog()
LIMITS = {"MULTIAGENT_DEFAULT_RPM": "10000", "MULTIAGENT_DEFAULT_TPM": "100000000"}


def example_input(team: str, operation: str) -> dict[str, Any]:
    return example_from_schema(CATALOG.team(team).operation(operation).input_schema())  # type: ignore[no-any-return]


def request_for(team: str, operation: str, *, forced: bool) -> ModelRequest:
    op = CATALOG.team(team).operation(operation)
    schema = op.output_schema()
    tools = [{"name": "submit_result", "description": "Submit.", "input_schema": schema}]
    return ModelRequest(model=CATALOG.team(team).model, system="You are a careful analyst. " * 20,
                        messages=[{"role": "user", "content": "Input: " + json.dumps(example_input(team, operation))}],
                        max_tokens=op.max_tokens, tools=tools,
                        tool_choice={"type": "tool", "name": "submit_result"} if forced else None)


def ledger(app: LocalApp, tenant_id: str) -> list[Any]:
    return app.runtime.store.list_ledger(tenant_id, since="2000-01-01")


async def usage(app: LocalApp, key: str) -> dict[str, Any]:
    resp = await app.client.get("/v1/usage", headers={"authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("forced", [True, False])
async def test_usage_is_what_is_sent_and_returned_within_the_guards_bounds(forced: bool) -> None:
    provider, offline = SimulatedProvider(banner=False), OfflineProvider(banner=False)
    request = request_for("legal", "review_contract", forced=forced)
    answer, reference = await provider.create(request), await offline.create(request)
    assert answer.content == reference.content and answer.stop_reason == reference.stop_reason  # offline answers
    assert answer.model == "simulated:claude-opus-4-5"
    sent = {"system": request.system, "messages": request.messages, "tools": request.tools,
            "tool_choice": request.tool_choice}
    sent_bytes = len(json.dumps(sent, ensure_ascii=False, separators=(",", ":")).encode())
    returned_bytes = len(json.dumps(answer.content, ensure_ascii=False, separators=(",", ":")).encode())
    u = answer.usage
    assert u.input_tokens == math.ceil(sent_bytes / 4) > 0
    assert u.output_tokens == math.ceil(returned_bytes / 4) > 0
    assert (u.cache_write_tokens, u.cache_read_tokens) == (0, 0)
    assert usage_problem(u, input_token_bound(request), request.max_tokens) is None
    assert await provider.count_tokens(request) == u.input_tokens  # the guard's exact count agrees
    assert reference.usage.input_tokens == reference.usage.output_tokens == 0  # offline: nothing billed


async def test_output_never_exceeds_max_tokens() -> None:
    request = request_for("finance", "analyze_investment", forced=True)
    request.max_tokens = 3
    answer = await SimulatedProvider(banner=False).create(request)
    assert answer.usage.output_tokens == 3
    assert usage_problem(answer.usage, input_token_bound(request), 3) is None


def test_priced_like_the_model_it_simulates() -> None:
    provider = SimulatedProvider(banner=False)
    for model in ("claude-opus-4-5", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"):
        resolved = provider.resolve_model(model)
        assert resolved == f"simulated:{model}" and provider.resolve_model(resolved) == resolved
        assert price_for(resolved) == price_for(model)
        assert cost_micros(resolved, 1000, 100) == cost_micros(model, 1000, 100) > 0
    assert cost_micros("offline", 1000, 100) == 0
    with pytest.raises(ConfigurationError, match="no price"):
        price_for("simulated:gpt-unknown")  # never a silent $0


def test_provider_is_configurable_and_announced(capsys: pytest.CaptureFixture[str]) -> None:
    assert Settings.from_env({"MULTIAGENT_MODEL_PROVIDER": "simulated"}).model_provider == "simulated"
    with pytest.raises(ConfigurationError, match="simulated"):
        Settings.from_env({"MULTIAGENT_MODEL_PROVIDER": "simulation"})  # the message lists the valid names
    assert isinstance(open_provider("simulated"), SimulatedProvider)
    banner = capsys.readouterr().err
    assert "simulated" in banner.lower() and "ANTHROPIC_API_KEY" in banner


async def test_calls_are_charged_at_the_teams_model_price(tmp_path) -> None:
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MODEL_PROVIDER="simulated", **LIMITS) as app:
        tenant_id, key = app.tenant(daily_usd=5)
        total = 0.0
        for team, operation in (("legal", "ask"), ("finance", "analyze_investment"), ("sales", "qualify_lead")):
            model = CATALOG.team(team).model
            before = {e.id for e in ledger(app, tenant_id)}
            resp = await app.call(team, operation, example_input(team, operation), key)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            CATALOG.team(team).operation(operation).output.model_validate(body["output"])
            assert body["model"] == f"simulated:{model}"
            assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
            entries = [e for e in ledger(app, tenant_id) if e.id not in before]
            assert entries and all(e.model == f"simulated:{model}" and not e.anomaly for e in entries)
            for e in entries:  # each model turn priced at the team's model price
                assert e.cost_micros == cost_micros(model, e.input_tokens, e.output_tokens) > 0
            assert sum(e.input_tokens for e in entries) == body["usage"]["input_tokens"]
            assert sum(e.output_tokens for e in entries) == body["usage"]["output_tokens"]
            assert body["usage"]["cost_usd"] == pytest.approx(sum(e.cost_micros for e in entries) / 1e6)
            total += body["usage"]["cost_usd"]
            assert float(resp.headers["x-budget-remaining-usd"]) == pytest.approx(5 - total, abs=1e-6)
        report = await usage(app, key)
        assert report["spent_usd"]["day"] == pytest.approx(total)
        assert {r["model"] for r in report["by_model"]} == {
            "simulated:claude-opus-4-5", "simulated:claude-sonnet-4-5", "simulated:claude-haiku-4-5"}


async def test_model_override_and_cheaper_model_stay_simulated(tmp_path) -> None:
    env = {"MULTIAGENT_MODEL_PROVIDER": "simulated", "MULTIAGENT_MODEL": "claude-haiku-4-5", **LIMITS}
    async with local_app(f"sqlite:///{tmp_path}/a.db", **env) as app:
        _, key = app.tenant()
        body = (await app.call("legal", "ask", {"question": "Is a 3% discount within policy?"}, key)).json()
        assert body["model"] == "simulated:claude-haiku-4-5"
        assert body["usage"]["cost_usd"] == pytest.approx(
            cost_micros("claude-haiku-4-5", body["usage"]["input_tokens"], body["usage"]["output_tokens"]) / 1e6)
    # a cap opus cannot pay but haiku can: the cheaper_model policy switches, still simulated and priced as haiku
    async with local_app(f"sqlite:///{tmp_path}/b.db", MULTIAGENT_MODEL_PROVIDER="simulated", **LIMITS) as app:
        tenant_id, key = app.tenant(daily_usd=0.03, on_low_budget="cheaper_model")
        resp = await app.call("legal", "ask", {"question": "Is a 3% discount within policy?"}, key)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["model"] == "simulated:claude-haiku-4-5" and body["degraded"]["model"] == "claude-haiku-4-5"
        [entry] = ledger(app, tenant_id)
        assert entry.model == "simulated:claude-haiku-4-5"
        assert entry.cost_micros == cost_micros("claude-haiku-4-5", entry.input_tokens, entry.output_tokens) > 0


async def test_a_small_cap_ends_in_402_with_spend_matching_the_ledger(tmp_path) -> None:
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MODEL_PROVIDER="simulated", **LIMITS) as app:
        tenant_id, key = app.tenant(daily_usd=0.05)
        spent, answered = [], 0
        for _ in range(20):
            resp = await app.call("legal", "ask", {"question": "Is a 3% discount within policy?"}, key)
            if resp.status_code == 402:
                break
            assert resp.status_code == 200, resp.text
            answered += 1
            spent.append((await usage(app, key))["spent_usd"]["day"])
        else:
            pytest.fail("a $0.05 daily cap never refused a simulated opus call")
        assert answered >= 2 and spent == sorted(spent) and len(set(spent)) == len(spent)  # rises call by call
        problem = resp.json()
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert problem["type"].endswith("budget-exceeded") and problem["window"] == "day"
        assert problem["spent_usd"] == pytest.approx(spent[-1]) and 0 < spent[-1] <= 0.05
        assert sum(e.cost_micros for e in ledger(app, tenant_id)) / 1e6 == pytest.approx(spent[-1])


async def test_offline_still_bills_nothing(tmp_path) -> None:
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MODEL_PROVIDER="offline", **LIMITS) as app:
        tenant_id, key = app.tenant(daily_usd=0.05)
        for _ in range(12):  # more calls than the simulated model gets on this cap
            resp = await app.call("legal", "ask", {"question": "Is a 3% discount within policy?"}, key)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["model"] == "offline" and body["usage"] == {"input_tokens": 0, "output_tokens": 0,
                                                                     "cost_usd": 0.0}
        assert {(e.model, e.cost_micros) for e in ledger(app, tenant_id)} == {("offline", 0)}
        assert (await usage(app, key))["spent_usd"] == {"day": 0.0, "month": 0.0}


async def test_every_operation_of_every_team_is_billed_sanely(tmp_path) -> None:
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MODEL_PROVIDER="simulated", **LIMITS) as app:
        tenant_id, key = app.tenant(daily_usd=1000, monthly_usd=1000)
        failures = []
        for team in CATALOG:
            for op in team.operations:
                resp = await app.call(team.name, op.name, example_input(team.name, op.name), key)
                body = resp.json()
                if resp.status_code != 200 or body["model"] != f"simulated:{team.model}" \
                        or body["usage"]["cost_usd"] <= 0:
                    failures.append((team.name, op.name, resp.status_code, resp.text[:200]))
        assert failures == []
        entries = ledger(app, tenant_id)
        assert entries and not [e for e in entries if e.anomaly or e.unsettled]  # every usage within bounds
