"""Secrets from AWS Secrets Manager (``MULTIAGENT_SECRETS=aws``).

Secret ``anthropic-api-key`` is read from the Secrets Manager secret
``{MULTIAGENT_SECRETS_PREFIX}anthropic-api-key`` (Terraform sets the prefix to
``multiagent-<env>/``). The endpoint, region and credentials come from boto3's usual
configuration (``AWS_ENDPOINT_URL[_SECRETS_MANAGER]``, ``AWS_REGION``, the Lambda role).
boto3 is imported when the first secret is read, never at import of this module. Values
are never logged; :class:`~shared.secrets.base.CachedSecrets` keeps them per instance.
"""

from __future__ import annotations

import os
from typing import Any

from shared.lazy import Lazy
from shared.secrets.base import SecretUnavailable

PREFIX_ENV = "MULTIAGENT_SECRETS_PREFIX"
_MISSING = ("ResourceNotFoundException",)


class AwsSecrets:
    """:class:`~shared.secrets.base.SecretStore` over Secrets Manager's ``GetSecretValue``."""

    def __init__(self, prefix: str | None = None, client: Any = None, region: str | None = None) -> None:
        self.prefix = os.environ.get(PREFIX_ENV, "") if prefix is None else prefix
        self.region = region
        self._client: Lazy[Any] = Lazy(self._make_client, client)

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})
        try:
            return boto3.session.Session().client("secretsmanager", region_name=self.region, config=config)
        except Exception as exc:  # NoRegionError and friends
            raise SecretUnavailable(f"cannot create a Secrets Manager client: {exc}") from None

    def _get_client(self) -> Any:
        return self._client.get()

    def secret_id(self, name: str) -> str:
        """The Secrets Manager name of secret ``name``."""
        return f"{self.prefix}{name}"

    def get(self, name: str) -> str | None:
        """The secret's current value; None when it or its value does not exist."""
        from botocore.exceptions import BotoCoreError, ClientError

        secret_id = self.secret_id(name)
        try:
            out = self._get_client().get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
            # A secret created by Terraform but never given a value has no AWSCURRENT version.
            if code in _MISSING:
                return None
            raise SecretUnavailable(f"Secrets Manager GetSecretValue {secret_id}: {code}: {message}") from None
        except BotoCoreError as exc:
            raise SecretUnavailable(f"Secrets Manager GetSecretValue {secret_id}: {exc}") from None
        if "SecretString" in out:
            return str(out["SecretString"]) or None
        raw = out.get("SecretBinary")
        return bytes(raw).decode() if raw else None
