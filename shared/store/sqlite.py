"""SQLite backend: the embedded default, safe for several processes on one file.

WAL mode lets readers run beside one writer; every write that must be atomic runs in a
``BEGIN IMMEDIATE`` transaction, which takes the database's write lock up front so two
processes can never both read "fits" and both write. ``busy_timeout`` makes a second
writer wait for the lock instead of failing. One connection per process, guarded by a
lock, because sqlite3 connections are not safe to share between threads mid-statement.

From async code (shared/store/aio.py) a call first tries :meth:`SQLiteStore.run_now`: on
the calling thread, on a second connection that never waits (``busy_timeout`` 0), when
this process's lock is free at once. A transaction here is tens of microseconds of CPU
(WAL, ``synchronous=NORMAL``: no fsync on commit), less than handing it to a thread and
back. When anything would have to wait (the lock held, another process writing) it is
handed to the store's thread instead, which waits. That connection never checkpoints the
WAL itself (the fsync would stall the loop): every ``CHECKPOINT_EVERY`` of its commits a
thread checkpoints on the waiting connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
from shared.store.gcra import gcra, gcra_remaining

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, data TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (key_hash TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, prefix TEXT NOT NULL,
    created_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant_id);
CREATE TABLE IF NOT EXISTS windows (tenant_id TEXT NOT NULL, key TEXT NOT NULL, limit_micros INTEGER NOT NULL,
    spent_micros INTEGER NOT NULL DEFAULT 0, reserved_micros INTEGER NOT NULL DEFAULT 0, expires_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, key));
CREATE TABLE IF NOT EXISTS rates (tenant_id TEXT NOT NULL, key TEXT NOT NULL, tat REAL NOT NULL,
    PRIMARY KEY (tenant_id, key));
CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, amount_micros INTEGER NOT NULL,
    windows TEXT NOT NULL, expires_at REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reservations_expiry ON reservations (tenant_id, expires_at);
CREATE TABLE IF NOT EXISTS markers (tenant_id TEXT NOT NULL, marker TEXT NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, marker));
CREATE TABLE IF NOT EXISTS ledger (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_tenant_at ON ledger (tenant_id, at);
CREATE TABLE IF NOT EXISTS audit (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_tenant_at ON audit (tenant_id, at);
CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, created_at TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS notes_tenant ON notes (tenant_id, created_at);
CREATE TABLE IF NOT EXISTS tickets (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, created_at TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tickets_tenant ON tickets (tenant_id, created_at);
CREATE TABLE IF NOT EXISTS idempotency (tenant_id TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL,
    expires_at REAL NOT NULL, response TEXT, PRIMARY KEY (tenant_id, key));
CREATE TABLE IF NOT EXISTS runs (tenant_id TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE INDEX IF NOT EXISTS runs_tenant_created ON runs (tenant_id, json_extract(data, '$.created_at'));
CREATE TABLE IF NOT EXISTS sessions (tenant_id TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (tenant_id, id));
"""

# What a reservation row keeps besides its columns: enough to charge it unsettled.
_RESERVATION_DATA = ("request_id", "team", "operation", "model", "input_tokens", "output_tokens", "created_at")
_RESERVATION_COLUMNS = "id, tenant_id, amount_micros, windows, expires_at, data"


def _reservation_from_row(row: sqlite3.Row) -> Reservation:
    rid, tenant_id, amount, windows, expires_at, data = row
    return Reservation(id=rid, tenant_id=tenant_id, amount_micros=amount, windows=json.loads(windows),
                       expires_at=expires_at, **json.loads(data))


CHECKPOINT_EVERY = 1000  # commits on the no-wait connection between WAL checkpoints
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_BUSY_RECOVERY, sqlite3.SQLITE_BUSY_SNAPSHOT,
               sqlite3.SQLITE_LOCKED_SHAREDCACHE}


class _WouldWait(Exception):
    """Raised inside :meth:`SQLiteStore.run_now` where SQLite would have had to wait."""


