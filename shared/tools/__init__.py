"""The tool registry: every tool a team may list in its allow-list."""

from __future__ import annotations

from shared.errors import ConfigurationError
from shared.tools.base import Tool, ToolContext, ToolFailure
from shared.tools.calculator import CALCULATOR
from shared.tools.clock import CURRENT_TIME
from shared.tools.consult import CONSULT_TEAM
from shared.tools.notes import NOTES
from shared.tools.tickets import TICKETS

__all__ = ["TOOLS", "Tool", "ToolContext", "ToolFailure", "tools_for"]

TOOLS: dict[str, Tool] = {t.name: t for t in (CALCULATOR, CURRENT_TIME, NOTES, TICKETS, CONSULT_TEAM)}


def tools_for(names: tuple[str, ...]) -> list[Tool]:
    """The tools of an allow-list; an unknown name is a configuration error."""
    unknown = [n for n in names if n not in TOOLS]
    if unknown:
        raise ConfigurationError(f"unknown tools {unknown}; known: {', '.join(TOOLS)}")
    return [TOOLS[n] for n in names]
