"""The tool-use loop: one team operation, from validated input to validated output.

Each turn is one budgeted model call. The loop ends when the model submits output that
validates against the operation's pydantic model; it forces that submission with
``tool_choice`` when a turn ends without it, shows the model its validation errors a
bounded number of times, returns tool exceptions as ``is_error`` results, and stops at
``max_turns`` or the operation's deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.budget import BudgetedCall, budgeted
from shared.catalog import Operation, Team
from shared.errors import ConfigurationError, ModelError, Timeout
from shared.models.base import ModelProvider, ModelRequest, Usage
from shared.observability.instrument import tool_call as observe_tool_call
from shared.observability.redact import redact
from shared.pricing import usd
from shared.tools import Tool, ToolContext, ToolFailure, tools_for
from shared.tools.base import TeamCaller

SUBMIT_TOOL = "submit_result"
MAX_TOOL_RESULT_CHARS = 20_000
# A model turn asking for hundreds of tool calls (notes written, teams consulted) is refused
# past these bounds: the extra uses get is_error results instead of running.
MAX_TOOL_USES_PER_TURN = 8
MAX_TOOL_USES_PER_OPERATION = 32

log = logging.getLogger("multiagent.agent")

# (event name, data) -> None: where the loop reports progress (SSE streams, run steps).
EventSink = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class NestedUsage:
    """Usage of the team calls an operation made (``consult_team``), added to its own."""

    usage: Usage = field(default_factory=Usage)
    cost_micros: int = 0

    def add(self, input_tokens: int, output_tokens: int, cost_micros: int) -> None:
        """Add one team call's usage (its cost in micro-dollars, as the callee's guard counted it)."""
        self.usage += Usage(input_tokens, output_tokens)
        self.cost_micros += cost_micros


@dataclass
class AgentCall(BudgetedCall):
    """A budgeted call plus what the loop needs: the team, the operation and a model."""

    team_def: Team | None = None
    operation_def: Operation | None = None
    input: BaseModel | None = None
    provider: ModelProvider | None = None
    call_team: TeamCaller | None = None
    model: str | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier turns (sessions), oldest first
    events: EventSink | None = None
    event_context: dict[str, Any] = field(default_factory=dict)  # merged into every event (e.g. a run's step)
    nested: NestedUsage = field(default_factory=NestedUsage)

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        """Report progress to the sink, if any; a failing sink never fails the call."""
        if self.events is None:
            return
        try:
            await self.events(event, {**self.event_context, **data})
        except Exception:  # noqa: BLE001 - progress reporting is best effort
            log.exception("event sink failed on %s", event)


def operation_body(call: AgentCall, output: dict[str, Any], duration_ms: float) -> dict[str, Any]:
    """The contract's 200 body of an operation (``POST /v1/teams/{team}/{operation}``)."""
    offline = call.settings.model_provider == "offline"
    guard, team, op = call.guard, call.team_def, call.operation_def
    assert guard is not None and team is not None and op is not None
    model = guard.models[-1] if guard.models else (call.model or team.model)
    if call.settings.model_provider == "simulated" and not model.startswith("simulated:"):
        model = "simulated:" + model  # simulated money is labelled so (shared/models/simulated.py)
    usage = Usage(guard.usage.input_tokens, guard.usage.output_tokens)
    usage += call.nested.usage
    body: dict[str, Any] = {
        "id": call.identity.request_id, "team": team.name, "operation": op.name, "output": output,
        "model": "offline" if offline else model,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                  "cost_usd": usd(guard.cost_micros + call.nested.cost_micros)},
        "duration_ms": duration_ms,
    }
    if guard.degraded:
        body["degraded"] = {"model": guard.degraded["model"], "from": guard.degraded["from"],
                            "reason": guard.degraded["reason"]}
    return body


