"""The state-store protocol and its records.

Everything that must survive an instance lives behind :class:`Store`: tenants, API key
hashes, budget windows, reservations, the usage ledger, audit events, notes, tickets and
idempotency records. One module per backend implements it (``sqlite``, ``dynamodb``,
``firestore``) with that store's own atomic primitive; one conformance suite
(``tests/integration/test_store_conformance.py``) proves each of them.

Money is integer micro-dollars. Times are epoch seconds (float) for expiry and ISO 8601
UTC strings for display. Every method may raise :class:`StoreUnavailable` when the
backend cannot be reached; callers turn it into 503 and never run a model unbudgeted.

The budget timeline of one model call::

    reserve(amount, windows, rates)      one atomic write: every window has
       │                                 spent + reserved + amount <= limit, every rate
       │                                 fits its GCRA bucket, the reservation is stored
       ├── model call
       ▼
    settle(reservation, real cost, ledger entry)
                                         one atomic write: reserved -= amount,
                                         spent += cost, ledger appended, reservation gone
    release(reservation)                 only when the request is known never to have
                                         been sent: the amount returns to every window
    (crash, pause) ── expires_at passes ──▶ reclaim_expired() CHARGES the amount: it moves
                                         from reserved to spent and the ledger gets an
                                         ``unsettled`` entry at that worst case; a late
                                         settle of the same reservation replaces that
                                         entry by the real cost, once

A request that may have reached the provider is never released (contract, budget rule 3):
the store never learns whether it was sent, so the default for a reservation nobody
settles is to charge it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from shared.errors import MultiAgentError


class StoreUnavailable(MultiAgentError):
    """The state store could not be reached or answered with an error."""

    status = 503  # a call it escapes from ends as 503 unavailable (fail closed)


# Identifiers need uniqueness, not secrecy (none of them grants anything): 128 bits from a
# generator seeded once per process from the OS, and again in a forked child. uuid4 asks
# the OS on every call, and that call gives up the GIL: on a busy event loop, getting it
# back from the store's threads cost more than the id itself.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


def random_hex() -> str:
    """128 random bits as 32 hex digits (unique per call; not a secret)."""
    return f"{_ids.getrandbits(128):032x}"


def new_id(prefix: str) -> str:
    """A random identifier: ``prefix_<32 hex>``."""
    return f"{prefix}_{random_hex()}"


_second: tuple[int, str] = (-1, "")  # (epoch second, its "YYYY-MM-DDTHH:MM:SS"): formatted once a second


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds (sorts lexicographically)."""
    global _second
    second, fraction = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _second  # one tuple, swapped whole: safe from any thread
    if cached[0] != second:
        cached = _second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{fraction:06d}Z"


