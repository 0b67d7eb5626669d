"""Every error the SDK raises, under one root, shaped like the ``anthropic`` SDK's.

    MultiAgentError                          also: no API key / URL given to the client
    └── APIError                             every failure of a request (.message, .request, .body)
        ├── APIConnectionError               the server could not be reached (retried)
        │   └── APITimeoutError              no answer within the timeout (retried)
        ├── APIResponseValidationError       a 200 whose output does not match the generated types
        └── APIStatusError                   the server answered with a problem (RFC 9457), or a stream's
            │                                `error` event carried one
            ├── BadRequestError              400
            │   └── InvalidJSONError         400 invalid-json
            ├── AuthenticationError          401 unauthenticated
            ├── BudgetExceededError          402 budget-exceeded     (.reset_at, .limit_usd, .spent_usd, .window)
            ├── PermissionDeniedError        403 forbidden
            ├── NotFoundError                404 not-found
            ├── ConflictError                409 conflict            (retried)
            ├── PayloadTooLargeError         413 payload-too-large   (.limit_bytes)
            ├── ValidationError              422 validation-error    (.errors; the message names the fields)
            ├── RateLimitError               429 rate-limited        (.retry_after, .limit; retried)
            └── InternalServerError          5xx
                ├── ModelError               502 model-error
                ├── ServiceUnavailableError  503 unavailable         (.retry_after; retried)
                └── GatewayTimeoutError      504 timeout

Every :class:`APIStatusError` carries ``status_code``, ``request_id``, ``type``, ``title``,
``detail``, the whole ``problem`` body, the response ``headers`` and the ``response`` (``None``
for an error event of a stream). The names of 0.1 (``BudgetExceeded``, ``RateLimited``,
``ServiceUnavailable``, ``GatewayTimeout``, ``InvalidJSON``, ``PayloadTooLarge``) remain as
aliases of the same classes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceeded",
    "BudgetExceededError",
    "ConflictError",
    "GatewayTimeout",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidJSON",
    "InvalidJSONError",
    "ModelError",
    "MultiAgentError",
    "NotFoundError",
    "PayloadTooLarge",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimited",
    "ServiceUnavailable",
    "ServiceUnavailableError",
    "ValidationError",
    "error_for",
    "error_from_problem",
]


class MultiAgentError(Exception):
    """Root of every error this SDK raises."""


class APIError(MultiAgentError):
    """A request failed: no answer, an unusable answer or an error answer."""

    def __init__(self, message: str, *, request: httpx.Request | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body


class APIConnectionError(APIError):
    """The request never got an answer (connection refused, reset, DNS, a stream cut short...)."""

    def __init__(self, message: str = "connection error", *, request: httpx.Request | None = None) -> None:
        super().__init__(message, request=request)


class APITimeoutError(APIConnectionError):
    """No answer within the configured timeout."""


def _request_of(response: httpx.Response | None) -> httpx.Request | None:
    if response is None:
        return None
    try:
        return response.request
    except RuntimeError:  # a Response built by hand has no request
        return None


class APIResponseValidationError(APIError):
    """The server answered 200 but the body does not match the SDK's types (version skew?)."""

    def __init__(self, message: str, *, response: httpx.Response, body: Any) -> None:
        super().__init__(message, request=_request_of(response), body=body)
        self.response = response
        self.status_code = response.status_code


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


