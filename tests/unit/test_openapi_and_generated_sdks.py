"""The OpenAPI document is valid and complete, and the committed SDK artifacts are fresh.

When a staleness test fails, regenerate with ``scripts/generate_sdks.sh`` and commit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from shared.catalog import load_catalog
from shared.errors import PROBLEM_TYPES
from shared.openapi import build_openapi, dumps, export_document
from shared.sdkgen import OPENAPI_PATH, PYTHON_TYPES_PATH, TS_TYPES_PATH, python_types, typescript_types

REGENERATE = "stale: run scripts/generate_sdks.sh and commit the result"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return export_document()


def test_the_exported_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_operation_has_its_schemas_headers_and_every_problem(document: dict[str, Any]) -> None:
    catalog = load_catalog()
    schemas = document["components"]["schemas"]
    for team in catalog:
        for op in team.operations:
            post = document["paths"][f"/v1/teams/{team.name}/{op.name}"]["post"]
            assert post["x-team"] == team.name and post["x-operation"] == op.name
            input_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
            assert set(schemas[input_ref]["properties"]) == set(op.input_schema()["properties"])
            ok = post["responses"]["200"]
            assert {"x-request-id", "x-budget-remaining-usd", "x-ratelimit-remaining-requests",
                    "x-ratelimit-remaining-tokens"} <= set(ok["headers"])
            statuses = set(post["responses"])
            assert {str(p.status) for p in PROBLEM_TYPES} <= statuses
            params = {p["$ref"].split("/")[-1] for p in post["parameters"]}
            assert {"IdempotencyKey", "SessionId"} <= params
    responses = document["components"]["responses"]
    assert set(responses["RateLimited"]["headers"]) >= {"retry-after", "x-should-retry"}
    assert set(responses["Unavailable"]["headers"]) >= {"retry-after", "x-should-retry"}
    assert "x-should-retry" in responses["BudgetExceeded"]["headers"]
    budget = schemas["BudgetExceededProblem"]  # one flat object per problem: generators cannot merge allOf consts
    assert "allOf" not in budget and budget["properties"]["type"]["const"] == "/problems/budget-exceeded"
    assert set(budget["required"]) == {"type", "title", "status", "detail", "limit_usd", "spent_usd", "window",
                                       "reset_at"}
    titles = [s["title"] for s in schemas.values() if "title" in s]
    assert len(titles) == len(set(titles)), "two components share a title: generated class names would collide"
    assert set(document["components"]["securitySchemes"]) >= {"bearer", "apiKey"}


def test_paths_are_those_the_app_serves(document: dict[str, Any]) -> None:
    for path in ("/health", "/v1/teams", "/v1/teams/{team}", "/v1/usage", "/v1/audit", "/v1/admin/tenants",
                 "/v1/admin/tenants/{tenant_id}", "/v1/admin/tenants/{tenant_id}/keys"):
        assert path in document["paths"], path
    only_some = build_openapi(load_catalog(), "0", served=["/health"])
    assert "/v1/admin/tenants" not in only_some["paths"] and "/health" in only_some["paths"]


async def test_the_live_document_and_docs_page(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config import Settings
    from shared.http.app import build_app
    from shared.runtime import Runtime

    app = build_app(Runtime(Settings(model_provider="offline", store_url=f"sqlite:///{tmp_path}/x.db")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        doc = (await client.get("/openapi.json")).json()
        validate(doc)
        assert len([p for p in doc["paths"] if p.startswith("/v1/teams/") and "{" not in p]) == sum(
            len(t.operations) for t in load_catalog())
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "/openapi.json" in docs.text
    # what `export openapi` writes is what `multiagent serve` answers
    served = build_app(Runtime(Settings(model_provider="offline", store_url=f"sqlite:///{tmp_path}/y.db")),
                       serve_mode=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url="http://t") as client:
        assert (await client.get("/openapi.json")).json() == export_document()


def test_exported_openapi_is_fresh(document: dict[str, Any]) -> None:
    assert OPENAPI_PATH.read_text() == dumps(document), f"{OPENAPI_PATH} {REGENERATE}"


def test_python_sdk_types_are_fresh(document: dict[str, Any]) -> None:
    assert PYTHON_TYPES_PATH.read_text() == python_types(document), f"{PYTHON_TYPES_PATH} {REGENERATE}"


def test_typescript_sdk_types_are_fresh(document: dict[str, Any]) -> None:
    assert TS_TYPES_PATH.read_text() == typescript_types(document), f"{TS_TYPES_PATH} {REGENERATE}"


def test_export_command_writes_and_checks(tmp_path: Any) -> None:
    out = tmp_path / "openapi.json"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "shared.cli", "export", *args], capture_output=True, text=True,
                              timeout=120)

    assert run("openapi", "--out", str(out)).returncode == 0
    assert json.loads(out.read_text())["openapi"] == "3.1.0"
    assert run("openapi", "--out", str(out), "--check").returncode == 0
    out.write_text("{}")
    stale = run("openapi", "--out", str(out), "--check")
    assert stale.returncode == 1 and "stale" in stale.stderr and "Traceback" not in stale.stderr
    assert "sdk-types" in run("--help").stdout + run("sdk-types", "--check").stderr
