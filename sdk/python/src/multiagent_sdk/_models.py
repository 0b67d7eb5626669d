"""Base models and the hand-written response shapes (teams, usage, audit, runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, PrivateAttr

__all__ = [
    "AuditEvent",
    "AuditPage",
    "DynamicOutput",
    "Model",
    "OperationInfo",
    "OutputModel",
    "RawResponse",
    "Run",
    "TeamInfo",
    "Usage",
    "UsageReport",
]


class Model(BaseModel):
    """Base of every SDK model: unknown fields are kept (a newer server may add some)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())


class Usage(Model):
    """Tokens and cost of one call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class RawResponse:
    """Everything about an operation's answer besides its output: ``result.raw``."""

    status_code: int
    headers: httpx.Headers
    body: dict[str, Any]
    retries: int = 0
    idempotency_key: str | None = None
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self.usage = Usage.model_validate(self.body.get("usage") or {})

    @property
    def id(self) -> str:
        """The operation call's id (its request id)."""
        return str(self.body.get("id") or self.request_id or "")

    @property
    def request_id(self) -> str | None:
        """``x-request-id``: quote it when reporting a problem."""
        return self.headers.get("x-request-id") or self.body.get("id")

    @property
    def team(self) -> str:
        """The team that answered."""
        return str(self.body.get("team", ""))

    @property
    def operation(self) -> str:
        """The operation that answered."""
        return str(self.body.get("operation", ""))

    @property
    def model(self) -> str:
        """The model that produced the output (``offline`` for the offline provider)."""
        return str(self.body.get("model", ""))

    @property
    def duration_ms(self) -> float:
        """Server-side duration of the operation."""
        return float(self.body.get("duration_ms") or 0.0)

    @property
    def replayed(self) -> bool:
        """True when the answer is the stored result of an earlier call with the same Idempotency-Key."""
        return bool(self.headers.get("idempotent-replayed") == "true")

    @property
    def budget_remaining_usd(self) -> float | None:
        """``x-budget-remaining-usd``: the smaller of the day's and month's remainder."""
        return _float(self.headers.get("x-budget-remaining-usd"))

    @property
    def ratelimit_remaining_requests(self) -> int | None:
        """``x-ratelimit-remaining-requests``."""
        value = _float(self.headers.get("x-ratelimit-remaining-requests"))
        return None if value is None else int(value)

    @property
    def ratelimit_remaining_tokens(self) -> int | None:
        """``x-ratelimit-remaining-tokens``."""
        value = _float(self.headers.get("x-ratelimit-remaining-tokens"))
        return None if value is None else int(value)


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


class OutputModel(Model):
    """Base of every operation's output: the fields, plus :attr:`raw`."""

    _raw: RawResponse | None = PrivateAttr(default=None)

    @property
    def raw(self) -> RawResponse:
        """Usage, model, headers and ids of the call that produced this output."""
        if self._raw is None:
            raise AttributeError("this output was not returned by a call (it has no raw response)")
        return self._raw


class DynamicOutput(OutputModel):
    """The output of an operation called by name (fields as attributes, or ``model_dump()``)."""


class OperationInfo(Model):
    """One operation of a team, with its JSON Schemas."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = {}
    output_schema: dict[str, Any] = {}


class TeamInfo(Model):
    """A team as ``GET /v1/teams`` describes it."""

    name: str
    description: str = ""
    operations: list[OperationInfo] = []


class UsageReport(Model):
    """``GET /v1/usage``: the calling tenant's spend and limits."""

    tenant_id: str
    spent_usd: dict[str, float] = {}
    reserved_usd: dict[str, float] = {}
    limits: dict[str, Any] = {}
    by_team: list[dict[str, Any]] = []
    by_day: list[dict[str, Any]] = []
    by_model: list[dict[str, Any]] = []


class AuditEvent(Model):
    """One audit event."""

    at: str
    type: str
    request_id: str = ""
    team: str | None = None
    operation: str | None = None
    status: int | None = None
    detail: dict[str, Any] | None = None


class AuditPage(Model):
    """A page of audit events, newest first; pass ``next`` as ``before`` for older ones."""

    events: list[AuditEvent] = []
    next: str | None = None


class Run(Model):
    """An orchestrated multi-team run."""

    id: str
    status: str
    plan: Any = None
    steps: list[dict[str, Any]] = []
    answer: str | None = None
    usage: Usage | None = None
