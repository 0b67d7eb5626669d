"""Per-tenant budgets: the ``@budgeted`` decorator and the guard every model call goes through.

The path of one model call (``BudgetGuard.call``), one *attempt* per provider request::

    bound the input: one token per UTF-8 byte of everything sent + the provider's framing
    worst case = input bound x input price + max_tokens x output price
    reserve it in every window (day, month, per-team day, run) and charge the rate buckets
        refused by a window  -> ask the provider to count the input exactly (once) and retry
                             -> still refused: cheaper model (policy), or shrink max_tokens
                                to what is left (if that still buys MIN_USEFUL_OUTPUT), else 402
        refused by a rate    -> 429 with Retry-After (contention: 429 with a short retry)
        store unreachable    -> 503; the model is never called unbudgeted
    send the request, in a task of its own that outlives the caller (a client walking away
    or a deadline does not cancel a request the provider is already generating)
        answered             -> usage validated (else charged at the worst case: anomaly),
                                settled at the real cost + ledger entry, in one store write
        known never sent     -> (an error answer, a refused connection) reservation released
        outcome unknown      -> (timeout, broken connection, cancelled while sending)
                                charged at the worst case, ledger entry marked unsettled
    retry (timeouts, overload, 429) under a NEW reservation: every attempt that may be
    billed has its own reservation and ledger entry. The SDK itself never retries.

A reservation nobody settles (the instance crashed or paused past its expiry) is charged
unsettled by ``Store.reclaim_expired``; a late settle replaces it with the real cost.

Rate limits use GCRA (``shared.store.gcra``): one number of state per bucket, so each
store updates it inside the same atomic write as the reservation. Requests per minute are
charged on the first attempt of an operation; tokens per minute on every attempt at its
worst case (input bound + max_tokens) and not refunded when fewer are used: a tenant's tpm
is a cap on what its calls *could* use, so it buys fewer calls than the same number of
billed tokens (see the README's "How a call is budgeted").
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.auth import check_team_allowed
from shared.config import Settings
from shared.errors import BudgetExceeded, Conflict, ProblemError, RateLimited, Unavailable, ValidationFailed
from shared.models.base import ModelProvider, ModelRequest, ModelResponse, Usage, may_have_billed
from shared.observability.instrument import model_call as observe_model_call
from shared.observability.instrument import model_charged, model_failed, usage_anomaly
from shared.pricing import cost_micros, max_output_tokens_for, price_for, usd
from shared.store.aio import finished, in_thread, run_to_completion
from shared.store.base import (
    AuditEvent,
    IdempotencyRecord,
    LedgerEntry,
    RateLimit,
    Reservation,
    Store,
    StoreUnavailable,
    Tenant,
    WindowLimit,
    WindowState,
    ledger_id_for,
    new_id,
    unsettled_entry,
)

log = logging.getLogger("multiagent.budget")

MIN_USEFUL_OUTPUT = 256
IDEMPOTENCY_TTL_S = 24 * 3600
FRAMING_TOKENS = 1024  # role markers and the provider's tool-use system prompt
BLOCK_FRAMING_TOKENS = 64  # rendering of one content block or tool definition
COUNT_MARGIN = 1.05
MAX_ATTEMPTS = 3  # provider requests per model call: the first and two retries
MAX_RETRY_DELAY_S = 10.0

# Attempts whose caller went away (client gone, deadline): still running so they settle at
# the real cost. Referenced here so the loop does not drop them; drained at shutdown.
_DETACHED: set[asyncio.Task[Any]] = set()


def _detach(task: asyncio.Task[Any]) -> None:
    _DETACHED.add(task)
    task.add_done_callback(_forget_detached)


def _forget_detached(task: asyncio.Task[Any]) -> None:
    _DETACHED.discard(task)
    if not task.cancelled() and task.exception() is not None:  # retrieved: no "never retrieved" noise
        log.info("a detached model call ended with %s", type(task.exception()).__name__)


async def drain_detached(timeout_s: float) -> None:
    """At shutdown (the grace period is over): stop the model calls whose callers left and
    wait, bounded, for each to be charged unsettled at its worst case (a cancelled attempt
    charges itself). Waiting for their answers instead could outlive the platform's grace."""
    tasks = list(_DETACHED)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s)


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


