"""Metrics (Prometheus in serve mode), trace context across functions, OTLP span export,
and the self-hosted Prometheus + Grafana provisioning under deploy/observability."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Settings
from shared.http.app import build_app
from shared.observability import tracing
from shared.observability.metrics import METRIC_NAMES
from shared.runtime import Runtime
from shared.store import open_store
from shared.tenants import TenantAdmin
from tests.fakes.messages_api import delay, tool_use

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "observability"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def build(store_url: str, *, serve_mode: bool = False, **env: str) -> tuple[Runtime, Any]:
    settings = Settings.from_env({"MULTIAGENT_STORE": store_url, **env})
    store = open_store(store_url)
    store.init()
    runtime = Runtime(settings, store=store)
    return runtime, build_app(runtime, serve_mode=serve_mode)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(snapshot: dict, name: str, **labels: str) -> float:
    return snapshot.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict:
    resp = await client.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return samples(resp.text)


async def test_metrics_in_serve_mode(tmp_path, model_env, fake):
    runtime, app = build(f"sqlite:///{tmp_path}/m.db", serve_mode=True, **model_env)
    admin = TenantAdmin(runtime.store, runtime.settings, runtime.catalog)
    _, key = admin.create("metered")
    _, poor = admin.create("poor", daily_usd=0.000001)
    _, slow = admin.create("slow", rpm=1)
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        before = await scrape(client)
        fake.state.push(tool_use("calculator", {"expression": "6*7"}))
        ok = await client.post("/v1/teams/finance/ask", json={"question": "6*7?"}, headers=auth)
        assert ok.status_code == 200, ok.text
        assert (await client.post("/v1/teams/finance/ask", json={"question": 1}, headers=auth)).status_code == 422
        assert (await client.post("/v1/teams/legal/ask", json={"question": "q"},
                                  headers={"authorization": f"Bearer {poor}"})).status_code == 402
        for expected in (200, 429):
            resp = await client.post("/v1/teams/legal/ask", json={"question": "q"},
                                     headers={"authorization": f"Bearer {slow}"})
            assert resp.status_code == expected
        after = await scrape(client)
        # /metrics wants the admin key once one is configured, and a key-less scrape only from this machine
        remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
        async with httpx.AsyncClient(transport=remote, base_url="http://test") as outsider:
            assert (await outsider.get("/metrics")).status_code == 403

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    usage = ok.json()["usage"]
    assert delta("multiagent_requests_total", team="finance", operation="ask", status="200") == 1
    assert delta("multiagent_requests_total", team="finance", operation="ask", status="422") == 1
    assert delta("multiagent_requests_total", team="legal", operation="ask", status="402") == 1
    assert delta("multiagent_request_duration_seconds_count", team="finance", operation="ask") == 2
    assert delta("multiagent_request_duration_seconds_sum", team="finance", operation="ask") > 0
    model = "claude-sonnet-4-5"
    assert delta("multiagent_model_tokens_total", team="finance", model=model, direction="input") == \
        usage["input_tokens"]
    assert delta("multiagent_model_tokens_total", team="finance", model=model, direction="output") == \
        usage["output_tokens"]
    assert delta("multiagent_model_cost_usd_total", team="finance", model=model) == pytest.approx(usage["cost_usd"])
    assert delta("multiagent_model_calls_total", team="finance", model=model, outcome="ok") == 2
    assert delta("multiagent_model_call_duration_seconds_count", model=model) >= 2
    assert delta("multiagent_tool_calls_total", team="finance", tool="calculator", outcome="ok") == 1
    assert delta("multiagent_errors_total", team="finance", type="validation-error") == 1
    assert delta("multiagent_errors_total", team="legal", type="budget-exceeded") == 1
    assert delta("multiagent_errors_total", team="legal", type="rate-limited") == 1
    assert delta("multiagent_budget_refusals_total", team="legal", kind="budget") == 1
    assert delta("multiagent_budget_refusals_total", team="legal", kind="rate") == 1
    assert value(after, "multiagent_inflight_requests") == 0
    exposed = {name for name, _ in after}
    for name in METRIC_NAMES:
        assert name in exposed or f"{name}_count" in exposed, name


async def test_no_metrics_endpoint_outside_serve_mode(tmp_path):
    _, app = build(f"sqlite:///{tmp_path}/m.db")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/metrics")).status_code == 404


# --- the self-hosted stack -------------------------------------------------------------------------------------
def test_prometheus_and_compose_files_are_valid() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"prometheus", "grafana"}
    prom_service = compose["services"]["prometheus"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom_service["volumes"]
    for service in compose["services"].values():
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert re.fullmatch(r"\d+[smh]", prom["global"]["scrape_interval"])
    (job,) = prom["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["job_name"] == "multiagent"
    for target in job["static_configs"][0]["targets"]:
        host, port = target.rsplit(":", 1)
        assert host and port.isdigit()
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/multiagent.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


async def test_grafana_dashboard_queries_metrics_that_metrics_exposes(tmp_path, model_env, fake):
    dashboard = json.loads((DEPLOY / "grafana/dashboards/multiagent.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs.append(dashboard["templating"]["list"][1]["query"]["query"])
    referenced = {m for e in exprs for m in re.findall(r"\bmultiagent_[a-z_]+", e)}
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
    for e in exprs:
        assert e.count("(") == e.count(")") and e.count("{") == e.count("}"), e

    # every series a panel queries is one /metrics really serves after some traffic
    runtime, app = build(f"sqlite:///{tmp_path}/m.db", serve_mode=True, **model_env)
    _, key = TenantAdmin(runtime.store, runtime.settings, runtime.catalog).create("g", daily_usd=0.02)
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        fake.state.push(tool_use("calculator", {"expression": "1+1"}))
        await client.post("/v1/teams/finance/ask", json={"question": "q"}, headers=auth)
        for _ in range(4):  # until the tiny budget refuses
            await client.post("/v1/teams/legal/ask", json={"question": "q"}, headers=auth)
        exposed = {name for name, _ in await scrape(client)}
    assert referenced, "the dashboard queries no metric"
    missing = referenced - exposed
    assert not missing, f"the dashboard queries series /metrics does not serve: {sorted(missing)}"


# --- traces ----------------------------------------------------------------------------------------------------
class ThreadServer:
    """An app under uvicorn in a thread, on a port bound before the app is built."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server: uvicorn.Server | None = None

    def start(self, app: Any) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", loop="asyncio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(5)


