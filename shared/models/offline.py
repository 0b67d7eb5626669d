"""The offline provider: no network, no key, zero cost, deterministic schema-valid output.

It lets a newcomer run every operation of every team on a fresh machine. Its structured
answers are built from the operation's JSON Schema, so they always validate.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from shared.models.base import ModelRequest, ModelResponse, Usage
from shared.schema_examples import schema_example

BANNER = (
    "multiagent: running on the offline model (deterministic placeholder answers, $0, no network). "
    "Set ANTHROPIC_API_KEY (or MULTIAGENT_MODEL_PROVIDER=anthropic|bedrock|vertex) to use a real model."
)


def example_from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "value") -> Any:
    """A deterministic value valid against ``schema`` (the subset pydantic emits)."""
    return schema_example(schema, _leaf, root, name)


def _leaf(schema: dict[str, Any], kind: str, name: str) -> Any:
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    return _string(schema, name)


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None and high is not None:
        value: float = (low + high) / 2
    elif low is not None:
        value = low + 1
    elif high is not None:
        value = high - 1 if high >= 1 else high / 2
    else:
        value = 1
    return int(value) if integer and float(value).is_integer() else (round(value) if integer else value)


def _string(schema: dict[str, Any], name: str) -> str:
    text = f"offline {name.replace('_', ' ')}"
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if len(text) < low:
        text = text + "." * (low - len(text))
    if high is not None:
        text = text[:high]
    return text


class OfflineProvider:
    """:class:`~shared.models.base.ModelProvider` that never leaves the process."""

    name = "offline"

    def __init__(self, banner: bool = True) -> None:
        if banner:
            print(BANNER, file=sys.stderr, flush=True)

    def resolve_model(self, model: str) -> str:
        """Whatever the team asked for, the offline model answers (and bills $0)."""
        return "offline"

    async def aclose(self) -> None:
        """Nothing to close: the offline model holds no connection."""

    async def count_tokens(self, request: ModelRequest) -> int | None:
        """Exact: the offline model reads (and bills) nothing."""
        return 0

    async def create(self, request: ModelRequest) -> ModelResponse:
        """A forced tool gets schema-valid input; anything else gets a short text."""
        choice = request.tool_choice or {}
        digest = hashlib.sha256(json.dumps(request.messages, sort_keys=True).encode()).hexdigest()[:12]
        if choice.get("type") == "tool":
            tool = next(t for t in request.tools if t["name"] == choice["name"])
            content = [
                {"type": "tool_use", "id": f"toolu_offline_{digest}", "name": tool["name"],
                 "input": example_from_schema(tool["input_schema"])}
            ]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": f"Offline answer {digest}: this deployment runs without a model."}]
            stop = "end_turn"
        return ModelResponse(model="offline", content=content, stop_reason=stop, usage=Usage())
