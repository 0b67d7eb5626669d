"""Firestore backend: sharded budget windows written with compare-and-set commits.

Layout (``{x}`` is an escaped document id: ``%`` and ``/`` percent-encoded)::

    api_keys/{key_hash}                      tenant_id, prefix, created_at, revoked
    tenants/{tenant_id}                      the Tenant's fields
      windows/{window_key}__s{i}             spent, reserved, shift, limit, limit_at, ttl   (i < shards)
      rates/{rate_key}__s{j}                 tat, ttl                                       (j < shards)
      reservations/{reservation_id}          amount_micros, windows, holds, expires_at, ..., ttl
      ledger/{entry_id}                      the LedgerEntry's fields (at is queried)
      audit/{event_id}                       the AuditEvent's fields, detail as JSON (at is queried)
      notes/{note_id}, tickets/{ticket_id}   the record's fields (created_at is ordered on)
      idempotency/{key}                      body_hash, expires_at, response (JSON), ttl
      markers/{marker}                       expires_at, ttl

``ttl`` is a Timestamp meant for a Firestore TTL policy, which the deployment enables per
collection group (``gcloud firestore fields ttls update ttl --collection-group=windows
--enable-ttl``, likewise rates, reservations, idempotency, markers). A reservation's ttl is
the latest expiry of the windows it holds, never earlier, so TTL deletion can never drop a
reservation whose money a live window still counts as reserved. Only single-field
indexes are queried (reservations by expires_at, ledger and audit by at, api_keys by
tenant_id), so no composite index is needed. API keys live at the top level because a
request is authenticated by hash before its tenant is known.

Concurrency design. No Firestore transactions: on one hot document they serialise behind
pessimistic locks (the emulator livelocks with ~40 concurrent transactional writers) and
in production one document sustains about one write per second. Instead:

* Every budget window is split into ``shards`` documents (default 8). Shard ``i`` owns an
  allotment ``limit // shards`` (the last one also gets the remainder) plus ``shift``, a
  transferred allotment (the shifts of a window always sum to zero). Its room is
  ``allotment + shift - spent - reserved``. The window's state is the sum of its shards.
* ``reserve`` reads every shard of every window and rate plus its own reservation id in
  one BatchGetDocuments (a consistent snapshot), decides there, then sends ONE commit:
  each shard it changes is written with an ``update_time`` precondition (``create`` for a
  shard that did not exist) and the reservation document is created. A Firestore commit
  is atomic, so either every window, every rate and the reservation are written or, when
  any precondition fails because someone else wrote one of those documents in between,
  nothing is; then it re-reads and retries with jittered backoff (bounded; raises
  StoreUnavailable when contention does not clear). A reserve holds the amount in one
  random shard with room for all of it, or, near exhaustion, spreads it over several
  shards; it refuses only when the snapshot's window total does not fit, exactly like
  the SQL backends, so a budget is never refused while other shards still have room.
* ``settle`` and ``release`` never refuse, so they need no room check: they delete the
  reservation with an ``update_time`` precondition (so a reservation is given back
  exactly once) in the same commit as server-side ``Increment`` transforms on the shards
  it holds (reserved -= held, spent += cost), plus the ledger entry created with an
  exists=False precondition (a repeated settle finds it and changes nothing).
* A settle that costs more than it held (or settles a reclaimed reservation) charges the
  excess to shards with room, and whatever does not fit leaves a shard with negative room
  ("debt"). The next reserve that sees debt first moves allotment (``shift``) from shards
  with room to the indebted ones in its own commit, preconditions on both.
* Rate limits (GCRA) are sharded the same way: the per-minute limit is split across the
  shards, each shard is a GCRA bucket of its own (``tat``), and a request's cost is taken
  from one bucket, or spread over several. When the limit is smaller than the number of
  shards only the last shard has a rate, which is exactly one GCRA bucket. The sum of
  buckets equals one bucket except that a full shard cannot bank the drip of another, so
  a retry-after is a lower bound.

Overspend argument. Let room_i = allotment_i + shift_i - spent_i - reserved_i; the window
total fits exactly when the sum of room_i is at least the amount. Each reserve commit
writes only shards whose document is unchanged since the snapshot it decided on (the
precondition), and it never takes more than a shard's room in that snapshot, after first
paying every debt it saw. Writers that do not check room only increase room (release,
settle at or below the held amount) or are a settle's own excess cost, which the SQL
backends also book (settle never refuses). So, per shard, every reservation is covered
by room that no concurrent reservation was also given (two reserves that decide on the
same shard version cannot both commit), and reserves only draw from the window after
its debts are paid; summing over shards, settled + reserved never exceeds the limit
except by settles that cost more than they held. Changing the shard count of a live
deployment would change the allotments, not the sums: totals are always over all shards.

Every API call gets a short per-attempt timeout and a bounded retry on UNAVAILABLE, so a
Firestore that is down fails within a few seconds; every google.api_core / google.auth
error becomes :class:`StoreUnavailable`. ``round_trips`` counts API calls, ``conflicts``
counts commits that lost a precondition race and were retried.

The emulator is used when ``FIRESTORE_EMULATOR_HOST`` is set (read by the client library).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

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
    StoreUnavailable,
    Tenant,
    Ticket,
    WindowLimit,
    WindowState,
    now_iso,
)
from shared.store.sqlite import GCRA_PERIOD_S, gcra, gcra_remaining

DEFAULT_SHARDS = 8
CALL_TIMEOUT_S = 4.0  # one RPC attempt
RETRY_DEADLINE_S = 3.0  # all attempts of one RPC on UNAVAILABLE
CONTENTION_DEADLINE_S = 15.0  # all precondition-retries of one operation
_BACKOFF_BASE_S = 0.004
_BACKOFF_CAP_S = 0.2
_EPS = 1e-6

T = TypeVar("T")


class _Conflict(Exception):
    """A commit lost a precondition race (FailedPrecondition, AlreadyExists, Aborted)."""


class _Missing(Exception):
    """An update hit a document that does not exist (NotFound)."""


def _doc_id(value: str) -> str:
    """A Firestore-safe document id for an arbitrary string (reversible, mostly readable)."""
    out = value.replace("%", "%25").replace("/", "%2F")
    if out.startswith("__"):
        out = "%5F" + out[1:]
    if out in ("", ".", ".."):
        out = "%" + out.replace(".", "%2E") + "%00"
    return out


def _ts(epoch: float) -> datetime:
    """An epoch second as a UTC datetime (stored as a Firestore Timestamp)."""
    try:
        return datetime.fromtimestamp(epoch, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return datetime(9999, 12, 31, tzinfo=UTC)


def _split(total: int, n: int) -> list[int]:
    """``total`` split over ``n`` parts: even integer parts, the last one takes the remainder."""
    base = total // n if total > 0 else 0
    parts = [base] * n
    parts[-1] = total - base * (n - 1)
    return parts


def _pick(fields: dict[str, Any], cls: type) -> dict[str, Any]:
    known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    return {k: v for k, v in fields.items() if k in known}


@dataclass
class _Shard:
    """One shard document of a budget window, as read."""

    ref: Any
    exists: bool = False
    update_time: Any = None
    spent: int = 0
    reserved: int = 0
    shift: int = 0
    limit: int | None = None
    limit_at: float = 0.0


@dataclass
class _RateShard:
    """One GCRA bucket of a sharded rate, as read."""

    ref: Any
    exists: bool = False
    update_time: Any = None
    tat: float | None = None


def _window_state(key: str, shards: list[_Shard], limit: int | None = None) -> WindowState:
    """The sum of a window's shards (limit: given, else the latest stored one, else 0)."""
    if limit is None:
        stored = [s for s in shards if s.exists and s.limit is not None]
        limit = max(stored, key=lambda s: s.limit_at).limit if stored else 0
    return WindowState(key, int(limit or 0), sum(s.spent for s in shards), sum(s.reserved for s in shards))


