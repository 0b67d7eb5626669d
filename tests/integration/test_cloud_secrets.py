"""Secret stores and gateway identity in the cloud, against real wire protocols on loopback:
Secrets Manager on the moto server (boto3 as in production), Secret Manager and the
metadata server faked by tests/fakes/gcp.py (google-auth and google-cloud-secret-manager as
in production, in a fresh process each: google-auth reads its metadata host at import).
Nothing of ours is patched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.errors import ConfigurationError
from shared.secrets import CachedSecrets, SecretUnavailable, open_secrets
from shared.secrets.aws import AwsSecrets
from tests.fakes.gcp import SERVICE_ACCOUNT, FakeGcp, decode_claims
from tests.integration import server_dynamodb

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def secretsmanager() -> Any:
    import boto3

    url = server_dynamodb.start_server()
    return boto3.client("secretsmanager", endpoint_url=url, region_name=server_dynamodb.REGION)


def test_aws_secrets_read_values_and_tell_missing_from_unreachable(secretsmanager: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # given secrets under this deployment's prefix: one with a value, one Terraform made without a value
    prefix = f"t{uuid.uuid4().hex[:8]}/"
    secretsmanager.create_secret(Name=f"{prefix}anthropic-api-key", SecretString="sk-ant-one")
    secretsmanager.create_secret(Name=f"{prefix}internal-signing-key")
    monkeypatch.setenv("MULTIAGENT_SECRETS_PREFIX", prefix)
    # when the factory opens the aws backend (endpoint and region from boto3's usual variables)
    store = open_secrets("aws")
    # then values are read, and a secret with no value or no secret at all is None
    assert isinstance(store.backend, AwsSecrets)
    assert store.get("anthropic-api-key") == "sk-ant-one"
    assert store.get("internal-signing-key") is None
    assert store.get("no-such-secret") is None
    # and a rotated value is seen after refresh (or the TTL), not before
    secretsmanager.put_secret_value(SecretId=f"{prefix}anthropic-api-key", SecretString="sk-ant-two")
    assert store.get("anthropic-api-key") == "sk-ant-one"
    store.refresh("anthropic-api-key")
    assert store.get("anthropic-api-key") == "sk-ant-two"
    expiring = CachedSecrets(AwsSecrets(prefix=prefix), ttl_s=0)
    secretsmanager.put_secret_value(SecretId=f"{prefix}anthropic-api-key", SecretString="sk-ant-three")
    assert expiring.get("anthropic-api-key") == "sk-ant-three"


def test_aws_secrets_unreachable_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a Secrets Manager endpoint nobody listens on
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # when a secret is read, then the store says it is unreachable (callers answer 503)
    with pytest.raises(SecretUnavailable, match="Secrets Manager GetSecretValue"):
        AwsSecrets(prefix="x/").get("anthropic-api-key")


def test_secret_backend_names_are_validated() -> None:
    from shared.config import Settings

    assert Settings.from_env({"MULTIAGENT_SECRETS": "aws"}).secrets_backend == "aws"
    with pytest.raises(ConfigurationError, match="MULTIAGENT_SECRETS"):
        Settings.from_env({"MULTIAGENT_SECRETS": "vault"})
    settings = Settings.from_env({"MULTIAGENT_TEAM_URLS": json.dumps({"finance": "lambda://fn-finance"}),
                                  "MULTIAGENT_TEAM_AUTH": "google-id-token"})
    assert settings.team_urls == {"finance": "lambda://fn-finance"} and settings.team_auth == "google-id-token"
    with pytest.raises(ConfigurationError, match="MULTIAGENT_TEAM_AUTH"):
        Settings.from_env({"MULTIAGENT_TEAM_AUTH": "magic"})
    with pytest.raises(ConfigurationError, match="MULTIAGENT_TEAM_URLS"):
        Settings.from_env({"MULTIAGENT_TEAM_URLS": json.dumps({"finance": "ftp://x"})})


@pytest.fixture
def fake_gcp() -> Iterator[FakeGcp]:
    with FakeGcp() as fake:
        yield fake


def probe(scenario: str, fake: FakeGcp, tmp_path: Path, **env: str) -> dict[str, Any]:
    """Run tests/integration/gcp_probe.py SCENARIO with google-auth pointed at the fake."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GCE_", "CLOUDSDK_"))}
    base.update(fake.env())
    # no gcloud or ADC file on this machine may be found first: the metadata server must be
    base.update({"CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "HOME": str(tmp_path), "MULTIAGENT_LOG_LEVEL": "ERROR"})
    base.update(env)
    result = subprocess.run([sys.executable, "-m", "tests.integration.gcp_probe", scenario], cwd=ROOT, env=base,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_gcp_secrets_through_the_client_library(fake_gcp: FakeGcp, tmp_path: Path) -> None:
    # given Secret Manager secrets under the deployment's prefix
    fake_gcp.set_secret("multiagent-dev-anthropic-api-key", "sk-ant-gcp")
    fake_gcp.set_secret("multiagent-dev-empty-secret", None)
    fake_gcp.set_secret("multiagent-dev-disabled-secret", "old")
    fake_gcp.disable_latest("multiagent-dev-disabled-secret")
    fake_gcp.set_secret("multiagent-dev-rotating", "first")
    # when a Cloud Run instance reads them with its default credentials
    out = probe("secrets", fake_gcp, tmp_path, MULTIAGENT_SECRETS="gcp", MULTIAGENT_SECRETS_PREFIX="multiagent-dev-")
    # then values come back; missing secrets, missing and disabled versions are None
    assert out["backend"] == "GcpSecrets" and out["key"] == "sk-ant-gcp" and out["project"] == "fake-project"
    assert out["missing_secret"] is None and out["no_version"] is None and out["disabled"] is None
    # and a rotation is picked up after refresh, not before (the TTL cache)
    assert out["rotating"] == ["first", "first", "second"]
    # and every Secret Manager call carried the metadata server's access token
    calls = fake_gcp.log("/v1/")
    assert calls and all(c["headers"].get("authorization") == "Bearer ya29.fake-access-token" or
                         c["headers"].get("Authorization") == "Bearer ya29.fake-access-token" for c in calls)
    assert fake_gcp.log("/computeMetadata/v1/instance/service-accounts/default/token")


def test_google_id_tokens_are_fetched_per_audience_and_cached(fake_gcp: FakeGcp, tmp_path: Path) -> None:
    # when the gateway asks identity headers for two calls to one team and one to another
    out = probe("id-token", fake_gcp, tmp_path)
    first, again, other = (h["x-serverless-authorization"].removeprefix("Bearer ") for h in out["headers"])
    # then each token is for the team service's origin, from the instance's service account
    assert decode_claims(first)["aud"] == "https://multiagent-dev-finance-123.us-central1.run.app"
    assert decode_claims(other)["aud"] == "https://multiagent-dev-legal-123.us-central1.run.app"
    assert decode_claims(first)["email"] == SERVICE_ACCOUNT
    # and a team's token is reused until it nears expiry: one fetch per audience
    assert again == first and out["fetches"] == 2
    identity = fake_gcp.log("/computeMetadata/v1/instance/service-accounts/default/identity")
    assert [c["query"]["audience"] for c in identity] == [decode_claims(first)["aud"], decode_claims(other)["aud"]]


def test_gateway_reaches_a_private_team_with_an_id_token(fake_gcp: FakeGcp, tmp_path: Path) -> None:
    # given a team behind Cloud Run's invoker check, and the gateway with MULTIAGENT_TEAM_AUTH=google-id-token
    out = probe("hop", fake_gcp, tmp_path, PROBE_STORE=f"sqlite:///{tmp_path}/hop.db",
                MULTIAGENT_INTERNAL_SIGNING_KEY="k1:" + "ef" * 32)
    # then the call through the gateway succeeds with a token for the team's own URL
    assert out["status"] == 200 and out["team"] == "finance"
    through_gateway, direct = out["seen"]
    assert through_gateway["claims"]["email"] == SERVICE_ACCOUNT
    assert through_gateway["claims"]["aud"].startswith("http://127.0.0.1:")
    # and the tenant's own key still reaches the team, which checks it as always
    assert through_gateway["authorization"].startswith("Bearer " + out["key_prefix"])
    # and calling the team directly, without the gateway's identity, is refused
    assert direct["claims"] == {} and out["direct_status"] == 403


async def test_admin_key_comes_from_the_secret_store_in_the_cloud(secretsmanager: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # given a deployment whose admin key was set with scripts/set-secret.sh (no MULTIAGENT_ADMIN_KEY)
    from tests.helpers import local_app

    prefix = f"t{uuid.uuid4().hex[:8]}/"
    secretsmanager.create_secret(Name=f"{prefix}admin-key", SecretString="k" * 40)
    monkeypatch.setenv("MULTIAGENT_SECRETS_PREFIX", prefix)
    monkeypatch.delenv("MULTIAGENT_ADMIN_KEY", raising=False)
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_SECRETS="aws") as app:
        # when the operator creates the first tenant with that key, or someone tries another
        made = await app.client.post("/v1/admin/tenants", json={"name": "first"},
                                     headers={"authorization": "Bearer " + "k" * 40})
        wrong = await app.client.post("/v1/admin/tenants", json={"name": "second"},
                                      headers={"authorization": "Bearer " + "x" * 40})
    # then the secret opens the admin API and nothing else does
    assert made.status_code == 201, made.text
    assert wrong.status_code == 403
