"""The audit trail: exactly one event per fact, sizes and hashes instead of content,
content (redacted) only for a tenant that turned it on, paging, and the CLI."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from shared.cli import main as cli_main
from shared.observability.audit import digest
from shared.store.base import AuditEvent
from tests.fakes.messages_api import tool_use
from tests.helpers import local_app

pytestmark = pytest.mark.integration

ADMIN = "audit-admin-key-0123456789"


@pytest.fixture
def admin_model_env(model_env):
    return {**model_env, "MULTIAGENT_ADMIN_KEY": ADMIN}


SECRET_IN_QUESTION = "my key is sk-ant-api03-Zq9vT3xK1mN7pL2wR8sY4uB6cD0eF5gH and password=hunter22"


def events_of(app, tenant_id: str) -> list[AuditEvent]:
    return app.runtime.store.list_audit(tenant_id, 1000)


def kinds(events: list[AuditEvent], request_id: str) -> Counter[str]:
    return Counter(e.type for e in events if e.request_id == request_id)


async def test_one_event_per_fact(tmp_path, admin_model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/a.db", **admin_model_env) as app:
        admin = {"authorization": f"Bearer {ADMIN}"}
        # admin actions over the admin API: created, updated, key issued, keys revoked
        created = (
            await app.client.post(
                "/v1/admin/tenants",
                json={"name": "acme", "alert_threshold": 0.0001, "monthly_usd": 5000},
                headers=admin,
            )
        ).json()
        tid, key = created["tenant_id"], created["api_key"]
        assert (await app.client.patch(f"/v1/admin/tenants/{tid}", json={"rpm": 100}, headers=admin)).status_code == 200
        spare = (await app.client.post(f"/v1/admin/tenants/{tid}/keys", headers=admin)).json()["api_key"]

        # 1. an operation with a successful tool call (and the day's alert threshold crossed on the way)
        fake.state.push(tool_use("calculator", {"expression": "(1200 - 300) * 2"}))
        ok = await app.call("finance", "ask", {"question": "what is 1800?"}, key)
        assert ok.status_code == 200, ok.text
        # 2. a failing tool call
        fake.state.push(tool_use("calculator", {"expression": "__import__('os')"}))
        failed_tool = await app.call("finance", "ask", {"question": "break it"}, key)
        # 3. a tool outside the team's allow-list: a permission denial, not a tool run
        fake.state.push(tool_use("calculator", {"expression": "1+1"}))
        denied_tool = await app.call("legal", "ask", {"question": "add"}, spare)
        # 4. a consultation in-process: the callee's operation is audited under its own request id
        fake.state.push(tool_use("consult_team", {"team": "legal", "question": "is this allowed?"}))
        consult = await app.call("finance", "ask", {"question": "check with legal"}, key)
        for resp in (failed_tool, denied_tool, consult):
            assert resp.status_code == 200, resp.text
        revoked = await app.client.delete(f"/v1/admin/tenants/{tid}/keys", headers=admin)
        assert revoked.json()["revoked"] == 2

        # refusals, on tenants of their own
        _, narrow_key = app.tenant("narrow", teams=["legal"])
        forbidden = await app.call("finance", "ask", {"question": "q"}, narrow_key)
        slow_id, slow_key = app.tenant("slow", rpm=1)
        first = await app.call("legal", "ask", {"question": "q"}, slow_key)
        limited = await app.call("legal", "ask", {"question": "q"}, slow_key)
        poor_id, poor_key = app.tenant("poor", daily_usd=0.000001)
        broke = await app.call("legal", "ask", {"question": "q"}, poor_key)
        statuses = (forbidden.status_code, first.status_code, limited.status_code, broke.status_code)
        assert statuses == (403, 200, 429, 402)

        events = events_of(app, tid)
        rid = {
            name: r.headers["x-request-id"]
            for name, r in (
                ("ok", ok),
                ("failed_tool", failed_tool),
                ("denied_tool", denied_tool),
                ("consult", consult),
            )
        }
        assert kinds(events, rid["ok"]) == {"operation": 1, "tool": 1, "budget.alert": 1}
        assert kinds(events, rid["failed_tool"]) == {"operation": 1, "tool": 1}
        assert kinds(events, rid["denied_tool"]) == {"operation": 1, "permission.denied": 1}
        assert kinds(events, rid["consult"]) == {"operation": 1, "tool": 1}
        nested = [e for e in events if e.request_id.startswith(rid["consult"] + ".")]
        assert [(e.type, e.team, e.status) for e in nested] == [("operation", "legal", 200)]
        assert nested[0].detail["chain"] == ["finance", "legal"]
        admin_kinds = Counter(e.type for e in events if e.type.startswith("admin."))
        assert admin_kinds == {
            "admin.tenant_created": 1,
            "admin.tenant_updated": 1,
            "admin.key_created": 1,
            "admin.keys_revoked": 1,
        }
        assert all(e.detail["actor"] == "admin-api" for e in events if e.type.startswith("admin."))
        assert len(events) == 4 + 3 + 2 + 2 + 3  # nothing else was written

        narrow_events = events_of(
            app,
            app.runtime.store.get_api_key(
                __import__("shared.auth", fromlist=["hash_key"]).hash_key(narrow_key)
            ).tenant_id,
        )
        fid = forbidden.headers["x-request-id"]
        assert kinds(narrow_events, fid) == {"operation": 1, "permission.denied": 1}
        assert kinds(events_of(app, slow_id), limited.headers["x-request-id"]) == {"operation": 1, "rate.refused": 1}
        assert kinds(events_of(app, slow_id), first.headers["x-request-id"]) == {"operation": 1}
        assert kinds(events_of(app, poor_id), broke.headers["x-request-id"]) == {"operation": 1, "budget.refused": 1}

        # the facts carried by the events
        op = next(e for e in events if e.request_id == rid["ok"] and e.type == "operation")
        body = ok.json()
        assert (op.team, op.operation, op.status) == ("finance", "ask", 200)
        assert op.detail["cost_usd"] == pytest.approx(body["usage"]["cost_usd"]) and op.detail["cost_usd"] > 0
        assert op.detail["input_tokens"] == body["usage"]["input_tokens"] and op.detail["model_calls"] == 2
        assert op.detail["input"] == digest({"question": "what is 1800?"})
        assert op.detail["output"] == digest(body["output"])
        assert op.detail["duration_ms"] > 0 and len(op.detail["trace_id"]) == 32
        assert "input_content" not in op.detail and "output_content" not in op.detail
        tool = next(e for e in events if e.request_id == rid["ok"] and e.type == "tool")
        assert tool.detail["tool"] == "calculator" and tool.detail["ok"] is True
        assert tool.detail["args"] == digest({"expression": "(1200 - 300) * 2"})
        assert tool.detail["result"] == digest(json.dumps({"result": 1800}))  # the tool result the model saw
        bad_tool = next(e for e in events if e.request_id == rid["failed_tool"] and e.type == "tool")
        assert bad_tool.detail["ok"] is False and bad_tool.detail["error"]
        denial = next(e for e in events if e.type == "permission.denied")
        assert denial.detail == {
            "scope": "tool",
            "tool": "calculator",
            "reason": "'calculator' is not in legal's tool allow-list",
        }
        alert = next(e for e in events if e.type == "budget.alert")
        assert alert.detail["window"] == "day" and alert.detail["threshold"] == 0.0001
        refusal = next(e for e in events_of(app, poor_id) if e.type == "operation")
        assert refusal.detail["problem"] == "budget-exceeded" and refusal.status == 402
        assert "input" in refusal.detail and "output" not in refusal.detail


async def test_content_is_logged_redacted_only_when_the_tenant_turns_it_on(tmp_path, admin_model_env):
    async with local_app(f"sqlite:///{tmp_path}/a.db", **admin_model_env) as app:
        quiet_id, quiet_key = app.tenant("quiet")
        loud_id, loud_key = app.tenant("loud", content_logging=True)
        for key in (quiet_key, loud_key):
            assert (await app.call("legal", "ask", {"question": SECRET_IN_QUESTION}, key)).status_code == 200
        quiet = next(e for e in events_of(app, quiet_id) if e.type == "operation")
        loud = next(e for e in events_of(app, loud_id) if e.type == "operation")
        assert "input_content" not in quiet.detail and "hunter22" not in json.dumps(quiet.detail)
        stored = json.dumps(loud.detail)
        assert "input_content" in loud.detail and "output_content" in loud.detail
        assert "sk-ant-api03" not in stored and "hunter22" not in stored and "[REDACTED]" in stored
        assert loud.detail["input"] == quiet.detail["input"]  # the same facts besides the content


async def test_audit_endpoint_pages_newest_first_and_cli_filters(tmp_path, admin_model_env, capsys, monkeypatch):
    store_url = f"sqlite:///{tmp_path}/a.db"
    async with local_app(store_url, **admin_model_env) as app:
        tid, key = app.tenant("pager")
        for i in range(7):
            assert (await app.call("legal", "ask", {"question": f"q{i}"}, key)).status_code == 200
        auth = {"authorization": f"Bearer {key}"}
        seen: list[dict[str, Any]] = []
        url = "/v1/audit?limit=3"
        while True:
            page = (await app.client.get(url, headers=auth)).json()
            seen += page["events"]
            if "next" not in page:
                break
            url = f"/v1/audit?limit=3&before={page['next']}"
        assert len(seen) == 8 and seen[-1]["type"] == "admin.tenant_created"
        assert [e["at"] for e in seen] == sorted((e["at"] for e in seen), reverse=True)
        assert set(seen[0]) >= {"at", "type", "request_id", "team", "operation", "status", "detail"}
        other_id, other_key = app.tenant("other")
        other = (await app.client.get("/v1/audit", headers={"authorization": f"Bearer {other_key}"})).json()
        assert [e["type"] for e in other["events"]] == ["admin.tenant_created"]  # only the caller's own
        since = seen[3]["at"]

    monkeypatch.setenv("MULTIAGENT_STORE", store_url)
    assert cli_main(["audit", "--tenant", tid, "--since", since, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["at"] for e in out["events"]] == [e["at"] for e in seen[:4]]
    assert all(e["tenant_id"] == tid for e in out["events"])
    assert cli_main(["audit", "--tenant", tid, "--limit", "2"]) == 0
    text = capsys.readouterr().out.strip().splitlines()
    assert len(text) == 2 and "operation" in text[0] and "legal/ask" in text[0]
