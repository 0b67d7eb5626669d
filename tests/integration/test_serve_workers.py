"""``multiagent serve --workers N``: N processes on one port and one SQLite store. Both
workers answer, a tenant's cap holds across them, ``/metrics`` sums them, SIGTERM ends
everything with exit 0, and bad values are one line on stderr (exit 2)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.store.sqlite import SQLiteStore
from tests.e2e.servers import server_env
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


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited {proc.returncode}"
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve --workers 2 never answered /health")


def test_two_workers_share_the_port_the_store_and_the_cap(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    env = server_env(f"sqlite:///{db}", MULTIAGENT_MODEL_PROVIDER="simulated", MULTIAGENT_SHUTDOWN_GRACE_S="5")
    subprocess.run([*CLI, "store", "init"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    made = subprocess.run([*CLI, "tenants", "create", "workers", "--daily-usd", str(CAP_USD), "--rpm", "100000",
                           "--json"], cwd=ROOT,
                          env=env, check=True, capture_output=True, text=True, timeout=120)
    tenant = json.loads(made.stdout)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(url, proc)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        before = {pid: _cpu_ticks(pid) for pid in workers}

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
        assert statuses.count(200) > 0 and statuses.count(402) > 0  # the cap was reached, under load, on both
        assert all(_cpu_ticks(pid) > before[pid] for pid in workers)  # each worker served some of it
        metrics = httpx.get(url + "/metrics", timeout=10).text
        counted = sum(float(value) for labels, value in re.findall(r"^multiagent_requests_total\{([^}]*)\} (\S+)$",
                                                                  metrics, re.M)
                      if 'team="research"' in labels and 'status="200"' in labels)
        assert counted == statuses.count(200)  # summed over both workers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                    and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    store = SQLiteStore(str(db))
    spent = sum(e.cost_micros for e in store.list_ledger(tenant["tenant_id"]))
    windows = store.get_windows(tenant["tenant_id"], _window_keys(store, tenant["tenant_id"]))
    window = next(w for w in windows if w.key.startswith("day:"))
    assert window.reserved_micros == 0
    assert window.spent_micros == spent <= round(CAP_USD * 1_000_000)
    store.close()


def _window_keys(store: SQLiteStore, tenant_id: str) -> list[str]:
    return [row[0] for row in store._read("SELECT key FROM windows WHERE tenant_id = ?", (tenant_id,))]


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
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None  # nothing leaked into this process
