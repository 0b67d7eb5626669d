"""``/v1/runs`` (orchestrated runs) and ``/v1/sessions``.

``POST /v1/runs`` runs the whole orchestration in the request (JSON, or Server-Sent Events
with ``Accept: text/event-stream``), or with ``Prefer: respond-async`` answers 202 with
``Location: /v1/runs/{id}`` and hands the run to a continuation (:mod:`shared.continuations`).
The orchestrator, and with it pydantic and the tool loop, is imported on the first run,
not at cold start; its steps run through ``OperationService.call``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.continuations import LocalContinuation, continuation_for
from shared.errors import Conflict, NotFound, Unauthenticated
from shared.http.request import authenticate, envelope_from, read_json
from shared.runtime import Runtime
from shared.store.aio import store_call
from shared.store.base import AuditEvent, RunRecord, Tenant, new_id

if TYPE_CHECKING:
    from shared.envelope import Envelope
    from shared.orchestrator import OrchestratorDeps, RunExecutor

log = logging.getLogger("multiagent.runs")


def routes(runtime: Runtime) -> list[Route]:
    """The runs and sessions routes (the orchestrator, and with it pydantic and the tool
    loop, is imported on the first run, not at cold start)."""
    ops = runtime.operations
    settings = runtime.settings
    instance_id = runtime.instance_id
    active: dict[str, RunExecutor] = {}
    built: list[OrchestratorDeps] = []

    def orchestration() -> tuple[Any, OrchestratorDeps]:
        from shared import orchestrator

        if not built:
            built.append(orchestrator.OrchestratorDeps(
                store=runtime.store, settings=settings, catalog=runtime.catalog, provider=runtime.provider,
                call_step=ops.call, keyring=ops.keyring, model_for=runtime.model_for,
                instance_id=instance_id))
        return orchestrator, built[0]

    async def history_of(run: RunRecord) -> list[dict[str, Any]]:
        from shared import sessions

        session_id = run.data.get("session_id")
        if not session_id:
            return []
        return sessions.as_model_messages(await sessions.load(runtime.store, run.tenant_id, session_id),
                                          settings.session_token_budget)

    async def execute(executor: RunExecutor) -> RunRecord:
        active[executor.run.id] = executor
        try:
            return await executor.execute()
        finally:
            if active.get(executor.run.id) is executor:
                del active[executor.run.id]

    async def continue_run(tenant_id: str, run_id: str) -> None:
        """Execute a run this instance owns or can claim (the continuation's work)."""
        orc, deps = orchestration()
        try:
            tenant: Tenant | None = await store_call(runtime.store.get_tenant, tenant_id)
            run: RunRecord | None = await store_call(runtime.store.get_run, tenant_id, run_id)
            if tenant is None or run is None or run.status in orc.TERMINAL:
                return
            if run.owner != instance_id and not await orc.claim(deps, run):
                return
            executor = orc.RunExecutor(deps, run, tenant, history=await history_of(run), on_cancel="release")
            await execute(executor)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a background run must log, not vanish
            log.exception("continuing run %s failed", run_id)

    local = LocalContinuation(continue_run)
    continuation = continuation_for(settings.run_continuation, local)

    async def origin_envelope(run: RunRecord) -> Envelope:
        from shared.envelope import Envelope

        return Envelope.root(await ops.keyring(), tenant=run.tenant_id, run_id=run.id,
                             budget_micros=int(run.data["budget_micros"]), deadline=float(run.data["deadline"]),
                             hop_id=run.id)

    def location(run: RunRecord) -> dict[str, str]:
        return {"location": f"/v1/runs/{run.id}"}

    async def create_run(request: Request) -> Response:
        from shared import sessions
        from shared.http.sse import event_stream, wants_event_stream

        orc, deps = orchestration()
        tenant = await authenticate(runtime, request)
        fields = orc.check_request(runtime.catalog, tenant, await read_json(request, settings.max_body_bytes))
        session_id = sessions.session_id_from(request.headers)
        respond_async = "respond-async" in request.headers.get("prefer", "").lower()
        queued_elsewhere = respond_async and continuation is not local
        run = orc.new_run(tenant, task=fields["task"], teams=fields["teams"], max_micros=fields["max_micros"],
                      deadline_s=fields["deadline_s"] or settings.run_deadline_s, session_id=session_id,
                      owner="" if queued_elsewhere else instance_id, lease_s=settings.run_lease_s)
        await store_call(runtime.store.put_run, run)
        await store_call(runtime.store.append_audit, [AuditEvent(
            id=new_id("aud"), tenant_id=tenant.id, type="run.created", request_id=request.state.request_id,
            status=202 if respond_async else 200,
            detail={"run_id": run.id, "teams": fields["teams"], "max_usd": run.data["max_usd"]})])
        if respond_async:
            await continuation.schedule(run, await origin_envelope(run))
            return JSONResponse(orc.public_run(run), status_code=202,
                                headers={**location(run), "preference-applied": "respond-async"})
        executor = orc.RunExecutor(deps, run, tenant, history=await history_of(run), on_cancel="cancel")
        if wants_event_stream(request):
            async def work(emit: Any) -> dict[str, Any]:
                executor.events = emit
                return orc.public_run(await execute(executor))  # type: ignore[no-any-return]

            return event_stream(work, request.state.request_id, headers=location(run))
        return JSONResponse(orc.public_run(await execute(executor)), headers=location(run))

    async def list_runs(request: Request) -> Response:
        from shared.errors import ValidationFailed

        orc, _ = orchestration()
        tenant = await authenticate(runtime, request)
        raw_limit, before = request.query_params.get("limit", "20"), request.query_params.get("before")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 200:
            raise ValidationFailed("limit: must be a whole number from 1 to 200",
                                   errors=[{"loc": ["query", "limit"], "msg": "must be a whole number from 1 to 200"}])
        if before is not None and not 0 < len(before) <= 200:
            raise ValidationFailed("before: must be the `next` of the previous page",
                                   errors=[{"loc": ["query", "before"], "msg": "must be the `next` of a page"}])
        runs, cursor = await store_call(orc.list_page, runtime.store, tenant.id, int(raw_limit), before)
        body: dict[str, Any] = {"runs": [orc.run_summary(r) for r in runs]}
        if cursor:
            body["next"] = cursor
        return JSONResponse(body)

    async def get_run(request: Request) -> Response:
        orc, deps = orchestration()
        tenant = await authenticate(runtime, request)
        run: RunRecord | None = await store_call(runtime.store.get_run, tenant.id, request.path_params["run_id"])
        if run is None:
            raise NotFound(f"no run {request.path_params['run_id']!r}")
        if run.status not in orc.TERMINAL and run.lease_until < time.time() and run.id not in active:
            # Its owner is gone (or a queued run was never picked up): continue it.
            if continuation is local:
                if await orc.claim(deps, run):
                    await local.schedule(run, await origin_envelope(run))
            else:
                await continuation.schedule(run, await origin_envelope(run))
        return JSONResponse(orc.public_run(run), headers=location(run))

    async def delete_run(request: Request) -> Response:
        orc, deps = orchestration()
        tenant = await authenticate(runtime, request)
        run = await orc.cancel(deps, tenant, request.path_params["run_id"])
        executor = active.get(run.id)
        if executor is not None:
            executor.wake()  # its next write sees the cancellation and stops the steps
        return JSONResponse(orc.public_run(run), headers=location(run))

    async def resume_run(request: Request) -> Response:
        """The queued continuation's call: authenticated by the run's origin envelope."""
        orc, deps = orchestration()
        envelope = await envelope_from(runtime, request, None)
        run_id = request.path_params["run_id"]
        if envelope is None:
            raise Unauthenticated("resuming a run needs its signed envelope")
        if envelope.run_id != run_id or envelope.parent is not None:
            from shared.envelope import EnvelopeRefused

            raise EnvelopeRefused("the envelope is not this run's origin envelope")
        tenant = await ops.tenant_of(envelope)
        run: RunRecord | None = await store_call(runtime.store.get_run, tenant.id, run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        if run.status in orc.TERMINAL:
            return JSONResponse(orc.public_run(run))
        if run.owner != instance_id and not await orc.claim(deps, run):
            raise Conflict("the run is being executed by another instance")
        executor = orc.RunExecutor(deps, run, tenant, history=await history_of(run), on_cancel="release")
        return JSONResponse(orc.public_run(await execute(executor)))

    async def get_session(request: Request) -> Response:
        from shared import sessions

        tenant = await authenticate(runtime, request)
        found = await sessions.load(runtime.store, tenant.id, request.path_params["session_id"])
        if found is None:
            raise NotFound(f"no session {request.path_params['session_id']!r}")
        return JSONResponse(sessions.public(found))

    async def delete_session(request: Request) -> Response:
        tenant = await authenticate(runtime, request)
        await store_call(runtime.store.delete_session, tenant.id, request.path_params["session_id"])
        return Response(status_code=204)

    return [
        Route("/v1/runs", create_run, methods=["POST"]),
        Route("/v1/runs", list_runs, methods=["GET"]),
        Route("/v1/runs/{run_id}", get_run, methods=["GET"]),
        Route("/v1/runs/{run_id}", delete_run, methods=["DELETE"]),
        Route("/v1/runs/{run_id}/resume", resume_run, methods=["POST"]),
        Route("/v1/sessions/{session_id}", get_session, methods=["GET"]),
        Route("/v1/sessions/{session_id}", delete_session, methods=["DELETE"]),
    ]


__all__ = ["routes"]
