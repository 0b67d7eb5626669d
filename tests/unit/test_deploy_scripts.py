"""scripts/deploy.sh, destroy.sh and set-secret.sh: their checks (arguments, tools,
credentials, state bucket), each failing with one clear line, and the order of what a
deploy does (init with the environment's backend → build → plan → apply → smoke test →
URL), with stand-ins for terraform and the cloud CLIs on a PATH that holds nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ["bash", "dirname", "basename", "sed", "head", "tail", "sort", "grep", "cat", "awk", "du", "cut", "seq",
         "sleep", "mktemp", "od", "tr", "date", "find", "xargs", "sha256sum", "env", "ls", "rm", "mkdir"]

STUB = r"""#!/bin/bash
# stand-in for {name}: logs its arguments (and stdin where a value is piped) as JSON lines
log() {{
  python3 -c 'import json, os, sys
print(json.dumps({{"tool": "{name}", "args": sys.argv[1:], "stdin": os.environ.get("STUB_STDIN", ""),
                  "tf_data_dir": os.environ.get("TF_DATA_DIR", "")}}))' "$@" >> "$STUB_LOG"
}}
{body}
"""

BODIES = {
    "terraform": r"""
case "$1" in
  version) echo "{\"terraform_version\": \"${STUB_TF_VERSION:-1.11.4}\"}"; exit 0 ;;
esac
log "$@"
case "$*" in
  *"output -raw gateway_url"*) echo "https://gw.example/" ;;
  *"output -raw image_repository"*) echo "us-central1-docker.pkg.dev/proj-1/multiagent-dev" ;;
esac
exit 0
""",
    "aws": r"""
if [ "$1 $2" = "sts get-caller-identity" ]; then
  [ "${STUB_AWS_CREDS:-yes}" = yes ] && echo 123456789012 && exit 0
  echo "Unable to locate credentials" >&2; exit 255
fi
STUB_STDIN=$(cat) log "$@"
""",
    "gcloud": r"""
case "$1 $2" in
  "auth print-access-token") echo ya29.token; exit 0 ;;
  "config get-value") echo "${STUB_PROJECT:-}"; exit 0 ;;
  "artifacts docker") echo "sha256:$(printf 'a%.0s' $(seq 1 64))"; exit 0 ;;
  "secrets versions") STUB_STDIN=$(cat) log "$@"; exit 0 ;;
esac
log "$@"
""",
    "curl": r"""log "$@"; echo "${STUB_HEALTH:-200}" """,
}


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, str]:
    """A PATH with the shell's basic tools and the stand-ins only."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(Path(sys.executable).resolve())  # for the stand-ins' logging
    return {"PATH": str(bin_dir), "HOME": str(tmp_path), "STUB_LOG": str(tmp_path / "calls.jsonl"),
            "BIN": str(bin_dir), "TMPDIR": str(tmp_path)}


def install(sandbox: dict[str, str], *names: str) -> None:
    for name in names:
        path = Path(sandbox["BIN"]) / name
        path.write_text(STUB.format(name=name, body=BODIES[name]))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run(script: str, *args: str, sandbox: dict[str, str], stdin: str = "",
        **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in sandbox.items() if k != "BIN"}
    environment.update(env)
    return subprocess.run(["/bin/bash", str(ROOT / "scripts" / script), *args], input=stdin, env=environment,
                          capture_output=True, text=True, timeout=120)


