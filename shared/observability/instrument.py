"""The instrumentation points the rest of the library calls: one per kind of fact.

- :func:`model_call` wraps every model API call (from ``BudgetGuard``): a ``chat {model}``
  span, latency, tokens; :func:`model_charged` (after the budget guard settled the call)
  puts the cost charged on that span and ends it, so a run's ``chat`` spans add up to its
  ledger total.
- :func:`tool_call` wraps every tool invocation (from the agent loop): an
  ``execute_tool {tool}`` span, the ``tool`` / ``permission.denied`` audit event and the
  tool-call counter.

Span names and ``gen_ai.*`` attributes follow the OpenTelemetry GenAI semantic
conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/); the cost,
which they do not define, is ``multiagent.cost_usd`` (the micro-dollars the ledger holds,
in USD).
- :func:`operation_finished` records a finished operation (from the app's operation hook
  and from in-process consultations): the ``operation`` audit event, metrics, the
  cloud metric line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from shared.observability import audit, metrics, tracing

log = logging.getLogger("multiagent.observability")

if TYPE_CHECKING:
    from shared.models.base import ModelProvider, ModelRequest, ModelResponse
    from shared.operations import OperationOutcome
    from shared.store.base import Store
    from shared.tools.base import ToolContext


# gen_ai.provider.name per provider (the semantic conventions' well-known values where one exists)
PROVIDER_NAMES = {"anthropic": "anthropic", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}


class _PendingCharge:
    """A ``chat`` span whose call returned and whose charge is not settled yet."""

    def __init__(self, span: Any, end_ns: int) -> None:
        self.span, self.end_ns, self.done = span, end_ns, False

    def finish(self, cost_micros: int | None) -> None:
        """Put the cost on the span and end it at the time the provider answered. ``None``:
        nothing was charged for it (budgets off, or the settle itself failed)."""
        if self.done:
            return
        self.done = True
        self.span.set_attribute("multiagent.cost_usd", (cost_micros or 0) / 1e6)
        self.span.set_attribute("multiagent.charged", cost_micros is not None)
        self.span.end(end_time=self.end_ns)


# the chat span of the model call this task made last, until model_charged ends it
_pending: ContextVar[_PendingCharge | None] = ContextVar("multiagent_pending_charge", default=None)


async def model_call(team: str, provider: ModelProvider, request: ModelRequest) -> ModelResponse:
    """``provider.create(request)`` in a ``chat {model}`` span. Tokens and cost are recorded
    by :func:`model_charged` once the budget guard has validated and settled them: the span
    stays open until then (it ends with the time the provider answered)."""
    model = request.model
    provider_name = getattr(provider, "name", "unknown")
    started = time.perf_counter()
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider_name, f"multiagent.{provider_name}"),
        "gen_ai.request.model": model, "gen_ai.request.max_tokens": request.max_tokens, "multiagent.team": team}
    with tracing.span(f"chat {model}", kind="client", keep_open=True, **attributes) as s:
        try:
            response = await provider.create(request)
        except BaseException:
            _never_raise(metrics.observe_model_call, team, model, 0, 0, 0, time.perf_counter() - started, ok=False)
            if s is not None:  # the guard may still charge it (unsettled): model_failed ends it
                _never_raise(_await_charge, s)
            raise
    response.elapsed_s = time.perf_counter() - started
    if s is not None:
        _never_raise(_response_attributes, s, response)
        _never_raise(_await_charge, s)
    return response


def _response_attributes(s: Any, response: ModelResponse) -> None:
    u = response.usage
    s.set_attribute("gen_ai.response.model", response.model)
    if response.id:
        s.set_attribute("gen_ai.response.id", response.id)
    if response.stop_reason:
        s.set_attribute("gen_ai.response.finish_reasons", [response.stop_reason])
    for name, value in (("gen_ai.usage.input_tokens", u.input_tokens), ("gen_ai.usage.output_tokens", u.output_tokens),
                        ("gen_ai.usage.cache_creation.input_tokens", u.cache_write_tokens),
                        ("gen_ai.usage.cache_read.input_tokens", u.cache_read_tokens)):
        if type(value) is int:  # as the provider reported it; the guard validates before charging
            s.set_attribute(name, value)


def _await_charge(s: Any) -> None:
    """Keep ``s`` open for :func:`model_charged` in this task's context. A charge that never
    comes (budgets off; the settle failed) ends it uncharged: at this task's next model
    call, or when the task ends."""
    previous = _pending.get()
    if previous is not None:
        previous.finish(None)
    pending = _PendingCharge(s, time.time_ns())
    _pending.set(pending)
    task = asyncio.current_task()
    if task is not None:
        task.add_done_callback(lambda _: _never_raise(pending.finish, None))


def _charge_span(cost_micros: int) -> None:
    pending = _pending.get()
    if pending is not None:
        _pending.set(None)
        pending.finish(cost_micros)


def model_charged(team: str, model: str, input_tokens: int, output_tokens: int, cost_micros: int,
                  seconds: float) -> None:
    """Record a settled model call (validated usage, the cost charged) and end its ``chat``
    span with that cost. Called after the settle and never raises: observability can never
    void a charge."""
    _never_raise(metrics.observe_model_call, team, model, input_tokens, output_tokens, cost_micros, seconds,
                 ok=True)
    _never_raise(_charge_span, cost_micros)


def model_failed(cost_micros: int | None) -> None:
    """End the ``chat`` span of a failed model call: charged at the worst case (outcome
    unknown: unsettled) or ``None`` (known never billed: released)."""
    _never_raise(_charge_span, cost_micros)


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
    attributes: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                                  "gen_ai.tool.type": "function", "multiagent.team": ctx.team}
    with tracing.span(f"execute_tool {name}", **attributes) as s:
        content, is_error = await run()
        if s is not None and is_error:
            from opentelemetry.trace import Status, StatusCode

            s.set_attribute("error.type", "denied" if not allowed else "tool_error")
            s.set_status(Status(StatusCode.ERROR, content[:200]))
    elapsed_ms = (time.perf_counter() - started) * 1000
    metrics.observe_tool_call(ctx.team, name, "denied" if not allowed else ("error" if is_error else "ok"))
    audit.record(ctx.store, audit.tool_event(ctx.tenant_id, ctx.team, ctx.request_id, name, args, content,
                                             ok=not is_error, duration_ms=elapsed_ms, denied=not allowed))
    return content, is_error


def operation_finished(store: Store, outcome: OperationOutcome, request_id: str, *, serve_mode: bool) -> None:
    """Record a finished operation call (``shared.operations.OperationService.record``)."""
    if outcome.trace_id is None:
        outcome.trace_id = tracing.current_trace_id()
    buffer = audit.current()
    tools = 0
    if buffer is not None:
        tools = sum(1 for e in buffer.events if e.type == "tool" and e.request_id == request_id)
    metrics.observe_operation(outcome, serve_mode=serve_mode, tool_calls=tools)
    for event in audit.operation_events(outcome, request_id):
        audit.record(store, event)


__all__ = ["PROVIDER_NAMES", "model_call", "model_charged", "operation_finished", "tool_call", "usage_anomaly"]
