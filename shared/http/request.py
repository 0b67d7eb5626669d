"""Reading a request: its JSON body within the size limit, the caller's API key, tenant,
admin key or hop credential, and query parameters. Each is parsed once, here.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request

from shared.auth import key_from_headers
from shared.envelope import HEADER as ENVELOPE_HEADER
from shared.envelope import Envelope, verify
from shared.errors import (
    Forbidden,
    InvalidJSON,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from shared.observability.stats import MAX_HOURS
from shared.store.aio import in_thread
from shared.store.base import StoreUnavailable, Tenant

if TYPE_CHECKING:
    from shared.runtime import Runtime


class RawHeaders:
    """A request's headers for lookups by name: the first value of each, from one dict built
    per request (Starlette's ``headers.get`` scans the list, and raises and catches a
    ``KeyError`` for every absent header; an operation call asks for eight)."""

    def __init__(self, raw: Any) -> None:
        self._values: dict[bytes, bytes] = dict(reversed(raw))

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._values.get(name.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")


def headers_of(request: Request) -> RawHeaders:
    """The request's :class:`RawHeaders`, built once per request."""
    found: RawHeaders | None = request.scope.get("multiagent.headers")
    if found is None:
        found = request.scope["multiagent.headers"] = RawHeaders(request.scope.get("headers") or ())
    return found


def check_declared_length(request: Request, limit: int) -> None:
    """413 when the declared ``Content-Length`` is over ``limit`` (before anything is read)."""
    declared = headers_of(request).get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}", limit_bytes=limit)


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, enforcing the size limit before and while reading."""
    raw = await raw_body(request, limit)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        raise InvalidJSON(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, an integer of over 4,300 digits
        raise InvalidJSON(f"the body is not valid JSON: {str(exc)[:200]}") from None
    # Only a body with many brackets can be deep: the count is one C pass, the walk is rare.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth_over(body, MAX_JSON_DEPTH):
        raise InvalidJSON(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    return body


MAX_JSON_DEPTH = 64  # no operation input comes close; deeper only costs CPU and stack downstream


def json_depth_over(value: Any, limit: int) -> bool:
    """True when ``value`` nests more than ``limit`` arrays/objects deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def request_key(request: Request) -> str | None:
    """The API key the caller sent, if any."""
    headers = headers_of(request)
    return key_from_headers(headers.get("authorization"), headers.get("x-api-key"))


async def authenticate(runtime: Runtime, request: Request, key: str | None = None) -> Tenant:
    """The calling tenant (401/403 otherwise; 503 when the store is down). Kept on
    ``request.state`` for the audit batch (``shared.http.observability``)."""
    key = key or request_key(request)
    try:
        # a key seen in the last second needs no store read, so no thread either
        tenant = runtime.auth.cached_tenant(key)
        if tenant is None:
            tenant = await in_thread(runtime.auth.tenant_for, key)
    except StoreUnavailable as exc:
        raise Unavailable(f"cannot check the API key: the state store is unreachable ({exc})", retry_after_s=2) from exc
    request.state.tenant = tenant
    return tenant


def check_admin_key(runtime: Runtime, request: Request) -> None:
    """404 when the admin API is off, 401 without a key, 403 with another key."""
    expected = runtime.admin_key()
    if not expected:
        raise NotFound("the admin API is off; set MULTIAGENT_ADMIN_KEY to enable it")
    key = request_key(request)
    if not key:
        raise Unauthenticated("send the admin key as 'Authorization: Bearer KEY'")
    if not hmac.compare_digest(key.encode(), expected.encode()):
        raise Forbidden("that is not the admin key")


async def envelope_from(runtime: Runtime, request: Request, team: str | None,
                        operation: str | None = None) -> Envelope | None:
    """The verified envelope of an incoming call (None without one; 403 when refused).

    A call of ``team``/``operation`` needs a hop credential for exactly that team, that
    operation and the SHA-256 of the raw body received (read here, within the body limit,
    and kept for the handler), not past its ``exp``. Single use is claimed separately,
    where the operation runs (``OperationService.claim_hop``): a gateway relaying the hop to the team's
    function checks it too, and the function claims it. Without ``team`` (resuming a
    run) only an origin envelope is wanted."""
    token = headers_of(request).get(ENVELOPE_HEADER)
    if not token:
        return None
    keyring = await runtime.remote.keyring()
    if team is None:
        return verify(token, keyring, tenant_id=None, team=None)
    if operation is None:
        raise TypeError("an operation call's envelope is checked against its operation")
    body = await raw_body(request, runtime.settings.max_body_bytes)
    return verify(token, keyring, tenant_id=None, team=team, operation=operation, body=body)

async def raw_body(request: Request, limit: int) -> bytes:
    """The request's raw body (413 past ``max_body_bytes``), kept on the request so the
    handler reads the same bytes the hop credential was checked against."""
    cached: bytes | None = getattr(request, "_body", None)
    if cached is not None:
        return cached
    check_declared_length(request, limit)
    chunks, size = [], 0
    receive = request.receive  # the messages themselves: Request.stream() is an async generator, dearer per call
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the {limit}-byte limit", limit_bytes=limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    request._stream_consumed = True
    request._body = b"".join(chunks)  # Request.stream()/body() serve these bytes from now on
    return request._body


def hours_param(request: Request) -> float:
    raw = request.query_params.get("hours", "24")
    try:
        hours = float(raw)
    except ValueError:
        hours = -1
    if not 0 < hours <= MAX_HOURS:
        raise ValidationFailed(f"hours must be a number in (0, {MAX_HOURS}]",
                               errors=[{"loc": ["query", "hours"], "msg": f"not in (0, {MAX_HOURS}]"}])
    return hours


def limit_param(request: Request, default: int = 50) -> int:
    try:
        return max(1, min(200, int(request.query_params.get("limit", str(default)))))
    except ValueError:
        raise ValidationFailed("limit must be an integer",
                               errors=[{"loc": ["query", "limit"], "msg": "not an integer"}]) from None


def is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


__all__ = ["MAX_JSON_DEPTH", "RawHeaders", "authenticate", "check_admin_key", "check_declared_length", "envelope_from",
           "headers_of", "hours_param", "is_loopback",
           "json_depth_over", "limit_param", "raw_body", "read_json", "request_key"]