def calls(sandbox: dict[str, str]) -> list[dict[str, object]]:
    path = Path(sandbox["STUB_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def one_line_failure(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], result.stderr
    assert not lines[0].endswith(f" {code}"), f"the exit code leaked into the message: {lines[0]!r}"


@pytest.mark.parametrize(("args", "text"), [
    ((), "usage: scripts/deploy.sh ENV aws|gcp"),
    (("dev",), "usage: scripts/deploy.sh ENV aws|gcp"),
    (("qa", "aws"), "unknown environment 'qa': use dev, staging or prod"),
    (("dev", "azure"), "unknown cloud 'azure': use aws or gcp"),
    (("dev", "aws", "--force"), "unknown option '--force'"),
])
def test_deploy_refuses_bad_arguments(sandbox: dict[str, str], args: tuple[str, ...], text: str) -> None:
    one_line_failure(run("deploy.sh", *args, sandbox=sandbox), 2, text)


def test_deploy_names_each_missing_tool_or_credential(sandbox: dict[str, str]) -> None:
    # given no terraform at all
    one_line_failure(run("deploy.sh", "dev", "aws", sandbox=sandbox), 1, "terraform not found: install Terraform")
    # given a terraform that is too old
    install(sandbox, "terraform")
    one_line_failure(run("deploy.sh", "dev", "aws", sandbox=sandbox, STUB_TF_VERSION="1.5.7"), 1,
                     "terraform 1.5.7 is too old")
    # given no AWS CLI, then no AWS credentials
    one_line_failure(run("deploy.sh", "dev", "aws", sandbox=sandbox), 1, "aws not found: install the AWS CLI")
    install(sandbox, "aws")
    one_line_failure(run("deploy.sh", "dev", "aws", sandbox=sandbox, STUB_AWS_CREDS="no"), 1, "no AWS credentials")
    # given no Google CLI, then a Google CLI without a project
    one_line_failure(run("deploy.sh", "dev", "gcp", sandbox=sandbox), 1, "gcloud not found")
    install(sandbox, "gcloud")
    one_line_failure(run("deploy.sh", "dev", "gcp", sandbox=sandbox), 1, "no Google Cloud project")
    # given everything but curl, then everything but a state bucket
    one_line_failure(run("deploy.sh", "dev", "aws", sandbox=sandbox), 1, "curl not found")
    install(sandbox, "curl")
    one_line_failure(run("deploy.sh", "dev", "aws", sandbox=sandbox), 1,
                     "set the state bucket: edit")
    # and nothing was changed by any of these
    assert not [c for c in calls(sandbox) if c["tool"] == "terraform"]


def test_aws_deploy_inits_the_environment_plans_applies_and_smoke_tests(sandbox: dict[str, str],
                                                                        tmp_path: Path) -> None:
    # given every tool, credentials, a state bucket and a built zip
    install(sandbox, "terraform", "aws", "curl")
    package = tmp_path / "lambda.zip"
    package.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    # when staging is deployed
    result = run("deploy.sh", "staging", "aws", sandbox=sandbox, MULTIAGENT_TF_STATE_BUCKET="my-state",
                 MULTIAGENT_YES="1", MULTIAGENT_LAMBDA_ZIP=str(package))
    # then the gateway URL is the last line, after a healthy smoke test
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "https://gw.example"
    tf = [c for c in calls(sandbox) if c["tool"] == "terraform"]
    verbs = [c["args"][1] for c in tf]  # args[0] is -chdir=...
    assert verbs == ["init", "plan", "apply", "output"]
    init, plan, apply, _ = (c["args"] for c in tf)
    assert init[0].endswith("infra/terraform/aws")
    assert f"-backend-config={ROOT}/infra/terraform/environments/staging/aws.s3.tfbackend" in init
    assert "-backend-config=bucket=my-state" in init and "-reconfigure" in init
    assert "-var-file=../environments/staging/aws.tfvars" in plan and f"-var=package_path={package}" in plan
    assert apply[-1] == next(a for a in plan if a.startswith("-out=")).removeprefix("-out=")
    assert {c["tf_data_dir"] for c in tf} == {f"{ROOT}/infra/terraform/aws/.terraform/env-staging"}
    curl = [c for c in calls(sandbox) if c["tool"] == "curl"]
    assert curl and curl[0]["args"][-1] == "https://gw.example/health"
    # and the first steps follow on stderr: every secret, then the first tenant against the gateway
    steps = result.stderr[result.stderr.index("first steps for aws staging"):]
    for name in ("anthropic-api-key", "internal-signing-key", "admin-key --generate", "webhook-secret --generate"):
        assert f"scripts/set-secret.sh staging aws {name}" in steps, name
    assert "curl -sS -X POST https://gw.example/v1/admin/tenants" in steps
    assert 'authorization: Bearer $ADMIN_KEY' in steps and '"name": "acme"' in steps


def test_deploy_stops_when_the_gateway_is_not_healthy(sandbox: dict[str, str], tmp_path: Path) -> None:
    install(sandbox, "terraform", "aws", "curl")
    package = tmp_path / "lambda.zip"
    package.write_bytes(b"zip")
    result = run("deploy.sh", "dev", "aws", sandbox=sandbox, MULTIAGENT_TF_STATE_BUCKET="b", MULTIAGENT_YES="1",
                 MULTIAGENT_LAMBDA_ZIP=str(package), STUB_HEALTH="503", MULTIAGENT_SMOKE_TRIES="2",
                 MULTIAGENT_SMOKE_WAIT_S="0")
    assert result.returncode == 1
    assert "gateway https://gw.example/health answered 503" in result.stderr.strip().splitlines()[-1]


def test_deploy_without_a_terminal_or_consent_does_not_apply(sandbox: dict[str, str], tmp_path: Path) -> None:
    install(sandbox, "terraform", "aws", "curl")
    package = tmp_path / "lambda.zip"
    package.write_bytes(b"zip")
    result = run("deploy.sh", "dev", "aws", sandbox=sandbox, MULTIAGENT_TF_STATE_BUCKET="b",
                 MULTIAGENT_LAMBDA_ZIP=str(package))
    assert result.returncode == 1 and "refusing to apply without a terminal" in result.stderr
    assert [c["args"][1] for c in calls(sandbox) if c["tool"] == "terraform"] == ["init", "plan"]


def test_gcp_deploy_bootstraps_the_registry_builds_remotely_and_pins_the_digest(sandbox: dict[str, str]) -> None:
    # given Google tools with a project, and no Docker engine
    install(sandbox, "terraform", "gcloud", "curl")
    # when dev is deployed
    result = run("deploy.sh", "dev", "gcp", sandbox=sandbox, MULTIAGENT_TF_STATE_BUCKET="gcs-state",
                 MULTIAGENT_YES="1", GOOGLE_CLOUD_PROJECT="proj-1")
    assert result.returncode == 0, result.stderr
    tf = [c["args"] for c in calls(sandbox) if c["tool"] == "terraform"]
    # then the image repository is created first (first deploy), then the image is built by Cloud Build
    assert [a[1] for a in tf] == ["init", "state", "apply", "output", "plan", "apply", "output"]
    assert "-target=google_artifact_registry_repository.images" in tf[2]
    builds = [c["args"] for c in calls(sandbox) if c["tool"] == "gcloud"]
    assert builds and builds[0][:2] == ["builds", "submit"]
    tag = builds[0][builds[0].index("--tag") + 1]
    assert tag.startswith("us-central1-docker.pkg.dev/proj-1/multiagent-dev/multiagent:")
    # and the plan pins the pushed image by digest
    image = next(a for a in tf[4] if a.startswith("-var=image="))
    assert image == "-var=image=" + tag.rsplit(":", 1)[0] + "@sha256:" + "a" * 64
    assert "-var=project=proj-1" in tf[4] and "-var-file=../environments/dev/gcp.tfvars" in tf[4]
    assert result.stdout.strip().splitlines()[-1] == "https://gw.example"


def test_gcp_plan_only_changes_nothing(sandbox: dict[str, str]) -> None:
    install(sandbox, "terraform", "gcloud", "curl")
    result = run("deploy.sh", "prod", "gcp", "--plan", sandbox=sandbox, MULTIAGENT_TF_STATE_BUCKET="b",
                 GOOGLE_CLOUD_PROJECT="proj-1")
    assert result.returncode == 0, result.stderr
    assert [c["args"][1] for c in calls(sandbox) if c["tool"] == "terraform"] == ["init", "output", "plan"]
    assert not [c for c in calls(sandbox) if c["tool"] in ("gcloud", "curl")]


def test_set_secret_passes_the_value_on_stdin_only(sandbox: dict[str, str]) -> None:
    install(sandbox, "aws", "gcloud")
    # when a value is piped in
    aws = run("set-secret.sh", "prod", "aws", "anthropic-api-key", sandbox=sandbox, stdin="sk-ant-secret-value")
    gcp = run("set-secret.sh", "dev", "gcp", "anthropic-api-key", sandbox=sandbox, stdin="sk-ant-other",
              GOOGLE_CLOUD_PROJECT="proj-1")
    # then each CLI gets it on its stdin, never as an argument, and it is never printed
    assert aws.returncode == 0 and gcp.returncode == 0, aws.stderr + gcp.stderr
    put, add = calls(sandbox)
    assert put["args"][:4] == ["secretsmanager", "put-secret-value", "--secret-id", "multiagent-prod/anthropic-api-key"]
    assert put["stdin"] == "sk-ant-secret-value" and "sk-ant-secret-value" not in json.dumps(put["args"])
    assert add["args"][:4] == ["secrets", "versions", "add", "multiagent-dev-anthropic-api-key"]
    assert add["stdin"] == "sk-ant-other"
    assert "sk-ant" not in aws.stdout + aws.stderr + gcp.stdout + gcp.stderr


def test_set_secret_generates_signing_keys_in_the_keyring_format(sandbox: dict[str, str]) -> None:
    from shared.envelope import Keyring

    install(sandbox, "aws")
    result = run("set-secret.sh", "dev", "aws", "internal-signing-key", "--generate", sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    [call] = calls(sandbox)
    keyring = Keyring.parse(str(call["stdin"]))
    assert len(keyring.keys) == 1 and len(keyring.keys[0][1]) == 64
    one_line_failure(run("set-secret.sh", "dev", "aws", "admin-password", sandbox=sandbox), 2, "unknown secret")


def test_set_secret_generates_the_admin_key_and_webhook_secret_and_shows_them_once(sandbox: dict[str, str]) -> None:
    from shared.webhooks import parse_secrets

    install(sandbox, "aws", "gcloud")
    # when the admin key and the webhook secret are generated
    admin = run("set-secret.sh", "prod", "aws", "admin-key", "--generate", sandbox=sandbox)
    hook = run("set-secret.sh", "dev", "gcp", "webhook-secret", "--generate", sandbox=sandbox,
               GOOGLE_CLOUD_PROJECT="proj-1")
    assert admin.returncode == 0 and hook.returncode == 0, admin.stderr + hook.stderr
    put, add = calls(sandbox)
    # then each went to its secret on the CLI's stdin, and is on stdout once (the operator needs it)
    assert put["args"][:4] == ["secretsmanager", "put-secret-value", "--secret-id", "multiagent-prod/admin-key"]
    assert admin.stdout.strip() == put["stdin"] and len(str(put["stdin"])) == 64
    int(str(put["stdin"]), 16)
    assert add["args"][:4] == ["secrets", "versions", "add", "multiagent-dev-webhook-secret"]
    assert hook.stdout.strip() == add["stdin"]
    [key] = parse_secrets(str(add["stdin"]))  # the form shared/webhooks.py signs with
    assert len(key) == 32
    assert str(put["stdin"]) not in admin.stderr and str(add["stdin"]) not in hook.stderr


def test_set_secret_checks_admin_keys_and_webhook_secrets(sandbox: dict[str, str]) -> None:
    from shared.webhooks import new_secret

    install(sandbox, "aws")
    one_line_failure(run("set-secret.sh", "dev", "aws", "admin-key", sandbox=sandbox, stdin="short"), 1,
                     "the admin key must be at least 32 characters")
    one_line_failure(run("set-secret.sh", "dev", "aws", "webhook-secret", sandbox=sandbox, stdin="hunter2"), 1,
                     "a webhook secret is 'whsec_' + base64 of 24 to 64 bytes")
    one_line_failure(run("set-secret.sh", "dev", "aws", "anthropic-api-key", "--generate", sandbox=sandbox), 2,
                     "--generate is not for anthropic-api-key")
    one_line_failure(run("set-secret.sh", "dev", "aws", "admin-key", "--force", sandbox=sandbox), 2,
                     "unknown option '--force'")
    assert not calls(sandbox)
    # a piped webhook secret (two while receivers rotate) and a piped admin key are set, not shown
    rotating = f"{new_secret()} {new_secret()}"
    hook = run("set-secret.sh", "dev", "aws", "webhook-secret", sandbox=sandbox, stdin=rotating)
    admin = run("set-secret.sh", "dev", "aws", "admin-key", sandbox=sandbox, stdin="a" * 40)
    assert hook.returncode == 0 and admin.returncode == 0, hook.stderr + admin.stderr
    assert [c["stdin"] for c in calls(sandbox)] == [rotating, "a" * 40]
    assert hook.stdout == admin.stdout == ""


def test_destroy_needs_the_environment_name_as_confirmation(sandbox: dict[str, str]) -> None:
    install(sandbox, "terraform", "aws")
    env = {"MULTIAGENT_TF_STATE_BUCKET": "b"}
    one_line_failure(run("destroy.sh", sandbox=sandbox), 2, "usage: scripts/destroy.sh ENV aws|gcp")
    one_line_failure(run("destroy.sh", "prod", "aws", sandbox=sandbox, **env), 1,
                     "refusing to destroy without confirmation: set MULTIAGENT_CONFIRM_DESTROY=prod")
    one_line_failure(run("destroy.sh", "prod", "aws", sandbox=sandbox, MULTIAGENT_CONFIRM_DESTROY="dev", **env), 1,
                     "not destroyed")
    assert not calls(sandbox)
    result = run("destroy.sh", "dev", "aws", sandbox=sandbox, MULTIAGENT_CONFIRM_DESTROY="dev", **env)
    assert result.returncode == 0, result.stderr
    destroy = [c["args"] for c in calls(sandbox) if c["tool"] == "terraform"][-1]
    assert destroy[1] == "destroy" and "-var-file=../environments/dev/aws.tfvars" in destroy


def test_scripts_are_executable() -> None:
    for name in ("build.sh", "deploy.sh", "destroy.sh", "set-secret.sh", "test.d/checkov.sh"):
        assert os.access(ROOT / "scripts" / name, os.X_OK), name
