"""The MCP streamable-HTTP app with a fallback key in its environment (the tester's setup):
a keyless caller, or a DNS-rebinding page (``Host``/``Origin: attacker.example``), gets
nothing and spends nothing; a caller with its own key still works.

Real processes on loopback: ``multiagent serve`` on the fake Messages API, and
``python -m functions.mcp.main --http PORT`` as ``tests/e2e/test_mcp.py`` starts it, but with
``MULTIAGENT_API_KEY`` set to the default tenant's key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.live_server import LiveServer, live_server_fixture
from tests.e2e.servers import mcp_http_app

pytestmark = pytest.mark.e2e
server = live_server_fixture(fake_model=True, tenant_args=("--rpm", "100000", "--tpm", "1000000000"))

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json",
          "mcp-protocol-version": "2025-06-18"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "finance_ask", "arguments": {"question": "How much can I spend?"}}}


@pytest.fixture(scope="module")
def mcp_url(server: LiveServer) -> Iterator[str]:
    """The MCP HTTP app with the documented fallback key (the default tenant's) in its environment."""
    env = {**server.env, "MULTIAGENT_API_URL": server.url, "MULTIAGENT_API_KEY": server.api_key}
    env.pop("MULTIAGENT_MCP_ALLOWED_HOSTS", None)
    env.pop("MULTIAGENT_MCP_ALLOWED_ORIGINS", None)
    with mcp_http_app(env) as url:
        yield url


def _spent(server: LiveServer) -> tuple[Any, int]:
    """The fallback tenant's spend and the model requests made so far."""
    usage = httpx.get(server.url + "/v1/usage", headers=server.auth(), timeout=30)
    assert usage.status_code == 200, usage.text
    return usage.json()["spent_usd"], len(server.fake.log())


def post(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(url, json=body, headers={**ACCEPT, **headers}, timeout=60)


def test_keyless_calls_are_401_and_charge_the_fallback_tenant_nothing(server: LiveServer, mcp_url: str) -> None:
    before = _spent(server)
    # when a caller without a key lists the tools and calls one (the fallback key is in the app's environment)
    for body in (LIST, CALL):
        resp = post(mcp_url, body)
        # then the app refuses it itself
        assert resp.status_code == 401, resp.text
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert "result" not in resp.text and "finance_ask" not in resp.text
    # an empty bearer or x-api-key is no key either
    assert post(mcp_url, CALL, authorization="Bearer").status_code == 401
    assert post(mcp_url, CALL, **{"x-api-key": ""}).status_code == 401
    # and nothing was spent, no model was called
    assert _spent(server) == before


def test_a_dns_rebinding_page_is_refused(server: LiveServer, mcp_url: str) -> None:
    before = _spent(server)
    port = mcp_url.split(":")[2].split("/")[0]
    # what a page on attacker.example rebound to 127.0.0.1 sends: its own Host and Origin
    for headers in ({"host": "attacker.example"}, {"host": f"attacker.example:{port}"},
                    {"host": f"attacker.example:{port}", "origin": f"http://attacker.example:{port}"}):
        for body in (LIST, CALL):
            resp = post(mcp_url, body, **headers)
            assert resp.status_code in (403, 421), (headers, resp.status_code, resp.text)
            assert "result" not in resp.text
    # a foreign Origin on the right Host (a page elsewhere calling the local port) is 403, even with a key
    for origin in ("http://attacker.example", "https://attacker.example", "null", f"http://localhost.attacker.example:{port}"):
        for body in (LIST, CALL):
            resp = post(mcp_url, body, origin=origin, authorization=f"Bearer {server.api_key}")
            assert resp.status_code == 403, (origin, resp.status_code, resp.text)
    # a foreign Host with a key is refused too (421)
    resp = post(mcp_url, CALL, host="attacker.example", authorization=f"Bearer {server.api_key}")
    assert resp.status_code == 421, resp.text
    assert _spent(server) == before


def test_with_a_key_the_app_still_works(server: LiveServer, mcp_url: str) -> None:
    port = mcp_url.split(":")[2].split("/")[0]
    before = _spent(server)
    auth = {"authorization": f"Bearer {server.api_key}"}
    listed = post(mcp_url, LIST, **auth)
    assert listed.status_code == 200, listed.text
    assert "finance_ask" in {t["name"] for t in listed.json()["result"]["tools"]}
    # the loopback names of the listening port, and a same-origin page on it, are allowed
    for headers in ({"host": f"localhost:{port}"}, {"origin": f"http://127.0.0.1:{port}"},
                    {"host": f"localhost:{port}", "origin": f"http://localhost:{port}"}):
        assert post(mcp_url, LIST, **auth, **headers).status_code == 200, headers
    called = post(mcp_url, CALL, **{"x-api-key": server.api_key})
    assert called.status_code == 200, called.text
    result = called.json()["result"]
    assert not result.get("isError"), result
    after = _spent(server)
    assert after[1] > before[1] and after[0]["day"] > before[0]["day"]  # the caller's own key paid
