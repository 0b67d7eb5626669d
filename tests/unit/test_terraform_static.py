"""What the Terraform says, read from the parsed HCL (python-hcl2): both roots get all 24
teams from the exported list, only the gateway is public on either cloud, every function
has its own identity, no secret value is written anywhere, variables are typed and
validated, backups and TTLs are declared. The GCP root cannot be planned offline (no
Google provider here), so these checks are its proof; the AWS root is also applied for
real in tests/integration/test_terraform_aws.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
TF = ROOT / "infra" / "terraform"
ENVIRONMENTS = ("dev", "staging", "prod")
CLOUDS = ("aws", "gcp")
TERRAFORM = shutil.which("terraform")


# --- reading HCL ---------------------------------------------------------------------------
_MARKERS = ("__is_block__", "__comments__", "__inline_comments__")


def _clean(value: Any) -> Any:
    """python-hcl2 keeps the quotes of names and strings and adds markers: drop them."""
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if k not in _MARKERS}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return _unquote(value) if isinstance(value, str) else value


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


@cache
def parsed(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return dict(_clean(hcl2.load(f)))


def tf_files() -> list[Path]:
    return sorted(p for p in TF.rglob("*.tf") if ".terraform" not in p.parts)


def blocks(path: Path, kind: str) -> dict[str, Any]:
    """``resource``/``data`` blocks as {"type.name": body}, ``module``/``variable``/``output`` as {name: body}."""
    out: dict[str, Any] = {}
    for entry in parsed(path).get(kind, []):
        for name, body in entry.items():
            if kind in ("resource", "data"):
                for label, inner in body.items():
                    out[f"{name}.{label}"] = inner
            else:
                out[name] = body
    return out


def all_resources() -> dict[tuple[Path, str], Any]:
    return {(p, k): v for p in tf_files() for k, v in blocks(p, "resource").items()}


def tfvars(path: Path) -> dict[str, Any]:
    return parsed(path)


# --- the tests -----------------------------------------------------------------------------
def test_every_terraform_file_parses() -> None:
    # given every .tf, .tfvars and .tfbackend under infra/terraform
    files = [p for p in TF.rglob("*") if p.suffix in (".tf", ".tfvars", ".tfbackend") and ".terraform" not in p.parts]
    # then each parses, and the layout is modules + two roots + three environments
    assert len(files) > 20
    for path in files:
        parsed(path)
    for module in ("aws/function", "aws/state", "aws/secrets", "gcp/function", "gcp/state", "gcp/secrets"):
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (TF / "modules" / module / name).is_file(), f"{module}/{name}"
    for env in ENVIRONMENTS:
        for name in ("aws.tfvars", "gcp.tfvars", "aws.s3.tfbackend", "gcp.gcs.tfbackend"):
            assert (TF / "environments" / env / name).is_file(), f"{env}/{name}"


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed: `terraform fmt -check` skipped")
def test_terraform_is_formatted() -> None:
    # when terraform fmt checks every file
    result = subprocess.run([str(TERRAFORM), "fmt", "-check", "-recursive", "-diff", str(TF)], capture_output=True,
                            text=True, timeout=60)
    # then nothing needs reformatting
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_team_list_is_the_catalog_and_reaches_both_roots() -> None:
    # given the exported list and the catalog
    exported = json.loads((TF / "teams.auto.tfvars.json").read_text())["teams"]
    catalog = {t.name: t.description for t in load_catalog()}
    # then they agree, all 24 teams
    assert len(catalog) == 24 and {k: v["description"] for k, v in exported.items()} == catalog
    for cloud in CLOUDS:
        root = TF / cloud
        # and each root auto-loads that very file and makes one function per entry with for_each
        link = root / "teams.auto.tfvars.json"
        assert link.is_symlink() and link.resolve() == (TF / "teams.auto.tfvars.json").resolve()
        assert "teams" in blocks(root / "variables.tf", "variable")
        team_module = blocks(root / "main.tf", "module")["team"]
        assert team_module["for_each"] == "${var.teams}"
        assert team_module["source"] == f"../modules/{cloud}/function"


def test_a_stale_team_list_fails_the_check(tmp_path: Path) -> None:
    # given the committed list, and a copy that lost a team
    fresh = [sys.executable, "-m", "shared.cli", "export", "terraform", "--check"]
    stale = tmp_path / "teams.auto.tfvars.json"
    data = json.loads((TF / "teams.auto.tfvars.json").read_text())
    data["teams"].pop("legal")
    stale.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    # when `multiagent export terraform --check` compares each with the catalog
    ok = subprocess.run(fresh, cwd=ROOT, capture_output=True, text=True, timeout=60)
    bad = subprocess.run([*fresh, "--out", str(stale)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    # then the committed one is up to date and the stale one fails with what to run
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 1 and "stale" in bad.stderr and "multiagent export terraform" in bad.stderr


def test_only_the_gateway_is_public_on_aws() -> None:
    # given the AWS function module and the root's calls of it
    module = TF / "modules" / "aws" / "function" / "main.tf"
    resources = blocks(module, "resource")
    calls = blocks(TF / "aws" / "main.tf", "module")
    # then the module makes a URL (auth NONE) and a public permission only when public_url is set
    url = resources["aws_lambda_function_url.this"]
    permission = resources["aws_lambda_permission.public_url"]
    assert url["count"] == permission["count"] == "${var.public_url ? 1 : 0}"
    assert url["authorization_type"] == "NONE"
    assert permission["principal"] == "*" and permission["action"] == "lambda:InvokeFunctionUrl"
    assert permission["function_url_auth_type"] == "NONE"
    assert blocks(TF / "modules" / "aws" / "function" / "variables.tf", "variable")["public_url"]["default"] is False
    # and only the gateway's call sets it
    assert calls["gateway"]["public_url"] is True
    assert "public_url" not in calls["team"]
    # and no other file creates a URL, a permission or any policy with a public principal
    for path, name in all_resources():
        if name.split(".")[0] in ("aws_lambda_function_url", "aws_lambda_permission"):
            assert path == module, f"{name} in {path}"
    for path in tf_files():
        if path != module:
            assert '"*"' not in json.dumps([v for k, v in blocks(path, "resource").items()
                                            if k.startswith("aws_lambda")]), path


def test_only_the_gateway_is_public_on_gcp() -> None:
    # given the Cloud Run module and the root's calls of it
    module_dir = TF / "modules" / "gcp" / "function"
    locals_ = parsed(module_dir / "main.tf")["locals"][0]
    invoker = blocks(module_dir / "main.tf", "resource")["google_cloud_run_v2_service_iam_member.invoker"]
    calls = blocks(TF / "gcp" / "main.tf", "module")
    # then allUsers is granted run.invoker only when var.public, otherwise only var.invokers are
    assert locals_["invokers"] == '${var.public ? ["allUsers"] : var.invokers}'
    assert invoker["for_each"] == "${toset(local.invokers)}" and invoker["role"] == "roles/run.invoker"
    assert blocks(module_dir / "variables.tf", "variable")["public"]["default"] is False
    # and only the gateway is public; teams are invokable by the gateway's service account alone
    assert calls["gateway"]["public"] is True
    assert "public" not in calls["team"]
    assert calls["team"]["invokers"] == ["${module.gateway.service_account_member}"]
    # and nothing else anywhere names a public member or grants run.invoker (checkov does not check this)
    for path in tf_files():
        # the configuration (not comments or descriptions)
        text = json.dumps({k: v for k, v in parsed(path).items() if k not in ("variable", "output")})
        if path != module_dir / "main.tf":
            assert "allUsers" not in text and "allAuthenticatedUsers" not in text, path
        assert "allAuthenticatedUsers" not in text
        assert "invoker_iam_disabled" not in text, path
    for (path, name), _ in all_resources().items():
        if name.split(".")[0].startswith(("google_cloud_run", "google_project_iam")) and "iam" in name:
            assert path == module_dir / "main.tf", f"{name} in {path}"


def _gcp_account_id(name: str) -> str:
    """modules/gcp/function's local.account_id, computed the same way."""
    return f"{name[:25].rstrip('-')}-{hashlib.sha1(name.encode()).hexdigest()[:4]}"