def test_traceparent_follows_gateway_to_team_to_consulted_team(tmp_path, model_env, fake, monkeypatch):
    monkeypatch.setenv("MULTIAGENT_INTERNAL_SIGNING_KEY", "k1:trace-test-signing-key-0123456789")
    store_url = f"sqlite:///{tmp_path}/t.db"
    gateway, finance, legal = ThreadServer(), ThreadServer(), ThreadServer()
    runtimes = []
    try:
        for server, env in (
            (legal, {"MULTIAGENT_TEAM": "legal"}),
            (finance, {"MULTIAGENT_TEAM": "finance", "MULTIAGENT_TEAM_URLS": json.dumps({"legal": legal.url})}),
            (gateway, {"MULTIAGENT_TEAM_URLS": json.dumps({"finance": finance.url, "legal": legal.url})}),
        ):
            runtime, app = build(store_url, **model_env, **env)
            runtimes.append(runtime)
            server.start(app)
        tenant, key = TenantAdmin(runtimes[0].store, runtimes[0].settings, runtimes[0].catalog).create("traced")
        fake.state.push(tool_use("consult_team", {"team": "legal", "question": "may we?"}))
        resp = httpx.post(f"{gateway.url}/v1/teams/finance/ask", json={"question": "ask legal"}, timeout=30,
                          headers={"authorization": f"Bearer {key}", "traceparent": INCOMING})
        assert resp.status_code == 200, resp.text
    finally:
        for server in (gateway, finance, legal):
            server.stop()
    events = open_store(store_url).list_audit(tenant.id, 100)
    ops = [e for e in events if e.type == "operation"]
    assert sorted(e.team for e in ops) == ["finance", "legal"]  # the gateway's forward is not a second fact
    assert all(e.detail["trace_id"] == TRACE_ID for e in ops), [e.detail for e in ops]
    assert [e.detail["tool"] for e in events if e.type == "tool"] == ["consult_team"]


