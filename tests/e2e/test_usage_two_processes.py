"""Usage and service-level stats come from the store, so two server processes sharing
one SQLite file give the same answer, and so does `multiagent usage`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from shared.store import open_store
from tests.e2e.live_server import REPO_ROOT, LiveServer, _wait_ready, free_port, start_live_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory) -> Iterator[tuple[LiveServer, str, subprocess.Popen[bytes]]]:
    first = start_live_server(tmp_path_factory.mktemp("usage"), fake_model=True)
    port = free_port()
    log = (first.workdir / "second.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "serve", "--port", str(port)], cwd=REPO_ROOT,
                            env=first.env, stdout=log, stderr=subprocess.STDOUT)
    second = LiveServer(url=f"http://127.0.0.1:{port}", env=first.env, workdir=first.workdir, proc=proc,
                        log_path=first.workdir / "second.log", tenant=first.tenant)
    try:
        _wait_ready(second, 40)
        yield first, second.url, proc
    finally:
        second.stop()
        first.stop()
        log.close()


def test_usage_is_the_same_from_both_processes_and_the_cli(two_servers):
    first, second_url, _ = two_servers
    auth = first.auth()
    costs = []
    for url, team, n in ((first.url, "finance", 3), (second_url, "legal", 2)):
        for i in range(n):
            resp = httpx.post(f"{url}/v1/teams/{team}/ask", json={"question": f"q{i}"}, headers=auth, timeout=30)
            assert resp.status_code == 200, resp.text
            costs.append(resp.json()["usage"]["cost_usd"])

    reports = [httpx.get(f"{url}/v1/usage", headers=auth, timeout=10).json() for url in (first.url, second_url)]
    for r in reports:
        r.pop("windows")  # reset_at text is the same; remaining/held are compared below through spent
    assert reports[0] == reports[1]
    report = reports[0]
    assert {r["team"]: r["calls"] for r in report["by_team"]} == {"finance": 3, "legal": 2}
    assert sum(r["calls"] for r in report["by_day"]) == 5
    assert {r["model"] for r in report["by_model"]} == {"claude-sonnet-4-5", "claude-opus-4-5"}
    ledger = open_store(first.env["MULTIAGENT_STORE"]).list_ledger(first.tenant.tenant_id)
    assert len(ledger) == 5
    total = sum(e.cost_micros for e in ledger) / 1e6
    assert report["spent_usd"]["day"] == pytest.approx(total) == pytest.approx(sum(costs))
    assert sum(r["cost_usd"] for r in report["by_team"]) == pytest.approx(total)
    assert sum(r["cost_usd"] for r in report["by_model"]) == pytest.approx(total)

    cli = json.loads(first.cli("usage", "--tenant", first.tenant.tenant_id, "--json").stdout)
    cli.pop("windows")
    assert cli == report

    stats = [httpx.get(f"{url}/v1/stats?hours=1", headers=auth, timeout=10).json() for url in (first.url, second_url)]
    for s in stats:
        s.pop("since")
    assert stats[0] == stats[1]
    assert stats[0]["operations"] == 5 and stats[0]["errors"] == 0
    assert {t["team"]: t["calls"] for t in stats[0]["by_team"]} == {"finance": 3, "legal": 2}
