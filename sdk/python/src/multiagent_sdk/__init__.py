"""Python client for multiagent-framework.

    from multiagent_sdk import MultiAgentFramework, BudgetExceeded

    framework = MultiAgentFramework()  # MULTIAGENT_API_URL and MULTIAGENT_API_KEY (or api_url=, api_key=)
    analysis = framework.teams.finance.analyze_investment(risk_tolerance="medium", amount=100_000)
    print(analysis.summary, analysis.raw.usage.cost_usd)

    for event in framework.stream("finance", "analyze_investment", {"risk_tolerance": "low", "amount": 1000}):
        print(event.event, event.data)

``AsyncMultiAgentFramework`` is the same surface, awaited. Team models are generated from
the server's catalog (``multiagent export sdk-types``) and importable from here or from
``multiagent_sdk.types``.
"""

from . import types
from ._base import RequestOptions, RetryPolicy
from ._client import AsyncMultiAgentFramework, MultiAgentFramework
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExceeded,
    BudgetExceededError,
    ConflictError,
    GatewayTimeout,
    GatewayTimeoutError,
    InternalServerError,
    InvalidJSON,
    InvalidJSONError,
    ModelError,
    MultiAgentError,
    NotFoundError,
    PayloadTooLarge,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimited,
    RateLimitError,
    ServiceUnavailable,
    ServiceUnavailableError,
    ValidationError,
)
from ._generated import OPERATIONS, TEAM_NAMES, AsyncTeams, TeamName, Teams
from ._models import (
    AuditEvent,
    AuditPage,
    DynamicOutput,
    OperationInfo,
    OutputModel,
    RawResponse,
    Run,
    TeamInfo,
    Usage,
    UsageReport,
)
from ._resources import AsyncTeam, SyncTeam
from ._streaming import EVENT_TYPES, AsyncStream, Stream, StreamEvent
from ._version import __version__

__all__ = [
    "EVENT_TYPES",
    "OPERATIONS",
    "TEAM_NAMES",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncMultiAgentFramework",
    "AsyncStream",
    "AsyncTeam",
    "AsyncTeams",
    "AuditEvent",
    "AuditPage",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceeded",
    "BudgetExceededError",
    "ConflictError",
    "DynamicOutput",
    "GatewayTimeout",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidJSON",
    "InvalidJSONError",
    "ModelError",
    "MultiAgentError",
    "MultiAgentFramework",
    "NotFoundError",
    "OperationInfo",
    "OutputModel",
    "PayloadTooLarge",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimited",
    "RawResponse",
    "RequestOptions",
    "RetryPolicy",
    "Run",
    "ServiceUnavailable",
    "ServiceUnavailableError",
    "Stream",
    "StreamEvent",
    "SyncTeam",
    "TeamInfo",
    "TeamName",
    "Teams",
    "Usage",
    "UsageReport",
    "ValidationError",
    "__version__",
    "types",
]
