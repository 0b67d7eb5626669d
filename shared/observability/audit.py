"""The audit trail: append-only facts about a tenant, in the state store.

Event types (``AuditEvent.type``), one event per fact:

==================  ===========================================================================
``operation``       one team operation: status, cost, tokens, model, duration, input/output
                    as sizes + SHA-256 (content too, redacted, when the tenant turned
                    ``content_logging`` on), the problem type when it failed, the trace id
``tool``            one tool invocation and its outcome (``ok``, duration, args/result digests)
``permission.denied``  a team the tenant may not use, a forged envelope, a tool outside the
                    team's allow-list
``rate.refused``, ``budget.refused``, ``budget.alert``   written by ``shared.budget``
``admin.*``         tenant and key administration, written by ``shared.tenants``
==================  ===========================================================================

Batching: the events of one request are collected in a per-request buffer (a context
variable set by :class:`shared.http.observability.ObservabilityMiddleware`) and
written with one ``append_audit`` after the response has been sent, so auditing adds no
store round trip to the request path; batches of requests ending within a few
milliseconds of each other share that write (:func:`write`). Outside a request (no
buffer) an event is written in the background at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.observability.redact import redact_value
from shared.store.aio import run_to_completion
from shared.store.base import AuditEvent, Store, Tenant, keyset_page, new_id, now_iso

if TYPE_CHECKING:
    from shared.operations import OperationOutcome

log = logging.getLogger("multiagent.audit")

CONTENT_KEY = "_content"  # detail members only kept when the tenant logs content
MAX_CONTENT_CHARS = 4_000


def canonical(value: Any) -> bytes:
    """The bytes that are measured and hashed: compact, key-sorted JSON (a str as UTF-8)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def digest(value: Any) -> dict[str, Any]:
    """``{"bytes", "sha256"}`` of ``value`` (see :func:`canonical`)."""
    raw = canonical(value)
    return {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}


def _clip(value: Any) -> Any:
    value = redact_value(value, limit=MAX_CONTENT_CHARS + 1)  # bounded work, then cut
    if isinstance(value, str) and len(value) > MAX_CONTENT_CHARS:
        return value[:MAX_CONTENT_CHARS] + "…"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return value if len(text) <= MAX_CONTENT_CHARS else text[:MAX_CONTENT_CHARS] + "…"


@dataclass
class RequestAudit:
    """The audit events of one HTTP request, written together when it ends."""

    events: list[AuditEvent] = field(default_factory=list)

    def finalize(self, tenant: Tenant | None) -> list[AuditEvent]:
        """The events to store: content kept only for a tenant with ``content_logging``."""
        keep = bool(tenant and tenant.content_logging)
        out = []
        for e in self.events:
            content = e.detail.pop(CONTENT_KEY, None)
            if keep and content:
                for name, value in content.items():
                    e.detail[f"{name}_content"] = _clip(value)
            out.append(e)
        return out


_current: ContextVar[RequestAudit | None] = ContextVar("multiagent_audit", default=None)
_background: set[asyncio.Task[None]] = set()


def begin() -> tuple[RequestAudit, Token[RequestAudit | None]]:
    """Start collecting this request's events."""
    buffer = RequestAudit()
    return buffer, _current.set(buffer)


def end(token: Token[RequestAudit | None]) -> None:
    """Stop collecting (the caller writes ``buffer.finalize(...)``)."""
    _current.reset(token)


def current() -> RequestAudit | None:
    """This request's buffer, if the middleware set one."""
    return _current.get()


# Batches handed in within this long of each other go to the store in one write (one commit
# for many requests under load); the first waits at most this long more for its facts.
GROUP_WINDOW_S = 0.005
GROUP_MAX_EVENTS = 500


@dataclass
class _Group:
    """Audit batches gathered for one store write."""

    store: Store
    events: list[AuditEvent]
    written: asyncio.Future[None]


_groups: dict[tuple[int, int], _Group] = {}  # (loop, store) -> the group still gathering


async def write(store: Store, events: list[AuditEvent]) -> None:
    """Append ``events`` with the batches other requests hand in within ``GROUP_WINDOW_S``,
    in one store write, and wait for it; a failure is logged (with the events), never raised."""
    if not events:
        return
    loop = asyncio.get_running_loop()
    key = (id(loop), id(store))
    group = _groups.get(key)
    if group is None:
        group = _groups[key] = _Group(store, [], loop.create_future())
        task = loop.create_task(_flush(key, group))
        _background.add(task)
        task.add_done_callback(_background.discard)
    group.events.extend(events)
    if len(group.events) >= GROUP_MAX_EVENTS:
        _groups.pop(key, None)  # full: the next batch starts another group
    await asyncio.shield(group.written)  # a cancelled caller stops waiting; the write goes on


async def _flush(key: tuple[int, int], group: _Group) -> None:
    cancelled = False
    try:
        await asyncio.sleep(GROUP_WINDOW_S)
    except asyncio.CancelledError:  # shutting down: write now, then stop
        cancelled = True
    if _groups.get(key) is group:
        del _groups[key]
    events = group.events
    try:
        await run_to_completion(group.store.append_audit, events)  # a shutdown's cancellation must not lose facts
    except asyncio.CancelledError:
        cancelled = True
    except Exception as exc:  # noqa: BLE001 - the answers were already sent; keep the facts in the log
        log.error("audit write failed (%s); %d events kept in this log line only", exc, len(events),
                  extra={"fields": {"lost_audit_events": [redact_value(e.public()) for e in events]}})
    finally:
        if not group.written.done():
            group.written.set_result(None)
    if cancelled:
        raise asyncio.CancelledError


