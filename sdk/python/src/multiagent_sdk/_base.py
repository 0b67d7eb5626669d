"""The HTTP core shared by the sync and async clients: headers, retries, errors.

Retry rules (the Anthropic and OpenAI SDK conventions the server follows):

1. ``x-should-retry: true|false`` from the server decides when present;
2. 402 ``budget-exceeded`` is never retried (nothing changes before ``reset_at``);
3. otherwise connection errors, timeouts, 408, 409, 429 and 503 are retried. 500, 502 and
   504 are not: the model may already have been paid for, and the server says
   ``x-should-retry: true`` when a retry is safe;
4. the wait is ``retry-after-ms`` / ``Retry-After`` when the server sends one of at most
   ``max_retry_after`` seconds, else exponential backoff (``initial_retry_delay`` doubling,
   capped at ``max_retry_delay``) with up to 25 % jitter.

Every POST gets one ``Idempotency-Key`` per logical call, reused by its retries, so the
server charges a retried call once.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from ._exceptions import APIConnectionError, APIError, APITimeoutError, MultiAgentError, error_for
from ._version import __version__

API_URL_ENV = "MULTIAGENT_API_URL"
API_KEY_ENV = "MULTIAGENT_API_KEY"
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2
RETRYABLE_STATUS = frozenset({408, 409, 429, 503})
OPTION_NAMES = frozenset({"idempotency_key", "session_id", "timeout", "max_retries", "extra_headers"})


@dataclass(frozen=True)
class RetryPolicy:
    """How retries wait (see the module docstring)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_retry_delay: float = 0.5
    max_retry_delay: float = 8.0
    max_retry_after: float = 60.0


@dataclass
class RequestOptions:
    """Per-call options (keyword arguments of every operation method)."""

    idempotency_key: str | None = None
    session_id: str | None = None
    timeout: float | httpx.Timeout | None = None
    max_retries: int | None = None
    extra_headers: Mapping[str, str] | None = None

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> RequestOptions:
        """Take the option keywords out of an operation's keyword arguments."""
        return cls(**{name: kwargs.pop(name) for name in list(kwargs) if name in OPTION_NAMES})


@dataclass
class Attempt:
    """The outcome of one logical request: the final response and how many retries it took."""

    response: httpx.Response
    retries: int
    idempotency_key: str | None


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def should_retry(response: httpx.Response) -> bool:
    """Whether an error response may be retried (rules 1-3 of the module docstring)."""
    hint = response.headers.get("x-should-retry", "").lower()
    if hint == "true":
        return True
    if hint == "false" or response.status_code == 402:
        return False
    return response.status_code in RETRYABLE_STATUS


def retry_delay(policy: RetryPolicy, retries_taken: int, response: httpx.Response | None) -> float:
    """Seconds to wait before retry number ``retries_taken + 1`` (rule 4)."""
    if response is not None:
        hinted = parse_retry_after(response.headers)
        if hinted is not None and 0 <= hinted <= policy.max_retry_after:
            return hinted
    delay = min(policy.initial_retry_delay * (2.0**retries_taken), policy.max_retry_delay)
    return delay * (1 - 0.25 * random.random())


def resolve_api_url(api_url: str | None) -> str:
    """``api_url``, else ``MULTIAGENT_API_URL``; a clear error when neither gives an http(s) URL."""
    url = (api_url or os.environ.get(API_URL_ENV) or "").strip()
    if not url:
        raise MultiAgentError(f"no API URL: pass api_url=... to the client or set {API_URL_ENV} "
                              f"(e.g. {API_URL_ENV}=http://127.0.0.1:8080 for `multiagent serve`)")
    if not url.lower().startswith(("http://", "https://")):
        source = "api_url" if api_url else API_URL_ENV
        raise MultiAgentError(f"{source} must be an http:// or https:// URL, got {url!r}")
    return url.rstrip("/")


def resolve_api_key(api_key: str | None) -> str:
    """``api_key``, else ``MULTIAGENT_API_KEY``; a clear error when neither gives one."""
    key = (api_key or os.environ.get(API_KEY_ENV) or "").strip()
    if not key:
        raise MultiAgentError(f"no API key: pass api_key=... to the client or set {API_KEY_ENV} "
                              "(`multiagent tenants create NAME` prints one)")
    return key


class BaseClient:
    """Configuration and request building shared by both clients."""

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.api_url = resolve_api_url(api_url)
        self.api_key = resolve_api_key(api_key)
        if isinstance(timeout, (int, float)):
            timeout = httpx.Timeout(float(timeout), connect=min(10.0, float(timeout)))
        self.timeout: httpx.Timeout = timeout or DEFAULT_TIMEOUT
        policy = retry_policy or RetryPolicy()
        self.retry_policy = policy if max_retries is None else replace(policy, max_retries=max_retries)
        self.default_headers = dict(default_headers or {})

    def _headers(self, method: str, options: RequestOptions, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"accept": "application/json", "user-agent": f"multiagent-sdk-python/{__version__}",
                   **self.default_headers}
        headers["authorization"] = f"Bearer {self.api_key}"
        if method == "POST":
            headers["idempotency-key"] = options.idempotency_key or f"sdk_{uuid.uuid4().hex}"
        if options.session_id:
            headers["x-session-id"] = options.session_id
        headers.update(extra or {})
        headers.update(options.extra_headers or {})
        return headers

    def _timeout(self, options: RequestOptions) -> httpx.Timeout:
        if options.timeout is None:
            return self.timeout
        if isinstance(options.timeout, httpx.Timeout):
            return options.timeout
        return httpx.Timeout(float(options.timeout), connect=min(10.0, float(options.timeout)))

    def _max_retries(self, options: RequestOptions) -> int:
        return self.retry_policy.max_retries if options.max_retries is None else options.max_retries

    @staticmethod
    def _connection_error(exc: httpx.HTTPError, request: httpx.Request) -> APIConnectionError:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"no answer from {request.url} within the timeout", request=request)
        return APIConnectionError(f"cannot reach {request.url}: {exc}", request=request)

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise error_for(response)


__all__ = ["APIError", "Attempt", "BaseClient", "RequestOptions", "RetryPolicy", "parse_retry_after",
           "retry_delay", "should_retry"]
