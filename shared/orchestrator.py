"""Orchestrated runs: a planner turn, steps fanned out across teams, a synthesis turn.

::

    POST /v1/runs {task, teams?, max_usd?, deadline_s?}
      plan        one model turn, forced tool ``submit_plan``: steps of (team, operation,
                  input, depends_on); each input validated against the catalog's schema,
                  an invalid step replaced by its team's ``ask`` (or dropped, with the reason)
      steps       every step whose dependencies are done starts at once (in parallel),
                  each under a signed envelope holding its share of what is left of the
                  run's budget; a dependent step receives earlier results
      synthesis   one model turn writes the answer from the step results (without a
                  model, e.g. out of budget, a plain summary of the results is the answer)

State lives in the store, not in the instance. The run record is written after every
transition (compare-and-swap on its version), and the executing instance holds a lease
on it that a heartbeat renews. An instance that finds a run whose lease expired (its
owner died) claims it, releases the reservations the dead owner left in the run's budget
window, and continues from the last persisted step: finished steps are kept, steps that
were running are run again. Cancelling (``DELETE``) is a write of ``cancelled`` that the
owner sees at its next write or heartbeat, at the latest ``lease / 3`` later.

Money: the run's total (``max_usd``, or the tenant's cap) is the budget window
``run:<id>``; every model call of the run (planner, steps, their consultations,
synthesis) reserves in it atomically next to the tenant's own windows, so a run never
settles more than its total, however its steps are spread over instances. The run's
``usage`` at the end is read from the usage ledger (entries carrying the run id), so it
is what was charged, including work an instance did before it died.

Layering: this module never imports the HTTP edge or the operation service; the runtime
hands it a step caller (``OperationService.call``) and the signing keys (:class:`OrchestratorDeps`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
from pydantic import ValidationError

from shared.agent import EventSink
from shared.auth import check_team_allowed
from shared.budget import BudgetGuard, CallIdentity
from shared.catalog import Catalog
from shared.config import Settings
from shared.envelope import Envelope, Keyring, run_window_key
from shared.errors import Forbidden, NotFound, ProblemError, Timeout, ToolFailure, Unavailable
from shared.models.base import ModelProvider, ModelRequest
from shared.pricing import usd
from shared.store.aio import store_call
from shared.store.base import RunRecord, Store, Tenant, keyset_page

if TYPE_CHECKING:
    from shared.operations import OperationResult

log = logging.getLogger("multiagent.runs")

PLAN_TOOL = "submit_plan"
MAX_STEPS = 8
PLANNER_MAX_TOKENS = 2048
SYNTHESIS_MAX_TOKENS = 2048
RESULT_CHARS = 4_000  # of one step's result, as shown to a dependent step or the synthesis
RUN_TTL_S = 30 * 86_400
TERMINAL = ("succeeded", "partial", "failed", "cancelled")
STEP_DONE = ("succeeded", "failed", "refused", "cancelled", "skipped")


class StepCaller(Protocol):
    """Runs one operation of a team under an envelope, wherever the team lives; returns
    its result (``shared.operations.OperationService.call``) or raises its problem."""

    async def __call__(self, *, tenant: Tenant, team: str, operation: str, payload: dict[str, Any],
                       envelope: Envelope, request_id: str, events: EventSink | None = None,
                       event_context: dict[str, Any] | None = None) -> OperationResult: ...


@dataclass
class OrchestratorDeps:
    """What the orchestrator needs from above."""

    store: Store
    settings: Settings
    catalog: Catalog
    provider: Callable[[], Awaitable[ModelProvider]]
    call_step: StepCaller
    keyring: Callable[[], Awaitable[Keyring]]
    model_for: Callable[[str], str]
    instance_id: str


class RunPreempted(Exception):
    """The run was cancelled or another instance owns it now: stop without writing."""


async def _store(fn: Callable[..., Any], *args: Any) -> Any:
    return await store_call(fn, *args)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the run document -----------------------------------------------------------------------
def new_run(tenant: Tenant, *, task: str, teams: list[str] | None, max_micros: int | None, deadline_s: float,
            session_id: str | None, owner: str, lease_s: float) -> RunRecord:
    """A queued run, leased to ``owner`` (empty: whoever picks up the queued continuation).
    ``max_micros`` is the validated ``max_usd`` (see :func:`check_request`)."""
    now = time.time()
    budget = max_micros if max_micros is not None else min(tenant.daily_limit_micros, tenant.monthly_limit_micros)
    max_usd = usd(max_micros) if max_micros is not None else None
    data = {"task": task, "teams": teams, "max_usd": max_usd, "deadline": now + deadline_s,
            "budget_micros": budget, "session_id": session_id, "phase": "planning", "plan": None, "steps": [],
            "answer": None, "usage": {"input_tokens": 0, "output_tokens": 0, "cost_micros": 0}, "error": None}
    return RunRecord(id="run_" + uuid.uuid4().hex, tenant_id=tenant.id, status="queued", data=data, owner=owner,
                     lease_until=now + lease_s if owner else 0.0, expires_at=now + RUN_TTL_S)


def public_run(run: RunRecord) -> dict[str, Any]:
    """The response body of ``POST/GET/DELETE /v1/runs``."""
    d = run.data
    steps = []
    for s in d.get("steps", []):
        step = {k: s.get(k) for k in ("id", "team", "operation", "status", "output", "usage")}
        for k in ("depends_on", "error", "note", "model", "degraded", "started_at", "finished_at"):
            if s.get(k):
                step[k] = s[k]
        steps.append(step)
    u = d.get("usage") or {}
    body: dict[str, Any] = {
        "id": run.id, "status": run.status, "task": d.get("task"), "teams": d.get("teams"),
        "plan": d.get("plan"), "steps": steps, "answer": d.get("answer"),
        "usage": {"input_tokens": u.get("input_tokens", 0), "output_tokens": u.get("output_tokens", 0),
                  "cost_usd": usd(int(u.get("cost_micros", 0)))},
        "max_usd": d.get("max_usd"), "deadline": _iso(float(d.get("deadline") or 0)),
        "created_at": run.created_at, "updated_at": run.updated_at,
    }
    if d.get("error"):
        body["error"] = d["error"]
    if d.get("synthesis"):
        body["synthesis"] = d["synthesis"]
    return body


def run_summary(run: RunRecord) -> dict[str, Any]:
    """One item of ``GET /v1/runs``: the run without its plan, answer and step outputs
    (``GET /v1/runs/{id}`` has them)."""
    body = public_run(run)
    del body["plan"], body["answer"]
    body["steps"] = [{k: s[k] for k in ("id", "team", "operation", "status")} for s in body["steps"]]
    body.pop("synthesis", None)
    return body


def list_page(store: Store, tenant_id: str, limit: int,
              before: str | None) -> tuple[list[RunRecord], str | None]:
    """One page of ``GET /v1/runs``, newest first, and the ``next`` cursor ``CREATED_AT|ID``
    of the last run returned (runs created at the same instant are neither skipped nor
    repeated across pages; a bare ``CREATED_AT`` is accepted too)."""
    return keyset_page(lambda n, bound: store.list_runs(tenant_id, n, bound), lambda r: r.created_at, limit, before)


# -- planning -------------------------------------------------------------------------------
def plan_tool(teams: list[str]) -> dict[str, Any]:
    """The forced tool the planner answers with."""
    step = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "A short unique id, e.g. s1."},
            "team": {"type": "string", "enum": teams, "description": "The team that does this step."},
            "operation": {"type": "string", "description": "One of that team's operations."},
            "input": {"type": "object", "description": "The operation's input, matching its input schema."},
            "depends_on": {"type": "array", "items": {"type": "string"},
                           "description": "Ids of earlier steps whose results this step needs."},
            "purpose": {"type": "string", "description": "What this step contributes to the task."},
        },
        "required": ["id", "team", "operation", "input"],
    }
    return {"name": PLAN_TOOL, "description": "Submit the plan: the steps that together accomplish the task.",
            "input_schema": {"type": "object", "properties": {
                "steps": {"type": "array", "items": step, "minItems": 1, "maxItems": MAX_STEPS}},
                "required": ["steps"]}}


def planner_system(catalog: Catalog, teams: list[str], required: list[str] | None) -> str:
    """The planner's instructions and the catalog it may use."""
    lines = [
        "You plan how specialised teams accomplish a task together. Break the task into at most "
        f"{MAX_STEPS} steps; each step is one call of one team's operation, with an input that matches that "
        "operation's input schema exactly. Steps without depends_on run in parallel. When a step needs an "
        "earlier step's result, list that step in depends_on and write {{step:ID}} inside a text field of its "
        "input where the result belongs (ask steps receive earlier results automatically). Prefer few, "
        f"well-chosen steps. Call `{PLAN_TOOL}` exactly once.",
    ]
    if required:
        lines.append(f"Every one of these teams must contribute at least one step: {', '.join(required)}.")
    lines.append("\n# Teams and operations")
    for name in teams:
        team = catalog.team(name)
        lines.append(f"\n## {team.name}: {team.description}")
        for op in team.operations:
            schema = json.dumps(op.input_schema(), separators=(",", ":"))
            lines.append(f"- {op.name}: {op.description} Input schema: {schema}")
    return "\n".join(lines)