def test_every_function_has_its_own_identity() -> None:
    # given the function modules
    aws = blocks(TF / "modules" / "aws" / "function" / "main.tf", "resource")
    gcp_module = TF / "modules" / "gcp" / "function" / "main.tf"
    gcp = blocks(gcp_module, "resource")
    # then each instance makes one role / service account of its own and runs as it
    assert [k for k in aws if k.startswith("aws_iam_role.")] == ["aws_iam_role.this"]
    assert aws["aws_iam_role.this"]["name"] == "${var.name}-role"
    assert aws["aws_lambda_function.this"]["role"] == "${aws_iam_role.this.arn}"
    assert [k for k in gcp if k.startswith("google_service_account.")] == ["google_service_account.this"]
    assert gcp["google_service_account.this"]["account_id"] == "${local.account_id}"
    template = gcp["google_cloud_run_v2_service.this"]["template"][0]
    assert template["service_account"] == "${google_service_account.this.email}"
    assert parsed(gcp_module)["locals"][0]["account_id"] == (
        '${trimsuffix(substr(var.name, 0, 25), "-")}-${substr(sha1(var.name), 0, 4)}')
    # and the names the roots give are distinct and valid for all 25 functions in every environment
    teams = sorted(json.loads((TF / "teams.auto.tfvars.json").read_text())["teams"])
    for env in ENVIRONMENTS:
        names = [f"multiagent-{env}-{t}" for t in teams] + [f"multiagent-{env}-gateway"]
        accounts = [_gcp_account_id(n) for n in names]
        assert len(set(names)) == len(set(accounts)) == 25
        for name, account in zip(names, accounts, strict=True):
            assert len(f"{name}-role") <= 64 and len(name) <= 49, name  # IAM role, Cloud Run service
            assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", account), account


