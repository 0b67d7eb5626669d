"""The MCP server with the real ``mcp`` client, over stdio (``multiagent mcp``) and over
streamable HTTP (``functions/mcp/main.py``'s stateless app), against a live gateway on the
fake Messages API: tools listed from the catalog, a successful call, a call refused by
budget, invalid arguments.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from shared.catalog import load_catalog
from tests.e2e.live_server import REPO_ROOT, LiveServer, Tenant, live_server_fixture
from tests.e2e.servers import mcp_http_app

pytestmark = pytest.mark.e2e
RUN_TOOLS = ("start_run", "get_run", "list_runs")

UNLIMITED = ("--rpm", "100000", "--tpm", "1000000000")
server = live_server_fixture(fake_model=True, tenant_args=UNLIMITED)


@pytest.fixture(scope="module")
def poor(server: LiveServer) -> Tenant:
    return server.create_tenant("mcp-poor", "--daily-usd", "0.0001")


@asynccontextmanager
async def stdio_session(server: LiveServer, *args: str,
                        env: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "shared.cli", "mcp", *args],
                                   env={**server.env, **(env or {})}, cwd=str(REPO_ROOT))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@pytest.fixture(scope="module")
def mcp_http(server: LiveServer) -> Iterator[str]:
    """``python -m functions.mcp.main --http PORT``: the function's app, keys from the MCP client."""
    env = {k: v for k, v in server.env.items() if k != "MULTIAGENT_API_KEY"}
    with mcp_http_app({**env, "MULTIAGENT_API_URL": server.url}) as url:
        yield url


@asynccontextmanager
async def http_session(url: str, key: str | None) -> AsyncIterator[ClientSession]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as client:
        async with streamable_http_client(url, http_client=client) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            yield session


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


# --- stdio (Claude Desktop) ---------------------------------------------------------------------------------------


async def test_stdio_lists_filtered_tools_and_calls_one(server: LiveServer) -> None:
    async with stdio_session(server, "--api-url", server.url, "--api-key", server.api_key,
                             "--teams", "finance,marketing") as session:
        # when the client lists the tools
        tools = {t.name: t for t in (await session.list_tools()).tools}
        # then there is one per operation of the selected teams, with its input schema, plus list_teams and runs
        catalog = load_catalog()
        expected = {"list_teams", *RUN_TOOLS} | {f"{t.replace('-', '_')}_{op.name}" for t in ("finance", "marketing")
                                     for op in catalog.team(t).operations}
        assert set(tools) == expected
        schema = tools["finance_analyze_investment"].input_schema
        assert schema["required"] == ["risk_tolerance", "amount"]
        assert schema["properties"]["risk_tolerance"]["enum"] == ["low", "medium", "high"]

        # and a call goes through the gateway with the key and returns the typed output
        result = await session.call_tool("finance_analyze_investment", {"risk_tolerance": "medium", "amount": 100000})
        assert not result.is_error, _text(result)
        assert result.structured_content is not None and result.structured_content["allocation"]
        assert "finance/analyze_investment" in _text(result) and "$" in _text(result)

        teams = await session.call_tool("list_teams", {})
        assert not teams.is_error
        assert {t["name"] for t in teams.structured_content["teams"]} == {"finance", "marketing"}


async def test_stdio_invalid_arguments_and_budget_refusal(server: LiveServer, poor: Tenant) -> None:
    async with stdio_session(server, "--api-url", server.url, "--api-key", server.api_key) as session:
        invalid = await session.call_tool("finance_analyze_investment", {"risk_tolerance": "reckless"})
        assert invalid.is_error
        assert "422" in _text(invalid) and "risk_tolerance" in _text(invalid) and "amount" in _text(invalid)
        unknown = await session.call_tool("no_such_tool", {})
        assert unknown.is_error and "list_teams" in _text(unknown)

    # the key and URL from the environment (MULTIAGENT_API_URL / MULTIAGENT_API_KEY), no flags
    async with stdio_session(server, env={"MULTIAGENT_API_URL": server.url,
                                          "MULTIAGENT_API_KEY": poor.api_key}) as session:
        refused = await session.call_tool("legal_ask", {"question": "Is this enforceable?"})
        assert refused.is_error
        text = _text(refused)
        assert "402" in text and "Budget exceeded" in text and "resets at" in text


# --- streamable HTTP (the function) -------------------------------------------------------------------------------


