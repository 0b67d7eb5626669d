"""A team-to-team hop credential proves one hop only, on real servers over loopback.

A gateway (``multiagent serve``) runs ``legal`` in-process and reaches ``research`` through
a small recording proxy in front of a second ``multiagent serve`` (``MULTIAGENT_TEAM=research``,
the team's own function); both share one store and the fake Messages API. What the proxy
captures is exactly what an attacker on the path would hold. Every misuse of it is 403
``forbidden`` and reaches neither the model nor the ledger: a replay (five times, to the
team and through the gateway), another operation, another team, another body, a client
session opened with the credential alone. The hop carries no client key, and its budget is
the caller's remaining budget (a run's share), never the tenant's daily cap.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shared.store import open_store
from tests.e2e.live_server import LiveServer, serve_next_to, start_live_server
from tests.fakes.messages_api import tool_use
from tests.ports import free_port

pytestmark = pytest.mark.e2e

ENVELOPE = "x-multiagent-envelope"
SIGNING_KEY = {"MULTIAGENT_INTERNAL_SIGNING_KEY": "k1:hop-credential-secret-0123456789"}


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingProxy:
    """Loopback HTTP proxy in front of the team's function: records every request; with
    ``steal`` set it keeps the request (answers 503) instead of delivering it."""

    upstream: str
    captured: list[Captured] = field(default_factory=list)
    steal: bool = False

    def start(self) -> RecordingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                proxy.captured.append(Captured(self.path, headers, body))
                if proxy.steal:
                    status, out, content_type = 503, b'{"detail": "intercepted"}', "application/problem+json"
                else:
                    sent = {k: v for k, v in headers.items() if k not in ("host", "content-length", "connection")}
                    resp = httpx.post(proxy.upstream + self.path, content=body, headers=sent, timeout=60)
                    status, out = resp.status_code, resp.content
                    content_type = resp.headers.get("content-type", "application/json")
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Deployment:
    gateway: LiveServer
    team: LiveServer
    proxy: RecordingProxy

    def store_view(self) -> Any:
        return open_store(self.team.env["MULTIAGENT_STORE"])

    def ledger_rows(self) -> int:
        store = self.store_view()
        try:
            return len(store.list_ledger(self.team.tenant.tenant_id))
        finally:
            store.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    team = start_live_server(tmp_path_factory.mktemp("hop-team"), fake_model=True,
                             env={**SIGNING_KEY, "MULTIAGENT_TEAM": "research"})
    proxy = RecordingProxy(team.url).start()
    gateway = None
    try:
        gateway = serve_next_to(team, "gateway", MULTIAGENT_TEAM="",
                                MULTIAGENT_TEAM_URLS=json.dumps({"research": proxy.url}))
        yield Deployment(gateway, team, proxy)
    finally:
        if gateway is not None:
            gateway.stop()
        proxy.stop()
        team.stop()


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[2]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url + path, content=body, headers={"content-type": "application/json", **headers}, timeout=60)


def consult_through_gateway(d: Deployment, question: str, **headers: str) -> tuple[httpx.Response, Captured]:
    """``legal/ask`` on the gateway, whose model asks to consult ``research``: the client's
    answer and the hop the proxy saw."""
    before = len(d.proxy.captured)
    d.team.fake.push(tool_use("consult_team", {"team": "research", "question": "Is the cited study sound?"}))
    resp = httpx.post(d.gateway.url + "/v1/teams/legal/ask", json={"question": question},
                      headers={**d.gateway.auth(), **headers}, timeout=60)
    assert len(d.proxy.captured) == before + 1, d.gateway.log_tail()
    return resp, d.proxy.captured[-1]


def assert_refused(resp: httpx.Response, why: str) -> None:
    assert resp.status_code == 403, (why, resp.status_code, resp.text)
    assert resp.json()["type"] == "/problems/forbidden", why


def test_a_captured_hop_credential_opens_nothing_more(deployment: Deployment):
    d = deployment
    d.proxy.steal = False
    # the victim's call carries its API key and a session with something private in it
    resp, hop = consult_through_gateway(d, "Our secret launch code is SECRET-4711. Is the plan legal?",
                                        **{"x-session-id": "victim-session"})
    assert resp.status_code == 200, resp.text
    assert hop.path == "/v1/teams/research/ask"
    # the hop carries its credential and the platform's pieces, never the client's key or session
    assert ENVELOPE in hop.headers
    assert not {"authorization", "x-api-key", "x-session-id", "cookie"} & set(hop.headers), hop.headers
    assert d.gateway.api_key not in json.dumps(hop.headers)
    # the credential: this team, this operation, these bytes, once, for seconds, with a bounded budget
    claims = claims_of(hop.headers[ENVELOPE])
    assert claims["chn"][-1] == "research" and claims["op"] == "ask" and len(claims["jti"]) >= 20
    assert claims["bh"] == hashlib.sha256(hop.body).hexdigest()
    assert 0 < claims["exp"] - claims["iat"] <= 30.01 and claims["exp"] <= claims["dl"]
    store = d.store_view()
    try:
        tenant = store.get_tenant(d.team.tenant.tenant_id)
        assert tenant is not None
        # what the tenant could still spend when the hop left (the caller's first turn is paid): not the cap
        assert claims["bud"] < tenant.daily_limit_micros
        assert claims["par"]["bud"] <= tenant.daily_limit_micros - min(
            e.cost_micros for e in store.list_ledger(tenant.id) if e.team == "legal")
    finally:
        store.close()
    # the parent rides inside as claims: there is no token in it to cut out and present
    assert isinstance(claims["par"], dict) and "v1." not in json.dumps(claims["par"])

    rows, model_calls = d.ledger_rows(), len(d.team.fake.log())
    captured = {k: v for k, v in hop.headers.items() if k in (ENVELOPE, "content-type")}
    # a replay, five times, straight to the team's function and through the gateway: 403
    for _ in range(5):
        assert_refused(post(d.team.url, hop.path, hop.body, captured), "replay to the team")
    assert_refused(post(d.gateway.url, hop.path, hop.body, captured), "replay through the gateway")
    # re-targeted to another operation of the same team, or to another team: 403
    assert_refused(post(d.team.url, "/v1/teams/research/design_study", hop.body, captured), "another operation")
    for team in ("legal", "finance"):
        assert_refused(post(d.gateway.url, f"/v1/teams/{team}/ask", hop.body, captured), f"team {team}")
    # another body: 403
    other = json.dumps({"question": "List every note you have."}).encode()
    assert_refused(post(d.team.url, hop.path, other, captured), "another body")
    # the victim's session, with the credential alone: 403, and nothing of it is read
    assert_refused(post(d.team.url, hop.path, hop.body, {**captured, "x-session-id": "victim-session"}), "session")
    assert_refused(post(d.gateway.url, "/v1/teams/legal/ask", hop.body,
                        {**captured, "x-session-id": "victim-session"}), "session at the gateway")
    # none of it reached the model or the ledger
    assert d.ledger_rows() == rows and len(d.team.fake.log()) == model_calls
    # and the credential never authenticates the read routes
    for path in ("/v1/sessions/victim-session", "/v1/usage", "/v1/audit"):
        assert httpx.get(d.gateway.url + path, headers=captured, timeout=10).status_code == 401, path


def test_a_credential_stolen_before_use_does_only_its_one_call(deployment: Deployment):
    d = deployment
    d.proxy.steal = True  # the hop never arrives: the attacker holds an unused credential
    try:
        resp, hop = consult_through_gateway(d, "Is the plan legal?")
    finally:
        d.proxy.steal = False
    assert resp.status_code == 200, resp.text  # the consultation failed in place; legal still answered
    captured = {ENVELOPE: hop.headers[ENVELOPE], "content-type": "application/json"}
    rows, model_calls = d.ledger_rows(), len(d.team.fake.log())
    misuse = {
        "another operation": ("/v1/teams/research/design_study", hop.body, captured),
        "another team": ("/v1/teams/finance/ask", hop.body, captured),
        "another body": (hop.path, json.dumps({"question": "List every note and ticket."}).encode(), captured),
        "a client session": (hop.path, hop.body, {**captured, "x-session-id": "victim-session"}),
    }
    for why, (path, body, headers) in misuse.items():
        assert_refused(post(d.gateway.url if "finance" in path else d.team.url, path, body, headers), why)
    assert d.ledger_rows() == rows and len(d.team.fake.log()) == model_calls
    # what is left is the one call it was minted for (the refusals above did not use it up)...
    assert post(d.team.url, hop.path, hop.body, captured).status_code == 200
    assert d.ledger_rows() > rows
    rows = d.ledger_rows()
    # ...once
    assert_refused(post(d.team.url, hop.path, hop.body, captured), "second use")
    assert d.ledger_rows() == rows


def test_an_expired_credential_is_refused(deployment: Deployment):
    d = deployment
    from shared.envelope import Envelope, Keyring

    keyring = Keyring.parse(SIGNING_KEY["MULTIAGENT_INTERNAL_SIGNING_KEY"])
    now = time.time()
    body = json.dumps({"question": "q"}).encode()
    stale = Envelope.root(keyring, tenant=d.team.tenant.tenant_id, run_id="run_x", budget_micros=10_000,
                          deadline=now + 600).child(keyring, "research", 10_000).for_hop(keyring, "ask", body,
                                                                                         now=now - 31)
    rows = d.ledger_rows()
    assert_refused(post(d.team.url, "/v1/teams/research/ask", body, {ENVELOPE: stale.token}), "expired")
    assert d.ledger_rows() == rows


def test_a_background_run_reaches_the_remote_team_with_fresh_credentials(deployment: Deployment):
    d = deployment
    before = len(d.proxy.captured)
    d.team.fake.push(tool_use("submit_plan", {"steps": [
        {"id": "a", "team": "research", "operation": "ask", "input": {"question": "first"}},
        {"id": "b", "team": "research", "operation": "ask", "input": {"question": "second"}}]}))
    # respond-async: the run executes in the background, holding no API key, like a resumed run
    resp = httpx.post(d.gateway.url + "/v1/runs", json={"task": "Two research questions", "teams": ["research"],
                                                        "max_usd": 0.5},
                      headers={**d.gateway.auth(), "prefer": "respond-async"}, timeout=30)
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 60
    while True:
        run = httpx.get(d.gateway.url + resp.headers["location"], headers=d.gateway.auth(), timeout=10).json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, d.gateway.log_tail()
        time.sleep(0.2)
    assert run["status"] == "succeeded" and [s["status"] for s in run["steps"]] == ["succeeded"] * 2, run
    hops = d.proxy.captured[before:]
    assert len(hops) == 2
    claims = [claims_of(h.headers[ENVELOPE]) for h in hops]
    # each step's hop its own credential; no client key; budget within the run's 0.5 USD
    assert len({c["jti"] for c in claims}) == 2
    assert all(not {"authorization", "x-api-key"} & set(h.headers) for h in hops)
    assert all(c["bud"] <= 500_000 and c["par"]["bud"] == 500_000 for c in claims)
