"""DynamoDB backend: one table, conditional transactions instead of locks.

``dynamodb://PREFIX?region=R`` opens :class:`DynamoDBStore` on the table ``PREFIX-store``.
The endpoint comes from boto3's own configuration (``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_DYNAMODB``, profiles, ...); boto3 is imported only when a store is made.

Table layout (single table, PAY_PER_REQUEST, TTL on the ``ttl`` attribute, epoch seconds)::

    pk                    sk                   item
    T#{tenant}            TENANT               tenant: data (JSON), ver; gsi1pk="TENANT", gsi1sk="{created_at}#{id}"
    T#{tenant}            KEY#{hash}           pointer to one API key of the tenant (revoke without a GSI)
    K#{hash}              KEY                  API key: tenant_id, prefix, created_at, revoked
    T#{tenant}            W#{window}           budget window: limit_micros, spent_micros, reserved_micros,
                                               committed_micros (= spent + reserved), expires_at, ttl
    T#{tenant}            R#{rate}             GCRA bucket: tat (theoretical arrival time), ttl
    T#{tenant}            RES#{id}             reservation: amount_micros, windows, expires_at, ttl, request_id,
                                               team, operation, model, input_tokens, output_tokens, created_at
                                               (all an unsettled ledger entry is built from)
    T#{tenant}            M#{marker}           alert marker: expires_at, ttl
    T#{tenant}            I#{key}              idempotency record: body_hash, expires_at, response (JSON), ttl
    T#{tenant}            RUN#{id}             orchestrated run: data (JSON), ver (optimistic version), ttl
    T#{tenant}            SES#{id}             session memory: data (JSON), ver (optimistic version), ttl
    L#{tenant}            {at}#{id}            ledger entry (native attributes), oldest first by sort key
    LID#{ledger id}       LID                  settle guard: a ledger id is charged once, whatever its ``at``:
                                               tenant_id, at (the entry's sort-key time), unsettled,
                                               cost_micros (ledger_id: the entry that replaced an unsettled one)
    A#{tenant}            {at}#{id}            audit event: data (JSON); listed newest first
    N#{tenant}            {created_at}#{id}    note (native attributes); listed newest first
    TK#{tenant}           {id}                 ticket (native attributes); addressed by id, sorted in memory

    GSI gsi1 (gsi1pk HASH, gsi1sk RANGE, projection ALL) is sparse: only tenant items carry
    its keys, so list_tenants is one Query in creation order.

Expired reservations are found without an index: a strongly consistent Query of the
tenant's ``RES#`` items filtered on ``expires_at``. Live reservations of one tenant are
bounded by its concurrency (each lives for one model call), so this reads a handful of
small items, and unlike a GSI it never misses a reservation written a moment ago.

Settling, and charging unsettled. A settle is one transaction: the ``LID#`` guard of its
ledger id put under ``attribute_not_exists`` (when that id is not the reservation's own
``ledger_id_for``, a ConditionCheck that the reservation's own guard does not exist), the
ledger item, the reservation deleted under its amount, every window's move (reserved -=
held, spent += cost), the audit events. An expired reservation (``reclaim_expired``,
``charge_run_reservations``) is charged by the same transaction at its amount with
``unsettled_entry``: its guard records ``unsettled = true`` and the cost. A late settle of
that reservation has its first transaction cancelled by the guard, which the cancellation
returns (ReturnValuesOnConditionCheckFailure, no read); a second transaction flips the guard
under the condition ``unsettled = true``, replaces the ledger item (same sort key, the
guard's ``at``; under another ledger id: the old item deleted, the new one put with its
own guard) and moves spent by (cost - unsettled cost). Whoever loses a race (a reclaim
against a settle, two late settles) finds the guard already written or flipped and
changes nothing, so the correction happens exactly once; an unsettled charge after a real
settle, or a repeated settle, changes nothing either. The reservation's conditional delete
serialises a settle with an unsettled charge of the same live reservation.

Round trips per call (``round_trips`` counts every API call this store makes):
reserve 1 (a GCRA case guessed wrong costs one more), settle 1 (+1 BatchWrite when the
audit events do not fit the 100-item transaction, +1 read when this instance has never
seen one of the windows; with ``window_state_max_age_s`` set, +1 read when a view is
older; a late settle of a reservation charged unsettled +1 transaction; a settle that
changes nothing is its cancelled transaction, +1 BatchWrite of its audit events, if any),
release 2, reclaim_expired and charge_run_reservations 1 Query + 1 transaction per
reservation charged, update_tenant 2 (read, versioned write), revoke_api_keys 1 + 1 per
key, everything else 1 (plus pagination).

Contention is not an outage: a reserve whose transactions keep conflicting with others on
the same items (TransactionConflict after its jittered retries), or whose rate buckets keep
moving between the two GCRA cases, is refused with ``Refusal("contention", ...)`` and a
retry-after of 0.5-1 s (never admitted, never StoreUnavailable). StoreUnavailable is for
errors of the service or the network.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from decimal import Decimal
from typing import Any

from shared.errors import ConfigurationError
from shared.store.base import (
    ApiKeyRecord,
    AuditEvent,
    IdempotencyRecord,
    LedgerEntry,
    Note,
    RateLimit,
    Refusal,
    Reservation,
    ReserveOutcome,
    RunRecord,
    SessionRecord,
    StoreUnavailable,
    Tenant,
    Ticket,
    WindowLimit,
    WindowState,
    ledger_id_for,
    now_iso,
    unsettled_entry,
)
from shared.store.gcra import GCRA_PERIOD_S, gcra, gcra_remaining

Item = dict[str, dict[str, Any]]

_TX_MAX_ITEMS = 100  # DynamoDB's limit on one TransactWriteItems call
_BATCH_WRITE_MAX = 25
_BATCH_GET_MAX = 100
_CONFLICT_ATTEMPTS = 8  # TransactionConflict / throttled items: jittered backoff, then StoreUnavailable
_CASE_ATTEMPTS = 4  # reserve: GCRA case guessed wrong (or the bucket moved meanwhile)
_OPTIMISTIC_ATTEMPTS = 6  # read-modify-write of a tenant
# Float seconds are added in Python, decimal seconds are added by DynamoDB: allow one
# microsecond so the two roundings never disagree at the exact edge of a bucket.
_GCRA_EPSILON_S = 1e-6
# A reservation must outlive every window it holds money in, or TTL could delete it
# (and the held money with it) before reclaim_expired returns the amount.
_RESERVATION_TTL_MARGIN_S = 3600
_RATE_TTL_S = 2 * GCRA_PERIOD_S
_HINT_CAPACITY = 10_000
_RETRYABLE_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,248}$")


# attribute values -----------------------------------------------------------------------
def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: int | float) -> dict[str, Any]:
    if isinstance(value, int):
        return {"N": str(value)}
    return {"N": format(Decimal(repr(float(value))), "f")}


def _int(item: Item | None, name: str, default: int = 0) -> int:
    if not item or name not in item:
        return default
    return int(Decimal(item[name]["N"]))


def _float(item: Item | None, name: str) -> float | None:
    if not item or name not in item:
        return None
    return float(item[name]["N"])


def _str(item: Item, name: str, default: str = "") -> str:
    return str(item[name]["S"]) if name in item else default


def _native(record: Any) -> Item:
    """A flat record of str / int / bool / list[str] / None as DynamoDB attributes."""
    out: Item = {}
    for name, value in asdict(record).items():
        if isinstance(value, bool):
            out[name] = {"BOOL": value}
        elif isinstance(value, int):
            out[name] = _n(value)
        elif isinstance(value, str):
            out[name] = _s(value)
        elif isinstance(value, list):
            out[name] = {"L": [_s(str(v)) for v in value]}
        elif value is None:
            out[name] = {"NULL": True}
        else:
            raise TypeError(f"{type(record).__name__}.{name}: {type(value).__name__} is not stored natively")
    return out


def _from_native(cls: Any, item: Item) -> Any:
    """Inverse of :func:`_native` for the dataclass ``cls`` (unknown attributes ignored)."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        attr = item.get(f.name)
        if attr is None:
            continue
        if "S" in attr:
            kwargs[f.name] = attr["S"]
        elif "N" in attr:
            kwargs[f.name] = int(Decimal(attr["N"]))
        elif "BOOL" in attr:
            kwargs[f.name] = bool(attr["BOOL"])
        elif "L" in attr:
            kwargs[f.name] = [v["S"] for v in attr["L"]]
        elif "NULL" in attr:
            kwargs[f.name] = None
    return cls(**kwargs)