def _avail(tat: float | None, now: float, per_minute: int) -> float:
    """Units a GCRA bucket of ``per_minute`` can still take at ``now``."""
    if per_minute <= 0:
        return 0.0
    used = max(0.0, (tat if tat is not None else now) - now) * per_minute / GCRA_PERIOD_S
    return max(0.0, per_minute - used)


class FirestoreStore:
    """The :class:`~shared.store.base.Store` on Cloud Firestore (native mode) or its emulator."""

    def __init__(self, project: str, database: str = "(default)", shards: int = DEFAULT_SHARDS) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self.project = project
        self.database = database or "(default)"
        self.shards = shards
        self.url = f"firestore://{project}" + ("" if self.database == "(default)" else f"/{self.database}")
        self.round_trips = 0
        self.conflicts = 0
        self._lock = threading.Lock()
        self._client_obj: Any = None
        self._retry_obj: Any = None

    # client and error mapping ----------------------------------------------------------
    def _client(self) -> Any:
        if self._client_obj is None:
            with self._lock:
                if self._client_obj is None:
                    try:
                        from google.api_core import exceptions as gexc
                        from google.api_core.retry import Retry, if_exception_type
                        from google.cloud import firestore
                    except ImportError as exc:  # pragma: no cover - depends on the install
                        raise StoreUnavailable(
                            "the firestore store needs google-cloud-firestore: pip install 'multiagent-framework[gcp]'"
                        ) from exc
                    try:
                        client = firestore.Client(project=self.project, database=self.database)
                    except Exception as exc:  # google.auth DefaultCredentialsError and friends
                        raise StoreUnavailable(f"cannot open Firestore {self.url}: {exc}") from exc
                    self._retry_obj = Retry(
                        predicate=if_exception_type(gexc.ServiceUnavailable, gexc.InternalServerError),
                        initial=0.05,
                        maximum=0.5,
                        multiplier=2.0,
                        timeout=RETRY_DEADLINE_S,
                    )
                    self._client_obj = client
        return self._client_obj

    def _rpc(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One API call with the short timeout and retry, errors mapped."""
        from google.api_core import exceptions as gexc

        with self._lock:
            self.round_trips += 1
        try:
            return fn(*args, retry=self._retry_obj, timeout=CALL_TIMEOUT_S, **kwargs)
        except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Aborted) as exc:
            raise _Conflict(str(exc)) from exc
        except gexc.NotFound as exc:
            raise _Missing(str(exc)) from exc
        except StoreUnavailable:
            raise
        except Exception as exc:
            if _is_backend_error(exc):
                raise StoreUnavailable(f"Firestore {self.url} unavailable: {str(exc)[:300]}") from exc
            raise

    def _get_all(self, refs: list[Any]) -> dict[str, Any]:
        """Snapshots of ``refs`` (one BatchGetDocuments, a consistent read) by path."""
        if not refs:
            return {}
        client = self._client()
        snaps = self._rpc(lambda **kw: list(client.get_all(refs, **kw)))
        return {s.reference.path: s for s in snaps}

    def _get(self, ref: Any) -> Any:
        self._client()
        return self._rpc(ref.get)

    def _query(self, query: Any) -> list[Any]:
        self._client()
        return self._rpc(lambda **kw: list(query.stream(**kw)))

    def _commit(self, batch: Any) -> Any:
        return self._rpc(batch.commit)

    def _lut(self, snap_update_time: Any) -> Any:
        return self._client().write_option(last_update_time=snap_update_time)

    def _contended(self, attempt: int, deadline: float, what: str) -> None:
        """Back off after a lost precondition race, or give up after the deadline."""
        with self._lock:
            self.conflicts += 1
        if time.monotonic() > deadline:
            raise StoreUnavailable(f"Firestore {self.url}: {what} kept losing write races for {CONTENTION_DEADLINE_S}s")
        time.sleep(random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * (2 ** min(attempt, 8)))))

    # references --------------------------------------------------------------------------
    def _tenant(self, tenant_id: str) -> Any:
        return self._client().collection("tenants").document(_doc_id(tenant_id))

    def _sub(self, tenant_id: str, collection: str, doc: str) -> Any:
        return self._tenant(tenant_id).collection(collection).document(_doc_id(doc))

    def _window_refs(self, tenant_id: str, key: str) -> list[Any]:
        col = self._tenant(tenant_id).collection("windows")
        return [col.document(_doc_id(f"{key}__s{i}")) for i in range(self.shards)]

    def _rate_refs(self, tenant_id: str, key: str) -> list[Any]:
        col = self._tenant(tenant_id).collection("rates")
        return [col.document(_doc_id(f"{key}__s{i}")) for i in range(self.shards)]

    @staticmethod
    def _shard(ref: Any, snaps: dict[str, Any]) -> _Shard:
        snap = snaps.get(ref.path)
        if snap is None or not snap.exists:
            return _Shard(ref)
        d = snap.to_dict() or {}
        return _Shard(
            ref,
            True,
            snap.update_time,
            int(d.get("spent", 0)),
            int(d.get("reserved", 0)),
            int(d.get("shift", 0)),
            d.get("limit"),
            float(d.get("limit_at", 0.0)),
        )

    @staticmethod
    def _rate_shard(ref: Any, snaps: dict[str, Any]) -> _RateShard:
        snap = snaps.get(ref.path)
        if snap is None or not snap.exists:
            return _RateShard(ref)
        tat = (snap.to_dict() or {}).get("tat")
        return _RateShard(ref, True, snap.update_time, float(tat) if tat is not None else None)

    # lifecycle ---------------------------------------------------------------------------
    def init(self) -> None:
        """Nothing to create: collections appear on first write; TTL policies are deployed."""
        self._client()

    def ping(self) -> None:
        """One real read."""
        self._get(self._client().collection("_meta").document("ping"))

    def close(self) -> None:
        """Close the gRPC channel."""
        with self._lock:
            client, self._client_obj = self._client_obj, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken channel must not fail shutdown
                pass

    # tenants and keys --------------------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> None:
        """Store a new tenant (StoreUnavailable when the id is taken, as the SQL backends)."""
        self._create(self._tenant(tenant.id), tenant.to_dict())

    def _create(self, ref: Any, data: dict[str, Any]) -> None:
        batch = self._client().batch()
        batch.create(ref, data)
        try:
            self._commit(batch)
        except _Conflict as exc:
            raise StoreUnavailable(f"Firestore {self.url}: {ref.path} already exists") from exc

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None."""
        snap = self._get(self._tenant(tenant_id))
        return Tenant.from_dict(snap.to_dict()) if snap.exists else None

    def list_tenants(self) -> list[Tenant]:
        """Every tenant, oldest first."""
        snaps = self._query(self._client().collection("tenants").order_by("created_at"))
        return [Tenant.from_dict(s.to_dict()) for s in snaps]

    def update_tenant(self, tenant_id: str, changes: dict[str, Any]) -> Tenant:
        """Apply field changes (read, then write with an update_time precondition)."""
        ref = self._tenant(tenant_id)
        deadline = time.monotonic() + CONTENTION_DEADLINE_S
        attempt = 0
        while True:
            snap = self._get(ref)
            if not snap.exists:
                raise KeyError(tenant_id)
            data = snap.to_dict()
            data.update(changes)
            tenant = Tenant.from_dict(data)
            try:
                self._rpc(ref.update, tenant.to_dict(), option=self._lut(snap.update_time))
                return tenant
            except (_Conflict, _Missing):
                attempt += 1
                self._contended(attempt, deadline, "update_tenant")

    def put_api_key(self, record: ApiKeyRecord) -> None:
        """Store a key hash."""
        self._create(
            self._client().collection("api_keys").document(_doc_id(record.key_hash)),
            {
                "tenant_id": record.tenant_id,
                "prefix": record.prefix,
                "created_at": record.created_at,
                "revoked": record.revoked,
            },
        )

    def get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key record for a hash, or None."""
        snap = self._get(self._client().collection("api_keys").document(_doc_id(key_hash)))
        if not snap.exists:
            return None
        d = snap.to_dict()
        return ApiKeyRecord(key_hash, d["tenant_id"], d["prefix"], d["created_at"], bool(d.get("revoked")))

    def revoke_api_keys(self, tenant_id: str) -> int:
        """Revoke every key of a tenant; returns how many were live."""
        from google.cloud.firestore import FieldFilter

        query = self._client().collection("api_keys").where(filter=FieldFilter("tenant_id", "==", tenant_id))
        live = [s for s in self._query(query) if not (s.to_dict() or {}).get("revoked")]
        for start in range(0, len(live), 400):
            batch = self._client().batch()
            for snap in live[start : start + 400]:
                batch.set(snap.reference, {"revoked": True}, merge=True)
            self._commit(batch)
        return len(live)

    # budget ------------------------------------------------------------------------------
    def reserve(
        self, reservation: Reservation, windows: list[WindowLimit], rates: list[RateLimit], now: float
    ) -> ReserveOutcome:
        """Check every window and rate on one snapshot, then hold and charge them in one
        commit whose preconditions fail if any document written changed since that snapshot."""
        tenant_id, amount = reservation.tenant_id, reservation.amount_micros
        windows = list({w.key: w for w in reversed(windows)}.values())[::-1]  # first of each key
        rates = list({r.key: r for r in reversed(rates)}.values())[::-1]
        res_ref = self._sub(tenant_id, "reservations", reservation.id)
        window_refs = {w.key: self._window_refs(tenant_id, w.key) for w in windows}
        rate_refs = {r.key: self._rate_refs(tenant_id, r.key) for r in rates}
        refs = (
            [res_ref]
            + [ref for rs in window_refs.values() for ref in rs]
            + [ref for rs in rate_refs.values() for ref in rs]
        )
        deadline = time.monotonic() + CONTENTION_DEADLINE_S
        attempt = 0
        while True:
            snaps = self._get_all(refs)
            shards = {w.key: [self._shard(ref, snaps) for ref in window_refs[w.key]] for w in windows}
            buckets = {r.key: [self._rate_shard(ref, snaps) for ref in rate_refs[r.key]] for r in rates}
            if snaps.get(res_ref.path) is not None and snaps[res_ref.path].exists:
                # an earlier attempt committed but its answer was lost: it is reserved
                return ReserveOutcome(
                    windows=[_window_state(w.key, shards[w.key], w.limit_micros) for w in windows],
                    rate_remaining={r.key: self._rate_total(buckets[r.key], now, r) for r in rates},
                )
            states: list[WindowState] = []
            for w in windows:
                state = _window_state(w.key, shards[w.key], w.limit_micros)
                if amount > 0 and state.spent_micros + state.reserved_micros + amount > w.limit_micros:
                    return ReserveOutcome(
                        refusal=Refusal("window", w.key, w.limit_micros, state.spent_micros, state.remaining_micros),
                        windows=[state],
                    )
                states.append(state)
            rate_plans: list[tuple[RateLimit, dict[int, float], int]] = []
            for r in rates:
                allowed, new_tats, retry_after, remaining = self._plan_rate(r, buckets[r.key], now)
                if not allowed:
                    return ReserveOutcome(refusal=Refusal("rate", r.key, r.limit_per_minute, retry_after_s=retry_after))
                rate_plans.append((r, new_tats, remaining))
            batch = self._client().batch()
            holds: list[dict[str, Any]] = []
            refused: WindowState | None = None
            for w, state in zip(windows, states, strict=True):
                plan = self._plan_window(w, shards[w.key], amount)
                if plan is None:  # the shards disagree with the total (should not happen): refuse
                    refused = state
                    break
                writes, taken = plan
                for i, (spent, reserved, shift) in writes.items():
                    self._write_shard(batch, shards[w.key][i], w, spent, reserved, shift)
                holds += [{"key": w.key, "shard": i, "micros": m, "expires_at": w.expires_at} for i, m in taken]
                state.reserved_micros += amount
            if refused is not None:
                return ReserveOutcome(
                    refusal=Refusal(
                        "window", refused.key, refused.limit_micros, refused.spent_micros, refused.remaining_micros
                    ),
                    windows=[refused],
                )
            for r, new_tats, _ in rate_plans:
                for j, tat in new_tats.items():
                    bucket = buckets[r.key][j]
                    data = {"tat": tat, "ttl": _ts(tat + GCRA_PERIOD_S)}
                    if bucket.exists:
                        batch.update(bucket.ref, data, option=self._lut(bucket.update_time))
                    else:
                        batch.create(bucket.ref, data)
            ttl = max([reservation.expires_at] + [w.expires_at for w in windows])
            batch.create(
                res_ref,
                {
                    "tenant_id": tenant_id,
                    "amount_micros": amount,
                    "windows": list(reservation.windows),
                    "holds": holds,
                    "expires_at": reservation.expires_at,
                    "ttl": _ts(ttl),
                    "request_id": reservation.request_id,
                    "team": reservation.team,
                    "operation": reservation.operation,
                    "created_at": reservation.created_at,
                },
            )
            try:
                self._commit(batch)
            except (_Conflict, _Missing):
                attempt += 1
                self._contended(attempt, deadline, "reserve")
                continue
            return ReserveOutcome(windows=states, rate_remaining={r.key: rem for r, _, rem in rate_plans})

    def _write_shard(self, batch: Any, shard: _Shard, w: WindowLimit, spent: int, reserved: int, shift: int) -> None:
        data = {
            "spent": spent,
            "reserved": reserved,
            "shift": shift,
            "limit": w.limit_micros,
            "limit_at": time.time(),
            "ttl": _ts(w.expires_at),
        }
        if shard.exists:
            batch.update(shard.ref, data, option=self._lut(shard.update_time))
        else:
            batch.create(shard.ref, data)

    def _plan_window(
        self, w: WindowLimit, shards: list[_Shard], amount: int
    ) -> tuple[dict[int, tuple[int, int, int]], list[tuple[int, int]]] | None:
        """Which shards to write (index -> spent, reserved, shift) and where the amount is
        held (index, micros); None when the shards cannot hold it."""
        writes: dict[int, tuple[int, int, int]] = {}
        if amount <= 0:
            if not any(s.exists for s in shards):  # remember the window and its limit, like the SQL rows
                writes[0] = (0, 0, 0)
            return writes, []
        allot = _split(w.limit_micros, self.shards)
        shift = [s.shift for s in shards]
        room = [allot[i] + shift[i] - s.spent - s.reserved for i, s in enumerate(shards)]
        touched: set[int] = set()
        # pay every debt first, from the shards with the most room
        for i in [i for i in range(self.shards) if room[i] < 0]:
            for j in sorted(range(self.shards), key=lambda k: -room[k]):
                if room[i] >= 0 or room[j] <= 0:
                    break
                moved = min(room[j], -room[i])
                shift[j] -= moved
                shift[i] += moved
                room[j] -= moved
                room[i] += moved
                touched |= {i, j}
        if any(r < 0 for r in room):
            return None
        taken: list[tuple[int, int]] = []
        whole = [i for i in range(self.shards) if room[i] >= amount]
        if whole:
            i = random.choice(whole)
            taken.append((i, amount))
        else:
            rest = amount
            for i in sorted(range(self.shards), key=lambda k: -room[k]):
                if rest <= 0 or room[i] <= 0:
                    break
                part = min(room[i], rest)
                taken.append((i, part))
                rest -= part
            if rest > 0:
                return None
        held = dict(taken)
        for i in touched | set(held):
            s = shards[i]
            writes[i] = (s.spent, s.reserved + held.get(i, 0), shift[i])
        return writes, taken

    def _plan_rate(
        self, r: RateLimit, buckets: list[_RateShard], now: float
    ) -> tuple[bool, dict[int, float], float, int]:
        """(allowed, new tat per bucket, retry after, units remaining) for one sharded rate."""
        per_minute = max(1, r.limit_per_minute)
        parts = _split(per_minute, self.shards)
        usable = [j for j in range(self.shards) if parts[j] > 0]
        if len(usable) == 1:  # exactly one GCRA bucket: the SQL backends' arithmetic
            j = usable[0]
            bucket_rate = RateLimit(r.key, parts[j], r.cost)
            allowed, tat, retry_after = gcra(buckets[j].tat, now, bucket_rate)
            if not allowed:
                return False, {}, retry_after, 0
            changed = {j: tat} if r.cost > 0 else {}
            return True, changed, 0.0, gcra_remaining(tat, now, bucket_rate)
        if r.cost <= 0:
            return True, {}, 0.0, self._rate_total(buckets, now, r)
        tats = [b.tat for b in buckets]
        whole = [j for j in usable if gcra(tats[j], now, RateLimit(r.key, parts[j], r.cost))[0]]
        changed: dict[int, float] = {}
        if whole:
            j = random.choice(whole)
            changed[j] = gcra(tats[j], now, RateLimit(r.key, parts[j], r.cost))[1]
        else:
            avail = {j: _avail(tats[j], now, parts[j]) for j in usable}
            total = sum(avail.values())
            if total + _EPS < r.cost:
                return False, {}, (r.cost - total) * GCRA_PERIOD_S / per_minute, 0
            rest = float(r.cost)
            for j in sorted(usable, key=lambda k: -avail[k]):
                if rest <= _EPS:
                    break
                part = min(avail[j], rest)
                if part <= 0:
                    continue
                start = max(tats[j] if tats[j] is not None else now, now)
                changed[j] = min(start + part * GCRA_PERIOD_S / parts[j], now + GCRA_PERIOD_S)
                rest -= part
        for j, tat in changed.items():
            tats[j] = tat
        remaining = sum(_avail(tats[j], now, parts[j]) for j in usable)
        return True, changed, 0.0, int(remaining + _EPS)

    def _rate_total(self, buckets: list[_RateShard], now: float, r: RateLimit) -> int:
        parts = _split(max(1, r.limit_per_minute), self.shards)
        usable = [j for j in range(self.shards) if parts[j] > 0]
        if len(usable) == 1:
            j = usable[0]
            tat = buckets[j].tat
            return gcra_remaining(tat if tat is not None else now, now, RateLimit(r.key, parts[j], r.cost))
        return int(sum(_avail(buckets[j].tat, now, parts[j]) for j in usable) + _EPS)

    def settle(
        self,
        reservation: Reservation,
        cost_micros: int,
        ledger: LedgerEntry | None,
        audit: list[AuditEvent],
    ) -> list[WindowState]:
        """In one commit: the ledger entry (created only once), the reservation deleted (only
        if unchanged since read) and its shards moved from reserved to spent by increments."""
        from google.cloud.firestore import Increment

        tenant_id = reservation.tenant_id
        keys = list(dict.fromkeys(reservation.windows))
        res_ref = self._sub(tenant_id, "reservations", reservation.id)
        led_ref = self._sub(tenant_id, "ledger", ledger.id) if ledger is not None else None
        window_refs = {k: self._window_refs(tenant_id, k) for k in keys}
        refs = [res_ref] + ([led_ref] if led_ref is not None else []) + [r for rs in window_refs.values() for r in rs]
        deadline = time.monotonic() + CONTENTION_DEADLINE_S
        attempt = 0
        while True:
            snaps = self._get_all(refs)
            shards = {k: [self._shard(ref, snaps) for ref in window_refs[k]] for k in keys}
            if led_ref is not None and snaps.get(led_ref.path) is not None and snaps[led_ref.path].exists:
                return [_window_state(k, shards[k]) for k in keys]  # settled before: a no-op
            res_snap = snaps.get(res_ref.path)
            res_exists = res_snap is not None and res_snap.exists
            holds = (res_snap.to_dict() or {}).get("holds", []) if res_exists else []
            batch = self._client().batch()
            if ledger is not None:
                batch.create(led_ref, dict(ledger.__dict__))
            if res_exists:
                batch.delete(res_ref, option=self._lut(res_snap.update_time))
            states: list[WindowState] = []
            for k in keys:
                state = _window_state(k, shards[k])
                held = {int(h["shard"]): int(h["micros"]) for h in holds if h.get("key") == k}
                expiry = max([float(h.get("expires_at", 0)) for h in holds if h.get("key") == k] or [0.0])
                spend = self._place_cost(state.limit_micros, shards[k], held, cost_micros)
                for i in sorted(set(held) | set(spend)):
                    data: dict[str, Any] = {}
                    if spend.get(i):
                        data["spent"] = Increment(spend[i])
                    if held.get(i):
                        data["reserved"] = Increment(-held[i])
                    if expiry:
                        data["ttl"] = _ts(expiry)
                    if data:
                        batch.set(shards[k][i].ref, data, merge=True)
                state.spent_micros += cost_micros
                state.reserved_micros = max(0, state.reserved_micros - sum(held.values()))
                states.append(state)
            self._audit_writes(batch, audit)
            try:
                self._commit(batch)
            except (_Conflict, _Missing):
                attempt += 1
                self._contended(attempt, deadline, "settle")
                continue
            return states

    def _place_cost(self, limit: int, shards: list[_Shard], held: dict[int, int], cost: int) -> dict[int, int]:
        """Where to book ``cost``: on the shards that held it, any excess on shards with room
        (what fits nowhere stays as debt on the first held shard, paid by the next reserve)."""
        spend: dict[int, int] = {}
        rest = cost
        for i, micros in held.items():
            part = min(micros, rest)
            if part > 0:
                spend[i] = part
                rest -= part
        if rest <= 0:
            return spend
        allot = _split(limit, self.shards)
        room = {
            i: allot[i] + s.shift - s.spent - s.reserved + held.get(i, 0) - spend.get(i, 0)
            for i, s in enumerate(shards)
        }
        for i in sorted(room, key=lambda k: -room[k]):
            if rest <= 0 or room[i] <= 0:
                break
            part = min(room[i], rest)
            spend[i] = spend.get(i, 0) + part
            rest -= part
        if rest > 0:
            first = next(iter(held), 0)
            spend[first] = spend.get(first, 0) + rest
        return spend

    def release(self, tenant_id: str, reservation_id: str) -> None:
        """Return the held amount to its shards."""
        self._release(tenant_id, reservation_id, None)

    def _release(self, tenant_id: str, reservation_id: str, snap: Any) -> bool:
        """Delete the reservation (precondition: unchanged) and give back its holds, in one
        commit. True when this call released it."""
        from google.cloud.firestore import Increment

        ref = self._sub(tenant_id, "reservations", reservation_id)
        deadline = time.monotonic() + CONTENTION_DEADLINE_S
        attempt = 0
        while True:
            if snap is None:
                snap = self._get(ref)
            if not snap.exists:
                return False
            batch = self._client().batch()
            batch.delete(ref, option=self._lut(snap.update_time))
            for h in (snap.to_dict() or {}).get("holds", []):
                shard = self._window_refs(tenant_id, h["key"])[int(h["shard"])]
                data: dict[str, Any] = {"reserved": Increment(-int(h["micros"]))}
                if h.get("expires_at"):
                    data["ttl"] = _ts(float(h["expires_at"]))
                batch.set(shard, data, merge=True)
            try:
                self._commit(batch)
                return True
            except (_Conflict, _Missing):
                attempt += 1
                snap = None
                self._contended(attempt, deadline, "release")

    def reclaim_expired(self, tenant_id: str, now: float) -> int:
        """Release the tenant's reservations whose ``expires_at`` has passed."""
        from google.cloud.firestore import FieldFilter

        query = self._tenant(tenant_id).collection("reservations").where(filter=FieldFilter("expires_at", "<", now))
        return sum(self._release(tenant_id, snap.id, snap) for snap in self._query(query))

    def get_windows(self, tenant_id: str, keys: list[str]) -> list[WindowState]:
        """The named windows, each the sum of its shards."""
        refs = {k: self._window_refs(tenant_id, k) for k in dict.fromkeys(keys)}
        snaps = self._get_all([r for rs in refs.values() for r in rs])
        return [_window_state(k, [self._shard(ref, snaps) for ref in refs[k]]) for k in keys]

    def claim_marker(self, tenant_id: str, marker: str, expires_at: float) -> bool:
        """True the first time the marker is claimed (a create with exists=False)."""
        batch = self._client().batch()
        batch.create(self._sub(tenant_id, "markers", marker), {"expires_at": expires_at, "ttl": _ts(expires_at)})
        try:
            self._commit(batch)
        except _Conflict:
            return False
        return True

    # ledger and audit ---------------------------------------------------------------------
    def list_ledger(self, tenant_id: str, since: str | None = None, limit: int = 10_000) -> list[LedgerEntry]:
        """Entries at or after ``since``, oldest first (ties by id)."""
        from google.cloud.firestore import FieldFilter

        query = (
            self._tenant(tenant_id)
            .collection("ledger")
            .where(filter=FieldFilter("at", ">=", since or ""))
            .order_by("at")
            .limit(limit)
        )
        return [LedgerEntry(**_pick(s.to_dict(), LedgerEntry)) for s in self._query(query)]

    def _audit_writes(self, batch: Any, events: Iterable[AuditEvent]) -> None:
        for e in events:
            data = dict(e.__dict__)
            data["detail"] = json.dumps(e.detail)
            batch.set(self._sub(e.tenant_id, "audit", e.id), data)

    def append_audit(self, events: list[AuditEvent]) -> None:
        """Append audit events (a re-append of the same id overwrites it with itself)."""
        for start in range(0, len(events), 400):
            batch = self._client().batch()
            self._audit_writes(batch, events[start : start + 400])
            self._commit(batch)

    def list_audit(self, tenant_id: str, limit: int = 50, before: str | None = None) -> list[AuditEvent]:
        """Newest first, strictly before ``before`` (ties by id, descending)."""
        from google.cloud.firestore import FieldFilter, Query

        query = self._tenant(tenant_id).collection("audit")
        if before is not None:
            query = query.where(filter=FieldFilter("at", "<", before))
        query = query.order_by("at", direction=Query.DESCENDING).limit(limit)
        out = []
        for s in self._query(query):
            d = s.to_dict()
            d["detail"] = json.loads(d.get("detail") or "{}")
            out.append(AuditEvent(**_pick(d, AuditEvent)))
        return out

    # notes and tickets ----------------------------------------------------------------------
    def add_note(self, note: Note) -> None:
        """Store a note."""
        self._create(self._sub(note.tenant_id, "notes", note.id), dict(note.__dict__))

    def list_notes(self, tenant_id: str, query: str | None = None, limit: int = 50) -> list[Note]:
        """Newest first, optionally filtered by a case-insensitive substring."""
        from google.cloud.firestore import Query

        snaps = self._query(
            self._tenant(tenant_id).collection("notes").order_by("created_at", direction=Query.DESCENDING)
        )
        notes = [Note(**_pick(s.to_dict(), Note)) for s in snaps]
        if query:
            q = query.lower()
            notes = [n for n in notes if q in n.title.lower() or q in n.body.lower() or q in " ".join(n.tags).lower()]
        return notes[:limit]

    def create_ticket(self, ticket: Ticket) -> None:
        """Store a ticket."""
        self._create(self._sub(ticket.tenant_id, "tickets", ticket.id), dict(ticket.__dict__))

    def update_ticket(self, tenant_id: str, ticket_id: str, changes: dict[str, Any]) -> Ticket:
        """Change one of the tenant's tickets (read, then write with a precondition)."""
        ref = self._sub(tenant_id, "tickets", ticket_id)
        deadline = time.monotonic() + CONTENTION_DEADLINE_S
        attempt = 0
        while True:
            snap = self._get(ref)
            if not snap.exists:
                raise KeyError(ticket_id)
            data = snap.to_dict()
            data.update({k: v for k, v in changes.items() if k in ("subject", "body", "status", "priority")})
            data["updated_at"] = now_iso()
            try:
                self._rpc(ref.update, data, option=self._lut(snap.update_time))
                return Ticket(**_pick(data, Ticket))
            except (_Conflict, _Missing):
                attempt += 1
                self._contended(attempt, deadline, "update_ticket")

    def list_tickets(self, tenant_id: str, status: str | None = None, limit: int = 50) -> list[Ticket]:
        """Newest first, optionally by status."""
        from google.cloud.firestore import Query

        snaps = self._query(
            self._tenant(tenant_id).collection("tickets").order_by("created_at", direction=Query.DESCENDING)
        )
        tickets = [Ticket(**_pick(s.to_dict(), Ticket)) for s in snaps]
        return [t for t in tickets if status is None or t.status == status][:limit]

    # idempotency -----------------------------------------------------------------------------
    def claim_idempotency(self, tenant_id: str, record: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        """Claim the key (create, or replace an expired record under a precondition), or
        return the live record that holds it."""
        ref = self._sub(tenant_id, "idempotency", record.key)
        data = {
            "body_hash": record.body_hash,
            "expires_at": record.expires_at,
            "response": None,
            "ttl": _ts(record.expires_at),
        }
        deadline = time.monotonic() + CONTENTION_DEADLINE_S
        attempt = 0
        while True:
            snap = self._get(ref)
            batch = self._client().batch()
            if snap.exists:
                d = snap.to_dict()
                if float(d["expires_at"]) >= now:
                    response = json.loads(d["response"]) if d.get("response") else None
                    return IdempotencyRecord(record.key, d["body_hash"], float(d["expires_at"]), response)
                batch.update(ref, data, option=self._lut(snap.update_time))
            else:
                batch.create(ref, data)
            try:
                self._commit(batch)
                return None
            except (_Conflict, _Missing):
                attempt += 1
                self._contended(attempt, deadline, "claim_idempotency")

    def complete_idempotency(self, tenant_id: str, key: str, response: dict[str, Any]) -> None:
        """Store the response of a claimed key (nothing when it is not claimed)."""
        ref = self._sub(tenant_id, "idempotency", key)
        try:
            self._rpc(ref.update, {"response": json.dumps(response)})
        except _Missing:
            pass

    def release_idempotency(self, tenant_id: str, key: str) -> None:
        """Forget a claim."""
        self._rpc(self._sub(tenant_id, "idempotency", key).delete)


def _is_backend_error(exc: BaseException) -> bool:
    """True for errors of the Google client stack (API, transport, auth)."""
    try:
        from google.api_core import exceptions as gexc
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, gexc.GoogleAPIError):
        return True
    try:
        from google.auth import exceptions as aexc

        if isinstance(exc, aexc.GoogleAuthError):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        import grpc

        if isinstance(exc, grpc.RpcError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return False
