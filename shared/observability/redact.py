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

Linear time on any input (the text can be attacker-made: a request path, a tool's output, a
model's tool name). ``re`` backtracks, so every pattern is written so that one attempt scans
a bounded stretch, or a stretch no other failing attempt scans again:

- each pattern starts at a literal (a key prefix, a secret name, ``://``), never at "any word
  boundary" followed by an unbounded run (``\\b[\\w.-]*?password`` tried every word start of
  ``a-a-a-…`` and ran to its end each time: quadratic);
- a run followed by a delimiter it cannot contain is possessive (``*+``, ``{8,}+``): same
  matches, no backtracking into it;
- a JWT attempt that fails skips the rest of its run (every later ``eyJ`` in the same run
  would fail the same way), instead of being retried at each ``eyJ`` of ``eyJeyJeyJ…``.

``tests/security/test_redaction_linear.py`` holds the time ratio of 64 KiB to 4 KiB inputs
near 16 on adversarial strings. Callers that keep only a prefix pass ``limit``: the text is
cut (with a margin, so a secret across the cut is still recognised) before it is redacted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

REDACTED = "[REDACTED]"
# redact(text, limit) looks this far past the limit, so that a secret the cut goes through is
# still seen whole (and redacted) before the output is cut to ``limit``
LIMIT_MARGIN = 4_096

def _keep_failed_jwt(m: re.Match[str]) -> str:
    return m.group(1) or REDACTED


# (pattern, replacement), applied in this order
_SHAPES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # Authorization credentials (first: they wrap the keys below)
    (re.compile(r"(?i)\b(?:bearer|basic)\s++[A-Za-z0-9._\-~+/]{8,}+=*+"), REDACTED),
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]{10,}+"), REDACTED),  # Anthropic keys
    (re.compile(r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}+"), REDACTED),  # OpenAI keys
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}+"), REDACTED),  # Stripe secret keys
    (re.compile(r"mak_[A-Za-z0-9_\-]{16,}+"), REDACTED),  # our own API keys
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])"), REDACTED),  # AWS key ids
    (re.compile(r"AIza[0-9A-Za-z_\-]{35}"), REDACTED),  # Google API keys
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}+|\bgithub_pat_[A-Za-z0-9_]{40,}+"), REDACTED),  # GitHub tokens
    (re.compile(r"xox[baprs]-[A-Za-z0-9\-]{10,}+"), REDACTED),  # Slack tokens
    # JWTs: three dot-separated base64url runs, the first from an eyJ. The second alternative
    # (group 1) is the run of an attempt that failed, kept as it is: a later eyJ in it would fail too.
    (re.compile(r"eyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+|(eyJ[A-Za-z0-9_\-]*+)"),
     _keep_failed_jwt),
    # PEM private keys, with or without their END line (a pasted key is often cut off): up to
    # the END line, a blank line or the end of the text
    (re.compile(r"-----BEGIN [A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                r"(?:-----END [A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----|(?=\n[^\S\n]*+\n)|$)"), REDACTED),
]
# scheme://user:PASSWORD@host, found from its "://"; the scheme before it (a letter at a word
# boundary, then scheme characters) is looked for in the 64 characters before
_URL_PASSWORD = re.compile(r"(?i)(?<=[a-z0-9+.\-])(://[^\s:/@\"']*+:)([^\s@/\"']++)(@)")
_SCHEME = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*+\Z")
_SCHEME_WINDOW = 64
# The secret name alone: a prefix such as client_ or X-Amz- stays before the match, as it is.
_NAME = (r"(?:password|passwd|pwd|secret|token|apikey"
         r"|(?:api|secret|access|private|signing|encryption)[_-]?key|credentials?|signature|authorization)")
_ASSIGNMENT = re.compile(  # (the lookahead: every name starts with one of these; 3x faster on prose)
    rf"(?i)(?=[acepst])({_NAME}\b\\?[\"']?\s*+[:=]\s*+)"
    r"(\\\"(?:[^\\]|\\[^\"])*?\\\"|\"(?:[^\"\\]|\\.)*+\"|'(?:[^'\\]|\\.)*+'|[^\s\"',;&}\]\)]{4,}+)"
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


def _replace_url_password(m: re.Match[str]) -> str:
    start = m.start()
    if _SCHEME.search(m.string, max(0, start - _SCHEME_WINDOW), start) is None:
        return m.group(0)
    return m.group(1) + REDACTED + m.group(3)


def _redact(text: str) -> str:
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    if "://" in text:
        text = _URL_PASSWORD.sub(_replace_url_password, text)
    return _ASSIGNMENT.sub(_replace_assignment, text)


def redact(text: str, limit: int | None = None) -> str:
    """``text`` with every secret-looking substring replaced by ``[REDACTED]``.

    With ``limit``: the first ``limit`` characters of that, at the cost of redacting only
    ``limit`` + :data:`LIMIT_MARGIN` characters of ``text`` (``redact(t, limit=n)`` is
    ``redact(t)[:n]`` for any secret shorter than the margin).
    """
    if limit is None:
        return _redact(text)
    limit = max(0, limit)
    return _redact(text[:limit + LIMIT_MARGIN])[:limit]


def redact_value(value: Any, limit: int | None = None) -> Any:
    """Redact strings inside JSON-like data; string values under secret-named keys go entirely.

    ``limit`` bounds each string (see :func:`redact`)."""
    if isinstance(value, str):
        return redact(value, limit)
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and isinstance(v, str) and _SECRET_KEYS.search(k)
                else redact_value(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, limit) for v in value]
    return value


__all__ = ["LIMIT_MARGIN", "REDACTED", "redact", "redact_value"]
