"""Moving a deployment between stores with `multiagent export tenants|ledger` and
`multiagent import`: SQLite → DynamoDB (moto server) → SQLite, nothing lost: tenants with
every field, API keys (working and revoked), the ledger, and the spend of the live budget
windows, so a moved tenant cannot spend today's budget twice.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.auth import Authenticator
from shared.budget import window_limits
from shared.catalog import load_catalog
from shared.config import Settings
from shared.errors import ProblemError
from shared.store import open_store
from shared.store.base import LedgerEntry, Reservation, Store, new_id
from shared.tenants import TenantAdmin
from tests.integration import server_dynamodb

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def charge(store: Store, tenant_id: str, team: str, cost: int, at: float) -> LedgerEntry:
    """One settled call, written the way the budget path writes it."""
    tenant = store.get_tenant(tenant_id)
    assert tenant is not None
    windows = window_limits(tenant, team, at)
    reservation = Reservation(id=new_id("res"), tenant_id=tenant_id, amount_micros=cost * 2,
                              windows=[w.key for w in windows], expires_at=at + 120, team=team, operation="ask")
    assert store.reserve(reservation, windows, [], at).ok
    entry = LedgerEntry(id=new_id("led"), tenant_id=tenant_id, request_id=new_id("req"), team=team, operation="ask",
                        model="claude-sonnet-4-5", input_tokens=100 + cost % 7, output_tokens=50, cost_micros=cost,
                        at=iso(at), run_id="run_1" if team == "legal" else "")
    store.settle(reservation, cost, entry, [])
    return entry


def multiagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def export(store_url: str, tmp_path: Path, name: str) -> tuple[Path, Path]:
    tenants, ledger = tmp_path / f"{name}-tenants.jsonl", tmp_path / f"{name}-ledger.jsonl"
    for kind, out in (("tenants", tenants), ("ledger", ledger)):
        result = multiagent("export", kind, "--store", store_url, "--out", str(out))
        assert result.returncode == 0, result.stderr
    return tenants, ledger


def windows_of(store: Store, tenant_id: str, now: float) -> dict[str, tuple[int, int]]:
    tenant = store.get_tenant(tenant_id)
    assert tenant is not None
    keys = sorted({w.key for team in ("finance", "legal") for w in window_limits(tenant, team, now)})
    return {w.key: (w.limit_micros, w.spent_micros) for w in store.get_windows(tenant_id, keys)}


@pytest.fixture
def source(tmp_path: Path) -> dict[str, Any]:
    """A SQLite deployment with history: two tenants, keys (one revoked), a month of spend."""
    url = f"sqlite:///{tmp_path}/source.db"
    store = open_store(url)
    store.init()
    admin = TenantAdmin(store, Settings.from_env({"MULTIAGENT_STORE": url}), load_catalog())
    acme, revoked_key = admin.create("acme", daily_usd=7.5, monthly_usd=90, rpm=30, tpm=50_000,
                                     teams=["finance", "legal"], team_daily_usd={"legal": 2.0},
                                     webhook_url="https://acme.example/hooks", on_low_budget="cheaper_model")
    admin.revoke_keys(acme.id)
    key = admin.issue_key(acme.id)
    globex, globex_key = admin.create("globex", daily_usd=1)
    admin.disable(globex.id)
    now = time.time()
    costs = [(acme.id, "finance", 12_345, now - 60), (acme.id, "legal", 2_500, now - 30),
             (acme.id, "finance", 999, now - 1), (acme.id, "finance", 40_000, now - 40 * DAY),
             (acme.id, "legal", 7_000, now - 2 * DAY), (globex.id, "finance", 333, now - 10)]
    entries = [charge(store, *c) for c in costs]
    store.close()
    return {"url": url, "acme": acme.id, "globex": globex.id, "key": key, "revoked_key": revoked_key,
            "globex_key": globex_key, "entries": entries, "now": now}


def test_sqlite_to_dynamodb_to_sqlite_loses_nothing(source: dict[str, Any], tmp_path: Path) -> None:
    # given the SQLite deployment's export
    first = export(source["url"], tmp_path, "sqlite")
    # when it is imported into DynamoDB (moto), exported from there, imported into a new SQLite
    dynamo_url = server_dynamodb.fresh_store_url(tmp_path)
    imported = multiagent("import", *map(str, first), "--store", dynamo_url)
    assert imported.returncode == 0, imported.stderr
    assert "tenants: 2 created" in imported.stdout and "api keys: 3 added" in imported.stdout
    assert "ledger entries: 6 settled" in imported.stdout
    second = export(dynamo_url, tmp_path, "dynamodb")
    final_url = f"sqlite:///{tmp_path}/final.db"
    assert multiagent("import", str(second[1]), str(second[0]), "--store", final_url).returncode == 0  # any order
    third = export(final_url, tmp_path, "final")
    # then every export is the same, byte for byte
    for a, b, c in zip(first, second, third, strict=True):
        assert a.read_text() == b.read_text() == c.read_text()
        assert a.read_text().count("\n") >= 2
    assert first[1].read_text().count('"kind":"ledger"') == 6
    # and the live budget windows hold the same spend everywhere (the 40-day-old entry is ledger only)
    stores = [open_store(u) for u in (source["url"], dynamo_url, final_url)]
    try:
        for tenant in ("acme", "globex"):
            views = [windows_of(s, source[tenant], source["now"]) for s in stores]
            assert views[0] == views[1] == views[2], tenant
        day = windows_of(stores[2], source["acme"], source["now"])
        assert day[next(k for k in day if k.startswith("day:"))][1] == 12_345 + 2_500 + 999  # today, all teams
        # and keys keep working after the move, revoked ones stay revoked, a disabled tenant stays disabled
        auth = Authenticator(stores[2])
        assert auth.tenant_for(source["key"]).id == source["acme"]
        with pytest.raises(ProblemError):
            auth.tenant_for(source["revoked_key"])
        with pytest.raises(ProblemError):
            auth.tenant_for(source["globex_key"])
    finally:
        for s in stores:
            s.close()


def test_importing_twice_changes_nothing(source: dict[str, Any], tmp_path: Path) -> None:
    # given a deployment imported once
    files = export(source["url"], tmp_path, "once")
    target = f"sqlite:///{tmp_path}/target.db"
    assert multiagent("import", *map(str, files), "--store", target).returncode == 0
    store = open_store(target)
    before = windows_of(store, source["acme"], source["now"])
    store.close()
    # when the same files are imported again (a retried migration)
    again = multiagent("import", *map(str, files), "--store", target)
    # then nothing is created or charged twice
    assert again.returncode == 0, again.stderr
    assert "tenants: 0 created, 0 updated; api keys: 0 added" in again.stdout
    store = open_store(target)
    assert windows_of(store, source["acme"], source["now"]) == before
    assert len(store.list_ledger(source["acme"])) == 5
    store.close()


def test_bad_input_is_one_line_and_nothing_partial(tmp_path: Path, source: dict[str, Any]) -> None:
    target = f"sqlite:///{tmp_path}/bad.db"
    cases = {
        "not-json.jsonl": ('{"kind": "tenant"\n', "not-json.jsonl:1: not JSON"),
        "kind.jsonl": ('{"kind": "invoice", "v": 1}\n', "unknown record kind 'invoice'"),
        "version.jsonl": ('{"kind": "tenant", "v": 9}\n', "format v1"),
        "orphan.jsonl": ('{"kind": "ledger", "v": 1, "entry": {"id": "led_1", "tenant_id": "ten_nobody", '
                         '"request_id": "r", "team": "finance", "operation": "ask", "model": "m", '
                         '"input_tokens": 1, "output_tokens": 1, "cost_micros": 1, "at": "2026-01-01T00:00:00Z"}}\n',
                         "unknown tenant 'ten_nobody'"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        # when a bad file is imported, then the command fails with one line naming the problem
        result = multiagent("import", str(path), "--store", target)
        assert result.returncode == 1 and message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    # and a dry run reports without writing
    files = export(source["url"], tmp_path, "dry")
    dry = multiagent("import", *map(str, files), "--store", target, "--dry-run")
    assert dry.returncode == 0 and "tenants: 2 created" in dry.stdout and "nothing written" in dry.stdout
    store = open_store(target)
    assert store.list_tenants() == []
    store.close()


def test_ledger_export_pages_through_long_histories(source: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # given a page size smaller than the history, with entries sharing an instant
    import shared.migrate as migrate

    monkeypatch.setattr(migrate, "LEDGER_PAGE", 2)
    store = open_store(source["url"])
    twin = source["now"] - 5
    charge(store, source["acme"], "finance", 11, twin)
    charge(store, source["acme"], "finance", 22, twin)
    # when the ledger is read page by page, then every entry comes exactly once, oldest first
    entries = list(migrate.iter_ledger(store, source["acme"]))
    assert len(entries) == len({e.id for e in entries}) == 7
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    store.close()