def _ttl(epoch: float) -> dict[str, Any]:
    return _n(int(math.ceil(epoch)))


class _Contended(StoreUnavailable):
    """Transactions on the same items kept conflicting: contention, not an outage."""


class _Cancelled(Exception):
    """A transaction was cancelled by a condition; ``reasons`` lines up with its items."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons


def _failed(reason: dict[str, Any] | None) -> bool:
    return bool(reason) and reason.get("Code") == "ConditionalCheckFailed"  # type: ignore[union-attr]


class DynamoDBStore:
    """The :class:`~shared.store.base.Store` on one DynamoDB table.

    Budget states returned by ``reserve`` and ``settle`` (``ReserveOutcome.windows`` and the
    list ``settle`` returns) cannot come from the write itself: TransactWriteItems returns
    no attribute values. They are computed from an instance-local view of each window: the
    last exact state this instance saw (every refusal carries the window's stored values via
    ``ReturnValuesOnConditionCheckFailure``; ``get_windows`` is a consistent read) plus this
    instance's own writes since. A window this instance never saw counts as empty in
    ``reserve`` (whose caller supplies the limit) and is read once after ``settle`` (whose
    caller does not). Other instances' writes since the last exact view are not included;
    set ``window_state_max_age_s`` to re-read views older than that after every write (one
    more round trip when stale). Budget enforcement never depends on these views: every
    hold is a condition evaluated by DynamoDB itself.
    """

    def __init__(
        self,
        table_prefix: str,
        region: str | None = None,
        client: Any = None,
        *,
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 2.0,
        total_attempts: int = 2,
        window_state_max_age_s: float | None = None,
    ) -> None:
        if not _PREFIX_RE.match(table_prefix or ""):
            raise ConfigurationError(
                f"dynamodb:// table prefix {table_prefix!r} may only use letters, digits, '_', '-' and '.'"
            )
        self.table_prefix = table_prefix
        self.region = region
        self.table = f"{table_prefix}-store"
        self.url = f"dynamodb://{table_prefix}" + (f"?region={region}" if region else "")
        self.round_trips = 0
        self.window_state_max_age_s = window_state_max_age_s
        self._count_lock = threading.Lock()
        self._hint_lock = threading.Lock()
        # (tenant, window) -> [spent, reserved, limit, monotonic time of the last exact view]
        self._window_hints: dict[tuple[str, str], list[float]] = {}
        # (tenant, rate) -> last known tat (None: no bucket)
        self._rate_hints: dict[tuple[str, str], float | None] = {}

        # boto3 is imported here, never when shared.store is imported.
        from botocore.exceptions import BotoCoreError, ClientError

        self._client_error = ClientError
        self._botocore_error = BotoCoreError
        self._owns_client = client is None
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=connect_timeout_s,
                read_timeout=read_timeout_s,
                # total_max_attempts counts the first try ("max_attempts" would count retries only);
                # a refused connection fails at once, a hung server after ~2 x read_timeout_s.
                retries={"total_max_attempts": total_attempts, "mode": "standard"},
                max_pool_connections=64,
            )
            try:
                client = boto3.session.Session().client("dynamodb", region_name=region, config=config)
            except BotoCoreError as exc:  # NoRegionError and friends: a configuration problem
                raise ConfigurationError(f"cannot create a DynamoDB client for {self.url}: {exc}") from exc
        self._client = client

    # plumbing ------------------------------------------------------------------------
    def _call(self, op: str, expect: tuple[str, ...] = (), **kwargs: Any) -> dict[str, Any]:
        """One API call. Error codes in ``expect`` (``"*"``: all) propagate as ClientError; every other
        failure (connection, timeout, throttling after botocore's retries, 5xx, missing
        table) becomes :class:`StoreUnavailable`."""
        with self._count_lock:
            self.round_trips += 1
        try:
            return getattr(self._client, op)(**kwargs)  # type: ignore[no-any-return]
        except self._client_error as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code in expect or "*" in expect:
                raise
            raise StoreUnavailable(f"DynamoDB {op} on {self.table} failed: {code}: {error.get('Message', '')}") from exc
        except self._botocore_error as exc:
            raise StoreUnavailable(f"DynamoDB {op} on {self.table} failed: {exc}") from exc

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """One TransactWriteItems; raises :class:`_Cancelled` when a condition failed.

        Conflicts with another transaction on the same items (and throttled items) are not
        answers: they are retried with a small jittered backoff, a bounded number of times.
        The ClientRequestToken is derived from the items, so a retry of a transaction that
        was applied but whose answer was lost (a read timeout) is idempotent on DynamoDB
        instead of failing its own conditions.
        """
        token = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:36]
        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                self._call("transact_write_items", expect=("TransactionCanceledException",), TransactItems=items,
                           ClientRequestToken=token)
                return
            except self._client_error as exc:
                reasons = list(exc.response.get("CancellationReasons") or [])
                codes = {r.get("Code") for r in reasons}
                if "ConditionalCheckFailed" in codes:
                    raise _Cancelled(reasons) from None
                if not codes & _RETRYABLE_REASONS:
                    raise StoreUnavailable(f"DynamoDB transaction on {self.table} cancelled: {codes}") from exc
            time.sleep(min(0.25, 0.01 * 2**attempt) * random.uniform(0.5, 1.5))
        raise _Contended(f"DynamoDB transaction on {self.table} kept conflicting")

    def _get(self, pk: str, sk: str) -> Item | None:
        out = self._call("get_item", TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True)
        return out.get("Item")

    def _query(self, limit: int | None = None, **kwargs: Any) -> list[Item]:
        """Every page of a Query (up to ``limit`` items after filtering)."""
        items: list[Item] = []
        start: dict[str, Any] | None = None
        while True:
            args = dict(kwargs, TableName=self.table)
            if start:
                args["ExclusiveStartKey"] = start
            if limit is not None:
                args["Limit"] = max(1, min(1000, limit - len(items)))
            out = self._call("query", **args)
            items.extend(out.get("Items", []))
            start = out.get("LastEvaluatedKey")
            if not start or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items

    def _batch_write(self, items: list[Item]) -> None:
        """Put ``items`` with BatchWriteItem, 25 at a time, retrying unprocessed ones."""
        unique = list({(i["pk"]["S"], i["sk"]["S"]): i for i in items}.values())
        for start in range(0, len(unique), _BATCH_WRITE_MAX):
            requests = {self.table: [{"PutRequest": {"Item": i}} for i in unique[start : start + _BATCH_WRITE_MAX]]}
            self._batch_until_done("batch_write_item", requests, "UnprocessedItems", "writes to")

    def _batch_until_done(self, op: str, request: dict[str, Any], leftover: str, what: str,
                          on_answer: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Call the batch ``op`` again on what DynamoDB hands back unprocessed (``leftover``),
        with jittered backoff, until nothing is left (503 when it keeps throttling)."""
        for attempt in range(_CONFLICT_ATTEMPTS):
            out = self._call(op, RequestItems=request)
            if on_answer is not None:
                on_answer(out)
            request = out.get(leftover) or {}
            if not request:
                return
            time.sleep(min(0.25, 0.01 * 2**attempt) * random.uniform(0.5, 1.5))
        raise StoreUnavailable(f"DynamoDB kept throttling {what} {self.table}")

    @staticmethod
    def _key(pk: str, sk: str) -> Item:
        return {"pk": _s(pk), "sk": _s(sk)}

    # hints -----------------------------------------------------------------------------
    def _observe_window(self, tenant_id: str, key: str, spent: int, reserved: int, limit: int) -> None:
        with self._hint_lock:
            if len(self._window_hints) >= _HINT_CAPACITY:
                self._window_hints.clear()
            self._window_hints[(tenant_id, key)] = [spent, reserved, limit, time.monotonic()]

    def _apply_window(self, tenant_id: str, key: str, d_spent: int, d_reserved: int, limit: int | None) -> None:
        with self._hint_lock:
            hint = self._window_hints.get((tenant_id, key))
            if hint is None:
                if limit is None:  # no base to apply the change to: the window is read when needed
                    return
                if len(self._window_hints) >= _HINT_CAPACITY:
                    self._window_hints.clear()
                hint = self._window_hints[(tenant_id, key)] = [0, 0, 0, -math.inf]
            hint[0] += d_spent
            hint[1] = max(0, hint[1] + d_reserved)
            if limit is not None:
                hint[2] = limit

    def _window_views(self, tenant_id: str, keys: list[str], read_missing: bool) -> list[WindowState]:
        """States from the local view; re-read the windows it cannot vouch for."""
        max_age = self.window_state_max_age_s
        now = time.monotonic()
        with self._hint_lock:
            hints = {k: list(self._window_hints.get((tenant_id, k)) or []) for k in keys}
        stale = [
            k
            for k, h in hints.items()
            if (not h and read_missing) or (max_age is not None and (not h or now - h[3] > max_age))
        ]
        if stale:
            fresh = {s.key: s for s in self.get_windows(tenant_id, stale)}
            return [fresh[k] if k in fresh else self._state_from_hint(k, hints[k]) for k in keys]
        return [self._state_from_hint(k, hints[k]) for k in keys]

    @staticmethod
    def _state_from_hint(key: str, hint: list[float]) -> WindowState:
        if not hint:
            return WindowState(key, 0, 0, 0)
        return WindowState(key, int(hint[2]), int(hint[0]), int(hint[1]))

    def _observe_rate(self, tenant_id: str, key: str, tat: float | None) -> None:
        with self._hint_lock:
            if len(self._rate_hints) >= _HINT_CAPACITY:
                self._rate_hints.clear()
            self._rate_hints[(tenant_id, key)] = tat

    # lifecycle -------------------------------------------------------------------------
    def init(self) -> None:
        """Create the table if missing (idempotent), wait until ACTIVE, enable TTL."""
        try:
            self._call("describe_table", expect=("ResourceNotFoundException",), TableName=self.table)
        except self._client_error:
            try:
                self._call(
                    "create_table",
                    expect=("ResourceInUseException",),
                    TableName=self.table,
                    BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[
                        {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
                    ],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                    GlobalSecondaryIndexes=[
                        {
                            "IndexName": "gsi1",
                            "KeySchema": [
                                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                            ],
                            "Projection": {"ProjectionType": "ALL"},
                        }
                    ],
                )
            except self._client_error:
                pass  # created concurrently by another instance
        self._wait_active()
        self._enable_ttl()

    def _wait_active(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        delay = 0.1
        while True:
            table = self._call("describe_table", TableName=self.table)["Table"]
            indexes = table.get("GlobalSecondaryIndexes") or []
            if table.get("TableStatus") == "ACTIVE" and all(
                i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes
            ):
                return
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"DynamoDB table {self.table} did not become ACTIVE in {timeout_s:.0f} s")
            time.sleep(delay)
            delay = min(2.0, delay * 2)

    def _enable_ttl(self) -> None:
        """Turn TTL on for ``ttl``; a server that does not support it is fine (ttl is a hint)."""
        try:
            desc = self._call("describe_time_to_live", expect=("*",), TableName=self.table)
            if desc.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
                return
            self._call(
                "update_time_to_live",
                expect=("*",),
                TableName=self.table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )
        except StoreUnavailable:
            raise
        except self._client_error:
            pass  # already enabled concurrently, or not implemented by a local server

    def ping(self) -> None:
        """One real data-plane round trip (a read of a key that never exists)."""
        self._get("PING", "PING")

    def close(self) -> None:
        """Release the HTTP connections of a client this store created."""
        if self._owns_client and hasattr(self._client, "close"):
            self._client.close()

    # tenants and keys --------------------------------------------------------------------
    def _tenant_item(self, tenant: Tenant, version: int) -> Item:
        return {
            **self._key(f"T#{tenant.id}", "TENANT"),
            "gsi1pk": _s("TENANT"),
            "gsi1sk": _s(f"{tenant.created_at}#{tenant.id}"),
            "data": _s(json.dumps(tenant.to_dict())),
            "ver": _n(version),
        }

    def create_tenant(self, tenant: Tenant) -> None:
        """Store a new tenant (KeyError when the id is taken)."""
        if not self._put_new(self._tenant_item(tenant, 1)):
            raise KeyError(tenant.id)

    def _put_new(self, item: Item) -> bool:
        """Put ``item`` unless its key exists (one conditional put); False when it does."""
        try:
            self._call("put_item", expect=("ConditionalCheckFailedException",), TableName=self.table, Item=item,
                       ConditionExpression="attribute_not_exists(pk)")
        except self._client_error:
            return False
        return True

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None."""
        item = self._get(f"T#{tenant_id}", "TENANT")
        return Tenant.from_dict(json.loads(item["data"]["S"])) if item else None

    def list_tenants(self) -> list[Tenant]:
        """Every tenant, oldest first (the sparse gsi1 index, eventually consistent)."""
        items = self._query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :t",
            ExpressionAttributeValues={":t": _s("TENANT")},
        )
        return [Tenant.from_dict(json.loads(i["data"]["S"])) for i in items]

    def update_tenant(self, tenant_id: str, changes: dict[str, Any]) -> Tenant:
        """Apply field changes: read, then write conditioned on the version read."""
        for _ in range(_OPTIMISTIC_ATTEMPTS):
            item = self._get(f"T#{tenant_id}", "TENANT")
            if item is None:
                raise KeyError(tenant_id)
            data = json.loads(item["data"]["S"])
            data.update(changes)
            tenant = Tenant.from_dict(data)
            version = _int(item, "ver", 1)
            try:
                self._call(
                    "put_item",
                    expect=("ConditionalCheckFailedException",),
                    TableName=self.table,
                    Item=self._tenant_item(tenant, version + 1),
                    ConditionExpression="ver = :v",
                    ExpressionAttributeValues={":v": _n(version)},
                )
                return tenant
            except self._client_error:
                continue  # changed (or deleted) meanwhile: read again
        raise StoreUnavailable(f"tenant {tenant_id} kept changing under update")

    def put_api_key(self, record: ApiKeyRecord) -> None:
        """Store a key hash and its pointer in the tenant's partition, atomically."""
        self._transact(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **self._key(f"K#{record.key_hash}", "KEY"),
                            "tenant_id": _s(record.tenant_id),
                            "prefix": _s(record.prefix),
                            "created_at": _s(record.created_at),
                            "revoked": {"BOOL": record.revoked},
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": self._key(f"T#{record.tenant_id}", f"KEY#{record.key_hash}"),
                    }
                },
            ]
        )

    def get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key record for a hash, or None."""
        item = self._get(f"K#{key_hash}", "KEY")
        if item is None:
            return None
        return ApiKeyRecord(
            key_hash=key_hash,
            tenant_id=_str(item, "tenant_id"),
            prefix=_str(item, "prefix"),
            created_at=_str(item, "created_at"),
            revoked=bool(item.get("revoked", {}).get("BOOL", False)),
        )

    def _key_pointers(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues={":pk": _s(f"T#{tenant_id}"), ":p": _s("KEY#")},
            ConsistentRead=True,
        )

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        """Every key record of a tenant, oldest first (its KEY# pointers, then each record)."""
        found = [self.get_api_key(p["sk"]["S"][len("KEY#") :]) for p in self._key_pointers(tenant_id)]
        return sorted((r for r in found if r is not None), key=lambda r: (r.created_at, r.key_hash))

    def revoke_api_keys(self, tenant_id: str) -> int:
        """Revoke every key of a tenant; returns how many were live."""
        pointers = self._key_pointers(tenant_id)
        revoked = 0
        for pointer in pointers:
            key_hash = pointer["sk"]["S"][len("KEY#") :]
            try:
                self._call(
                    "update_item",
                    expect=("ConditionalCheckFailedException",),
                    TableName=self.table,
                    Key=self._key(f"K#{key_hash}", "KEY"),
                    UpdateExpression="SET revoked = :t",
                    ConditionExpression="attribute_exists(pk) AND revoked = :f",
                    ExpressionAttributeValues={":t": {"BOOL": True}, ":f": {"BOOL": False}},
                )
                revoked += 1
            except self._client_error:
                pass  # already revoked
        return revoked

    # budget ------------------------------------------------------------------------------
    def _window_reserve(self, tenant_id: str, w: WindowLimit, amount: int) -> dict[str, Any]:
        # DynamoDB conditions cannot add, so the window keeps committed = spent + reserved and
        # the condition compares it with limit - amount, computed here. ``committed`` (not a
        # stored "remaining") because the limit is the caller's and may change between calls.
        values = {
            ":amt": _n(amount),
            ":lim": _n(w.limit_micros),
            ":zero": _n(0),
            ":exp": _n(w.expires_at),
            ":ttl": _ttl(w.expires_at),
            ":tid": _s(tenant_id),
        }
        op: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(f"T#{tenant_id}", f"W#{w.key}"),
            "UpdateExpression": (
                "SET limit_micros = :lim, tenant_id = :tid, spent_micros = if_not_exists(spent_micros, :zero), "
                "reserved_micros = if_not_exists(reserved_micros, :zero) + :amt, "
                "committed_micros = if_not_exists(committed_micros, :zero) + :amt, "
                "expires_at = if_not_exists(expires_at, :exp), #ttl = if_not_exists(#ttl, :ttl)"
            ),
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": values,
        }
        if amount > 0:  # a zero amount always fits (as in the SQLite store)
            headroom = w.limit_micros - amount
            values[":headroom"] = _n(headroom)
            # A missing window is empty: it fits when the amount alone fits the limit.
            op["ConditionExpression"] = (
                "attribute_not_exists(committed_micros) OR committed_micros <= :headroom"
                if headroom >= 0
                else "committed_micros <= :headroom"
            )
            op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": op}

    def _rate_charge(self, tenant_id: str, r: RateLimit, now: float, tat_passed: bool) -> dict[str, Any]:
        """GCRA without a read. Case A (the bucket's tat has passed, or no bucket): tat = now +
        inc. Case B (tat in the future): tat = tat + inc, if that stays within one period of
        now. Each case's condition is exactly "this case applies and the cost fits", so a
        wrong guess is cancelled, never mischarged; the refusal returns the stored tat."""
        inc = r.cost * GCRA_PERIOD_S / max(1, r.limit_per_minute)
        op: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(f"T#{tenant_id}", f"R#{r.key}"),
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        values = {":now": _n(now), ":ttl": _ttl(now + _RATE_TTL_S)}
        if tat_passed:
            op["UpdateExpression"] = "SET tat = :new, #ttl = :ttl"
            op["ConditionExpression"] = "attribute_not_exists(tat) OR tat <= :now"
            values[":new"] = _n(now + inc)
        else:
            op["UpdateExpression"] = "SET tat = tat + :inc, #ttl = :ttl"
            op["ConditionExpression"] = "tat > :now AND tat <= :max"
            values[":inc"] = _n(inc)
            values[":max"] = _n(now + GCRA_PERIOD_S - inc + _GCRA_EPSILON_S)
        op["ExpressionAttributeValues"] = values
        return {"Update": op}

    def _reservation_item(self, reservation: Reservation, windows: list[WindowLimit]) -> Item:
        keep_until = max([reservation.expires_at] + [w.expires_at for w in windows]) + _RESERVATION_TTL_MARGIN_S
        return {
            **self._key(f"T#{reservation.tenant_id}", f"RES#{reservation.id}"),
            "id": _s(reservation.id),
            "tenant_id": _s(reservation.tenant_id),
            "amount_micros": _n(reservation.amount_micros),
            "windows": {"L": [_s(k) for k in reservation.windows]},
            "expires_at": _n(reservation.expires_at),
            "ttl": _ttl(keep_until),
            "request_id": _s(reservation.request_id),
            "team": _s(reservation.team),
            "operation": _s(reservation.operation),
            "created_at": _s(reservation.created_at),
            "model": _s(reservation.model),
            "input_tokens": _n(int(reservation.input_tokens)),
            "output_tokens": _n(int(reservation.output_tokens)),
        }

    def reserve(
        self, reservation: Reservation, windows: list[WindowLimit], rates: list[RateLimit], now: float
    ) -> ReserveOutcome:
        """Hold the amount in every window, charge every rate and store the reservation in
        one TransactWriteItems; a cancelled transaction says which limit refused."""
        tenant_id, amount = reservation.tenant_id, reservation.amount_micros
        for r in rates:
            allowed, _, retry_after = gcra(None, now, r)
            if not allowed:  # the cost exceeds the whole bucket: no write can ever fit it
                return self._refuse_impossible_rate(reservation, windows, r, retry_after)

        with self._hint_lock:
            known = {r.key: self._rate_hints.get((tenant_id, r.key)) for r in rates}
        tat_passed = {r.key: known[r.key] is None or known[r.key] <= now for r in rates}  # type: ignore[operator]
        put = {
            "Put": {
                "TableName": self.table,
                "Item": self._reservation_item(reservation, windows),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        for _ in range(_CASE_ATTEMPTS):
            items = [self._window_reserve(tenant_id, w, amount) for w in windows]
            items += [self._rate_charge(tenant_id, r, now, tat_passed[r.key]) for r in rates]
            items.append(put)
            try:
                self._transact(items)
            except _Contended:
                # Other transactions kept writing these items: contention, not an outage.
                # Nothing of ours was applied (a conflicting transaction is not).
                return self._contention(windows, rates, rate_first=False)
            except _Cancelled as cancelled:
                reasons = cancelled.reasons
                if _failed(reasons[-1]):
                    # Our reservation id (random, unique) already exists: an earlier attempt of this
                    # very call was applied and only its answer was lost. The hold is ours: reserved.
                    return self._reserved(reservation, windows, rates, now, known, tat_passed)
                for w, reason in zip(windows, reasons[: len(windows)], strict=False):
                    if _failed(reason):  # the first window that does not fit, as in the SQLite store
                        old = reason.get("Item")
                        state = WindowState(
                            w.key, w.limit_micros, _int(old, "spent_micros"), _int(old, "reserved_micros")
                        )
                        self._observe_window(
                            tenant_id, w.key, state.spent_micros, state.reserved_micros, w.limit_micros
                        )
                        refusal = Refusal("window", w.key, w.limit_micros, state.spent_micros, state.remaining_micros)
                        return ReserveOutcome(refusal=refusal, windows=[state])
                rate_refusal: Refusal | None = None
                for r, reason in zip(rates, reasons[len(windows) : len(windows) + len(rates)], strict=False):
                    if not _failed(reason):
                        continue
                    tat = _float(reason.get("Item"), "tat")
                    known[r.key] = tat
                    self._observe_rate(tenant_id, r.key, tat)
                    allowed, _, retry_after = gcra(tat, now, r)
                    if not allowed and rate_refusal is None:
                        rate_refusal = Refusal("rate", r.key, r.limit_per_minute, retry_after_s=retry_after)
                    tat_passed[r.key] = tat is None or tat <= now
                if rate_refusal is not None:
                    return ReserveOutcome(refusal=rate_refusal)
                continue  # a GCRA case was guessed wrong: the stored tat now says which applies
            return self._reserved(reservation, windows, rates, now, known, tat_passed)
        # The buckets kept moving between the two cases under contention: refuse briefly
        # rather than loop (never over-admit).
        return self._contention(windows, rates, rate_first=True)

    @staticmethod
    def _contention(windows: list[WindowLimit], rates: list[RateLimit], rate_first: bool) -> ReserveOutcome:
        """A reserve that kept losing write races: refused for a moment (429 with a short
        retry), never StoreUnavailable, never admitted."""
        retry_after = round(random.uniform(0.5, 1.0), 3)
        if rates and (rate_first or not windows):
            r = rates[0]
            return ReserveOutcome(refusal=Refusal("contention", r.key, r.limit_per_minute, retry_after_s=retry_after))
        w = windows[0] if windows else WindowLimit("", 0, 0.0)
        return ReserveOutcome(refusal=Refusal("contention", w.key, w.limit_micros, retry_after_s=retry_after))

    def _reserved(
        self,
        reservation: Reservation,
        windows: list[WindowLimit],
        rates: list[RateLimit],
        now: float,
        known: dict[str, float | None],
        tat_passed: dict[str, bool],
    ) -> ReserveOutcome:
        tenant_id = reservation.tenant_id
        remaining: dict[str, int] = {}
        for r in rates:
            inc = r.cost * GCRA_PERIOD_S / max(1, r.limit_per_minute)
            old = known[r.key]
            tat = now + inc if tat_passed[r.key] or old is None else old + inc
            self._observe_rate(tenant_id, r.key, tat)
            remaining[r.key] = gcra_remaining(tat, now, r)
        for w in windows:
            self._apply_window(tenant_id, w.key, 0, reservation.amount_micros, w.limit_micros)
        states = self._window_views(tenant_id, [w.key for w in windows], read_missing=False)
        return ReserveOutcome(windows=states, rate_remaining=remaining)

    def _refuse_impossible_rate(
        self, reservation: Reservation, windows: list[WindowLimit], r: RateLimit, retry_after: float
    ) -> ReserveOutcome:
        """A rate that can never fit: still report a window refusal first (SQLite's order)."""
        amount = reservation.amount_micros
        if windows and amount > 0:
            states = self.get_windows(reservation.tenant_id, [w.key for w in windows])
            for w, s in zip(windows, states, strict=True):
                state = WindowState(w.key, w.limit_micros, s.spent_micros, s.reserved_micros)
                if s.spent_micros + s.reserved_micros + amount > w.limit_micros:
                    refusal = Refusal("window", w.key, w.limit_micros, state.spent_micros, state.remaining_micros)
                    return ReserveOutcome(refusal=refusal, windows=[state])
        return ReserveOutcome(refusal=Refusal("rate", r.key, r.limit_per_minute, retry_after_s=retry_after))

    def _window_move(self, tenant_id: str, key: str, held: int, cost: int) -> dict[str, Any]:
        """reserved -= held, spent += cost (committed follows)."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._key(f"T#{tenant_id}", f"W#{key}"),
                "UpdateExpression": (
                    "SET spent_micros = if_not_exists(spent_micros, :zero) + :cost, "
                    "reserved_micros = if_not_exists(reserved_micros, :zero) - :held, "
                    "committed_micros = if_not_exists(committed_micros, :zero) + :delta"
                ),
                "ExpressionAttributeValues": {
                    ":zero": _n(0),
                    ":cost": _n(cost),
                    ":held": _n(held),
                    ":delta": _n(cost - held),
                },
            }
        }

    def _guard_put(self, tenant_id: str, ledger: LedgerEntry, at: str) -> dict[str, Any]:
        """The settle guard of a ledger id: created once (whoever charges it first), it keeps
        the entry's sort-key time and, for a charge at the worst case, ``unsettled`` and
        the cost a late settle corrects."""
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **self._key(f"LID#{ledger.id}", "LID"),
                    "tenant_id": _s(tenant_id),
                    "at": _s(at),
                    "unsettled": {"BOOL": bool(ledger.unsettled)},
                    "cost_micros": _n(int(ledger.cost_micros)),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _ledger_put(self, tenant_id: str, ledger: LedgerEntry) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": {**self._key(f"L#{tenant_id}", f"{ledger.at}#{ledger.id}"), **_native(ledger)},
            }
        }

    def settle(
        self,
        reservation: Reservation,
        cost_micros: int,
        ledger: LedgerEntry | None,
        audit: list[AuditEvent],
    ) -> list[WindowState]:
        """One TransactWriteItems on the normal path: the ledger entry (guarded by its id's
        ``LID#`` item), a check that the reservation was not charged unsettled, the
        reservation's conditional delete, every window's move from reserved to spent, the
        audit events. A late settle of a reservation charged unsettled costs one more: the
        guard flipped under ``unsettled = true``, the entry replaced, spent corrected."""
        return self._settle(reservation, cost_micros, ledger, audit, live_only=False)[0]

    def _settle(
        self,
        reservation: Reservation,
        cost_micros: int,
        ledger: LedgerEntry | None,
        audit: list[AuditEvent],
        live_only: bool,
    ) -> tuple[list[WindowState], bool]:
        """settle; True when it changed the books. ``live_only``: charge only a reservation
        still stored (an unsettled charge of one found expired, which a settle or release
        may have ended meanwhile)."""
        tenant_id, keys = reservation.tenant_id, reservation.windows
        lid = ledger_id_for(reservation.id)
        held: int | None = reservation.amount_micros  # None: the reservation is gone (reclaimed, released)
        charged: Item | None = None  # the unsettled guard a late settle replaces
        for _ in range(_CASE_ATTEMPTS):
            items: list[dict[str, Any]] = []
            guard_at = check_at = res_at = -1
            if charged is not None and ledger is not None:
                # A late settle: the worst case charged unsettled becomes the real cost, once.
                old_cost, old_at = _int(charged, "cost_micros"), _str(charged, "at")
                delta = cost_micros - old_cost
                items.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": self._key(f"LID#{lid}", "LID"),
                            "UpdateExpression": "SET unsettled = :f, cost_micros = :c, ledger_id = :id",
                            "ConditionExpression": "unsettled = :t",
                            "ExpressionAttributeValues": {
                                ":t": {"BOOL": True},
                                ":f": {"BOOL": False},
                                ":c": _n(cost_micros),
                                ":id": _s(ledger.id),
                            },
                        }
                    }
                )
                if ledger.id == lid:  # the same item: same sort key, the unsettled entry's time
                    items.append(self._ledger_put(tenant_id, replace(ledger, at=old_at)))
                else:
                    items.append(self._guard_put(tenant_id, ledger, ledger.at))
                    items.append(
                        {"Delete": {"TableName": self.table, "Key": self._key(f"L#{tenant_id}", f"{old_at}#{lid}")}}
                    )
                    items.append(self._ledger_put(tenant_id, ledger))
                items += [self._window_move(tenant_id, k, 0, delta) for k in keys]
                d_spent, d_reserved = delta, 0
            else:
                if ledger is not None:
                    guard_at = len(items)
                    items.append(self._guard_put(tenant_id, ledger, ledger.at))
                if ledger is None or ledger.id != lid:
                    check_at = len(items)  # not charged under the reservation's own ledger id
                    items.append(
                        {
                            "ConditionCheck": {
                                "TableName": self.table,
                                "Key": self._key(f"LID#{lid}", "LID"),
                                "ConditionExpression": "attribute_not_exists(pk)",
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            }
                        }
                    )
                if ledger is not None:
                    items.append(self._ledger_put(tenant_id, ledger))
                if held is not None:
                    res_at = len(items)
                    items.append(
                        {
                            "Delete": {
                                "TableName": self.table,
                                "Key": self._key(f"T#{tenant_id}", f"RES#{reservation.id}"),
                                "ConditionExpression": "attribute_exists(pk) AND amount_micros = :held",
                                "ExpressionAttributeValues": {":held": _n(held)},
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            }
                        }
                    )
                items += [self._window_move(tenant_id, k, held or 0, cost_micros) for k in keys]
                d_spent, d_reserved = cost_micros, -(held or 0)
            room = max(0, _TX_MAX_ITEMS - len(items))
            in_tx, overflow = audit[:room], audit[room:]
            items += [{"Put": {"TableName": self.table, "Item": self._audit_item(e)}} for e in in_tx]
            try:
                self._transact(items)
            except _Cancelled as cancelled:
                reasons = cancelled.reasons + [{}] * (len(items) - len(cancelled.reasons))
                if charged is not None:  # replaced meanwhile (another late settle): nothing to do
                    return self._settled_before(reservation, audit), False
                guard_failed = guard_at >= 0 and _failed(reasons[guard_at])
                check_failed = check_at >= 0 and _failed(reasons[check_at])
                if guard_failed and ledger is not None and ledger.id != lid:
                    return self._settled_before(reservation, audit), False  # settled before under this id
                if guard_failed or check_failed:
                    # the reservation's own ledger id is charged already: its guard says how
                    old_guard = reasons[guard_at if guard_failed else check_at].get("Item")
                    guard = old_guard or self._get(f"LID#{lid}", "LID")
                    if guard is None:
                        continue  # (never deleted: only a server without ALL_OLD and a race)
                    unsettled = bool(guard.get("unsettled", {}).get("BOOL", False))
                    if not unsettled or ledger is None or ledger.unsettled:
                        # settled before, or charged unsettled already: nothing new to say
                        return self._settled_before(reservation, audit), False
                    charged = guard
                    continue
                if res_at >= 0 and _failed(reasons[res_at]):
                    old = reasons[res_at].get("Item")
                    # Gone (released, or lost): money spent is still charged, unless this is an
                    # unsettled charge of an expired reservation that was ended meanwhile.
                    # Stored with another amount: return what is actually held.
                    held = _int(old, "amount_micros") if old else None
                    if held is None and live_only:
                        return self._settled_before(reservation, audit), False
                    continue
                raise StoreUnavailable(f"settle of {reservation.id} cancelled: {cancelled.reasons}") from None
            break
        else:
            raise StoreUnavailable(f"settle of {reservation.id} kept changing under the transaction")
        if overflow:
            self._batch_write([self._audit_item(e) for e in overflow])
        for k in keys:
            self._apply_window(tenant_id, k, d_spent, d_reserved, None)
        return self._window_views(tenant_id, keys, read_missing=True), True

    def _settled_before(self, reservation: Reservation, audit: list[AuditEvent]) -> list[WindowState]:
        """A settle that changes nothing still records its audit events (as the SQLite store)."""
        if audit:
            self._batch_write([self._audit_item(e) for e in audit])
        return self._window_views(reservation.tenant_id, reservation.windows, read_missing=True)

    def release(self, tenant_id: str, reservation_id: str) -> None:
        """Return a reservation's amount to its windows (a request known never to have been
        sent): read it, then one transaction deleting it under its amount."""
        item = self._get(f"T#{tenant_id}", f"RES#{reservation_id}")
        if item is None:
            return
        amount = _int(item, "amount_micros")
        keys = [v["S"] for v in item.get("windows", {}).get("L", [])]
        try:
            self._transact(
                [
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": self._key(item["pk"]["S"], item["sk"]["S"]),
                            "ConditionExpression": "attribute_exists(pk) AND amount_micros = :held",
                            "ExpressionAttributeValues": {":held": _n(amount)},
                        }
                    }
                ]
                + [self._window_move(tenant_id, k, amount, 0) for k in keys]
            )
        except _Cancelled:
            return  # settled, charged or released meanwhile
        for k in keys:
            self._apply_window(tenant_id, k, 0, -amount, None)

    @staticmethod
    def _reservation_from_item(item: Item) -> Reservation:
        return Reservation(
            id=_str(item, "id") or item["sk"]["S"][len("RES#") :],
            tenant_id=_str(item, "tenant_id"),
            amount_micros=_int(item, "amount_micros"),
            windows=[v["S"] for v in item.get("windows", {}).get("L", [])],
            expires_at=_float(item, "expires_at") or 0.0,
            request_id=_str(item, "request_id"),
            team=_str(item, "team"),
            operation=_str(item, "operation"),
            created_at=_str(item, "created_at"),
            model=_str(item, "model"),
            input_tokens=_int(item, "input_tokens"),
            output_tokens=_int(item, "output_tokens"),
        )

    def _charge_unsettled(self, items: list[Item]) -> int:
        """Charge stored reservations at their worst case, as unsettled ledger entries (one
        transaction each); how many this call charged."""
        charged = 0
        for item in items:
            reservation = self._reservation_from_item(item)
            entry = unsettled_entry(reservation)
            charged += self._settle(reservation, reservation.amount_micros, entry, [], live_only=True)[1]
        return charged

    def _reservation_items(self, tenant_id: str, **filters: Any) -> list[Item]:
        return self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues={":pk": _s(f"T#{tenant_id}"), ":p": _s("RES#"), **filters.pop("values", {})},
            ConsistentRead=True,
            **filters,
        )

    def reclaim_expired(self, tenant_id: str, now: float) -> int:
        """Charge the tenant's reservations whose expires_at has passed, unsettled (a Query,
        then one transaction each)."""
        expired = self._reservation_items(tenant_id, FilterExpression="expires_at < :now", values={":now": _n(now)})
        return self._charge_unsettled(expired)

    def get_windows(self, tenant_id: str, keys: list[str]) -> list[WindowState]:
        """Current state of the named windows: consistent BatchGetItem (missing ones empty)."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, Item] = {}
        for start in range(0, len(unique), _BATCH_GET_MAX):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [self._key(f"T#{tenant_id}", f"W#{k}") for k in unique[start : start + _BATCH_GET_MAX]],
                    "ConsistentRead": True,
                }
            }

            def keep(out: dict[str, Any]) -> None:
                for item in out.get("Responses", {}).get(self.table, []):
                    found[item["sk"]["S"][2:]] = item

            self._batch_until_done("batch_get_item", request, "UnprocessedKeys", "reads of", keep)
        states = []
        for k in keys:
            item = found.get(k)
            state = WindowState(
                k, _int(item, "limit_micros"), _int(item, "spent_micros"), _int(item, "reserved_micros")
            )
            self._observe_window(tenant_id, k, state.spent_micros, state.reserved_micros, state.limit_micros)
            states.append(state)
        return states

    def claim_marker(self, tenant_id: str, marker: str, expires_at: float) -> bool:
        """True the first time the marker is claimed (conditional put)."""
        return self._put_new({**self._key(f"T#{tenant_id}", f"M#{marker}"), "expires_at": _n(expires_at),
                              "ttl": _ttl(expires_at)})

    # ledger and audit ------------------------------------------------------------------------
    def list_ledger(self, tenant_id: str, since: str | None = None, limit: int = 10_000) -> list[LedgerEntry]:
        """Ledger entries at or after ``since``, oldest first (the sort key is ``at#id``)."""
        return [_from_native(LedgerEntry, i) for i in self._timeline(f"L#{tenant_id}", limit, ">=", since)]

    def _timeline(self, pk: str, limit: int, op: str, bound: str | None, newest_first: bool = False) -> list[Item]:
        """Up to ``limit`` items of ``pk`` in sort-key order (``at#id``), those with ``sk op bound`` when given."""
        if limit <= 0:
            return []
        values = {":pk": _s(pk)}
        condition = "pk = :pk"
        if bound:
            condition += f" AND sk {op} :bound"
            values[":bound"] = _s(bound)
        return self._query(limit=limit, KeyConditionExpression=condition, ExpressionAttributeValues=values,
                           ScanIndexForward=not newest_first, ConsistentRead=True)

    @staticmethod
    def _audit_item(event: AuditEvent) -> Item:
        return {
            "pk": _s(f"A#{event.tenant_id}"),
            "sk": _s(f"{event.at}#{event.id}"),
            "data": _s(json.dumps(asdict(event))),
        }

    def append_audit(self, events: list[AuditEvent]) -> None:
        """Append audit events (BatchWriteItem, 25 at a time)."""
        if events:
            self._batch_write([self._audit_item(e) for e in events])

    def list_audit(self, tenant_id: str, limit: int = 50, before: str | None = None) -> list[AuditEvent]:
        """Newest first, strictly before ``before`` (``at#id`` < ``at`` excludes equal times)."""
        items = self._timeline(f"A#{tenant_id}", limit, "<", before, newest_first=True)
        return [AuditEvent(**json.loads(i["data"]["S"])) for i in items]

    # notes and tickets -----------------------------------------------------------------------
    def add_note(self, note: Note) -> None:
        """Store a note."""
        self._call(
            "put_item",
            TableName=self.table,
            Item={**self._key(f"N#{note.tenant_id}", f"{note.created_at}#{note.id}"), **_native(note)},
        )

    def list_notes(self, tenant_id: str, query: str | None = None, limit: int = 50) -> list[Note]:
        """Newest first, optionally filtered by a case-insensitive substring (filtered here)."""
        items = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(f"N#{tenant_id}")},
            ScanIndexForward=False,
            ConsistentRead=True,
            limit=None if query else limit,
        )
        notes = [_from_native(Note, i) for i in items]
        if query:
            q = query.lower()
            notes = [n for n in notes if q in n.title.lower() or q in n.body.lower() or q in " ".join(n.tags).lower()]
        return notes[: max(0, limit)]

    def create_ticket(self, ticket: Ticket) -> None:
        """Store a ticket."""
        self._call(
            "put_item",
            TableName=self.table,
            Item={**self._key(f"TK#{ticket.tenant_id}", ticket.id), **_native(ticket)},
        )

    def update_ticket(self, tenant_id: str, ticket_id: str, changes: dict[str, Any]) -> Ticket:
        """Change one of the tenant's tickets (one conditional UpdateItem)."""
        allowed = {k: v for k, v in changes.items() if k in ("subject", "body", "status", "priority")}
        allowed["updated_at"] = now_iso()
        names = {f"#f{i}": k for i, k in enumerate(allowed)}
        values = {f":v{i}": _s(str(v)) for i, v in enumerate(allowed.values())}
        try:
            out = self._call(
                "update_item",
                expect=("ConditionalCheckFailedException",),
                TableName=self.table,
                Key=self._key(f"TK#{tenant_id}", ticket_id),
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(allowed))),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self._client_error as exc:
            raise KeyError(ticket_id) from exc
        return _from_native(Ticket, out["Attributes"])  # type: ignore[no-any-return]

    def list_tickets(self, tenant_id: str, status: str | None = None, limit: int = 50) -> list[Ticket]:
        """Newest first, optionally by status (the partition is keyed by id, sorted here)."""
        items = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(f"TK#{tenant_id}")},
            ConsistentRead=True,
        )
        tickets = sorted((_from_native(Ticket, i) for i in items), key=lambda t: (t.created_at, t.id), reverse=True)
        return [t for t in tickets if status is None or t.status == status][: max(0, limit)]

    # idempotency -----------------------------------------------------------------------------
    def claim_idempotency(self, tenant_id: str, record: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        """One conditional put: claimed when absent or expired, else the live record comes back."""
        try:
            self._call(
                "put_item",
                expect=("ConditionalCheckFailedException",),
                TableName=self.table,
                Item={
                    **self._key(f"T#{tenant_id}", f"I#{record.key}"),
                    "body_hash": _s(record.body_hash),
                    "expires_at": _n(record.expires_at),
                    "ttl": _ttl(record.expires_at),
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": _n(now)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except self._client_error as exc:
            old = exc.response.get("Item")
            if not old:  # a server that does not return the item: read it
                old = self._get(f"T#{tenant_id}", f"I#{record.key}") or {}
            response = old.get("response", {}).get("S")
            return IdempotencyRecord(
                key=record.key,
                body_hash=_str(old, "body_hash"),
                expires_at=_float(old, "expires_at") or 0.0,
                response=json.loads(response) if response else None,
            )

    def complete_idempotency(
        self, tenant_id: str, key: str, response: dict[str, Any], expires_at: float | None = None
    ) -> None:
        """Store the response of a claimed key, and its new expiry if given (nothing when the
        claim is gone)."""
        update, values = "SET #r = :r", {":r": _s(json.dumps(response))}
        names = {"#r": "response"}
        if expires_at is not None:
            update += ", expires_at = :e, #ttl = :ttl"
            values.update({":e": _n(expires_at), ":ttl": _ttl(expires_at)})
            names["#ttl"] = "ttl"
        try:
            self._call(
                "update_item",
                expect=("ConditionalCheckFailedException",),
                TableName=self.table,
                Key=self._key(f"T#{tenant_id}", f"I#{key}"),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self._client_error:
            pass

    def release_idempotency(self, tenant_id: str, key: str) -> None:
        """Forget a claim."""
        self._call("delete_item", TableName=self.table, Key=self._key(f"T#{tenant_id}", f"I#{key}"))

    # orchestrated runs and sessions: one item each, versioned by a conditional put -----------
    def _versioned_put(self, sk: str, tenant_id: str, data: dict[str, Any], expected: int, ttl_at: float) -> bool:
        """Put ``data`` at version ``expected + 1`` iff the stored version is ``expected``
        (0: the item must not exist); False when the condition failed."""
        item = {**self._key(f"T#{tenant_id}", sk), "data": _s(json.dumps(data)), "ver": _n(expected + 1)}
        if ttl_at:
            item["ttl"] = _ttl(ttl_at)
        condition = "attribute_not_exists(pk)" if expected == 0 else "ver = :v"
        values = {} if expected == 0 else {"ExpressionAttributeValues": {":v": _n(expected)}}
        try:
            self._call("put_item", expect=("ConditionalCheckFailedException",), TableName=self.table, Item=item,
                       ConditionExpression=condition, **values)
        except self._client_error:
            return False
        return True

    def put_run(self, run: RunRecord) -> None:
        """Store a new run at version 1 (KeyError when the id exists)."""
        run.version = 1
        if not self._versioned_put(f"RUN#{run.id}", run.tenant_id, asdict(run), 0, run.expires_at):
            raise KeyError(run.id)

    def get_run(self, tenant_id: str, run_id: str) -> RunRecord | None:
        """The tenant's run, or None."""
        item = self._get(f"T#{tenant_id}", f"RUN#{run_id}")
        return RunRecord(**json.loads(item["data"]["S"])) if item else None

    def update_run(self, run: RunRecord, expected_version: int) -> bool:
        """Conditional put on ``ver``."""
        if expected_version < 1:
            return False
        data = {**asdict(run), "version": expected_version + 1, "updated_at": now_iso()}
        if not self._versioned_put(f"RUN#{run.id}", run.tenant_id, data, expected_version, run.expires_at):
            return False
        run.version, run.updated_at = expected_version + 1, data["updated_at"]
        return True

    def list_runs(self, tenant_id: str, limit: int = 50, before: str | None = None) -> list[RunRecord]:
        """Newest first, strictly before ``before``: one (paged) Query of the tenant's ``RUN#``
        items, sorted here by ``created_at`` (a run's sort key is its random id, and runs
        expire after 30 days, so a tenant has few enough to read them all)."""
        if limit <= 0:
            return []
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
            ExpressionAttributeValues={":pk": _s(f"T#{tenant_id}"), ":run": _s("RUN#")},
            ConsistentRead=True,
        )
        runs = [RunRecord(**json.loads(i["data"]["S"])) for i in items]
        runs = [r for r in runs if before is None or r.created_at < before]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return runs[:limit]

    def charge_run_reservations(self, tenant_id: str, run_id: str) -> int:
        """Charge unsettled the tenant's reservations whose windows include ``run:<run_id>``."""
        key = f"run:{run_id}"
        held = self._reservation_items(tenant_id)
        return self._charge_unsettled([i for i in held if key in [v["S"] for v in i.get("windows", {}).get("L", [])]])

    def get_session(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        """The tenant's session, or None."""
        item = self._get(f"T#{tenant_id}", f"SES#{session_id}")
        return SessionRecord(**json.loads(item["data"]["S"])) if item else None

    def put_session(self, session: SessionRecord, expected_version: int) -> bool:
        """Conditional put on ``ver`` (create when ``expected_version`` is 0)."""
        data = {**asdict(session), "version": expected_version + 1, "updated_at": now_iso()}
        if not self._versioned_put(f"SES#{session.id}", session.tenant_id, data, expected_version,
                                   session.expires_at):
            return False
        session.version, session.updated_at = expected_version + 1, data["updated_at"]
        return True

    def delete_session(self, tenant_id: str, session_id: str) -> None:
        """Forget the session."""
        self._call("delete_item", TableName=self.table, Key=self._key(f"T#{tenant_id}", f"SES#{session_id}"))
