"""How the anthropic provider reads what comes back (shared/models/anthropic.py), through the
real SDK on loopback: a refused connection sent nothing, so its hold is released; a success
answer that is not JSON may have been billed, so its hold is charged at its worst case."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.budget import window_limits
from tests.helpers import local_app
from tests.ports import free_port

pytestmark = pytest.mark.integration


def _spent_and_held(app, tenant_id: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    store = app.runtime.store
    tenant = store.get_tenant(tenant_id)
    states = store.get_windows(tenant_id, [w.key for w in window_limits(tenant, "research", time.time())])
    day = next(w for w in states if w.key.startswith("day:"))
    return day.spent_micros, day.reserved_micros


async def test_a_refused_connection_is_released_not_charged(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MODEL_PROVIDER="anthropic",
                         ANTHROPIC_API_KEY="test-key") as app:
        tenant_id, key = app.tenant()
        answer = await app.call("research", "ask", {"question": "q"}, key)
        assert answer.status_code == 503, answer.text
        assert _spent_and_held(app, tenant_id) == (0, 0)
        assert app.runtime.store.list_ledger(tenant_id) == []


async def test_a_success_answer_that_is_not_json_is_charged_at_its_worst_case(tmp_path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    answered = 0

    async def not_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        answered += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\noops")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_json, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    try:
        async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MODEL_PROVIDER="anthropic",
                             ANTHROPIC_API_KEY="test-key") as app:
            tenant_id, key = app.tenant()
            answer = await app.call("research", "ask", {"question": "q"}, key)
            assert answer.status_code == 502, answer.text
            assert answer.json()["type"] == "/problems/model-error"
            ledger = app.runtime.store.list_ledger(tenant_id)
            assert answered == 1 and len(ledger) == 1  # not retried: it may have been billed
            assert ledger[0].unsettled and ledger[0].cost_micros > 0
            assert _spent_and_held(app, tenant_id) == (ledger[0].cost_micros, 0)
    finally:
        server.close()
        await server.wait_closed()
