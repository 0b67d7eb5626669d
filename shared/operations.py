"""Team operations: run one and record it, the same way for every caller.

One sequence, whoever asks (the HTTP route, ``consult_team``, a run's step)::

    parse_input (validate once)  →  session history  →  AgentCall  →  @budgeted run_operation
    →  session turn  →  OperationResult          and, in a ``finally``, record(OperationOutcome)

:meth:`OperationService.invoke` is that sequence for a team served by this function;
:meth:`OperationService.call` runs a team operation wherever the team lives (in-process
here, or in its own function through :class:`~shared.remote.RemoteTeams`) under a budget
envelope; it is the orchestrator's step caller and, through :meth:`team_caller`, what
``consult_team`` calls. :meth:`record` is the one place an operation becomes an audit event
and metrics. Money stays in integer micro-dollars from the guard to the caller: only a
remote team's JSON body is read back from ``cost_usd``, once, where it arrives.

Every team-to-team call runs under a budget envelope (``shared.envelope``): a remote hop
carries a fresh single-use hop credential; an in-process hop passes the :class:`Envelope`
itself, checked without a signature or a claim (:func:`shared.envelope.check`).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.envelope import Envelope, EnvelopeRefused, check, replay_marker
from shared.errors import Forbidden, ProblemError, ToolFailure, ValidationFailed, recording_failure
from shared.store.aio import store_call
from shared.store.base import Tenant

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from shared.agent import AgentCall, EventSink, NestedUsage
    from shared.catalog import Operation, Team
    from shared.envelope import Keyring
    from shared.runtime import Runtime
    from shared.tools.base import TeamCaller


@dataclass
class OperationOutcome:
    """What is recorded of one operation call, success or failure (audit event, metrics)."""

    team: str
    operation: str
    status: int | None = None  # None: it never finished (cancelled)
    problem: ProblemError | None = None
    tenant: Tenant | None = None  # None: nobody to file it under (401)
    call: AgentCall | None = None  # the call once built (its guard holds the usage)
    output: dict[str, Any] | None = None
    duration_ms: float = 0.0
    trace_id: str | None = None
    started: float = field(default_factory=time.perf_counter)

    def finish(self) -> None:
        """Stamp the duration since ``started``."""
        self.duration_ms = round((time.perf_counter() - self.started) * 1000, 2)


@dataclass
class OperationResult:
    """An operation's answer: the contract's 200 body, and its usage in micro-dollars."""

    body: dict[str, Any]
    cost_micros: int
    input_tokens: int
    output_tokens: int
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def output(self) -> dict[str, Any]:
        """The operation's output object."""
        return dict(self.body["output"])

    @classmethod
    def from_body(cls, body: dict[str, Any], **kwargs: Any) -> OperationResult:
        """A result known only by its JSON body (a remote team's answer, an idempotent replay):
        ``usage.cost_usd`` is read back into micro-dollars here, and nowhere else."""
        usage = body.get("usage") or {}
        return cls(body, round(float(usage.get("cost_usd", 0.0)) * 1_000_000), int(usage.get("input_tokens", 0)),
                   int(usage.get("output_tokens", 0)), **kwargs)


@dataclass
class OperationRequest:
    """One operation to run on this function, its caller already authenticated."""

    tenant: Tenant
    team: Team
    operation: Operation
    body: dict[str, Any]
    request_id: str
    envelope: Envelope | None = None
    session_id: str | None = None
    idempotency_key: str | None = None
    events: EventSink | None = None
    event_context: dict[str, Any] = field(default_factory=dict)


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """A pydantic error as the ``errors`` member of a 422 ``validation-error`` problem."""
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors(include_url=False)]


