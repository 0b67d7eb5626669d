"""``MultiAgentFramework`` and ``AsyncMultiAgentFramework``: the two entry points."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import httpx
from pydantic import BaseModel

from ._base import Attempt, BaseClient, RequestOptions, RetryPolicy, retry_delay, should_retry
from ._generated import AsyncTeams, Teams
from ._models import AuditPage, Run, UsageReport
from ._resources import build_body
from ._streaming import AsyncStream, Stream

SSE_HEADERS = {"accept": "text/event-stream"}

__all__ = ["AsyncMultiAgentFramework", "MultiAgentFramework"]


def _run_body(task: str, teams: Sequence[str] | None, max_usd: float | None,
              deadline_s: float | None) -> dict[str, Any]:
    body: dict[str, Any] = {"task": task}
    for key, value in (("teams", list(teams) if teams is not None else None), ("max_usd", max_usd),
                       ("deadline_s", deadline_s)):
        if value is not None:
            body[key] = value
    return body


class MultiAgentFramework(BaseClient):
    """The synchronous client.

    ``MultiAgentFramework(api_url=..., api_key=...)`` (defaults: ``MULTIAGENT_API_URL``,
    ``MULTIAGENT_API_KEY``); ``framework.teams.finance.analyze_investment(...)`` returns the
    typed output with ``.raw``; errors are :mod:`multiagent_sdk` exceptions.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(api_url=api_url, api_key=api_key, timeout=timeout, max_retries=max_retries,
                         retry_policy=retry_policy, default_headers=default_headers)
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(timeout=self.timeout)

    @cached_property
    def teams(self) -> Teams:
        """Every team: ``framework.teams.marketing``, ``framework.teams["customer-service"]``, ``.list()``."""
        return Teams(self)

    def usage(self) -> UsageReport:
        """``GET /v1/usage``: the calling tenant's spend and limits."""
        return UsageReport.model_validate(self._send("GET", "/v1/usage").response.json())

    def audit(self, *, limit: int | None = None, before: str | None = None) -> AuditPage:
        """``GET /v1/audit``: the calling tenant's audit events, newest first."""
        params = {k: v for k, v in (("limit", limit), ("before", before)) if v is not None}
        return AuditPage.model_validate(self._send("GET", "/v1/audit", params=params).response.json())

    def create_run(self, task: str, *, teams: Sequence[str] | None = None, max_usd: float | None = None,
                   deadline_s: float | None = None, idempotency_key: str | None = None) -> Run:
        """``POST /v1/runs``: an orchestrated multi-team run (waits for its answer)."""
        body = _run_body(task, teams, max_usd, deadline_s)
        attempt = self._send("POST", "/v1/runs", json=body, options=RequestOptions(idempotency_key=idempotency_key))
        return Run.model_validate(attempt.response.json())

    def get_run(self, run_id: str) -> Run:
        """``GET /v1/runs/{id}``."""
        return Run.model_validate(self._send("GET", f"/v1/runs/{run_id}").response.json())

    def cancel_run(self, run_id: str) -> Run:
        """``DELETE /v1/runs/{id}``."""
        return Run.model_validate(self._send("DELETE", f"/v1/runs/{run_id}").response.json())

    def stream(self, team: str, operation: str, input: Mapping[str, Any] | BaseModel | None = None, /,
               **kwargs: Any) -> Stream:
        """``POST /v1/teams/{team}/{operation}`` as Server-Sent Events: iterate the returned :class:`Stream`.

        Fields as keywords or one mapping/model (wire names), plus the per-call options
        (``idempotency_key=``, ``session_id=``, ``timeout=``, ``max_retries=``, ``extra_headers=``).
        Retries apply until the stream starts; an ``error`` event raises its typed error.
        """
        options = RequestOptions.pop_from(kwargs)
        body = build_body(input, kwargs)
        attempt = self._send("POST", f"/v1/teams/{team}/{operation}", json=body, headers=SSE_HEADERS,
                             options=options, stream=True)
        return Stream(attempt.response, attempt)

    def stream_run(self, task: str, *, teams: Sequence[str] | None = None, max_usd: float | None = None,
                   deadline_s: float | None = None, idempotency_key: str | None = None,
                   session_id: str | None = None) -> Stream:
        """``POST /v1/runs`` as Server-Sent Events: every step's events, then ``done`` with the run."""
        attempt = self._send("POST", "/v1/runs", json=_run_body(task, teams, max_usd, deadline_s),
                             headers=SSE_HEADERS, stream=True,
                             options=RequestOptions(idempotency_key=idempotency_key, session_id=session_id))
        return Stream(attempt.response, attempt)

    def request(self, method: str, path: str, *, json: Any = None, content: bytes | str | None = None,
                params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                idempotency_key: str | None = None, timeout: float | None = None,
                max_retries: int | None = None) -> httpx.Response:
        """Any request, with the client's auth, retries and typed errors; returns the 2xx response."""
        options = RequestOptions(idempotency_key=idempotency_key, timeout=timeout, max_retries=max_retries)
        return self._send(method.upper(), path, json=json, content=content, params=params, headers=headers,
                          options=options).response

    def _send(self, method: str, path: str, *, json: Any = None, content: bytes | str | None = None,
              params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
              options: RequestOptions | None = None, stream: bool = False) -> Attempt:
        options = options or RequestOptions()
        all_headers = self._headers(method, options, headers)
        request = self._http.build_request(method, self.api_url + path, json=json, content=content, params=params,
                                           headers=all_headers, timeout=self._timeout(options))
        max_retries = self._max_retries(options)
        retries = 0
        while True:
            try:
                response = self._http.send(request, stream=stream)
            except httpx.HTTPError as exc:
                if retries >= max_retries:
                    raise self._connection_error(exc, request) from exc
                time.sleep(retry_delay(self.retry_policy, retries, None))
                retries += 1
                continue
            if response.status_code >= 400 and retries < max_retries and should_retry(response):
                response.read()
                response.close()
                time.sleep(retry_delay(self.retry_policy, retries, response))
                retries += 1
                continue
            if response.status_code >= 400 or not stream:
                response.read()
                response.close()
            self._raise_for(response)
            return Attempt(response, retries, all_headers.get("idempotency-key"))

    def close(self) -> None:
        """Close the HTTP connections (when the client made them)."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> MultiAgentFramework:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMultiAgentFramework(BaseClient):
    """The asynchronous client: the same surface as :class:`MultiAgentFramework`, awaited."""

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(api_url=api_url, api_key=api_key, timeout=timeout, max_retries=max_retries,
                         retry_policy=retry_policy, default_headers=default_headers)
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self.timeout)

    @cached_property
    def teams(self) -> AsyncTeams:
        """Every team: ``framework.teams.marketing``, ``framework.teams["customer-service"]``, ``.list()``."""
        return AsyncTeams(self)

    async def usage(self) -> UsageReport:
        """``GET /v1/usage``: the calling tenant's spend and limits."""
        return UsageReport.model_validate((await self._send("GET", "/v1/usage")).response.json())

    async def audit(self, *, limit: int | None = None, before: str | None = None) -> AuditPage:
        """``GET /v1/audit``: the calling tenant's audit events, newest first."""
        params = {k: v for k, v in (("limit", limit), ("before", before)) if v is not None}
        return AuditPage.model_validate((await self._send("GET", "/v1/audit", params=params)).response.json())

    async def create_run(self, task: str, *, teams: Sequence[str] | None = None, max_usd: float | None = None,
                         deadline_s: float | None = None, idempotency_key: str | None = None) -> Run:
        """``POST /v1/runs``: an orchestrated multi-team run (waits for its answer)."""
        body = _run_body(task, teams, max_usd, deadline_s)
        attempt = await self._send("POST", "/v1/runs", json=body,
                                   options=RequestOptions(idempotency_key=idempotency_key))
        return Run.model_validate(attempt.response.json())

    async def get_run(self, run_id: str) -> Run:
        """``GET /v1/runs/{id}``."""
        return Run.model_validate((await self._send("GET", f"/v1/runs/{run_id}")).response.json())

    async def cancel_run(self, run_id: str) -> Run:
        """``DELETE /v1/runs/{id}``."""
        return Run.model_validate((await self._send("DELETE", f"/v1/runs/{run_id}")).response.json())

    def stream(self, team: str, operation: str, input: Mapping[str, Any] | BaseModel | None = None, /,
               **kwargs: Any) -> AsyncStream:
        """``POST /v1/teams/{team}/{operation}`` as Server-Sent Events: ``async for event in ...``.

        The request is sent when iteration (or ``async with``) starts; otherwise as
        :meth:`MultiAgentFramework.stream`.
        """
        options = RequestOptions.pop_from(kwargs)
        body = build_body(input, kwargs)

        async def connect() -> tuple[httpx.Response, Attempt]:
            attempt = await self._send("POST", f"/v1/teams/{team}/{operation}", json=body, headers=SSE_HEADERS,
                                       options=options, stream=True)
            return attempt.response, attempt

        return AsyncStream(connect)

    def stream_run(self, task: str, *, teams: Sequence[str] | None = None, max_usd: float | None = None,
                   deadline_s: float | None = None, idempotency_key: str | None = None,
                   session_id: str | None = None) -> AsyncStream:
        """``POST /v1/runs`` as Server-Sent Events (sent when iteration starts)."""
        body = _run_body(task, teams, max_usd, deadline_s)
        options = RequestOptions(idempotency_key=idempotency_key, session_id=session_id)

        async def connect() -> tuple[httpx.Response, Attempt]:
            attempt = await self._send("POST", "/v1/runs", json=body, headers=SSE_HEADERS, options=options,
                                       stream=True)
            return attempt.response, attempt

        return AsyncStream(connect)

    async def request(self, method: str, path: str, *, json: Any = None, content: bytes | str | None = None,
                      params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                      idempotency_key: str | None = None, timeout: float | None = None,
                      max_retries: int | None = None) -> httpx.Response:
        """Any request, with the client's auth, retries and typed errors; returns the 2xx response."""
        options = RequestOptions(idempotency_key=idempotency_key, timeout=timeout, max_retries=max_retries)
        attempt = await self._send(method.upper(), path, json=json, content=content, params=params,
                                   headers=headers, options=options)
        return attempt.response

    async def _send(self, method: str, path: str, *, json: Any = None, content: bytes | str | None = None,
                    params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                    options: RequestOptions | None = None, stream: bool = False) -> Attempt:
        options = options or RequestOptions()
        all_headers = self._headers(method, options, headers)
        request = self._http.build_request(method, self.api_url + path, json=json, content=content, params=params,
                                           headers=all_headers, timeout=self._timeout(options))
        max_retries = self._max_retries(options)
        retries = 0
        while True:
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.HTTPError as exc:
                if retries >= max_retries:
                    raise self._connection_error(exc, request) from exc
                await asyncio.sleep(retry_delay(self.retry_policy, retries, None))
                retries += 1
                continue
            if response.status_code >= 400 and retries < max_retries and should_retry(response):
                await response.aread()
                await response.aclose()
                await asyncio.sleep(retry_delay(self.retry_policy, retries, response))
                retries += 1
                continue
            if response.status_code >= 400 or not stream:
                await response.aread()
                await response.aclose()
            self._raise_for(response)
            return Attempt(response, retries, all_headers.get("idempotency-key"))

    async def close(self) -> None:
        """Close the HTTP connections (when the client made them)."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncMultiAgentFramework:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
