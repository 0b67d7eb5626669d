"""Per-tenant budgets: the ``@budgeted`` decorator and the guard every model call goes through.

The path of one model call (``BudgetGuard.call``)::

    estimate worst case = input upper bound x input price + max_tokens x output price
    reserve it in every window (day, month, per-team day) and charge the rate buckets
        refused by a window  -> reclaim expired reservations once and retry
                             -> still refused: shrink max_tokens to what is left (if that
                                still buys MIN_USEFUL_OUTPUT tokens), else 402
        refused by a rate    -> 429 with Retry-After
        store unreachable    -> 503; the model is never called unbudgeted
    call the model           -> on failure, release the reservation
    settle to the real cost from ``usage`` + ledger entry, in one store write

Rate limits use GCRA (see ``shared.store.sqlite.gcra``): one number of state per bucket,
so each store updates it inside the same atomic write as the reservation. Requests per
minute are charged on the first model call of an operation; tokens per minute on every
call, at the worst case (unused tokens are not refunded: a conservative bucket).

Input tokens are bounded by UTF-8 bytes / 2: Claude averages 3.5-4 bytes per token on
English and JSON and about 3 on CJK text, so the reservation covers the real input in
practice; the real cost from ``usage`` is what gets settled either way.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from shared.auth import check_team_allowed
from shared.config import Settings
from shared.errors import BudgetExceeded, Conflict, RateLimited, Unavailable, ValidationFailed
from shared.models.base import ModelProvider, ModelRequest, ModelResponse, Usage
from shared.observability.instrument import model_call as observe_model_call
from shared.pricing import cost_micros, max_output_tokens_for, price_for, usd
from shared.shielded import run_to_completion
from shared.store.base import (
    AuditEvent,
    IdempotencyRecord,
    LedgerEntry,
    RateLimit,
    Refusal,
    Reservation,
    Store,
    StoreUnavailable,
    Tenant,
    WindowLimit,
    WindowState,
    new_id,
)

log = logging.getLogger("multiagent.budget")

MIN_USEFUL_OUTPUT = 256
IDEMPOTENCY_TTL_S = 24 * 3600


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def day_key(now: float) -> str:
    """``day:YYYY-MM-DD`` in UTC."""
    return "day:" + _utc(now).strftime("%Y-%m-%d")


def month_key(now: float) -> str:
    """``month:YYYY-MM`` in UTC."""
    return "month:" + _utc(now).strftime("%Y-%m")


def reset_at(window_key: str, now: float) -> str:
    """When the window containing ``now`` ends (ISO 8601 UTC)."""
    moment = _utc(now)
    if "month:" in window_key:
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        end = moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return end.strftime("%Y-%m-%dT%H:%M:%SZ")


def window_limits(tenant: Tenant, team: str, now: float) -> list[WindowLimit]:
    """Every budget window a call of ``team`` must fit in right now."""
    day_end = datetime.fromisoformat(reset_at("day", now).replace("Z", "+00:00")).timestamp()
    month_end = datetime.fromisoformat(reset_at("month:", now).replace("Z", "+00:00")).timestamp()
    windows = [
        WindowLimit(day_key(now), tenant.daily_limit_micros, day_end + 7 * 86_400),
        WindowLimit(month_key(now), tenant.monthly_limit_micros, month_end + 40 * 86_400),
    ]
    if team in tenant.team_daily_limit_micros:
        windows.append(WindowLimit(f"team:{team}:{day_key(now)}", tenant.team_daily_limit_micros[team],
                                   day_end + 7 * 86_400))
    return windows


def input_token_bound(request: ModelRequest) -> int:
    """An upper bound of the input tokens of ``request`` (see the module docstring)."""
    size = len(request.system.encode()) + len(json.dumps(request.messages).encode())
    size += len(json.dumps(request.tools).encode()) if request.tools else 0
    return math.ceil(size / 2) + 16


def window_name(key: str) -> str:
    """``day``, ``month``, ``team:<name>:day`` or ``run`` (a signed envelope's budget) for a window key."""
    parts = key.split(":")
    if parts[0] == "run":
        return "run"
    return "month" if parts[0] == "month" else ("day" if parts[0] == "day" else f"team:{parts[1]}:day")


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args))
    except StoreUnavailable as exc:
        raise Unavailable(f"the state store is unreachable, so the call was refused: {exc}", retry_after_s=2) from exc


