"""The AWS root, for real: `terraform init` + `validate`, then a `terraform apply` of the
dev environment against a moto server on loopback, and what exists afterwards.

Terraform runs offline: a CLI config written here installs the AWS provider from a
filesystem mirror (``MULTIAGENT_TF_PLUGIN_MIRROR``, default /opt/tf-plugins), and a
test-only override file (never in the repository) points the provider's endpoints at
moto and swaps the S3 state backend for a local one. Only these steps skip, with a
one-line reason, where terraform or the mirror is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.server_dynamodb import REGION, MotoServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = shutil.which("terraform")
MIRROR = Path(os.environ.get("MULTIAGENT_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
PREFIX = "multiagent-dev"
LAMBDA_ENV_LIMIT = 4096  # Lambda's limit on the total size of a function's environment variables


def _mirror_reason() -> str | None:
    if TERRAFORM is None:
        return "terraform is not installed (https://developer.hashicorp.com/terraform/install)"
    if not list((MIRROR / "registry.terraform.io" / "hashicorp" / "aws").glob("*/linux_amd64")):
        return f"no AWS provider in the filesystem mirror {MIRROR} (set MULTIAGENT_TF_PLUGIN_MIRROR)"
    return None


SKIP = _mirror_reason()
needs_terraform = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

OVERRIDE = """
terraform {{
  backend "local" {{}}
}}

