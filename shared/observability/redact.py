"""One redaction function for everything that leaves a trust boundary: tool output on its
way to the model, log lines (message, exception and structured fields), audit details.

Two kinds of rule, applied in this order:

1. Secrets recognisable by their shape wherever they appear: Anthropic, OpenAI, Stripe,
   GitHub, Slack and Google keys, our own ``mak_`` keys, AWS access key ids, JWTs, PEM
   private keys (also cut off before their END line), ``Bearer``/``Basic`` credentials,
   the password in a URL's user-info.
2. Values assigned to a secret-sounding name, in ``name=value``, ``name: value`` and JSON
   ``"name": "value"`` form (a quoted value goes whole, spaces and escaped quotes
   included): ``password``, ``passwd``, ``pwd``, ``secret``, ``*_token``, ``api_key``,
   ``secret_access_key``, ``private_key``, ``credential``, ``signature``, ``authorization``. A plural such as
   ``input_tokens`` is not a secret name, so usage numbers survive.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

_PATTERNS = [
    # Authorization credentials (first: they wrap the keys below)
    re.compile(r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._\-~+/]{8,}=*"),
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{10,}"),  # Anthropic keys
    re.compile(r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}"),  # OpenAI keys
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"),  # Stripe secret keys
    re.compile(r"mak_[A-Za-z0-9_\-]{16,}"),  # our own API keys
    re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])"),  # AWS access key ids
    re.compile(r"AIza[0-9A-Za-z_\-]{35}"),  # Google API keys
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}|\bgithub_pat_[A-Za-z0-9_]{40,}"),  # GitHub tokens
    re.compile(r"xox[baprs]-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),  # JWTs
    # PEM private keys, with or without their END line (a pasted key is often cut off)
    re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"
               r"|(?=\n\s*\n)|$)"),
]
# scheme://user:PASSWORD@host
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@\"']*:)([^\s@/\"']+)(@)")
_NAME = (r"[\w.\-]*?(?:password|passwd|pwd|secret|token|apikey"
         r"|(?:api|secret|access|private|signing|encryption)[_-]?key|credentials?|signature|authorization)")
_ASSIGNMENT = re.compile(
    rf"(?i)(\b{_NAME}\b\\?[\"']?\s*[:=]\s*)"
    r"(\\\"(?:[^\\]|\\[^\"])*?\\\"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s\"',;&}\]\)]{4,})"
)
_SECRET_KEYS = re.compile(
    r"(?i)(?:password|passwd|secret(?!s_backend)|api[_-]?key|apikey|token(?!s)|authorization|private[_-]?key"
    r"|credential|signature|cookie)"
)


def _replace_assignment(m: re.Match[str]) -> str:
    value = m.group(2)
    if REDACTED[:-1] in value:  # already redacted by a shape rule
        return m.group(0)
    if value.startswith('\\"'):
        return m.group(1) + '\\"' + REDACTED + '\\"'
    if value[0] in "\"'":
        return m.group(1) + value[0] + REDACTED + value[0]
    return m.group(1) + REDACTED


def redact(text: str) -> str:
    """``text`` with every secret-looking substring replaced by ``[REDACTED]``."""
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    return _ASSIGNMENT.sub(_replace_assignment, text)


def redact_value(value: Any) -> Any:
    """Redact strings inside JSON-like data; string values under secret-named keys go entirely."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and isinstance(v, str) and _SECRET_KEYS.search(k)
                else redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


__all__ = ["REDACTED", "redact", "redact_value"]
