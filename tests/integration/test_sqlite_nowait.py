"""SQLite calls from async code run on the event loop only when nothing would wait
(``SQLiteStore.run_now``); when another writer holds the database they go to the store's
thread, which waits, and a caller cancelled meanwhile leaves no hold behind."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from shared.budget import BudgetGuard, CallIdentity, window_limits
from shared.config import Settings
from shared.models import open_provider
from shared.models.base import ModelRequest
from shared.store.base import AuditEvent, Tenant, new_id
from shared.store.sqlite import CHECKPOINT_EVERY, SQLiteStore


def _store(tmp_path: Path) -> tuple[SQLiteStore, Tenant]:
    store = SQLiteStore(str(tmp_path / "store.db"))
    store.init()
    tenant = Tenant(id="ten_nowait", name="nowait", daily_limit_micros=10**9, monthly_limit_micros=10**9,
                    rpm=10**6, tpm=10**9)
    store.create_tenant(tenant)
    return store, tenant


def _event(tenant: Tenant) -> AuditEvent:
    return AuditEvent(id=new_id("aud"), tenant_id=tenant.id, type="operation", request_id="req_1", team="research",
                      operation="ask", status=200, detail={})


def _other_writer(store: SQLiteStore) -> sqlite3.Connection:
    """Another connection holding the write lock, as another process's transaction would."""
    other = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_run_now_never_waits_and_changes_nothing_when_it_would(tmp_path: Path) -> None:
    store, tenant = _store(tmp_path)
    other = _other_writer(store)
    started = time.monotonic()
    assert store.run_now(store.append_audit, ([_event(tenant)],)) == (False, None)
    assert time.monotonic() - started < 1.0  # not the 30 s busy timeout of the waiting connection
    other.execute("ROLLBACK")
    assert store.list_audit(tenant.id) == []
    done, _ = store.run_now(store.append_audit, ([_event(tenant)],))
    assert done and len(store.list_audit(tenant.id)) == 1
    store.close()


def test_a_caller_cancelled_while_its_hold_waits_for_the_lock_leaves_no_hold(tmp_path: Path) -> None:
    store, tenant = _store(tmp_path)
    settings = Settings.from_env({})
    guard = BudgetGuard(store, settings, CallIdentity(tenant=tenant, team="research", operation="ask",
                                                      request_id="req_cancelled"))
    request = ModelRequest(model="claude-haiku-4-5", system="s", messages=[{"role": "user", "content": "hi"}],
                           max_tokens=100)

    async def scenario() -> None:
        other = _other_writer(store)
        before = store.round_trips
        call = asyncio.create_task(guard.call(open_provider("simulated", banner=False), request))
        deadline = time.monotonic() + 10
        while store.round_trips == before:  # the reservation is on the store's thread, waiting for the lock
            assert time.monotonic() < deadline, "the reservation never reached the store's thread"
            await asyncio.sleep(0.01)
        call.cancel()
        other.execute("ROLLBACK")  # the hold is taken now, after its caller left
        try:
            await call
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the call was not cancelled")

    asyncio.run(scenario())
    states = store.get_windows(tenant.id, [w.key for w in window_limits(tenant, "research", time.time())])
    assert states and all(w.reserved_micros == 0 and w.spent_micros == 0 for w in states), states
    store.reclaim_expired(tenant.id, time.time() + 10**6)  # a hold left behind would be charged here
    assert all(w.spent_micros == 0 for w in store.get_windows(tenant.id, [w.key for w in states]))
    store.close()


def _checkpoints_done() -> None:
    deadline = time.monotonic() + 10
    while any(t.name == "sqlite-checkpoint" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the checkpoint thread did not finish"
        time.sleep(0.01)


def test_the_wal_is_checkpointed_off_the_calling_thread(tmp_path: Path) -> None:
    store, tenant = _store(tmp_path)
    wal = Path(store.path + "-wal")
    sizes = []
    for _ in range(4):
        for _ in range(CHECKPOINT_EVERY):
            done, _ = store.run_now(store.append_audit, ([_event(tenant)],))
            assert done
        _checkpoints_done()
        sizes.append(wal.stat().st_size)
    # checkpointed every CHECKPOINT_EVERY commits, the WAL is reused instead of growing with every commit
    assert sizes[-1] <= sizes[0] * 1.5, sizes
    assert len(store.list_audit(tenant.id, limit=10_000)) == CHECKPOINT_EVERY * 4
    store.close()
