"""Tools agents may use. Each declares the permission it needs; a team may only use the
tools its module lists, and every result is redacted before it reaches the model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from shared.errors import ToolFailure
from shared.store.base import Store

__all__ = ["Permission", "TeamCaller", "Tool", "ToolContext", "ToolFailure"]

Permission = Literal["none", "clock", "store:notes", "store:tickets", "teams:consult"]

# (team, operation, input, chain) -> output dict; supplied by the app, so tools never import it.
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
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tool:
    """A tool: its schema for the model, its permission, and its implementation."""

    name: str
    description: str
    input: type[BaseModel]
    permission: Permission
    run: Callable[[ToolContext, Any], Awaitable[Any]]

    def definition(self) -> dict[str, Any]:
        """The Messages API ``tools`` entry."""
        return {"name": self.name, "description": self.description, "input_schema": self.input.model_json_schema()}