class OperationService:
    """Runs and records team operations for one runtime (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.remote = runtime.remote

    async def keyring(self) -> Keyring:
        """The envelope signing keys."""
        return await self.remote.keyring()

    # -- one operation, here ------------------------------------------------------------------
    @staticmethod
    def parse_input(team: Team, op: Operation, body: Any) -> BaseModel:
        """The operation's input model from ``body`` (422 ``validation-error`` otherwise)."""
        from pydantic import ValidationError  # pydantic loads on the first operation, not at cold start

        if not isinstance(body, dict):
            raise ValidationFailed("the body must be a JSON object", errors=[{"loc": ["body"], "msg": "not an object"}])
        try:
            return op.input.model_validate(body)
        except ValidationError as exc:
            raise ValidationFailed(f"input does not match {team.name}/{op.name}",
                                   errors=validation_errors(exc)) from None

    async def invoke(self, req: OperationRequest, outcome: OperationOutcome,
                     parsed: BaseModel | None = None) -> OperationResult:
        """Run ``req`` on this function: the sequence of the module docstring (recording is
        the caller's, which also covers what failed before the operation started)."""
        from shared import sessions
        from shared.agent import run_operation

        settings = self.runtime.settings
        team, op = req.team, req.operation
        parsed = parsed if parsed is not None else self.parse_input(team, op, req.body)
        history: list[dict[str, Any]] = []
        if req.session_id:
            history = sessions.as_model_messages(await sessions.load(self.runtime.store, req.tenant.id,
                                                                     req.session_id), settings.session_token_budget)
        call = await self._agent_call(req, parsed, history)
        outcome.call = call
        payload = await run_operation(call)  # the full body, as stored for idempotent replays
        outcome.output = payload.get("output")
        if call.replayed:
            return OperationResult.from_body(payload, replayed=True, headers={"idempotent-replayed": "true"})
        if req.session_id:
            output = payload["output"]
            await sessions.append_turn(
                self.runtime.store, req.tenant.id, req.session_id, f"{team.name}/{op.name}: {json.dumps(req.body)}",
                output["answer"] if op.prose_output and "answer" in output else json.dumps(output),
                settings.session_token_budget)
        guard = call.guard
        assert guard is not None
        return OperationResult(payload, guard.cost_micros + call.nested.cost_micros,
                               guard.usage.input_tokens + call.nested.usage.input_tokens,
                               guard.usage.output_tokens + call.nested.usage.output_tokens,
                               headers=guard.headers())

    async def _agent_call(self, req: OperationRequest, parsed: BaseModel,
                          history: list[dict[str, Any]]) -> AgentCall:
        """The :class:`AgentCall` of ``req``, bound to its envelope (if any): the ledger gets the
        run id, the guard the envelope's budget windows, ``consult_team`` a caller that signs
        narrower envelopes."""
        from shared.agent import AgentCall
        from shared.budget import CallIdentity

        runtime, team, op, envelope = self.runtime, req.team, req.operation, req.envelope
        chain = envelope.chain if envelope is not None else (team.name,)
        call = AgentCall(
            store=runtime.store, settings=runtime.settings,
            identity=CallIdentity(tenant=req.tenant, team=team.name, operation=op.name, request_id=req.request_id,
                                  run_id=envelope.run_id if envelope else "", chain=chain),
            body=req.body, idempotency_key=req.idempotency_key, team_def=team, operation_def=op,
            input=parsed, provider=await runtime.provider(),
            model=runtime.model_for(team.model), history=history, events=req.events,
            event_context=dict(req.event_context),
            run_windows=envelope.windows() if envelope is not None else [],
            low_budget_model=team.on_low_budget_model,
        )
        call.call_team = self.team_caller(req.tenant, req.request_id, envelope, team.name, call.nested)
        return call

    def record(self, outcome: OperationOutcome, request_id: str) -> None:
        """Record a finished operation: its audit event(s) and metrics (never fails the call)."""
        from shared.observability.instrument import operation_finished

        operation_finished(self.runtime.store, outcome, request_id, serve_mode=self.runtime.serve_mode)

    # -- one operation, wherever its team lives ------------------------------------------------
    async def call(self, *, tenant: Tenant, team: str, operation: str, payload: dict[str, Any],
                   envelope: Envelope, request_id: str, events: EventSink | None = None,
                   event_context: dict[str, Any] | None = None) -> OperationResult:
        """Run ``team/operation`` under ``envelope`` where the team lives: its result, or its
        problem as a :class:`ProblemError` (a remote step gets a fresh hop credential each
        time, so a resumed run works too)."""
        if self.remote.is_remote(team):
            return OperationResult.from_body(await self.remote.post(team, operation, payload, envelope, request_id))
        if team not in self.runtime.catalog:
            raise ToolFailure(f"unknown team {team!r}")
        # The Envelope object never left this process: its claims are checked like a remote
        # hop's (deadline, depth, tenant, addressee, cycle); no signature, no single-use claim.
        check(envelope, tenant_id=tenant.id, team=team)
        team_def = self.runtime.catalog.team(team)
        op = team_def.operation(operation)
        parsed = self.parse_input(team_def, op, payload)
        # no HTTP request of its own: recorded here
        outcome = OperationOutcome(team, operation, tenant=tenant)
        try:
            with recording_failure(outcome):
                result = await self.invoke(OperationRequest(tenant, team_def, op, payload, request_id, envelope,
                                                            events=events, event_context=dict(event_context or {})),
                                           outcome, parsed)
            outcome.status = 200
        finally:
            if outcome.status is not None:
                outcome.finish()
                self.record(outcome, request_id)
        return result

    def team_caller(self, tenant: Tenant, request_id: str, parent: Envelope | None, origin_team: str,
                    nested: NestedUsage | None) -> TeamCaller:
        """A ``consult_team`` caller: signs a child of ``parent`` (or of an origin envelope
        minted for this call, holding what the tenant can still spend, not its whole cap)
        with what is left of its budget, and counts the callee's usage."""
        origin: list[Envelope] = []
        deadline_s = self.runtime.settings.operation_deadline_s

        async def call_team(team: str, operation: str, payload: dict[str, Any],
                            chain: tuple[str, ...]) -> dict[str, Any]:
            if not self.remote.is_remote(team) and team not in self.runtime.catalog:
                raise ToolFailure(f"unknown team {team!r}")
            keyring = await self.keyring()
            base = parent
            if base is None:
                if not origin:
                    origin.append(Envelope.root(
                        keyring, tenant=tenant.id, run_id=request_id,
                        budget_micros=await self.tenant_remaining_micros(tenant, origin_team),
                        deadline=time.time() + deadline_s, chain=(origin_team,)))
                base = origin[0]
            child = base.child(keyring, team, await self.remaining_micros(base), deadline=time.time() + deadline_s)
            try:
                result = await self.call(tenant=tenant, team=team, operation=operation, payload=payload,
                                         envelope=child, request_id=f"{request_id}.{uuid.uuid4().hex[:6]}")
            except ProblemError as exc:
                raise ToolFailure(f"{team} refused ({exc.status} {exc.slug}): {exc.detail}") from None
            if nested is not None:
                nested.add(result.input_tokens, result.output_tokens, result.cost_micros)
            return result.output

        return call_team

    # -- envelopes ------------------------------------------------------------------------------
    async def claim_hop(self, envelope: Envelope) -> None:
        """Use a verified hop credential up: the first claim of its ``jti`` wins (atomic on
        every store); any later one is a replay, 403, before anything runs or is charged."""
        marker, expires_at = replay_marker(envelope)
        first = await store_call(self.runtime.store.claim_marker, envelope.tenant, marker, expires_at,
                                 doing="check the hop credential")
        if not first:
            raise EnvelopeRefused("the hop credential was already used (a replay)")

    async def tenant_of(self, envelope: Envelope) -> Tenant:
        """The live tenant a verified envelope names (a hop authenticated by its envelope)."""
        tenant = await store_call(self.runtime.store.get_tenant, envelope.tenant, doing="check the envelope's tenant")
        if tenant is None:
            raise EnvelopeRefused("the envelope's tenant does not exist")
        if tenant.disabled:
            raise Forbidden(f"tenant {tenant.id} is disabled")
        return tenant

    async def tenant_remaining_micros(self, tenant: Tenant, team: str) -> int:
        """What the tenant can still spend on ``team`` right now (day, month and team windows,
        settled and reserved spend deducted): the most a call without a run may hand on."""
        from shared.budget import window_limits

        limits = window_limits(tenant, team, time.time())
        states = await store_call(self.runtime.store.get_windows, tenant.id, [w.key for w in limits],
                                  doing="read the tenant's budget")
        used = {w.key: w.spent_micros + w.reserved_micros for w in states}
        return max(0, min(w.limit_micros - used.get(w.key, 0) for w in limits))

    async def remaining_micros(self, envelope: Envelope) -> int:
        """What the envelope (and every ancestor) still has: budget minus settled and reserved spend."""
        lineage = envelope.lineage()
        states = await store_call(self.runtime.store.get_windows, envelope.tenant, [e.window_key for e in lineage])
        used = {w.key: w.spent_micros + w.reserved_micros for w in states}
        return max(0, min(e.budget_micros - used.get(e.window_key, 0) for e in lineage))

    async def close(self) -> None:
        """Close the connections to other teams' functions."""
        await self.remote.close()


__all__ = ["OperationOutcome", "OperationRequest", "OperationResult", "OperationService", "validation_errors"]