class APIStatusError(APIError):
    """The server answered with an error status and a problem+json body (or a stream's ``error`` event did)."""

    status_code: int = 0

    def __init__(self, response: httpx.Response | None, problem: dict[str, Any], *,
                 status_code: int | None = None, headers: httpx.Headers | None = None) -> None:
        self.response = response
        self.problem = problem
        status = problem.get("status")
        self.status_code = (status_code if status_code is not None else response.status_code if response is not None
                            else status if isinstance(status, int) else 0)
        self.headers = headers if headers is not None else response.headers if response is not None else httpx.Headers()
        self.request_id: str | None = problem.get("request_id") or self.headers.get("x-request-id")
        self.type: str = str(problem.get("type") or "about:blank")
        reason = response.reason_phrase if response is not None else ""
        self.title: str = str(problem.get("title") or reason or "error")
        self.detail: str = str(problem.get("detail") or "")
        self._read(problem)
        message = f"{self.status_code} {self.title}"
        if self.detail:
            message += f": {self.detail}"
        message += self._details()
        if self.request_id:
            message += f" (request id {self.request_id})"
        super().__init__(message, request=_request_of(response), body=problem)

    def _read(self, problem: dict[str, Any]) -> None:
        """Read the fields of this kind of error from the problem (``headers`` is set by then)."""

    def _details(self) -> str:
        """More of the problem for the message (the fields of a validation error)."""
        return ""

    @property
    def slug(self) -> str:
        """The problem type's last segment, e.g. ``budget-exceeded``."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


class BadRequestError(APIStatusError):
    """400."""


class InvalidJSONError(BadRequestError):
    """400 ``invalid-json``: the body was not JSON."""


class AuthenticationError(APIStatusError):
    """401 ``unauthenticated``: no key, an unknown key or a revoked key."""


class BudgetExceededError(APIStatusError):
    """402 ``budget-exceeded``: the call could cost more than what is left. Never retried."""

    limit_usd: float | None
    spent_usd: float | None
    window: str | None
    reset_at: datetime | None

    def _read(self, problem: dict[str, Any]) -> None:
        self.limit_usd = problem.get("limit_usd")
        self.spent_usd = problem.get("spent_usd")
        self.window = problem.get("window")
        self.reset_at = None
        raw = problem.get("reset_at")
        if isinstance(raw, str):
            try:
                self.reset_at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                pass


class PermissionDeniedError(APIStatusError):
    """403 ``forbidden``: tenant disabled, team not allowed, or a bad team-to-team envelope."""


class NotFoundError(APIStatusError):
    """404 ``not-found``: unknown team, operation or path."""


class ConflictError(APIStatusError):
    """409 ``conflict``: e.g. a call with the same Idempotency-Key is still running."""


class PayloadTooLargeError(APIStatusError):
    """413 ``payload-too-large``."""

    limit_bytes: int | None

    def _read(self, problem: dict[str, Any]) -> None:
        self.limit_bytes = problem.get("limit_bytes")


class ValidationError(APIStatusError):
    """422 ``validation-error``: the input does not match the operation's schema.

    :attr:`errors` is the server's list of ``{"loc", "msg"}``; the message names each field
    (``body.amount: Input should be greater than 0``).
    """

    errors: list[dict[str, Any]]

    def _read(self, problem: dict[str, Any]) -> None:
        raw = problem.get("errors")
        self.errors = [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []

    def _details(self) -> str:
        return describe_field_errors(self.errors)


def describe_field_errors(errors: list[dict[str, Any]], limit: int = 8) -> str:
    """`` [body.amount: Input should be greater than 0; ...]`` (empty without errors)."""
    parts = []
    for error in errors[:limit]:
        loc = error.get("loc")
        where = ".".join(str(p) for p in loc) if isinstance(loc, (list, tuple)) and loc else "body"
        parts.append(f"{where}: {error.get('msg') or 'invalid'}")
    if len(errors) > limit:
        parts.append(f"... {len(errors) - limit} more")
    return f" [{'; '.join(parts)}]" if parts else ""


class RateLimitError(APIStatusError):
    """429 ``rate-limited``: wait :attr:`retry_after` seconds."""

    retry_after: float | None
    limit: str | None

    def _read(self, problem: dict[str, Any]) -> None:
        self.retry_after = _retry_after_s(self.headers, problem)
        self.limit = problem.get("limit")


class InternalServerError(APIStatusError):
    """5xx."""


class ModelError(InternalServerError):
    """502 ``model-error``: the model failed or never produced valid output."""


class ServiceUnavailableError(InternalServerError):
    """503 ``unavailable``: a dependency is unreachable; wait :attr:`retry_after` seconds."""

    retry_after: float | None

    def _read(self, problem: dict[str, Any]) -> None:
        self.retry_after = _retry_after_s(self.headers, problem)


class GatewayTimeoutError(InternalServerError):
    """504 ``timeout``: the operation ran past its deadline."""


# the names of 0.1, kept as aliases of the same classes
InvalidJSON = InvalidJSONError
BudgetExceeded = BudgetExceededError
PayloadTooLarge = PayloadTooLargeError
RateLimited = RateLimitError
ServiceUnavailable = ServiceUnavailableError
GatewayTimeout = GatewayTimeoutError

BY_SLUG: dict[str, type[APIStatusError]] = {
    "invalid-json": InvalidJSONError,
    "unauthenticated": AuthenticationError,
    "budget-exceeded": BudgetExceededError,
    "forbidden": PermissionDeniedError,
    "not-found": NotFoundError,
    "conflict": ConflictError,
    "payload-too-large": PayloadTooLargeError,
    "validation-error": ValidationError,
    "rate-limited": RateLimitError,
    "model-error": ModelError,
    "unavailable": ServiceUnavailableError,
    "timeout": GatewayTimeoutError,
}

BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: BudgetExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
    502: ModelError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def error_from_problem(problem: dict[str, Any], *, status_code: int | None = None,
                       response: httpx.Response | None = None,
                       headers: httpx.Headers | None = None) -> APIStatusError:
    """The typed error for a problem body (problem type first, then status)."""
    if status_code is None:
        status = problem.get("status")
        status_code = response.status_code if response is not None else status if isinstance(status, int) else 0
    slug = str(problem.get("type") or "").rstrip("/").rsplit("/", 1)[-1]
    cls = BY_SLUG.get(slug) or BY_STATUS.get(status_code)
    if cls is None:
        cls = InternalServerError if status_code >= 500 else APIStatusError
    return cls(response, problem, status_code=status_code, headers=headers)


def error_for(response: httpx.Response) -> APIStatusError:
    """The typed error for an error response (problem type first, then status)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    problem: dict[str, Any] = body if isinstance(body, dict) else {"detail": (response.text or "")[:500]}
    return error_from_problem(problem, status_code=response.status_code, response=response)
