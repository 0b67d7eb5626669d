"""What only the DynamoDB store promises: round trips, outages, init, TTL attributes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from shared.store import open_store
from shared.store.base import (
    AuditEvent,
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
from shared.store.dynamodb import DynamoDBStore
from tests.integration import server_dynamodb

pytestmark = pytest.mark.integration

FAR = time.time() + 86_400


@pytest.fixture
def url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return server_dynamodb.fresh_store_url(tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[DynamoDBStore]:
    s = open_store(url)
    assert isinstance(s, DynamoDBStore)
    s.init()
    yield s
    s.close()


def _tenant(store: DynamoDBStore) -> Tenant:
    t = Tenant(id=new_id("ten"), name="acme", daily_limit_micros=1_000_000, monthly_limit_micros=10_000_000,
               rpm=60, tpm=100_000)
    store.create_tenant(t)
    return t


def _res(tenant_id: str, amount: int, windows: list[str], expires_at: float = FAR) -> Reservation:
    return Reservation(id=new_id("res"), tenant_id=tenant_id, amount_micros=amount, windows=windows,
                       expires_at=expires_at)


def _ledger(res: Reservation, cost: int, **kw) -> LedgerEntry:  # type: ignore[no-untyped-def]
    return LedgerEntry(id=kw.pop("id", new_id("led")), tenant_id=res.tenant_id, request_id="req", team="t",
                       operation="ask", model="m", input_tokens=1, output_tokens=1, cost_micros=cost, **kw)


def _raw_item(store: DynamoDBStore, pk: str, sk: str) -> dict:  # type: ignore[type-arg]
    return store._client.get_item(TableName=store.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item", {})


def test_happy_path_reserve_and_settle_are_one_round_trip_each(store):
    t = _tenant(store)
    wins = [WindowLimit("day:d", 1_000_000, FAR), WindowLimit("month:m", 5_000_000, FAR)]
    rates = [RateLimit("rpm", 60, 1), RateLimit("tpm", 100_000, 500)]
    now = time.time()
    for i in range(3):  # first call on empty buckets (GCRA case A), then buckets in the future (case B)
        res = _res(t.id, 1000, ["day:d", "month:m"])
        before = store.round_trips
        out = store.reserve(res, wins, rates, now + i * 0.001)
        assert out.ok and store.round_trips - before == 1
        assert out.rate_remaining["rpm"] == 60 - (i + 1)
        before = store.round_trips
        states = store.settle(res, 400, _ledger(res, 400), [AuditEvent(id=new_id("aud"), tenant_id=t.id, type="op")])
        assert store.round_trips - before == 1
        assert [(s.spent_micros, s.reserved_micros) for s in states] == [(400 * (i + 1), 0)] * 2
    assert [s.spent_micros for s in store.get_windows(t.id, ["day:d", "month:m"])] == [1200, 1200]


def test_window_refusal_needs_no_extra_read_and_reports_stored_state(store, url):
    t = _tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    assert store.reserve(_res(t.id, 700, ["day:d"]), win, [], time.time()).ok
    other = open_store(url)  # another instance: knows nothing about the window
    before = other.round_trips
    out = other.reserve(_res(t.id, 400, ["day:d"]), win, [], time.time())
    assert other.round_trips - before == 1
    assert out.refusal.kind == "window" and (out.refusal.spent_micros, out.refusal.remaining_micros) == (0, 300)
    assert out.windows[0].reserved_micros == 700


def test_settle_on_an_instance_that_never_saw_the_window_reads_it_once(store, url):
    t = _tenant(store)
    res = _res(t.id, 300, ["day:d"])
    assert store.reserve(res, [WindowLimit("day:d", 1000, FAR)], [], time.time()).ok
    other = open_store(url)
    before = other.round_trips
    states = other.settle(res, 100, _ledger(res, 100), [])
    assert other.round_trips - before == 2  # the transaction, then a read: no local view to estimate from
    assert (states[0].limit_micros, states[0].spent_micros, states[0].reserved_micros) == (1000, 100, 0)


def test_wrong_gcra_guess_costs_one_retry_and_stays_exact(store, url):
    t = _tenant(store)
    rpm = RateLimit("rpm", 3, 1)
    now = time.time()
    assert store.reserve(_res(t.id, 0, []), [], [rpm], now).ok
    other = open_store(url)  # no hint: guesses "tat has passed", the stored tat says otherwise
    before = other.round_trips
    assert other.reserve(_res(t.id, 0, []), [], [rpm], now).ok
    assert other.round_trips - before == 2
    assert other.reserve(_res(t.id, 0, []), [], [rpm], now).ok
    refused = store.reserve(_res(t.id, 0, []), [], [rpm], now)  # stale hint: learns the tat from the refusal
    assert refused.refusal.kind == "rate" and refused.refusal.retry_after_s == pytest.approx(20, abs=1e-3)


def test_concurrent_rate_charges_from_cold_instances_never_over_admit(url):
    first = open_store(url)
    first.init()
    t = _tenant(first)  # type: ignore[arg-type]
    rpm, now = RateLimit("rpm", 5, 1), time.time()
    stores = [open_store(url) for _ in range(15)]  # cold instances: no hint of the bucket
    oks: list[bool] = []
    lock = threading.Lock()

    def one(s: DynamoDBStore) -> None:
        ok = s.reserve(_res(t.id, 0, []), [], [rpm], now).ok
        with lock:
            oks.append(ok)

    threads = [threading.Thread(target=one, args=(s,)) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert oks.count(True) == 5


def test_settle_is_once_per_ledger_id_and_spills_audit_to_a_batch(store):
    t = _tenant(store)
    win = [WindowLimit("day:d", 10_000, FAR)]
    res = _res(t.id, 500, ["day:d"])
    assert store.reserve(res, win, [], time.time()).ok
    events = [AuditEvent(id=new_id("aud"), tenant_id=t.id, type="op", at=f"2026-01-01T00:00:{i:02d}.{i:06d}Z")
              for i in range(120)]
    entry = _ledger(res, 200)
    before = store.round_trips
    store.settle(res, 200, entry, events)
    assert store.round_trips - before == 2  # the transaction + one BatchWrite of what did not fit
    assert len(store.list_audit(t.id, limit=500)) == 120
    # a retry that rebuilt the entry (same id, new time) changes nothing
    store.settle(res, 200, _ledger(res, 200, id=entry.id, at="2099-01-01T00:00:00.000000Z"), [])
    assert store.get_windows(t.id, ["day:d"])[0].spent_micros == 200
    assert [e.id for e in store.list_ledger(t.id)] == [entry.id]


def test_init_twice_and_ttl(store, url):
    store.init()
    again = open_store(url)
    again.init()
    ttl = store._client.describe_time_to_live(TableName=store.table)["TimeToLiveDescription"]
    assert ttl.get("AttributeName") == "ttl" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")


def test_ttl_attributes_on_expiring_items(store):
    t = _tenant(store)
    now = time.time()
    res = _res(t.id, 100, ["day:d"], expires_at=now + 300)
    assert store.reserve(res, [WindowLimit("day:d", 1000, now + 7200)], [RateLimit("rpm", 60, 1)], now).ok
    store.claim_marker(t.id, "alert:day:d", now + 3600)
    store.claim_idempotency(t.id, IdempotencyRecord("k", "h", now + 60), now)
    reservation_ttl = int(_raw_item(store, f"T#{t.id}", f"RES#{res.id}")["ttl"]["N"])
    assert reservation_ttl >= now + 7200  # outlives the windows it holds money in
    assert int(_raw_item(store, f"T#{t.id}", "W#day:d")["ttl"]["N"]) >= now + 7200
    assert int(_raw_item(store, f"T#{t.id}", "R#rpm")["ttl"]["N"]) > now + 60
    assert int(_raw_item(store, f"T#{t.id}", "M#alert:day:d")["ttl"]["N"]) >= now + 3600
    assert int(_raw_item(store, f"T#{t.id}", "I#k")["ttl"]["N"]) >= now + 60


@pytest.mark.parametrize("outage", ["stopped", "hung"])
def test_unreachable_server_is_unavailable_within_seconds(monkeypatch, outage):
    private = server_dynamodb.MotoServer()  # not the session's server: this one goes down
    endpoint = private.start()
    try:
        server_dynamodb.start_server()  # the usual credentials and region
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        store = open_store(f"dynamodb://{new_id('t')}?region=us-east-1")
        store.init()
        t = _tenant(store)  # type: ignore[arg-type]
        if outage == "stopped":
            private.stop()
        else:  # accepts connections, never answers: the read timeout must end the wait
            assert private.proc is not None
            os.kill(private.proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.reserve(_res(t.id, 100, ["day:d"]), [WindowLimit("day:d", 1000, FAR)], [], time.time())
        # stopped: refused at once; hung: 2 attempts x 2 s read timeout
        assert time.monotonic() - started < (5 if outage == "stopped" else 6)
    finally:
        if private.proc is not None and outage == "hung":
            os.kill(private.proc.pid, signal.SIGCONT)
        private.stop()


def test_importing_the_store_package_does_not_load_boto3():
    code = "import sys, shared.store; assert 'boto3' not in sys.modules and 'botocore' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=server_dynamodb._REPO_ROOT)


def test_window_state_max_age_rereads_stale_views(url):
    exact = DynamoDBStore(url.split("//")[1].split("?")[0], region="us-east-1", window_state_max_age_s=0.0)
    exact.init()
    t = _tenant(exact)
    win = [WindowLimit("day:d", 1000, FAR)]
    other = open_store(url)
    assert other.reserve(_res(t.id, 200, ["day:d"]), win, [], time.time()).ok  # unseen by ``exact``
    before = exact.round_trips
    out = exact.reserve(_res(t.id, 300, ["day:d"]), win, [], time.time())
    assert exact.round_trips - before == 2 and out.windows[0].reserved_micros == 500


# unsettled charges --------------------------------------------------------------------------
def test_expiry_charges_unsettled_and_a_late_settle_costs_one_more_transaction(store):
    t = _tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    late = _res(t.id, 300, ["day:d"], expires_at=time.time() - 1)
    late.model, late.input_tokens, late.output_tokens = "m", 10, 20
    assert store.reserve(late, win, [], time.time()).ok
    before = store.round_trips
    assert store.reclaim_expired(t.id, time.time()) == 1
    assert store.round_trips - before == 2  # the Query, one transaction
    guard = _raw_item(store, f"LID#{ledger_id_for(late.id)}", "LID")
    assert guard["unsettled"] == {"BOOL": True} and guard["cost_micros"] == {"N": "300"}
    [charged] = store.list_ledger(t.id)
    # the late settle: the normal transaction is cancelled by the guard, which it returns; the
    # replacement is the second and last round trip
    real = _ledger(late, 120, id=ledger_id_for(late.id))
    before = store.round_trips
    store.settle(late, 120, real, [])
    assert store.round_trips - before == 2
    [entry] = store.list_ledger(t.id)
    assert (entry.cost_micros, entry.unsettled, entry.at) == (120, False, charged.at)  # same item, same sort key
    assert _raw_item(store, f"LID#{ledger_id_for(late.id)}", "LID")["unsettled"] == {"BOOL": False}
    assert store.get_windows(t.id, ["day:d"])[0].spent_micros == 120


def test_a_late_settle_under_another_ledger_id_replaces_the_unsettled_entry(store):
    t = _tenant(store)
    late = _res(t.id, 300, ["day:d"], expires_at=time.time() - 1)
    assert store.reserve(late, [WindowLimit("day:d", 1000, FAR)], [], time.time()).ok
    assert store.reclaim_expired(t.id, time.time()) == 1
    real = _ledger(late, 450)
    store.settle(late, 450, real, [])
    store.settle(late, 450, real, [])
    store.settle(late, 300, unsettled_entry(late), [])
    assert [(e.id, e.cost_micros, e.unsettled) for e in store.list_ledger(t.id)] == [(real.id, 450, False)]
    assert store.get_windows(t.id, ["day:d"])[0].spent_micros == 450


@pytest.mark.parametrize("same_id", [True, False])
def test_reclaim_racing_a_late_settle_charges_exactly_once(url, same_id):
    first = open_store(url)
    first.init()
    t = _tenant(first)  # type: ignore[arg-type]
    win = [WindowLimit("day:d", 1_000_000, FAR), WindowLimit("month:m", 10_000_000, FAR)]
    keys = [w.key for w in win]
    late_ones = []
    for _ in range(8):
        r = _res(t.id, 300, keys, expires_at=time.time() - 1)
        assert first.reserve(r, win, [], time.time()).ok
        late_ones.append(r)
    reclaimer, settler = open_store(url), open_store(url)  # two instances
    reclaimed: list[int] = []

    def reclaim() -> None:
        reclaimed.append(reclaimer.reclaim_expired(t.id, time.time()))

    def settle_all() -> None:
        for r in late_ones:
            settler.settle(r, 100, _ledger(r, 100, **({"id": ledger_id_for(r.id)} if same_id else {})), [])

    threads = [threading.Thread(target=reclaim), threading.Thread(target=settle_all)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    day, month = first.get_windows(t.id, keys)
    assert (day.spent_micros, day.reserved_micros, month.spent_micros) == (800, 0, 800)
    entries = first.list_ledger(t.id)
    assert len(entries) == 8 and all(not e.unsettled and e.cost_micros == 100 for e in entries)
    assert first.reclaim_expired(t.id, time.time()) == 0


def test_a_reserve_that_keeps_conflicting_is_a_contention_refusal(store, monkeypatch):
    t = _tenant(store)
    from botocore.exceptions import ClientError

    def conflict(**kwargs):  # type: ignore[no-untyped-def]
        raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                           "CancellationReasons": [{"Code": "TransactionConflict"}] * len(kwargs["TransactItems"])},
                          "TransactWriteItems")

    monkeypatch.setattr(store._client, "transact_write_items", conflict)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    out = store.reserve(_res(t.id, 100, ["day:d"]), [WindowLimit("day:d", 1000, FAR)], [RateLimit("rpm", 60, 1)],
                        time.time())
    assert out.refusal is not None and out.refusal.kind == "contention" and out.refusal.key == "day:d"
    assert 0.5 <= out.refusal.retry_after_s <= 1.0


def test_complete_idempotency_keeps_the_response_until_its_own_expiry(store):
    t = _tenant(store)
    now = time.time()
    store.claim_idempotency(t.id, IdempotencyRecord("k", "h", now + 60), now)
    store.complete_idempotency(t.id, "k", {"id": "r1"}, expires_at=now + 86_400)
    item = _raw_item(store, f"T#{t.id}", "I#k")
    assert int(item["ttl"]["N"]) >= now + 86_400 and float(item["expires_at"]["N"]) == pytest.approx(now + 86_400)
    store.complete_idempotency(t.id, "k", {"id": "r2"})
    assert float(_raw_item(store, f"T#{t.id}", "I#k")["expires_at"]["N"]) == pytest.approx(now + 86_400)
