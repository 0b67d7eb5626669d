"""What only the Firestore backend has: sharded windows and rates, compare-and-set commits,
its document layout, and failing fast when the emulator is down or hung."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import pytest

from shared.store import open_store
from shared.store.base import (
    IdempotencyRecord,
    LedgerEntry,
    RateLimit,
    Reservation,
    StoreUnavailable,
    Tenant,
    WindowLimit,
    ledger_id_for,
    new_id,
    unsettled_entry,
)
from shared.store.firestore import FirestoreStore
from tests.integration import server_firestore, servers

pytestmark = pytest.mark.integration

FAR = time.time() + 86_400
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FirestoreStore]:
    s = open_store(servers.fresh_store_url("firestore", tmp_path))
    assert isinstance(s, FirestoreStore)
    s.init()
    yield s
    s.close()


def tenant(store: FirestoreStore) -> Tenant:
    t = Tenant(id=new_id("ten"), name="acme", daily_limit_micros=1_000_000, monthly_limit_micros=10_000_000,
               rpm=60, tpm=100_000)
    store.create_tenant(t)
    return t


def res(tenant_id: str, amount: int, windows: list[str], expires_at: float = FAR) -> Reservation:
    return Reservation(id=new_id("res"), tenant_id=tenant_id, amount_micros=amount, windows=windows,
                       expires_at=expires_at)


def entry(r: Reservation, cost: int) -> LedgerEntry:
    return LedgerEntry(id=new_id("led"), tenant_id=r.tenant_id, request_id="req", team="", operation="ask",
                       model="m", input_tokens=1, output_tokens=1, cost_micros=cost)


def race(n: int, fn: Callable[[], T]) -> list[T]:
    """Run ``fn`` in ``n`` threads at once; its results (any exception fails the test)."""
    out: list[T] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            value = fn()
        except BaseException as exc:  # reported below
            errors.append(exc)
            return
        with lock:
            out.append(value)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    return out


# sharded budgets -----------------------------------------------------------------------------
def test_a_window_is_summed_over_shards(store):
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    # eight shards of 125: eight reservations of 100 leave 25 in every shard
    for _ in range(8):
        assert store.reserve(res(t.id, 100, ["day:d"]), win, [], time.time()).ok
    # 200 fits in no single shard but in the window: it is spread, not refused
    spread = res(t.id, 200, ["day:d"])
    out = store.reserve(spread, win, [], time.time())
    assert out.ok and out.windows[0].reserved_micros == 1000
    assert not store.reserve(res(t.id, 1, ["day:d"]), win, [], time.time()).ok
    store.release(t.id, spread.id)
    assert store.get_windows(t.id, ["day:d"])[0].reserved_micros == 800
    # the day window lives in the tenant's eight budget documents, every one holding part of it
    docs = list(store._tenant(t.id).collection("budget").stream())
    assert sorted(d.id for d in docs) == [f"s{i}" for i in range(8)]
    assert all(d.to_dict()["w"]["day:d"]["reserved"] >= 100 for d in docs)


def test_concurrent_reservations_spanning_shards_never_overspend(store):
    # 300 never fits one shard of 125: every reservation takes three or four shards
    t = tenant(store)
    wins = [WindowLimit("day:d", 1000, FAR), WindowLimit("month:m", 10_000, FAR)]
    oks = race(20, lambda: store.reserve(res(t.id, 300, ["day:d", "month:m"]), wins, [], time.time()).ok)
    assert oks.count(True) == 3
    day, month = store.get_windows(t.id, ["day:d", "month:m"])
    assert (day.reserved_micros, month.reserved_micros) == (900, 900)


def test_concurrent_reservations_across_three_windows_are_all_or_nothing(store):
    t = tenant(store)
    wins = [WindowLimit("day:d", 1000, FAR), WindowLimit("month:m", 700, FAR), WindowLimit("team:x", 5000, FAR)]
    keys = [w.key for w in wins]
    oks = race(30, lambda: store.reserve(res(t.id, 100, keys), wins, [], time.time()).ok)
    assert oks.count(True) == 7
    assert [w.reserved_micros for w in store.get_windows(t.id, keys)] == [700, 700, 700]


def test_settle_over_the_held_amount_is_paid_back_before_new_reservations(store):
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    a, b = res(t.id, 500, ["day:d"]), res(t.id, 500, ["day:d"])
    assert store.reserve(a, win, [], time.time()).ok and store.reserve(b, win, [], time.time()).ok
    # a cost 200 more than it held while every shard was full: a shard is left in debt
    assert store.settle(a, 700, entry(a, 700), [])[0].spent_micros == 700
    store.release(t.id, b.id)
    # 300 is left in total, though the free shards hold 500: the debt is paid first
    refused = store.reserve(res(t.id, 301, ["day:d"]), win, [], time.time())
    assert not refused.ok and refused.refusal.remaining_micros == 300
    assert store.reserve(res(t.id, 300, ["day:d"]), win, [], time.time()).ok
    assert not store.reserve(res(t.id, 1, ["day:d"]), win, [], time.time()).ok
    state = store.get_windows(t.id, ["day:d"])[0]
    assert (state.spent_micros, state.reserved_micros) == (700, 300)
    shifts = [d.to_dict()["w"]["day:d"].get("shift", 0) for d in store._tenant(t.id).collection("budget").stream()]
    assert sum(shifts) == 0 and any(shifts)


def test_settle_over_the_held_amount_uses_free_shards_first(store):
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    r = res(t.id, 100, ["day:d"])
    assert store.reserve(r, win, [], time.time()).ok
    assert store.settle(r, 600, entry(r, 600), [])[0].spent_micros == 600
    assert not store.reserve(res(t.id, 401, ["day:d"]), win, [], time.time()).ok
    assert store.reserve(res(t.id, 400, ["day:d"]), win, [], time.time()).ok
    assert store.get_windows(t.id, ["day:d"])[0].remaining_micros == 0


def test_a_lowered_limit_is_honoured(store):
    t = tenant(store)
    assert store.reserve(res(t.id, 500, ["day:d"]), [WindowLimit("day:d", 1000, FAR)], [], time.time()).ok
    lower = [WindowLimit("day:d", 600, FAR)]
    assert not store.reserve(res(t.id, 101, ["day:d"]), lower, [], time.time()).ok
    assert store.reserve(res(t.id, 100, ["day:d"]), lower, [], time.time()).ok
    assert not store.reserve(res(t.id, 1, ["day:d"]), lower, [], time.time()).ok
    assert store.get_windows(t.id, ["day:d"])[0].limit_micros == 600


def test_churn_keeps_the_books_exact(store):
    # reserve, then settle (sometimes over the held amount) or release, from 16 threads
    t = tenant(store)
    limit = 20_000
    win = [WindowLimit("day:d", limit, FAR)]
    overage = [0]
    lock = threading.Lock()
    stop = time.monotonic() + 4
    samples: list[int] = []

    def worker() -> None:
        rng = random.Random()
        while time.monotonic() < stop:  # (a StoreUnavailable here fails the test through race)
            r = res(t.id, rng.randint(100, 3000), ["day:d"])
            if not store.reserve(r, win, [], time.time()).ok:
                continue
            if rng.random() < 0.2:
                store.release(t.id, r.id)
                continue
            cost = rng.randint(0, r.amount_micros * 3 // 2)
            with lock:
                overage[0] += max(0, cost - r.amount_micros)
            store.settle(r, cost, entry(r, cost), [])

    def sampler() -> None:
        while time.monotonic() < stop:
            w = store.get_windows(t.id, ["day:d"])[0]
            samples.append(w.spent_micros + w.reserved_micros)
            time.sleep(0.02)

    roles = iter([sampler] + [worker] * 16)

    def one() -> None:
        with lock:
            role = next(roles)
        role()

    race(17, one)
    state = store.get_windows(t.id, ["day:d"])[0]
    assert state.reserved_micros == 0
    assert state.spent_micros == sum(e.cost_micros for e in store.list_ledger(t.id))
    assert max(samples) <= limit + overage[0]
    assert state.spent_micros <= limit + overage[0]


def test_a_retried_reserve_whose_commit_landed_holds_once(store):
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    r = res(t.id, 300, ["day:d"])
    assert store.reserve(r, win, [], time.time()).ok
    again = store.reserve(r, win, [], time.time())
    assert again.ok and again.windows[0].reserved_micros == 300
    assert store.get_windows(t.id, ["day:d"])[0].reserved_micros == 300


def test_round_trips_per_call(store):
    t = tenant(store)
    win = [WindowLimit("day:d", 10_000, FAR), WindowLimit("month:m", 100_000, FAR)]
    rates = [RateLimit("rpm", 600, 1), RateLimit("tpm", 100_000, 500)]
    r = res(t.id, 100, ["day:d", "month:m"])
    before = store.round_trips
    assert store.reserve(r, win, rates, time.time()).ok
    assert store.round_trips - before == 2  # one batched read, one commit
    before = store.round_trips
    store.settle(r, 80, entry(r, 80), [])
    assert store.round_trips - before == 2


# sharded rates ----------------------------------------------------------------------------------
def test_a_sharded_rate_takes_exactly_its_limit(store):
    t = tenant(store)
    tpm = RateLimit("tpm", limit_per_minute=800, cost=100)  # eight buckets of 100 a minute
    now = time.time()
    oks = race(20, lambda: store.reserve(res(t.id, 0, []), [], [tpm], now).ok)
    assert oks.count(True) == 8
    refused = store.reserve(res(t.id, 0, []), [], [tpm], now)
    assert refused.refusal.kind == "rate" and 7.4 < refused.refusal.retry_after_s <= 7.51
    assert store.reserve(res(t.id, 0, []), [], [tpm], now + 7.6).ok


def test_a_rate_cost_larger_than_one_bucket_is_spread(store):
    t = tenant(store)
    tpm = RateLimit("tpm", limit_per_minute=800, cost=250)
    now = time.time()
    results = [store.reserve(res(t.id, 0, []), [], [tpm], now) for _ in range(4)]
    assert [o.ok for o in results] == [True, True, True, False]
    assert results[2].rate_remaining == {"tpm": 50}


# layout, keys, TTLs -------------------------------------------------------------------------------
def test_ttl_fields_and_awkward_keys(store):
    t = tenant(store)
    keys = ["team:a/b:__x__", "run:a/b.c`d", "__odd__"]
    wins = [WindowLimit(k, 100, FAR) for k in keys]
    r = res(t.id, 10, keys)
    assert store.reserve(r, wins, [RateLimit("tpm", 1000, 10)], time.time()).ok
    assert [w.reserved_micros for w in store.get_windows(t.id, keys)] == [10, 10, 10]
    store.settle(r, 7, entry(r, 7), [])
    assert [w.spent_micros for w in store.get_windows(t.id, keys)] == [7, 7, 7]
    assert store.claim_marker(t.id, "alert/day", FAR)
    assert store.claim_idempotency(t.id, IdempotencyRecord("k/1", "h", FAR), time.time()) is None
    store.reserve(res(t.id, 5, keys), wins, [], time.time())
    base = store._tenant(t.id)
    # run:... and other windows have a document of their own; day/month/team share the tenant's
    assert sorted(d.id for d in base.collection("windows").stream()) == ["%5F_odd__", "run:a%2Fb.c`d"]
    for collection in ("budget", "budget_out", "windows", "windows_out", "reservations", "markers", "idempotency"):
        docs = list(base.collection(collection).stream())
        assert docs and all(isinstance(d.to_dict()["ttl"], datetime) for d in docs), collection


def test_concurrent_reservations_in_a_run_window(store):
    # a run window is one document of its own, next to the tenant's sharded day window
    t = tenant(store)
    wins = [WindowLimit("day:d", 100_000, FAR), WindowLimit("run:r1", 550, FAR)]
    oks = race(20, lambda: store.reserve(res(t.id, 100, ["day:d", "run:r1"]), wins, [], time.time()).ok)
    assert oks.count(True) == 5
    assert [w.reserved_micros for w in store.get_windows(t.id, ["day:d", "run:r1"])] == [500, 500]


def test_importing_the_store_package_does_not_load_google_cloud():
    # (``google`` and ``google.cloud`` themselves are namespace packages a .pth file may preload)
    code = (
        "import sys, shared.store, shared.store.firestore\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud.', 'google.api_core', 'grpc'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# contention and unsettled charges -----------------------------------------------------------------
def test_concurrent_reserves_near_the_cap_are_refused_never_unavailable(tmp_path):
    from shared.store import firestore as fs

    # given a tenant with 6000 left of 100 000 and four instances of the service
    url = servers.fresh_store_url("firestore", tmp_path)
    stores = [open_store(url) for _ in range(4)]
    first = stores[0]
    t = tenant(first)  # type: ignore[arg-type]
    wins = [WindowLimit("day:d", 100_000, FAR), WindowLimit("month:m", 1_000_000, FAR)]
    keys = [w.key for w in wins]
    spent = res(t.id, 94_000, keys)
    assert first.reserve(spent, wins, [], time.time()).ok
    first.settle(spent, 94_000, entry(spent, 94_000), [])
    picks = iter(range(32))
    lock = threading.Lock()

    def one() -> tuple[str, float]:
        with lock:
            s = stores[next(picks) % len(stores)]
        started = time.monotonic()
        out = s.reserve(res(t.id, 500, keys), wins, [RateLimit("rpm", 600, 1)], time.time())
        return ("ok" if out.ok else out.refusal.kind), time.monotonic() - started

    # when 32 reserves of 500 race for the last 6000 (a StoreUnavailable fails the test in race)
    results = race(32, one)
    # then each one is admitted or refused (for the window, or briefly for contention), soon
    kinds = [k for k, _ in results]
    assert set(kinds) <= {"ok", "window", "contention"}, kinds
    assert 0 < kinds.count("ok") <= 12
    assert max(d for _, d in results) < fs.RESERVE_CONTENTION_S + 4  # never the old 15 s
    day = first.get_windows(t.id, ["day:d"])[0]
    assert day.spent_micros + day.reserved_micros <= 100_000
    assert day.reserved_micros == 500 * kinds.count("ok")
    for s in stores:
        s.close()


def test_a_reserve_that_keeps_losing_races_is_a_contention_refusal(store, monkeypatch):
    t = tenant(store)
    from shared.store import firestore as fs

    def lose(batch):  # type: ignore[no-untyped-def]
        raise fs._Conflict("precondition failed")

    monkeypatch.setattr(fs, "RESERVE_CONTENTION_S", 0.3)
    monkeypatch.setattr(store, "_commit", lose)
    started = time.monotonic()
    out = store.reserve(res(t.id, 100, ["day:d"]), [WindowLimit("day:d", 1000, FAR)], [], time.time())
    assert time.monotonic() - started < 3
    assert out.refusal is not None and out.refusal.kind == "contention" and out.refusal.key == "day:d"
    assert out.refusal.remaining_micros == 1000 and 0.5 <= out.refusal.retry_after_s <= 1.0


@pytest.mark.parametrize("same_id", [True, False])
def test_reclaim_racing_a_late_settle_charges_exactly_once(tmp_path, same_id):
    url = servers.fresh_store_url("firestore", tmp_path)
    reclaimer, settler = open_store(url), open_store(url)  # two instances
    t = tenant(reclaimer)  # type: ignore[arg-type]
    wins = [WindowLimit("day:d", 1_000_000, FAR), WindowLimit("run:r1", 1_000_000, FAR)]
    keys = [w.key for w in wins]
    late_ones = []
    for _ in range(6):
        r = res(t.id, 300, keys, expires_at=time.time() - 1)
        r.model, r.input_tokens, r.output_tokens = "m", 10, 20
        assert settler.reserve(r, wins, [], time.time()).ok
        late_ones.append(r)

    entries_by_res: dict[str, LedgerEntry] = {}
    for r in late_ones:
        entries_by_res[r.id] = entry(r, 100)
        if same_id:
            entries_by_res[r.id].id = ledger_id_for(r.id)

    def real(r: Reservation) -> LedgerEntry:
        return entries_by_res[r.id]

    def work(n: int) -> int:
        if n == 0:
            return reclaimer.reclaim_expired(t.id, time.time())
        for r in late_ones:
            settler.settle(r, 100, real(r), [])
        return 0

    counter = iter(range(2))
    lock = threading.Lock()

    def one() -> int:
        with lock:
            n = next(counter)
        return work(n)

    race(2, one)
    # every late call settled after (or before) its unsettled charge: charged at 100, once;
    # a repeated settle, or (under the reservation's own ledger id) an unsettled charge
    # afterwards, changes nothing
    for r in late_ones:
        settler.settle(r, 100, real(r), [])
        if same_id:
            settler.settle(r, 300, unsettled_entry(r), [])
    day, run = settler.get_windows(t.id, keys)
    assert (day.spent_micros, day.reserved_micros, run.spent_micros, run.reserved_micros) == (600, 0, 600, 0)
    entries = settler.list_ledger(t.id)
    assert len(entries) == 6 and all(not e.unsettled and e.cost_micros == 100 for e in entries)
    assert reclaimer.reclaim_expired(t.id, time.time()) == 0
    reclaimer.close()
    settler.close()


def test_a_late_settle_cheaper_than_the_worst_case_gives_the_difference_back(store):
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    late = res(t.id, 900, ["day:d"], expires_at=time.time() - 1)
    assert store.reserve(late, win, [], time.time()).ok
    assert store.reclaim_expired(t.id, time.time()) == 1
    assert not store.reserve(res(t.id, 200, ["day:d"]), win, [], time.time()).ok
    real = entry(late, 50)
    real.id = ledger_id_for(late.id)
    store.settle(late, 50, real, [])
    # 950 is free again, in whichever shards it is
    assert store.reserve(res(t.id, 950, ["day:d"]), win, [], time.time()).ok
    state = store.get_windows(t.id, ["day:d"])[0]
    assert (state.spent_micros, state.reserved_micros) == (50, 950)
    spent = [d.to_dict()["w"]["day:d"].get("spent", 0) for d in store._tenant(t.id).collection("budget_out").stream()]
    assert sum(spent) == 50 and min(spent) >= 0


def test_complete_idempotency_keeps_the_response_until_its_own_expiry(store):
    t = tenant(store)
    now = time.time()
    assert store.claim_idempotency(t.id, IdempotencyRecord("k", "h", now + 60), now) is None
    store.complete_idempotency(t.id, "k", {"id": "r1"}, expires_at=now + 86_400)
    held = store.claim_idempotency(t.id, IdempotencyRecord("k", "h", now + 60), now + 3600)
    assert held is not None and held.response == {"id": "r1"} and held.expires_at == pytest.approx(now + 86_400)


# failing fast ------------------------------------------------------------------------------------
def _assert_fails_fast(store: FirestoreStore, calls: int = 2, limit_s: float = 5.5) -> None:
    for call in [
        lambda: store.reserve(res("ten_down", 10, ["day:d"]), [WindowLimit("day:d", 100, FAR)], [], time.time()),
        store.ping,
    ][:calls]:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            call()
        assert time.monotonic() - started < limit_s


def test_nothing_listening_is_unavailable_within_seconds(monkeypatch):
    with monkeypatch.context() as mp:  # the variable is process-wide: set only while the client is made
        mp.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{server_firestore.free_port()}")
        store = FirestoreStore(project="demo-nobody")
        store.init()
    _assert_fails_fast(store)
    store.close()


@pytest.fixture
def private_emulator() -> Iterator[server_firestore.Emulator]:
    server_firestore.start_server()  # skips when not installed
    emulator = server_firestore.Emulator()
    try:
        emulator.wait_ready()
        emulator.warm_up()
        yield emulator
    finally:
        emulator.stop()


def _store_on(emulator: server_firestore.Emulator, monkeypatch) -> FirestoreStore:
    with monkeypatch.context() as mp:  # the variable is process-wide: set only while the client is made
        mp.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
        store = FirestoreStore(project="demo-private")
        store.ping()
    return store


def test_a_killed_emulator_is_unavailable_within_seconds(private_emulator, monkeypatch):
    store = _store_on(private_emulator, monkeypatch)
    private_emulator.stop()
    _assert_fails_fast(store)
    store.close()


def test_a_hung_emulator_is_unavailable_within_seconds(private_emulator, monkeypatch):
    store = _store_on(private_emulator, monkeypatch)
    os.killpg(private_emulator.proc.pid, signal.SIGSTOP)
    try:
        _assert_fails_fast(store, calls=1)
    finally:
        os.killpg(private_emulator.proc.pid, signal.SIGCONT)
    store.close()
