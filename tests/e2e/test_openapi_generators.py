"""A third-party generator turns the committed OpenAPI document into a complete client.

``openapi-python-client`` (a dev dependency) generates from ``sdk/openapi.json`` without a
single warning (no dropped response, no dropped model), and the client it wrote, imported
from a temporary directory, calls a live ``multiagent serve`` on the fake Messages API (real
costs): a 200 decodes into the operation's result model, a refused call into the 402
``BudgetExceededProblem`` and an unknown input field into the 422 ``ValidationErrorProblem``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.live_server import REPO_ROOT, LiveServer, live_server_fixture

pytestmark = pytest.mark.e2e

server = live_server_fixture(fake_model=True, tenant_args=("--rpm", "100000", "--tpm", "1000000000"))
PACKAGE = "mafw_generated_client"  # a name nothing else imports


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, str]]:
    """(the generated package, the generator's output), imported from a temporary directory."""
    bindir = Path(sys.executable).parent
    generator = shutil.which("openapi-python-client", path=str(bindir))
    assert generator, "openapi-python-client is a dev dependency (pyproject.toml [dev])"
    root = tmp_path_factory.mktemp("generated")
    proc = subprocess.run(
        [generator, "generate", "--path", str(REPO_ROOT / "sdk" / "openapi.json"), "--meta", "none",
         "--output-path", str(root / PACKAGE)],
        capture_output=True, text=True, timeout=300, cwd=root,
        env={**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"},  # its ruff post-hooks
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE), output
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_generator_keeps_every_response_and_model(generated: tuple[ModuleType, str]) -> None:
    _, output = generated
    # when openapi-python-client reads the committed document, then it has nothing to warn about
    assert "warning" not in output.lower(), output[:4000]
    assert "Unable to" not in output and "Cannot parse" not in output and "omitted" not in output, output[:4000]
    # and every operation came out with every response of the document, each decoded by its own model
    doc = json.loads((REPO_ROOT / "sdk" / "openapi.json").read_text())
    problems = {f"{name[:-len('Problem')]}Problem" for name in doc["components"]["schemas"] if name.endswith("Problem")}
    models = _module("models")
    assert all(hasattr(models, name) for name in problems), problems - set(dir(models))
    operations = 0
    for item in doc["paths"].values():
        for op in item.values():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            tag = op["tags"][0].replace("-", "_")
            source = inspect.getsource(_module(f"api.{tag}.{re.sub('_+', '_', op['operationId'].lower())}"))
            for status, response in op["responses"].items():
                if status != "default":
                    assert f"response.status_code == {status}" in source, (op["operationId"], status)
                ref = response.get("$ref", "").rsplit("/", 1)[-1]
                schema = doc["components"]["responses"].get(ref, {}).get("content", {}).get(
                    "application/problem+json", {}).get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                if schema:
                    assert f"{schema}.from_dict(" in source, (op["operationId"], status, schema)
            operations += 1
    assert operations >= 100
    assert hasattr(models, "FinanceAskInput") and hasattr(models, "LegalAskOutput")  # not 24 `AskInput`s


def test_the_generated_client_calls_the_live_server(generated: tuple[ModuleType, str], server: LiveServer) -> None:
    package, _ = generated
    api = _module("api.finance.finance_analyze_investment")
    models = _module("models")
    body = models.FinanceAnalyzeInvestmentInput(
        risk_tolerance=models.FinanceAnalyzeInvestmentInputRiskTolerance("medium"), amount=25_000.0,
        horizon_years=10)
    # when the default tenant calls an operation through the generated client
    with package.AuthenticatedClient(base_url=server.url, token=server.api_key, raise_on_unexpected_status=True,
                                     timeout=httpx.Timeout(60)) as client:
        ok = api.sync_detailed(client=client, body=body)
    # then the answer decodes into the operation's result model
    assert ok.status_code == 200, ok.content[:500]
    assert isinstance(ok.parsed, models.FinanceAnalyzeInvestmentResult)
    assert ok.parsed.team == "finance" and ok.parsed.operation == "analyze_investment"
    assert isinstance(ok.parsed.output, models.FinanceAnalyzeInvestmentOutput)
    assert ok.parsed.output.allocation and ok.parsed.usage.cost_usd > 0

    # when a tenant with a tiny cap calls, then the 402 decodes into its own problem model
    poor = server.create_tenant("generated-poor", "--daily-usd", "0.0001")
    with package.AuthenticatedClient(base_url=server.url, token=poor.api_key, raise_on_unexpected_status=True,
                                     timeout=httpx.Timeout(60)) as client:
        refused = api.sync_detailed(client=client, body=body)
        assert refused.status_code == 402, refused.content[:500]
        problem = refused.parsed
        assert isinstance(problem, models.BudgetExceededProblem), type(problem)
        assert problem.type_ == "/problems/budget-exceeded" and problem.status == 402
        assert problem.window == "day" and problem.limit_usd == 0.0001 and problem.spent_usd == 0
        assert problem.reset_at.year >= 2024 and problem.request_id
        assert refused.headers["x-should-retry"] == "false"

        # and an unknown field (a typo of horizon_years) is a 422 naming it, decoded too
        # (the generated model cannot carry one: the body goes through the client's own httpx client)
        raw = client.get_httpx_client().post("/v1/teams/finance/analyze_investment",
                                             json={"risk_tolerance": "low", "amount": 10.0, "horizon": 10})
        decoded = api._build_response(client=client, response=raw).parsed
        assert isinstance(decoded, models.ValidationErrorProblem), raw.text[:500]
        assert [(e.loc, e.msg) for e in decoded.errors] == [(["body", "horizon"], "Extra inputs are not permitted")]
