"""Secret-store factory (``MULTIAGENT_SECRETS``: env, gcp, aws); cloud SDKs load lazily."""

from __future__ import annotations

import importlib

from shared.secrets.base import (
    ADMIN_KEY,
    ANTHROPIC_API_KEY,
    INTERNAL_SIGNING_KEY,
    CachedSecrets,
    SecretStore,
    SecretUnavailable,
)

__all__ = [
    "ADMIN_KEY",
    "ANTHROPIC_API_KEY",
    "INTERNAL_SIGNING_KEY",
    "CachedSecrets",
    "SecretStore",
    "SecretUnavailable",
    "open_secrets",
]

_BACKENDS = {"env": ("shared.secrets.env", "EnvSecrets"), "gcp": ("shared.secrets.gcp", "GcpSecrets"),
             "aws": ("shared.secrets.aws", "AwsSecrets")}


def open_secrets(backend: str = "env") -> CachedSecrets:
    """The secret store for ``backend``, behind a per-instance TTL cache."""
    module_name, class_name = _BACKENDS[backend]
    cls = getattr(importlib.import_module(module_name), class_name)
    return CachedSecrets(cls())
