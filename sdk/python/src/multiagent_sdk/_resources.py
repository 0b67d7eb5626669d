"""Team resources: the bases of the generated ``framework.teams.<team>.<operation>()`` classes.

A generated operation method calls :meth:`SyncTeam._invoke` (or the async twin) with the
operation name, the positional input (a model or a mapping) and the keyword arguments;
this module turns them into one request body, sends it, and parses the output into the
generated output type with its :class:`~multiagent_sdk._models.RawResponse` attached.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from ._base import Attempt, RequestOptions
from ._exceptions import APIResponseValidationError
from ._models import DynamicOutput, OutputModel, RawResponse, TeamInfo

if TYPE_CHECKING:
    from ._client import AsyncMultiAgentFramework, MultiAgentFramework
    from ._streaming import AsyncStream, Stream

OutputT = TypeVar("OutputT", bound=OutputModel)

__all__ = ["AsyncTeam", "AsyncTeamsBase", "SyncTeam", "SyncTeamsBase", "build_body", "parse_output"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def build_body(input: Any, kwargs: dict[str, Any], aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One JSON body from a positional model/mapping and keyword fields (keywords win)."""
    body: dict[str, Any] = {}
    if input is not None:
        if not isinstance(input, (BaseModel, Mapping)):
            raise TypeError(f"the input must be a model or a mapping, not {type(input).__name__}")
        body.update(_jsonable(input))
    for name, value in kwargs.items():
        body[(aliases or {}).get(name, name)] = _jsonable(value)
    return body


def parse_output(attempt: Attempt, output_type: type[OutputT]) -> OutputT:
    """The typed output of a 200 answer, with ``.raw`` attached."""
    response = attempt.response
    try:
        body = response.json()
    except ValueError as exc:
        raise APIResponseValidationError("the answer is not JSON", response=response, body=response.text) from exc
    if not isinstance(body, dict) or "output" not in body:
        raise APIResponseValidationError("the answer has no `output` member", response=response, body=body)
    try:
        output = output_type.model_validate(body["output"])
    except PydanticValidationError as exc:
        raise APIResponseValidationError(
            f"the output does not match {output_type.__name__}: {exc}", response=response, body=body) from exc
    output._raw = RawResponse(status_code=response.status_code, headers=response.headers, body=body,
                              retries=attempt.retries, idempotency_key=attempt.idempotency_key)
    return output


def _path(team: str, operation: str) -> str:
    return f"/v1/teams/{team}/{operation}"


class SyncTeam:
    """One team of a :class:`~multiagent_sdk.MultiAgentFramework`."""

    name: str = ""

    def __init__(self, client: MultiAgentFramework, name: str | None = None) -> None:
        self._client = client
        if name is not None:
            self.name = name

    def _invoke(self, operation: str, input: Any, kwargs: dict[str, Any], output_type: type[OutputT],
                aliases: Mapping[str, str] | None = None) -> OutputT:
        options = RequestOptions.pop_from(kwargs)
        body = build_body(input, kwargs, aliases)
        attempt = self._client._send("POST", _path(self.name, operation), json=body, options=options)
        return parse_output(attempt, output_type)

    def call(self, operation: str, input: Mapping[str, Any] | BaseModel | None = None, /,
             **kwargs: Any) -> DynamicOutput:
        """Call an operation by name (fields as keywords or one mapping); the output is untyped."""
        return self._invoke(operation, input, dict(kwargs), DynamicOutput)

    def stream(self, operation: str, input: Mapping[str, Any] | BaseModel | None = None, /,
               **kwargs: Any) -> Stream:
        """The operation's Server-Sent Events (see :meth:`MultiAgentFramework.stream`)."""
        return self._client.stream(self.name, operation, input, **kwargs)

    def describe(self) -> TeamInfo:
        """``GET /v1/teams/{team}``: the team's operations and their JSON Schemas."""
        return self._client.teams.retrieve(self.name)

    def __repr__(self) -> str:
        return f"<team {self.name}>"


class AsyncTeam:
    """One team of an :class:`~multiagent_sdk.AsyncMultiAgentFramework`."""

    name: str = ""

    def __init__(self, client: AsyncMultiAgentFramework, name: str | None = None) -> None:
        self._client = client
        if name is not None:
            self.name = name

    async def _invoke(self, operation: str, input: Any, kwargs: dict[str, Any], output_type: type[OutputT],
                      aliases: Mapping[str, str] | None = None) -> OutputT:
        options = RequestOptions.pop_from(kwargs)
        body = build_body(input, kwargs, aliases)
        attempt = await self._client._send("POST", _path(self.name, operation), json=body, options=options)
        return parse_output(attempt, output_type)

    async def call(self, operation: str, input: Mapping[str, Any] | BaseModel | None = None, /,
                   **kwargs: Any) -> DynamicOutput:
        """Call an operation by name (fields as keywords or one mapping); the output is untyped."""
        return await self._invoke(operation, input, dict(kwargs), DynamicOutput)

    def stream(self, operation: str, input: Mapping[str, Any] | BaseModel | None = None, /,
               **kwargs: Any) -> AsyncStream:
        """The operation's Server-Sent Events, ``async for event in team.stream(...)``."""
        return self._client.stream(self.name, operation, input, **kwargs)

    async def describe(self) -> TeamInfo:
        """``GET /v1/teams/{team}``: the team's operations and their JSON Schemas."""
        return await self._client.teams.retrieve(self.name)

    def __repr__(self) -> str:
        return f"<async team {self.name}>"


def _teams(response: httpx.Response) -> list[TeamInfo]:
    return [TeamInfo.model_validate(t) for t in response.json().get("teams", [])]


class SyncTeamsBase:
    """``framework.teams``: one attribute per team (generated), plus :meth:`list` and lookup by name."""

    def __init__(self, client: MultiAgentFramework) -> None:
        self._client = client

    def list(self) -> builtins.list[TeamInfo]:
        """``GET /v1/teams``: every team with its operations."""
        return _teams(self._client._send("GET", "/v1/teams").response)

    def retrieve(self, name: str) -> TeamInfo:
        """``GET /v1/teams/{team}``."""
        return TeamInfo.model_validate(self._client._send("GET", f"/v1/teams/{name}").response.json())

    def __getitem__(self, name: str) -> SyncTeam:
        """The team called ``name`` (``teams["customer-service"]``); typed when the SDK knows it."""
        attr = name.replace("-", "_")
        known = getattr(type(self), attr, None)
        if known is not None and not callable(known):
            team: SyncTeam = getattr(self, attr)
            return team
        return SyncTeam(self._client, name)


class AsyncTeamsBase:
    """``framework.teams`` of the async client."""

    def __init__(self, client: AsyncMultiAgentFramework) -> None:
        self._client = client

    async def list(self) -> builtins.list[TeamInfo]:
        """``GET /v1/teams``: every team with its operations."""
        return _teams((await self._client._send("GET", "/v1/teams")).response)

    async def retrieve(self, name: str) -> TeamInfo:
        """``GET /v1/teams/{team}``."""
        return TeamInfo.model_validate((await self._client._send("GET", f"/v1/teams/{name}")).response.json())

    def __getitem__(self, name: str) -> AsyncTeam:
        """The team called ``name``; typed when the SDK knows it."""
        attr = name.replace("-", "_")
        known = getattr(type(self), attr, None)
        if known is not None and not callable(known):
            team: AsyncTeam = getattr(self, attr)
            return team
        return AsyncTeam(self._client, name)
