"""/docs without a browser: every operation carries a valid example body and its curl line, the page and
its vendored assets are served (gzip, ETag, strict CSP), the vendored files are those SOURCE.txt names, and
a team function's app never loads the page's module (no cold-start cost)."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.catalog import load_catalog
from shared.openapi import build_openapi

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "observability" / "docs_assets"


def test_every_operation_has_a_valid_example_and_a_curl_line() -> None:
    doc = build_openapi(load_catalog(), "0")
    for team in load_catalog():
        for op in team.operations:
            item = doc["paths"][f"/v1/teams/{team.name}/{op.name}"]["post"]
            example = item["requestBody"]["content"]["application/json"]["example"]
            op.input.model_validate(example)  # the example is accepted as it is
            curl = item["description"].split("```sh\n")[1].split("\n```")[0]
            words = shlex.split(curl)
            assert words[:3] == ["curl", "-s", f"$MULTIAGENT_API_URL/v1/teams/{team.name}/{op.name}"]
            assert json.loads(words[words.index("-d") + 1]) == example
    finance = doc["paths"]["/v1/teams/finance/analyze_investment"]["post"]["requestBody"]["content"]
    assert finance["application/json"]["example"] == {"risk_tolerance": "low", "amount": 10000}


@pytest.fixture
async def client(tmp_path: Any) -> Any:
    from shared.config import Settings
    from shared.http.app import build_app
    from shared.runtime import Runtime

    app = build_app(Runtime(Settings(model_provider="offline", store_url=f"sqlite:///{tmp_path}/x.db")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_page_and_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and "docs/assets/swagger-ui-bundle.js" in page.text
    assert "script-src 'self';" in page.headers["content-security-policy"]
    bundle = await client.get("/docs/assets/swagger-ui-bundle.js", headers={"accept-encoding": "gzip"})
    assert bundle.headers["content-encoding"] == "gzip"
    assert bundle.content == (ASSETS / "swagger-ui-bundle.js").read_bytes()
    assert int(bundle.headers["content-length"]) < len(bundle.content) / 3
    again = await client.get("/docs/assets/swagger-ui-bundle.js", headers={"if-none-match": bundle.headers["etag"]})
    assert again.status_code == 304 and not again.content
    plain = await client.get("/docs/assets/docs.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and "SwaggerUIBundle" in plain.text
    missing = await client.get("/docs/assets/__init__.py")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_vendored_files_match_source_txt() -> None:
    lines = (ASSETS / "SOURCE.txt").read_text().splitlines()
    assert lines[0].startswith("swagger-ui-dist@")
    hashes = dict(reversed(line.split()) for line in lines[2:])
    assert set(hashes) == {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE",
                           "swagger-ui-bundle.js.LICENSE.txt"}
    for name, digest in hashes.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name


def test_a_team_function_does_not_load_the_docs_page() -> None:
    code = """
import sys
from shared.http.app import build_app
from shared.config import Settings
from shared.runtime import Runtime
from shared.store.sqlite import SQLiteStore
settings = Settings(model_provider="offline", store_url="sqlite:///:memory:", team="finance")
build_app(Runtime(settings, store=SQLiteStore(":memory:")))
print(sorted(m for m in sys.modules if "docs" in m))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
