"""The operator dashboard in headless Chromium (Debian's `chromium`, driven by playwright-core
from tests/e2e/browser; both installed by scripts/test.d/chromium.sh): it loads with data
from a seeded store, shows the numbers the API returns, only what the key may see, and
leaves screenshots in test-artifacts/."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.budget import window_limits
from shared.catalog import load_catalog
from shared.config import Settings
from shared.store import open_store
from shared.store.base import AuditEvent, LedgerEntry, Reservation, Store, Tenant, new_id
from shared.tenants import TenantAdmin
from tests.e2e.chromium import ARTIFACTS, browser_missing, run_script
from tests.e2e.live_server import LiveServer, start_live_server

pytestmark = pytest.mark.e2e

ADMIN_KEY = "dash-admin-key-0123456789abcdef"
MODELS = {"finance": "claude-sonnet-4-5", "legal": "claude-opus-4-5", "marketing": "claude-haiku-4-5",
          "research": "claude-sonnet-4-5", "code-generation": "claude-sonnet-4-5", "sales": "claude-haiku-4-5"}
# per team: (median latency ms, share of calls)
PROFILE = {"finance": (2400, 0.26), "legal": (5200, 0.16), "marketing": (1500, 0.2), "research": (6800, 0.12),
           "code-generation": (9100, 0.14), "sales": (1100, 0.12)}
FAILURES = [(402, "budget-exceeded"), (429, "rate-limited"), (502, "model-error"), (504, "timeout"),
            (422, "validation-error")]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _charge(store: Store, tenant: Tenant, team: str, model: str, cost: int, at: datetime, rng: random.Random) -> None:
    """One settled model call, through the store's own reserve → settle path (windows and ledger agree)."""
    now = time.time()
    limits = window_limits(tenant, team, now)
    if at.date() != datetime.now(UTC).date():  # an earlier day of the month: only the month window
        limits = [w for w in limits if w.key.startswith("month:")]
    res = Reservation(id=new_id("res"), tenant_id=tenant.id, amount_micros=cost, windows=[w.key for w in limits],
                      expires_at=now + 600, team=team, operation="ask")
    if not store.reserve(res, limits, [], now).ok:
        return  # over a cap: the seed keeps every tenant within its budget, as the guard would
    entry = LedgerEntry(id=new_id("led"), tenant_id=tenant.id, request_id=new_id("req"), team=team, operation="ask",
                        model=model, input_tokens=rng.randint(800, 6000), output_tokens=rng.randint(80, 1500),
                        cost_micros=cost, at=_iso(at))
    store.settle(res, cost, entry, [])