SECRET_VALUE = re.compile(
    r"sk-ant-[A-Za-z0-9_-]{8,}|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY|mak_[A-Za-z0-9_-]{20,}"
    r"|\"[0-9a-f]{40,}\"|ya29\.[A-Za-z0-9_-]{20,}"
)


def test_no_secret_value_in_any_terraform_file() -> None:
    # given every Terraform file, tfvars, backend config and the exported list
    files = [p for p in TF.rglob("*") if p.is_file() and ".terraform" not in p.parts]
    for path in files:
        text = path.read_text()
        # then no value that looks like a key is written in it
        assert not SECRET_VALUE.search(text), f"{path}: {SECRET_VALUE.search(text)}"
    # and no resource puts a secret's value into Terraform (or its state)
    for (path, name), body in all_resources().items():
        assert not name.startswith(("aws_secretsmanager_secret_version", "google_secret_manager_secret_version")), path
        assert not {"secret_string", "secret_data", "secret_binary"} & set(body), (path, name)
    # and no function gets a secret through its environment: they read the secret stores
    for cloud in CLOUDS:
        main = parsed(TF / cloud / "main.tf")
        text = json.dumps(main)
        for forbidden in ("ANTHROPIC_API_KEY", "MULTIAGENT_INTERNAL_SIGNING_KEY", "MULTIAGENT_ADMIN_KEY"):
            assert forbidden not in text, (cloud, forbidden)
        assert main["locals"][0]["common_environment"]["MULTIAGENT_SECRETS"] == cloud
    # and no variable could carry one in
    for path in tf_files():
        for name in blocks(path, "variable"):
            assert not re.search(r"(password|secret_value|api_key|token)", name), (path, name)


def test_variables_are_typed_documented_and_validated() -> None:
    # given every variable of every module and root
    for path in [p for p in tf_files() if p.name == "variables.tf"]:
        for name, body in blocks(path, "variable").items():
            # then each has a type and a description
            assert body.get("type") and body.get("description"), f"{path}: {name}"
    # and the sizing of functions is typed with optional() defaults and validated
    for cloud in CLOUDS:
        variables = blocks(TF / cloud / "variables.tf", "variable")
        for name in ("environment", "teams", "functions", "team_overrides", "gateway"):
            assert variables[name].get("validation"), f"{cloud}: {name} has no validation"
        assert "optional(" in variables["functions"]["type"]
        assert "optional(" in variables["team_overrides"]["type"]
    aws_function = blocks(TF / "modules" / "aws" / "function" / "variables.tf", "variable")
    assert len(aws_function["settings"]["validation"]) >= 3
    gcp_function = blocks(TF / "modules" / "gcp" / "function" / "variables.tf", "variable")
    assert len(gcp_function["settings"]["validation"]) >= 5
    assert "reserved_concurrency" in blocks(TF / "aws" / "variables.tf", "variable")["functions"]["type"]


