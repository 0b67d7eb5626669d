"""Python client for multiagent-framework.

    from multiagent_sdk import MultiAgentFramework, BudgetExceeded

    framework = MultiAgentFramework(api_url="http://127.0.0.1:8080", api_key="mak_...")
    analysis = framework.teams.finance.analyze_investment(risk_tolerance="medium", amount=100_000)
    print(analysis.summary, analysis.raw.usage.cost_usd)

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
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExceeded,
    ConflictError,
    GatewayTimeout,
    InternalServerError,
    InvalidJSON,
    ModelError,
    MultiAgentError,
    NotFoundError,
    PayloadTooLarge,
    PermissionDeniedError,
    RateLimited,
    ServiceUnavailable,
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
from ._version import __version__

__all__ = [
    "OPERATIONS",
    "TEAM_NAMES",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AsyncMultiAgentFramework",
    "AsyncTeam",
    "AsyncTeams",
    "AuditEvent",
    "AuditPage",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceeded",
    "ConflictError",
    "DynamicOutput",
    "GatewayTimeout",
    "InternalServerError",
    "InvalidJSON",
    "ModelError",
    "MultiAgentError",
    "MultiAgentFramework",
    "NotFoundError",
    "OperationInfo",
    "OutputModel",
    "PayloadTooLarge",
    "PermissionDeniedError",
    "RateLimited",
    "RawResponse",
    "RequestOptions",
    "RetryPolicy",
    "Run",
    "ServiceUnavailable",
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