class SQLiteStore:
    """The :class:`~shared.store.base.Store` on one SQLite file."""

    # One connection under one lock runs one call at a time: async callers get one thread
    # for this store (shared/store/aio.py), their calls queued rather than waiting on the lock.
    parallel_calls = 1

    def __init__(self, path: str) -> None:
        self.url = f"sqlite:///{path}"
        self.path = path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._nowait_conn: sqlite3.Connection | None = None
        self._nowait = False  # set while run_now holds the lock: use the connection that never waits
        self._nowait_commits = 0
        self.round_trips = 0  # transactions and reads, for the budget benchmark

    def run_now(self, fn: Any, args: tuple[Any, ...]) -> tuple[bool, Any]:
        """``(True, fn(*args))`` when this store's method ``fn`` ran here without waiting
        for anything; ``(False, None)`` when it would have had to wait (nothing was changed):
        the caller then runs it on the store's thread. Errors are ``fn``'s own."""
        if not self._lock.acquire(blocking=False):
            return False, None
        try:
            self._nowait = True
            return True, fn(*args)
        except _WouldWait:
            return False, None
        finally:
            self._nowait = False
            self._lock.release()

    def _nowait_connection(self) -> sqlite3.Connection:
        if self.path == ":memory:":  # one database per connection: and no other process to wait for
            return self._connect()
        if self._nowait_conn is None:
            self._connect()  # the schema, created by the waiting connection
            try:
                conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=0")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA wal_autocheckpoint=0")
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc
            self._nowait_conn = conn
        return self._nowait_conn

    def _committed_nowait(self) -> None:
        self._nowait_commits += 1
        if self._nowait_commits % CHECKPOINT_EVERY == 0:
            threading.Thread(target=self._checkpoint, name="sqlite-checkpoint", daemon=True).start()

    def _checkpoint(self) -> None:
        try:
            with self._lock:
                self._connect().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except (sqlite3.Error, StoreUnavailable):
            pass  # the next one, or another process's autocheckpoint, will do it

    # connection -------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: the write lock is taken before any read."""
        with self._lock:
            nowait = self._nowait
            conn = self._nowait_connection() if nowait else self._connect()
            self.round_trips += 1
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            if nowait:
                self._committed_nowait()

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            self.round_trips += 1
            try:
                conn = self._nowait_connection() if self._nowait else self._connect()
                return list(conn.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc

    def _failure(self, exc: sqlite3.Error) -> Exception:
        """What a SQLite error raises: in :meth:`run_now`, a busy database means "wait"
        (on the store's thread); anything else is the store being unavailable."""
        if self._nowait and getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES:
            return _WouldWait()
        return StoreUnavailable(f"SQLite store error: {exc}")

    def init(self) -> None:
        """Create the schema (done on connect too; idempotent)."""
        self._connect()

    def ping(self) -> None:
        """A real read of the database file."""
        self._read("SELECT count(*) FROM tenants")

    def close(self) -> None:
        """Close the connections."""
        with self._lock:
            for conn in {id(c): c for c in (self._nowait_conn, self._conn) if c is not None}.values():
                conn.close()
            self._conn = self._nowait_conn = None

    # tenants and keys ---------------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> None:
        """Store a new tenant (KeyError when the id is taken)."""
        with self._tx() as c:
            try:
                c.execute(
                    "INSERT INTO tenants (id, data, created_at) VALUES (?, ?, ?)",
                    (tenant.id, json.dumps(tenant.to_dict()), tenant.created_at),
                )
            except sqlite3.IntegrityError:
                raise KeyError(tenant.id) from None

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None."""
        rows = self._read("SELECT data FROM tenants WHERE id = ?", (tenant_id,))
        return Tenant.from_dict(json.loads(rows[0][0])) if rows else None

    def list_tenants(self) -> list[Tenant]:
        """Every tenant, oldest first."""
        rows = self._read("SELECT data FROM tenants ORDER BY created_at, id")
        return [Tenant.from_dict(json.loads(r[0])) for r in rows]

    def update_tenant(self, tenant_id: str, changes: dict[str, Any]) -> Tenant:
        """Apply field changes atomically."""
        with self._tx() as c:
            row = c.execute("SELECT data FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
            if row is None:
                raise KeyError(tenant_id)
            data = json.loads(row[0])
            data.update(changes)
            tenant = Tenant.from_dict(data)
            c.execute("UPDATE tenants SET data = ? WHERE id = ?", (json.dumps(tenant.to_dict()), tenant_id))
        return tenant

    def put_api_key(self, record: ApiKeyRecord) -> None:
        """Store a key hash."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO api_keys (key_hash, tenant_id, prefix, created_at, revoked) VALUES (?, ?, ?, ?, ?)",
                (record.key_hash, record.tenant_id, record.prefix, record.created_at, int(record.revoked)),
            )

    def get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key record for a hash, or None."""
        rows = self._read(
            "SELECT key_hash, tenant_id, prefix, created_at, revoked FROM api_keys WHERE key_hash = ?", (key_hash,)
        )
        if not rows:
            return None
        h, tenant_id, prefix, created_at, revoked = rows[0]
        return ApiKeyRecord(h, tenant_id, prefix, created_at, bool(revoked))

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        """Every key record of a tenant, oldest first."""
        rows = self._read(
            "SELECT key_hash, tenant_id, prefix, created_at, revoked FROM api_keys WHERE tenant_id = ?"
            " ORDER BY created_at, key_hash", (tenant_id,)
        )
        return [ApiKeyRecord(h, t, p, c, bool(r)) for h, t, p, c, r in rows]

    def revoke_api_keys(self, tenant_id: str) -> int:
        """Revoke every key of a tenant."""
        with self._tx() as c:
            return c.execute(
                "UPDATE api_keys SET revoked = 1 WHERE tenant_id = ? AND revoked = 0", (tenant_id,)
            ).rowcount

    # budget -------------------------------------------------------------------------
    def reserve(
        self, reservation: Reservation, windows: list[WindowLimit], rates: list[RateLimit], now: float
    ) -> ReserveOutcome:
        """Check every window and rate, then hold and charge them, in one transaction."""
        tenant_id = reservation.tenant_id
        amount = reservation.amount_micros
        with self._tx() as c:
            states: list[WindowState] = []
            for w in windows:
                row = c.execute(
                    "SELECT spent_micros, reserved_micros FROM windows WHERE tenant_id = ? AND key = ?",
                    (tenant_id, w.key),
                ).fetchone()
                spent, reserved = (row[0], row[1]) if row else (0, 0)
                state = WindowState(w.key, w.limit_micros, spent, reserved)
                if amount > 0 and spent + reserved + amount > w.limit_micros:
                    return ReserveOutcome(
                        refusal=Refusal("window", w.key, w.limit_micros, spent, state.remaining_micros),
                        windows=[state],
                    )
                states.append(state)
            new_tats: list[tuple[RateLimit, float]] = []
            for r in rates:
                row = c.execute("SELECT tat FROM rates WHERE tenant_id = ? AND key = ?", (tenant_id, r.key)).fetchone()
                allowed, tat, retry_after = gcra(row[0] if row else None, now, r)
                if not allowed:
                    return ReserveOutcome(refusal=Refusal("rate", r.key, r.limit_per_minute, retry_after_s=retry_after))
                new_tats.append((r, tat))
            for w, state in zip(windows, states, strict=True):
                c.execute(
                    "INSERT INTO windows (tenant_id, key, limit_micros, spent_micros, reserved_micros, expires_at) "
                    "VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (tenant_id, key) DO UPDATE SET "
                    "limit_micros = excluded.limit_micros, reserved_micros = reserved_micros + ?",
                    (tenant_id, w.key, w.limit_micros, amount, w.expires_at, amount),
                )
                state.reserved_micros += amount
            for r, tat in new_tats:
                c.execute(
                    "INSERT INTO rates (tenant_id, key, tat) VALUES (?, ?, ?) "
                    "ON CONFLICT (tenant_id, key) DO UPDATE SET tat = excluded.tat",
                    (tenant_id, r.key, tat),
                )
            c.execute(
                "INSERT INTO reservations (id, tenant_id, amount_micros, windows, expires_at, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    reservation.id,
                    tenant_id,
                    amount,
                    json.dumps(reservation.windows),
                    reservation.expires_at,
                    json.dumps({k: getattr(reservation, k) for k in _RESERVATION_DATA}),
                ),
            )
        return ReserveOutcome(
            windows=states, rate_remaining={r.key: gcra_remaining(tat, now, r) for r, tat in new_tats}
        )

    def settle(
        self,
        reservation: Reservation,
        cost_micros: int,
        ledger: LedgerEntry | None,
        audit: list[AuditEvent],
    ) -> list[WindowState]:
        """Move the reservation to spent at its real cost and append the ledger, atomically
        (the cases are in :meth:`shared.store.base.Store.settle`)."""
        with self._tx() as c:
            self._settle(c, reservation, cost_micros, ledger)
            self._insert_audit(c, audit)
            return self._windows(c, reservation.tenant_id, reservation.windows)

    def _settle(self, c: sqlite3.Connection, reservation: Reservation, cost: int, ledger: LedgerEntry | None) -> None:
        tenant_id = reservation.tenant_id
        if ledger is not None and ledger.id != ledger_id_for(reservation.id) and self._ledger_row(c, ledger.id):
            return  # settled before under this entry id: a retried settle changes nothing
        charged = self._ledger_row(c, ledger_id_for(reservation.id))
        if charged is not None:
            if not charged.get("unsettled") or ledger is None or ledger.unsettled:
                return  # settled before, or charged unsettled already: nothing new to say
            # a late settle: the unsettled worst case becomes the real cost, once
            c.execute("DELETE FROM ledger WHERE id = ?", (charged["id"],))
            held, delta = 0, cost - int(charged["cost_micros"])
        else:
            row = c.execute(
                "DELETE FROM reservations WHERE id = ? AND tenant_id = ? RETURNING amount_micros",
                (reservation.id, tenant_id),
            ).fetchone()
            # A released or lost reservation holds nothing, but money spent is still charged.
            held, delta = (row[0] if row else 0), cost
        for key in reservation.windows:
            c.execute(
                "UPDATE windows SET reserved_micros = MAX(0, reserved_micros - ?), "
                "spent_micros = spent_micros + ? WHERE tenant_id = ? AND key = ?",
                (held, delta, tenant_id, key),
            )
        if ledger is not None:
            c.execute(
                "INSERT INTO ledger (id, tenant_id, at, data) VALUES (?, ?, ?, ?)",
                (ledger.id, tenant_id, ledger.at, json.dumps(ledger.__dict__)),
            )

    @staticmethod
    def _ledger_row(c: sqlite3.Connection, entry_id: str) -> dict[str, Any] | None:
        row = c.execute("SELECT data FROM ledger WHERE id = ?", (entry_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def release(self, tenant_id: str, reservation_id: str) -> None:
        """Return the held amount to its windows (a request known never to have been sent)."""
        with self._tx() as c:
            row = c.execute(
                "SELECT amount_micros, windows FROM reservations WHERE id = ? AND tenant_id = ?",
                (reservation_id, tenant_id),
            ).fetchone()
            if row is None:
                return
            for key in json.loads(row[1]):
                c.execute(
                    "UPDATE windows SET reserved_micros = MAX(0, reserved_micros - ?) "
                    "WHERE tenant_id = ? AND key = ?",
                    (row[0], tenant_id, key),
                )
            c.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))

    def _charge_unsettled(self, c: sqlite3.Connection, rows: list[sqlite3.Row]) -> int:
        for row in rows:
            reservation = _reservation_from_row(row)
            self._settle(c, reservation, reservation.amount_micros, unsettled_entry(reservation))
        return len(rows)

    def reclaim_expired(self, tenant_id: str, now: float) -> int:
        """Charge the tenant's expired reservations (crashed or paused instances) unsettled."""
        with self._tx() as c:
            rows = c.execute(
                f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE tenant_id = ? AND expires_at < ?",
                (tenant_id, now),
            ).fetchall()
            return self._charge_unsettled(c, rows)

    def _windows(self, c: sqlite3.Connection, tenant_id: str, keys: list[str]) -> list[WindowState]:
        out = []
        for key in keys:
            row = c.execute(
                "SELECT limit_micros, spent_micros, reserved_micros FROM windows WHERE tenant_id = ? AND key = ?",
                (tenant_id, key),
            ).fetchone()
            out.append(WindowState(key, *row) if row else WindowState(key, 0, 0, 0))
        return out

    def get_windows(self, tenant_id: str, keys: list[str]) -> list[WindowState]:
        """Current state of the named windows."""
        with self._lock:
            try:
                return self._windows(self._connect(), tenant_id, keys)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store error: {exc}") from exc

    def claim_marker(self, tenant_id: str, marker: str, expires_at: float) -> bool:
        """True the first time the marker is claimed."""
        with self._tx() as c:
            return (
                c.execute(
                    "INSERT OR IGNORE INTO markers (tenant_id, marker, expires_at) VALUES (?, ?, ?)",
                    (tenant_id, marker, expires_at),
                ).rowcount
                == 1
            )

    # ledger and audit -----------------------------------------------------------------
    def list_ledger(self, tenant_id: str, since: str | None = None, limit: int = 10_000) -> list[LedgerEntry]:
        """Ledger entries at or after ``since``, oldest first."""
        rows = self._read(
            "SELECT data FROM ledger WHERE tenant_id = ? AND at >= ? ORDER BY at, id LIMIT ?",
            (tenant_id, since or "", limit),
        )
        return [LedgerEntry(**json.loads(r[0])) for r in rows]

    def _insert_audit(self, c: sqlite3.Connection, events: list[AuditEvent]) -> None:
        c.executemany(
            "INSERT OR IGNORE INTO audit (id, tenant_id, at, data) VALUES (?, ?, ?, ?)",
            [(e.id, e.tenant_id, e.at, json.dumps(e.__dict__)) for e in events],
        )

    def append_audit(self, events: list[AuditEvent]) -> None:
        """Append audit events."""
        if events:
            with self._tx() as c:
                self._insert_audit(c, events)

    def list_audit(self, tenant_id: str, limit: int = 50, before: str | None = None) -> list[AuditEvent]:
        """Newest first, strictly before ``before``."""
        rows = self._read(
            "SELECT data FROM audit WHERE tenant_id = ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?",
            (tenant_id, before or "\uffff", limit),
        )
        return [AuditEvent(**json.loads(r[0])) for r in rows]

    # notes and tickets ------------------------------------------------------------------
    def add_note(self, note: Note) -> None:
        """Store a note."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO notes (id, tenant_id, created_at, data) VALUES (?, ?, ?, ?)",
                (note.id, note.tenant_id, note.created_at, json.dumps(note.__dict__)),
            )

    def list_notes(self, tenant_id: str, query: str | None = None, limit: int = 50) -> list[Note]:
        """Newest first, optionally filtered by a case-insensitive substring."""
        rows = self._read(
            "SELECT data FROM notes WHERE tenant_id = ? ORDER BY created_at DESC, id DESC", (tenant_id,)
        )
        notes = [Note(**json.loads(r[0])) for r in rows]
        if query:
            q = query.lower()
            notes = [n for n in notes if q in n.title.lower() or q in n.body.lower() or q in " ".join(n.tags).lower()]
        return notes[:limit]

    def create_ticket(self, ticket: Ticket) -> None:
        """Store a ticket."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO tickets (id, tenant_id, created_at, data) VALUES (?, ?, ?, ?)",
                (ticket.id, ticket.tenant_id, ticket.created_at, json.dumps(ticket.__dict__)),
            )

    def update_ticket(self, tenant_id: str, ticket_id: str, changes: dict[str, Any]) -> Ticket:
        """Change one of the tenant's tickets."""
        with self._tx() as c:
            row = c.execute(
                "SELECT data FROM tickets WHERE id = ? AND tenant_id = ?", (ticket_id, tenant_id)
            ).fetchone()
            if row is None:
                raise KeyError(ticket_id)
            data = json.loads(row[0])
            data.update({k: v for k, v in changes.items() if k in ("subject", "body", "status", "priority")})
            data["updated_at"] = now_iso()
            c.execute("UPDATE tickets SET data = ? WHERE id = ?", (json.dumps(data), ticket_id))
        return Ticket(**data)

    def list_tickets(self, tenant_id: str, status: str | None = None, limit: int = 50) -> list[Ticket]:
        """Newest first, optionally by status."""
        rows = self._read(
            "SELECT data FROM tickets WHERE tenant_id = ? ORDER BY created_at DESC, id DESC", (tenant_id,)
        )
        tickets = [Ticket(**json.loads(r[0])) for r in rows]
        return [t for t in tickets if status is None or t.status == status][:limit]

    # idempotency --------------------------------------------------------------------------
    def claim_idempotency(self, tenant_id: str, record: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        """Claim the key, or return the live record that holds it."""
        with self._tx() as c:
            row = c.execute(
                "SELECT body_hash, expires_at, response FROM idempotency WHERE tenant_id = ? AND key = ?",
                (tenant_id, record.key),
            ).fetchone()
            if row is not None and row[1] >= now:
                return IdempotencyRecord(record.key, row[0], row[1], json.loads(row[2]) if row[2] else None)
            c.execute(
                "INSERT OR REPLACE INTO idempotency (tenant_id, key, body_hash, expires_at, response) "
                "VALUES (?, ?, ?, ?, NULL)",
                (tenant_id, record.key, record.body_hash, record.expires_at),
            )
            return None

    def complete_idempotency(
        self, tenant_id: str, key: str, response: dict[str, Any], expires_at: float | None = None
    ) -> None:
        """Store the response of a claimed key (and how long it is kept)."""
        with self._tx() as c:
            c.execute(
                "UPDATE idempotency SET response = ?, expires_at = COALESCE(?, expires_at) "
                "WHERE tenant_id = ? AND key = ?",
                (json.dumps(response), expires_at, tenant_id, key),
            )

    def release_idempotency(self, tenant_id: str, key: str) -> None:
        """Forget a claim."""
        with self._tx() as c:
            c.execute("DELETE FROM idempotency WHERE tenant_id = ? AND key = ?", (tenant_id, key))

    # orchestrated runs ----------------------------------------------------------------------
    def put_run(self, run: RunRecord) -> None:
        """Insert a new run at version 1."""
        run.version = 1
        with self._tx() as c:
            try:
                c.execute("INSERT INTO runs (tenant_id, id, version, data) VALUES (?, ?, 1, ?)",
                          (run.tenant_id, run.id, json.dumps(run.__dict__)))
            except sqlite3.IntegrityError:
                raise KeyError(run.id) from None

    def get_run(self, tenant_id: str, run_id: str) -> RunRecord | None:
        """The tenant's run, or None."""
        rows = self._read("SELECT data FROM runs WHERE tenant_id = ? AND id = ?", (tenant_id, run_id))
        return RunRecord(**json.loads(rows[0][0])) if rows else None

    def update_run(self, run: RunRecord, expected_version: int) -> bool:
        """Compare-and-swap on the version column (a version below 1 never matches, as on every backend)."""
        return expected_version >= 1 and self._versioned_write("runs", run, expected_version)

    def _versioned_write(self, table: str, record: RunRecord | SessionRecord, expected_version: int) -> bool:
        """Insert at version 1 (``expected_version`` 0) or compare-and-swap on the version
        column; the record gets its new version and ``updated_at`` when it is written."""
        data = {**record.__dict__, "version": expected_version + 1, "updated_at": now_iso()}
        with self._tx() as c:
            if expected_version == 0:
                changed = c.execute(
                    f"INSERT OR IGNORE INTO {table} (tenant_id, id, version, data) VALUES (?, ?, 1, ?)",
                    (record.tenant_id, record.id, json.dumps(data)),
                ).rowcount
            else:
                changed = c.execute(
                    f"UPDATE {table} SET version = ?, data = ? WHERE tenant_id = ? AND id = ? AND version = ?",
                    (expected_version + 1, json.dumps(data), record.tenant_id, record.id, expected_version),
                ).rowcount
        if changed:
            record.version, record.updated_at = expected_version + 1, data["updated_at"]
        return bool(changed)

    def list_runs(self, tenant_id: str, limit: int = 50, before: str | None = None) -> list[RunRecord]:
        """Newest first, strictly before ``before`` (``created_at`` is read from the JSON document)."""
        if limit <= 0:
            return []
        rows = self._read(
            "SELECT data FROM runs WHERE tenant_id = ? AND json_extract(data, '$.created_at') < ? "
            "ORDER BY json_extract(data, '$.created_at') DESC, id DESC LIMIT ?",
            (tenant_id, before or "\uffff", limit),
        )
        return [RunRecord(**json.loads(r[0])) for r in rows]

    def charge_run_reservations(self, tenant_id: str, run_id: str) -> int:
        """Charge the reservations holding ``run:<run_id>`` unsettled."""
        key = f"run:{run_id}"
        with self._tx() as c:
            rows = c.execute(f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE tenant_id = ?",
                             (tenant_id,)).fetchall()
            return self._charge_unsettled(c, [r for r in rows if key in json.loads(r[3])])

    # sessions ---------------------------------------------------------------------------------
    def get_session(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        """The tenant's session, or None."""
        rows = self._read("SELECT data FROM sessions WHERE tenant_id = ? AND id = ?", (tenant_id, session_id))
        return SessionRecord(**json.loads(rows[0][0])) if rows else None

    def put_session(self, session: SessionRecord, expected_version: int) -> bool:
        """Insert (expected 0) or compare-and-swap on the version column."""
        return self._versioned_write("sessions", session, expected_version)

    def delete_session(self, tenant_id: str, session_id: str) -> None:
        """Forget the session."""
        with self._tx() as c:
            c.execute("DELETE FROM sessions WHERE tenant_id = ? AND id = ?", (tenant_id, session_id))
