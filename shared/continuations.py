"""How a long run continues after its ``202 Accepted`` (``Prefer: respond-async``):

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
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from shared.errors import ConfigurationError, Unavailable
from shared.store.base import RunRecord

if TYPE_CHECKING:
    from shared.envelope import Envelope


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


__all__ = ["CloudTasksContinuation", "Continuation", "LambdaContinuation", "LocalContinuation", "continuation_for"]
