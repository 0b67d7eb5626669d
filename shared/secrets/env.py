"""Secrets from environment variables: ``anthropic-api-key`` reads ``ANTHROPIC_API_KEY``,
``internal-signing-key`` reads ``MULTIAGENT_INTERNAL_SIGNING_KEY`` (the name upper-cased,
dashes to underscores, with the well-known Anthropic name as the one exception)."""

from __future__ import annotations

import os

_ALIASES = {"anthropic-api-key": "ANTHROPIC_API_KEY"}


def env_var_for(name: str) -> str:
    """The environment variable that holds secret ``name``."""
    return _ALIASES.get(name, "MULTIAGENT_" + name.upper().replace("-", "_"))


class EnvSecrets:
    """:class:`~shared.secrets.base.SecretStore` over ``os.environ``."""

    def get(self, name: str) -> str | None:
        """The variable's value, or None when unset or empty."""
        return os.environ.get(env_var_for(name)) or None