def record(store: Store, event: AuditEvent) -> None:
    """Add ``event`` to this request's buffer, or write it in the background outside a request."""
    buffer = _current.get()
    if buffer is not None:
        buffer.events.append(event)
        return
    event.detail.pop(CONTENT_KEY, None)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        try:
            store.append_audit([event])
        except Exception as exc:  # noqa: BLE001
            log.error("audit write failed: %s", exc)
        return
    task = loop.create_task(write(store, [event]))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def drain() -> None:
    """Wait for background audit writes (graceful shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


def tool_event(tenant_id: str, team: str, request_id: str, tool: str, args: Any, result: str, *,
               ok: bool, duration_ms: float, denied: bool = False) -> AuditEvent:
    """The ``tool`` (or, for a tool outside the allow-list, ``permission.denied``) event."""
    if denied:
        return AuditEvent(id=new_id("aud"), tenant_id=tenant_id, type="permission.denied", request_id=request_id,
                          team=team, status=403, detail={"scope": "tool", "tool": tool,
                                                         "reason": f"{tool!r} is not in {team}'s tool allow-list"})
    detail: dict[str, Any] = {"tool": tool, "ok": ok, "duration_ms": round(duration_ms, 2),
                              "args": digest(args), "result": digest(result),
                              CONTENT_KEY: {"args": args, "result": result}}
    if not ok:
        detail["error"] = _clip(result[:300])
    return AuditEvent(id=new_id("aud"), tenant_id=tenant_id, type="tool", request_id=request_id, team=team,
                      detail=detail)


def operation_events(outcome: OperationOutcome, request_id: str) -> list[AuditEvent]:
    """The ``operation`` event of an outcome (``shared.operations.OperationOutcome``), plus a
    ``permission.denied`` one for a 403. None without a tenant (401: nobody to file it under)."""
    tenant: Tenant | None = outcome.tenant
    if tenant is None:
        return []
    call = outcome.call
    problem = outcome.problem
    status = int(outcome.status or 500)
    detail: dict[str, Any] = {"duration_ms": outcome.duration_ms}
    content: dict[str, Any] = {}
    if call is not None:
        guard = call.guard
        detail["input"] = digest(call.body)
        content["input"] = call.body
        if guard is not None:
            detail.update(cost_usd=guard.cost_micros / 1e6, input_tokens=guard.usage.input_tokens,
                          output_tokens=guard.usage.output_tokens, model_calls=guard.calls)
            if guard.models:
                detail["model"] = guard.models[-1]
        if call.replayed:
            detail["replayed"] = True
        if call.identity.chain and len(call.identity.chain) > 1:
            detail["chain"] = list(call.identity.chain)
    if outcome.output is not None:
        detail["output"] = digest(outcome.output)
        content["output"] = outcome.output
    if problem is not None:
        detail["problem"] = getattr(problem, "slug", "error")
        detail["error"] = _clip(str(getattr(problem, "detail", problem))[:300])
    elif status >= 500:
        detail["problem"] = "internal-error"
    if outcome.trace_id:
        detail["trace_id"] = outcome.trace_id
    if content:
        detail[CONTENT_KEY] = content
    events = [AuditEvent(id=new_id("aud"), tenant_id=tenant.id, type="operation", request_id=request_id,
                         team=outcome.team, operation=outcome.operation, status=status,
                         detail=detail)]
    if status == 403 and problem is not None:
        events.append(AuditEvent(id=new_id("aud"), tenant_id=tenant.id, type="permission.denied",
                                 request_id=request_id, team=outcome.team,
                                 operation=outcome.operation, status=403,
                                 detail={"scope": "operation", "reason": _clip(str(problem.detail)[:300])}))
    return events


def page(store: Store, tenant_id: str, limit: int, before: str | None) -> tuple[list[AuditEvent], str | None]:
    """One page of ``GET /v1/audit``, newest first, and the ``next`` cursor.

    The cursor is ``AT|ID`` of the last event returned, so events sharing one timestamp
    across a page boundary are neither skipped nor repeated (a bare ``AT`` is accepted too).
    """
    return keyset_page(lambda n, bound: store.list_audit(tenant_id, n, bound), lambda e: e.at, limit, before)


def recent(store: Store, tenant_id: str, since: str, cap: int = 20_000, batch: int = 1_000) -> list[AuditEvent]:
    """The tenant's events at or after ``since`` (newest first), at most ``cap``."""
    out: list[AuditEvent] = []
    before: str | None = None
    while len(out) < cap:
        chunk, before = page(store, tenant_id, batch, before)
        out += [e for e in chunk if e.at >= since]
        if before is None or (chunk and chunk[-1].at < since):
            break
    return out[:cap]


__all__ = ["RequestAudit", "begin", "current", "digest", "drain", "end", "now_iso", "operation_events", "page",
           "record", "recent", "tool_event", "write"]
