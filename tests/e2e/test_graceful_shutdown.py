"""SIGTERM on `multiagent serve` with a slow model call in flight: the call finishes (or,
past the grace period, is cut and its reservation released), the process exits 0, and
the store is left exact: charged once, nothing reserved."""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.budget import day_key, month_key
from shared.store import open_store
from tests.e2e.live_server import LiveServer, start_live_server
from tests.fakes.messages_api import delay

pytestmark = pytest.mark.e2e


def _in_background(server: LiveServer, team: str) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["resp"] = httpx.post(f"{server.url}/v1/teams/{team}/ask", json={"question": "take your time"},
                                     headers=server.auth(), timeout=30)
        except httpx.HTTPError as exc:
            box["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, box


def _wait_in_flight(server: LiveServer, n: int = 1, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while len(server.fake.log()) < n:
        assert time.monotonic() < deadline, "the model call never started"
        time.sleep(0.05)


def _refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return False
    except OSError:
        return True


def _reserved_micros(store_url: str, tenant_id: str) -> int:
    now = time.time()
    windows = open_store(store_url).get_windows(tenant_id, [day_key(now), month_key(now)])
    return sum(w.reserved_micros for w in windows)


def _reservation_rows(store_url: str) -> int:
    path = Path(store_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM reservations").fetchone()[0])


def test_in_flight_call_finishes_and_is_charged_once(tmp_path):
    server = start_live_server(tmp_path, fake_model=True, env={"MULTIAGENT_SHUTDOWN_GRACE_S": "8"})
    try:
        server.fake.push(delay(2.5))
        thread, box = _in_background(server, "legal")
        _wait_in_flight(server)
        sent = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert _refuses_connections(server.url), "still accepting connections after SIGTERM"
        thread.join(15)
        code = server.proc.wait(15)
        elapsed = time.monotonic() - sent
    finally:
        server.stop()
    assert "error" not in box, box.get("error")
    resp = box["resp"]
    assert resp.status_code == 200, resp.text
    assert code == 0, server.log_tail()
    assert elapsed < 8, f"took {elapsed:.1f} s, past the grace period"

    store_url = server.env["MULTIAGENT_STORE"]
    store = open_store(store_url)
    request_id = resp.headers["x-request-id"]
    ledger = [e for e in store.list_ledger(server.tenant.tenant_id) if e.request_id == request_id]
    assert len(ledger) == 1 and ledger[0].cost_micros == round(resp.json()["usage"]["cost_usd"] * 1e6)
    assert _reserved_micros(store_url, server.tenant.tenant_id) == 0 and _reservation_rows(store_url) == 0
    windows = store.get_windows(server.tenant.tenant_id, [day_key(time.time())])
    assert windows[0].spent_micros == ledger[0].cost_micros
    ops = [e for e in store.list_audit(server.tenant.tenant_id, 50) if e.type == "operation"]
    assert [(e.request_id, e.status) for e in ops] == [(request_id, 200)]  # the audit batch was flushed too


def test_call_past_the_grace_period_is_cut_and_charged_unsettled(tmp_path):
    server = start_live_server(tmp_path, fake_model=True, env={"MULTIAGENT_SHUTDOWN_GRACE_S": "1"})
    try:
        server.fake.push(delay(20))
        thread, box = _in_background(server, "legal")
        _wait_in_flight(server)
        assert _reserved_micros(server.env["MULTIAGENT_STORE"], server.tenant.tenant_id) > 0
        sent = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(15)
        elapsed = time.monotonic() - sent
        thread.join(15)
    finally:
        server.stop()
    assert code == 0, server.log_tail()
    assert elapsed < 5, f"took {elapsed:.1f} s with a 1 s grace period"
    assert "resp" not in box or box["resp"].status_code != 200  # the client saw the cut, not a fake success
    # the request had reached the provider, which may bill it: charged at its worst case,
    # once, marked unsettled; nothing left held
    store_url = server.env["MULTIAGENT_STORE"]
    ledger = open_store(store_url).list_ledger(server.tenant.tenant_id)
    assert len(ledger) == 1 and ledger[0].unsettled and ledger[0].cost_micros > 0, ledger
    assert _reserved_micros(store_url, server.tenant.tenant_id) == 0 and _reservation_rows(store_url) == 0