async def test_http_lists_every_operation_and_calls_one(server: LiveServer, mcp_http: str) -> None:
    async with http_session(mcp_http, server.api_key) as session:
        tools = (await session.list_tools()).tools
        assert len(tools) == 1 + len(RUN_TOOLS) + sum(len(t.operations) for t in load_catalog())
        result = await session.call_tool("marketing_analyze_campaign", {"target": "developers", "budget": 5000})
        assert not result.is_error, _text(result)
        output_model = load_catalog().team("marketing").operation("analyze_campaign").output
        output_model.model_validate(result.structured_content)


async def test_http_budget_refusal_invalid_arguments_and_missing_key(server: LiveServer, poor: Tenant,
                                                                     mcp_http: str) -> None:
    # the MCP client's own key decides the tenant: the poor tenant is refused by its budget
    async with http_session(mcp_http, poor.api_key) as session:
        refused = await session.call_tool("finance_ask", {"question": "How much can I spend?"})
        assert refused.is_error and "402" in _text(refused) and "budget" in _text(refused).lower()
    async with http_session(mcp_http, server.api_key) as session:
        invalid = await session.call_tool("marketing_analyze_campaign", {"target": "x", "budget": "lots"})
        assert invalid.is_error and "422" in _text(invalid) and "budget" in _text(invalid)
    # a keyless MCP client is refused by the HTTP app itself (401), before any tool runs
    with pytest.raises(ExceptionGroup):  # the SDK client fails on the 401 (the status is checked below)
        async with http_session(mcp_http, None) as session:
            await session.call_tool("finance_ask", {"question": "hi"})
    keyless = httpx.post(mcp_http, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                         "params": {"name": "finance_ask", "arguments": {"question": "hi"}}},
                         headers={"accept": "application/json, text/event-stream"}, timeout=30)
    assert keyless.status_code == 401 and keyless.headers["www-authenticate"].startswith("Bearer")


async def test_stdio_runs_are_started_read_and_listed(server: LiveServer, poor: Tenant) -> None:
    async with stdio_session(server, "--api-url", server.url, "--api-key", server.api_key,
                             "--teams", "finance,legal") as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert tools["start_run"].input_schema["required"] == ["task"]
        assert tools["start_run"].input_schema["properties"]["teams"]["items"]["enum"] == ["finance", "legal"]
        # a run over two teams, waited for: its answer, then status and cost
        done = await session.call_tool("start_run", {"task": "Should we expand to Germany?",
                                                     "teams": ["finance", "legal"], "max_usd": 2})
        assert not done.is_error, _text(done)
        run = done.structured_content
        assert run is not None and run["status"] == "succeeded" and run["answer"] in _text(done)
        assert f"[run {run['id']} succeeded: 2 of 2 steps succeeded" in _text(done)
        # read back by id, and listed newest first
        got = await session.call_tool("get_run", {"run_id": run["id"]})
        assert not got.is_error and got.structured_content["answer"] == run["answer"]
        listed = await session.call_tool("list_runs", {"limit": 5})
        assert not listed.is_error and listed.structured_content["runs"][0]["id"] == run["id"]
        assert run["id"] in _text(listed) and "succeeded" in _text(listed)
        # without waiting: the id at once, then read until it is done
        queued = await session.call_tool("start_run", {"task": "Is the contract sound?", "teams": ["legal"],
                                                       "wait": False})
        assert not queued.is_error and queued.structured_content["status"] in ("queued", "running"), _text(queued)
        assert "get_run" in _text(queued)
        deadline = time.monotonic() + 60
        while True:
            later = await session.call_tool("get_run", {"run_id": queued.structured_content["id"]})
            if later.structured_content["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert later.structured_content["status"] == "succeeded", _text(later)
        # bad arguments and unknown runs are tool errors the model can read
        empty = await session.call_tool("start_run", {"task": ""})
        assert empty.is_error and "422" in _text(empty) and "task" in _text(empty)
        missing = await session.call_tool("get_run", {"run_id": "run_missing"})
        assert missing.is_error and "404" in _text(missing)
    # a run none of whose steps could be paid for is failed: a tool error naming the refusal
    async with stdio_session(server, "--api-url", server.url, "--api-key", poor.api_key) as session:
        refused = await session.call_tool("start_run", {"task": "Plan", "teams": ["finance"]})
        assert refused.is_error and refused.structured_content["status"] == "failed"
        assert "failed: 0 of 1 steps succeeded" in _text(refused) and "Budget exceeded" in _text(refused)
