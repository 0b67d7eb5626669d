"""The MCP server's tools and its function entry points (no gateway needed to list tools)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from functions.mcp import main
from functions.mcp.server import RUN_TOOLS, build_tools, select_teams
from shared.catalog import load_catalog
from shared.errors import ConfigurationError


def test_one_tool_per_operation_with_claude_desktop_compatible_names() -> None:
    catalog = load_catalog()
    tools, targets = build_tools(catalog, catalog.names)
    # one per operation, list_teams, and the run tools
    assert len(tools) == 1 + len(RUN_TOOLS) + sum(len(t.operations) for t in catalog)
    assert {t.name for t in tools} >= set(RUN_TOOLS)
    for tool in tools:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tool.name), tool.name
        assert tool.input_schema["type"] == "object"
    assert targets["customer_service_draft_reply"].team == "customer-service"
    with pytest.raises(ConfigurationError, match="unknown teams nope"):
        select_teams(catalog, ["finance", "nope"])


LAMBDA_HOST = "abc.lambda-url.eu-west-1.on.aws"


def _lambda_event(body: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/mcp", "rawQueryString": "",
        "headers": {"content-type": "application/json", "accept": "application/json, text/event-stream",
                    "mcp-protocol-version": "2025-06-18", "host": LAMBDA_HOST, **extra},
        "requestContext": {"http": {"method": "POST", "path": "/mcp", "sourceIp": "10.0.0.1", "protocol": "HTTP/1.1",
                                    "userAgent": "test"}, "stage": "$default", "requestId": "r", "accountId": "1",
                           "apiId": "a", "domainName": "abc.lambda-url.eu-west-1.on.aws", "timeEpoch": 0},
        "body": json.dumps(body), "isBase64Encoded": False,
    }


LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


def test_lambda_handler_lists_tools_statelessly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTIAGENT_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MULTIAGENT_MCP_TEAMS", "finance,legal")
    monkeypatch.setenv("MULTIAGENT_MCP_ALLOWED_HOSTS", LAMBDA_HOST)
    monkeypatch.setattr(main, "_cache", {})
    answer = main.handler(_lambda_event(LIST, authorization="Bearer mak_caller"), None)
    assert answer["statusCode"] == 200
    names = {t["name"] for t in json.loads(answer["body"])["result"]["tools"]}
    assert "finance_analyze_investment" in names and "legal_ask" in names and "marketing_ask" not in names
    assert "app" not in main._cache  # the Lambda handler built only what it needed


def test_entry_points_are_lazy() -> None:
    assert "app" not in vars(main) and "handler" not in vars(main)
    with pytest.raises(AttributeError):
        main.__getattr__("nothing_here")


def test_lambda_handler_refuses_keyless_and_foreign_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTIAGENT_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MULTIAGENT_API_KEY", "mak_fallback_never_used_over_http")
    monkeypatch.delenv("MULTIAGENT_MCP_ALLOWED_HOSTS", raising=False)
    monkeypatch.setattr(main, "_cache", {})
    # by default only the loopback names are allowed: a public name must be configured
    assert main.handler(_lambda_event(LIST, authorization="Bearer mak_caller"), None)["statusCode"] == 421
    monkeypatch.setenv("MULTIAGENT_MCP_ALLOWED_HOSTS", LAMBDA_HOST)
    monkeypatch.setattr(main, "_cache", {})
    keyless = main.handler(_lambda_event(LIST), None)
    assert keyless["statusCode"] == 401 and "Bearer" in keyless["headers"]["www-authenticate"]
    foreign = main.handler(_lambda_event(LIST, authorization="Bearer mak_caller", origin="https://attacker.example"),
                           None)
    assert foreign["statusCode"] == 403


def test_default_allowed_hosts_are_the_listening_address() -> None:
    assert main.loopback_hosts(("127.0.0.1", 8765)) == ["127.0.0.1:8765", "localhost:8765", "[::1]:8765"]
    assert "[::1]:8765" in main.loopback_hosts(("::1", 8765))
    assert main.loopback_hosts(("10.1.2.3", 80)) == ["127.0.0.1:80", "localhost:80", "[::1]:80", "10.1.2.3:80",
                                                     "127.0.0.1", "localhost", "[::1]", "10.1.2.3"]
    assert not any("attacker" in h for h in main.loopback_hosts(("attacker.example", 443)))
