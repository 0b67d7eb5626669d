"""Small test helpers: an in-process app with its own store, model and tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from shared.config import Settings
from shared.http.app import build_app
from shared.runtime import Runtime
from shared.store import open_store
from shared.tenants import TenantAdmin


@dataclass
class LocalApp:
    """An app served in-process through httpx's ASGI transport."""

    runtime: Runtime
    client: httpx.AsyncClient

    def tenant(self, name: str = "acme", **fields: Any) -> tuple[str, str]:
        """(tenant_id, api_key) of a new tenant."""
        admin = TenantAdmin(self.runtime.store, self.runtime.settings, self.runtime.catalog)
        tenant, key = admin.create(name, **fields)
        return tenant.id, key

    async def call(self, team: str, operation: str, body: Any, key: str | None, **headers: str) -> httpx.Response:
        """POST an operation."""
        if key:
            headers["authorization"] = f"Bearer {key}"
        return await self.client.post(f"/v1/teams/{team}/{operation}", json=body, headers=headers)


@asynccontextmanager
async def local_app(store_url: str, **env: str) -> AsyncIterator[LocalApp]:
    """Build the gateway app on ``store_url`` with settings from ``env`` (MULTIAGENT_* names)."""
    settings = Settings.from_env({"MULTIAGENT_STORE": store_url, **env})
    store = open_store(store_url)
    store.init()
    runtime = Runtime(settings, store=store)
    app = build_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
        yield LocalApp(runtime, client)
    await runtime.close_provider()
    store.close()
