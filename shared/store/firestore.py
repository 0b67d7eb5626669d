"""Firestore backend: sharded budget documents written with compare-and-set commits.

Layout (``{x}`` is an escaped document id or map key: ``%`` and ``/`` percent-encoded, a
leading ``__`` too, as Firestore reserves ``__...__`` names)::

    api_keys/{key_hash}                    tenant_id, prefix, created_at, revoked
    tenants/{tenant_id}                    the Tenant's fields
      budget/s{i}                          i < shards: the tenant's shard i, written by reserve only:
                                             w.{window}: reserved (cumulative), shift, limit, limit_at,
                                                         expires_at      (day:, month:, team: windows)
                                             r.{rate}:   tat            (GCRA bucket i of every rate)
                                             ttl
      budget_out/s{i}                      written by settle and release only (server-side increments):
                                             w.{window}: released (cumulative), spent, expires_at; ttl
      windows/{window}, windows_out/{window}   the same two halves, one shard, for any other window
                                           (run:<id>[/<hop>]: one per run, few writers, unbounded count)
      reservations/{reservation_id}        id, amount_micros, windows, holds, expires_at, request_id, team,
                                           operation, model, input_tokens, output_tokens, created_at, ttl
                                           (all an unsettled ledger entry is built from)
      ledger/{entry_id}                    the LedgerEntry's fields (at is queried); an entry charged
                                           unsettled has the id ledger_id_for(reservation id)
      audit/{event_id}                     the AuditEvent's fields, detail as JSON (at is queried)
      notes/{note_id}, tickets/{ticket_id} the record's fields (created_at is ordered on)
      idempotency/{key}                    body_hash, expires_at, response (JSON), ttl
      markers/{marker}                     expires_at, ttl
      runs/{run_id}, sessions/{id}         data (JSON), ver, ttl (a run also created_at, which is ordered on)

``ttl`` is a Timestamp for a Firestore TTL policy, which the deployment enables per
collection group (``gcloud firestore fields ttls update ttl --collection-group=budget
--enable-ttl``; likewise budget_out, windows, windows_out, reservations, idempotency,
markers, runs, sessions). A budget document's ttl is the latest expiry of the windows it
holds (out-documents: never lowered below the latest ttl the writer read), so it only
removes the budget of a tenant idle past all its windows; a reservation's ttl is the latest
expiry of its windows, never earlier, so TTL deletion never drops a reservation whose money
a live window still counts as reserved. Expired window entries and idle rate buckets are
pruned from the budget maps whenever a document is written, so the documents stay small.

Why the tenant's windows share documents instead of ``windows/{key}__s{i}`` each: a call
holds day, month and team windows and charges two rates, so one document per window shard
would make every reserve read ~40 documents and commit five preconditions, any of which
fails when another call wrote it; sharing them makes a reserve read ``2 * shards``
documents and usually commit one. Run windows (``run:...``) are not shared: there is one
per run and hop, so they would grow the shared maps without bound, and one run has few
concurrent calls. Only single-field indexes are
queried (reservations by expires_at and windows, ledger and audit by at, api_keys by
tenant_id): no composite index is needed. API keys live at the top level because a request
is authenticated by hash before its tenant is known.

Concurrency design. No Firestore transactions: on one hot document they serialise behind
pessimistic locks (the emulator livelocks with ~40 concurrent transactional writers), and
in production one document sustains about one write per second. Instead:

* A window's budget is split over the shards of its group (the tenant's ``shards``
  documents for day/month/team windows, one document for any other window). Shard ``i``
  owns an allotment ``limit // shards`` (the last one also the remainder) plus ``shift``,
  allotment moved between shards (the shifts of a window sum to zero). Its room is
  ``allotment + shift - spent - reserved`` with ``reserved = reserved_in - released``.
  A window's state is the sum over its shards.
* ``reserve`` reads every document of its groups and its own reservation id in ONE
  BatchGetDocuments (a consistent snapshot), decides there, then sends ONE commit: every
  in-document it changes is written with an ``update_time`` precondition (``create`` when it
  did not exist) and the reservation is created. A commit is atomic, so every window, every
  rate and the reservation are written, or, when a precondition fails because another
  reserve wrote one of those documents in between, nothing is; it then re-reads and
  retries with jittered backoff for up to ``RESERVE_CONTENTION_S`` (6 s), then answers
  ``Refusal("contention", <first window>, ...)`` with a retry-after of 0.5-1 s: losing
  races is contention (429), not an outage; StoreUnavailable is only for errors of
  Firestore or the network.
  Usually a shard has room in every tenant window and a fitting bucket in every rate, so a
  reserve writes a single tenant document (plus one per run window); the shard is the next
  fitting one after a rotating per-instance cursor, so an instance's concurrent calls take
  turns over the shards instead of colliding at random. Near exhaustion the amount is
  spread over several shards: a reserve is refused only when the snapshot's window total
  does not fit, as in the SQL backends, never while other shards still have room.
* ``settle`` and ``release`` never refuse, so they need no room check and no precondition
  on budget documents: they delete the reservation with an ``update_time`` precondition
  (money is given back exactly once) in the same commit as ``Increment`` transforms on the
  out-documents (released += held, spent += cost), plus the ledger entry created with an
  exists=False precondition (a repeated settle finds it and changes nothing). Because they
  write other documents than reserve does, they never make a reserve retry.
* An expired reservation (``reclaim_expired``, ``charge_run_reservations``) is not
  released but charged: the same settle commit at its amount with ``unsettled_entry``
  (id ``ledger_id_for(reservation id)``), so its holds move from reserved to spent. The
  settle snapshot reads that entry too: when it exists and is unsettled, a real settle
  (a late one) commits the entry updated under its ``update_time`` precondition (keeping
  its ``at``; under another ledger id: deleted under it, the new entry created) and
  ``Increment`` spent by (cost - unsettled cost) on the out-documents (a negative change
  taken from the shards that spent most). Of two late settles, or a late settle racing
  the charge, one commit wins the precondition (the reservation's or the entry's); the
  loser re-reads and finds nothing left to do, so the correction happens once. A repeated
  settle, or an unsettled charge after a real one, changes nothing. Round trips: a settle
  is 2 (a read, a commit); a late settle the same; reclaim_expired 1 query + 2 per
  reservation charged.
* A settle that costs more than it held (or settles a reclaimed reservation) books the
  excess on shards with room; what fits nowhere leaves a shard with negative room (debt),
  as does a lowered limit (smaller allotments). A reserve that sees debt first moves
  allotment (``shift``) from shards with room to the indebted ones, inside its own commit
  and under its preconditions.
* Rate limits (GCRA) are sharded alike: the per-minute limit is split over the tenant's
  shards, each shard keeps its own bucket (``tat``), and a request's cost goes to one bucket
  or is spread over several. A limit smaller than the shard count lives in the last shard
  alone: exactly one GCRA bucket, the SQL arithmetic. Sharded buckets add up to one bucket
  except that a full bucket cannot bank the drip of another, so a retry-after is a lower
  bound.

Overspend argument. Every reserve commit writes only in-documents unchanged since the
snapshot it decided on, and it takes no more than a shard's room in that snapshot, after
paying every debt it saw. The only concurrent writers it does not exclude are settles and
releases on out-documents, which only add room (released += held, spent += at most the
held part) except for a settle's cost above what it held, which the SQL backends book too
(settle never refuses). An unsettled charge is a settle at exactly the held amount (no
room changes hands); a late settle moves spent by (cost - unsettled cost), which only adds
room when the real cost is below the worst case and is booked like any excess otherwise.
Two reserves deciding on the same version of a shard cannot both commit, so no room is
given twice, and per shard reserved + spent stays within allotment + shift; summed over
shards (allotments sum to the limit, shifts to zero) a window's settled + reserved never
exceeds its limit, except by the excess of settles that cost more than they held. The
shard count may be raised on a live deployment (new shards start empty) but not lowered
(totals are summed over the configured shards only).

Every API call has a short per-attempt timeout and a bounded retry on UNAVAILABLE, so a
Firestore that is down fails within a few seconds; every google.api_core / google.auth /
gRPC error becomes :class:`StoreUnavailable`. ``round_trips`` counts API calls;
``conflicts`` counts commits that lost a precondition race and were retried.

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

DEFAULT_SHARDS = 8
COLOCATED_PREFIXES = ("day:", "month:", "team:")  # tenant-wide windows: few keys, hot
CALL_TIMEOUT_S = 4.0  # one RPC attempt
RETRY_DEADLINE_S = 3.0  # all attempts of one RPC on UNAVAILABLE
CONTENTION_DEADLINE_S = 15.0  # all precondition-retries of one operation that must finish (settle, ...)
RESERVE_CONTENTION_S = 6.0  # a reserve losing races this long is refused as contention (429), not 503
RESERVE_RETRY_AFTER_S = (0.5, 1.0)  # the retry-after of a contention refusal (jittered)
_BACKOFF_BASE_S = 0.004
_BACKOFF_CAP_S = 0.2
_EPS = 1e-6

T = TypeVar("T")


class _Conflict(Exception):
    """A commit lost a precondition race (FailedPrecondition, AlreadyExists, Aborted)."""


class _Taken(StoreUnavailable):
    """A document that must be new exists already (``create_tenant`` answers KeyError)."""


class _Missing(Exception):
    """An update hit a document that does not exist (NotFound)."""


def _doc_id(value: str) -> str:
    """A Firestore-safe document id or map key for an arbitrary string (reversible, mostly
    readable): no ``/``, not ``.``/``..``, not empty, not reserved ``__...__``."""
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
class _Slot:
    """One window in one shard: the in-document half and the out-document half."""

    reserved_in: int = 0
    shift: int = 0
    limit: int | None = None
    limit_at: float = 0.0
    expires_at: float = 0.0
    released: int = 0
    spent: int = 0
    present: bool = False

    @property
    def reserved(self) -> int:
        return self.reserved_in - self.released


@dataclass(frozen=True)
class _Group:
    """The shards some windows live in: in-documents (reserve) and out-documents (settle)."""

    ins: tuple[Any, ...]
    outs: tuple[Any, ...]

    @property
    def size(self) -> int:
        return len(self.ins)


def _state(key: str, slots: list[_Slot], limit: int | None = None) -> WindowState:
    """A window as the sum of its shards (limit: given, else the latest stored, else 0)."""
    if limit is None:
        stored = [s for s in slots if s.limit is not None]
        limit = max(stored, key=lambda s: s.limit_at).limit if stored else 0
    return WindowState(key, int(limit or 0), sum(s.spent for s in slots), max(0, sum(s.reserved for s in slots)))


def _rooms(limit: int, slots: list[_Slot]) -> list[int]:
    allot = _split(limit, len(slots))
    return [allot[i] + s.shift - s.spent - s.reserved for i, s in enumerate(slots)]


def _avail(tat: float | None, now: float, per_minute: int) -> float:
    """Units a GCRA bucket of ``per_minute`` can still take at ``now``."""
    if per_minute <= 0:
        return 0.0
    used = max(0.0, (tat if tat is not None else now) - now) * per_minute / GCRA_PERIOD_S
    return max(0.0, per_minute - used)


def _data(snaps: dict[str, Any], ref: Any) -> dict[str, Any]:
    snap = snaps.get(ref.path)
    return (snap.to_dict() or {}) if snap is not None and snap.exists else {}


def _unique(refs: list[Any]) -> list[Any]:
    return list({r.path: r for r in refs}.values())


def _change(
    changes: dict[str, dict[str, list[float]]], path: str, key: str, released: int, spent: int, expires_at: float
) -> None:
    """Add to the increments planned for window ``key`` in out-document ``path``."""
    entry = changes.setdefault(path, {}).setdefault(key, [0, 0, 0.0])
    entry[0] += released
    entry[1] += spent
    entry[2] = max(entry[2], expires_at)


class FirestoreStore:
    """The :class:`~shared.store.base.Store` on Cloud Firestore (native mode) or its emulator."""

    def __init__(
        self,
        project: str,
        database: str = "(default)",
        shards: int = DEFAULT_SHARDS,
        colocated_prefixes: tuple[str, ...] = COLOCATED_PREFIXES,
    ) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self.project = project
        self.database = database or "(default)"
        self.shards = shards
        self.colocated_prefixes = tuple(colocated_prefixes)
        self.url = f"firestore://{project}" + ("" if self.database == "(default)" else f"/{self.database}")
        self.round_trips = 0
        self.conflicts = 0
        self._cursor = random.randrange(shards)
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

    def _tenant_group(self, tenant_id: str) -> _Group:
        base = self._tenant(tenant_id)
        return _Group(
            tuple(base.collection("budget").document(f"s{i}") for i in range(self.shards)),
            tuple(base.collection("budget_out").document(f"s{i}") for i in range(self.shards)),
        )

    def _group(self, tenant_id: str, key: str) -> _Group:
        """Where a window lives: the tenant's shards (day/month/team), else a document of its own."""
        if key.startswith(self.colocated_prefixes):
            return self._tenant_group(tenant_id)
        base = self._tenant(tenant_id)
        return _Group(
            (base.collection("windows").document(_doc_id(key)),),
            (base.collection("windows_out").document(_doc_id(key)),),
        )

    @staticmethod
    def _slots(snaps: dict[str, Any], group: _Group, key: str) -> list[_Slot]:
        slots = []
        for in_ref, out_ref in zip(group.ins, group.outs, strict=True):
            a = _data(snaps, in_ref).get("w", {}).get(_doc_id(key))
            b = _data(snaps, out_ref).get("w", {}).get(_doc_id(key))
            slot = _Slot()
            if a:
                slot.present = True
                slot.reserved_in = int(a.get("reserved", 0))
                slot.shift = int(a.get("shift", 0))
                slot.limit = a.get("limit")
                slot.limit_at = float(a.get("limit_at", 0.0))
                slot.expires_at = float(a.get("expires_at", 0.0))
            if b:
                slot.present = True
                slot.released = int(b.get("released", 0))
                slot.spent = int(b.get("spent", 0))
                slot.expires_at = max(slot.expires_at, float(b.get("expires_at", 0.0)))
            slots.append(slot)
        return slots

    @staticmethod
    def _tats(snaps: dict[str, Any], group: _Group, key: str) -> list[float | None]:
        out: list[float | None] = []
        for ref in group.ins:
            tat = _data(snaps, ref).get("r", {}).get(_doc_id(key), {}).get("tat")
            out.append(float(tat) if tat is not None else None)
        return out

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
        """Store a new tenant (KeyError when the id is taken)."""
        try:
            self._create(self._tenant(tenant.id), tenant.to_dict())
        except _Taken:
            raise KeyError(tenant.id) from None

    def _create(self, ref: Any, data: dict[str, Any]) -> None:
        batch = self._client().batch()
        batch.create(ref, data)
        try:
            self._commit(batch)
        except _Conflict as exc:
            raise _Taken(f"Firestore {self.url}: {ref.path} already exists") from exc

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
        written = self._read_modify_write(self._tenant(tenant_id), tenant_id, "update_tenant",
                                          lambda data: Tenant.from_dict({**data, **changes}).to_dict())
        return Tenant.from_dict(written)

    def _read_modify_write(self, ref: Any, doc_id: str, what: str,
                           change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Write ``change(document)`` with an ``update_time`` precondition, reading again when a
        concurrent write got there first (KeyError when the document does not exist)."""
        deadline = time.monotonic() + CONTENTION_DEADLINE_S
        attempt = 0
        while True:
            snap = self._get(ref)
            if not snap.exists:
                raise KeyError(doc_id)
            data = change(snap.to_dict())
            try:
                self._rpc(ref.update, data, option=self._lut(snap.update_time))
                return data
            except (_Conflict, _Missing):
                attempt += 1
                self._contended(attempt, deadline, what)

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

    def _key_snapshots(self, tenant_id: str) -> list[Any]:
        from google.cloud.firestore import FieldFilter

        query = self._client().collection("api_keys").where(filter=FieldFilter("tenant_id", "==", tenant_id))
        return list(self._query(query))

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        """Every key record of a tenant, oldest first."""
        found = []
        for snap in self._key_snapshots(tenant_id):
            d = snap.to_dict() or {}
            found.append(ApiKeyRecord(str(d.get("key_hash") or snap.id), d["tenant_id"], d["prefix"], d["created_at"],
                                      bool(d.get("revoked"))))
        return sorted(found, key=lambda r: (r.created_at, r.key_hash))

    def revoke_api_keys(self, tenant_id: str) -> int:
        """Revoke every key of a tenant; returns how many were live."""
        live = [s for s in self._key_snapshots(tenant_id) if not (s.to_dict() or {}).get("revoked")]
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
        commit whose preconditions fail if a budget document it writes changed since."""
        tenant_id, amount = reservation.tenant_id, reservation.amount_micros
        windows = list({w.key: w for w in reversed(windows)}.values())[::-1]  # the first of each key
        rates = list({r.key: r for r in reversed(rates)}.values())[::-1]
        res_ref = self._sub(tenant_id, "reservations", reservation.id)
        tenant_group = self._tenant_group(tenant_id)
        groups = {w.key: self._group(tenant_id, w.key) for w in windows}
        refs = [res_ref] + [ref for g in groups.values() for ref in g.ins + g.outs]
        refs = _unique(refs + (list(tenant_group.ins) if rates else []))
        by_path = {ref.path: ref for ref in refs}
        by_key = {w.key: w for w in windows}
        deadline = time.monotonic() + RESERVE_CONTENTION_S
        attempt = 0
        while True:
            snaps = self._get_all(refs)
            slots = {w.key: self._slots(snaps, groups[w.key], w.key) for w in windows}
            tats = {r.key: self._tats(snaps, tenant_group, r.key) for r in rates}
            if snaps.get(res_ref.path) is not None and snaps[res_ref.path].exists:
                # an earlier attempt committed but its answer was lost: it is reserved already
                return ReserveOutcome(
                    windows=[_state(w.key, slots[w.key], w.limit_micros) for w in windows],
                    rate_remaining={r.key: self._rate_remaining(tats[r.key], now, r) for r in rates},
                )
            states: list[WindowState] = []
            for w in windows:
                state = _state(w.key, slots[w.key], w.limit_micros)
                if amount > 0 and state.spent_micros + state.reserved_micros + amount > w.limit_micros:
                    return self._window_refusal(state)
                states.append(state)
            for r in rates:
                retry_after = self._rate_refusal(tats[r.key], now, r)
                if retry_after is not None:
                    return ReserveOutcome(refusal=Refusal("rate", r.key, r.limit_per_minute, retry_after_s=retry_after))
            plan = self._plan(windows, groups, slots, rates, tats, amount, now, tenant_group)
            if isinstance(plan, str):  # the shards disagree with the total (half-expired documents): refuse
                return self._window_refusal(next(s for s in states if s.key == plan))
            wmods, new_tats, holds = plan
            rmods: dict[str, dict[str, float]] = {}
            for r in rates:
                for j, tat in new_tats[r.key].items():
                    rmods.setdefault(tenant_group.ins[j].path, {})[r.key] = tat
                    tats[r.key][j] = tat
            batch = self._client().batch()
            wall = time.time()
            for path in sorted(wmods.keys() | rmods.keys()):
                self._write_in(
                    batch, by_path[path], snaps.get(path), wmods.get(path, {}), rmods.get(path, {}), by_key, now, wall
                )
            ttl = max([reservation.expires_at] + [w.expires_at for w in windows])
            batch.create(
                res_ref,
                {
                    "id": reservation.id,
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
                    "model": reservation.model,
                    "input_tokens": reservation.input_tokens,
                    "output_tokens": reservation.output_tokens,
                },
            )
            try:
                self._commit(batch)
            except (_Conflict, _Missing):
                attempt += 1
                with self._lock:
                    self.conflicts += 1
                if time.monotonic() > deadline:
                    # Other reserves of this tenant kept winning: contention, not an outage.
                    return self._contention_refusal(windows, states, rates)
                time.sleep(random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * (2 ** min(attempt, 8)))))
                continue
            for state in states:
                state.reserved_micros += max(0, amount)
            return ReserveOutcome(
                windows=states, rate_remaining={r.key: self._rate_remaining(tats[r.key], now, r) for r in rates}
            )

    @staticmethod
    def _contention_refusal(
        windows: list[WindowLimit], states: list[WindowState], rates: list[RateLimit]
    ) -> ReserveOutcome:
        """Refused for a moment: every commit lost a precondition race for
        ``RESERVE_CONTENTION_S``; money may be left (answered 429 with a short retry)."""
        retry_after = round(random.uniform(*RESERVE_RETRY_AFTER_S), 3)
        if windows:
            state = states[0] if states else WindowState(windows[0].key, windows[0].limit_micros, 0, 0)
            refusal = Refusal("contention", state.key, state.limit_micros, state.spent_micros,
                              state.remaining_micros, retry_after_s=retry_after)
            return ReserveOutcome(refusal=refusal, windows=[state])
        key, limit = (rates[0].key, rates[0].limit_per_minute) if rates else ("", 0)
        return ReserveOutcome(refusal=Refusal("contention", key, limit, retry_after_s=retry_after))

    @staticmethod
    def _window_refusal(state: WindowState) -> ReserveOutcome:
        return ReserveOutcome(
            refusal=Refusal("window", state.key, state.limit_micros, state.spent_micros, state.remaining_micros),
            windows=[state],
        )

    def _plan(
        self,
        windows: list[WindowLimit],
        groups: dict[str, _Group],
        slots: dict[str, list[_Slot]],
        rates: list[RateLimit],
        tats: dict[str, list[float | None]],
        amount: int,
        now: float,
        tenant_group: _Group,
    ) -> tuple[dict[str, dict[str, tuple[int, int | None]]], dict[str, dict[int, float]], list[dict[str, Any]]] | str:
        """Where to hold the amount and charge the rates: (in-document path -> window key ->
        (micros to add to reserved, new shift or None)), (rate key -> bucket -> new tat), the
        reservation's holds; or the key of a window whose shards cannot hold it."""
        wmods: dict[str, dict[str, tuple[int, int | None]]] = {}
        holds: list[dict[str, Any]] = []
        new_tats: dict[str, dict[int, float]] = {r.key: {} for r in rates}

        def hold(w: WindowLimit, group: _Group, i: int, micros: int, shift: int | None = None) -> None:
            doc = wmods.setdefault(group.ins[i].path, {})
            added, old_shift = doc.get(w.key, (0, None))
            doc[w.key] = (added + micros, shift if shift is not None else old_shift)
            if micros > 0:
                holds.append(
                    {"key": w.key, "out": group.outs[i].path, "shard": i, "micros": micros, "expires_at": w.expires_at}
                )

        colocated = [w for w in windows if groups[w.key] == tenant_group]
        # the usual case: one tenant shard with room for the whole amount in every tenant
        # window and a bucket that fits the whole cost of every rate
        n = self.shards
        candidates = set(range(n))
        for w in colocated:
            if amount > 0:
                rooms = _rooms(w.limit_micros, slots[w.key])
                candidates &= {i for i in range(n) if rooms[i] >= amount} if min(rooms) >= 0 else set()
        whole: dict[str, dict[int, float]] = {}
        for r in rates:
            if r.cost > 0:
                whole[r.key] = self._whole_fits(r, tats[r.key], now)
                candidates &= set(whole[r.key])
        if candidates:
            i = self._pick(candidates)
            for w in colocated:
                if amount > 0 or not any(s.present for s in slots[w.key]):
                    hold(w, tenant_group, i, max(0, amount))
            for r in rates:
                if r.cost > 0:
                    new_tats[r.key][i] = whole[r.key][i]
        else:
            for w in colocated:
                if not self._plan_window(w, tenant_group, slots[w.key], amount, hold):
                    return w.key
            for r in rates:
                new_tats[r.key] = self._spread_rate(r, tats[r.key], now)
        for w in windows:
            if groups[w.key] != tenant_group and not self._plan_window(w, groups[w.key], slots[w.key], amount, hold):
                return w.key
        return wmods, new_tats, holds

    def _plan_window(
        self, w: WindowLimit, group: _Group, slots: list[_Slot], amount: int, hold: Callable[..., None]
    ) -> bool:
        """Hold ``amount`` of window ``w`` in its shards: pay any debt first, then one shard
        with room for all of it, else spread over the shards with the most room."""
        if amount <= 0:
            if not any(s.present for s in slots):  # remember the window and its limit, like the SQL rows
                hold(w, group, 0, 0)
            return True
        n = group.size
        rooms = _rooms(w.limit_micros, slots)
        shift = [s.shift for s in slots]
        touched: set[int] = set()
        for i in [i for i in range(n) if rooms[i] < 0]:
            for j in sorted(range(n), key=lambda k: -rooms[k]):
                if rooms[i] >= 0 or rooms[j] <= 0:
                    break
                moved = min(rooms[j], -rooms[i])
                shift[j] -= moved
                shift[i] += moved
                rooms[j] -= moved
                rooms[i] += moved
                touched |= {i, j}
        if any(r < 0 for r in rooms):
            return False
        taken: dict[int, int] = {}
        fitting = [i for i in range(n) if rooms[i] >= amount]
        if fitting:
            taken[self._pick(fitting) if n > 1 else fitting[0]] = amount
        else:
            rest = amount
            for i in sorted(range(n), key=lambda k: -rooms[k]):
                if rest <= 0 or rooms[i] <= 0:
                    break
                taken[i] = min(rooms[i], rest)
                rest -= taken[i]
            if rest > 0:
                return False
        for i in sorted(touched | set(taken)):
            hold(w, group, i, taken.get(i, 0), shift[i] if i in touched else None)
        return True

    def _pick(self, indices: Iterable[int]) -> int:
        """The next of ``indices`` after a per-store rotating cursor: concurrent callers of one
        instance spread over the shards in turn instead of colliding at random."""
        with self._lock:
            start = self._cursor
            self._cursor = (self._cursor + 1) % self.shards
        ordered = sorted(indices)
        return next((i for i in ordered if i >= start), ordered[0])

    def _write_in(
        self,
        batch: Any,
        ref: Any,
        snap: Any,
        wmods: dict[str, tuple[int, int | None]],
        rmods: dict[str, float],
        by_key: dict[str, WindowLimit],
        now: float,
        wall: float,
    ) -> None:
        """Rewrite one in-document under its update_time precondition (create if new),
        pruning expired windows and idle rate buckets."""
        exists = snap is not None and snap.exists
        old = (snap.to_dict() or {}) if exists else {}
        w_keys, r_keys = {_doc_id(k) for k in wmods}, {_doc_id(k) for k in rmods}
        w_map = {k: v for k, v in old.get("w", {}).items() if float(v.get("expires_at", 0)) >= wall or k in w_keys}
        idle = min(now, wall) - GCRA_PERIOD_S
        r_map = {k: v for k, v in old.get("r", {}).items() if float(v.get("tat") or 0) >= idle or k in r_keys}
        for key, (added, shift) in wmods.items():
            w = by_key[key]
            entry = dict(w_map.get(_doc_id(key), {}))
            entry["reserved"] = int(entry.get("reserved", 0)) + added
            entry["shift"] = shift if shift is not None else int(entry.get("shift", 0))
            entry.update(limit=w.limit_micros, limit_at=wall, expires_at=w.expires_at)
            w_map[_doc_id(key)] = entry
        for key, tat in rmods.items():
            r_map[_doc_id(key)] = {"tat": tat}
        ttl = max(
            [wall + GCRA_PERIOD_S]
            + [float(v.get("expires_at", 0)) for v in w_map.values()]
            + [float(v["tat"]) + GCRA_PERIOD_S for v in r_map.values() if v.get("tat") is not None]
        )
        data = {"w": w_map, "r": r_map, "ttl": _ts(ttl)}
        if exists:
            batch.update(ref, data, option=self._lut(snap.update_time))
        else:
            batch.create(ref, data)

    # sharded GCRA ---------------------------------------------------------------------------
    def _buckets(self, r: RateLimit) -> tuple[int, list[int], list[int]]:
        per_minute = max(1, r.limit_per_minute)
        parts = _split(per_minute, self.shards)
        return per_minute, parts, [j for j in range(self.shards) if parts[j] > 0]

    def _whole_fits(self, r: RateLimit, tats: list[float | None], now: float) -> dict[int, float]:
        """Buckets that take the whole cost, with their new tat."""
        _, parts, usable = self._buckets(r)
        out = {}
        for j in usable:
            allowed, tat, _ = gcra(tats[j], now, RateLimit(r.key, parts[j], r.cost))
            if allowed:
                out[j] = tat
        return out

    def _rate_refusal(self, tats: list[float | None], now: float, r: RateLimit) -> float | None:
        """None when the rate takes ``r.cost`` now, else the retry-after."""
        per_minute, parts, usable = self._buckets(r)
        if len(usable) == 1:  # exactly one GCRA bucket: the SQL backends' arithmetic
            j = usable[0]
            allowed, _, retry_after = gcra(tats[j], now, RateLimit(r.key, parts[j], r.cost))
            return None if allowed else retry_after
        if r.cost <= 0 or self._whole_fits(r, tats, now):
            return None
        total = sum(_avail(tats[j], now, parts[j]) for j in usable)
        return None if total + _EPS >= r.cost else (r.cost - total) * GCRA_PERIOD_S / per_minute

    def _spread_rate(self, r: RateLimit, tats: list[float | None], now: float) -> dict[int, float]:
        """New tats charging ``r.cost``: one bucket that takes it all, else spread."""
        if r.cost <= 0:
            return {}
        whole = self._whole_fits(r, tats, now)
        if whole:
            j = self._pick(whole)
            return {j: whole[j]}
        _, parts, usable = self._buckets(r)
        avail = {j: _avail(tats[j], now, parts[j]) for j in usable}
        changed: dict[int, float] = {}
        rest = float(r.cost)
        for j in sorted(usable, key=lambda k: -avail[k]):
            if rest <= _EPS:
                break
            part = min(avail[j], rest)
            if part <= 0:
                continue
            tat = tats[j]
            start = max(tat if tat is not None else now, now)
            changed[j] = min(start + part * GCRA_PERIOD_S / parts[j], now + GCRA_PERIOD_S)
            rest -= part
        return changed

    def _rate_remaining(self, tats: list[float | None], now: float, r: RateLimit) -> int:
        _, parts, usable = self._buckets(r)
        if len(usable) == 1:
            j = usable[0]
            tat = tats[j]
            return gcra_remaining(tat if tat is not None else now, now, RateLimit(r.key, parts[j], r.cost))
        return int(sum(_avail(tats[j], now, parts[j]) for j in usable) + _EPS)

    # settle, release, reclaim -----------------------------------------------------------------
    def settle(
        self,
        reservation: Reservation,
        cost_micros: int,
        ledger: LedgerEntry | None,
        audit: list[AuditEvent],
    ) -> list[WindowState]:
        """In one commit: the ledger entry (created only once), the reservation deleted (only
        if unchanged since read) and increments on its out-documents (released += held,
        spent += cost). A reservation charged unsettled has its entry replaced by the real
        one under an update_time precondition and spent moved by the difference, once."""
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
        still stored (an unsettled charge of one found expired, which a settle or release may
        have ended meanwhile)."""
        tenant_id = reservation.tenant_id
        keys = list(dict.fromkeys(reservation.windows))
        lid = ledger_id_for(reservation.id)
        res_ref = self._sub(tenant_id, "reservations", reservation.id)
        lid_ref = self._sub(tenant_id, "ledger", lid)
        led_ref = self._sub(tenant_id, "ledger", ledger.id) if ledger is not None else None
        groups = {k: self._group(tenant_id, k) for k in keys}
        refs = [res_ref, lid_ref] + ([led_ref] if led_ref is not None else [])
        refs = _unique(refs + [ref for g in groups.values() for ref in g.ins + g.outs])
        deadline = time.monotonic() + CONTENTION_DEADLINE_S
        attempt = 0
        while True:
            snaps = self._get_all(refs)
            slots = {k: self._slots(snaps, groups[k], k) for k in keys}
            charged: Any = snaps.get(lid_ref.path)
            charged_data = (charged.to_dict() or {}) if charged is not None and charged.exists else None
            res_snap: Any = snaps.get(res_ref.path)
            res_exists = res_snap is not None and res_snap.exists
            settled_before = (
                led_ref is not None and led_ref.path != lid_ref.path and _data(snaps, led_ref) != {}
            )
            if (
                settled_before
                or (charged_data is not None
                    and (not charged_data.get("unsettled") or ledger is None or ledger.unsettled))
                or (live_only and charged_data is None and not res_exists)
            ):
                # settled before, charged unsettled already (nothing new to say), or an
                # expired reservation ended meanwhile: nothing changes but the audit
                if audit:
                    self.append_audit(audit)
                return [_state(k, slots[k]) for k in keys], False
            batch = self._client().batch()
            changes: dict[str, dict[str, list[float]]] = {}  # out path -> key -> [released, spent, expires_at]
            states: list[WindowState] = []
            if charged_data is not None and ledger is not None and led_ref is not None:
                # A late settle: the unsettled worst case becomes the real cost, once (the
                # precondition fails for every settle but the first to replace it).
                if ledger.id == lid:
                    batch.update(lid_ref, {**ledger.__dict__, "at": charged_data.get("at", ledger.at)},
                                 option=self._lut(charged.update_time))
                else:
                    batch.delete(lid_ref, option=self._lut(charged.update_time))
                    batch.create(led_ref, dict(ledger.__dict__))
                delta = cost_micros - int(charged_data.get("cost_micros", 0))
                for k in keys:
                    group, state = groups[k], _state(k, slots[k])
                    expiry = max([0.0] + [s.expires_at for s in slots[k]])
                    if delta >= 0:
                        spend = self._place_cost(state.limit_micros, slots[k], {}, delta)
                    else:
                        spend = self._place_refund(slots[k], -delta)
                    for i, micros in sorted(spend.items()):
                        _change(changes, group.outs[i].path, k, 0, micros, expiry)
                    state.spent_micros += delta
                    states.append(state)
            else:
                holds = (res_snap.to_dict() or {}).get("holds", []) if res_exists else []
                if ledger is not None and led_ref is not None:
                    batch.create(led_ref, dict(ledger.__dict__))
                if res_exists:
                    batch.delete(res_ref, option=self._lut(res_snap.update_time))
                for k in keys:
                    group, state = groups[k], _state(k, slots[k])
                    index = {ref.path: i for i, ref in enumerate(group.outs)}
                    mine = [h for h in holds if h.get("key") == k]
                    expiry = max([float(h.get("expires_at", 0)) for h in mine] + [s.expires_at for s in slots[k]])
                    held: dict[int, int] = {}
                    for h in mine:
                        if h.get("out") in index:
                            held[index[h["out"]]] = held.get(index[h["out"]], 0) + int(h["micros"])
                        else:  # held under another shard layout: give it back where it was taken
                            _change(changes, h["out"], k, int(h["micros"]), 0, expiry)
                    spend = self._place_cost(state.limit_micros, slots[k], held, cost_micros)
                    for i in sorted(set(held) | set(spend)):
                        _change(changes, group.outs[i].path, k, held.get(i, 0), spend.get(i, 0), expiry)
                    state.spent_micros += cost_micros
                    state.reserved_micros = max(0, state.reserved_micros - sum(int(h["micros"]) for h in mine))
                    states.append(state)
            floor = max([0.0] + [_data(snaps, ref)["ttl"].timestamp() for ref in refs if "ttl" in _data(snaps, ref)])
            self._write_out(batch, snaps, changes, floor)
            self._audit_writes(batch, audit)
            try:
                self._commit(batch)
            except (_Conflict, _Missing):
                attempt += 1
                self._contended(attempt, deadline, "settle")
                continue
            return states, True

    @staticmethod
    def _place_refund(slots: list[_Slot], amount: int) -> dict[int, int]:
        """Where to take back ``amount`` of spent (negative spends): from the shards that
        spent the most, so no shard's spent goes below zero while another's has some."""
        spend: dict[int, int] = {}
        rest = amount
        for i in sorted(range(len(slots)), key=lambda k: -slots[k].spent):
            part = min(max(0, slots[i].spent), rest)
            if part > 0:
                spend[i] = -part
                rest -= part
        if rest > 0:
            spend[0] = spend.get(0, 0) - rest
        return spend

    def _write_out(
        self, batch: Any, snaps: dict[str, Any], changes: dict[str, dict[str, list[float]]], ttl_floor: float | None
    ) -> None:
        """Increments on out-documents (no precondition: they commute), pruning the expired
        windows seen in ``snaps``. The ttl is only written with a snapshot (``ttl_floor``: the
        latest ttl of the budget documents read), never lowered below what that showed."""
        from google.cloud.firestore import DELETE_FIELD, Increment

        wall = time.time()
        for path, entries in changes.items():
            ref = self._client().document(path)
            old = _data(snaps, ref).get("w", {})
            w_map: dict[str, Any] = {}
            expiries = [wall]
            for key, (released, spent, expires_at) in entries.items():
                entry: dict[str, Any] = {}
                if released:
                    entry["released"] = Increment(int(released))
                if spent:
                    entry["spent"] = Increment(int(spent))
                if expires_at:
                    entry["expires_at"] = expires_at
                    expiries.append(expires_at)
                if entry:
                    w_map[_doc_id(key)] = entry
            written = {_doc_id(k) for k in entries}
            for key, value in old.items():
                if key not in written:
                    if float(value.get("expires_at", 0)) < wall:
                        w_map[key] = DELETE_FIELD
                    else:
                        expiries.append(float(value.get("expires_at", 0)))
            if w_map:
                data: dict[str, Any] = {"w": w_map}
                if ttl_floor is not None:
                    data["ttl"] = _ts(max(expiries + [ttl_floor]))
                batch.set(ref, data, merge=True)

    def _place_cost(self, limit: int, slots: list[_Slot], held: dict[int, int], cost: int) -> dict[int, int]:
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
        rooms = _rooms(limit, slots)
        room = {i: rooms[i] + held.get(i, 0) - spend.get(i, 0) for i in range(len(slots))}
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
        """Delete the reservation (precondition: unchanged since read) and give back its holds,
        in one commit. True when this call released it."""
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
            changes: dict[str, dict[str, list[float]]] = {}
            for h in (snap.to_dict() or {}).get("holds", []):
                _change(changes, h["out"], h["key"], int(h["micros"]), 0, float(h.get("expires_at", 0)))
            self._write_out(batch, {}, changes, None)
            try:
                self._commit(batch)
                return True
            except (_Conflict, _Missing):
                attempt += 1
                snap = None
                self._contended(attempt, deadline, "release")

    def _charge_unsettled(self, tenant_id: str, snaps: list[Any]) -> int:
        """Charge stored reservations at their worst case as unsettled ledger entries (one
        settle each); how many this call charged."""
        charged = 0
        for snap in snaps:
            d = snap.to_dict() or {}
            reservation = Reservation(
                id=str(d.get("id") or snap.id), tenant_id=tenant_id, amount_micros=int(d.get("amount_micros", 0)),
                windows=list(d.get("windows", [])), expires_at=float(d.get("expires_at", 0.0)),
                request_id=str(d.get("request_id", "")), team=str(d.get("team", "")),
                operation=str(d.get("operation", "")), created_at=str(d.get("created_at", "")),
                model=str(d.get("model", "")), input_tokens=int(d.get("input_tokens", 0)),
                output_tokens=int(d.get("output_tokens", 0)),
            )
            entry = unsettled_entry(reservation)
            charged += self._settle(reservation, reservation.amount_micros, entry, [], live_only=True)[1]
        return charged

    def reclaim_expired(self, tenant_id: str, now: float) -> int:
        """Charge the tenant's reservations whose ``expires_at`` has passed, unsettled."""
        from google.cloud.firestore import FieldFilter

        query = self._tenant(tenant_id).collection("reservations").where(filter=FieldFilter("expires_at", "<", now))
        return self._charge_unsettled(tenant_id, self._query(query))

    def get_windows(self, tenant_id: str, keys: list[str]) -> list[WindowState]:
        """The named windows, each the sum of its shards."""
        groups = {k: self._group(tenant_id, k) for k in dict.fromkeys(keys)}
        snaps = self._get_all(_unique([ref for g in groups.values() for ref in g.ins + g.outs]))
        return [_state(k, self._slots(snaps, groups[k], k)) for k in keys]

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
        editable = {k: v for k, v in changes.items() if k in ("subject", "body", "status", "priority")}
        written = self._read_modify_write(self._sub(tenant_id, "tickets", ticket_id), ticket_id, "update_ticket",
                                          lambda data: {**data, **editable, "updated_at": now_iso()})
        return Ticket(**_pick(written, Ticket))

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

    def complete_idempotency(
        self, tenant_id: str, key: str, response: dict[str, Any], expires_at: float | None = None
    ) -> None:
        """Store the response of a claimed key, and its new expiry if given (nothing when it
        is not claimed)."""
        ref = self._sub(tenant_id, "idempotency", key)
        data: dict[str, Any] = {"response": json.dumps(response)}
        if expires_at is not None:
            data.update(expires_at=expires_at, ttl=_ts(expires_at))
        try:
            self._rpc(ref.update, data)
        except _Missing:
            pass

    def release_idempotency(self, tenant_id: str, key: str) -> None:
        """Forget a claim."""
        self._rpc(self._sub(tenant_id, "idempotency", key).delete)


    # orchestrated runs and sessions: one document each, versioned under a precondition -------
    def _versioned_write(self, ref: Any, data: dict[str, Any], expected: int, ttl_at: float,
                         fields: dict[str, Any] | None = None) -> bool:
        """Write ``data`` at version ``expected + 1`` iff the stored version is ``expected``
        (0: the document must not exist). The version is compared on a read and the write
        carries that read's update time as its precondition, so a concurrent writer in
        between makes the commit fail and the comparison is made again."""
        doc = {"data": json.dumps(data), "ver": expected + 1, **(fields or {})}
        if ttl_at:
            doc["ttl"] = _ts(ttl_at)
        deadline = time.monotonic() + CONTENTION_DEADLINE_S
        attempt = 0
        while True:
            batch = self._client().batch()
            if expected == 0:
                batch.create(ref, doc)
            else:
                snap = self._get(ref)
                if not snap.exists or int((snap.to_dict() or {}).get("ver", 0)) != expected:
                    return False
                batch.update(ref, doc, option=self._lut(snap.update_time))
            try:
                self._commit(batch)
                return True
            except (_Conflict, _Missing):
                if expected == 0:
                    return False
                attempt += 1
                self._contended(attempt, deadline, "versioned write")

    def put_run(self, run: RunRecord) -> None:
        """Store a new run at version 1 (KeyError when the id exists)."""
        run.version = 1
        if not self._versioned_write(self._sub(run.tenant_id, "runs", run.id), dict(run.__dict__), 0, run.expires_at,
                                     {"created_at": run.created_at}):
            raise KeyError(run.id)

    def get_run(self, tenant_id: str, run_id: str) -> RunRecord | None:
        """The tenant's run, or None."""
        snap = self._get(self._sub(tenant_id, "runs", run_id))
        return RunRecord(**json.loads(snap.to_dict()["data"])) if snap.exists else None

    def update_run(self, run: RunRecord, expected_version: int) -> bool:
        """Replace the run iff its stored version is ``expected_version``."""
        if expected_version < 1:
            return False
        data = {**run.__dict__, "version": expected_version + 1, "updated_at": now_iso()}
        if not self._versioned_write(self._sub(run.tenant_id, "runs", run.id), data, expected_version,
                                     run.expires_at, {"created_at": run.created_at}):
            return False
        run.version, run.updated_at = expected_version + 1, data["updated_at"]
        return True

    def list_runs(self, tenant_id: str, limit: int = 50, before: str | None = None) -> list[RunRecord]:
        """Newest first, strictly before ``before``: ``runs`` ordered by ``created_at`` (a
        single-field index; ties by document id, i.e. run id, descending)."""
        from google.cloud.firestore import FieldFilter, Query

        if limit <= 0:
            return []
        query = self._tenant(tenant_id).collection("runs")
        if before is not None:
            query = query.where(filter=FieldFilter("created_at", "<", before))
        query = query.order_by("created_at", direction=Query.DESCENDING).limit(limit)
        runs = [RunRecord(**json.loads(s.to_dict()["data"])) for s in self._query(query)]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return runs

    def charge_run_reservations(self, tenant_id: str, run_id: str) -> int:
        """Charge unsettled the tenant's reservations whose windows include ``run:<run_id>``."""
        from google.cloud.firestore import FieldFilter

        col = self._tenant(tenant_id).collection("reservations")
        snaps = self._query(col.where(filter=FieldFilter("windows", "array_contains", f"run:{run_id}")))
        return self._charge_unsettled(tenant_id, snaps)

    def get_session(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        """The tenant's session, or None."""
        snap = self._get(self._sub(tenant_id, "sessions", session_id))
        return SessionRecord(**json.loads(snap.to_dict()["data"])) if snap.exists else None

    def put_session(self, session: SessionRecord, expected_version: int) -> bool:
        """Write the session iff its stored version is ``expected_version`` (0: create)."""
        data = {**session.__dict__, "version": expected_version + 1, "updated_at": now_iso()}
        if not self._versioned_write(self._sub(session.tenant_id, "sessions", session.id), data, expected_version,
                                     session.expires_at):
            return False
        session.version, session.updated_at = expected_version + 1, data["updated_at"]
        return True

    def delete_session(self, tenant_id: str, session_id: str) -> None:
        """Forget the session."""
        self._rpc(self._sub(tenant_id, "sessions", session_id).delete)

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