async def _must_finish(fn: Callable[..., Any], *args: Any) -> Any:
    """A settle or release that runs to its end even if the task is cancelled meanwhile
    (a native ``Task.cancel()`` at the end of a graceful shutdown gets through an anyio shield)."""
    try:
        return await run_to_completion(fn, *args)
    except StoreUnavailable as exc:
        raise Unavailable(f"the state store is unreachable, so the call was refused: {exc}", retry_after_s=2) from exc


@dataclass
class CallIdentity:
    """Who is calling what, for one operation."""

    tenant: Tenant
    team: str
    operation: str
    request_id: str
    run_id: str = ""
    chain: tuple[str, ...] = ()


@dataclass
class BudgetGuard:
    """Reserves, calls and settles every model call of one operation."""

    store: Store
    settings: Settings
    identity: CallIdentity
    audit_sink: Callable[[list[AuditEvent]], Awaitable[None]] | None = None
    usage: Usage = field(default_factory=Usage)
    cost_micros: int = 0
    windows: list[WindowState] = field(default_factory=list)
    rate_remaining: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    models: list[str] = field(default_factory=list)
    alerts_seen: set[str] = field(default_factory=set)
    # The budget windows of the signed envelope this call runs under (``run:<id>``...),
    # reserved together with the tenant's windows on every model call.
    run_windows: list[WindowLimit] = field(default_factory=list)
    # The team's cheaper model for the ``cheaper_model`` low-budget policy.
    low_budget_model: str | None = None
    # Set once the policy switched models: {"model", "from", "reason"}; later turns stay on it.
    degraded: dict[str, Any] | None = None

    async def call(self, provider: ModelProvider, request: ModelRequest) -> ModelResponse:
        """One budgeted model call (see the module docstring)."""
        if self.degraded:
            request.model = self.degraded["model"]
        model = provider.resolve_model(request.model)
        if not self.settings.budgets_enabled:
            return await self._call_and_count(provider, request, model)
        now = time.time()
        tenant = self.identity.tenant
        limits = window_limits(tenant, self.identity.team, now) + list(self.run_windows)
        reservation, model = await self._reserve(provider, model, request, limits, now)
        try:
            response = await self._call_and_count(provider, request, model)
        except BaseException:
            await _must_finish(self.store.release, tenant.id, reservation.id)
            raise
        cost = cost_micros(model, response.usage.input_tokens, response.usage.output_tokens,
                           response.usage.cache_write_tokens, response.usage.cache_read_tokens)
        entry = LedgerEntry(
            id=new_id("led"), tenant_id=tenant.id, request_id=self.identity.request_id, team=self.identity.team,
            operation=self.identity.operation, model=response.model if model != "offline" else "offline",
            input_tokens=response.usage.input_tokens, output_tokens=response.usage.output_tokens,
            cost_micros=cost, run_id=self.identity.run_id,
        )
        # money spent must be recorded even if the client left or the server is shutting down
        settled = await _must_finish(self.store.settle, reservation, cost, entry, [])
        self.windows = [w for w in settled if not w.key.startswith("run:")]  # run windows raise no tenant alerts
        self.cost_micros += cost
        await self._alert_if_crossed(now)
        return response

    async def _call_and_count(self, provider: ModelProvider, request: ModelRequest, model: str) -> ModelResponse:
        response = await observe_model_call(self.identity.team, provider, request)  # span, latency, tokens, cost
        self.calls += 1
        self.usage += response.usage
        self.models.append(response.model)
        return response

    async def _reserve(self, provider: ModelProvider, model: str, request: ModelRequest, limits: list[WindowLimit],
                       now: float) -> tuple[Reservation, str]:
        tenant = self.identity.tenant
        input_bound = input_token_bound(request)
        reclaimed = False
        while True:
            price = price_for(model)
            worst = math.ceil(price.input * input_bound + price.output * request.max_tokens)
            rates = [RateLimit("tpm", tenant.tpm, input_bound + request.max_tokens)]
            if self.calls == 0:
                rates.insert(0, RateLimit("rpm", tenant.rpm, 1))
            reservation = Reservation(
                id=new_id("res"), tenant_id=tenant.id, amount_micros=worst, windows=[w.key for w in limits],
                expires_at=now + self.settings.operation_deadline_s + self.settings.reservation_margin_s,
                request_id=self.identity.request_id, team=self.identity.team, operation=self.identity.operation,
            )
            outcome = await _in_thread(self.store.reserve, reservation, limits, rates, now)
            if outcome.ok:
                self.windows = [w for w in outcome.windows if not w.key.startswith("run:")]
                self.rate_remaining.update(outcome.rate_remaining)
                return reservation, model
            refusal: Refusal = outcome.refusal
            if refusal.kind == "rate":
                await self._audit("rate.refused", 429, {"limit": refusal.key, "retry_after_s": refusal.retry_after_s})
                unit = "requests" if refusal.key == "rpm" else "tokens"
                raise RateLimited(
                    f"{unit} per minute exhausted for tenant {tenant.id} (limit {refusal.limit}/min)",
                    retry_after_s=refusal.retry_after_s, limit=f"{refusal.limit} {unit}/min",
                )
            if not reclaimed:
                reclaimed = True
                if await _in_thread(self.store.reclaim_expired, tenant.id, now):
                    continue
            cheaper = self._cheaper_model(provider, model)
            if cheaper is not None:
                reason = (f"the remaining {window_name(refusal.key)} budget (${usd(refusal.remaining_micros):.6f}) "
                          f"cannot pay {model}'s worst case (${usd(worst):.6f})")
                self.degraded = {"model": cheaper, "from": model, "reason": reason}
                await self._audit("budget.degraded", 200, {"model": cheaper, "from": model, "reason": reason,
                                                            "window": window_name(refusal.key)})
                request.model, model = cheaper, provider.resolve_model(cheaper)
                continue
            affordable = max_output_tokens_for(model, refusal.remaining_micros, input_bound)
            if MIN_USEFUL_OUTPUT <= affordable < request.max_tokens:
                request.max_tokens = affordable  # a shorter answer beats a refusal
                continue
            await self._audit("budget.refused", 402, {"window": refusal.key, "needed_usd": usd(worst)})
            raise BudgetExceeded(
                f"this call could cost up to ${usd(worst):.6f} but only ${usd(refusal.remaining_micros):.6f} "
                f"is left in the {window_name(refusal.key)} budget",
                limit_usd=usd(refusal.limit), spent_usd=usd(refusal.spent_micros),
                window=window_name(refusal.key),
                reset_at=None if refusal.key.startswith("run:") else reset_at(refusal.key, now),
            )

    def _cheaper_model(self, provider: ModelProvider, model: str) -> str | None:
        """The model the ``cheaper_model`` policy switches to, when it applies and is cheaper."""
        cheaper = self.low_budget_model
        if self.identity.tenant.on_low_budget != "cheaper_model" or not cheaper or self.degraded:
            return None
        resolved = provider.resolve_model(cheaper)
        if resolved == model:
            return None
        current, candidate = price_for(model), price_for(resolved)
        return cheaper if (candidate.input, candidate.output) < (current.input, current.output) else None

    async def _audit(self, kind: str, status: int, detail: dict[str, Any]) -> None:
        event = AuditEvent(id=new_id("aud"), tenant_id=self.identity.tenant.id, type=kind,
                           request_id=self.identity.request_id, team=self.identity.team,
                           operation=self.identity.operation, status=status, detail=detail)
        try:
            await _in_thread(self.store.append_audit, [event])
        except Unavailable:
            log.warning("audit event %s lost: store unreachable", kind)

    async def _alert_if_crossed(self, now: float) -> None:
        threshold = self.identity.tenant.alert_threshold
        for w in self.windows:
            marker = f"alert:{w.key}"
            if w.limit_micros <= 0 or w.spent_micros < threshold * w.limit_micros or marker in self.alerts_seen:
                continue
            self.alerts_seen.add(marker)
            if await _in_thread(self.store.claim_marker, self.identity.tenant.id, marker, now + 40 * 86_400):
                detail = {"window": window_name(w.key), "spent_usd": usd(w.spent_micros),
                          "limit_usd": usd(w.limit_micros), "threshold": threshold}
                await self._audit("budget.alert", 200, detail)
                if self.identity.tenant.webhook_url:
                    asyncio.get_running_loop().create_task(_post_webhook(self.identity.tenant.webhook_url, detail))

    def remaining_usd(self) -> float | None:
        """The smaller of the day and month remainders after the last call."""
        rem = [w.remaining_micros for w in self.windows if w.key.startswith(("day:", "month:"))]
        return usd(min(rem)) if rem else None

    def headers(self) -> dict[str, str]:
        """The contract's budget and rate-limit response headers."""
        out: dict[str, str] = {}
        remaining = self.remaining_usd()
        if remaining is not None:
            out["x-budget-remaining-usd"] = f"{remaining:.6f}"
        if "rpm" in self.rate_remaining:
            out["x-ratelimit-remaining-requests"] = str(self.rate_remaining["rpm"])
        if "tpm" in self.rate_remaining:
            out["x-ratelimit-remaining-tokens"] = str(self.rate_remaining["tpm"])
        return out


