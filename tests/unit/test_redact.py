"""The one redaction function, on real-looking secrets (all fake, in their real formats)."""

from __future__ import annotations

import json
import logging

import pytest

from shared.observability.logging import JsonFormatter
from shared.observability.redact import REDACTED, redact, redact_value

ANTHROPIC = "sk-ant-api03-" + "Zq9vT3xK1mN7pL2wR8sY4uB6cD0eF5gH" * 3 + "-AbCdEfGhAA"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5"
       "MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
       "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----")
OUR_KEY = "mak_" + "x7Yb2Qp9Lm4Nc8Vd1Rt6Sz3Wk5Jh0Gf"

# (sample, the secret that must be gone, text that must survive)
CASES = [
    (f"calling with key {ANTHROPIC} now", ANTHROPIC, "calling with key"),
    (f"x-api-key: {ANTHROPIC}", ANTHROPIC, "x-api-key"),
    (f"AWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET, "AWS_ACCESS_KEY_ID"),
    (f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}", AWS_ID, "[default]"),
    (f"id token {JWT} expired", JWT, "expired"),
    (f"Authorization: Bearer {OUR_KEY}", OUR_KEY, "Authorization"),
    ("Authorization: Bearer 4f9c2a7e1b3d5f8a0c6e9b2d4f7a1c3e", "4f9c2a7e1b3d5f8a0c6e9b2d4f7a1c3e", "Authorization"),
    ("curl -H 'Authorization: Basic YWRtaW46czNjcjN0UGFzcw=='", "YWRtaW46czNjcjN0UGFzcw==", "curl"),
    ("DATABASE_URL=postgres://app:Tr0ub4dor&3@db.internal:5432/prod", "Tr0ub4dor&3", "db.internal:5432/prod"),
    ("redis://:s3cr3t-redis-pw@cache:6379/0", "s3cr3t-redis-pw", "cache:6379"),
    ('{"username": "ops", "password": "correct horse battery staple"}', "correct horse battery staple", '"ops"'),
    ('{"client_secret": "8Q~dKz0_abc.def-GHI", "grant_type": "client_credentials"}', "8Q~dKz0_abc.def-GHI",
     "grant_type"),
    ('{"refresh_token": "1//0gLx-rT9_aBc", "input_tokens": 1234}', "1//0gLx-rT9_aBc", '"input_tokens": 1234'),
    ('log: {\\"password\\": \\"p@ss w0rd\\"}', "p@ss w0rd", "log:"),
    (f"key material:\n{PEM}\nend of file", "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
     "end of file"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
     "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU", ""),
    ("https://s3.amazonaws.com/b/o?X-Amz-Credential=AKIA%2F20261122&X-Amz-Signature=9f2c1d7a0b3e&x=1",
     "9f2c1d7a0b3e", "s3.amazonaws.com"),
    ("OPENAI_API_KEY=sk-proj-4fJk2Lm9Qw8Er7Ty6Ui5Op3As1Df0Gh", "sk-proj-4fJk2Lm9Qw8Er7Ty6Ui5Op3As1Df0Gh",
     "OPENAI_API_KEY"),
    ("token ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R9s0T in CI", "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R9s0T",
     "in CI"),
    ("stripe sk_live_51H8xYzAbCdEfGhIjKlMnOp", "sk_live_51H8xYzAbCdEfGhIjKlMnOp", "stripe"),
    ("slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-123456789012", "slack"),
    ("GOOGLE_API_KEY AIzaSyD-1234567890abcdefghijklmnopqrstu", "AIzaSyD-1234567890abcdefghijklmnopqrstu", "GOOGLE"),
    (f"your key is {OUR_KEY}", OUR_KEY, "your key is"),
]


@pytest.mark.parametrize(("sample", "secret", "kept"), CASES, ids=[c[0][:30] for c in CASES])
def test_secret_is_redacted_and_context_kept(sample: str, secret: str, kept: str) -> None:
    out = redact(sample)
    assert secret not in out
    assert REDACTED in out
    assert kept in out


@pytest.mark.parametrize("text", [
    "input_tokens=1234 output_tokens: 5678 cost_usd=0.0012",
    "the team answered in 812 ms; 3 tool calls; model claude-sonnet-4-5",
    "secrets_backend=env store=sqlite:///./data/multiagent.db",
    "see https://docs.example.com/a/b?page=2",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
])
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_redact_value_walks_json_and_drops_secret_named_fields() -> None:
    data = {"headers": {"Authorization": "Bearer abc", "X-Api-Key": "whatever", "accept": "json"},
            "items": [f"use {ANTHROPIC}", 3], "input_tokens": 12, "password": "x", "nested": {"db_password": "y"}}
    out = redact_value(data)
    assert out["headers"] == {"Authorization": REDACTED, "X-Api-Key": REDACTED, "accept": "json"}
    assert out["items"] == [f"use {REDACTED}", 3]
    assert out["input_tokens"] == 12 and out["password"] == REDACTED and out["nested"]["db_password"] == REDACTED
    assert ANTHROPIC not in json.dumps(out)


def test_redaction_is_idempotent() -> None:
    once = redact(f"Authorization: Bearer {OUR_KEY} and password=hunter22")
    assert redact(once) == once
    assert once.count(REDACTED) == 2 and "]]" not in once


def test_log_lines_are_redacted_in_message_fields_and_exceptions() -> None:
    formatter = JsonFormatter()
    try:
        raise RuntimeError(f"connect failed for postgres://app:hunter2secret@db/prod with {ANTHROPIC}")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "key %s", (OUR_KEY,), exc_info)
    record.fields = {"api_key": "abc", "body": {"password": "pw", "q": f"token {JWT}"}, "input_tokens": 5}
    line = formatter.format(record)
    for secret in (OUR_KEY, ANTHROPIC, "hunter2secret", JWT, '"pw"', '"abc"'):
        assert secret not in line
    payload = json.loads(line)
    assert payload["input_tokens"] == 5 and payload["body"]["password"] == REDACTED
