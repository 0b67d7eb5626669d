"""One redaction function for everything that leaves a trust boundary: tool output on its
way to the model, log lines, audit details."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

_PATTERNS = [
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{10,}"),  # Anthropic keys
    re.compile(r"mak_[A-Za-z0-9_\-]{16,}"),  # our own API keys
    re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),  # AWS access key ids
    re.compile(r"AIza[0-9A-Za-z_\-]{35}"),  # Google API keys
    re.compile(r"gh[pousr]_[A-Za-z0-9]{36,}"),  # GitHub tokens
    re.compile(r"xox[baprs]-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),  # JWTs
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-~+/]{12,}=*"),
]
# key=value and "key": "value" forms whose key names a secret
_ASSIGNMENT = re.compile(
    r"(?i)(\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|token|private[_-]?key|"
    r"aws_secret_access_key|client[_-]?secret)\b[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}]{4,})"
)
_SECRET_KEYS = re.compile(r"(?i)password|passwd|secret|api[_-]?key|token|authorization|private[_-]?key")


def redact(text: str) -> str:
    """``text`` with every secret-looking substring replaced by ``[REDACTED]``."""
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, text)


def redact_value(value: Any) -> Any:
    """Redact strings inside JSON-like data; values under secret-named keys go entirely."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) and isinstance(v, str)
                else redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value