def system_prompt(team: Team, op: Operation) -> str:
    """The team's role, then what this operation must produce and how to hand it in."""
    return (
        f"{team.role.strip()}\n\n"
        f"## Current task: {op.name}\n{op.description}\n{op.instructions}\n\n"
        f"When you have the answer, call the `{SUBMIT_TOOL}` tool exactly once with the complete result; "
        "its input schema is the required output format. Use the other tools only when they help."
    )


@dataclass(frozen=True)
class Prompt:
    """What every model turn of one operation sends unchanged, built once per process
    (:func:`prompt_for`). Shared by every call: never mutate it."""

    system: str
    tools: dict[str, Tool]
    definitions: tuple[dict[str, Any], ...]  # a tuple: the budget guard caches its size by identity


_prompts: dict[tuple[int, int], tuple[Team, Operation, Prompt]] = {}


def prompt_for(team: Team, op: Operation) -> Prompt:
    """The :class:`Prompt` of ``team``'s ``op`` (keyed by identity, the objects kept alive with it)."""
    hit = _prompts.get((id(team), id(op)))
    if hit is not None and hit[0] is team and hit[1] is op:
        return hit[2]
    tools = {t.name: t for t in tools_for(team.tools)}
    prompt = Prompt(system_prompt(team, op), tools, (*(t.definition for t in tools.values()), submit_tool(op)))
    _prompts[(id(team), id(op))] = (team, op, prompt)
    return prompt


def submit_tool(op: Operation) -> dict[str, Any]:
    """The structured-output tool whose input schema is the operation's output model."""
    return {"name": SUBMIT_TOOL, "description": f"Submit the final result of {op.name}.",
            "input_schema": op.submit_schema}


def _tool_result(tool_use_id: str, content: str, is_error: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id,
                             "content": redact(content, limit=MAX_TOOL_RESULT_CHARS)}
    if is_error:
        block["is_error"] = True
    return block


async def _run_tool(tool: Tool | None, name: str, args: dict[str, Any], ctx: ToolContext) -> tuple[str, bool]:
    # observed: a span, the tool-call metric and the tool / permission.denied audit event (batched per request)
    return await observe_tool_call(ctx, name, args, tool is not None, lambda: _invoke_tool(tool, name, args, ctx))


async def _invoke_tool(tool: Tool | None, name: str, args: dict[str, Any], ctx: ToolContext) -> tuple[str, bool]:
    if tool is None:
        return f"tool {name!r} is not available to this team", True
    try:
        parsed = tool.input.model_validate(args)
        result = await tool.run(ctx, parsed)
        return json.dumps(result, default=str, ensure_ascii=False), False
    except ValidationError as exc:
        return f"invalid arguments: {exc.errors(include_url=False)}", True
    except ToolFailure as exc:
        return str(exc), True
    except ConfigurationError:
        raise  # a deployment mistake (e.g. no signing key) must surface, not be fed to the model
    except Exception as exc:  # noqa: BLE001 - a tool's crash is reported to the model, not the user
        return f"{name} failed: {type(exc).__name__}: {exc}", True


def _over_tool_budget(index_in_turn: int, run_so_far: int) -> str | None:
    """Why the ``index_in_turn``-th tool use of a turn is not run, or None."""
    if index_in_turn >= MAX_TOOL_USES_PER_TURN:
        return f"not run: at most {MAX_TOOL_USES_PER_TURN} tool calls per turn"
    if run_so_far >= MAX_TOOL_USES_PER_OPERATION:
        return f"not run: at most {MAX_TOOL_USES_PER_OPERATION} tool calls per operation"
    return None


@budgeted
async def run_operation(call: BudgetedCall) -> dict[str, Any]:
    """Run one operation to validated output (``call`` is an :class:`AgentCall`)."""
    assert isinstance(call, AgentCall) and call.guard and call.team_def and call.operation_def and call.provider
    deadline = call.settings.operation_deadline_s
    start = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            output = await _loop(call)
    except TimeoutError:
        name = f"{call.team_def.name}/{call.operation_def.name}"
        raise Timeout(f"{name} ran past its {deadline:.0f} s deadline") from None
    # The whole contract body: @budgeted stores exactly this for an Idempotency-Key replay.
    return operation_body(call, output.model_dump(mode="json"), round((time.monotonic() - start) * 1000, 1))


