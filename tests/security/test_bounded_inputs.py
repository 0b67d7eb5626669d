"""Bounded everything: what one request can make an instance parse, run or store.

Against a real ``multiagent serve`` on loopback with the fake Messages API as the model.
"""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest

from shared.agent import MAX_TOOL_USES_PER_OPERATION, MAX_TOOL_USES_PER_TURN
from shared.store import open_store
from tests.e2e.live_server import LiveServer, live_server_fixture
from tests.fakes.messages_api import text, tool_uses

pytestmark = pytest.mark.e2e
server = live_server_fixture(fake_model=True)


def _notes(server: LiveServer) -> int:
    store = open_store(server.env["MULTIAGENT_STORE"])
    try:
        return len(store.list_notes(server.tenant.tenant_id, limit=10_000))
    finally:
        store.close()


def test_deeply_nested_json_is_400_not_500(server: LiveServer) -> None:
    # given bodies nested 100,000 and 100 deep (a RecursionError and a merely silly depth)
    for depth in (100_000, 100):
        body = "[" * depth + "]" * depth
        # when posted to an operation
        resp = httpx.post(server.url + "/v1/teams/finance/ask", content=body, timeout=30,
                          headers={**server.auth(), "content-type": "application/json"})
        # then it is the contract's invalid-json problem, and the instance still answers
        assert resp.status_code == 400, resp.text
        assert resp.json()["type"] == "/problems/invalid-json"
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200


def test_a_300_tool_turn_runs_at_most_the_bound(server: LiveServer) -> None:
    # given a model that answers one turn with 300 notes to write, then a final answer
    server.fake.reset()
    uses = [{"name": "notes", "input": {"action": "create", "title": f"spam {i}"}} for i in range(300)]
    server.fake.push(tool_uses(uses), text("done"))
    before = _notes(server)
    # when the operation runs
    resp = httpx.post(server.url + "/v1/teams/business-development/ask", json={"question": "q"},
                      headers=server.auth(), timeout=60)
    # then it completes, but only the per-turn bound of notes was written
    assert resp.status_code == 200, resp.text
    assert _notes(server) - before == MAX_TOOL_USES_PER_TURN
    # and the model was told, for each refused use, that it was not run
    second = server.fake.log()[1]["body"]["messages"][-1]["content"]
    assert len(second) == 300
    refused = [b for b in second if b.get("is_error") and "not run" in json.dumps(b["content"])]
    assert len(refused) == 300 - MAX_TOOL_USES_PER_TURN


def test_tool_uses_per_operation_are_bounded(server: LiveServer) -> None:
    # given a model that keeps asking for the per-turn maximum of notes, turn after turn
    server.fake.reset()
    turn = [{"name": "notes", "input": {"action": "create", "title": "again"}}] * MAX_TOOL_USES_PER_TURN
    turns = MAX_TOOL_USES_PER_OPERATION // MAX_TOOL_USES_PER_TURN + 2
    server.fake.push(*[tool_uses(turn) for _ in range(turns)], text("done"))
    before = _notes(server)
    resp = httpx.post(server.url + "/v1/teams/business-development/ask", json={"question": "q"},
                      headers=server.auth(), timeout=60)
    # then whatever the operation ends with, at most the per-operation bound ran
    assert resp.status_code in (200, 502), resp.text
    assert _notes(server) - before <= MAX_TOOL_USES_PER_OPERATION


def test_idempotency_key_is_bounded_and_stored_hashed(server: LiveServer) -> None:
    # given keys that are too long, empty, or not printable ASCII
    for bad in (b"k" * 256, b"", "caf\u00e9".encode(), b"tab\there"):
        resp = httpx.post(server.url + "/v1/teams/finance/ask", json={"question": "q"}, timeout=30,
                          headers={**server.auth(), "idempotency-key": bad})
        # then each is a validation problem naming the header, and nothing runs
        assert resp.status_code == 422, resp.text
        assert resp.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    # and a good long key works, replays, and is not what the store keeps
    key = "x" * 255
    first = httpx.post(server.url + "/v1/teams/finance/ask", json={"question": "q"}, timeout=30,
                       headers={**server.auth(), "idempotency-key": key})
    again = httpx.post(server.url + "/v1/teams/finance/ask", json={"question": "q"}, timeout=30,
                       headers={**server.auth(), "idempotency-key": key})
    assert first.status_code == again.status_code == 200 and first.json()["id"] == again.json()["id"]
    db = server.env["MULTIAGENT_STORE"].removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        stored = [row[0] for row in conn.execute("SELECT key FROM idempotency")]
    assert stored and all(key not in k and len(k) < 150 for k in stored)
