"""W3C trace context and, when an OTLP endpoint is configured, OpenTelemetry spans.

Every request runs in a trace: the ``traceparent`` it came with, or a new one. Outgoing
hops (gateway → team function, ``consult_team`` → another team) send a ``traceparent``
whose trace id is the same, so one user call is one trace across functions.

Spans (the operation, each model call, each tool call) are exported only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; the OpenTelemetry SDK (the ``otel`` extra) is
imported then, on the first span, and never otherwise: a function's cold start does not
pay for tracing it does not do. Without it, :func:`span` costs one environment lookup.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from shared.store.base import random_hex

log = logging.getLogger("multiagent.tracing")

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")


@dataclass(frozen=True)
class TraceContext:
    """Where we are in a trace: its id, the current span's id and the sampled flag."""

    trace_id: str
    span_id: str
    flags: str = "01"

    def traceparent(self) -> str:
        """The ``traceparent`` header value naming this span as the parent."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span id in the same trace."""
        return TraceContext(self.trace_id, random_hex()[:16], self.flags)


def parse_traceparent(value: str | None) -> TraceContext | None:
    """The context of a valid ``traceparent`` header (version 00 semantics), else None."""
    if not value:
        return None
    m = _TRACEPARENT.match(value.strip().lower())
    if not m or m.group(1) == "ff" or set(m.group(2)) == {"0"} or set(m.group(3)) == {"0"}:
        return None
    return TraceContext(m.group(2), m.group(3), m.group(4))


def new_trace() -> TraceContext:
    """A fresh, sampled trace."""
    # ids need uniqueness, not secrecy (W3C Trace Context, "random"): no OS call per request
    return TraceContext(random_hex(), random_hex()[:16], "01")


_current: ContextVar[TraceContext | None] = ContextVar("multiagent_trace", default=None)


def activate(ctx: TraceContext) -> Token[TraceContext | None]:
    """Make ``ctx`` the current trace context (undo with :func:`deactivate`)."""
    return _current.set(ctx)


def deactivate(token: Token[TraceContext | None]) -> None:
    """Restore the context before :func:`activate`."""
    _current.reset(token)


def current() -> TraceContext | None:
    """The current trace context, if any."""
    return _current.get()


def current_trace_id() -> str | None:
    """The current trace id, if any."""
    ctx = _current.get()
    return ctx.trace_id if ctx else None


def outgoing_headers() -> dict[str, str]:
    """``traceparent`` for an outgoing hop: the current span as its parent (new trace if none)."""
    ctx = _current.get() or new_trace()
    return {"traceparent": ctx.traceparent()}


# --- OpenTelemetry, lazily --------------------------------------------------------------------------------------
_tracer: Any = None  # None: not decided yet; False: off; else a Tracer
_provider: Any = None


def _get_tracer() -> Any:
    global _tracer, _provider
    if _tracer is None:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
            _tracer = False
            return None
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed; "
                        "install multiagent-framework[otel] to export spans")
            _tracer = False
            return None
        team = os.environ.get("MULTIAGENT_TEAM") or "gateway"
        service = os.environ.get("OTEL_SERVICE_NAME") or f"multiagent-{team}"
        _provider = TracerProvider(resource=Resource.create({"service.name": service}))
        _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _tracer = _provider.get_tracer("multiagent")
    return _tracer or None


def reset() -> None:
    """Forget the tracer decision (tests change the environment)."""
    global _tracer, _provider
    flush()
    if _provider is not None:
        _provider.shutdown()
    _tracer, _provider = None, None


def flush(timeout_s: float = 5.0) -> None:
    """Export buffered spans now (graceful shutdown)."""
    if _provider is not None:
        _provider.force_flush(int(timeout_s * 1000))


def enabled() -> bool:
    """True when spans are exported."""
    return _get_tracer() is not None


@contextmanager
def span(name: str, kind: str = "internal", *, keep_open: bool = False, **attributes: Any) -> Iterator[Any]:
    """A span named ``name`` under the current context, current for its duration.

    Yields the OpenTelemetry span (``None`` when export is off: nothing is recorded).
    An exception marks the span as an error (status, ``error.type`` = the exception's
    class, the exception event), ends it and propagates. With ``keep_open`` the span stays
    open however it exits (no longer current): the caller ends it (a model call's span
    waits for the charge settled after it, see ``instrument.model_charged``).
    """
    tracer = _get_tracer()
    if tracer is None:
        yield None
        return
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

    parent = _current.get() or new_trace()
    parent_span = NonRecordingSpan(SpanContext(int(parent.trace_id, 16), int(parent.span_id, 16), is_remote=True,
                                               trace_flags=TraceFlags(int(parent.flags, 16))))
    otel_kind = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT}.get(kind, SpanKind.INTERNAL)
    attrs = {k: v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, context=trace.set_span_in_context(parent_span), kind=otel_kind,
                                      attributes=attrs, end_on_exit=not keep_open) as s:
        sc = s.get_span_context()
        token = _current.set(TraceContext(format(sc.trace_id, "032x"), format(sc.span_id, "016x"), parent.flags))
        try:
            yield s
        except BaseException as exc:
            s.set_attribute("error.type", type(exc).__qualname__)
            if keep_open:
                from opentelemetry.trace import Status, StatusCode

                s.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))
                s.record_exception(exc)  # still open: a failed model call may be charged too
            raise
        finally:
            _current.reset(token)


__all__ = ["TraceContext", "activate", "current", "current_trace_id", "deactivate", "enabled", "flush", "new_trace",
           "outgoing_headers", "parse_traceparent", "reset", "span"]
