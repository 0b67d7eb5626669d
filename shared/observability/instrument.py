"""The instrumentation points the rest of the library calls: one per kind of fact.

- :func:`model_call` wraps every model API call (from ``BudgetGuard``): a span, latency,
  tokens and cost.
- :func:`tool_call` wraps every tool invocation (from the agent loop): a span, the
  ``tool`` / ``permission.denied`` audit event and the tool-call counter.
- :func:`operation_finished` records a finished operation (from the app's operation hook
  and from in-process consultations): the ``operation`` audit event, metrics, the
  cloud metric line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from shared.observability import audit, metrics, tracing

log = logging.getLogger("multiagent.observability")

if TYPE_CHECKING:
    from shared.models.base import ModelProvider, ModelRequest, ModelResponse
    from shared.store.base import Store
    from shared.tools.base import ToolContext


async def model_call(team: str, provider: ModelProvider, request: ModelRequest) -> ModelResponse:
    """``provider.create(request)`` in a span. Tokens and cost are recorded by
    :func:`model_charged` once the budget guard has validated and settled them."""
    model = request.model
    started = time.perf_counter()
    with tracing.span(f"model {model}", kind="client", **{"gen_ai.request.model": model, "multiagent.team": team,
                                                          "gen_ai.request.max_tokens": request.max_tokens}) as s:
        try:
            response = await provider.create(request)
        except BaseException:
            _never_raise(metrics.observe_model_call, team, model, 0, 0, 0, time.perf_counter() - started, ok=False)
            raise
        if s is not None:
            _never_raise(_usage_attributes, s, provider, model, response)
    response.elapsed_s = time.perf_counter() - started
    return response


def _usage_attributes(s: Any, provider: ModelProvider, model: str, response: ModelResponse) -> None:
    from shared.pricing import cost_micros

    u = response.usage
    s.set_attribute("gen_ai.response.model", response.model)
    s.set_attribute("gen_ai.usage.input_tokens", u.input_tokens)
    s.set_attribute("gen_ai.usage.output_tokens", u.output_tokens)
    cost = cost_micros(provider.resolve_model(model), u.input_tokens, u.output_tokens,
                       u.cache_write_tokens, u.cache_read_tokens)
    s.set_attribute("multiagent.cost_usd", cost / 1e6)


def model_charged(team: str, model: str, input_tokens: int, output_tokens: int, cost_micros: int,
                  seconds: float) -> None:
    """Record a settled model call (validated usage, the cost charged). Called after the
    settle and never raises: observability can never void a charge."""
    _never_raise(metrics.observe_model_call, team, model, input_tokens, output_tokens, cost_micros, seconds,
                 ok=True)


def usage_anomaly(team: str, model: str) -> None:
    """Count usage a provider reported outside sane bounds (charged at the worst case)."""
    _never_raise(metrics.observe_usage_anomaly, team, model)


def _never_raise(fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a metric must never break (or undo) a call
        log.exception("observability hook %s failed", getattr(fn, "__name__", fn))


async def tool_call(ctx: ToolContext, name: str, args: dict[str, Any], allowed: bool,
                    run: Callable[[], Awaitable[tuple[str, bool]]]) -> tuple[str, bool]:
    """Run a tool (``run`` returns ``(content, is_error)``), observed and audited."""
    started = time.perf_counter()
    with tracing.span(f"tool {name}", **{"multiagent.tool": name, "multiagent.team": ctx.team}) as s:
        content, is_error = await run()
        if s is not None and is_error:
            from opentelemetry.trace import Status, StatusCode

            s.set_status(Status(StatusCode.ERROR, content[:200]))
    elapsed_ms = (time.perf_counter() - started) * 1000
    metrics.observe_tool_call(ctx.team, name, "denied" if not allowed else ("error" if is_error else "ok"))
    audit.record(ctx.store, audit.tool_event(ctx.tenant_id, ctx.team, ctx.request_id, name, args, content,
                                             ok=not is_error, duration_ms=elapsed_ms, denied=not allowed))
    return content, is_error


def operation_finished(store: Store, outcome: dict[str, Any], request_id: str, *, serve_mode: bool) -> None:
    """Record a finished operation call (``outcome`` as in ``shared.app.OPERATION_HOOKS``)."""
    outcome.setdefault("trace_id", tracing.current_trace_id())
    buffer = audit.current()
    tools = 0
    if buffer is not None:
        tools = sum(1 for e in buffer.events if e.type == "tool" and e.request_id == request_id)
    metrics.observe_operation(outcome, serve_mode=serve_mode, tool_calls=tools)
    for event in audit.operation_events(outcome, request_id):
        audit.record(store, event)


__all__ = ["model_call", "operation_finished", "tool_call"]
