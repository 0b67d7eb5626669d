"""Request heads are bounded before the app runs, on every entry point that opens a socket.

Real servers on loopback: ``multiagent serve``, the container's command as the image runs it
and the functions-framework target. A client that sends one enormous header, or forty large
ones at once, is refused (431, or the connection closed) after the server has read about the
limit, the server's memory does not grow with what was sent, and ``/health`` keeps answering
meanwhile. Too many headers are a 431 problem+json. ``X-Forwarded-For`` is believed only
from a configured proxy.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import ServeProcess, server_env
from tests.integration.test_container_entry import VENV_BIN, image_cmd, image_env, wait_healthy
from tests.integration.test_entrypoints import functions_framework, wait_ok
from tests.ports import free_port
from tests.processes import stop_process

pytestmark = pytest.mark.integration

MIB = 1 << 20
FORGED = "203.0.113.7"  # what an untrusted client claims to be
RSS_GROWTH_MB = 40  # what a refused head may cost the server at most


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the functions-framework worker)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def send_huge_header(port: int, size: int) -> dict[str, object]:
    """Stream one header of ``size`` bytes; what the server answered and how much it took."""
    started = time.monotonic()
    sent, answer, error = 0, b"", ""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
            chunk = b"a" * 65536
            while sent < size:
                sent += sock.send(chunk[: size - sent])
            sock.sendall(b"\r\n\r\n")
        except OSError as exc:  # refused mid-head: the server closed the connection
            error = type(exc).__name__
        try:
            answer = sock.recv(4096)
        except OSError as exc:
            error = error or type(exc).__name__
    return {"sent": sent, "answer": answer, "error": error, "seconds": time.monotonic() - started}


def assert_refused(outcome: dict[str, object], size: int) -> None:
    answer = outcome["answer"]
    assert isinstance(answer, bytes)
    refused = answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")) or (not answer and outcome["error"])
    assert refused, outcome
    assert outcome["sent"] < size  # the server stopped reading long before the end of the header


def huge_header_attack(port: int, pid: int, health_url: str) -> None:
    """One 100 MiB header, then 40 concurrent 20 MiB headers with /health polled meanwhile."""
    before = rss_mb(pid)
    one = send_huge_header(port, 100 * MIB)
    assert_refused(one, 100 * MIB)
    assert float(one["seconds"]) < 5, one  # 14 s to a 200 before
    outcomes: list[dict[str, object]] = []
    threads = [threading.Thread(target=lambda: outcomes.append(send_huge_header(port, 20 * MIB)))
               for _ in range(40)]
    peak, slowest = rss_mb(pid), 0.0
    for t in threads:
        t.start()
    with httpx.Client(timeout=10) as client:
        while any(t.is_alive() for t in threads):
            asked = time.monotonic()
            assert client.get(health_url).status_code == 200
            slowest = max(slowest, time.monotonic() - asked)
            peak = max(peak, rss_mb(pid))
    for t in threads:
        t.join()
    assert len(outcomes) == 40
    for outcome in outcomes:
        assert_refused(outcome, 20 * MIB)
    assert peak - before < RSS_GROWTH_MB, (before, peak)  # ~950 MB before
    assert slowest < 1.0, slowest  # 3-6 s before
    assert rss_mb(pid) - before < RSS_GROWTH_MB


def many_headers(url: str, forwarded_for: str = FORGED) -> httpx.Response:
    headers = [(f"x-filler-{i}", "v") for i in range(200)] + [("x-forwarded-for", forwarded_for)]
    return httpx.get(url + "/health", headers=headers, timeout=10)


def assert_431_problem(resp: httpx.Response) -> None:
    assert resp.status_code == 431, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["type"] == "/problems/request-header-fields-too-large" and body["status"] == 431
    assert "limit" in body["detail"]


def refused_clients(log_text: str) -> list[str]:
    """The client addresses the server logged for refused requests."""
    out = []
    for line in log_text.splitlines():
        if line.startswith("{") and '"request refused"' in line:
            out.append(json.loads(line).get("client"))
    return out


# -- multiagent serve --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("serve")
    server = ServeProcess(server_env(f"sqlite:///{tmp}/store.db", MULTIAGENT_LOG_LEVEL="WARNING"))
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_serve_refuses_huge_heads_without_growing(serve: ServeProcess) -> None:
    huge_header_attack(serve.port, serve.proc.pid, serve.url + "/health")


def test_serve_refuses_too_many_headers_and_ignores_forwarded_for_from_a_peer_it_does_not_trust(
        serve: ServeProcess) -> None:
    # 200 headers: a 431 problem+json, logged with the peer's address, not the claimed one
    assert_431_problem(many_headers(serve.url))
    time.sleep(0.2)
    assert refused_clients(serve.tail(20000))[-1] == "127.0.0.1"
    # /metrics without an admin key answers loopback peers only: a forged X-Forwarded-For
    # neither locks this machine out nor would let a remote client in
    metrics = httpx.get(serve.url + "/metrics", headers={"x-forwarded-for": FORGED}, timeout=10)
    assert metrics.status_code == 200, metrics.text
    # one header over the per-header limit (8 KiB) but within the head limit: 431 problem+json
    big = httpx.get(serve.url + "/health", headers={"x-big": "b" * 10_000}, timeout=10)
    assert big.status_code == 431 and big.json()["type"] == "/problems/request-header-fields-too-large"
    assert httpx.get(serve.url + "/health", headers={"x-fine": "f" * 4000}, timeout=10).status_code == 200


def test_serve_believes_a_configured_proxy_and_caps_concurrency(tmp_path: Path) -> None:
    env = server_env(f"sqlite:///{tmp_path}/store.db", MULTIAGENT_LOG_LEVEL="WARNING",
                     MULTIAGENT_TRUSTED_PROXIES="127.0.0.1", MULTIAGENT_MAX_CONCURRENCY="3")
    server = ServeProcess(env, workers=1).wait_ready()  # the cap is per process: one worker holds all three
    try:
        # the loopback peer is now a trusted proxy: the client is the address it forwards
        metrics = httpx.get(server.url + "/metrics", headers={"x-forwarded-for": FORGED}, timeout=10)
        assert metrics.status_code == 403, metrics.text
        assert_431_problem(many_headers(server.url))
        time.sleep(0.2)
        assert refused_clients(server.tail(20000))[-1] == FORGED
        # past 3 connections at once: 503 problem+json with Retry-After, before the app
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        try:
            time.sleep(0.2)
            busy = httpx.get(server.url + "/health", timeout=10)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1", busy.text
            assert busy.json()["type"] == "/problems/unavailable"
        finally:
            for s in idle:
                s.close()
        time.sleep(0.2)
        assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    finally:
        server.stop()


# -- the container's entry point, started as the image starts it ---------------------------------
def start_container(tmp_path: Path, **extra: str) -> tuple[subprocess.Popen[str], int, Path]:
    port = free_port()
    env = {k: v.replace("/opt/venv/bin", str(VENV_BIN)).replace("$PATH", os.environ.get("PATH", ""))
           for k, v in image_env().items()}
    env.update({"PORT": str(port), "HOME": str(tmp_path), "MULTIAGENT_STORE": f"sqlite:///{tmp_path}/store.db",
                "MULTIAGENT_INTERNAL_SIGNING_KEY": "k1:" + "cd" * 32, "MULTIAGENT_TEAM": "finance", **extra})
    log = tmp_path / f"container-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(image_cmd(), cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    return proc, port, log


def test_container_refuses_huge_heads_without_growing(tmp_path: Path) -> None:
    proc, port, log = start_container(tmp_path)
    try:
        wait_healthy(proc, port)
        huge_header_attack(port, proc.pid, f"http://127.0.0.1:{port}/health")
    finally:
        stop_process(proc, 15)


@pytest.mark.parametrize(("extra", "client"), [
    ({}, "127.0.0.1"),  # anywhere but Cloud Run: no proxy is trusted
    ({"K_SERVICE": "finance"}, "127.0.0.1"),  # Cloud Run: only its link-local front end is
    ({"MULTIAGENT_TRUSTED_PROXIES": "127.0.0.1"}, FORGED),  # a configured proxy is believed
], ids=["default", "cloud-run", "configured"])
def test_container_believes_forwarded_for_only_from_trusted_proxies(tmp_path: Path, extra: dict[str, str],
                                                                    client: str) -> None:
    proc, port, log = start_container(tmp_path, **extra)
    try:
        wait_healthy(proc, port)
        assert_431_problem(many_headers(f"http://127.0.0.1:{port}"))
    finally:
        stop_process(proc, 15)
    assert refused_clients(log.read_text())[-1] == client


# -- the functions-framework target ---------------------------------------------------------------
def test_functions_framework_target_refuses_huge_heads(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(f"sqlite:///{tmp_path}/store.db", MULTIAGENT_TEAM="legal", PORT=str(port))
    with functions_framework("functions/team/main.py", "team", port, env) as proc:
        assert wait_ok(f"http://127.0.0.1:{port}/health", proc).status_code == 200
        before = rss_mb(proc.pid)
        outcome = send_huge_header(port, 100 * MIB)
        assert_refused(outcome, 100 * MIB)
        assert float(outcome["seconds"]) < 5 and rss_mb(proc.pid) - before < RSS_GROWTH_MB
        assert_431_problem(many_headers(f"http://127.0.0.1:{port}"))
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
