"""Tools agents may use. A team may only use the tools its module lists (checked when the
catalog loads), and every result is redacted before it reaches the model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from shared.errors import ToolFailure
from shared.store.base import Store

__all__ = ["TeamCaller", "Tool", "ToolContext", "ToolFailure"]

# (team, operation, input, chain) -> output dict; supplied by the operation service, so tools never import it.
TeamCaller = Callable[[str, str, dict[str, Any], tuple[str, ...]], Awaitable[dict[str, Any]]]


@dataclass
class ToolContext:
    """What a tool may touch for this call: the tenant's data and nothing else."""

    tenant_id: str
    team: str
    request_id: str
    store: Store
    chain: tuple[str, ...] = ()
    call_team: TeamCaller | None = None


@dataclass(frozen=True)
class Tool:
    """A tool: its schema for the model and its implementation."""

    name: str
    description: str
    input: type[BaseModel]
    run: Callable[[ToolContext, Any], Awaitable[Any]]

    @cached_property
    def definition(self) -> dict[str, Any]:
        """The Messages API ``tools`` entry, built once per process (pydantic's JSON Schema
        generation is the costliest step of a model turn otherwise). Shared: never mutate it."""
        return {"name": self.name, "description": self.description, "input_schema": self.input.model_json_schema()}
