"""``/v1/runs`` (orchestrated runs) and ``/v1/sessions`` on the app, and how a long run
continues after its request has been answered.

``POST /v1/runs`` runs the whole orchestration in the request (JSON, or Server-Sent Events
with ``Accept: text/event-stream``), or with ``Prefer: respond-async`` answers 202 with
``Location: /v1/runs/{id}`` and hands the run to a :class:`Continuation`:

- :class:`LocalContinuation` (default, ``MULTIAGENT_RUN_CONTINUATION=local``): a background
  task in this process. If the process dies, the run's lease lapses and the next
  ``GET /v1/runs/{id}`` on any instance takes it over and continues it.
- :class:`CloudTasksContinuation` (``cloudtasks:projects/P/locations/L/queues/Q@https://SERVICE``)
  and :class:`LambdaContinuation` (``lambda:FUNCTION``): a queued invocation of
  ``POST /v1/runs/{id}/resume`` on the gateway, authenticated by the run's signed envelope
  (plus the platform's identity: an OIDC token from Cloud Tasks, the IAM role of an async
  Lambda invoke). The invocation claims the run and executes it inside that request. These
  two cannot be exercised without the cloud; they are kept small on purpose.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.errors import ConfigurationError, Conflict, NotFound, Unauthenticated, Unavailable
from shared.store.base import AuditEvent, RunRecord, StoreUnavailable, Tenant, new_id

if TYPE_CHECKING:
    from shared.envelope import Envelope
    from shared.orchestrator import OrchestratorDeps, RunExecutor
    from shared.routing import TeamRouter
    from shared.runtime import Runtime

log = logging.getLogger("multiagent.runs")


class Continuation(Protocol):
    """Where a long run goes on after ``202 Accepted``."""

    async def schedule(self, run: RunRecord, envelope: Envelope) -> None:
        """Arrange for the run to be executed (soon, once)."""


class LocalContinuation:
    """A background task in this process (single instance, or any instance on resume)."""

    def __init__(self, start: Any) -> None:
        self._start = start
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def schedule(self, run: RunRecord, envelope: Envelope) -> None:
        """Start the run's task (a run already running here is not started twice)."""
        if run.id in self.tasks:
            return
        task = asyncio.get_running_loop().create_task(self._start(run.tenant_id, run.id))
        self.tasks[run.id] = task
        run_id = run.id

        def forget(_: asyncio.Task[None]) -> None:
            self.tasks.pop(run_id, None)

        task.add_done_callback(forget)


def _resume_request(url: str, envelope: Envelope) -> tuple[str, dict[str, str]]:
    return (f"{url.rstrip('/')}/v1/runs/{envelope.run_id}/resume",
            {"content-type": "application/json", "x-multiagent-envelope": envelope.token})


class CloudTasksContinuation:
    """One Cloud Tasks HTTP task per run: ``POST SERVICE/v1/runs/{id}/resume`` with an OIDC
    token of ``service_account`` (Cloud Run verifies it) and the run's envelope."""

    def __init__(self, queue: str, service_url: str, service_account: str | None = None) -> None:
        self.queue, self.service_url, self.service_account = queue, service_url, service_account

    def _create(self, envelope: Envelope) -> None:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        url, headers = _resume_request(self.service_url, envelope)
        request: dict[str, Any] = {"httpMethod": "POST", "url": url, "headers": headers}
        if self.service_account:
            request["oidcToken"] = {"serviceAccountEmail": self.service_account, "audience": self.service_url}
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        resp = session.post(f"https://cloudtasks.googleapis.com/v2/{self.queue}/tasks",
                            json={"task": {"httpRequest": request}}, timeout=10)
        if resp.status_code >= 300:
            raise Unavailable(f"Cloud Tasks refused the continuation: {resp.status_code} {resp.text[:200]}")

    async def schedule(self, run: RunRecord, envelope: Envelope) -> None:
        """Enqueue the resume call."""
        await anyio.to_thread.run_sync(self._create, envelope)


