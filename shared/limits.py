"""Money and limit inputs, validated in one place (the contract's Budgets rule 6).

Every USD amount, rate limit, alert threshold and flag a user can set — admin API, CLI
flags, ``POST /v1/runs`` ``max_usd``, environment defaults — goes through these pure
functions. A USD amount is finite, 0 ≤ USD ≤ 1e9, and comes back as integer micro-dollars;
a rate is a whole number (a bool is not one); a flag is a real boolean. Anything else is a
:class:`~shared.errors.ValidationFailed` whose ``errors`` name the field by its ``loc``
(the HTTP layer answers 422 ``validation-error``; the CLI prints one line).

Values arrive either parsed from JSON (``usd_micros`` and friends) or as command-line /
environment text (``number_from_text``, which turns text into the number the validators
then check).
"""

from __future__ import annotations

import math
from collections.abc import Container, Sequence
from typing import Any

from shared.errors import ValidationFailed
from shared.pricing import MICROS_PER_USD

MAX_USD = 1_000_000_000  # the largest amount any cap or run budget may be set to
MAX_MICROS = MAX_USD * MICROS_PER_USD
MAX_RATE = 1_000_000_000  # requests or tokens per minute

Loc = Sequence[str | int]


def invalid(loc: Loc, msg: str) -> ValidationFailed:
    """The 422 for one field: ``detail`` names it and ``errors`` carries its ``loc``."""
    name = ".".join(str(p) for p in loc[1:]) if len(loc) > 1 else str(loc[0]) if loc else "body"
    return ValidationFailed(f"{name}: {msg}", errors=[{"loc": list(loc), "msg": msg}])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def usd_micros(value: Any, loc: Loc, *, positive: bool = False) -> int:
    """A USD amount (a JSON number, 0..1e9, finite) as integer micro-dollars.

    ``positive`` refuses amounts that round to zero micro-dollars (a run's own budget)."""
    lowest = "$0.000001" if positive else "0"
    msg = f"must be a number of USD from {lowest} to {MAX_USD:,}"
    if not _is_number(value):
        raise invalid(loc, msg)
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid(loc, f"{msg}; {value} is not a finite number")
    if value < 0 or value > MAX_USD:  # exact for ints of any size (no float conversion)
        raise invalid(loc, msg)
    amount = int(value) * MICROS_PER_USD if isinstance(value, int) else round(value * MICROS_PER_USD)
    if positive and amount < 1:
        raise invalid(loc, msg)
    return amount


def rate(value: Any, loc: Loc, *, minimum: int = 1) -> int:
    """Requests or tokens per minute: a whole number from ``minimum`` to 1e9 (not a bool,
    not 7.0). The rate limiter treats a limit below one as one, so zero is refused."""
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_RATE:
        raise invalid(loc, f"must be a whole number from {minimum} to {MAX_RATE:,}")
    return value


def fraction(value: Any, loc: Loc) -> float:
    """An alert threshold: a number in (0, 1] (share of a cap spent before alerting)."""
    if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)) or not 0 < value <= 1:
        raise invalid(loc, "must be a number greater than 0 and at most 1")
    return float(value)


def flag(value: Any, loc: Loc) -> bool:
    """A real boolean: ``true``/``false``, never ``"no"``, 0 or 1."""
    if not isinstance(value, bool):
        raise invalid(loc, "must be true or false")
    return value


def team_usd_micros(value: Any, loc: Loc, known: Container[str]) -> dict[str, int]:
    """Per-team caps: an object mapping known team names to USD amounts (each as micros)."""
    if not isinstance(value, dict):
        raise invalid(loc, "must be an object mapping team names to USD amounts")
    out: dict[str, int] = {}
    for team, amount in value.items():
        if team not in known:
            raise invalid([*loc, team], f"unknown team {team!r}; GET /v1/teams lists them")
        out[team] = usd_micros(amount, [*loc, team])
    return out


def number_from_text(text: str, loc: Loc, *, whole: bool = False) -> int | float:
    """A number typed on a command line or in an environment variable (then validate it
    with :func:`usd_micros`, :func:`rate` or :func:`fraction`)."""
    raw = text.strip()
    try:
        return int(raw) if whole else float(raw)
    except ValueError:
        raise invalid(loc, f"{text!r} is not {'a whole number' if whole else 'a number'}") from None


__all__ = ["MAX_MICROS", "MAX_RATE", "MAX_USD", "flag", "fraction", "invalid", "number_from_text", "rate",
           "team_usd_micros", "usd_micros"]
