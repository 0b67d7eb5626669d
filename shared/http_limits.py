"""What a client can make a server hold before the app runs: the request head, the number
of requests in flight, and whose ``X-Forwarded-*`` headers are believed.

Every entry point that opens a socket (``multiagent serve``, the container's
``functions.container`` and the functions-framework target) serves through
:func:`server_options` and :func:`guard`:

- The server's HTTP parser is bounded. uvicorn's default (httptools/llhttp) has no limit on
  a request head: one 100 MiB header was buffered whole (quadratically, 14 s) before the app
  was called, and 40 of 20 MiB took ~1 GB. :class:`BoundedHttpTools` counts the bytes of a
  head as they arrive and, past ``max_header_bytes``, answers a bare 431 problem+json and
  closes the connection: the parser never holds more than the limit plus one socket read.
  Without httptools, uvicorn's h11 parser is used with the same bound
  (``h11_max_incomplete_event_size``; it answers a bare 400).
- Past ``max_concurrency`` requests (or connections) in one process, a request is answered
  503 ``unavailable`` with ``Retry-After`` before the app sees it (uvicorn's
  ``limit_concurrency`` rule, with the contract's problem+json instead of plain text).
- :func:`guard`, the outermost ASGI layer, refuses a head with too many headers or one header
  over ``max_header_field_bytes`` with 431 problem+json (and the total again, for servers whose
  parser we do not choose). When a response is sent before the request body was read to its
  end (a 413), it adds ``Connection: close`` so the server stops reading the rest instead of
  draining it.
- ``X-Forwarded-For``/``-Proto`` are applied only from ``MULTIAGENT_TRUSTED_PROXIES``; by
  default from no one (``serve``), or, on Cloud Run (``K_SERVICE`` set), from the platform's
  front end, which reaches the container from a link-local address (169.254.0.0/16) no client
  can use. uvicorn takes the right-most untrusted ``X-Forwarded-For`` entry: the one Google's
  front end appended, never a value the client wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError, HeaderFieldsTooLarge, Unavailable, UriTooLong
from shared.store.base import new_id

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from shared.config import Settings

log = logging.getLogger("multiagent.http")

# Cloud Run's front end connects from a link-local address (169.254.8.129 on the first
# generation); link-local is not routable, so only the platform can be that peer.
CLOUD_RUN_FRONT_END = ("169.254.0.0/16",)

HEADERS_TOO_LARGE = (HeaderFieldsTooLarge.status, HeaderFieldsTooLarge.slug, HeaderFieldsTooLarge.title)
URI_TOO_LONG = (UriTooLong.status, UriTooLong.slug, UriTooLong.title)
UNAVAILABLE = (Unavailable.status, Unavailable.slug, Unavailable.title)
_REASONS = {413: b"Payload Too Large", 414: b"URI Too Long", 431: b"Request Header Fields Too Large",
            503: b"Service Unavailable"}


def parse_trusted_proxies(raw: str, name: str) -> tuple[str, ...]:
    """``a.b.c.d, net/len, ...``, ``*`` (any peer) or ``none`` as a tuple; a bad entry is a
    :class:`ConfigurationError` naming ``name``."""
    import ipaddress

    items = [item.strip() for item in raw.split(",") if item.strip()]
    if [i.lower() for i in items] == ["none"]:
        return ()
    if items == ["*"]:
        return ("*",)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigurationError(
                f"{name}={raw!r}: {item!r} is not an IP address or network (a.b.c.d, a.b.c.0/24), "
                "'*' or 'none'") from None
    return tuple(items)


@dataclass(frozen=True)
class HeadLimits:
    """The limits on one request head and on the requests in flight."""

    head_bytes: int = 32 * 1024
    field_bytes: int = 8 * 1024
    fields: int = 100
    concurrency: int = 256

    @classmethod
    def of(cls, settings: Settings) -> HeadLimits:
        return cls(head_bytes=settings.max_header_bytes, field_bytes=settings.max_header_field_bytes,
                   fields=settings.max_headers, concurrency=settings.max_concurrency)


def trusted_proxies(settings: Settings, *, platform: bool) -> tuple[str, ...]:
    """The peers whose forwarded headers are believed: ``MULTIAGENT_TRUSTED_PROXIES`` when
    set; else, for a ``platform`` entry on Cloud Run, its front end; else none."""
    if settings.trusted_proxies is not None:
        return settings.trusted_proxies
    if platform and os.environ.get("K_SERVICE"):
        return CLOUD_RUN_FRONT_END
    return ()


def server_options(settings: Settings, *, platform: bool) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments that enforce the limits before the app runs."""
    limits = HeadLimits.of(settings)
    proxies = trusted_proxies(settings, platform=platform)
    options: dict[str, Any] = {"proxy_headers": bool(proxies), "forwarded_allow_ips": list(proxies) or None,
                               "limit_concurrency": limits.concurrency,
                               "h11_max_incomplete_event_size": limits.head_bytes}
    bounded = bounded_httptools(limits)
    options["http"] = bounded if bounded is not None else "h11"
    return options