async def _loop(call: AgentCall) -> BaseModel:
    team, op, guard, provider = call.team_def, call.operation_def, call.guard, call.provider
    assert team and op and guard and provider and call.input is not None
    prompt = prompt_for(team, op)
    tools = prompt.tools
    ctx = ToolContext(tenant_id=call.identity.tenant.id, team=team.name, request_id=call.identity.request_id,
                      store=call.store, chain=call.identity.chain or (team.name,), call_team=call.call_team)
    # UTF-8, not \uXXXX escapes: escaped text costs 2-3x the tokens and reads worse to the model
    user_input = json.dumps(call.input.model_dump(mode="json"), ensure_ascii=False)
    messages: list[dict[str, Any]] = list(call.history) + [
        {"role": "user", "content": f"Input for {op.name}:\n{user_input}"}
    ]
    call.transcript = messages
    force, invalid, tools_run = False, 0, 0
    model = call.model or team.model
    for _turn in range(call.settings.max_turns):
        request = ModelRequest(
            model=model, system=prompt.system, messages=messages, max_tokens=op.max_tokens,
            tools=prompt.definitions, tool_choice={"type": "tool", "name": SUBMIT_TOOL} if force else None,
        )
        response = await guard.call(provider, request)
        messages.append({"role": "assistant", "content": response.content})
        uses = [b for b in response.content if b.get("type") == "tool_use"]
        # The provider call is not streamed, so model.delta is coarse: one event per model turn.
        await call.emit("model.delta", {
            "turn": _turn, "model": guard.models[-1] if guard.models else model,
            "text": "".join(b.get("text", "") for b in response.content if b.get("type") == "text"),
            "tool_uses": [u["name"] for u in uses],
        })
        await call.emit("usage", {"input_tokens": guard.usage.input_tokens, "output_tokens": guard.usage.output_tokens,
                                  "cost_usd": usd(guard.cost_micros)})
        if not uses:
            text = "".join(b.get("text", "") for b in response.content if b.get("type") == "text").strip()
            if op.prose_output and text:
                return op.output.model_validate({"answer": text})
            force = True
            messages.append({"role": "user", "content": f"Now call `{SUBMIT_TOOL}` with the final result."})
            continue
        results: list[dict[str, Any]] = []
        for index, use in enumerate(uses):
            refused = _over_tool_budget(index, tools_run)
            if refused and use["name"] != SUBMIT_TOOL:
                results.append(_tool_result(use["id"], refused, True))  # every tool_use needs its result
                continue
            if use["name"] == SUBMIT_TOOL:
                try:
                    return op.output.model_validate(use.get("input") or {})
                except ValidationError as exc:
                    invalid += 1
                    if invalid > call.settings.max_output_retries:
                        raise ModelError(
                            f"the model did not produce valid {op.name} output after {invalid} attempts: "
                            f"{exc.error_count()} validation errors"
                        ) from None
                    errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
                    results.append(_tool_result(use["id"], f"Output rejected, fix these errors: {errors}", True))
                    force = True
                continue
            tools_run += 1
            content, is_error = await _run_tool(tools.get(use["name"]), use["name"], use.get("input") or {}, ctx)
            await call.emit("tool.called", {"name": use["name"], "input": use.get("input") or {},
                                            "is_error": is_error, "result": redact(content, limit=2_000)})
            results.append(_tool_result(use["id"], content, is_error))
        messages.append({"role": "user", "content": results})
    raise ModelError(f"{team.name}/{op.name} gave no valid output within {call.settings.max_turns} turns")