def _ask_step(sid: str, team: str, task: str, purpose: str, depends_on: list[str],
              note: str | None) -> dict[str, Any]:
    question = task if not purpose else f"{task}\n\nYour part of this task: {purpose}"
    return {"id": sid, "team": team, "operation": "ask", "input": {"question": question[:19_000]},
            "depends_on": depends_on, "note": note}


def validate_plan(raw_steps: Any, catalog: Catalog, allowed: list[str], required: list[str] | None,
                  task: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Planned steps checked against the catalog: (steps, dropped with reasons).

    An unknown or forbidden team drops the step; an unknown operation or an input that
    does not validate turns the step into that team's ``ask``; ``depends_on`` keeps only
    earlier steps (so the plan is always acyclic); every required team gets a step.
    """
    steps: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    ids: set[str] = set()
    items = raw_steps if isinstance(raw_steps, list) else []
    for i, item in enumerate(items):
        label = f"step {i + 1}"
        if not isinstance(item, dict):
            dropped.append({"step": label, "reason": "not an object"})
            continue
        if len(steps) >= MAX_STEPS:
            dropped.append({"step": str(item.get("id") or label), "reason": f"more than {MAX_STEPS} steps"})
            continue
        sid = str(item.get("id") or f"s{i + 1}")[:40] or f"s{i + 1}"
        if sid in ids:
            sid = f"s{i + 1}"
        while sid in ids:
            sid += "_"
        team, operation = item.get("team"), item.get("operation")
        if not isinstance(team, str) or team not in catalog:
            dropped.append({"step": sid, "reason": f"unknown team {team!r}"})
            continue
        if team not in allowed:
            dropped.append({"step": sid, "reason": f"team {team!r} is not available to this run"})
            continue
        purpose = str(item.get("purpose") or "")[:2_000]
        deps = [str(d) for d in (item.get("depends_on") or []) if isinstance(d, str) and str(d) in ids]
        payload = item.get("input") if isinstance(item.get("input"), dict) else {}
        try:
            op = catalog.team(team).operation(str(operation))
        except NotFound:
            steps.append(_ask_step(sid, team, task, purpose, deps,
                                   f"replaced by ask: {team} has no operation {operation!r}"))
            ids.add(sid)
            continue
        try:
            op.input.model_validate(payload)
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
            if op.name == "ask":
                steps.append(_ask_step(sid, team, task, purpose, deps, f"replaced invalid ask input ({errors})"))
            else:
                steps.append(_ask_step(sid, team, task, purpose, deps,
                                       f"replaced by ask: input invalid for {team}/{op.name} ({errors})"))
            ids.add(sid)
            continue
        steps.append({"id": sid, "team": team, "operation": op.name, "input": payload, "depends_on": deps,
                      "note": None})
        ids.add(sid)
    for team in required or []:
        if not any(s["team"] == team for s in steps):
            sid = f"{team}-ask"
            while sid in ids:
                sid += "_"
            steps.append(_ask_step(sid, team, task, "", [], "added: the request named this team"))
            ids.add(sid)
    return steps, dropped


# -- step inputs from earlier results --------------------------------------------------------
def result_text(step: dict[str, Any]) -> str:
    """A step's result as text for a dependent step or the synthesis."""
    if step.get("status") != "succeeded":
        error = (step.get("error") or {}).get("detail", "no result")
        return f"(step {step['id']} {step.get('status')}: {error})"
    output = step.get("output") or {}
    if step.get("operation") == "ask" and isinstance(output.get("answer"), str):
        return str(output["answer"])[:RESULT_CHARS]
    return json.dumps(output, separators=(",", ":"), ensure_ascii=False)[:RESULT_CHARS]


def resolve_input(step: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The step's input with ``{{step:ID}}`` replaced by earlier results (and, for ``ask``,
    the dependencies' results appended to the question)."""

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            for dep in step.get("depends_on") or []:
                if dep in by_id:
                    value = value.replace("{{step:" + dep + "}}", result_text(by_id[dep]))
            return value
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    payload: dict[str, Any] = fill(dict(step.get("input") or {}))
    deps = [by_id[d] for d in step.get("depends_on") or [] if d in by_id]
    if step.get("operation") == "ask" and deps and isinstance(payload.get("question"), str):
        context = "\n\n".join(f"[{d['id']}] {d['team']}/{d['operation']}: {result_text(d)}" for d in deps)
        payload["question"] = (payload["question"] + "\n\nResults of earlier steps:\n" + context)[:20_000]
    return payload


def fallback_answer(run: RunRecord) -> str:
    """The answer when no synthesis turn could run: the step results as they are."""
    parts = [f"Results for: {run.data.get('task', '')}"]
    for s in run.data.get("steps", []):
        parts.append(f"- {s['team']}/{s['operation']} ({s.get('status')}): {result_text(s)}")
    return "\n".join(parts)


def run_outcome(data: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """How a run that went through all its phases ended, from its steps: ``succeeded`` when
    every step succeeded, ``partial`` when some did and others failed, were refused, skipped
    or cancelled, ``failed`` when none succeeded (or the plan had no step). A failed run
    gets an ``error``: the first step's problem (its type and status, so a client sees e.g.
    ``budget-exceeded``) with a detail naming every step, or the planner's problem."""
    steps: list[dict[str, Any]] = data.get("steps") or []
    ok = [s for s in steps if s.get("status") == "succeeded"]
    if steps and len(ok) == len(steps):
        return "succeeded", None
    if ok:
        return "partial", None
    if not steps:
        plan_error = (data.get("plan") or {}).get("error")
        if plan_error:
            return "failed", {**plan_error, "detail": f"the plan failed: {plan_error.get('detail', '')}"}
        return "failed", ProblemError("the plan had no step the run could execute").to_problem()
    summary = "; ".join(f"{s['id']} {s.get('status')} ({(s.get('error') or {}).get('status', '-')} "
                        f"{(s.get('error') or {}).get('title', s.get('note') or '')})".rstrip() for s in steps)
    first = next((s["error"] for s in steps if s.get("error")), None) or ProblemError("no step succeeded").to_problem()
    return "failed", {**first, "detail": f"no step succeeded: {summary}"[:2_000]}


# -- execution --------------------------------------------------------------------------------
class RunExecutor:
    """Executes one run that this instance holds the lease of (see the module docstring)."""

    def __init__(self, deps: OrchestratorDeps, run: RunRecord, tenant: Tenant, *, events: EventSink | None = None,
                 history: list[dict[str, Any]] | None = None,
                 on_cancel: Literal["cancel", "release"] = "release") -> None:
        self.deps, self.run, self.tenant, self.events = deps, run, tenant, events
        self.history = list(history or [])
        self.on_cancel = on_cancel
        self.stop_reason: str | None = None  # "preempted" or "deleted": stop without writing
        self._self_cancelled = False
        self._wake = asyncio.Event()
        self._save_lock = asyncio.Lock()
        self._root: Envelope | None = None

    def wake(self) -> None:
        """Write (and so re-check the stored state) now instead of at the next heartbeat,
        e.g. after this instance served a DELETE of the run."""
        self._wake.set()

    # persistence
    async def save(self) -> None:
        """Write the run (compare-and-swap); :class:`RunPreempted` when it was cancelled or taken over."""
        async with self._save_lock:
            while True:
                if await _store(self.deps.store.update_run, self.run, self.run.version):
                    return
                fresh: RunRecord | None = await _store(self.deps.store.get_run, self.run.tenant_id, self.run.id)
                if fresh is None or fresh.status in TERMINAL or fresh.owner != self.deps.instance_id:
                    self.stop_reason = "deleted" if fresh is not None and fresh.status == "cancelled" else "preempted"
                    raise RunPreempted(self.run.id)
                self.run.version = fresh.version  # our own heartbeat raced us: our state wins

    async def _heartbeat(self, main: asyncio.Task[Any]) -> None:
        period = max(0.2, self.deps.settings.run_lease_s / 3)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), period)
            self._wake.clear()
            self.run.lease_until = time.time() + self.deps.settings.run_lease_s
            try:
                await self.save()
            except RunPreempted:
                self._self_cancelled = True
                main.cancel()
                return
            except Unavailable as exc:  # keep going; the lease may lapse and another instance resume
                log.warning("run %s heartbeat failed: %s", self.run.id, exc)

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        """Report progress (best effort)."""
        if self.events is not None:
            try:
                await self.events(event, {"run_id": self.run.id, **data})
            except Exception:  # noqa: BLE001
                log.exception("run event sink failed")

    async def root(self) -> Envelope:
        """The run's origin envelope: its whole budget and deadline (minted by whoever executes)."""
        if self._root is None:
            d = self.run.data
            self._root = Envelope.root(await self.deps.keyring(), tenant=self.tenant.id, run_id=self.run.id,
                                       budget_micros=int(d["budget_micros"]), deadline=float(d["deadline"]),
                                       hop_id=self.run.id)
        return self._root

    async def remaining_micros(self) -> int:
        """What is left of the run's budget (settled and reserved spend deducted)."""
        key = run_window_key(self.run.id)
        (state,) = await _store(self.deps.store.get_windows, self.tenant.id, [key])
        return max(0, int(self.run.data["budget_micros"]) - int(state.spent_micros) - int(state.reserved_micros))

    def _guard(self, operation: str) -> BudgetGuard:
        identity = CallIdentity(tenant=self.tenant, team="orchestrator", operation=operation,
                                request_id=f"{self.run.id}.{operation}", run_id=self.run.id)
        assert self._root is not None
        return BudgetGuard(self.deps.store, self.deps.settings, identity, run_windows=self._root.windows())

    def _add_usage(self, input_tokens: int, output_tokens: int, cost_micros: int) -> None:
        u = self.run.data["usage"]
        u["input_tokens"] += input_tokens
        u["output_tokens"] += output_tokens
        u["cost_micros"] += cost_micros

    async def execute(self) -> RunRecord:
        """Run (or continue) the run to a terminal state; returns the record as last written."""
        main = asyncio.current_task()
        assert main is not None
        d = self.run.data
        self.run.status = "running"
        self.run.lease_until = time.time() + self.deps.settings.run_lease_s
        heartbeat: asyncio.Task[Any] | None = None
        try:
            await self.save()
            heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(main))
            try:
                await self.root()
                async with asyncio.timeout(max(0.0, float(d["deadline"]) - time.time())):
                    if d.get("plan") is None:
                        await self._plan()
                    if d["phase"] == "steps":
                        await self._run_steps()
                    await self._synthesize()
                self.run.status, error = run_outcome(d)
                if error:
                    d["error"] = error
            except TimeoutError:
                for s in d["steps"]:
                    if s["status"] not in STEP_DONE:
                        s["status"], s["error"] = "cancelled", Timeout("the run's deadline passed").to_problem()
                d["error"] = Timeout("the run ran past its deadline").to_problem()
                d["answer"] = d.get("answer") or fallback_answer(self.run)
                self.run.status = "failed"
            except (RunPreempted, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001 - the run records the problem and still answers
                problem = exc if isinstance(exc, ProblemError) else ProblemError(f"the run failed: {exc}")
                if not isinstance(exc, ProblemError):
                    log.exception("run %s failed", self.run.id)
                d["error"] = problem.to_problem()
                d["answer"] = d.get("answer") or fallback_answer(self.run)
                self.run.status = "failed"
            await self._finish()
            return self.run
        except RunPreempted:
            return self.run
        except asyncio.CancelledError:
            if self._self_cancelled and main.cancelling() <= 1:
                main.uncancel()  # our heartbeat saw a DELETE or a takeover: a normal end here
                fresh = await _store(self.deps.store.get_run, self.run.tenant_id, self.run.id)
                return fresh or self.run
            with anyio.CancelScope(shield=True):
                await self._on_cancelled()
            raise
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(BaseException):
                    await heartbeat

    async def _finish(self) -> None:
        d = self.run.data
        d["phase"] = "done"
        with anyio.CancelScope(shield=True):
            await self._usage_from_ledger()
            self.run.owner, self.run.lease_until = "", 0.0
            try:
                await self.save()
            except RunPreempted:
                return
            await _store(self.deps.store.charge_run_reservations, self.tenant.id, self.run.id)
        session_id = d.get("session_id")
        if session_id and d.get("answer") and self.run.status in ("succeeded", "partial"):
            from shared.sessions import append_turn

            await append_turn(self.deps.store, self.tenant.id, session_id, f"run: {d['task']}", d["answer"],
                              self.deps.settings.session_token_budget)

    async def _usage_from_ledger(self) -> None:
        """The run's usage as charged: the ledger's entries for this run id."""
        try:
            entries = await _store(self.deps.store.list_ledger, self.tenant.id, self.run.created_at[:10])
        except Unavailable:
            return
        mine = [e for e in entries if e.run_id == self.run.id]
        self.run.data["usage"] = {"input_tokens": sum(e.input_tokens for e in mine),
                                  "output_tokens": sum(e.output_tokens for e in mine),
                                  "cost_micros": sum(e.cost_micros for e in mine)}

    async def _on_cancelled(self) -> None:
        """Cancelled from inside this instance: by DELETE or a takeover (nothing to write), by
        the client of a stream going away (``cancel``), or by shutdown (``release``: let the
        next reader resume it at once)."""
        if self.stop_reason in ("deleted", "preempted"):
            return
        if self.on_cancel == "cancel":
            self.run.status = "cancelled"
            self.run.data["error"] = {"type": "/problems/cancelled", "title": "Cancelled", "status": 499,
                                      "detail": "the client went away before the run finished"}
            for s in self.run.data["steps"]:
                if s["status"] not in STEP_DONE:
                    s["status"] = "cancelled"
        self.run.owner, self.run.lease_until = "", 0.0
        try:
            await self.save()
            await _store(self.deps.store.charge_run_reservations, self.tenant.id, self.run.id)
        except (RunPreempted, Unavailable):
            pass

    # phases
    def _candidates(self) -> list[str]:
        named = self.run.data.get("teams")
        teams = named or [t.name for t in self.deps.catalog]
        return [t for t in teams if t in self.deps.catalog
                and (self.tenant.teams is None or t in self.tenant.teams)]

    async def _plan(self) -> None:
        d = self.run.data
        d["phase"] = "planning"
        candidates = self._candidates()
        model = self.deps.model_for(self.deps.settings.planner_model)
        guard = self._guard("plan")
        plan_error: dict[str, Any] | None = None
        raw: Any = []
        try:
            provider = await self.deps.provider()
            request = ModelRequest(
                model=model, system=planner_system(self.deps.catalog, candidates, d.get("teams")),
                messages=self.history + [{"role": "user", "content": f"Task: {d['task']}"}],
                max_tokens=PLANNER_MAX_TOKENS, tools=[plan_tool(candidates)],
                tool_choice={"type": "tool", "name": PLAN_TOOL})
            response = await guard.call(provider, request)
            use = next((b for b in response.content if b.get("type") == "tool_use" and b.get("name") == PLAN_TOOL),
                       None)
            raw = (use or {}).get("input", {}).get("steps", [])
            await self.emit("model.delta", {"step": "plan", "model": guard.models[-1] if guard.models else model,
                                            "text": json.dumps(raw)[:4_000]})
        except ProblemError as exc:
            plan_error = exc.to_problem()
        self._add_usage(guard.usage.input_tokens, guard.usage.output_tokens, guard.cost_micros)
        steps, dropped = validate_plan(raw, self.deps.catalog, candidates, d.get("teams"), d["task"])
        d["plan"] = {"steps": [{k: s[k] for k in ("id", "team", "operation", "input", "depends_on")} for s in steps],
                     "dropped": dropped, "model": guard.models[-1] if guard.models else model,
                     "usage": {"input_tokens": guard.usage.input_tokens, "output_tokens": guard.usage.output_tokens,
                               "cost_usd": usd(guard.cost_micros)}}
        if guard.degraded:
            d["plan"]["degraded"] = guard.degraded
        if plan_error:
            d["plan"]["error"] = plan_error
        d["steps"] = [{**s, "status": "pending", "output": None, "usage": None, "error": None} for s in steps]
        d["phase"] = "steps"
        await self.save()
        await self.emit("usage", self._usage_event())

    def _usage_event(self) -> dict[str, Any]:
        u = self.run.data["usage"]
        return {"input_tokens": u["input_tokens"], "output_tokens": u["output_tokens"],
                "cost_usd": usd(u["cost_micros"])}

    async def _run_steps(self) -> None:
        steps: list[dict[str, Any]] = self.run.data["steps"]
        by_id = {s["id"]: s for s in steps}
        for s in steps:
            if s["status"] == "running":  # left by an owner that died: run it again
                s["status"] = "pending"
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                pending = [s for s in steps if s["status"] == "pending" and s["id"] not in running]
                ready = [s for s in pending
                         if all(by_id[d]["status"] in STEP_DONE for d in s.get("depends_on") or [] if d in by_id)]
                if ready:
                    # Parallel steps split what is left; one more share is kept for the synthesis.
                    share = await self.remaining_micros() // (len(pending) + 1)
                    for s in ready:
                        s["status"], s["started_at"] = "running", datetime.now(UTC).isoformat()
                    await self.save()
                    for s in ready:
                        running[s["id"]] = asyncio.get_running_loop().create_task(self._run_step(s, by_id, share))
                if not running:
                    for s in pending:  # unreachable dependencies (cannot happen with validated plans)
                        s["status"], s["note"] = "skipped", "its dependencies never finished"
                    return
                done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
                for sid, task in list(running.items()):
                    if task in done:
                        del running[sid]
                        task.result()  # RunPreempted / store errors propagate
        finally:
            for task in running.values():
                task.cancel()
            for task in running.values():
                with contextlib.suppress(BaseException):
                    await task

    async def _run_step(self, step: dict[str, Any], by_id: dict[str, dict[str, Any]], budget: int) -> None:
        context = {"step": step["id"], "team": step["team"], "operation": step["operation"]}
        await self.emit("step.started", context)
        cost_micros = 0
        try:
            root = await self.root()
            now = time.time()
            envelope = root.child(await self.deps.keyring(), step["team"], budget,
                                  deadline=min(root.deadline, now + self.deps.settings.operation_deadline_s))
            result = await self.deps.call_step(
                tenant=self.tenant, team=step["team"], operation=step["operation"],
                payload=resolve_input(step, by_id), envelope=envelope, request_id=f"{self.run.id}.{step['id']}",
                events=self.events, event_context={"run_id": self.run.id, **context})
            body, cost_micros = result.body, result.cost_micros
            step["status"], step["output"], step["usage"] = "succeeded", body.get("output"), body.get("usage")
            step["model"] = body.get("model")
            if body.get("degraded"):
                step["degraded"] = body["degraded"]
        except ProblemError as exc:
            step["status"] = "refused" if exc.status in (402, 403, 429) else "failed"
            step["error"] = exc.to_problem()
        except ToolFailure as exc:
            step["status"], step["error"] = "failed", ProblemError(str(exc)).to_problem()
        except (RunPreempted, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - reported in place; the run goes on
            log.exception("run %s step %s failed", self.run.id, step["id"])
            step["status"], step["error"] = "failed", ProblemError(f"the step failed: {exc}").to_problem()
        step["finished_at"] = datetime.now(UTC).isoformat()
        usage = step.get("usage") or {}
        self._add_usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), cost_micros)
        await self.save()
        await self.emit("step.completed", {**context, "status": step["status"], "output": step.get("output"),
                                           "usage": step.get("usage"), "error": step.get("error")})
        await self.emit("usage", self._usage_event())

    async def _synthesize(self) -> None:
        d = self.run.data
        d["phase"] = "synthesis"
        results = "\n\n".join(f"[{s['id']}] {s['team']}/{s['operation']} ({s['status']}):\n{result_text(s)}"
                              for s in d["steps"]) or "(no step ran)"
        model = self.deps.model_for(self.deps.settings.planner_model)
        guard = self._guard("synthesize")
        synthesis: dict[str, Any] = {}
        try:
            provider = await self.deps.provider()
            response = await guard.call(provider, ModelRequest(
                model=model, max_tokens=SYNTHESIS_MAX_TOKENS,
                system=("You write the final answer to the user's task from the results of specialised teams. "
                        "Be concise and concrete, say which team contributed what, and say plainly which steps "
                        "failed and what is therefore missing."),
                messages=self.history + [{"role": "user", "content": f"Task: {d['task']}\n\nStep results:\n{results}"}],
            ))
            answer = "".join(b.get("text", "") for b in response.content if b.get("type") == "text").strip()
            await self.emit("model.delta", {"step": "synthesis", "model": guard.models[-1], "text": answer})
            synthesis["model"] = guard.models[-1]
        except ProblemError as exc:
            answer = ""
            synthesis["error"] = exc.to_problem()
        if guard.degraded:
            synthesis["degraded"] = guard.degraded
        self._add_usage(guard.usage.input_tokens, guard.usage.output_tokens, guard.cost_micros)
        synthesis["usage"] = {"input_tokens": guard.usage.input_tokens, "output_tokens": guard.usage.output_tokens,
                              "cost_usd": usd(guard.cost_micros)}
        if not answer:
            answer, synthesis["fallback"] = fallback_answer(self.run), True
        d["answer"], d["synthesis"] = answer, synthesis


