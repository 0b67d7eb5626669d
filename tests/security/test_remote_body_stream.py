"""A body bound for a remote team is counted as it arrives, like a local team's.

A gateway (``multiagent serve`` with ``MULTIAGENT_TEAM_URLS``) forwards ``finance`` to a
second ``multiagent serve`` on loopback. A chunked upload (no Content-Length) of 100 MiB is
answered 413 ``payload-too-large`` once the body passes the limit: the client has sent little
more than the limit plus the sockets' buffers when the answer comes, the connection is closed
instead of drained, the gateway's memory stays flat and nothing reaches the team. A normal
call still goes through the team's server.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import ServeProcess, cli, server_env
from tests.security.test_head_limits import rss_mb

pytestmark = pytest.mark.integration

MIB = 1 << 20
LIMIT = 256 * 1024  # the default MULTIAGENT_MAX_BODY_BYTES
SOCKET_SLACK = 24 * MIB  # loopback send + receive buffers the client can fill before anyone reads


class Servers:
    def __init__(self, gateway: ServeProcess, team: ServeProcess, key: str) -> None:
        self.gateway, self.team, self.key = gateway, team, key

    def team_calls(self) -> int:
        """Operation requests the team's server has logged."""
        text = Path(self.team.log.name).read_text(errors="replace")
        return sum(1 for line in text.splitlines()
                   if line.startswith("{") and json.loads(line).get("path") == "/v1/teams/finance/ask")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("remote")
    store = f"sqlite:///{tmp}/store.db"
    common = {"MULTIAGENT_INTERNAL_SIGNING_KEY": "k1:" + "cd" * 32}
    team = ServeProcess(server_env(store, MULTIAGENT_LOG_LEVEL="INFO", **common))
    gateway = None
    try:
        team.wait_ready()
        gateway = ServeProcess(server_env(store, MULTIAGENT_LOG_LEVEL="WARNING",
                                          MULTIAGENT_TEAM_URLS=json.dumps({"finance": team.url}), **common))
        gateway.wait_ready()
        key = cli(server_env(store, **common), "tenants", "create", "acme", "--rpm", "1000")["api_key"]
        yield Servers(gateway, team, key)
    finally:
        if gateway is not None:
            gateway.stop()
        team.stop()


def chunked_upload(port: int, key: str, size: int) -> dict[str, object]:
    """POST a chunked body of ``size`` bytes to finance/ask, reading the answer as soon as
    there is one; how much was sent by then, and the answer."""
    started = time.monotonic()
    head = (f"POST /v1/teams/finance/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    payload = b"a" * 65536
    chunk = b"%x\r\n" % len(payload) + payload + b"\r\n"
    sent, answer, error, pending = 0, b"", "", b""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + b"5\r\n" + b'{"q":' + b"\r\n")
        sock.setblocking(False)
        deadline = time.monotonic() + 30
        try:
            while sent < size and time.monotonic() < deadline:
                readable, writable, _ = select.select([sock], [sock], [], 1)
                if readable:
                    break  # the server answered: stop sending
                if writable:
                    pending = pending or chunk
                    n = sock.send(pending)
                    sent, pending = sent + n, pending[n:]
        except OSError as exc:  # the server closed the connection after answering
            error = type(exc).__name__
        sock.setblocking(True)
        sock.settimeout(10)
        try:
            while data := sock.recv(65536):  # the server closes after its answer
                answer += data
        except OSError as exc:
            error = error or type(exc).__name__
    return {"sent": sent, "answer": answer, "error": error, "seconds": time.monotonic() - started}


def problem(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_a_chunked_100_mib_upload_to_a_remote_team_stops_at_the_limit(servers: Servers) -> None:
    pid = servers.gateway.proc.pid
    calls = servers.team_calls()
    before = rss_mb(pid)
    outcome = chunked_upload(servers.gateway.port, servers.key, 100 * MIB)
    answer = outcome["answer"]
    assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 413"), outcome
    status, body = problem(answer)
    assert status == 413 and body["type"] == "/problems/payload-too-large" and body["limit_bytes"] == LIMIT
    assert b"connection: close" in answer.lower()  # the rest is not read, not drained
    sent = outcome["sent"]
    assert isinstance(sent, int) and LIMIT <= sent < LIMIT + SOCKET_SLACK, outcome  # 100 MiB read before
    assert rss_mb(pid) - before < 30
    assert servers.team_calls() == calls  # nothing reached the team


def test_concurrent_large_uploads_keep_the_gateway_flat(servers: Servers) -> None:
    pid = servers.gateway.proc.pid
    before = rss_mb(pid)
    outcomes: list[dict[str, object]] = []
    threads = [threading.Thread(target=lambda: outcomes.append(chunked_upload(servers.gateway.port, servers.key,
                                                                              50 * MIB)))
               for _ in range(4)]
    peak = before
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb(pid))
        time.sleep(0.02)
    assert len(outcomes) == 4
    for outcome in outcomes:
        answer = outcome["answer"]
        assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 413"), outcome
    assert peak - before < 40, (before, peak)  # +350 MB before


def test_a_normal_call_and_a_body_at_the_limit_still_reach_the_remote_team(servers: Servers) -> None:
    calls = servers.team_calls()
    auth = {"authorization": f"Bearer {servers.key}"}
    resp = httpx.post(servers.gateway.url + "/v1/teams/finance/ask", json={"question": "runway?"},
                      headers=auth, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["team"] == "finance"
    # a chunked body of exactly the limit is forwarded whole (the team judges its content)
    body = json.dumps({"question": "x" * (LIMIT - 20)}).encode()
    body += b" " * (LIMIT - len(body))

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    at_limit = httpx.post(servers.gateway.url + "/v1/teams/finance/ask", content=chunks(),
                          headers={**auth, "content-type": "application/json"}, timeout=30)
    assert at_limit.status_code != 413, at_limit.text
    over = httpx.post(servers.gateway.url + "/v1/teams/finance/ask", content=iter([body, b" "]),
                      headers={**auth, "content-type": "application/json"}, timeout=30)
    assert over.status_code == 413 and over.json()["limit_bytes"] == LIMIT
    time.sleep(0.2)
    assert servers.team_calls() == calls + 2  # the normal call and the one at the limit
