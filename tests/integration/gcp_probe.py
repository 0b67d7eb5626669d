"""Runs our Google code paths in a fresh process pointed at :mod:`tests.fakes.gcp`.

google-auth reads ``GCE_METADATA_HOST`` when its metadata module is first imported, so
each scenario runs in its own process whose environment the test sets up:
``python -m tests.integration.gcp_probe SCENARIO`` prints one JSON object.

- ``secrets``: :class:`shared.secrets.gcp.GcpSecrets` behind the TTL cache: values,
  missing secrets and versions, a disabled version, caching and rotation.
- ``id-token``: :class:`shared.hops.gcp.GoogleIdTokens`: the header and its cache.
- ``hop``: the gateway app with ``MULTIAGENT_TEAM_AUTH=google-id-token`` calling a team
  served on loopback behind a check that does what Cloud Run's IAM does before a request
  reaches a private service (a token for this service's URL, from the gateway's account).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import urllib.request
from typing import Any

from tests.ports import free_port


def scenario_secrets() -> dict[str, Any]:
    from shared.secrets import CachedSecrets, open_secrets
    from shared.secrets.gcp import GcpSecrets

    store = open_secrets("gcp")
    out: dict[str, Any] = {"backend": type(store.backend).__name__}
    out["key"] = store.get("anthropic-api-key")
    out["missing_secret"] = store.get("no-such-secret")
    out["no_version"] = store.get("empty-secret")
    out["disabled"] = store.get("disabled-secret")
    cached = CachedSecrets(GcpSecrets(), ttl_s=300)
    first = cached.get("rotating")
    # an operator rotates the secret (a new version) while this instance holds the old one
    secret_id = os.environ.get("MULTIAGENT_SECRETS_PREFIX", "") + "rotating"
    request = urllib.request.Request(f"{os.environ['MULTIAGENT_SECRETS_ENDPOINT']}/_fake/secrets/{secret_id}",
                                     data=b"second", method="POST")
    urllib.request.urlopen(request, timeout=5).close()
    out["rotating"] = [first, cached.get("rotating")]
    cached.refresh("rotating")
    out["rotating"].append(cached.get("rotating"))
    out["project"] = cached.backend.project
    return out


def scenario_id_token() -> dict[str, Any]:
    from shared.hops.gcp import GoogleIdTokens

    tokens = GoogleIdTokens()

    async def go() -> list[dict[str, str]]:
        a = await tokens("https://multiagent-dev-finance-123.us-central1.run.app/v1/teams/finance/ask")
        b = await tokens("https://multiagent-dev-finance-123.us-central1.run.app/health")
        c = await tokens("https://multiagent-dev-legal-123.us-central1.run.app/v1/teams/legal/ask")
        return [a, b, c]

    return {"headers": asyncio.run(go()), "fetches": tokens.fetches}


def scenario_hop() -> dict[str, Any]:
    import httpx
    import uvicorn

    from shared.catalog import load_catalog
    from shared.config import Settings
    from shared.http.app import build_app
    from shared.runtime import Runtime
    from shared.store import open_store
    from shared.tenants import TenantAdmin
    from tests.fakes.gcp import SERVICE_ACCOUNT, decode_claims

    store_url = os.environ["PROBE_STORE"]
    port = free_port()
    team_url = f"http://127.0.0.1:{port}"
    seen: list[dict[str, Any]] = []

    team_settings = Settings.from_env({**os.environ, "MULTIAGENT_STORE": store_url, "MULTIAGENT_TEAM": "finance"})
    team_app = build_app(Runtime(team_settings))

    async def cloud_run_iam(scope: Any, receive: Any, send: Any) -> None:
        """What Cloud Run checks before a private service sees a request."""
        if scope["type"] != "http":
            return await team_app(scope, receive, send)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        token = headers.get("x-serverless-authorization", "").removeprefix("Bearer ")
        claims = decode_claims(token) if token.count(".") == 2 else {}
        seen.append({"claims": claims, "authorization": headers.get("authorization", "")})
        valid = claims.get("aud") == team_url and claims.get("email") == SERVICE_ACCOUNT
        if not valid or claims.get("exp", 0) < time.time():
            body = b'{"error": "forbidden by IAM"}'
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": body})
        return await team_app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(cloud_run_iam, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="on"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)

    store = open_store(store_url)
    store.init()
    _, key = TenantAdmin(store, team_settings, load_catalog()).create("acme")
    gateway_env = {**os.environ, "MULTIAGENT_STORE": store_url, "MULTIAGENT_TEAM_AUTH": "google-id-token",
                   "MULTIAGENT_TEAM_URLS": json.dumps({"finance": team_url})}
    gateway = build_app(Runtime(Settings.from_env(gateway_env)))

    async def go() -> dict[str, Any]:
        async with gateway.router.lifespan_context(gateway):
            transport = httpx.ASGITransport(app=gateway)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                ok = await client.post("/v1/teams/finance/analyze_investment",
                                       json={"risk_tolerance": "low", "amount": 1000},
                                       headers={"authorization": f"Bearer {key}"})
        direct = httpx.post(f"{team_url}/v1/teams/finance/analyze_investment",
                            json={"risk_tolerance": "low", "amount": 1000},
                            headers={"authorization": f"Bearer {key}"})
        return {"status": ok.status_code, "team": ok.json().get("team"), "model": ok.json().get("model"),
                "direct_status": direct.status_code}

    result = asyncio.run(go())
    server.should_exit = True
    result["seen"] = seen
    result["key_prefix"] = key[:8]
    return result


SCENARIOS = {"secrets": scenario_secrets, "id-token": scenario_id_token, "hop": scenario_hop}

if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]]()), flush=True)
