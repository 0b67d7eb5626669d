"""The interactive /docs page (Swagger UI, vendored) in headless Chromium on a live `multiagent serve`
(offline model): a tenant key typed into the Authorize box, `finance/analyze_investment` sent with the
example body the page shows, its 200 answer read off the page; /dashboard still renders. Screenshots in
test-artifacts/ (docs.png, docs-authorize.png, docs-dashboard.png)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.chromium import ARTIFACTS, browser_missing, run_script
from tests.e2e.live_server import LiveServer, start_live_server
from tests.e2e.test_dashboard import run_browser

pytestmark = pytest.mark.e2e

PATH = "/v1/teams/finance/analyze_investment"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    live = start_live_server(tmp_path_factory.mktemp("docs"))
    try:
        yield live
    finally:
        live.stop()


def run_docs(url: str, key: str, tag: str, operation_id: str, shots: str) -> dict[str, Any]:
    out = run_script("docs.cjs", url, key, tag, operation_id, str(ARTIFACTS / shots), timeout=120)
    assert not out["errors"], out["errors"]
    return out


def test_try_an_operation_from_the_docs_page(server: LiveServer) -> None:
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    operation = document["paths"][PATH]["post"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    assert example == {"risk_tolerance": "low", "amount": 10000}

    out = run_docs(f"{server.url}/docs", server.api_key, "finance", operation["operationId"], "docs")
    assert out["state"] == "ready" and "Authorize" in out["intro"]
    assert {"bearer", "apiKey"} <= {h.split()[0] for h in out["schemes"]}, out["schemes"]
    assert json.loads(out["exampleBody"]) == example  # the editor starts from the document's example
    assert 'curl -s "$MULTIAGENT_API_URL/v1/teams/finance/analyze_investment"' in out["description"]

    calls = [r for r in out["requests"] if r["url"] == server.url + PATH]
    assert len(calls) == 1, out["requests"]
    assert calls[0]["method"] == "POST" and calls[0]["authorization"] == f"Bearer {server.api_key}"
    assert json.loads(calls[0]["body"]) == example
    assert all(server.api_key not in r["url"] for r in out["requests"])  # the key travels in a header only
    assert not [r for r in out["requests"] if not r["url"].startswith(server.url)]  # nothing off this origin

    assert out["status"].startswith("200")
    answer = json.loads(out["responseBody"])
    assert answer["team"] == "finance" and answer["operation"] == "analyze_investment"
    assert answer["model"] and isinstance(answer["output"], dict) and answer["output"]
    assert PATH in out["curl"] and "Authorization: Bearer" in out["curl"]  # Swagger UI's own curl of the call

    audit = httpx.get(f"{server.url}/v1/audit?limit=5", headers=server.auth(), timeout=30).json()
    assert any(e.get("request_id") == answer["id"] for e in audit["events"])  # the page's call was a real one
    assert (ARTIFACTS / "docs.png").stat().st_size > 10_000


def test_the_key_can_come_in_the_fragment_and_the_dashboard_still_renders(server: LiveServer) -> None:
    out = run_docs(f"{server.url}/docs#key={server.api_key}", "-", "finance", "finance__analyze_investment",
                   "docs-fragment")
    calls = [r for r in out["requests"] if r["url"] == server.url + PATH]
    assert len(calls) == 1 and calls[0]["apiKey"] == server.api_key and calls[0]["authorization"] is None
    assert out["status"].startswith("200") and json.loads(out["responseBody"])["team"] == "finance"
    assert all(server.api_key not in r["url"] for r in out["requests"])  # a fragment is never sent

    dash = run_browser(f"{server.url}/dashboard#key={server.api_key}", ARTIFACTS / "docs-dashboard.png")
    assert dash["data"]["state"] == "ready"