class Collector:
    """A loopback OTLP/HTTP collector that keeps the decoded spans."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        spans: list[Any] = []
        self.spans = spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for rs in request.resource_spans:
                    service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                    for ss in rs.scope_spans:
                        spans.extend((service, s) for s in ss.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def collector(monkeypatch) -> Iterator[Collector]:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    c = Collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "multiagent-test")
    tracing.reset()
    yield c
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    tracing.reset()
    c.server.shutdown()


def attributes_of(span: Any) -> dict[str, Any]:
    """An exported span's attributes as Python values (OTLP AnyValue decoded)."""
    def decode(v: Any) -> Any:
        kind = v.WhichOneof("value")
        if kind == "array_value":
            return [decode(x) for x in v.array_value.values]
        return getattr(v, kind)
    return {a.key: decode(a.value) for a in span.attributes}


async def test_spans_for_operation_model_and_tool_calls_are_exported(tmp_path, model_env, fake, collector):
    runtime, app = build(f"sqlite:///{tmp_path}/o.db", **model_env)
    tenant, key = TenantAdmin(runtime.store, runtime.settings, runtime.catalog).create("spans")
    fake.state.push(tool_use("calculator", {"expression": "2**10"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        resp = await client.post("/v1/teams/finance/ask", json={"question": "2^10?"},
                                 headers={"authorization": f"Bearer {key}", "traceparent": INCOMING})
    assert resp.status_code == 200, resp.text
    tracing.flush()
    exported = [s for service, s in collector.spans if service == "multiagent-test"]
    # then the spans are named as the OpenTelemetry conventions say: the HTTP server span by its
    # route template, a model call `chat {model}`, a tool call `execute_tool {tool}`
    names = sorted(s.name for s in exported)
    assert names == ["POST /v1/teams/{team}/{operation}", "chat claude-sonnet-4-5", "chat claude-sonnet-4-5",
                     "execute_tool calculator"], names
    [server] = [s for s in exported if s.name.startswith("POST ")]
    chats = [s for s in exported if s.name.startswith("chat ")]
    [tool] = [s for s in exported if s.name.startswith("execute_tool ")]
    assert all(s.trace_id.hex() == TRACE_ID for s in exported)
    assert server.parent_span_id.hex() == "00f067aa0ba902b7"  # the caller's span
    assert all(s.parent_span_id == server.span_id for s in [*chats, tool])
    # and the server span carries the route template, never the concrete path, as http.route
    http = attributes_of(server)
    assert http["http.route"] == "/v1/teams/{team}/{operation}" and http["http.request.method"] == "POST"
    assert http["url.path"] == "/v1/teams/finance/ask" and http["http.response.status_code"] == 200
    assert http["multiagent.team"] == "finance" and http["multiagent.operation"] == "ask"
    # and each chat span has the GenAI attributes, the provider's message id and stop reason
    log = fake.state.log()
    ordered = sorted(chats, key=lambda s: s.start_time_unix_nano)
    for span, call, stop in zip(ordered, log, ["tool_use", "end_turn"], strict=True):
        a = attributes_of(span)
        assert span.kind == 3  # SPAN_KIND_CLIENT
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "anthropic"
        assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == "claude-sonnet-4-5"
        assert a["gen_ai.request.max_tokens"] == call["max_tokens"]
        assert a["gen_ai.response.id"].startswith("msg_")
        assert a["gen_ai.response.finish_reasons"] == [stop]
        assert a["gen_ai.usage.input_tokens"] == call["reported_usage"]["input_tokens"] > 0
        assert a["gen_ai.usage.output_tokens"] == call["reported_usage"]["output_tokens"] > 0
        assert a["multiagent.cost_usd"] > 0 and a["multiagent.charged"] is True
        assert span.end_time_unix_nano > span.start_time_unix_nano
    assert len({attributes_of(s)["gen_ai.response.id"] for s in chats}) == 2
    # and the tool span says what ran
    a = attributes_of(tool)
    assert a["gen_ai.operation.name"] == "execute_tool" and a["gen_ai.tool.name"] == "calculator"
    # and the chat spans' cost is what the ledger charged for the request
    ledger = runtime.store.list_ledger(tenant.id)
    assert len(ledger) == 2
    assert sum(attributes_of(s)["multiagent.cost_usd"] for s in chats) == pytest.approx(
        sum(e.cost_micros for e in ledger) / 1e6, abs=1e-12)


async def test_a_runs_chat_spans_cost_its_ledger_total(tmp_path, model_env, fake, collector):
    # given a run over three teams (a plan, three steps in parallel, a synthesis)
    runtime, app = build(f"sqlite:///{tmp_path}/r.db", **model_env)
    tenant, key = TenantAdmin(runtime.store, runtime.settings, runtime.catalog).create("run-spans")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        resp = await client.post("/v1/runs", json={"task": "Launch a budgeting app in Germany",
                                                   "teams": ["finance", "legal", "marketing"]},
                                 headers={"authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    run = resp.json()
    tracing.flush()
    # then every model call of the run has one chat span carrying the cost charged for it
    ledger = [e for e in runtime.store.list_ledger(tenant.id) if e.run_id == run["id"]]
    chats = [attributes_of(s) for service, s in collector.spans
             if service == "multiagent-test" and s.name.startswith("chat ")]
    assert len(chats) == len(ledger) == len(fake.state.log()) >= 5
    assert all(a["multiagent.charged"] is True and a["multiagent.cost_usd"] > 0 for a in chats)
    # and they add up to the run's ledger total (and to the usage the run reports)
    spans_micros = sum(round(a["multiagent.cost_usd"] * 1e6) for a in chats)
    assert spans_micros == sum(e.cost_micros for e in ledger)
    assert spans_micros / 1e6 == pytest.approx(run["usage"]["cost_usd"])
    assert sorted(round(a["multiagent.cost_usd"] * 1e6) for a in chats) == sorted(e.cost_micros for e in ledger)


async def test_a_chat_span_carries_the_worst_case_charged_for_bogus_usage(tmp_path, model_env, fake, collector):
    # given a provider that reports nonsense usage: the guard charges the call its worst case
    runtime, app = build(f"sqlite:///{tmp_path}/b.db", **model_env)
    tenant, key = TenantAdmin(runtime.store, runtime.settings, runtime.catalog).create("bogus")
    fake.state.set_billing(usage_override={"input_tokens": -3_000_000})
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            resp = await client.post("/v1/teams/legal/ask", json={"question": "q"},
                                     headers={"authorization": f"Bearer {key}"})
    finally:
        fake.state.set_billing(usage_override=None)
    assert resp.status_code == 200, resp.text
    tracing.flush()
    # then the chat span says what the provider reported and costs what the ledger charged
    [entry] = runtime.store.list_ledger(tenant.id)
    [chat] = [attributes_of(s) for _, s in collector.spans if s.name.startswith("chat ")]
    assert entry.anomaly and entry.cost_micros > 0
    assert chat["gen_ai.usage.input_tokens"] == -3_000_000
    assert round(chat["multiagent.cost_usd"] * 1e6) == entry.cost_micros


async def test_a_timed_out_attempt_is_a_chat_span_charged_unsettled(tmp_path, model_env, fake, collector):
    # given a provider whose first answer comes after the model timeout, then answers at once
    runtime, app = build(f"sqlite:///{tmp_path}/t.db", **model_env, MULTIAGENT_MODEL_TIMEOUT_S="0.3")
    tenant, key = TenantAdmin(runtime.store, runtime.settings, runtime.catalog).create("slow")
    fake.state.push(delay(1.0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        resp = await client.post("/v1/teams/legal/ask", json={"question": "q"},
                                 headers={"authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    tracing.flush()
    # then both attempts have a chat span, the timed-out one errored and charged its worst case,
    # and the spans add up to the ledger (the unsettled entry included)
    ledger = runtime.store.list_ledger(tenant.id)
    chats = [s for _, s in collector.spans if s.name.startswith("chat ")]
    assert len(chats) == len(ledger) == 2 and sum(e.unsettled for e in ledger) == 1
    assert sorted(round(attributes_of(s)["multiagent.cost_usd"] * 1e6) for s in chats) == sorted(
        e.cost_micros for e in ledger)
    assert any(attributes_of(s).get("error.type") == "Timeout" for s in chats)