async def _post_webhook(url: str, payload: dict[str, Any]) -> None:
    """Fire-and-forget alert webhook with a short timeout; failures are only logged."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.post(url, json={"type": "budget.alert", **payload}) as resp:
                await resp.read()
    except Exception as exc:  # noqa: BLE001 - an alert must never break a call
        log.warning("budget alert webhook %s failed: %s", url, exc)


def body_hash(body: dict[str, Any]) -> str:
    """Stable hash of a JSON body, for idempotency."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class BudgetedCall:
    """Everything ``@budgeted`` needs to know about one operation call."""

    store: Store
    settings: Settings
    identity: CallIdentity
    body: dict[str, Any]
    idempotency_key: str | None = None
    guard: BudgetGuard | None = None
    replayed: bool = False
    run_windows: list[WindowLimit] = field(default_factory=list)  # from the signed envelope, if any
    low_budget_model: str | None = None


OperationFn = Callable[[BudgetedCall], Awaitable[dict[str, Any]]]


def budgeted(fn: OperationFn) -> OperationFn:
    """Wrap a team operation: team permission, idempotency, and a :class:`BudgetGuard`
    (``call.guard``) through which the operation must make every model call."""

    @functools.wraps(fn)
    async def wrapper(call: BudgetedCall) -> dict[str, Any]:
        identity = call.identity
        check_team_allowed(identity.tenant, identity.team)
        call.guard = BudgetGuard(call.store, call.settings, identity, run_windows=list(call.run_windows),
                                 low_budget_model=call.low_budget_model)
        key = call.idempotency_key
        if key:
            scoped = f"{identity.team}/{identity.operation}/{key}"
            digest = body_hash(call.body)
            now = time.time()
            held = await _in_thread(call.store.claim_idempotency, identity.tenant.id,
                                    IdempotencyRecord(scoped, digest, now + IDEMPOTENCY_TTL_S), now)
            if held is not None:
                if held.body_hash != digest:
                    raise ValidationFailed(
                        "this Idempotency-Key was already used with a different body",
                        errors=[{"loc": ["header", "Idempotency-Key"], "msg": "reused with a different body"}],
                    )
                if held.response is None:
                    raise Conflict("a call with this Idempotency-Key is still in progress; retry shortly")
                call.replayed = True
                return dict(held.response)
            try:
                result = await fn(call)
            except BaseException:
                await _must_finish(call.store.release_idempotency, identity.tenant.id, scoped)
                raise
            await _in_thread(call.store.complete_idempotency, identity.tenant.id, scoped, result)
            return result
        return await fn(call)

    return wrapper
