"""The MCP server's tools and its function entry points (no gateway needed to list tools)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from functions.mcp import main
from functions.mcp.server import build_tools, select_teams
from shared.catalog import load_catalog
from shared.errors import ConfigurationError


def test_one_tool_per_operation_with_claude_desktop_compatible_names() -> None:
    catalog = load_catalog()
    tools, targets = build_tools(catalog, catalog.names)
    assert len(tools) == 1 + sum(len(t.operations) for t in catalog)
    for tool in tools:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tool.name), tool.name
        assert tool.input_schema["type"] == "object"
    assert targets["customer_service_draft_reply"].team == "customer-service"
    with pytest.raises(ConfigurationError, match="unknown teams nope"):
        select_teams(catalog, ["finance", "nope"])


def _lambda_event(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/mcp", "rawQueryString": "",
        "headers": {"content-type": "application/json", "accept": "application/json, text/event-stream",
                    "mcp-protocol-version": "2025-06-18", "host": "abc.lambda-url.eu-west-1.on.aws"},
        "requestContext": {"http": {"method": "POST", "path": "/mcp", "sourceIp": "10.0.0.1", "protocol": "HTTP/1.1",
                                    "userAgent": "test"}, "stage": "$default", "requestId": "r", "accountId": "1",
                           "apiId": "a", "domainName": "abc.lambda-url.eu-west-1.on.aws", "timeEpoch": 0},
        "body": json.dumps(body), "isBase64Encoded": False,
    }


def test_lambda_handler_lists_tools_statelessly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTIAGENT_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MULTIAGENT_MCP_TEAMS", "finance,legal")
    monkeypatch.setattr(main, "_cache", {})
    answer = main.handler(_lambda_event({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}), None)
    assert answer["statusCode"] == 200
    names = {t["name"] for t in json.loads(answer["body"])["result"]["tools"]}
    assert "finance_analyze_investment" in names and "legal_ask" in names and "marketing_ask" not in names
    assert "app" not in main._cache  # the Lambda handler built only what it needed


def test_entry_points_are_lazy() -> None:
    assert "app" not in vars(main) and "handler" not in vars(main)
    with pytest.raises(AttributeError):
        main.__getattr__("nothing_here")