@dataclass
class Tenant:
    """A customer of the deployment and its limits (money in micro-dollars)."""

    id: str
    name: str
    daily_limit_micros: int
    monthly_limit_micros: int
    rpm: int
    tpm: int
    teams: list[str] | None = None  # allowed teams; None means all
    team_daily_limit_micros: dict[str, int] = field(default_factory=dict)
    alert_threshold: float = 0.8
    disabled: bool = False
    webhook_url: str | None = None
    on_low_budget: Literal["refuse", "cheaper_model"] = "refuse"
    content_logging: bool = False
    created_at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for serialisation."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tenant:
        """Inverse of :meth:`to_dict`, ignoring unknown keys (forward compatible)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ApiKeyRecord:
    """A stored API key: only its hash, never the key."""

    key_hash: str
    tenant_id: str
    prefix: str
    created_at: str = field(default_factory=now_iso)
    revoked: bool = False


@dataclass(frozen=True)
class WindowLimit:
    """A budget window a reservation must fit in, e.g. ``day:2026-11-22``."""

    key: str
    limit_micros: int
    expires_at: float  # TTL of the window record itself


@dataclass(frozen=True)
class RateLimit:
    """A GCRA bucket: ``limit_per_minute`` units refill evenly over 60 s; ``cost`` units now."""

    key: str
    limit_per_minute: int
    cost: int


@dataclass
class WindowState:
    """A budget window as stored."""

    key: str
    limit_micros: int
    spent_micros: int
    reserved_micros: int

    @property
    def remaining_micros(self) -> int:
        """What is left to reserve."""
        return max(0, self.limit_micros - self.spent_micros - self.reserved_micros)


@dataclass
class Reservation:
    """Money held for one model call until it is settled, released or expires."""

    id: str
    tenant_id: str
    amount_micros: int
    windows: list[str]
    expires_at: float
    request_id: str = ""
    team: str = ""
    operation: str = ""
    created_at: str = field(default_factory=now_iso)
    model: str = ""  # for the unsettled ledger entry, should nobody settle it
    input_tokens: int = 0  # the input bound reserved
    output_tokens: int = 0  # the max_tokens reserved


def ledger_id_for(reservation_id: str) -> str:
    """The id of the ledger entry that charges ``reservation_id`` (settled or unsettled):
    one reservation, one ledger entry, whoever writes it."""
    return "led_" + reservation_id.split("_", 1)[-1]


def unsettled_entry(reservation: Reservation) -> LedgerEntry:
    """The ledger entry charging a reservation whose outcome is unknown at its worst case."""
    return LedgerEntry(
        id=ledger_id_for(reservation.id), tenant_id=reservation.tenant_id, request_id=reservation.request_id,
        team=reservation.team, operation=reservation.operation, model=reservation.model,
        input_tokens=reservation.input_tokens, output_tokens=reservation.output_tokens,
        cost_micros=reservation.amount_micros, unsettled=True,
        # a run step's reservation holds its run's window: the run's usage counts this entry
        run_id=next((k[4:].split("/")[0] for k in reservation.windows if k.startswith("run:")), ""),
    )


@dataclass
class Refusal:
    """Why a reservation did not fit (``contention``: the store kept losing write races for
    this tenant's budget; money may be left, so it is answered 429 with a short retry)."""

    kind: Literal["window", "rate", "contention"]
    key: str
    limit: int  # micros for a window, units per minute for a rate
    spent_micros: int = 0
    remaining_micros: int = 0
    retry_after_s: float = 0.0


@dataclass
class ReserveOutcome:
    """Result of :meth:`Store.reserve`: either reserved or refused, never half of it."""

    refusal: Refusal | None = None
    windows: list[WindowState] = field(default_factory=list)
    rate_remaining: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the reservation was made."""
        return self.refusal is None


@dataclass
class LedgerEntry:
    """One model request as charged: settled at its real cost (or the zero-cost record of
    an offline one), or ``unsettled`` at its reserved worst case when its outcome is
    unknown (see the module docstring). ``anomaly`` marks usage the provider reported
    outside sane bounds, charged at the worst case."""

    id: str
    tenant_id: str
    request_id: str
    team: str
    operation: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_micros: int
    at: str = field(default_factory=now_iso)
    run_id: str = ""
    unsettled: bool = False
    anomaly: bool = False


@dataclass
class AuditEvent:
    """One append-only audit fact about a tenant."""

    id: str
    tenant_id: str
    type: str
    request_id: str = ""
    team: str = ""
    operation: str = ""
    status: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=now_iso)

    def public(self) -> dict[str, Any]:
        """The shape of ``GET /v1/audit`` events (empty members left out)."""
        out: dict[str, Any] = {"at": self.at, "type": self.type, "request_id": self.request_id}
        for name in ("team", "operation", "status", "detail"):
            value = getattr(self, name)
            if value not in ("", None, {}):
                out[name] = value
        return out


@dataclass
class Note:
    """A tenant's note, written by the ``notes`` tool."""

    id: str
    tenant_id: str
    title: str
    body: str
    tags: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)


@dataclass
class Ticket:
    """A tenant's support ticket, written by the ``tickets`` tool."""

    id: str
    tenant_id: str
    subject: str
    body: str
    status: Literal["open", "pending", "resolved", "closed"] = "open"
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class IdempotencyRecord:
    """A claimed ``Idempotency-Key``: in progress (no response yet) or completed."""

    key: str
    body_hash: str
    expires_at: float
    response: dict[str, Any] | None = None


@dataclass
class RunRecord:
    """An orchestrated run, persisted step by step (see ``shared.orchestrator``).

    ``data`` is the run's document (request, plan, steps, answer, usage) and is opaque to
    the store. ``owner`` and ``lease_until`` say which instance is executing it and until
    when that claim holds; ``version`` is the optimistic-concurrency counter every
    :meth:`Store.update_run` checks and bumps.
    """

    id: str
    tenant_id: str
    status: str = "queued"
    data: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    lease_until: float = 0.0
    version: int = 0
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    expires_at: float = 0.0  # TTL of the record itself


