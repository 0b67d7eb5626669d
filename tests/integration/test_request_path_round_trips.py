"""A warm single-turn call makes at most two store round trips before its answer is sent
(the reservation and the settle; the key is cached), and its audit batch is written after
the answer, in one more. Counted on the SQLite store, through the real app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import local_app

pytestmark = pytest.mark.integration


async def test_a_warm_single_turn_call_makes_two_round_trips_before_its_answer(tmp_path) -> None:
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MODEL_PROVIDER="offline") as app:
        _, key = app.tenant()
        store: Any = app.runtime.store
        asgi = app.client._transport.app  # type: ignore[attr-defined]
        body = json.dumps({"question": "What does a p-value measure?"}).encode()

        async def call() -> tuple[int, int, int]:
            """(status, round trips before the answer was sent, round trips in all)."""
            before = store.round_trips
            seen: dict[str, int] = {}
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                     "scheme": "http", "path": "/v1/teams/research/ask", "raw_path": b"/v1/teams/research/ask",
                     "query_string": b"", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
                     "headers": [(b"host", b"test"), (b"authorization", f"Bearer {key}".encode()),
                                 (b"content-type", b"application/json"),
                                 (b"content-length", str(len(body)).encode())]}
            delivered = False

            async def receive() -> dict[str, Any]:
                nonlocal delivered
                if delivered:
                    return {"type": "http.disconnect"}
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    seen["status"] = message["status"]
                elif message["type"] == "http.response.body" and not message.get("more_body"):
                    seen["answered"] = store.round_trips - before

            await asgi(scope, receive, send)
            return seen["status"], seen["answered"], store.round_trips - before

        assert (await call())[0] == 200  # cold: the key is read from the store once
        status, before_answer, in_all = await call()
        assert status == 200
        assert before_answer <= 2, f"{before_answer} store round trips before the answer"
        assert in_all == before_answer + 1  # the audit batch, after the answer