# -- starting, resuming and cancelling ---------------------------------------------------------
async def claim(deps: OrchestratorDeps, run: RunRecord) -> bool:
    """Take over a run whose owner's lease expired (or that nobody started); True when this
    instance owns it now. The dead owner's reservations are charged unsettled first: their
    requests may have been billed."""
    now = time.time()
    if run.status in TERMINAL or (run.owner and run.lease_until > now):
        return False
    run.owner, run.lease_until = deps.instance_id, now + deps.settings.run_lease_s
    if not await _store(deps.store.update_run, run, run.version):
        return False
    await _store(deps.store.charge_run_reservations, run.tenant_id, run.id)
    return True


async def cancel(deps: OrchestratorDeps, tenant: Tenant, run_id: str) -> RunRecord:
    """Mark the run cancelled (the owner stops at its next write) and charge its in-flight
    reservations unsettled (a late settle by the owner replaces them by the real cost)."""
    while True:
        run: RunRecord | None = await _store(deps.store.get_run, tenant.id, run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        if run.status in TERMINAL:
            return run
        run.status, run.owner, run.lease_until = "cancelled", "", 0.0
        run.data["error"] = {"type": "/problems/cancelled", "title": "Cancelled", "status": 499,
                             "detail": "the run was cancelled (DELETE /v1/runs/{id})"}
        for s in run.data.get("steps", []):
            if s.get("status") not in STEP_DONE:
                s["status"] = "cancelled"
        if await _store(deps.store.update_run, run, run.version):
            await _store(deps.store.charge_run_reservations, tenant.id, run_id)
            return run


def check_request(catalog: Catalog, tenant: Tenant, body: Any) -> dict[str, Any]:
    """Validate ``POST /v1/runs`` (422 / 404 / 403) and return its normalised fields
    (``max_usd`` as integer ``max_micros``, by the money rule of shared/limits.py)."""
    from shared import limits
    from shared.errors import ValidationFailed

    def bad(field: str, msg: str) -> ValidationFailed:
        return limits.invalid(["body", field], msg)

    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", errors=[{"loc": ["body"], "msg": "not an object"}])
    unknown = set(body) - {"task", "teams", "max_usd", "deadline_s"}
    if unknown:
        raise bad(sorted(unknown)[0], "unknown field; expected task, teams, max_usd, deadline_s")
    task = body.get("task")
    if not isinstance(task, str) or not task.strip() or len(task) > 20_000:
        raise bad("task", "must be a non-empty string of at most 20000 characters")
    teams = body.get("teams")
    if teams is not None:
        if not isinstance(teams, list) or not teams or not all(isinstance(t, str) for t in teams) \
                or len(teams) > MAX_STEPS:
            raise bad("teams", f"must be a list of 1 to {MAX_STEPS} team names")
        teams = list(dict.fromkeys(teams))
        for t in teams:
            if t not in catalog:
                raise NotFound(f"unknown team {t!r}; GET /v1/teams lists them")
            check_team_allowed(tenant, t)
    max_usd = body.get("max_usd")
    max_micros = limits.usd_micros(max_usd, ["body", "max_usd"], positive=True) if max_usd is not None else None
    deadline_s = body.get("deadline_s")
    if deadline_s is not None and (isinstance(deadline_s, bool) or not isinstance(deadline_s, (int, float))
                                   or not 0 < deadline_s <= 3_600):
        raise bad("deadline_s", "must be a number of seconds in (0, 3600]")
    if tenant.disabled:
        raise Forbidden(f"tenant {tenant.id} is disabled")
    return {"task": task, "teams": teams, "max_micros": max_micros,
            "deadline_s": float(deadline_s) if deadline_s is not None else None}


__all__ = ["OrchestratorDeps", "RunExecutor", "StepCaller", "cancel", "check_request", "claim", "new_run",
           "list_page", "public_run", "run_outcome", "run_summary", "validate_plan"]
