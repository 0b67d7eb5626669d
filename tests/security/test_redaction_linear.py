"""Redaction runs in linear time on any text, and still redacts every secret shape.

``redact`` sees attacker-made text: a request path in the access log, a tool's output, a
model's tool name, an audit detail. A backtracking pattern that is quadratic on some input
(``\\b[\\w.-]*?password`` on ``a-a-a-…`` took 1.9 s on 4 KiB, minutes on 64 KiB) stalls the
event loop for every request. Here, on random and adversarial strings, the time for 64 KiB
stays within a small multiple of 16 times the time for 4 KiB (linear is 16, quadratic 256),
and every secret of ``tests/unit/test_redact.py`` is still redacted inside such text, whole
or cut by ``redact(text, limit)``.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import pytest

from shared.observability.redact import LIMIT_MARGIN, REDACTED, redact, redact_value
from tests.unit.test_redact import CASES

BODY_LIMIT = 256 * 1024
SMALL, BIG = 4 * 1024, 64 * 1024
MAX_RATIO = 48  # linear is 16; a quadratic redactor is ~256
ONE_SMALL_CALL_S = 0.5  # fail fast instead of waiting minutes for a quadratic one

# pieces of text that make backtracking patterns work: secret names, key prefixes, separators
TOKENS = ["a", "-", ".", "_", "token", "Token", "password", "pwd", "secret", "api_key", "apikey", "client_secret",
          "=", ":", " ", "\n", '"', "'", "\\", '\\"', "eyJ", "eyJhbGciOiJIUzI1NiIs", "abcdefgh", "aaaaaaaaaaaa", "://",
          "postgres", "@", "/", "user", ";", "}", "Bearer ", "basic ", "sk-ant-", "sk-", "mak_", "ghp_", "AKIA",
          "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "\n\n", "xoxb-", "AIza", "0123456789",
          "[REDACTED]", "credentials", "signature", "Authorization", "tokens", "é", "ſ", "\u212a", "%2F", "&"]


def _repeat(unit: str) -> Callable[[int], str]:
    def make(n: int) -> str:
        return (unit * (n // len(unit) + 1))[:n]

    return make


def _random(seed: int) -> Callable[[int], str]:
    def make(n: int) -> str:
        rng = random.Random(seed)
        out: list[str] = []
        size = 0
        while size < n:
            out.append(rng.choice(TOKENS))
            size += len(out[-1])
        return "".join(out)[:n]

    return make


ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "a-a-a": _repeat("a-"),
    "a.a.a": _repeat("a."),
    "a_a_a": _repeat("a_"),
    "a/a/a": _repeat("a/"),
    "tokentoken": _repeat("token"),
    "apikeyapikey": _repeat("apikey"),
    "passwordpassword": _repeat("password"),
    "client_secret_": _repeat("client_secret_"),
    "key=value chain": _repeat("password=x;api_key=y&"),
    "name: chain": _repeat("token: "),
    "unclosed quotes": _repeat('password="a '),
    "unclosed single quotes": _repeat("secret='a "),
    "unclosed escaped quotes": _repeat('token=\\"a '),
    "scheme runs": _repeat("a.a://"),
    "user-info runs": _repeat("a://u:"),
    "eyJeyJ": _repeat("eyJ"),
    "jwt-ish segments": _repeat("eyJaaaaaaaa."),
    "bearer bearer": _repeat("Bearer "),
    "pem headers": _repeat("-----BEGIN RSA PRIVATE KEY-----\n"),
    "pem with spaces": lambda n: "-----BEGIN " + "A " * (n // 2),
    "blank-ish lines": _repeat("\n \t "),
    "key prefixes": _repeat("sk-ant-ghp_mak_xoxb-AKIA"),
    "mixed": _repeat("a-token.eyJ:/"),
    **{f"random {seed}": _random(seed) for seed in range(4)},
}


def _seconds(fn: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_time_grows_linearly_with_the_input(name: str) -> None:
    make = ADVERSARIAL[name]
    small, big = make(SMALL), make(BIG)
    one = _seconds(lambda: redact(small), repeats=1)
    assert one < ONE_SMALL_CALL_S, f"{name}: 4 KiB took {one:.2f} s"
    # 16 small calls are timed together: a 4 KiB call alone is too short to measure well
    per_small = _seconds(lambda: [redact(small) for _ in range(16)]) / 16
    per_big = _seconds(lambda: redact(big))
    ratio = per_big / per_small
    assert ratio < MAX_RATIO, f"{name}: 64 KiB took {ratio:.0f}x the time of 4 KiB (linear is 16)"


@pytest.mark.parametrize("name", ["a-a-a", "a.a.a", "key=value chain", "eyJeyJ", "random 0"])
def test_a_body_sized_input_is_redacted_quickly(name: str) -> None:
    text = ADVERSARIAL[name](BODY_LIMIT)
    took = _seconds(lambda: redact(text), repeats=1)
    assert took < 2.0, f"{name}: 256 KiB took {took:.2f} s"
    bounded = _seconds(lambda: redact(text, limit=20_000), repeats=3)
    assert bounded < took / 3 + 0.05, "redact(text, limit) must not do work on the whole text"


@pytest.mark.parametrize(("sample", "secret", "kept"), CASES, ids=[c[0][:30] for c in CASES])
@pytest.mark.parametrize("padding", ["a-a-a", "a.a.a", "tokentoken", "random 1"])
def test_every_secret_shape_is_redacted_inside_adversarial_text(sample: str, secret: str, kept: str,
                                                                 padding: str) -> None:
    pad = ADVERSARIAL[padding](BIG)
    text = f"{pad}\n\n{sample}\n\n{pad}"
    out = redact(text)
    assert secret not in out
    assert kept in out
    assert REDACTED in out
    # cut just after the sample, and through the middle of the secret: never the secret, nor half of it
    end = len(pad) + 2 + len(sample)
    assert secret not in redact(text, limit=end)
    middle = text.index(secret, len(pad)) + len(secret) // 2
    assert secret[: len(secret) // 2] not in redact(text, limit=middle)[len(pad):]


@pytest.mark.parametrize(("sample", "secret", "kept"), CASES, ids=[c[0][:30] for c in CASES])
def test_every_secret_shape_is_redacted_in_structured_values(sample: str, secret: str, kept: str) -> None:
    value = {"tool": "a-" * 8_000, "detail": {"args": [sample, "a." * 8_000]}, "n": 3}
    out = redact_value(value, limit=40_000)
    assert secret not in str(out)
    assert out["n"] == 3


@pytest.mark.parametrize("seed", range(200))
def test_a_limit_cuts_the_redacted_text(seed: int) -> None:
    rng = random.Random(seed)
    text = _random(seed)(rng.randint(1, 2 * LIMIT_MARGIN))
    limit = rng.randint(0, len(text) + 10)
    full = redact(text)
    assert redact(text, limit=limit) == full[:limit]