@functools.lru_cache(maxsize=4)
def _calendar(utc_day: int) -> tuple[str, str, float, float]:
    """The day and month keys of UTC day number ``utc_day`` and when each window ends
    (worked out once a day, not on every model call)."""
    now = utc_day * 86_400.0
    day_end = datetime.fromisoformat(reset_at("day", now).replace("Z", "+00:00")).timestamp()
    month_end = datetime.fromisoformat(reset_at("month:", now).replace("Z", "+00:00")).timestamp()
    return day_key(now), month_key(now), day_end, month_end


def window_limits(tenant: Tenant, team: str, now: float) -> list[WindowLimit]:
    """Every budget window a call of ``team`` must fit in right now."""
    day, month, day_end, month_end = _calendar(int(now // 86_400))
    windows = [
        WindowLimit(day, tenant.daily_limit_micros, day_end + 7 * 86_400),
        WindowLimit(month, tenant.monthly_limit_micros, month_end + 40 * 86_400),
    ]
    if team in tenant.team_daily_limit_micros:
        windows.append(WindowLimit(f"team:{team}:{day}", tenant.team_daily_limit_micros[team],
                                   day_end + 7 * 86_400))
    return windows


def input_token_bound(request: ModelRequest) -> int:
    """A true upper bound of the input tokens of ``request``: a byte-level BPE tokenizer
    spends at most one token per UTF-8 byte of the text it reads (JSON quoting, which we
    count too, only adds bytes), plus an allowance for the provider's own framing: role
    markers, the tool-use system prompt it adds (~350 tokens), the rendering of each block."""
    payload = {"system": request.system, "messages": request.messages, "tool_choice": request.tool_choice}
    size = len(_compact_json(payload).encode()) + len(',"tools":') + _tools_bytes(request.tools)
    blocks = sum(len(m["content"]) if isinstance(m.get("content"), list) else 1 for m in request.messages)
    return size + FRAMING_TOKENS + BLOCK_FRAMING_TOKENS * (blocks + len(request.tools))


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# id(tools) -> (tools, UTF-8 JSON size). Only tuples are remembered: an operation's tool
# definitions are one shared tuple per process (shared/agent.py prompt_for), sent every turn.
_TOOLS_BYTES: dict[int, tuple[Sequence[dict[str, Any]], int]] = {}
_TOOLS_BYTES_MAX = 1024


def _tools_bytes(tools: Sequence[dict[str, Any]]) -> int:
    hit = _TOOLS_BYTES.get(id(tools))
    if hit is not None and hit[0] is tools:
        return hit[1]
    size = len(_compact_json(list(tools)).encode())
    if isinstance(tools, tuple) and len(_TOOLS_BYTES) < _TOOLS_BYTES_MAX:
        _TOOLS_BYTES[id(tools)] = (tools, size)
    return size


def counted_bound(counted: int) -> int:
    """The input bound from the provider's own count (documented as an estimate that may
    differ slightly from the billed count): a margin on top."""
    return math.ceil(counted * COUNT_MARGIN) + BLOCK_FRAMING_TOKENS


def usage_problem(usage: Usage, input_bound: int, max_tokens: int) -> str | None:
    """Why reported usage cannot be priced as is (None when it is sane): every count a
    non-negative integer, the input within the reserved bound, the output within max_tokens."""
    counts = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
              "cache_creation_input_tokens": usage.cache_write_tokens,
              "cache_read_input_tokens": usage.cache_read_tokens}
    for name, value in counts.items():
        if type(value) is not int or value < 0:
            return f"{name} is {value!r}, not a non-negative integer"
    if usage.input_tokens + usage.cache_write_tokens + usage.cache_read_tokens > input_bound:
        return f"input tokens above the reserved bound of {input_bound}"
    if usage.output_tokens > max_tokens:
        return f"output_tokens {usage.output_tokens} above max_tokens {max_tokens}"
    return None


def window_name(key: str) -> str:
    """``day``, ``month``, ``team:<name>:day`` or ``run`` (a signed envelope's budget) for a window key."""
    parts = key.split(":")
    if parts[0] == "run":
        return "run"
    return "month" if parts[0] == "month" else ("day" if parts[0] == "day" else f"team:{parts[1]}:day")


def _store_down(exc: StoreUnavailable) -> Unavailable:
    return Unavailable(f"the state store is unreachable, so the call was refused: {exc}", retry_after_s=2)


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return await in_thread(fn, *args)
    except StoreUnavailable as exc:
        raise _store_down(exc) from exc


async def _must_finish(fn: Callable[..., Any], *args: Any) -> Any:
    """A settle or release that runs to its end even if the task is cancelled meanwhile
    (a native ``Task.cancel()`` at the end of a graceful shutdown gets through an anyio shield)."""
    try:
        return await run_to_completion(fn, *args)
    except StoreUnavailable as exc:
        raise _store_down(exc) from exc


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
    calls: int = 0  # model calls answered
    attempts: int = 0  # provider requests made (retries included)
    token_counts: int = 0  # times the provider's token count replaced the byte bound
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
        request.timeout_s = self.settings.model_timeout_s
        model = provider.resolve_model(request.model)
        if not self.settings.budgets_enabled:
            return await self._unbudgeted(provider, request)
        tenant = self.identity.tenant
        for attempt in range(MAX_ATTEMPTS):
            now = time.time()
            limits = window_limits(tenant, self.identity.team, now) + list(self.run_windows)
            reservation, model = await self._reserve(provider, model, request, limits, now)
            self.attempts += 1
            task = asyncio.ensure_future(self._attempt(provider, request, model, reservation, now))
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    _detach(task)  # the request runs on and settles; only this caller stops waiting
                raise
            except ProblemError as exc:
                if not getattr(exc, "retry", False) or attempt == MAX_ATTEMPTS - 1:
                    raise
                hint = getattr(exc, "retry_delay_s", None)
                await asyncio.sleep(min(MAX_RETRY_DELAY_S, hint if hint is not None else 0.5 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _unbudgeted(self, provider: ModelProvider, request: ModelRequest) -> ModelResponse:
        response = await observe_model_call(self.identity.team, provider, request)
        if usage_problem(response.usage, 1 << 62, 1 << 62):
            response.usage = Usage()  # shown, never charged: budgets are off
        self._count(response, response.usage, 0)
        return response

    async def _attempt(self, provider: ModelProvider, request: ModelRequest, model: str,
                       reservation: Reservation, now: float) -> ModelResponse:
        """One provider request under its own reservation, ended in the store whatever
        happens to it: settled, released (known never sent) or charged unsettled."""
        tenant = self.identity.tenant
        try:
            response = await observe_model_call(self.identity.team, provider, request)
        except BaseException as exc:
            if isinstance(exc, Exception) and not may_have_billed(exc):
                await _must_finish(self.store.release, tenant.id, reservation.id)
                model_failed(None)
            else:  # timed out, connection broken or cancelled after sending: maybe billed
                entry = unsettled_entry(reservation)
                entry.run_id = self.identity.run_id
                await _must_finish(self.store.settle, reservation, reservation.amount_micros, entry, [])
                self.cost_micros += reservation.amount_micros
                model_failed(reservation.amount_micros)
            raise
        problem = usage_problem(response.usage, reservation.input_tokens, reservation.output_tokens)
        cost = 0
        if problem is None:
            u = response.usage
            cost = cost_micros(model, u.input_tokens, u.output_tokens, u.cache_write_tokens, u.cache_read_tokens)
            if cost > reservation.amount_micros:
                problem = f"usage priced at {cost} micro-USD, above the {reservation.amount_micros} reserved"
        reported = response.usage
        if problem is not None:  # charged at the worst case: never less than the provider may bill
            response.usage, cost = Usage(reservation.input_tokens, reservation.output_tokens), reservation.amount_micros
        entry = LedgerEntry(
            id=ledger_id_for(reservation.id), tenant_id=tenant.id, request_id=self.identity.request_id,
            team=self.identity.team, operation=self.identity.operation,
            model=response.model if model != "offline" else "offline",
            input_tokens=response.usage.input_tokens, output_tokens=response.usage.output_tokens,
            cost_micros=cost, run_id=self.identity.run_id, anomaly=problem is not None,
        )
        # money spent is recorded even if the client left or the server is shutting down
        settled = await _must_finish(self.store.settle, reservation, cost, entry, [])
        self.windows = [w for w in settled if not w.key.startswith("run:")]  # run windows raise no tenant alerts
        self._count(response, response.usage, cost)
        # observability after the settle: nothing it does can void the charge
        model_charged(self.identity.team, entry.model, entry.input_tokens, entry.output_tokens, cost,
                      response.elapsed_s)
        if problem is not None:
            usage_anomaly(self.identity.team, entry.model)
            reported_usage = {k: repr(v)[:40] for k, v in vars(reported).items()}
            await self._audit("usage.anomaly", 200, {"reason": problem, "reported": reported_usage,
                                                     "charged_usd": usd(cost)})
        await self._alert_if_crossed(now)
        return response

    def _count(self, response: ModelResponse, usage: Usage, cost: int) -> None:
        self.calls += 1
        self.usage += usage
        self.models.append(response.model)
        self.cost_micros += cost

    async def _reserve(self, provider: ModelProvider, model: str, request: ModelRequest, limits: list[WindowLimit],
                       now: float) -> tuple[Reservation, str]:
        tenant = self.identity.tenant
        input_bound = input_token_bound(request)
        counted = reclaimed = False
        while True:
            price = price_for(model)
            worst = math.ceil(price.input * input_bound + price.output * request.max_tokens)
            rates = [RateLimit("tpm", tenant.tpm, input_bound + request.max_tokens)]
            if self.attempts == 0:
                rates.insert(0, RateLimit("rpm", tenant.rpm, 1))
            reservation = Reservation(
                id=new_id("res"), tenant_id=tenant.id, amount_micros=worst, windows=[w.key for w in limits],
                expires_at=now + self.settings.operation_deadline_s + self.settings.reservation_margin_s,
                request_id=self.identity.request_id, team=self.identity.team, operation=self.identity.operation,
                model=model, input_tokens=input_bound, output_tokens=request.max_tokens,
            )
            try:
                outcome, cancelled = await finished(self.store.reserve, reservation, limits, rates, now)
            except StoreUnavailable as exc:
                raise _store_down(exc) from exc
            if cancelled:  # the caller left while the hold was being taken: nothing was sent
                if outcome.ok:
                    await _must_finish(self.store.release, tenant.id, reservation.id)
                raise asyncio.CancelledError
            if outcome.ok:
                self.windows = [w for w in outcome.windows if not w.key.startswith("run:")]
                self.rate_remaining.update(outcome.rate_remaining)
                return reservation, model
            refusal = outcome.refusal
            assert refusal is not None  # not ok: refused
            if refusal.kind == "contention":
                await self._audit("rate.refused", 429, {"limit": "contention", "retry_after_s": refusal.retry_after_s})
                raise RateLimited(
                    f"too many concurrent calls are updating tenant {tenant.id}'s budget at once; retry shortly",
                    retry_after_s=max(1.0, refusal.retry_after_s), limit="concurrent budget updates",
                )
            if not counted and (refusal.kind == "window" or refusal.key == "tpm"):
                # The byte bound does not fit: the provider's own count may (it is free and exact).
                counted = True
                exact = await provider.count_tokens(request)
                if exact is not None and counted_bound(exact) < input_bound:
                    input_bound = counted_bound(exact)
                    self.token_counts += 1
                    continue
            if refusal.kind == "rate":
                await self._audit("rate.refused", 429, {"limit": refusal.key, "retry_after_s": refusal.retry_after_s})
                unit = "requests" if refusal.key == "rpm" else "tokens"
                raise RateLimited(
                    f"{unit} per minute exhausted for tenant {tenant.id} (limit {refusal.limit}/min)",
                    retry_after_s=refusal.retry_after_s, limit=f"{refusal.limit} {unit}/min",
                )
            if not reclaimed:
                # Frees nothing (a crashed instance's hold is charged, not returned), but puts
                # its unsettled entry in the ledger now rather than at the next usage report.
                reclaimed = True
                await _in_thread(self.store.reclaim_expired, tenant.id, now)
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
    """Fire-and-forget alert webhook: checked, pinned, signed, no redirects (shared/webhooks.py);
    failures are only logged."""
    from shared.webhooks import send_alert

    await send_alert(url, payload)


def check_idempotency_key(key: str) -> None:
    """1-255 printable ASCII characters (the IETF draft's and Stripe's shape), else 422."""
    if not 1 <= len(key) <= 255 or not all(" " <= ch <= "~" for ch in key):
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "must be 1 to 255 printable ASCII characters"}],
        )


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
        if key is not None:
            check_idempotency_key(key)
            # stored as a hash: a key's size never reaches the store
            scoped = f"{identity.team}/{identity.operation}/{hashlib.sha256(key.encode()).hexdigest()}"
            digest = body_hash(call.body)
            now = time.time()
            # An in-progress claim is a lease for the operation's deadline (+ margin): if this
            # instance dies mid-call, a retry takes over then, not 24 h later.
            lease = now + call.settings.operation_deadline_s + call.settings.reservation_margin_s
            held = await _in_thread(call.store.claim_idempotency, identity.tenant.id,
                                    IdempotencyRecord(scoped, digest, lease), now)
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
            await _in_thread(call.store.complete_idempotency, identity.tenant.id, scoped, result,
                             time.time() + IDEMPOTENCY_TTL_S)
            return result
        return await fn(call)

    return wrapper
