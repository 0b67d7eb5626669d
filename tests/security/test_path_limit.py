"""A long request path costs a real ``multiagent serve`` nothing, and is refused past the limit.

Found on loopback: ``GET /a-a-a-…`` (6,001 characters, no key) was answered 404 at once, then
the access log line's redaction held the event loop: a concurrent ``/health`` waited 5.5 s
(78 ms before). A model's long tool name or an authenticated 256 KiB body of ``a.a.a…`` did the
same through tool output and audit details. Here, while such requests are handled (the access
log at INFO, so it is written), every concurrent ``/health`` answers within a second; a path over
``MULTIAGENT_MAX_PATH_BYTES`` (8 KiB) is 414 problem+json ``uri-too-long`` with ``limit_bytes``,
and the access log carries a cut path.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from shared.config import Settings
from tests.e2e.live_server import LiveServer, start_live_server

pytestmark = pytest.mark.e2e

HEALTH_BOUND_S = 1.0
BODY_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_live_server(tmp_path_factory.mktemp("path-limit"), env={"MULTIAGENT_LOG_LEVEL": "INFO"})
    try:
        yield live
    finally:
        live.stop()


def _body_of(size: int, unit: str) -> bytes:
    """``{"question": "<unit unit …>"}`` of exactly ``size`` bytes."""
    overhead = len(json.dumps({"question": ""}))
    text = (unit * (size // len(unit) + 1))[: size - overhead]
    body = json.dumps({"question": text}).encode()
    assert len(body) == size
    return body


def _health_latencies_while(server: LiveServer, attacks: list[Callable[[], None]]) -> tuple[list[float], list[str]]:
    """Run ``attacks`` in threads; meanwhile time ``/health`` until they are all done."""
    errors: list[str] = []

    def run(attack: Callable[[], None]) -> None:
        try:
            attack()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(a,), daemon=True) for a in attacks]
    latencies: list[float] = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for t in threads:
            t.start()
        time.sleep(0.05)
        while any(t.is_alive() for t in threads) or len(latencies) < 5:
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)
    for t in threads:
        t.join(60)
    return latencies, errors


def test_health_stays_fast_while_long_paths_and_large_bodies_are_handled(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        baseline = min(_timed(lambda: client.get("/health")) for _ in range(5))
    statuses: list[int] = []

    def long_paths() -> None:  # unauthenticated, under the path limit: 404 after routing
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for unit in ("a-", "a.", "a_", "token", "apikey"):
                r = client.get("/" + (unit * (6_000 // len(unit) + 1))[:6_000])
                statuses.append(r.status_code)
                assert r.status_code == 404, r.text[:300]

    def large_bodies() -> None:  # authenticated, at the body limit: refused by the schema
        with httpx.Client(base_url=server.url, timeout=60, headers=server.auth()) as client:
            for unit in ("a.", "a-", "password=x;api_key=y&", "eyJ"):
                r = client.post("/v1/teams/finance/ask", content=_body_of(BODY_LIMIT, unit),
                                headers={"content-type": "application/json"})
                statuses.append(r.status_code)
                assert r.status_code == 422, r.text[:300]

    def answered_questions() -> None:  # authenticated, valid: runs the team (offline model) and is audited
        with httpx.Client(base_url=server.url, timeout=60, headers=server.auth()) as client:
            for unit in ("a.", "a-", "token"):
                r = client.post("/v1/teams/finance/ask", json={"question": (unit * 10_000)[:19_999]})
                statuses.append(r.status_code)
                assert r.status_code == 200, r.text[:300]

    latencies, errors = _health_latencies_while(server, [long_paths, large_bodies, answered_questions])
    assert not errors, errors
    assert len(statuses) == 12
    assert max(latencies) < HEALTH_BOUND_S, (
        f"/health took up to {max(latencies):.2f} s during the attack ({baseline * 1000:.0f} ms alone); "
        f"latencies: {[round(x, 3) for x in latencies]}\n{server.log_tail(5)[-2000:]}")
    # the access log was written, with the path cut
    log = server.log_path.read_text(errors="replace")
    requests = [json.loads(line) for line in log.splitlines() if '"message": "request"' in line]
    cut = [r["path"] for r in requests if r["status"] == 404 and "…(+" in r["path"]]
    assert len(cut) == 5 and all(len(p) < 300 for p in cut), server.log_tail(5)[-2000:]
    assert max(len(line) for line in log.splitlines()) < 40_000


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@pytest.mark.parametrize("length", [8 * 1024 + 1, 9_000, 60_000])
def test_a_path_over_the_limit_is_414_problem_json(server: LiveServer, length: int) -> None:
    path = "/" + ("a-" * length)[: length - 1]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.get(path)
        assert r.status_code == 414, r.text[:300]
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["type"] == "/problems/uri-too-long" and body["status"] == 414
        assert isinstance(body["limit_bytes"], int) and body["limit_bytes"] < length
        assert path not in r.text
        # the same for an authenticated operation call: refused before routing
        r = client.post("/v1/teams/finance/" + "x" * length, json={"question": "hi"}, headers=server.auth())
        assert r.status_code == 414 and r.json()["type"] == "/problems/uri-too-long"
        # and the server is fine
        assert client.get("/health").status_code == 200


def test_a_path_at_the_limit_is_routed(server: LiveServer) -> None:
    path = "/" + "a" * (8 * 1024 - 1)
    r = httpx.get(server.url + path, timeout=30)
    assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
    r = httpx.get(server.url + "/health", timeout=30)
    assert r.status_code == 200


def test_the_limit_is_configured_by_env() -> None:
    assert Settings.from_env({}).max_path_bytes == 8 * 1024
    assert Settings.from_env({"MULTIAGENT_MAX_PATH_BYTES": "2048"}).max_path_bytes == 2048
