"""Tools through the real loop: consult_team chains, notes and tickets per tenant."""

from __future__ import annotations

import json

import pytest

from tests.fakes.messages_api import tool_use
from tests.helpers import local_app

pytestmark = pytest.mark.integration


def tool_results(entry: dict) -> list[dict]:
    last = entry["body"]["messages"][-1]
    return [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]


def consult(team: str) -> object:
    return tool_use("consult_team", {"team": team, "question": f"what does {team} think?"})


async def test_consult_chain_is_refused_past_depth_two(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        tenant_id, key = app.tenant()
        fake.state.push(consult("legal"), consult("hr"), consult("security"))
        resp = await app.call("finance", "ask", {"question": "plan"}, key)
        assert resp.status_code == 200, resp.text
        log = fake.state.log()
        # finance, legal, hr each called the model; security never did
        first_lines = [e["body"]["system"].splitlines()[0].lower() for e in log]
        assert len(log) == 6  # finance, legal, hr, then hr, legal, finance finishing
        assert [("finance" in f, "legal" in f, "hr" in f or "people" in f) for f in first_lines[:3]] == [
            (True, False, False), (False, True, False), (False, False, True)]
        refused = tool_results(log[3])[0]
        assert refused["is_error"] is True and "depth" in refused["content"]
        # legal and hr answered and their answers flowed back as tool results
        assert "legal" in tool_results(log[5])[0]["content"]
        # every model call, the consulted ones included, was charged to the same tenant
        assert len(app.runtime.store.list_ledger(tenant_id)) == len(log)


async def test_consult_cycle_is_refused(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant()
        fake.state.push(consult("legal"), consult("finance"))
        resp = await app.call("finance", "ask", {"question": "plan"}, key)
        assert resp.status_code == 200
        refused = tool_results(fake.state.log()[2])[0]
        assert refused["is_error"] is True and "cycle" in refused["content"]


async def test_notes_and_tickets_are_isolated_between_tenants(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        a_id, a_key = app.tenant("a")
        b_id, b_key = app.tenant("b")
        fake.state.push(
            tool_use("notes", {"action": "create", "title": "secret plan", "body": "acquire b"}),
            tool_use("tickets", {"action": "create", "subject": "login broken", "body": "500s"}),
        )
        assert (await app.call("support", "ask", {"question": "note it"}, a_key)).status_code == 200
        fake.state.reset()
        fake.state.push(tool_use("notes", {"action": "search", "query": "plan"}),
                        tool_use("tickets", {"action": "list"}))
        assert (await app.call("support", "ask", {"question": "what notes?"}, b_key)).status_code == 200
        log = fake.state.log()
        assert json.loads(tool_results(log[1])[0]["content"]) == {"notes": []}
        assert json.loads(tool_results(log[2])[0]["content"]) == {"tickets": []}
        assert [n.title for n in app.runtime.store.list_notes(a_id)] == ["secret plan"]
        assert app.runtime.store.list_tickets(b_id) == []


async def test_tool_not_on_allow_list_is_an_error_result(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant()
        fake.state.push(tool_use("tickets", {"action": "list"}))  # finance may not use tickets
        assert (await app.call("finance", "ask", {"question": "q"}, key)).status_code == 200
        result = tool_results(fake.state.log()[1])[0]
        assert result["is_error"] is True and "not available" in result["content"]


async def test_calculator_tool_result_reaches_the_model(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant()
        fake.state.push(tool_use("calculator", {"expression": "(1200 - 300) * 2"}),
                        tool_use("calculator", {"expression": "__import__('os')"}))
        assert (await app.call("finance", "ask", {"question": "q"}, key)).status_code == 200
        log = fake.state.log()
        assert json.loads(tool_results(log[1])[0]["content"]) == {"result": 1800}
        assert tool_results(log[2])[0]["is_error"] is True