def test_backups_and_ttl_are_declared() -> None:
    # given the state modules
    table = blocks(TF / "modules" / "aws" / "state" / "main.tf", "resource")["aws_dynamodb_table.store"]
    firestore = blocks(TF / "modules" / "gcp" / "state" / "main.tf", "resource")
    ttl_collections = blocks(TF / "modules" / "gcp" / "state" / "variables.tf", "variable")["ttl_collections"]
    # then DynamoDB has point-in-time recovery always on, TTL on `ttl`, on-demand billing
    assert table["point_in_time_recovery"][0]["enabled"] is True
    assert table["ttl"][0] == {"attribute_name": "ttl", "enabled": True}
    assert table["billing_mode"] == "PAY_PER_REQUEST" and table["name"] == "${var.table_prefix}-store"
    # and Firestore has PITR, daily and weekly scheduled backups, and a TTL policy per expiring collection
    assert firestore["google_firestore_database.this"]["point_in_time_recovery_enablement"] == (
        "POINT_IN_TIME_RECOVERY_ENABLED")
    assert "daily_recurrence" in firestore["google_firestore_backup_schedule.daily"]
    assert firestore["google_firestore_backup_schedule.weekly"]["weekly_recurrence"][0]["day"] == "SUNDAY"
    assert firestore["google_firestore_field.ttl"]["field"] == "ttl"
    # exactly the collection groups the Firestore store documents as expiring
    docstring = (ROOT / "shared" / "store" / "firestore.py").read_text().split('"""')[1]
    match = re.search(r"--collection-group=(\w+)\s+--enable-ttl``; likewise ([^)]+)\)", docstring)
    assert match, "shared/store/firestore.py no longer lists its TTL collection groups"
    documented = {match.group(1), *(c.strip() for c in match.group(2).replace("\n", " ").split(","))}
    assert set(ttl_collections["default"]) == documented
    # and prod keeps weekly backups for 14 weeks
    assert tfvars(TF / "environments" / "prod" / "gcp.tfvars")["store"]["weekly_backup_retention_days"] == 98


def test_environments_are_thin_callers_with_their_own_state() -> None:
    for cloud in CLOUDS:
        declared = set(blocks(TF / cloud / "variables.tf", "variable"))
        for env in ENVIRONMENTS:
            values = tfvars(TF / "environments" / env / f"{cloud}.tfvars")
            # then each environment sets only declared variables, and says which environment it is
            assert values["environment"] == env
            assert set(values) <= declared, set(values) - declared
        backends = {env: tfvars(TF / "environments" / env / ("aws.s3.tfbackend" if cloud == "aws" else
                                                                "gcp.gcs.tfbackend")) for env in ENVIRONMENTS}
        # and keeps its state apart from the others'
        where = [b.get("key") or b.get("prefix") for b in backends.values()]
        assert len(set(where)) == 3 and all(env in w for env, w in zip(ENVIRONMENTS, where, strict=True))
        backend = parsed(TF / cloud / "versions.tf")["terraform"][0]["backend"][0]
        assert set(backend) == {"s3" if cloud == "aws" else "gcs"}


def test_gateway_to_team_wiring() -> None:
    # given the roots' gateway and team calls
    aws = blocks(TF / "aws" / "main.tf", "module")
    gcp = blocks(TF / "gcp" / "main.tf", "module")
    aws_locals = parsed(TF / "aws" / "main.tf")["locals"][0]
    # then on AWS the gateway invokes team functions by name and only its role may invoke them
    assert "lambda://${local.function_names[team]}" in aws["gateway"]["environment"]
    gateway_statements = json.dumps(aws["gateway"]["policy_statements"])
    assert "InvokeTeamFunctionsOnly" in gateway_statements and "lambda:InvokeFunction" in gateway_statements
    assert "lambda:" not in json.dumps(aws_locals["common_statements"])
    assert aws["team"]["policy_statements"] == "${local.common_statements}"
    # and on Google Cloud it calls team URLs with ID tokens
    gateway_env = gcp["gateway"]["environment"]
    assert "MULTIAGENT_TEAM_AUTH" in gateway_env and "google-id-token" in gateway_env
    assert "MULTIAGENT_TEAM_AUTH" not in gcp["team"]["environment"]
    # and on both, a team consults other teams through the public gateway (no rights on each other)
    assert "module.gateway.url" in aws["team"]["environment"]
    assert "local.gateway_url" in gcp["team"]["environment"]


