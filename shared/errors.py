"""One exception tree, mapped to the problem types of the contract.

    MultiAgentError                      500 internal (never shown with a traceback)
    ├── ConfigurationError               start-up configuration is wrong (CLI: one line)
    ├── ToolFailure                      a tool refused; shown to the model as an is_error result
    ├── CLIError                         a mistake on the command line (one line on stderr)
    └── ProblemError                     has an HTTP status and a /problems/<slug> type
        ├── InvalidJSON                  400 invalid-json
        ├── Unauthenticated              401 unauthenticated
        ├── Forbidden                    403 forbidden
        ├── NotFound                     404 not-found
        ├── MethodNotAllowed             405 method-not-allowed  (Allow header)
        ├── Conflict                     409 conflict
        ├── PayloadTooLarge              413 payload-too-large   (limit_bytes)
        ├── UriTooLong                   414 uri-too-long        (limit_bytes)
        ├── HeaderFieldsTooLarge         431 request-header-fields-too-large
        ├── ValidationFailed             422 validation-error    (errors)
        ├── BudgetExceeded               402 budget-exceeded     (limit_usd, spent_usd, window, reset_at)
        ├── RateLimited                  429 rate-limited        (retry_after_s, limit)
        ├── ModelError                   502 model-error
        ├── Unavailable                  503 unavailable         (retry_after_s)
        └── Timeout                      504 timeout
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar


class MultiAgentError(Exception):
    """Root of every error this framework raises on purpose."""


class ConfigurationError(MultiAgentError):
    """The deployment is misconfigured; raised at start-up, printed as one line."""


class ToolFailure(MultiAgentError):
    """A tool refused or failed; the message goes back to the model as an is_error result."""


class CLIError(MultiAgentError):
    """A user mistake on the command line."""


class ProblemError(MultiAgentError):
    """An error with an RFC 9457 problem representation."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """Extra response headers this problem carries (retry hints)."""
        return {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem+json body."""
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class InvalidJSON(ProblemError):
    status, slug, title = 400, "invalid-json", "Request body is not valid JSON"


class Unauthenticated(ProblemError):
    status, slug, title = 401, "unauthenticated", "Missing or invalid API key"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ProblemError):
    """A known path asked with another method; ``Allow`` lists those it serves."""

    status, slug, title = 405, "method-not-allowed", "Method not allowed"

    def __init__(self, detail: str, allow: list[str] | None = None) -> None:
        super().__init__(detail)
        self.allow = allow or []

    def headers(self) -> dict[str, str]:
        allow = getattr(self, "allow", None)  # a problem rebuilt from a team's answer has none
        return {"allow": ", ".join(allow)} if allow else {}


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflicting concurrent update"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UriTooLong(ProblemError):
    """The request path is over ``MULTIAGENT_MAX_PATH_BYTES`` (``limit_bytes``)."""

    status, slug, title = 414, "uri-too-long", "Request URI too long"


class HeaderFieldsTooLarge(ProblemError):
    """The request head is over its limits (``shared/http_limits.py``)."""

    status, slug, title = 431, "request-header-fields-too-large", "Request header fields too large"


class ValidationFailed(ProblemError):
    status, slug, title = 422, "validation-error", "Input does not match the schema"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, errors=errors or [])


class BudgetExceeded(ProblemError):
    status, slug, title = 402, "budget-exceeded", "Budget exceeded"

    def headers(self) -> dict[str, str]:
        return {"x-should-retry": "false"}


class _Retryable(ProblemError):
    def __init__(self, detail: str, retry_after_s: float = 1.0, **extra: Any) -> None:
        retry = max(1, math.ceil(retry_after_s))
        super().__init__(detail, retry_after_s=retry, **extra)
        self.retry_after_s = retry

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after_s), "x-should-retry": "true"}


class RateLimited(_Retryable):
    status, slug, title = 429, "rate-limited", "Rate limit exceeded"


class ModelError(ProblemError):
    status, slug, title = 502, "model-error", "The model failed"


class Unavailable(_Retryable):
    status, slug, title = 503, "unavailable", "A dependency is unavailable"


class Timeout(ProblemError):
    status, slug, title = 504, "timeout", "The operation ran past its deadline"


PROBLEM_TYPES: tuple[type[ProblemError], ...] = (
    InvalidJSON,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UriTooLong,
    HeaderFieldsTooLarge,
    ValidationFailed,
    BudgetExceeded,
    RateLimited,
    ModelError,
    Unavailable,
    Timeout,
)


def status_of(exc: BaseException) -> int:
    """The HTTP status a call ends with when ``exc`` escapes it (500 for the unplanned)."""
    status = getattr(exc, "status", None) if isinstance(exc, MultiAgentError) else None
    return status if isinstance(status, int) else 500


@contextmanager
def recording_failure(outcome: Any, catch: type[BaseException] = Exception) -> Iterator[None]:
    """Note on ``outcome`` (an ``OperationOutcome``) the status, and problem, of an exception on its way out."""
    try:
        yield
    except catch as exc:
        outcome.status = status_of(exc)
        if isinstance(exc, ProblemError):
            outcome.problem = exc
        raise