provider "aws" {{
  region                      = "{region}"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""
SERVICES = ("cloudwatch", "dynamodb", "iam", "kms", "lambda", "logs", "s3", "secretsmanager", "sns", "sts")


def write_cli_config(path: Path) -> Path:
    path.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{MIRROR}"\n'
        '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
    )
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of infra/terraform (links kept) and the environment terraform runs with."""
    base = tmp_path_factory.mktemp("tf")
    shutil.copytree(ROOT / "infra" / "terraform", base / "terraform", symlinks=True,
                    ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*_override.tf"))
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(write_cli_config(base / "terraformrc")),
           "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_DATA_DIR": str(base / "data")}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        env.pop(name, None)
    return {"aws": base / "terraform" / "aws", "env": env, "base": base}


def terraform(workspace: dict[str, Any], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    return subprocess.run([TERRAFORM, *args, "-no-color"], cwd=workspace["aws"], env=workspace["env"],
                          capture_output=True, text=True, timeout=timeout)


@needs_terraform
def test_aws_root_inits_offline_and_validates(workspace: dict[str, Any]) -> None:
    # given the AWS root as committed
    # when it is initialised from the mirror without a backend and validated
    init = terraform(workspace, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stderr
    validate = terraform(workspace, "validate", "-json")
    # then it is valid
    result = json.loads(validate.stdout)
    assert result["valid"], result["diagnostics"]


@pytest.fixture(scope="module")
def applied(workspace: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`terraform apply` of the dev environment against a private moto server."""
    if SKIP:
        pytest.skip(SKIP)
    moto = MotoServer()
    url = moto.start()
    try:
        endpoints = "\n".join(f'    {s:<14} = "{url}"' for s in SERVICES)
        (workspace["aws"] / "moto_override.tf").write_text(OVERRIDE.format(region=REGION, endpoints=endpoints))
        package = workspace["base"] / "package.zip"
        with zipfile.ZipFile(package, "w") as zf:  # the infrastructure test needs a zip, not ours
            zf.writestr("functions/__init__.py", "")
        shutil.rmtree(workspace["env"]["TF_DATA_DIR"], ignore_errors=True)
        init = terraform(workspace, "init", "-input=false")
        assert init.returncode == 0, init.stderr
        started = time.monotonic()
        apply = terraform(workspace, "apply", "-auto-approve", "-input=false", "-parallelism=30",
                          "-var-file=../environments/dev/aws.tfvars", f"-var=package_path={package}", timeout=600)
        seconds = time.monotonic() - started
        assert apply.returncode == 0, apply.stderr[-4000:] + apply.stdout[-2000:]
        print(f"\nterraform apply (dev, against moto): {seconds:.0f} s; {apply.stdout.strip().splitlines()[-1]}")
        outputs = json.loads(terraform(workspace, "output", "-json").stdout)
        yield {"url": url, "outputs": {k: v["value"] for k, v in outputs.items()}, "package": package,
               "apply_s": seconds}
    finally:
        moto.stop()


def client(applied: dict[str, Any], service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=applied["url"], region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def functions(applied: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pages = client(applied, "lambda").get_paginator("list_functions").paginate()
    return {f["FunctionName"]: f for page in pages for f in page["Functions"] if f["FunctionName"].startswith(PREFIX)}


def teams() -> list[str]:
    return sorted(json.loads((ROOT / "infra" / "terraform" / "teams.auto.tfvars.json").read_text())["teams"])


def test_apply_makes_25_functions_each_with_its_own_role(applied: dict[str, Any]) -> None:
    # given the applied dev environment
    found = functions(applied)
    # then there is one function per team plus the gateway
    expected = {f"{PREFIX}-{t}" for t in teams()} | {f"{PREFIX}-gateway"}
    assert set(found) == expected and len(found) == 25
    # and every function has its own role
    roles = {f["Role"] for f in found.values()}
    assert len(roles) == 25
    iam = client(applied, "iam")
    for name, fn in found.items():
        assert fn["Role"].endswith(f":role/{name}-role")
        assert iam.get_role(RoleName=f"{name}-role")["Role"]["Arn"] == fn["Role"]
    # and each runs the zip's handler for its kind, configured by environment only
    for team in teams():
        fn = found[f"{PREFIX}-{team}"]
        env = fn["Environment"]["Variables"]
        assert fn["Handler"] == "functions.team.main.handler" and fn["Runtime"] == "python3.11"
        assert env["MULTIAGENT_TEAM"] == team
        assert env["MULTIAGENT_STORE"] == f"dynamodb://{PREFIX}?region={REGION}"
        assert env["MULTIAGENT_SECRETS"] == "aws" and env["MULTIAGENT_SECRETS_PREFIX"] == f"{PREFIX}/"
        assert fn["TracingConfig"]["Mode"] == "Active"
    gateway = found[f"{PREFIX}-gateway"]
    assert gateway["Handler"] == "functions.gateway.main.handler"
    urls = json.loads(gateway["Environment"]["Variables"]["MULTIAGENT_TEAM_URLS"])
    assert urls == {t: f"lambda://{PREFIX}-{t}" for t in teams()}
    # long runs continue in an asynchronous invoke of the gateway itself
    assert gateway["Environment"]["Variables"]["MULTIAGENT_RUN_CONTINUATION"] == f"lambda:{PREFIX}-gateway"
    # and every environment fits Lambda's 4 KB limit
    for name, fn in found.items():
        size = sum(len(k) + len(v) for k, v in fn["Environment"]["Variables"].items())
        assert size < LAMBDA_ENV_LIMIT, f"{name}: {size} bytes of environment"


def test_only_the_gateway_is_reachable_from_outside(applied: dict[str, Any]) -> None:
    # given the applied functions
    lam = client(applied, "lambda")
    with_url = {}
    for name in functions(applied):
        try:
            with_url[name] = lam.get_function_url_config(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            pass
    # then only the gateway has a Function URL, and it is the one with auth type NONE
    assert list(with_url) == [f"{PREFIX}-gateway"]
    assert with_url[f"{PREFIX}-gateway"]["AuthType"] == "NONE"
    assert applied["outputs"]["gateway_url"] == with_url[f"{PREFIX}-gateway"]["FunctionUrl"]
    # and only the gateway's resource policy names a public principal, for its URL alone
    policy = json.loads(lam.get_policy(FunctionName=f"{PREFIX}-gateway")["Policy"])
    assert {(s["Principal"], s["Action"]) for s in policy["Statement"]} == {("*", "lambda:InvokeFunctionUrl")}
    assert "PublicFunctionUrl" in {s["Sid"] for s in policy["Statement"]}  # its NONE-auth condition: static tests
    for team in teams():
        try:
            statements = json.loads(lam.get_policy(FunctionName=f"{PREFIX}-{team}")["Policy"])["Statement"]
        except lam.exceptions.ResourceNotFoundException:
            statements = []
        assert statements == [], f"{team} has a resource policy"


def role_statements(applied: dict[str, Any], function: str) -> list[dict[str, Any]]:
    iam = client(applied, "iam")
    role = f"{function}-role"
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    statements = []
    for name in names:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        statements += document["Statement"]
    return statements


def as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_roles_are_least_privilege(applied: dict[str, Any]) -> None:
    # given every function's role
    table_arn = client(applied, "dynamodb").describe_table(TableName=f"{PREFIX}-store")["Table"]["TableArn"]
    secret_arns = {s["ARN"] for s in client(applied, "secretsmanager").list_secrets()["SecretList"]
                   if s["Name"].startswith(f"{PREFIX}/")}
    team_arns = {functions(applied)[f"{PREFIX}-{t}"]["FunctionArn"] for t in teams()}
    for name in functions(applied):
        by_action: dict[str, set[str]] = {}
        for statement in role_statements(applied, name):
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                by_action.setdefault(action, set()).update(as_list(statement["Resource"]))
        # then data, secrets and logs are reachable only at their exact resources
        assert {r for a, rs in by_action.items() if a.startswith("dynamodb:") for r in rs} == {
            table_arn, f"{table_arn}/index/*"}
        assert by_action["secretsmanager:GetSecretValue"] == secret_arns and len(secret_arns) == 4
        assert by_action["logs:PutLogEvents"] == {f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{name}:*"}
        wildcard = {a for a, rs in by_action.items() if "*" in rs}
        assert wildcard <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, (name, wildcard)
        assert not any(a.endswith(":*") or a == "*" for a in by_action), name
        # and only the gateway may invoke: the team functions, and itself (a long run continues
        # in an asynchronous invoke of the gateway)
        if name.endswith("-gateway"):
            assert by_action["lambda:InvokeFunction"] == team_arns | {functions(applied)[name]["FunctionArn"]}
        else:
            assert not any(a.startswith("lambda:") for a in by_action), name


def test_state_table_matches_the_store_layout_with_ttl_and_pitr(applied: dict[str, Any]) -> None:
    # given the table Terraform made
    ddb = client(applied, "dynamodb")
    table = ddb.describe_table(TableName=f"{PREFIX}-store")["Table"]
    # then it is the table shared/store/dynamodb.py documents, billed on demand
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {("pk", "HASH"), ("sk", "RANGE")}
    [gsi] = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1" and gsi["Projection"]["ProjectionType"] == "ALL"
    assert {(k["AttributeName"], k["KeyType"]) for k in gsi["KeySchema"]} == {("gsi1pk", "HASH"), ("gsi1sk", "RANGE")}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["SSEType"] == "KMS"
    # and expires by TTL on `ttl`, with point-in-time recovery on
    ttl = ddb.describe_time_to_live(TableName=f"{PREFIX}-store")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    backups = ddb.describe_continuous_backups(TableName=f"{PREFIX}-store")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_secrets_exist_without_values_and_logs_are_kept(applied: dict[str, Any]) -> None:
    # given the applied environment
    sm = client(applied, "secretsmanager")
    names = sorted(s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"].startswith(f"{PREFIX}/"))
    # then every secret the code reads exists (scripts/set-secret.sh sets each), encrypted with the
    # deployment's key, and Terraform gave them no value
    assert names == [f"{PREFIX}/{n}" for n in ("admin-key", "anthropic-api-key", "internal-signing-key",
                                                "webhook-secret")]
    for name in names:
        assert sm.describe_secret(SecretId=name).get("KmsKeyId")
        with pytest.raises(sm.exceptions.ResourceNotFoundException):
            sm.get_secret_value(SecretId=name)
    state = Path(applied["package"]).parent / "terraform" / "aws" / "terraform.tfstate"
    assert '"secret_string"' not in state.read_text()
    # and every function logs to its own encrypted group with the environment's retention
    groups = client(applied, "logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{PREFIX}-")["logGroups"]
    assert len(groups) == 25
    assert {g["retentionInDays"] for g in groups} == {14} and all(g.get("kmsKeyId") for g in groups)


def test_the_store_and_secret_store_work_on_what_terraform_made(applied: dict[str, Any]) -> None:
    # given the Terraform-made table (init() never called) and secret (value set as set-secret.sh does)
    from shared.auth import Authenticator
    from shared.budget import window_limits
    from shared.catalog import load_catalog
    from shared.config import Settings
    from shared.secrets.aws import AwsSecrets
    from shared.store.base import LedgerEntry, Reservation, new_id
    from shared.store.dynamodb import DynamoDBStore
    from shared.tenants import TenantAdmin

    store = DynamoDBStore(table_prefix=PREFIX, region=REGION, client=client(applied, "dynamodb"))
    settings = Settings.from_env({"MULTIAGENT_STORE": store.url})
    client(applied, "secretsmanager").put_secret_value(SecretId=f"{PREFIX}/anthropic-api-key",
                                                       SecretString="sk-ant-from-set-secret")
    # when a tenant is created, authenticated, and a call is reserved and settled
    tenant, key = TenantAdmin(store, settings, load_catalog()).create("acme", daily_usd=5)
    assert Authenticator(store).tenant_for(key).id == tenant.id
    assert [t.id for t in store.list_tenants()] == [tenant.id]  # through gsi1
    now = time.time()
    windows = window_limits(tenant, "finance", now)
    reservation = Reservation(id=new_id("res"), tenant_id=tenant.id, amount_micros=40_000,
                              windows=[w.key for w in windows], expires_at=now + 120)
    assert store.reserve(reservation, windows, [], now).ok
    entry = LedgerEntry(id=new_id("led"), tenant_id=tenant.id, request_id="r1", team="finance",
                        operation="ask", model="claude-haiku-4-5", input_tokens=10, output_tokens=20,
                        cost_micros=1_234)
    store.settle(reservation, 1_234, entry, [])
    # then the money and the ledger are where the store expects them
    states = {w.key: w for w in store.get_windows(tenant.id, [w.key for w in windows])}
    assert {w.spent_micros for w in states.values()} == {1_234} and {w.reserved_micros for w in states.values()} == {0}
    assert [e.id for e in store.list_ledger(tenant.id)] == [entry.id]
    # and the function's secret store reads the value set outside Terraform
    secrets = AwsSecrets(prefix=f"{PREFIX}/", client=client(applied, "secretsmanager"))
    assert secrets.get("anthropic-api-key") == "sk-ant-from-set-secret"
    assert secrets.get("internal-signing-key") is None  # exists, no value yet
