"""``multiagent serve --workers N``: N processes on one port and one SQLite store. Both
workers answer (each one's own request counter, read from the files prometheus_client's
multiprocess mode keeps per process), a tenant's cap holds across them, ``/metrics`` sums
them, SIGTERM lets the calls in flight on both finish and ends everything with exit 0, and
bad values are one line on stderr (exit 2)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from shared.store.sqlite import SQLiteStore
from tests.e2e.servers import server_env
from tests.fakes.messages_api import FakeMessagesServer, FakeState
from tests.ports import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "shared.cli"]
CAP_USD = 0.1


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _metrics_dir(worker: int) -> Path:
    """The directory the supervisor gave its workers (from the worker's own environment)."""
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    value = next(v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
    return Path(value.split(b"=", 1)[1].decode())


def _own_value(worker: int, kind: str, sample: str) -> float:
    """One worker's own value of ``sample`` (summed over labels): what it counted itself."""
    path = _metrics_dir(worker) / f"{kind}_{worker}.db"
    if not path.exists():
        return 0.0
    return sum(value for key, value, *_ in MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
               if json.loads(key)[1] == sample)


def _start(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, list[int]]:
    """``serve --workers 2``, once the supervisor said both workers accept; its workers' pids."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited {proc.returncode}: {log.read_text()[-2000:]}"
        ready = re.search(r"^multiagent: 2 workers ready \(pids (\d+), (\d+)\)$", log.read_text(), re.M)
        if ready:
            workers = [int(pid) for pid in ready.groups()]
            assert sorted(workers) == sorted(_children(proc.pid))
            url = f"http://127.0.0.1:{port}"
            assert httpx.get(url + "/health", timeout=10).status_code == 200
            return proc, url, workers
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"serve --workers 2 never said its workers were ready: {log.read_text()[-2000:]}")


def _tenant(env: dict[str, str], *args: str) -> dict[str, Any]:
    subprocess.run([*CLI, "store", "init"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    made = subprocess.run([*CLI, "tenants", "create", "workers", *args, "--json"], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=120)
    return dict(json.loads(made.stdout))


def _settled(db: Path, tenant_id: str) -> tuple[int, int, int]:
    """(ledger sum, the day window's spent, its reserved) in micro-USD, read from the store file."""
    store = SQLiteStore(str(db))
    try:
        ledger = sum(e.cost_micros for e in store.list_ledger(tenant_id))
        keys = [row[0] for row in store._read("SELECT key FROM windows WHERE tenant_id = ?", (tenant_id,))]
        day = next(w for w in store.get_windows(tenant_id, keys) if w.key.startswith("day:"))
        return ledger, day.spent_micros, day.reserved_micros
    finally:
        store.close()


def _gone(pids: list[int]) -> bool:
    return not [pid for pid in pids if Path(f"/proc/{pid}").exists()
                and "zombie" not in Path(f"/proc/{pid}/status").read_text()]


def test_two_workers_share_the_port_the_store_and_the_cap(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    env = server_env(f"sqlite:///{db}", MULTIAGENT_MODEL_PROVIDER="simulated", MULTIAGENT_SHUTDOWN_GRACE_S="5")
    tenant = _tenant(env, "--daily-usd", str(CAP_USD), "--rpm", "100000")
    proc, url, workers = _start(tmp_path, env)
    try:
        async def load() -> list[int]:
            limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per call: both workers accept
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
                gate = asyncio.Semaphore(16)

                async def one(i: int) -> int:
                    async with gate:
                        r = await client.post("/v1/teams/research/ask", json={"question": f"question {i} " * 20},
                                              headers={"authorization": f"Bearer {tenant['api_key']}"})
                        return r.status_code

                return await asyncio.gather(*(one(i) for i in range(80)))

        statuses = asyncio.run(load())
        assert set(statuses) <= {200, 402}, statuses
        assert statuses.count(200) > 0 and statuses.count(402) > 0  # the cap was reached, under load
        served = {pid: _own_value(pid, "counter", "multiagent_requests_total") for pid in workers}
        assert all(served.values()), served  # each worker answered some of the calls itself
        assert sum(served.values()) == len(statuses)
        metrics = httpx.get(url + "/metrics", timeout=10).text
        counted = sum(float(value) for labels, value in re.findall(r"^multiagent_requests_total\{([^}]*)\} (\S+)$",
                                                                  metrics, re.M)
                      if 'team="research"' in labels)
        assert counted == len(statuses)  # /metrics, answered by one worker, sums both
        metrics_dir = _metrics_dir(workers[0])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert _gone(workers)
        assert not metrics_dir.exists()  # the supervisor removed it
    finally:
        if proc.poll() is None:
            proc.kill()
    ledger, spent, reserved = _settled(db, tenant["tenant_id"])
    assert reserved == 0
    assert spent == ledger <= round(CAP_USD * 1_000_000)  # every charge in the ledger; none past the cap


def test_sigterm_lets_the_calls_in_flight_on_both_workers_finish(tmp_path: Path) -> None:
    fake = FakeMessagesServer(FakeState(default_delay=3.0)).start()  # every model call takes 3 s
    try:
        db = tmp_path / "store.db"
        env = server_env(f"sqlite:///{db}", fake.url, MULTIAGENT_SHUTDOWN_GRACE_S="15")
        tenant = _tenant(env)
        proc, url, workers = _start(tmp_path, env)
        try:
            answers: list[Any] = []

            def call(i: int) -> None:
                try:  # a client of its own: a new connection, which either worker may accept
                    answers.append(httpx.post(url + "/v1/teams/legal/ask", json={"question": f"take your time {i}"},
                                              headers={"authorization": f"Bearer {tenant['api_key']}"}, timeout=30))
                except httpx.HTTPError as exc:
                    answers.append(exc)

            def in_flight() -> dict[int, float]:
                return {pid: _own_value(pid, "gauge_livesum", "multiagent_inflight_requests") for pid in workers}

            threads: list[threading.Thread] = []
            while not all(in_flight().values()):  # calls one after another until both workers have one running
                assert len(threads) < 12, in_flight()
                threads.append(threading.Thread(target=call, args=(len(threads),), daemon=True))
                threads[-1].start()
                fake.state.wait_for_requests(len(threads), timeout=10)  # its model call has started
            assert not answers  # all still waiting on the model
            proc.send_signal(signal.SIGTERM)
            for thread in threads:
                thread.join(30)
            assert [getattr(a, "status_code", a) for a in answers] == [200] * len(threads)
            assert proc.wait(30) == 0
            assert _gone(workers)
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        fake.stop()
    ledger, spent, reserved = _settled(db, tenant["tenant_id"])
    assert reserved == 0 and spent == ledger > 0  # each call settled at its cost before its worker exited


@pytest.mark.parametrize("value", ["0", "abc", "-2"])
def test_a_bad_worker_count_is_one_line_and_exit_2(value: str, tmp_path: Path) -> None:
    env = server_env(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MODEL_PROVIDER="offline")
    out = subprocess.run([*CLI, "serve", "--port", str(free_port()), "--workers", value], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "--workers" in out.stderr, out.stderr


def test_several_workers_refuse_a_store_they_cannot_share(tmp_path: Path) -> None:
    env = server_env("sqlite:///:memory:", MULTIAGENT_MODEL_PROVIDER="offline")
    out = subprocess.run([*CLI, "serve", "--port", str(free_port()), "--workers", "2"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "share" in out.stderr, out.stderr
