"""``GET /health`` in each of its states, with real stores and the fake Messages API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from shared.budget import window_limits
from shared.config import Settings
from shared.http.app import build_app
from shared.runtime import Runtime
from shared.store import open_store
from shared.store.base import Reservation, StoreUnavailable, new_id
from shared.tenants import TenantAdmin
from tests.fakes.messages_api import FakeMessagesServer, error

pytestmark = pytest.mark.integration


class DownStore:
    """A store whose backend cannot be reached: every call raises, as a real outage does."""

    url = "sqlite:///unreachable"

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable("database is locked / connection refused (simulated outage)")

        return fail


@pytest.fixture(scope="module")
def fake():
    with FakeMessagesServer() as server:
        yield server


@pytest.fixture
def real_model(fake, monkeypatch):
    fake.state.reset()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    return {"MULTIAGENT_MODEL_PROVIDER": "anthropic"}


@asynccontextmanager
async def app_on(store_url: str | None, store: Any = None,
                 **env: str) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    settings = Settings.from_env({"MULTIAGENT_STORE": store_url or "sqlite:///unused", **env})
    if store is None:
        store = open_store(settings.store_url)
        store.init()
    runtime = Runtime(settings, store=store)
    transport = httpx.ASGITransport(app=build_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield runtime, client


def assert_shape(body: dict[str, Any]) -> None:
    assert set(body) >= {"status", "checks", "version"}
    assert set(body["checks"]) >= {"store", "secrets", "model", "budget"}
    for check in body["checks"].values():
        assert check["status"] in ("pass", "warn", "fail")
        assert isinstance(check["latency_ms"], float) and check["latency_ms"] >= 0


async def test_healthy_when_every_check_passes(tmp_path, real_model):
    async with app_on(f"sqlite:///{tmp_path}/h.db", **real_model) as (_, client):
        resp = await client.get("/health")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_shape(body)
    assert body["status"] == "healthy", body
    assert {c["status"] for c in body["checks"].values()} == {"pass"}


async def test_degraded_on_the_offline_model(tmp_path):
    async with app_on(f"sqlite:///{tmp_path}/h.db", MULTIAGENT_MODEL_PROVIDER="offline") as (_, client):
        resp = await client.get("/health")
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "degraded"
    assert body["checks"]["model"]["status"] == "warn" and "offline" in body["checks"]["model"]["message"]


async def test_unhealthy_503_when_the_store_is_down(real_model):
    async with app_on(None, store=DownStore(), **real_model) as (_, client):
        resp = await client.get("/health")
    assert resp.status_code == 503
    body = resp.json()
    assert_shape(body)
    assert body["status"] == "unhealthy"
    assert body["checks"]["store"]["status"] == "fail"
    assert "simulated outage" in body["checks"]["store"]["message"]
    assert body["checks"]["budget"]["status"] == "fail"


async def test_unhealthy_503_when_the_model_key_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    async with app_on(f"sqlite:///{tmp_path}/h.db", MULTIAGENT_MODEL_PROVIDER="anthropic") as (_, client):
        resp = await client.get("/health")
    body = resp.json()
    assert resp.status_code == 503 and body["status"] == "unhealthy"
    assert body["checks"]["model"]["status"] == "fail" and "anthropic-api-key" in body["checks"]["model"]["message"]


async def test_degraded_when_the_signing_secret_of_a_distributed_deployment_is_missing(tmp_path, real_model,
                                                                                    monkeypatch):
    monkeypatch.delenv("MULTIAGENT_INTERNAL_SIGNING_KEY", raising=False)
    async with app_on(f"sqlite:///{tmp_path}/h.db", MULTIAGENT_TEAM_URLS='{"legal": "http://127.0.0.1:9"}',
                      **real_model) as (_, client):
        resp = await client.get("/health")
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "degraded"
    secrets = body["checks"]["secrets"]
    assert secrets["status"] == "fail" and "internal-signing-key" in secrets["message"]


def _spend(runtime: Runtime, tenant_id: str, micros: int) -> None:
    tenant = runtime.store.get_tenant(tenant_id)
    assert tenant is not None
    now = time.time()
    limits = window_limits(tenant, "legal", now)
    res = Reservation(id=new_id("res"), tenant_id=tenant_id, amount_micros=micros, windows=[w.key for w in limits],
                      expires_at=now + 60)
    assert runtime.store.reserve(res, limits, [], now).ok
    runtime.store.settle(res, micros, None, [])


async def test_budget_headroom_with_a_tenant_key_and_with_the_admin_key(tmp_path, real_model):
    async with app_on(f"sqlite:///{tmp_path}/h.db", MULTIAGENT_ADMIN_KEY="admin-key-for-tests", **real_model) as (
            runtime, client):
        admin = TenantAdmin(runtime.store, runtime.settings, runtime.catalog)
        ok_tenant, ok_key = admin.create("fine", daily_usd=1.0)
        near_tenant, near_key = admin.create("near", daily_usd=1.0, alert_threshold=0.8)
        gone_tenant, gone_key = admin.create("spent", daily_usd=1.0)
        _spend(runtime, near_tenant.id, 850_000)
        _spend(runtime, gone_tenant.id, 1_000_000)

        async def budget(key: str | None) -> tuple[int, dict[str, Any], str]:
            resp = await client.get("/health", headers={"authorization": f"Bearer {key}"} if key else {})
            return resp.status_code, resp.json()["checks"]["budget"], resp.json()["status"]

        code, check, status = await budget(None)
        assert (code, check["status"], status) == (200, "pass", "healthy") and "tenant key" in check["message"]
        code, check, status = await budget(ok_key)
        assert (code, check["status"], status) == (200, "pass", "healthy")
        code, check, status = await budget(near_key)
        assert (code, check["status"], status) == (200, "warn", "degraded") and "alert threshold" in check["message"]
        code, check, status = await budget(gone_key)
        assert (code, check["status"], status) == (200, "fail", "degraded") and "402" in check["message"]
        code, check, _ = await budget("mak_not_a_real_key_000000000000000")
        assert check["status"] == "warn"
        code, check, _ = await budget("admin-key-for-tests")
        assert check["status"] == "warn"
        assert "3 tenants: 1 past their alert threshold, 1 out of budget" in check["message"]


async def test_deep_check_makes_one_cheap_call_and_caches_it(tmp_path, real_model, fake):
    async with app_on(f"sqlite:///{tmp_path}/h.db", **real_model) as (_, client):
        first = (await client.get("/health?deep=1")).json()
        second = (await client.get("/health?deep=1")).json()
        plain = (await client.get("/health")).json()
    assert first["status"] == "healthy" and first["checks"]["model_call"]["status"] == "pass"
    assert "cached" in second["checks"]["model_call"]["message"]
    assert "model_call" not in plain["checks"]
    calls = fake.state.log()
    assert len(calls) == 1 and calls[0]["max_tokens"] == 1


async def test_deep_check_failure_is_degraded_not_down(tmp_path, real_model, fake):
    fake.state.push(error(400, message="model not found"))
    async with app_on(f"sqlite:///{tmp_path}/h.db", **real_model) as (_, client):
        resp = await client.get("/health?deep=1")
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "degraded"
    assert body["checks"]["model_call"]["status"] == "fail"