def seed(store: Store, tenant: Tenant, rng: random.Random, *, calls: int, daily_spend: float) -> None:
    """A month of spend and a day of operations for ``tenant``."""
    now = datetime.now(UTC)
    for day in range(1, now.day + 1):
        moment = now.replace(day=day, hour=min(now.hour, 12))
        if day == now.day:
            moment = now - timedelta(minutes=30)
        budget = daily_spend * rng.uniform(0.4, 1.3) if day < now.day else daily_spend
        teams = list(PROFILE)
        for i in range(5):
            team = teams[(day + i) % len(teams)]
            share = 1.0 if day == now.day else rng.uniform(0.6, 1.4)
            _charge(store, tenant, team, MODELS[team], int(budget / 5 * 1e6 * share), moment, rng)
    events = []
    names, weights = list(PROFILE), [p[1] for p in PROFILE.values()]
    for _ in range(calls):
        team = rng.choices(names, weights)[0]
        at = now - timedelta(seconds=rng.uniform(60, 23 * 3600))
        status, problem = (200, None)
        if rng.random() < 0.07:
            status, problem = rng.choice(FAILURES)
        duration = PROFILE[team][0] * rng.lognormvariate(0, 0.45) if status in (200, 502, 504) else rng.uniform(2, 40)
        detail: dict[str, Any] = {"duration_ms": round(duration, 1), "cost_usd": round(rng.uniform(0.001, 0.05), 6)
                                  if status == 200 else 0.0, "model": MODELS[team]}
        if problem:
            detail["problem"] = problem
        rid = new_id("req")
        events.append(AuditEvent(id=new_id("aud"), tenant_id=tenant.id, type="operation", request_id=rid, team=team,
                                 operation="ask", status=status, detail=detail, at=_iso(at)))
        if status == 200 and rng.random() < 0.3:
            events.append(AuditEvent(id=new_id("aud"), tenant_id=tenant.id, type="tool", request_id=rid, team=team,
                                     detail={"tool": "calculator", "ok": True, "duration_ms": 0.4},
                                     at=_iso(at - timedelta(milliseconds=duration / 2))))
    store.append_audit(events)


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    server = start_live_server(tmp_path_factory.mktemp("dashboard"), env={"MULTIAGENT_ADMIN_KEY": ADMIN_KEY})
    try:
        store = open_store(server.env["MULTIAGENT_STORE"])
        settings = Settings.from_env({"MULTIAGENT_STORE": server.env["MULTIAGENT_STORE"]})
        admin = TenantAdmin(store, settings, load_catalog(), actor="cli")
        rng = random.Random(5)
        acme, acme_key = admin.create("Acme Retail", daily_usd=25, monthly_usd=400, alert_threshold=0.8,
                                      team_daily_usd={"legal": 6})
        globex, _ = admin.create("Globex Legal", daily_usd=8, monthly_usd=150, alert_threshold=0.75)
        initech, _ = admin.create("Initech", daily_usd=40, monthly_usd=900)
        seed(store, acme, rng, calls=260, daily_spend=16.5)
        seed(store, globex, rng, calls=90, daily_spend=6.9)
        seed(store, initech, rng, calls=40, daily_spend=3.1)
        admin.update(acme.id, rpm=120)
        store.append_audit([AuditEvent(id=new_id("aud"), tenant_id=acme.id, type="budget.alert", status=200,
                                       detail={"window": "day", "spent_usd": 20.1, "limit_usd": 25.0,
                                               "threshold": 0.8})])
        for question in ("Summarise Q3 revenue drivers", "Is a 3% discount within policy?"):
            resp = httpx.post(f"{server.url}/v1/teams/finance/ask", json={"question": question},
                              headers={"authorization": f"Bearer {acme_key}"}, timeout=30)
            assert resp.status_code == 200, resp.text
        yield server, {"acme": acme, "acme_key": acme_key, "tenants": [acme, globex, initech]}
    finally:
        server.stop()


def run_browser(url: str, shot: Path, layout: str = "desktop", select: str = "", *,
                expect_errors: bool = False) -> dict[str, Any]:
    out = run_script("dashboard.cjs", url, str(shot), layout, select)
    if not expect_errors:
        assert not out["errors"], out["errors"]
    assert shot.exists() and shot.stat().st_size > 10_000
    return out


