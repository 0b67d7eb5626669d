"""Every error the SDK raises, under one root.

    MultiAgentError
    ├── APIConnectionError               the server could not be reached (retried)
    │   └── APITimeoutError              no answer within the timeout (retried)
    ├── APIResponseValidationError       a 200 whose output does not match the generated types
    └── APIError                         the server answered with a problem (RFC 9457)
        ├── BadRequestError              400
        │   └── InvalidJSON              400 invalid-json
        ├── AuthenticationError          401 unauthenticated
        ├── BudgetExceeded               402 budget-exceeded     (.reset_at, .limit_usd, .spent_usd, .window)
        ├── PermissionDeniedError        403 forbidden
        ├── NotFoundError                404 not-found
        ├── ConflictError                409 conflict            (retried)
        ├── PayloadTooLarge              413 payload-too-large   (.limit_bytes)
        ├── ValidationError              422 validation-error    (.errors)
        ├── RateLimited                  429 rate-limited        (.retry_after, .limit; retried)
        └── InternalServerError          5xx
            ├── ModelError               502 model-error
            ├── ServiceUnavailable       503 unavailable         (.retry_after; retried)
            └── GatewayTimeout           504 timeout

Every :class:`APIError` carries ``status_code``, ``request_id``, ``type``, ``title``,
``detail``, the whole ``problem`` body, the response ``headers`` and the ``response``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceeded",
    "ConflictError",
    "GatewayTimeout",
    "InternalServerError",
    "InvalidJSON",
    "ModelError",
    "MultiAgentError",
    "NotFoundError",
    "PayloadTooLarge",
    "PermissionDeniedError",
    "RateLimited",
    "ServiceUnavailable",
    "ValidationError",
]


class MultiAgentError(Exception):
    """Root of every error this SDK raises."""


class APIConnectionError(MultiAgentError):
    """The request never got an answer (connection refused, reset, DNS...)."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """No answer within the configured timeout."""


class APIResponseValidationError(MultiAgentError):
    """The server answered 200 but the body does not match the SDK's types (version skew?)."""

    def __init__(self, message: str, *, response: httpx.Response, body: Any) -> None:
        super().__init__(message)
        self.response = response
        self.body = body


def _retry_after_s(headers: httpx.Headers, problem: dict[str, Any]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw:
            try:
                return float(raw) * scale
            except ValueError:
                pass
    value = problem.get("retry_after_s")
    return float(value) if isinstance(value, (int, float)) else None


class APIError(MultiAgentError):
    """The server answered with an error status and a problem+json body."""

    status_code: int = 0

    def __init__(self, response: httpx.Response, problem: dict[str, Any]) -> None:
        self.response = response
        self.problem = problem
        self.status_code = response.status_code
        self.headers = response.headers
        self.request_id: str | None = problem.get("request_id") or response.headers.get("x-request-id")
        self.type: str = str(problem.get("type") or "about:blank")
        self.title: str = str(problem.get("title") or response.reason_phrase or "error")
        self.detail: str = str(problem.get("detail") or "")
        message = f"{self.status_code} {self.title}"
        if self.detail:
            message += f": {self.detail}"
        if self.request_id:
            message += f" (request id {self.request_id})"
        super().__init__(message)

    @property
    def slug(self) -> str:
        """The problem type's last segment, e.g. ``budget-exceeded``."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


class BadRequestError(APIError):
    """400."""


class InvalidJSON(BadRequestError):
    """400 ``invalid-json``: the body was not JSON."""


class AuthenticationError(APIError):
    """401 ``unauthenticated``: no key, an unknown key or a revoked key."""


class BudgetExceeded(APIError):
    """402 ``budget-exceeded``: the call could cost more than what is left. Never retried."""

    def __init__(self, response: httpx.Response, problem: dict[str, Any]) -> None:
        super().__init__(response, problem)
        self.limit_usd: float | None = problem.get("limit_usd")
        self.spent_usd: float | None = problem.get("spent_usd")
        self.window: str | None = problem.get("window")
        self.reset_at: datetime | None = None
        raw = problem.get("reset_at")
        if isinstance(raw, str):
            try:
                self.reset_at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                pass


class PermissionDeniedError(APIError):
    """403 ``forbidden``: tenant disabled, team not allowed, or a bad team-to-team envelope."""


class NotFoundError(APIError):
    """404 ``not-found``: unknown team, operation or path."""


class ConflictError(APIError):
    """409 ``conflict``: e.g. a call with the same Idempotency-Key is still running."""


class PayloadTooLarge(APIError):
    """413 ``payload-too-large``."""

    def __init__(self, response: httpx.Response, problem: dict[str, Any]) -> None:
        super().__init__(response, problem)
        self.limit_bytes: int | None = problem.get("limit_bytes")


class ValidationError(APIError):
    """422 ``validation-error``: the input does not match the operation's schema."""

    def __init__(self, response: httpx.Response, problem: dict[str, Any]) -> None:
        super().__init__(response, problem)
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])


class RateLimited(APIError):
    """429 ``rate-limited``: wait :attr:`retry_after` seconds."""

    def __init__(self, response: httpx.Response, problem: dict[str, Any]) -> None:
        super().__init__(response, problem)
        self.retry_after: float | None = _retry_after_s(response.headers, problem)
        self.limit: str | None = problem.get("limit")


class InternalServerError(APIError):
    """5xx."""


class ModelError(InternalServerError):
    """502 ``model-error``: the model failed or never produced valid output."""


class ServiceUnavailable(InternalServerError):
    """503 ``unavailable``: a dependency is unreachable; wait :attr:`retry_after` seconds."""

    def __init__(self, response: httpx.Response, problem: dict[str, Any]) -> None:
        super().__init__(response, problem)
        self.retry_after: float | None = _retry_after_s(response.headers, problem)


class GatewayTimeout(InternalServerError):
    """504 ``timeout``: the operation ran past its deadline."""


BY_SLUG: dict[str, type[APIError]] = {
    "invalid-json": InvalidJSON,
    "unauthenticated": AuthenticationError,
    "budget-exceeded": BudgetExceeded,
    "forbidden": PermissionDeniedError,
    "not-found": NotFoundError,
    "conflict": ConflictError,
    "payload-too-large": PayloadTooLarge,
    "validation-error": ValidationError,
    "rate-limited": RateLimited,
    "model-error": ModelError,
    "unavailable": ServiceUnavailable,
    "timeout": GatewayTimeout,
}

BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: BudgetExceeded,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    502: ModelError,
    503: ServiceUnavailable,
    504: GatewayTimeout,
}


def error_for(response: httpx.Response) -> APIError:
    """The typed error for an error response (problem type first, then status)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    problem: dict[str, Any] = body if isinstance(body, dict) else {"detail": (response.text or "")[:500]}
    slug = str(problem.get("type") or "").rstrip("/").rsplit("/", 1)[-1]
    cls = BY_SLUG.get(slug) or BY_STATUS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIError
    return cls(response, problem)