META_ARGUMENTS = {"source", "for_each", "count", "depends_on", "providers", "version"}
REFERENCE = re.compile(r"\b(var|local|module|data)\.([a-zA-Z_][\w-]*)(?:\.([a-zA-Z_][\w-]*))?")
RESOURCE_REFERENCE = re.compile(r"(?<!data\.)\b((?:aws|google)_[a-z0-9_]+)\.([a-zA-Z_][\w-]*)\b")


def _folder_config(folder: Path) -> dict[str, Any]:
    """Everything a Terraform folder declares, merged over its .tf files."""
    merged: dict[str, Any] = {"variable": {}, "output": {}, "module": {}, "resource": {}, "data": {}, "locals": {}}
    for path in sorted(folder.glob("*.tf")):
        for kind in ("variable", "output", "module", "resource", "data"):
            merged[kind].update(blocks(path, kind))
        for entry in parsed(path).get("locals", []):
            merged["locals"].update(entry)
    return merged


@pytest.mark.parametrize("folder", ["aws", "gcp", *(f"modules/{c}/{m}" for c in CLOUDS
                                                    for m in ("function", "state", "secrets"))])
def test_every_reference_resolves(folder: str) -> None:
    """An offline stand-in for `terraform validate` where no provider is available (GCP):
    every var./local./module./data./resource reference names something declared, and every
    module call passes exactly declared inputs, all required ones included."""
    config = _folder_config(TF / folder)
    text = json.dumps([list(config[k].values()) for k in ("output", "module", "resource", "data", "locals")])
    for kind, name, attribute in REFERENCE.findall(text):
        if kind == "var":
            assert name in config["variable"], f"{folder}: var.{name}"
        elif kind == "local":
            assert name in config["locals"], f"{folder}: local.{name}"
        elif kind == "module":
            assert name in config["module"], f"{folder}: module.{name}"
            called = _folder_config((TF / folder / config["module"][name]["source"]).resolve())
            assert not attribute or attribute in called["output"], f"{folder}: module.{name}.{attribute}"
        elif kind == "data":
            assert f"{name}.{attribute}" in config["data"], f"{folder}: data.{name}.{attribute}"
    for type_, name in RESOURCE_REFERENCE.findall(text):
        assert f"{type_}.{name}" in config["resource"], f"{folder}: {type_}.{name}"
    for name, call in config["module"].items():
        called = _folder_config((TF / folder / call["source"]).resolve())
        passed = set(call) - META_ARGUMENTS
        assert passed <= set(called["variable"]), f"{folder}: module.{name} passes {passed - set(called['variable'])}"
        required = {v for v, body in called["variable"].items() if "default" not in body}
        assert required <= passed, f"{folder}: module.{name} misses {required - passed}"


def test_gcp_long_runs_continue_through_a_cloud_tasks_queue_the_gateway_may_enqueue_to():
    root = parsed(TF / "gcp" / "main.tf")
    queues = [r["google_cloud_tasks_queue"] for r in root["resource"] if "google_cloud_tasks_queue" in r]
    assert queues and "runs" in queues[0]
    grants = [r["google_cloud_tasks_queue_iam_member"] for r in root["resource"]
              if "google_cloud_tasks_queue_iam_member" in r]
    grant = next(iter(grants[0].values()))
    assert grant["role"] == "roles/cloudtasks.enqueuer" and "module.gateway" in grant["member"]
    gateway = next(m["gateway"] for m in root["module"] if "gateway" in m)
    assert "cloudtasks:" in str(gateway["environment"]) and "MULTIAGENT_RUN_CONTINUATION" in str(gateway["environment"])
