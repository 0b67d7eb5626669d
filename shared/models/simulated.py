"""The simulated provider: the offline answers, billed as a real model would bill them.

``MULTIAGENT_MODEL_PROVIDER=simulated`` makes budgets visible on a machine with no key and
no network: every answer is the offline model's (deterministic, schema-valid), but its
usage is what a real model would report for it (input counted from what is sent, output
from what is returned, one token per four UTF-8 bytes) and it is priced at the team's
model price. Every model id it reports reads ``simulated:<model>`` (responses, the usage
ledger, the dashboard), so simulated money is never mistaken for a real bill.

The counts stay within the budget guard's sanity bounds (``shared.budget.usage_problem``):
non-negative integers, the input under ``input_token_bound`` (one token per byte plus
framing), the output at most ``max_tokens``.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from shared.models.base import ModelRequest, ModelResponse, Usage
from shared.models.offline import OfflineProvider

PREFIX = "simulated:"
BYTES_PER_TOKEN = 4  # the usual rule of thumb for English text and JSON with a BPE tokenizer

BANNER = (
    "multiagent: running on the SIMULATED model (the offline placeholder answers, no network, no key). "
    "Costs are simulated: each call is billed to its tenant's budget at the team's model price for the "
    "tokens a real model would use, shown as simulated:<model>; nobody is charged. "
    "Set ANTHROPIC_API_KEY (or MULTIAGENT_MODEL_PROVIDER=anthropic|bedrock|vertex) to use a real model."
)


def simulated_model(model: str) -> str:
    """``simulated:<model>`` (unchanged when already so)."""
    return model if model.startswith(PREFIX) else PREFIX + model


def is_simulated(model: str) -> bool:
    """True for a model id the simulated provider reported."""
    return model.startswith(PREFIX)


def _tokens(value: Any) -> int:
    """One token per four UTF-8 bytes of ``value`` as compact JSON, rounded up."""
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    return math.ceil(size / BYTES_PER_TOKEN)


def input_tokens(request: ModelRequest) -> int:
    """What a real model would bill as input for ``request``: everything it is sent (the
    same payload ``input_token_bound`` counts one token per byte of, so always under it)."""
    return _tokens({"system": request.system, "messages": request.messages, "tools": request.tools,
                    "tool_choice": request.tool_choice})


def output_tokens(content: list[dict[str, Any]], max_tokens: int) -> int:
    """What a real model would bill as output for ``content`` (never above ``max_tokens``)."""
    return max(0, min(max_tokens, _tokens(content)))


class SimulatedProvider:
    """:class:`~shared.models.base.ModelProvider` with offline answers and real-model usage."""

    name = "simulated"

    def __init__(self, banner: bool = True) -> None:
        self._offline = OfflineProvider(banner=False)
        if banner:
            print(BANNER, file=sys.stderr, flush=True)

    def resolve_model(self, model: str) -> str:
        """``simulated:<model>``: priced like ``<model>`` (shared/pricing.py), labelled as
        simulated in the reservation, the ledger and every report built from them."""
        return simulated_model(model)

    async def aclose(self) -> None:
        """Nothing to close: no connection is ever opened."""

    async def count_tokens(self, request: ModelRequest) -> int | None:
        """Exact: the simulated model bills what :func:`input_tokens` counts."""
        return input_tokens(request)

    async def create(self, request: ModelRequest) -> ModelResponse:
        """The offline answer, with the usage a real model would report for it."""
        answer = await self._offline.create(request)
        usage = Usage(input_tokens=input_tokens(request),
                      output_tokens=output_tokens(answer.content, request.max_tokens))
        return ModelResponse(model=simulated_model(request.model), content=answer.content,
                             stop_reason=answer.stop_reason, usage=usage)