class LambdaContinuation:
    """An asynchronous invoke (``InvocationType=Event``) of the gateway Lambda with an HTTP
    API (v2) event for ``POST /v1/runs/{id}/resume``, which Mangum serves like any request."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name

    def _invoke(self, envelope: Envelope) -> None:
        import boto3

        path, headers = _resume_request("", envelope)
        event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
                 "headers": headers, "body": "{}", "isBase64Encoded": False,
                 "requestContext": {"http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                                             "sourceIp": "127.0.0.1", "userAgent": "multiagent-continuation"},
                                    "requestId": envelope.run_id, "stage": "$default"}}
        boto3.client("lambda").invoke(FunctionName=self.function_name, InvocationType="Event",
                                      Payload=json.dumps(event).encode())

    async def schedule(self, run: RunRecord, envelope: Envelope) -> None:
        """Invoke asynchronously (the platform queues and retries it)."""
        await anyio.to_thread.run_sync(self._invoke, envelope)


def continuation_for(spec: str, local: LocalContinuation) -> Continuation:
    """The continuation named by ``MULTIAGENT_RUN_CONTINUATION``."""
    if spec in ("", "local"):
        return local
    kind, _, rest = spec.partition(":")
    if kind == "cloudtasks" and "@" in rest:
        queue, _, url = rest.partition("@")
        account = None
        if "#" in url:
            url, _, account = url.partition("#")
        return CloudTasksContinuation(queue, url, account)
    if kind == "lambda" and rest:
        return LambdaContinuation(rest)
    raise ConfigurationError(f"MULTIAGENT_RUN_CONTINUATION={spec!r} must be local, "
                             "cloudtasks:projects/P/locations/L/queues/Q@https://SERVICE[#SERVICE_ACCOUNT] "
                             "or lambda:FUNCTION")


def run_routes(runtime: Runtime, serve_mode: bool) -> list[Route]:
    """The runs and sessions routes (the orchestrator, and with it pydantic and the tool
    loop, is imported on the first run, not at cold start)."""
    from shared.app import authenticate, read_json

    router: TeamRouter = runtime.extensions["team_router"]
    settings = runtime.settings
    instance_id = runtime.extensions.setdefault("instance_id", f"inst_{uuid.uuid4().hex[:12]}")
    active: dict[str, RunExecutor] = {}
    built: list[OrchestratorDeps] = []

    def orchestration() -> tuple[Any, OrchestratorDeps]:
        from shared import orchestrator

        if not built:
            built.append(orchestrator.OrchestratorDeps(
                store=runtime.store, settings=settings, catalog=runtime.catalog, provider=runtime.provider,
                call_step=router.call_operation, keyring=router.keyring, model_for=runtime.model_for,
                instance_id=instance_id))
        return orchestrator, built[0]

    async def store_call(fn: Any, *args: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except StoreUnavailable as exc:
            raise Unavailable(f"the state store is unreachable: {exc}", retry_after_s=2) from exc

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

        return Envelope.root(await router.keyring(), tenant=run.tenant_id, run_id=run.id,
                             budget_micros=int(run.data["budget_micros"]), deadline=float(run.data["deadline"]),
                             hop_id=run.id)

    def location(run: RunRecord) -> dict[str, str]:
        return {"location": f"/v1/runs/{run.id}"}

    async def create_run(request: Request) -> Response:
        from shared import sessions
        from shared.sse import event_stream, wants_event_stream

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
        envelope = await router.envelope_from(request, None)
        run_id = request.path_params["run_id"]
        if envelope is None:
            raise Unauthenticated("resuming a run needs its signed envelope")
        if envelope.run_id != run_id or envelope.parent is not None:
            from shared.envelope import EnvelopeRefused

            raise EnvelopeRefused("the envelope is not this run's origin envelope")
        tenant = await router.tenant_of(envelope)
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


__all__ = ["CloudTasksContinuation", "Continuation", "LambdaContinuation", "LocalContinuation", "continuation_for",
           "run_routes"]
