"""Every operation of every team answers 200 with schema-valid output, on the fake
Messages API (real anthropic SDK over loopback) and on the offline model."""

from __future__ import annotations

import pytest

from shared.catalog import load_catalog
from shared.models.offline import example_from_schema
from tests.helpers import local_app

pytestmark = pytest.mark.integration

OPERATIONS = [(team.name, op.name) for team in load_catalog() for op in team.operations]


def example_input(team: str, operation: str) -> dict:
    return example_from_schema(load_catalog().team(team).operation(operation).input_schema())


def test_catalog_has_every_operation():
    assert len(OPERATIONS) >= 24 * 3


@pytest.mark.parametrize("provider", ["fake-anthropic", "offline"])
async def test_every_operation_of_every_team(provider, fake, tmp_path, monkeypatch):
    env: dict[str, str] = {"MULTIAGENT_DEFAULT_RPM": "1000", "MULTIAGENT_DEFAULT_TPM": "100000000"}
    if provider == "fake-anthropic":
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        env |= {"MULTIAGENT_MODEL_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "test-key"}
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    async with local_app(f"sqlite:///{tmp_path}/s.db", **env) as app:
        _, key = app.tenant(daily_usd=1000, monthly_usd=1000)
        failures = []
        for team, operation in OPERATIONS:
            resp = await app.call(team, operation, example_input(team, operation), key)
            if resp.status_code != 200:
                failures.append((team, operation, resp.status_code, resp.text[:200]))
                continue
            body = resp.json()
            op = load_catalog().team(team).operation(operation)
            op.output.model_validate(body["output"])  # schema-valid output
            if provider == "offline":
                assert body["model"] == "offline" and body["usage"]["cost_usd"] == 0
            else:
                assert body["usage"]["cost_usd"] > 0, (team, operation)
                assert body["model"].startswith("claude-")
        assert failures == []
