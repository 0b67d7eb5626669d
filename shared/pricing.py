"""Model prices as data, in USD per million tokens (MTok).

Money is handled in integer micro-dollars (1 USD = 1_000_000 µ$) everywhere past this
module, so sums in the store never drift. A model with no price here is a start-up
configuration error (:func:`price_for` raises), never a silent $0.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

from shared.errors import ConfigurationError

MICROS_PER_USD = 1_000_000


@dataclass(frozen=True)
class Price:
    """Per-MTok prices of one model."""

    input: float
    output: float
    cache_write: float
    cache_read: float


def _price(inp: float, out: float) -> Price:
    # Anthropic's published ratios: 5-minute cache writes cost 1.25x input, reads 0.1x.
    return Price(input=inp, output=out, cache_write=inp * 1.25, cache_read=inp * 0.1)


PRICES: dict[str, Price] = {
    "claude-opus-4-5": _price(5.0, 25.0),
    "claude-opus-4-1": _price(15.0, 75.0),
    "claude-opus-4": _price(15.0, 75.0),
    "claude-sonnet-4-5": _price(3.0, 15.0),
    "claude-sonnet-4": _price(3.0, 15.0),
    "claude-3-7-sonnet": _price(3.0, 15.0),
    "claude-haiku-4-5": _price(1.0, 5.0),
    "claude-3-5-haiku": _price(0.8, 4.0),
    "claude-3-haiku": _price(0.25, 1.25),
    "offline": Price(0.0, 0.0, 0.0, 0.0),
}

SIMULATED_PREFIX = "simulated:"  # shared/models/simulated.py: a real model's price, no real bill


@functools.lru_cache(maxsize=256)  # a handful of model ids per process; the regexes ran on every call
def base_model_name(model: str) -> str:
    """Strip provider prefixes and date/version suffixes from a model id.

    Dated ids (``claude-sonnet-4-5-20250929``), Bedrock ids
    (``us.anthropic.claude-sonnet-4-5-20250929-v1:0``) and Vertex ids
    (``claude-sonnet-4-5@20250929``) share the base name's price, and so does the
    simulated provider's ``simulated:<model>`` (billed as ``<model>`` would be).
    """
    name = model.strip().lower()
    name = name.removeprefix(SIMULATED_PREFIX)
    name = re.sub(r"^(?:[a-z]{2,4}\.)?anthropic\.", "", name)
    name = re.sub(r"(?:-v\d+(?::\d+)?)$", "", name)
    name = re.sub(r"(?:[-@]\d{8})$", "", name)
    name = re.sub(r"-latest$", "", name)
    return name


def price_for(model: str) -> Price:
    """The price of ``model``; :class:`ConfigurationError` when it has none."""
    base = base_model_name(model)
    if base in PRICES:
        return PRICES[base]
    raise ConfigurationError(
        f"model {model!r} has no price in shared/pricing.py; add it there before using it "
        f"(known: {', '.join(sorted(PRICES))})"
    )


def cost_micros(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> int:
    """Cost in micro-dollars, rounded up (a budget is never under-charged)."""
    p = price_for(model)
    # USD per MTok x tokens / 1e6 x 1e6 micros per USD = price x tokens micros
    amount = (
        p.input * input_tokens
        + p.output * output_tokens
        + p.cache_write * cache_write_tokens
        + p.cache_read * cache_read_tokens
    )
    return math.ceil(round(amount, 6))


def max_output_tokens_for(model: str, budget_micros: int, input_tokens: int) -> int:
    """How many output tokens ``budget_micros`` can pay for after ``input_tokens``."""
    p = price_for(model)
    if p.output <= 0:
        return 1 << 30
    return max(0, math.floor((budget_micros - p.input * input_tokens) / p.output))


def usd(amount_micros: int) -> float:
    """Micro-dollars as a float USD amount for display and JSON."""
    return round(amount_micros / MICROS_PER_USD, 6)


def micros(amount_usd: float) -> int:
    """A USD amount as integer micro-dollars."""
    return round(amount_usd * MICROS_PER_USD)