def api(server: LiveServer, path: str, key: str) -> dict[str, Any]:
    resp = httpx.get(server.url + path, headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def assert_key_stayed_private(out: dict[str, Any], key: str, base: str) -> None:
    for r in out["requests"]:
        assert key not in r["url"], r["url"]
        if r["url"].startswith(base + "/v1/"):
            assert r["authorization"] == f"Bearer {key}"
        else:
            assert r["authorization"] is None, r
    assert "key=" not in out["data"]["location"]  # taken off the address bar


def test_tenant_view_shows_what_the_api_returns(dashboard_server):
    server, seeded = dashboard_server
    key = seeded["acme_key"]
    out = run_browser(f"{server.url}/dashboard#key={key}", ARTIFACTS / "dashboard.png")
    data = out["data"]
    usage, stats = api(server, "/v1/usage", key), api(server, "/v1/stats?hours=24", key)
    audit = api(server, "/v1/audit?limit=25", key)
    assert data["state"] == "ready" and seeded["acme"].id in data["scope"]
    assert_key_stayed_private(out, key, server.url)

    kpis = data["kpis"]
    assert float(kpis["kpi-day"]["value"]) == pytest.approx(usage["spent_usd"]["day"])
    assert float(kpis["kpi-month"]["value"]) == pytest.approx(usage["spent_usd"]["month"])
    assert kpis["kpi-day"]["text"] == f"${usage['spent_usd']['day']:,.2f}"
    assert int(kpis["kpi-calls"]["value"]) == stats["operations"]
    assert kpis["kpi-calls"]["text"] == f"{stats['operations']}"
    assert float(kpis["kpi-errors"]["value"]) == pytest.approx(stats["error_rate"])
    assert float(kpis["kpi-p95"]["value"]) == pytest.approx(stats["latency_ms"]["p95"])

    windows = {w["window"]: w for w in usage["windows"]}
    assert [w["window"] for w in data["windows"]] == ["day", "month", "team:legal:day"]
    for shown in data["windows"]:
        assert float(shown["remaining"]) == pytest.approx(windows[shown["window"]]["remaining_usd"])
        assert shown["text"] == f"${windows[shown['window']]['remaining_usd']:,.2f} left"

    by_day = {r["day"]: r["cost_usd"] for r in usage["by_day"]}
    shown_days = {d["day"]: float(d["cost"]) for d in data["days"]}
    assert len(shown_days) == datetime.now(UTC).day
    for day, cost in by_day.items():
        assert shown_days[day] == pytest.approx(cost)
    by_team = {r["team"]: r["cost_usd"] for r in usage["by_team"]}
    assert {t["team"]: float(t["cost"]) for t in data["teams"]} == pytest.approx(by_team)

    api_latency = {t["team"]: t for t in stats["by_team"]}
    assert {row["team"] for row in data["latency"]} == set(api_latency)
    for row in data["latency"]:
        expected = api_latency[row["team"]]
        assert float(row["p50"]) == pytest.approx(expected["p50_ms"])
        assert float(row["p95"]) == pytest.approx(expected["p95_ms"])
        assert float(row["p99"]) == pytest.approx(expected["p99_ms"])
        assert row["text"][1] == str(expected["calls"])
    assert {e["type"]: int(e["count"]) for e in data["errors"]} == {
        e["type"]: e["count"] for e in stats["errors_by_type"]}
    assert len(stats["errors_by_type"]) >= 3

    assert [r["type"] for r in data["audit"]] == [e["type"] for e in audit["events"]]
    assert data["audit"][0]["type"] == "operation" and "finance / ask" in data["audit"][0]["cells"]
    assert data["budgetHidden"] is False and data["tenantsHidden"] is True and data["tenantOptions"] == [""]


def test_phone_layout_fits_the_screen(dashboard_server):
    server, seeded = dashboard_server
    out = run_browser(f"{server.url}/dashboard#key={seeded['acme_key']}", ARTIFACTS / "dashboard-phone.png", "phone")
    assert out["data"]["state"] == "ready"
    assert out["data"]["overflowX"] is False  # wide tables scroll inside their card, the page does not


def test_admin_view_sees_every_tenant_and_can_drill_in(dashboard_server):
    server, seeded = dashboard_server
    out = run_browser(f"{server.url}/dashboard#key={ADMIN_KEY}", ARTIFACTS / "dashboard-admin.png")
    data = out["data"]
    overview = api(server, "/v1/admin/overview?hours=24", ADMIN_KEY)
    assert data["state"] == "ready" and f"all {len(overview['tenants'])} tenants" in data["scope"]
    assert_key_stayed_private(out, ADMIN_KEY, server.url)
    assert {t["id"] for t in data["tenants"]} == {t["tenant_id"] for t in overview["tenants"]}
    assert data["budgetHidden"] is True and data["tenantsHidden"] is False
    assert float(data["kpis"]["kpi-day"]["value"]) == pytest.approx(overview["usage"]["spent_usd"]["day"])
    assert int(data["kpis"]["kpi-calls"]["value"]) == overview["stats"]["operations"]
    assert {e["type"]: int(e["count"]) for e in data["errors"]} == {
        e["type"]: e["count"] for e in overview["stats"]["errors_by_type"]}
    assert any(c == "Globex Legal" for row in data["tenants"] for c in row["cells"][:1])

    acme = seeded["acme"].id
    drill = run_browser(f"{server.url}/dashboard#key={ADMIN_KEY}", ARTIFACTS / "dashboard-admin-tenant.png",
                        select=acme)["data"]
    usage = api(server, f"/v1/admin/tenants/{acme}/usage", ADMIN_KEY)
    assert acme in drill["scope"] and drill["budgetHidden"] is False
    assert float(drill["kpis"]["kpi-month"]["value"]) == pytest.approx(usage["spent_usd"]["month"])


def test_a_wrong_key_shows_the_form_again(dashboard_server):
    server, _ = dashboard_server
    out = run_browser(f"{server.url}/dashboard#key=mak_this_key_does_not_exist_0000000000",
                      ARTIFACTS / "dashboard-bad-key.png", expect_errors=True)
    assert out["data"]["state"] == "need-key"
    assert "neither a live tenant key nor the admin key" in out["data"]["keyError"]
