"""Orchestrated runs on real ``multiagent serve`` processes and the fake Messages API:
streaming seen by a real SSE client, a run surviving the SIGKILL of the instance that
started it, and a team served by its own function reached over HTTP with a signed envelope."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from shared.store import open_store
from tests.e2e.live_server import REPO_ROOT, LiveServer, serve_next_to, start_live_server
from tests.fakes.messages_api import error, max_overlap, tool_use

pytestmark = pytest.mark.e2e

THREE = ["marketing", "finance", "legal"]


def events_of(url: str, path: str, body: dict, headers: dict) -> list:
    with httpx.Client(timeout=60) as client, connect_sse(client, "POST", url + path, json=body,
                                                         headers=headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(e.event, json.loads(e.data)) for e in source.iter_sse()]


def run_ledger(server: LiveServer, run_id: str) -> list:
    store = open_store(server.env["MULTIAGENT_STORE"])
    try:
        return [e for e in store.list_ledger(server.tenant.tenant_id) if e.run_id == run_id]
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    live = start_live_server(tmp_path_factory.mktemp("runs-live"), fake_model=True)
    try:
        yield live
    finally:
        live.stop()


def test_sse_of_an_operation_ends_with_the_same_body_as_json(server: LiveServer):
    server.fake.reset()
    invest = {"risk_tolerance": "low", "amount": 1000}
    events = events_of(server.url, "/v1/teams/finance/analyze_investment", invest,
                       {**server.auth(), "accept": "text/event-stream"})
    names = [name for name, _ in events]
    # step.started, one model.delta + usage per model turn, step.completed, done
    assert names[0] == "step.started" and names[-2:] == ["step.completed", "done"]
    assert names.count("model.delta") == names.count("usage") == 2  # a text turn, then the forced submit
    done = events[-1][1]
    plain = httpx.post(server.url + "/v1/teams/finance/analyze_investment", json=invest, headers=server.auth(),
                       timeout=60).json()
    assert set(done) == set(plain) and done["team"] == "finance" and done["output"].keys() == plain["output"].keys()
    assert events[-2][1]["output"] == done["output"] and events[-3][1]["cost_usd"] == done["usage"]["cost_usd"]
    # the audit trail records the streamed call when its stream ended, with what it cost
    deadline = time.monotonic() + 10
    while True:
        audit = httpx.get(server.url + "/v1/audit?limit=50", headers=server.auth(), timeout=10).json()["events"]
        mine = [e for e in audit if e["request_id"] == done["id"] and e["type"] == "operation"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert mine and mine[0]["status"] == 200
    assert mine[0]["detail"]["cost_usd"] == pytest.approx(done["usage"]["cost_usd"])

    # a problem after the stream started is an `error` event carrying the problem+json
    poor = server.create_tenant("poor", "--daily-usd", "0.0001")
    events = events_of(server.url, "/v1/teams/finance/ask", {"question": "q"},
                       {**server.auth(poor.api_key), "accept": "text/event-stream"})
    assert [n for n, _ in events] == ["step.started", "error"]
    assert events[-1][1]["type"] == "/problems/budget-exceeded" and events[-1][1]["status"] == 402


def test_sse_of_a_run_over_three_teams_in_parallel(server: LiveServer):
    server.fake.reset()
    server.fake.set_default_delay(0.4)
    events = events_of(server.url, "/v1/runs", {"task": "Launch a budgeting app in Germany", "teams": THREE},
                       {**server.auth(), "accept": "text/event-stream"})
    server.fake.set_default_delay(0.0)
    names = [n for n, _ in events]
    assert names[-1] == "done" and "error" not in names
    started = [d for n, d in events if n == "step.started"]
    completed = [d for n, d in events if n == "step.completed"]
    assert sorted(d["team"] for d in started) == sorted(THREE) == sorted(d["team"] for d in completed)
    # all three steps started before the first one completed: they ran in parallel...
    assert names.index("step.completed") > max(i for i, n in enumerate(names) if n == "step.started")
    assert {"model.delta", "usage"} <= set(names)
    # ...which the model's side saw too (the fake's log of a separate process)
    log = server.fake.log()
    steps = [e for e in log if not (e["body"].get("system") or "").startswith(("You plan", "You write"))]
    assert len(steps) == 3 and max_overlap(steps) == 3
    # the final event is the run's body, the same GET returns, and its usage is the ledger's
    done = events[-1][1]
    assert done["status"] == "succeeded" and done["answer"]
    got = httpx.get(f"{server.url}/v1/runs/{done['id']}", headers=server.auth(), timeout=10).json()
    assert got == done
    ledger = run_ledger(server, done["id"])
    assert len(ledger) == len(log)
    assert done["usage"]["cost_usd"] == pytest.approx(sum(e.cost_micros for e in ledger) / 1e6)
    assert done["usage"]["input_tokens"] == sum(e.input_tokens for e in ledger)


def test_async_run_survives_the_sigkill_of_its_instance(tmp_path: Path):
    # given two instances on one store, with short leases
    first = start_live_server(tmp_path / "a", fake_model=True, env={"MULTIAGENT_RUN_LEASE_S": "1.5"})
    second = serve_next_to(first, "b")
    try:
        first.fake.set_default_delay(3.0)  # auto answers (the steps) are slow; the scripted plan is not
        first.fake.push(tool_use("submit_plan", {"steps": [
            {"id": t, "team": t, "operation": "ask", "input": {"question": f"{t}: assess a market entry"}}
            for t in THREE]}))
        # when a long run starts on the first one
        resp = httpx.post(first.url + "/v1/runs", json={"task": "Assess a market entry", "teams": THREE},
                          headers={**first.auth(), "prefer": "respond-async"}, timeout=30)
        assert resp.status_code == 202, resp.text
        run_id, location = resp.json()["id"], resp.headers["location"]
        deadline = time.monotonic() + 30
        while sum(1 for e in first.fake.log() if e["finished_at"] is None) < 3:  # the three steps are at the model
            assert time.monotonic() < deadline, first.log_tail()
            time.sleep(0.05)
        # and that instance is killed mid-run
        first.proc.kill()
        first.proc.wait(10)
        store = open_store(first.env["MULTIAGENT_STORE"])
        run_key = f"run:{run_id}"
        assert store.get_windows(first.tenant.tenant_id, [run_key])[0].reserved_micros > 0  # held by the dead one
        first.fake.set_default_delay(0.1)
        # then the other instance reads it, takes it over once its lease lapsed, and finishes it
        deadline = time.monotonic() + 40
        while True:
            body = httpx.get(second.url + location, headers=first.auth(), timeout=10).json()
            if body["status"] in ("succeeded", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, (body, second.log_tail())
            time.sleep(0.25)
        assert body["status"] == "succeeded" and body["answer"], body
        assert all(s["status"] == "succeeded" for s in body["steps"])
        # and no reservation leaked: not in the run's window, not in the tenant's day or month
        from shared.budget import day_key, month_key

        now = time.time()
        windows = store.get_windows(first.tenant.tenant_id, [run_key, day_key(now), month_key(now)])
        assert [w.reserved_micros for w in windows] == [0, 0, 0]
        # and the run's usage is what the ledger charged for it (the dead instance's settled calls included)
        ledger = [e for e in store.list_ledger(first.tenant.tenant_id) if e.run_id == run_id]
        assert body["usage"]["cost_usd"] == pytest.approx(sum(e.cost_micros for e in ledger) / 1e6)
        assert windows[0].spent_micros == sum(e.cost_micros for e in ledger)
        store.close()
    finally:
        second.stop()
        first.stop()


def test_a_team_in_its_own_function_is_reached_with_a_signed_envelope(tmp_path: Path):
    key = {"MULTIAGENT_INTERNAL_SIGNING_KEY": "k1:e2e-signing-secret-0123456789"}
    # the legal team's own function, and a gateway that routes legal to it (one store, one fake model)
    legal = start_live_server(tmp_path / "legal", fake_model=True, env={**key, "MULTIAGENT_TEAM": "legal"})
    gateway = legal  # tenant, store and fake are shared
    routed = serve_next_to(legal, "gateway", MULTIAGENT_TEAM="", MULTIAGENT_TEAM_URLS=json.dumps({"legal": legal.url}))
    try:
        resp = httpx.post(routed.url + "/v1/runs", json={"task": "Is our launch compliant?",
                                                         "teams": ["finance", "legal"]},
                          headers=gateway.auth(), timeout=60)
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "succeeded", body
        assert {s["team"]: s["status"] for s in body["steps"]} == {"finance": "succeeded", "legal": "succeeded"}
        # legal's model call was made by the legal function, under the run's envelope
        ledger = run_ledger(gateway, body["id"])
        assert {e.team for e in ledger} >= {"orchestrator", "finance", "legal"}
        assert body["usage"]["cost_usd"] == pytest.approx(sum(e.cost_micros for e in ledger) / 1e6)
        # a forged envelope sent straight to the team's function is refused
        forged = "v1.k1.e30.AAAA"
        refused = httpx.post(legal.url + "/v1/teams/legal/ask", json={"question": "q"},
                             headers={"x-multiagent-envelope": forged}, timeout=10)
        assert refused.status_code == 403 and refused.json()["type"] == "/problems/forbidden"
        # and the step really crossed HTTP: with the legal function gone, it fails in place
        legal.proc.terminate()
        legal.proc.wait(10)
        body = httpx.post(routed.url + "/v1/runs", json={"task": "Is it compliant?", "teams": ["legal"]},
                          headers=gateway.auth(), timeout=60).json()
        (step,) = body["steps"]
        assert step["status"] == "failed" and step["error"]["status"] == 503 and body["answer"]
    finally:
        routed.stop()
        legal.stop()


def _plan_a_then_b() -> object:
    return tool_use("submit_plan", {"steps": [
        {"id": "a", "team": "finance", "operation": "ask", "input": {"question": "q1"}},
        {"id": "b", "team": "legal", "operation": "ask", "input": {"question": "q2"}, "depends_on": ["a"]}]})


def test_runs_end_succeeded_partial_or_failed_and_are_listed_newest_first(server: LiveServer):
    server.fake.reset()
    lister = server.create_tenant("lister", "--rpm", "10000", "--tpm", "100000000")
    auth = server.auth(lister.api_key)

    def post(body: dict) -> dict:
        resp = httpx.post(server.url + "/v1/runs", json=body, headers=auth, timeout=60)
        assert resp.status_code == 200, resp.text
        return resp.json()

    # a run whose every step succeeded
    ok = post({"task": "Is a budgeting app a good idea?", "teams": ["finance"]})
    assert ok["status"] == "succeeded" and "error" not in ok
    # a run with one step failed at the model (a 400 is not retried) and one that succeeded: partial
    server.fake.push(_plan_a_then_b(), error(400, message="bad request for this step"))
    partial = post({"task": "Check the plan"})
    assert partial["status"] == "partial" and partial["answer"] and "error" not in partial, partial
    assert [(s["id"], s["status"]) for s in partial["steps"]] == [("a", "failed"), ("b", "succeeded")]
    # a run whose every call is refused by its cap: failed, with the refusal as its error
    failed = post({"task": "Plan", "teams": ["finance"], "max_usd": 0.0001})
    assert failed["status"] == "failed" and [s["status"] for s in failed["steps"]] == ["refused"], failed
    assert failed["error"]["type"] == "/problems/budget-exceeded" and "no step succeeded" in failed["error"]["detail"]

    # GET /v1/runs: the tenant's runs, newest first, paged
    first = httpx.get(server.url + "/v1/runs", params={"limit": 2}, headers=auth, timeout=10)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [(r["id"], r["status"]) for r in page["runs"]] == [(failed["id"], "failed"), (partial["id"], "partial")]
    assert page["runs"][1]["steps"] == [{"id": "a", "team": "finance", "operation": "ask", "status": "failed"},
                                        {"id": "b", "team": "legal", "operation": "ask", "status": "succeeded"}]
    assert "answer" not in page["runs"][0] and page["runs"][0]["error"]["status"] == 402
    rest = httpx.get(server.url + "/v1/runs", params={"limit": 2, "before": page["next"]}, headers=auth,
                     timeout=10).json()
    assert [r["id"] for r in rest["runs"]] == [ok["id"]] and "next" not in rest
    assert rest["runs"][0]["usage"]["cost_usd"] == ok["usage"]["cost_usd"] > 0
    # another tenant sees none of them; bad paging is a 422, no key a 401
    theirs = httpx.get(server.url + "/v1/runs", params={"limit": 200}, headers=server.auth(), timeout=10).json()
    assert not {r["id"] for r in theirs["runs"]} & {ok["id"], partial["id"], failed["id"]}
    for bad in ({"limit": 0}, {"limit": 201}, {"limit": "ten"}):
        refused = httpx.get(server.url + "/v1/runs", params=bad, headers=auth, timeout=10)
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["loc"] == ["query", "limit"]
    assert httpx.get(server.url + "/v1/runs", timeout=10).status_code == 401
    # and the OpenAPI document has the path
    spec = httpx.get(server.url + "/openapi.json", timeout=10).json()
    assert spec["paths"]["/v1/runs"]["get"]["operationId"] == "list_runs"


def _cli(server: LiveServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=REPO_ROOT, env={**server.env, **env},
                          capture_output=True, text=True, timeout=120)


def test_cli_run_against_the_server_in_process_and_following_its_events(server: LiveServer):
    server.fake.reset()
    cli_tenant = server.create_tenant("cli-runs", "--rpm", "10000", "--tpm", "100000000")
    key = cli_tenant.api_key

    def listed() -> list[dict]:
        return httpx.get(server.url + "/v1/runs", headers=server.auth(key), timeout=10).json()["runs"]

    # --api-url: the server runs it; stderr says where, stdout is the run
    out = _cli(server, "run", "Is a budgeting app a good idea?", "--teams", "finance", "--api-url", server.url,
               "--api-key", key, "--json")
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    assert run["status"] == "succeeded" and run["answer"] and f"at {server.url}" in out.stderr
    assert listed()[0]["id"] == run["id"]

    # MULTIAGENT_API_URL and MULTIAGENT_API_KEY, --follow: each event printed as it happens, then the run
    server.fake.set_default_delay(0.6)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "run", "Launch it", "--teams", "finance,legal",
                                 "--follow"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**server.env, "MULTIAGENT_API_URL": server.url, "MULTIAGENT_API_KEY": key})
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the first event line arrives
        first_at = time.monotonic()
        rest, err = proc.communicate(timeout=120)
        ended_at = time.monotonic()
    finally:
        server.fake.set_default_delay(0.0)
    assert proc.returncode == 0, err
    assert first.startswith("[plan]") or " started" in first, first
    assert ended_at - first_at > 0.5  # streamed while the steps were still at the model, not printed at the end
    lines = (first + rest).splitlines()
    assert any(line.endswith("finance/ask started") or "finance/" in line and "started" in line for line in lines)
    assert any("legal/" in line and " succeeded" in line for line in lines)
    assert "2 of 2 steps succeeded" in lines[-1] and "MULTIAGENT_API_URL" in err
    # --follow --json: one JSON event per line, the last one `done` with the run
    out = _cli(server, "run", "Launch it", "--teams", "finance", "--follow", "--json", "--api-url", server.url,
               "--api-key", key)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0 and events[0]["event"] in ("model.delta", "usage", "step.started"), out.stderr
    assert events[-1]["event"] == "done" and events[-1]["data"]["status"] == "succeeded"
    assert {"step.started", "step.completed"} <= {e["event"] for e in events}

    # a partial run exits 3, a failed one 1, each with one line on stderr saying why
    server.fake.push(_plan_a_then_b(), error(400, message="bad request for this step"))
    out = _cli(server, "run", "Check the plan", "--api-url", server.url, "--api-key", key)
    assert out.returncode == 3, out.stderr
    assert "partial: 1 of 2 steps succeeded" in out.stdout and out.stderr.splitlines()[-1].endswith("a failed")
    out = _cli(server, "run", "Plan", "--teams", "finance", "--max-usd", "0.0001", "--api-url", server.url,
               "--api-key", key)
    assert out.returncode == 1 and "failed: no step succeeded" in out.stderr.splitlines()[-1], out.stderr
    # bad input is one line before anything is sent
    for args, word in ((("--max-usd", "-1"), "max_usd"), (("--max-usd", "lots"), "max_usd"),
                       (("--teams", ","), "--teams")):
        out = _cli(server, "run", "Plan", *args, "--api-url", server.url, "--api-key", key)
        assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1 and word in out.stderr, out.stderr

    # without a URL: in-process on the same store (the server is not involved), and it says so
    before = len(server.fake.log())
    out = _cli(server, "run", "Is it compliant?", "--teams", "legal", "--api-key", key, "--json")
    assert out.returncode == 0, out.stderr
    assert "in-process" in out.stderr and "--api-url" in out.stderr
    run = json.loads(out.stdout)
    assert run["status"] == "succeeded" and len(server.fake.log()) > before  # the model was called from the CLI
    assert listed()[0]["id"] == run["id"]  # and the run is in the shared store, where the server reads it
    ours = httpx.get(server.url + f"/v1/runs/{run['id']}", headers=server.auth(key), timeout=10).json()
    assert ours["answer"] == run["answer"]
