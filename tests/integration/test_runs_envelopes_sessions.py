"""Orchestrated runs, signed envelopes, sessions and the cheaper-model policy, on the
in-process app with the fake Messages API (real SDK, real token costs)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from shared.envelope import HEADER, Envelope
from tests.fakes.messages_api import error, max_overlap, tool_use
from tests.helpers import local_app

pytestmark = pytest.mark.integration

THREE = ["marketing", "finance", "legal"]


def run_ledger(app, tenant_id: str, run_id: str) -> list:
    return [e for e in app.runtime.store.list_ledger(tenant_id) if e.run_id == run_id]


def kind(entry: dict) -> str:
    system = entry["body"].get("system") or ""
    return "plan" if system.startswith("You plan") else "synthesis" if system.startswith("You write") else "step"


async def test_run_over_three_teams_runs_steps_in_parallel_and_usage_is_the_ledger(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        tenant_id, key = app.tenant()
        fake.state.default_delay = 0.3
        # when a run over three named teams is posted
        resp = await app.client.post("/v1/runs", json={"task": "Launch a budgeting app in Germany", "teams": THREE},
                                     headers={"authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        # then every team contributed a step, all succeeded, and the run answered
        assert body["status"] == "succeeded" and body["answer"]
        assert sorted(s["team"] for s in body["steps"]) == sorted(THREE)
        assert all(s["status"] == "succeeded" and s["output"] for s in body["steps"])
        assert resp.headers["location"] == f"/v1/runs/{body['id']}"
        # and the three steps were in flight at the same time on the model's side
        log = fake.state.log()
        assert [kind(e) for e in log][0] == "plan" and [kind(e) for e in log][-1] == "synthesis"
        assert max_overlap([e for e in log if kind(e) == "step"]) == 3
        # and the run's usage is exactly the ledger's entries for its id, one per model call
        ledger = run_ledger(app, tenant_id, body["id"])
        assert len(ledger) == len(log)
        assert body["usage"]["input_tokens"] == sum(e.input_tokens for e in ledger) > 0
        assert body["usage"]["output_tokens"] == sum(e.output_tokens for e in ledger)
        assert body["usage"]["cost_usd"] == pytest.approx(sum(e.cost_micros for e in ledger) / 1e6)
        # and it is the sum of what the planner, the steps and the synthesis reported
        parts = [body["plan"]["usage"], body["synthesis"]["usage"]] + [s["usage"] for s in body["steps"]]
        assert sum(p["input_tokens"] for p in parts) == body["usage"]["input_tokens"]
        assert sum(p["cost_usd"] for p in parts) == pytest.approx(body["usage"]["cost_usd"])
        # and GET reads the persisted run; another tenant cannot
        again = await app.client.get(f"/v1/runs/{body['id']}", headers={"authorization": f"Bearer {key}"})
        assert again.json()["answer"] == body["answer"]
        _, other = app.tenant("other")
        assert (await app.client.get(f"/v1/runs/{body['id']}",
                                     headers={"authorization": f"Bearer {other}"})).status_code == 404


async def test_plan_is_validated_dependent_steps_get_results_and_failures_stay_in_place(tmp_path, model_env, fake):
    plan = {"steps": [
        {"id": "s1", "team": "finance", "operation": "analyze_investment",
         "input": {"risk_tolerance": "low", "amount": 5000}},
        {"id": "s2", "team": "legal", "operation": "ask", "input": {"question": "Any issue with this? {{step:s1}}"},
         "depends_on": ["s1"]},
        {"id": "s3", "team": "marketing", "operation": "no_such_operation", "input": {}},
        {"id": "s4", "team": "no-such-team", "operation": "ask", "input": {"question": "x"}},
        {"id": "s5", "team": "finance", "operation": "analyze_investment", "input": {"risk_tolerance": "extreme"},
         "depends_on": ["s9"]},
    ]}
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant()
        fake.state.push(tool_use("submit_plan", plan))
        resp = await app.client.post("/v1/runs", json={"task": "Invest 5000 safely"},
                                     headers={"authorization": f"Bearer {key}"})
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "succeeded", body
        steps = {s["id"]: s for s in body["steps"]}
        # an unknown team is dropped with its reason; an unknown operation or an invalid input becomes `ask`
        assert body["plan"]["dropped"] == [{"step": "s4", "reason": "unknown team 'no-such-team'"}]
        assert steps["s3"]["operation"] == "ask" and "no_such_operation" in steps["s3"]["note"]
        assert steps["s5"]["operation"] == "ask" and "risk_tolerance" in steps["s5"]["note"]
        assert "depends_on" not in steps["s5"]  # a dependency on an unknown step is removed
        assert steps["s1"]["operation"] == "analyze_investment" and steps["s1"]["status"] == "succeeded"
        # the dependent step ran after s1 and its question carried s1's result
        s2_request = next(e for e in fake.state.log() if "Any issue with this?" in json.dumps(e["body"]["messages"]))
        assert json.dumps(steps["s1"]["output"], separators=(",", ":"))[:40] in \
            s2_request["body"]["messages"][0]["content"].replace('\\"', '"')
        assert steps["s2"]["started_at"] >= steps["s1"]["finished_at"]

        # given a plan whose first step fails at the model
        fake.state.reset()
        fake.state.push(tool_use("submit_plan", {"steps": [
            {"id": "a", "team": "finance", "operation": "ask", "input": {"question": "q1"}},
            {"id": "b", "team": "legal", "operation": "ask", "input": {"question": "q2"}, "depends_on": ["a"]}]}),
            error(400, message="bad request for this step"))
        resp = await app.client.post("/v1/runs", json={"task": "t"}, headers={"authorization": f"Bearer {key}"})
        body = resp.json()
        # then the failure is reported in place and the run still answers
        a, b = body["steps"]
        assert a["status"] == "failed" and a["error"]["status"] == 502
        assert b["status"] == "succeeded" and body["status"] == "partial" and body["answer"]
        b_request = next(e for e in fake.state.log() if "q2" in json.dumps(e["body"]["messages"]))
        assert "step a failed" in b_request["body"]["messages"][0]["content"]


async def test_a_run_with_max_usd_never_settles_more(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        tenant_id, key = app.tenant()
        # given a cap that fits the planner but not three full-size steps at once
        cap = 0.12
        resp = await app.client.post("/v1/runs", json={"task": "Plan a launch", "teams": THREE, "max_usd": cap},
                                     headers={"authorization": f"Bearer {key}"})
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "succeeded", body
        assert all(s["status"] == "succeeded" for s in body["steps"])
        # then each parallel step got its share of what was left, so its output was shortened to fit
        steps = [e for e in fake.state.log() if kind(e) == "step"]
        assert len(steps) == 3 and all(e["max_tokens"] < 2048 for e in steps)
        # and the run never settled past its cap, and holds nothing afterwards
        ledger = run_ledger(app, tenant_id, body["id"])
        spent = sum(e.cost_micros for e in ledger)
        assert 0 < spent <= cap * 1e6
        (window,) = app.runtime.store.get_windows(tenant_id, [f"run:{body['id']}"])
        assert window.spent_micros == spent and window.reserved_micros == 0

        # a cap too small for anything: every call refused, nothing settled, and the run still answers
        resp = await app.client.post("/v1/runs", json={"task": "Plan", "teams": ["finance"], "max_usd": 0.0001},
                                     headers={"authorization": f"Bearer {key}"})
        body = resp.json()
        assert body["plan"]["error"]["window"] == "run"
        assert [s["status"] for s in body["steps"]] == ["refused"]
        # and a run none of whose steps succeeded is failed, with the refusal as its error
        assert body["status"] == "failed" and body["error"]["type"] == "/problems/budget-exceeded", body
        assert "no step succeeded" in body["error"]["detail"]
        assert body["synthesis"]["fallback"] is True and body["answer"]
        assert run_ledger(app, tenant_id, body["id"]) == []


async def test_async_run_is_read_by_id_and_delete_cancels_and_charges(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env, MULTIAGENT_RUN_LEASE_S="1") as app:
        tenant_id, key = app.tenant()
        auth = {"authorization": f"Bearer {key}"}
        # given an async run
        resp = await app.client.post("/v1/runs", json={"task": "t", "teams": ["finance", "legal"]},
                                     headers={**auth, "prefer": "respond-async"})
        assert resp.status_code == 202 and resp.headers["preference-applied"] == "respond-async"
        location = resp.headers["location"]
        # then it finishes in the background and GET shows it
        for _ in range(200):
            body = (await app.client.get(location, headers=auth)).json()
            if body["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.05)
        assert body["status"] == "succeeded" and len(body["steps"]) == 2

        # given a slow async run (planned at once, its steps slow), cancelled while its steps are at the model
        fake.state.default_delay = 5.0
        fake.state.push(tool_use("submit_plan", {"steps": [
            {"id": "a", "team": "finance", "operation": "ask", "input": {"question": "q1"}},
            {"id": "b", "team": "legal", "operation": "ask", "input": {"question": "q2"}}]}))
        resp = await app.client.post("/v1/runs", json={"task": "t"}, headers={**auth, "prefer": "respond-async"})
        run_id = resp.json()["id"]
        for _ in range(500):
            if sum(1 for e in fake.state.log() if e["finished_at"] is None) >= 2:
                break
            await asyncio.sleep(0.02)
        key = f"run:{run_id}"
        assert app.runtime.store.get_windows(tenant_id, [key])[0].reserved_micros > 0
        cancelled = await app.client.delete(f"/v1/runs/{run_id}", headers=auth)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        # then its in-flight reservations are charged at once (the provider may bill the steps'
        # requests: never released), unsettled, and it stays cancelled
        assert app.runtime.store.get_windows(tenant_id, [key])[0].reserved_micros == 0
        steps = [e for e in run_ledger(app, tenant_id, run_id) if e.operation == "ask"]
        assert len(steps) == 2 and all(e.unsettled for e in steps)
        await asyncio.sleep(1.0)
        final = (await app.client.get(f"/v1/runs/{run_id}", headers=auth)).json()
        assert final["status"] == "cancelled" and {s["status"] for s in final["steps"]} == {"cancelled"}
        # and when the steps' requests are answered, their real cost replaces the worst case
        fake.state.default_delay = 0.0
        for _ in range(200):
            ledger = run_ledger(app, tenant_id, run_id)
            if not any(e.unsettled for e in ledger):
                break
            await asyncio.sleep(0.05)
        (window,) = app.runtime.store.get_windows(tenant_id, [key])
        assert sorted(e.operation for e in ledger) == ["ask", "ask", "plan"] and not any(e.unsettled for e in ledger)
        assert window.reserved_micros == 0 and window.spent_micros == sum(e.cost_micros for e in ledger)


def _forge(parent: Envelope, keyring, **claims) -> Envelope:  # type: ignore[no-untyped-def]
    base = {"tenant": parent.tenant, "run_id": parent.run_id, "budget_micros": parent.budget_micros,
            "deadline": parent.deadline, "depth": parent.depth + 1, "chain": parent.chain + ("finance",),
            "parent": parent}
    return Envelope(**{**base, **claims})._signed(keyring)


async def test_envelope_refusals_over_http(tmp_path, model_env, fake, monkeypatch):
    monkeypatch.setenv("MULTIAGENT_INTERNAL_SIGNING_KEY", "k1:integration-secret-0123456789")
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        tenant_id, key = app.tenant()
        other_id, _ = app.tenant("other")
        keyring = await app.runtime.operations.keyring()
        assert keyring.signing_kid == "k1"
        now = time.time()
        origin = Envelope.root(keyring, tenant=tenant_id, run_id="run_env", budget_micros=1_000_000,
                               deadline=now + 60)

        raw = json.dumps({"question": "q"}).encode()

        def hop(env: Envelope, operation: str = "ask", body: bytes = raw) -> str:
            """The wire credential a calling team would send (bound to operation and body)."""
            return env.for_hop(keyring, operation, body).token

        async def post(envelope: str, api_key: str | None = None, team: str = "finance", body: bytes = raw,
                       operation: str = "ask"):
            headers = {HEADER: envelope, "content-type": "application/json",
                       **({"authorization": f"Bearer {api_key}"} if api_key else {})}
            return await app.client.post(f"/v1/teams/{team}/{operation}", content=body, headers=headers)

        # a valid hop credential is accepted without an API key, and its run id reaches the ledger
        ok = await post(hop(origin.child(keyring, "finance", 500_000)))
        assert ok.status_code == 200, ok.text
        assert [e.run_id for e in app.runtime.store.list_ledger(tenant_id)] == ["run_env"]
        good = hop(origin.child(keyring, "finance", 500_000))
        v, kid, payload, sig = good.split(".")
        deep = Envelope.root(keyring, tenant=tenant_id, run_id="r", budget_micros=10**6, deadline=now + 60,
                             chain=("t0",))
        for i in range(1, 4):
            deep = deep.child(keyring, f"t{i}" if i < 3 else "legal", 10**6)
        refusals = {
            "forged": ".".join([v, kid, payload, sig[:-3] + ("AAA" if sig[-3:] != "AAA" else "BBB")]),
            "expired": hop(Envelope.root(keyring, tenant=tenant_id, run_id="r", budget_micros=10**6,
                                         deadline=now - 1).child(keyring, "finance", 10)),
            "widened budget": hop(_forge(origin, keyring, budget_micros=2_000_000)),
            "widened deadline": hop(_forge(origin, keyring, deadline=now + 3_600)),
            "depth not incremented": hop(_forge(origin, keyring, depth=0)),
            "depth past the limit": hop(deep.child(keyring, "finance", 10)),
            "cycle": hop(Envelope.root(keyring, tenant=tenant_id, run_id="r", budget_micros=10**6, deadline=now + 60,
                                       chain=("finance",)).child(keyring, "legal", 10).child(keyring, "finance", 10)),
            "another tenant's": hop(Envelope.root(keyring, tenant=other_id, run_id="r", budget_micros=10**6,
                                                  deadline=now + 60).child(keyring, "finance", 10)),
            "a plain envelope (no hop credential)": origin.child(keyring, "finance", 10).token,
            "an origin envelope": Envelope.root(keyring, tenant=tenant_id, run_id="r", budget_micros=10**6,
                                                deadline=now + 60, chain=("finance",)).token,
            "issued for another operation": hop(origin.child(keyring, "finance", 10), operation="review_budget"),
            "issued for another body": hop(origin.child(keyring, "finance", 10), body=b'{"question": "other"}'),
        }
        for name, token in refusals.items():
            resp = await post(token, key)
            assert resp.status_code == 403, (name, resp.text)
            assert resp.json()["type"] == "/problems/forbidden", name
        assert (await post(good, key, team="legal")).status_code == 403  # addressed to another team
        # used once above: a replay is refused, with or without an API key, and charges nothing
        before = len(app.runtime.store.list_ledger(tenant_id))
        used = hop(origin.child(keyring, "finance", 500_000))
        assert (await post(used)).status_code == 200
        assert len(app.runtime.store.list_ledger(tenant_id)) == before + 1
        for api_key in (None, key):
            replay = await post(used, api_key)
            assert replay.status_code == 403 and "already used" in replay.json()["detail"]
        assert len(app.runtime.store.list_ledger(tenant_id)) == before + 1
        # an envelope alone opens no client session
        sess = await app.client.post("/v1/teams/finance/ask", content=raw, headers={
            HEADER: hop(origin.child(keyring, "finance", 500_000)), "content-type": "application/json",
            "x-session-id": "victim-session"})
        assert sess.status_code == 403 and "session" in sess.json()["detail"]

        # the envelope's budget is enforced on the model call (402, window "run")
        tight = await post(hop(origin.child(keyring, "finance", 50)))
        assert tight.status_code == 402 and tight.json()["window"] == "run"


async def test_consult_team_signs_a_narrower_envelope_and_counts_the_callee(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        tenant_id, key = app.tenant()
        fake.state.push(tool_use("consult_team", {"team": "legal", "question": "Is this campaign legal?"}))
        resp = await app.call("marketing", "ask", {"question": "Plan a campaign"}, key)
        body = resp.json()
        assert resp.status_code == 200, body
        ledger = app.runtime.store.list_ledger(tenant_id)
        legal = [e for e in ledger if e.team == "legal"]
        # the consulted team ran under the caller's envelope (its run id is the calling request)
        assert len(legal) == 1 and legal[0].run_id == body["id"]
        # and the caller's usage includes what the consultation cost
        assert body["usage"]["cost_usd"] == pytest.approx(sum(e.cost_micros for e in ledger) / 1e6)
        windows = app.runtime.store.get_windows(tenant_id, [f"run:{body['id']}"])
        assert windows[0].spent_micros == legal[0].cost_micros and windows[0].reserved_micros == 0


async def test_sessions_remember_per_tenant_and_concurrent_turns_lose_nothing(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key_a = app.tenant("a")
        _, key_b = app.tenant("b")
        sid = {"x-session-id": "shared-session-name"}
        first = await app.call("finance", "ask", {"question": "My budget is 4711 euros."}, key_a, **sid)
        assert first.status_code == 200
        await app.call("finance", "ask", {"question": "What was my budget?"}, key_a, **sid)
        # the second turn of tenant A saw the first one
        assert "4711" in json.dumps(fake.state.log()[-1]["body"]["messages"])
        # tenant B sending the same session id sees nothing of A's, and cannot read it
        await app.call("finance", "ask", {"question": "What was my budget?"}, key_b, **sid)
        assert "4711" not in json.dumps(fake.state.log()[-1]["body"]["messages"])
        assert (await app.client.get("/v1/sessions/shared-session-name",
                                     headers={"authorization": f"Bearer {key_b}"})).json()["messages"][0][
            "content"].endswith('"What was my budget?"}')
        mine = (await app.client.get("/v1/sessions/shared-session-name",
                                     headers={"authorization": f"Bearer {key_a}"})).json()
        assert len(mine["messages"]) == 4 and "4711" in mine["messages"][0]["content"]
        # 20 concurrent turns on one session: every message is kept
        _, key_c = app.tenant("c", rpm=100)
        race = {"x-session-id": "race"}
        results = await asyncio.gather(*(app.call("legal", "ask", {"question": f"turn {i}"}, key_c, **race)
                                         for i in range(20)))
        assert [r.status_code for r in results] == [200] * 20
        session = (await app.client.get("/v1/sessions/race", headers={"authorization": f"Bearer {key_c}"})).json()
        users = [m["content"] for m in session["messages"] if m["role"] == "user"]
        assert sorted(users) == sorted(f'legal/ask: {{"question": "turn {i}"}}' for i in range(20))
        assert session["version"] == 20 and len(session["messages"]) == 40
        assert (await app.client.get("/v1/sessions/bad id", headers={"authorization": f"Bearer {key_c}"})
                ).status_code == 404


async def test_cheaper_model_when_the_budget_cannot_pay_the_default(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        tenant_id, key = app.tenant(daily_usd=0.02, on_low_budget="cheaper_model")
        # finance's default is claude-sonnet-4-5: its worst case (2048 output tokens alone cost $0.03) cannot fit
        resp = await app.call("finance", "ask", {"question": "Should I buy bonds?"}, key)
        body = resp.json()
        assert resp.status_code == 200, body
        assert body["model"] == "claude-haiku-4-5"
        assert body["degraded"]["model"] == "claude-haiku-4-5" and body["degraded"]["from"] == "claude-sonnet-4-5"
        assert "day budget" in body["degraded"]["reason"]
        assert fake.state.log()[-1]["model"] == "claude-haiku-4-5" and fake.state.log()[-1]["max_tokens"] == 2048
        events = app.runtime.store.list_audit(tenant_id)
        assert any(e.type == "budget.degraded" and e.detail["model"] == "claude-haiku-4-5" for e in events)
        # the default policy shortens the answer instead (or refuses), never switching models
        _, strict = app.tenant("strict", daily_usd=0.02)
        resp = await app.call("finance", "ask", {"question": "Should I buy bonds?"}, strict)
        assert "degraded" not in resp.json() and fake.state.log()[-1]["model"] == "claude-sonnet-4-5"


async def test_distributed_mode_without_a_signing_key_is_a_configuration_error(tmp_path, model_env, fake,
                                                                               monkeypatch):
    monkeypatch.delenv("MULTIAGENT_INTERNAL_SIGNING_KEY", raising=False)
    urls = json.dumps({"legal": "http://127.0.0.1:9"})
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env, MULTIAGENT_TEAM_URLS=urls) as app:
        _, key = app.tenant()
        # an operation that consults another team: the first team-to-team call fails loudly, never unsigned
        fake.state.push(tool_use("consult_team", {"team": "legal", "question": "q"}))
        resp = await app.call("marketing", "ask", {"question": "q"}, key)
        assert resp.status_code == 500 and resp.json()["type"] == "/problems/internal"  # logged with the cause
        assert len(fake.state.log()) == 1  # nothing was called after the refusal to sign
        # a run records the same problem and does not call any team
        resp = await app.client.post("/v1/runs", json={"task": "t", "teams": ["finance"]},
                                     headers={"authorization": f"Bearer {key}"})
        body = resp.json()
        assert body["status"] == "failed" and "internal-signing-key" in body["error"]["detail"]
        assert len(fake.state.log()) == 1