@dataclass
class SessionRecord:
    """A conversation's memory (``X-Session-Id``), stored per tenant.

    ``messages`` are ``{"role": "user"|"assistant", "content": str, "at": str}`` oldest
    first, already trimmed to the session's token budget. ``version`` is checked and bumped
    by :meth:`Store.put_session`.
    """

    id: str
    tenant_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0
    updated_at: str = field(default_factory=now_iso)
    expires_at: float = 0.0


@runtime_checkable
class Store(Protocol):
    """What every state-store backend implements. All methods are synchronous and
    thread-safe; async callers run them in a worker thread."""

    url: str

    def init(self) -> None:
        """Create tables and indexes the store needs (idempotent)."""

    def ping(self) -> None:
        """One real round trip; raises :class:`StoreUnavailable` when it fails."""

    def close(self) -> None:
        """Release connections."""

    # tenants and keys
    def create_tenant(self, tenant: Tenant) -> None:
        """Store a new tenant; raises KeyError when its id is taken (as ``put_run``)."""

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None."""

    def list_tenants(self) -> list[Tenant]:
        """Every tenant, oldest first."""

    def update_tenant(self, tenant_id: str, changes: dict[str, Any]) -> Tenant:
        """Apply field changes; raises KeyError when the tenant does not exist."""

    def put_api_key(self, record: ApiKeyRecord) -> None:
        """Store a key hash."""

    def get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key record for a hash, or None."""

    def revoke_api_keys(self, tenant_id: str) -> int:
        """Revoke every key of a tenant; returns how many."""

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        """Every key record of a tenant (revoked ones too), oldest first (ties by hash)."""

    # budget
    def reserve(
        self,
        reservation: Reservation,
        windows: list[WindowLimit],
        rates: list[RateLimit],
        now: float,
    ) -> ReserveOutcome:
        """Atomically: every window fits ``amount`` and every rate fits its cost, then
        hold the amount in every window, charge the rates and store the reservation.
        Either all of it happens or nothing does (the refusal says which limit)."""

    def settle(
        self,
        reservation: Reservation,
        cost_micros: int,
        ledger: LedgerEntry | None,
        audit: list[AuditEvent],
    ) -> list[WindowState]:
        """Atomically: replace the reservation by the real cost in its windows, append
        the ledger entry and audit events, delete the reservation. Cases:

        - ``ledger.id`` is already in the ledger: a repeated settle, nothing changes;
        - the reservation is live: reserved -= amount, spent += cost;
        - it was charged unsettled (``reclaim_expired``, or an unsettled settle): its
          unsettled entry (``ledger_id_for(reservation.id)``) is replaced by ``ledger``
          and spent moves by ``cost - unsettled cost``, once; an unsettled ``ledger``
          changes nothing then;
        - otherwise (released, or lost): the cost is still charged and the entry
          appended, so nothing spent is ever lost.

        Charging a reservation unsettled is ``settle(reservation, amount,
        unsettled_entry(reservation), [])``."""

    def release(self, tenant_id: str, reservation_id: str) -> None:
        """Return a reservation's amount to its windows: only for a request known never
        to have been sent to the provider."""

    def reclaim_expired(self, tenant_id: str, now: float) -> int:
        """Charge every reservation of the tenant whose ``expires_at`` has passed at its
        worst case, as an ``unsettled`` ledger entry (its instance crashed or paused: the
        request may have been billed); returns how many."""

    def get_windows(self, tenant_id: str, keys: list[str]) -> list[WindowState]:
        """Current state of the named windows (missing ones read as empty, limit 0)."""

    def claim_marker(self, tenant_id: str, marker: str, expires_at: float) -> bool:
        """True the first time ``marker`` is claimed for the tenant (alert once per window)."""

    # ledger and audit
    def list_ledger(self, tenant_id: str, since: str | None = None, limit: int = 10_000) -> list[LedgerEntry]:
        """Ledger entries of the tenant at or after ``since``, oldest first."""

    def append_audit(self, events: list[AuditEvent]) -> None:
        """Append audit events."""

    def list_audit(self, tenant_id: str, limit: int = 50, before: str | None = None) -> list[AuditEvent]:
        """The tenant's audit events strictly before ``before`` (an ``at``), newest first."""

    # tools' data
    def add_note(self, note: Note) -> None:
        """Store a note."""

    def list_notes(self, tenant_id: str, query: str | None = None, limit: int = 50) -> list[Note]:
        """The tenant's notes, newest first, optionally containing ``query`` (case-insensitive)."""

    def create_ticket(self, ticket: Ticket) -> None:
        """Store a ticket."""

    def update_ticket(self, tenant_id: str, ticket_id: str, changes: dict[str, Any]) -> Ticket:
        """Change a ticket of the tenant; KeyError when it is not the tenant's."""

    def list_tickets(self, tenant_id: str, status: str | None = None, limit: int = 50) -> list[Ticket]:
        """The tenant's tickets, newest first."""

    # idempotency
    def claim_idempotency(self, tenant_id: str, record: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        """Claim ``record.key`` for the tenant. None when claimed now; otherwise the
        existing live record (in progress or completed). An expired record is replaced."""

    def complete_idempotency(
        self, tenant_id: str, key: str, response: dict[str, Any], expires_at: float | None = None
    ) -> None:
        """Store the response of a claimed key, kept until ``expires_at`` (None: the
        claim's own expiry). A claim in progress lives only as long as its lease
        (``record.expires_at`` at claim time), so a crash mid-call blocks retries no longer."""

    def release_idempotency(self, tenant_id: str, key: str) -> None:
        """Forget a claim whose call failed, so a retry runs again."""

    # orchestrated runs
    def put_run(self, run: RunRecord) -> None:
        """Store a new run with ``version`` 1 (sets ``run.version``); raises KeyError when
        a run with that id already exists for the tenant."""

    def get_run(self, tenant_id: str, run_id: str) -> RunRecord | None:
        """The tenant's run, or None (another tenant's run id reads as None)."""

    def update_run(self, run: RunRecord, expected_version: int) -> bool:
        """Replace the stored run when its version is still ``expected_version``, storing
        version ``expected_version + 1`` (and setting ``run.version``). False, with nothing
        written, when the version moved on or the run does not exist."""

    def list_runs(self, tenant_id: str, limit: int = 50, before: str | None = None) -> list[RunRecord]:
        """The tenant's runs created strictly before ``before`` (a ``created_at``; None: all),
        newest first (``created_at`` then ``id``, descending), at most ``limit``."""

    def charge_run_reservations(self, tenant_id: str, run_id: str) -> int:
        """Charge unsettled (as :meth:`reclaim_expired` does) every live reservation that
        holds the run's budget window (``run:<run id>``), e.g. those a crashed or cancelled
        owner left: their requests may have been sent. Returns how many."""

    # sessions
    def get_session(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        """The tenant's session, or None (another tenant's session id reads as None)."""

    def put_session(self, session: SessionRecord, expected_version: int) -> bool:
        """Write the session when its stored version is ``expected_version`` (0: it must not
        exist yet), storing ``expected_version + 1`` (and setting ``session.version``).
        False, with nothing written, when another writer got there first."""

    def delete_session(self, tenant_id: str, session_id: str) -> None:
        """Forget the tenant's session (nothing when it does not exist)."""


class _Keyed(Protocol):
    id: str


K = TypeVar("K", bound=_Keyed)


def keyset_page(fetch: Callable[[int, str | None], list[K]], at_of: Callable[[K], str], limit: int,
                before: str | None) -> tuple[list[K], str | None]:
    """One page, newest first, of what ``fetch(limit, bound)`` lists strictly before
    ``bound``, and the ``next`` cursor ``AT|ID`` of the last item returned: items sharing
    one instant across a page boundary are neither skipped nor repeated (a bare ``AT`` is
    accepted too). ``at_of`` is the time the list is ordered by."""
    cursor_at, cursor_id = (before.split("|", 1) + [""])[:2] if before else ("", "")
    # "AT~" sorts after every item at AT (the format's characters are all below "~")
    bound = cursor_at + "~" if cursor_id else (cursor_at or None)
    items = fetch(limit + 1 + (16 if cursor_id else 0), bound)
    if cursor_id:
        items = [i for i in items if not (at_of(i) == cursor_at and i.id >= cursor_id)]
    more = len(items) > limit
    items = items[:limit]
    return items, (f"{at_of(items[-1])}|{items[-1].id}" if more and items else None)
