"""The infrastructure and CI files pass the linters CI runs: checkov (Terraform, Dockerfile,
workflows), actionlint, zizmor and ShellCheck.

They live in their own venv, .venv-checkov, installed by scripts/test.d/checkov.sh (which
scripts/test.sh runs first); each test skips with a one-line reason when its tool is not
there. Deliberate checkov skips are inline (``#checkov:skip=ID:reason``) and each must give
a reason.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv-checkov" / "bin"
HINT = "run scripts/test.d/checkov.sh (scripts/test.sh does) to install it into .venv-checkov"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
OUR_SCRIPTS = ["build.sh", "deploy.sh", "destroy.sh", "set-secret.sh", "_cloud.sh", "test.d/checkov.sh"]


def tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed: {HINT}")
    return path


def json_documents(text: str) -> list[Any]:
    """checkov prints one JSON document per runner, back to back."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        doc, i = decoder.raw_decode(text, i)
        docs.extend(doc if isinstance(doc, list) else [doc])
    return docs


def test_checkov_finds_nothing_to_fix() -> None:
    # given checkov and our infrastructure, container and workflow definitions
    checkov = tool("checkov")
    targets = [("terraform", ["-d", "infra/terraform"]), ("dockerfile", ["-f", "Dockerfile"]),
               ("github_actions", ["-d", ".github"])]
    # when it scans each (in parallel; --skip-download: no policy metadata from the network)
    runs = {framework: subprocess.Popen([str(checkov), *args, "--framework", framework, "--skip-download", "--quiet",
                                         "--compact", "-o", "json"], cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
            for framework, args in targets}
    reports: dict[str, list[Any]] = {}
    for framework, proc in runs.items():
        out, err = proc.communicate(timeout=300)
        reports[framework] = [d for d in json_documents(out) if d.get("check_type") == framework]
        assert reports[framework], f"checkov {framework}: no report\n{err[-2000:]}"
    # then there is no failed check and no parsing error anywhere
    for framework, docs in reports.items():
        for doc in docs:
            failed = [(c["check_id"], c["resource"], c["file_path"]) for c in doc["results"]["failed_checks"]]
            assert failed == [], f"checkov {framework}: {failed}"
            assert doc["summary"]["parsing_errors"] == 0
    assert sum(d["summary"]["passed"] for d in reports["terraform"]) > 500


def test_every_checkov_skip_gives_a_reason() -> None:
    # given the inline skips in the Terraform
    skips = [(p, m) for p in (ROOT / "infra" / "terraform").rglob("*.tf")
             for m in re.finditer(r"#checkov:skip=([A-Z0-9_]+)(:?)(.*)", p.read_text())]
    # then every one names its check and says why
    assert skips
    for path, match in skips:
        assert match.group(2) == ":" and len(match.group(3).strip()) > 20, f"{path}: {match.group(0)}"


def test_actionlint_accepts_the_workflows() -> None:
    actionlint = tool("actionlint")
    shellcheck = BIN / "shellcheck"
    args = [str(actionlint), "-no-color"] + (["-shellcheck", str(shellcheck)] if shellcheck.exists() else [])
    result = subprocess.run([*args, *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    zizmor = tool("zizmor")
    result = subprocess.run([str(zizmor), "--offline", "--no-progress", "--format", "plain", ".github/workflows"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def test_shellcheck_accepts_the_deploy_scripts() -> None:
    shellcheck = tool("shellcheck")
    result = subprocess.run([str(shellcheck), "-x", *(f"scripts/{s}" for s in OUR_SCRIPTS)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout


def test_workflows_use_short_lived_credentials_and_gate_prod() -> None:
    # given the deploy workflows
    deploy = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    environment = (ROOT / ".github" / "workflows" / "deploy-environment.yml").read_text()
    text = deploy + environment
    # then cloud credentials come from OIDC / workload identity federation only
    assert "id-token: write" in environment and "role-to-assume:" in environment
    assert "workload_identity_provider:" in environment
    for long_lived in ("aws-access-key-id", "aws-secret-access-key", "credentials_json", "AWS_SECRET_ACCESS_KEY",
                       "secrets."):
        assert long_lived not in text, long_lived
    # and pull requests plan, main applies dev -> staging -> prod, prod in its own GitHub environment
    assert "mode: plan" in deploy and "github.event_name == 'pull_request'" in deploy
    assert re.search(r"staging:\n(.*\n)*?\s+needs: \[clouds, dev\]", deploy)
    assert re.search(r"prod:\n(.*\n)*?\s+needs: \[clouds, staging\]", deploy)
    assert "environment: ${{ inputs.mode == 'apply' && inputs.env" in environment
    # and every action is pinned to a commit
    for line in re.findall(r"uses: (\S+)", text):
        assert line.startswith("./") or re.search(r"@[0-9a-f]{40}$", line), line