# -- the raw refusal (no app, no request object) -------------------------------------------
def problem_body(status: int, slug: str, title: str, detail: str, request_id: str, **extra: Any) -> bytes:
    return json.dumps({"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail,
                       **extra, "request_id": request_id}).encode()


def _refusal_bytes(status: int, slug: str, title: str, detail: str, **extra: Any) -> bytes:
    request_id = new_id("req")
    body = problem_body(status, slug, title, detail, request_id, **extra)
    head = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Error")),
            b"content-type: application/problem+json", b"content-length: %d" % len(body),
            b"connection: close", b"x-request-id: " + request_id.encode()]
    if status == 503:
        head += [b"retry-after: 1", b"x-should-retry: true"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the refusal is already decided."""


def bounded_httptools(limits: HeadLimits) -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol with the head and concurrency limits (None without httptools)."""
    try:
        import httptools
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        return None

    class BoundedHttpTools(HttpToolsProtocol):
        """Counts a head's bytes as they arrive; refuses it past the limit before the
        parser (which keeps an unfinished header in memory) holds more than one read more."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.limit_concurrency = None  # checked in on_headers_complete, answered as problem+json
            self._in_head = True
            self._head_bytes = 0
            self._refusal: bytes | None = None

        def _refuse(self, status: int, slug: str, title: str, detail: str, **extra: Any) -> None:
            self._refusal = _refusal_bytes(status, slug, title, detail, **extra)
            log.warning("request refused", extra={"fields": {
                "status": status, "detail": detail, "client": self.client[0] if self.client else None}})

        def _send_refusal(self) -> None:
            assert self._refusal is not None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(self._refusal)
            # else a pipelined request's answer is being written: just close, never interleave
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._refusal is not None:  # refused, closing: read nothing more
                return
            if self._in_head:
                self._head_bytes += len(data)
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
            except httptools.HttpParserError:
                if self._refusal is not None:
                    self._send_refusal()
                    return
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
                return
            if self._in_head and self._head_bytes > limits.head_bytes:
                self._refuse_head(getattr(self, "url", b""))
                self._send_refusal()

        def _refuse_head(self, url: bytes) -> None:
            if len(url) > limits.head_bytes:
                self._refuse(*URI_TOO_LONG, f"the request target is over the {limits.head_bytes}-byte limit",
                             limit_bytes=limits.head_bytes)
            else:
                self._refuse(*HEADERS_TOO_LARGE, f"the request head is over the {limits.head_bytes}-byte limit",
                             limit_bytes=limits.head_bytes)

        def on_headers_complete(self) -> None:
            # A whole head can arrive in one read: measure it exactly before anything runs.
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > limits.head_bytes:
                self._refuse_head(self.url)
                raise _Refused
            if len(self.connections) > limits.concurrency or len(self.tasks) >= limits.concurrency:
                self._refuse(*UNAVAILABLE, f"this instance is serving its limit of {limits.concurrency} requests; "
                             "retry shortly", retry_after_s=1)
                raise _Refused
            self._in_head, self._head_bytes = False, 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes = True, 0

    return BoundedHttpTools


# -- the ASGI layer --------------------------------------------------------------------------
class HeadGuard:
    """Outermost ASGI layer: 431 for too many headers or one too large; ``Connection:
    close`` on a 413 sent before the body was read to its end."""

    def __init__(self, app: ASGIApp, limits: HeadLimits) -> None:
        self.app, self.limits = app, limits

    def _over(self, scope: Scope) -> str | None:
        headers = scope.get("headers") or []
        limits = self.limits
        if len(headers) > limits.fields:
            return f"the request has {len(headers)} headers; the limit is {limits.fields}"
        total = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        for name, value in headers:
            size = len(name) + len(value)
            if size > limits.field_bytes:
                return (f"the {name.decode('latin-1')[:64]!r} header is {size} bytes; "
                        f"the limit is {limits.field_bytes}")
            total += size + 4
        if total > limits.head_bytes:
            return f"the request head is over the {limits.head_bytes}-byte limit"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = self._over(scope)
        if detail is not None:
            await self._refuse(scope, send, detail)
            return
        body_done = False

        async def receive_counted() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 413 and not body_done:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive_counted, send_closing)

    async def _refuse(self, scope: Scope, send: Send, detail: str) -> None:
        status, slug, title = HEADERS_TOO_LARGE
        client = scope.get("client")
        log.warning("request refused", extra={"fields": {"status": status, "detail": detail,
                                                          "client": client[0] if client else None}})
        request_id = new_id("req")
        body = problem_body(status, slug, title, detail, request_id)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
                                (b"x-request-id", request_id.encode())]})
        await send({"type": "http.response.body", "body": body})


def guard(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind :class:`HeadGuard` with ``settings``' limits."""
    return HeadGuard(app, HeadLimits.of(settings))


def patch_gunicorn_worker(settings: Settings) -> None:
    """Give functions-framework's gunicorn ``UvicornWorker`` (forked from this master) the
    same parser, concurrency and proxy options as the other entry points: functions-framework
    starts it with uvicorn's defaults and no way to pass options."""
    try:
        from uvicorn_worker import UvicornWorker
    except ImportError:  # pragma: no cover - functions-framework brings it
        return
    UvicornWorker.CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, **server_options(settings, platform=True)}
