"""Secrets from Google Secret Manager (``MULTIAGENT_SECRETS=gcp``).

Secret ``anthropic-api-key`` is the latest version of the Secret Manager secret
``{MULTIAGENT_SECRETS_PREFIX}anthropic-api-key`` in project ``MULTIAGENT_SECRETS_PROJECT``
(else ``GOOGLE_CLOUD_PROJECT``, else the project of the default credentials, which on Cloud
Run is the metadata server's). Credentials are Application Default Credentials: on Cloud
Run, the function's own service account, which Terraform grants ``secretAccessor`` on
exactly the secrets it needs. ``MULTIAGENT_SECRETS_ENDPOINT`` overrides the API endpoint
(a regional endpoint, or ``http://127.0.0.1:PORT`` for a local fake).

The client library speaks REST (no gRPC channel to set up on a cold start) and is
imported when the first secret is read. Values are never logged.
"""

from __future__ import annotations

import os
from typing import Any

from shared.lazy import Lazy
from shared.secrets.base import SecretUnavailable

PREFIX_ENV = "MULTIAGENT_SECRETS_PREFIX"
PROJECT_ENV = "MULTIAGENT_SECRETS_PROJECT"
ENDPOINT_ENV = "MULTIAGENT_SECRETS_ENDPOINT"
_CALL_TIMEOUT_S = 5.0
_RETRY_DEADLINE_S = 10.0


def _status(exc: Exception) -> str:
    """The google.rpc status name of an API error (REST errors carry it in their body)."""
    response = getattr(exc, "response", None)
    try:
        return str(response.json()["error"]["status"])  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - not a REST error body
        code = getattr(exc, "grpc_status_code", None)
        return str(getattr(code, "name", ""))


class GcpSecrets:
    """:class:`~shared.secrets.base.SecretStore` over Secret Manager's ``AccessSecretVersion``."""

    def __init__(self, project: str | None = None, prefix: str | None = None, client: Any = None,
                 endpoint: str | None = None) -> None:
        self.project = project or os.environ.get(PROJECT_ENV) or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
        self.prefix = os.environ.get(PREFIX_ENV, "") if prefix is None else prefix
        self.endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or None
        self._client: Lazy[Any] = Lazy(self._make_client, client)

    def _get_client(self) -> Any:
        return self._client.get()

    def _make_client(self) -> Any:
        import google.auth
        from google.auth.exceptions import GoogleAuthError
        from google.cloud import secretmanager

        try:
            credentials, default_project = google.auth.default(
                scopes=["https://www.googleapis.com/auth/cloud-platform"]
            )
        except GoogleAuthError as exc:
            raise SecretUnavailable(f"no Google credentials for Secret Manager: {exc}") from None
        self.project = self.project or default_project
        if not self.project:
            raise SecretUnavailable(f"Secret Manager needs a project: set {PROJECT_ENV} or GOOGLE_CLOUD_PROJECT")
        options = {"api_endpoint": self.endpoint} if self.endpoint else None
        return secretmanager.SecretManagerServiceClient(credentials=credentials, transport="rest",
                                                        client_options=options)

    def version_name(self, name: str) -> str:
        """The resource name of the latest version of secret ``name``."""
        return f"projects/{self.project}/secrets/{self.prefix}{name}/versions/latest"

    def get(self, name: str) -> str | None:
        """The latest enabled version's value; None when the secret or any version is missing."""
        from google.api_core import exceptions as gexc
        from google.api_core.retry import Retry, if_transient_error
        from google.auth.exceptions import GoogleAuthError

        client = self._get_client()
        version = self.version_name(name)
        try:
            response = client.access_secret_version(
                name=version,
                timeout=_CALL_TIMEOUT_S,
                retry=Retry(initial=0.2, maximum=1.0, multiplier=2.0, timeout=_RETRY_DEADLINE_S,
                            predicate=if_transient_error),
            )
        except (gexc.NotFound, gexc.FailedPrecondition):
            return None  # no such secret, or no version yet
        except gexc.BadRequest as exc:
            # over REST a disabled or destroyed latest version is HTTP 400 FAILED_PRECONDITION
            if _status(exc) == "FAILED_PRECONDITION":
                return None
            raise SecretUnavailable(f"Secret Manager access {version}: {type(exc).__name__}: {exc}") from None
        except (gexc.GoogleAPIError, GoogleAuthError, OSError) as exc:
            raise SecretUnavailable(f"Secret Manager access {version}: {type(exc).__name__}: {exc}") from None
        data: bytes = response.payload.data
        return data.decode() or None
