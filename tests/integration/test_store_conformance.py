"""One behaviour, written once, proven on every store backend.

The ``store`` fixture (tests/conftest.py) yields a fresh store per test for
each backend: SQLite on a temp file, DynamoDB on a serialised moto server, Firestore on
the Google emulator.
"""

from __future__ import annotations

import threading
import time

import pytest

from shared.store.base import (
    ApiKeyRecord,
    AuditEvent,
    IdempotencyRecord,
    LedgerEntry,
    Note,
    RateLimit,
    Reservation,
    RunRecord,
    SessionRecord,
    Tenant,
    Ticket,
    WindowLimit,
    ledger_id_for,
    new_id,
    unsettled_entry,
)

pytestmark = pytest.mark.integration

FAR = time.time() + 86_400


def tenant(store, **kw) -> Tenant:  # type: ignore[no-untyped-def]
    t = Tenant(id=new_id("ten"), name=kw.pop("name", "acme"), daily_limit_micros=1_000_000,
               monthly_limit_micros=10_000_000, rpm=60, tpm=100_000, **kw)
    store.create_tenant(t)
    return t


def reservation(tenant_id: str, amount: int, windows: list[str], expires_at: float = FAR) -> Reservation:
    return Reservation(id=new_id("res"), tenant_id=tenant_id, amount_micros=amount, windows=windows,
                       expires_at=expires_at)


def ledger(res: Reservation, cost: int) -> LedgerEntry:
    return LedgerEntry(id=new_id("led"), tenant_id=res.tenant_id, request_id="req", team="finance",
                       operation="ask", model="claude-haiku-4-5", input_tokens=10, output_tokens=5,
                       cost_micros=cost)


def test_tenant_round_trip_and_update(store):
    # given a tenant with settings
    t = tenant(store, teams=["finance"], team_daily_limit_micros={"finance": 5})
    # when read back and updated
    got = store.get_tenant(t.id)
    updated = store.update_tenant(t.id, {"disabled": True, "rpm": 7})
    # then everything survives the store
    assert got == t
    assert updated.disabled and updated.rpm == 7
    assert store.get_tenant(t.id).rpm == 7
    assert t.id in [x.id for x in store.list_tenants()]
    assert store.get_tenant("ten_missing") is None
    with pytest.raises(KeyError):
        store.update_tenant("ten_missing", {"rpm": 1})


def test_api_keys_and_revocation(store):
    t = tenant(store)
    store.put_api_key(ApiKeyRecord(key_hash="h" * 64, tenant_id=t.id, prefix="mak_abc"))
    assert store.get_api_key("h" * 64).tenant_id == t.id
    assert store.get_api_key("x" * 64) is None
    assert store.revoke_api_keys(t.id) == 1
    assert store.get_api_key("h" * 64).revoked


def test_list_api_keys_oldest_first_revoked_too(store):
    # given two tenants, one with two keys (one revoked) and one with a key of its own
    t, other = tenant(store), tenant(store, name="other")
    store.put_api_key(ApiKeyRecord(key_hash="b" * 64, tenant_id=t.id, prefix="mak_b", created_at="2026-01-02"))
    store.put_api_key(ApiKeyRecord(key_hash="a" * 64, tenant_id=t.id, prefix="mak_a", created_at="2026-01-01"))
    store.revoke_api_keys(t.id)
    store.put_api_key(ApiKeyRecord(key_hash="c" * 64, tenant_id=other.id, prefix="mak_c", created_at="2026-01-03"))
    # when the first tenant's keys are listed
    keys = store.list_api_keys(t.id)
    # then both are there, oldest first, with their state; none of the other tenant's
    assert [(k.key_hash, k.prefix, k.revoked) for k in keys] == [("a" * 64, "mak_a", True), ("b" * 64, "mak_b", True)]
    assert store.list_api_keys(new_id("ten")) == []


def test_a_taken_tenant_id_is_a_key_error_not_an_outage(store):
    t = tenant(store)
    with pytest.raises(KeyError):
        store.create_tenant(t)


def test_reserve_settle_and_ledger(store):
    # given a window of 1000 µ$
    t = tenant(store)
    win = [WindowLimit("day:2026-11-22", 1000, FAR)]
    # when 600 is reserved then settled at 250
    res = reservation(t.id, 600, ["day:2026-11-22"])
    out = store.reserve(res, win, [], time.time())
    assert out.ok and out.windows[0].reserved_micros == 600
    # then a second 600 does not fit while the first is held
    refused = store.reserve(reservation(t.id, 600, ["day:2026-11-22"]), win, [], time.time())
    assert not refused.ok and refused.refusal.kind == "window" and refused.refusal.key == "day:2026-11-22"
    entry = ledger(res, 250)
    states = store.settle(res, 250, entry, [])
    assert (states[0].spent_micros, states[0].reserved_micros) == (250, 0)
    # and a repeated settle changes nothing
    store.settle(res, 250, entry, [])
    assert store.get_windows(t.id, ["day:2026-11-22"])[0].spent_micros == 250
    assert [e.cost_micros for e in store.list_ledger(t.id)] == [250]


def test_reserve_is_all_or_nothing_across_windows(store):
    t = tenant(store)
    wins = [WindowLimit("day:d", 1000, FAR), WindowLimit("month:m", 500, FAR)]
    out = store.reserve(reservation(t.id, 600, ["day:d", "month:m"]), wins, [], time.time())
    assert not out.ok and out.refusal.key == "month:m"
    day, month = store.get_windows(t.id, ["day:d", "month:m"])
    assert day.reserved_micros == 0 and month.reserved_micros == 0


def test_release_returns_money_and_expiry_charges_it_unsettled(store):
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    held = reservation(t.id, 400, ["day:d"])
    assert store.reserve(held, win, [], time.time()).ok
    store.release(t.id, held.id)  # known never sent
    assert store.get_windows(t.id, ["day:d"])[0].reserved_micros == 0
    # a reservation from a crashed instance expires: its request may have been billed, so
    # it is charged at its worst case, as an unsettled ledger entry
    stale = reservation(t.id, 900, ["day:d"], expires_at=time.time() - 1)
    stale.team, stale.model, stale.input_tokens, stale.output_tokens = "legal", "claude-haiku-4-5", 70, 80
    assert store.reserve(stale, win, [], time.time()).ok
    assert store.reclaim_expired(t.id, time.time()) == 1
    state = store.get_windows(t.id, ["day:d"])[0]
    assert (state.spent_micros, state.reserved_micros) == (900, 0)
    [entry] = store.list_ledger(t.id)
    assert entry.unsettled and entry.cost_micros == 900 and entry.id == ledger_id_for(stale.id)
    assert (entry.team, entry.model, entry.input_tokens, entry.output_tokens) == ("legal", "claude-haiku-4-5", 70, 80)
    assert store.reclaim_expired(t.id, time.time()) == 0


def test_settle_after_reclaim_still_charges(store):
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    late = reservation(t.id, 300, ["day:d"], expires_at=time.time() - 1)
    assert store.reserve(late, win, [], time.time()).ok
    store.reclaim_expired(t.id, time.time())
    store.settle(late, 120, ledger(late, 120), [])
    state = store.get_windows(t.id, ["day:d"])[0]
    assert (state.spent_micros, state.reserved_micros) == (120, 0)


def test_late_settle_replaces_the_unsettled_entry_once(store):
    # given a paused call's reservation charged unsettled by another instance
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR), WindowLimit("month:m", 5000, FAR)]
    late = reservation(t.id, 300, ["day:d", "month:m"], expires_at=time.time() - 1)
    assert store.reserve(late, win, [], time.time()).ok
    assert store.reclaim_expired(t.id, time.time()) == 1
    # when the paused call comes back and settles at its real cost, twice (a retried write)
    real = ledger(late, 120)
    real.id = ledger_id_for(late.id)
    store.settle(late, 120, real, [])
    store.settle(late, 120, real, [])
    # and an unsettled charge of the same reservation arrives afterwards
    store.settle(late, 300, unsettled_entry(late), [])
    # then the real cost replaced the worst case exactly once
    day, month = store.get_windows(t.id, ["day:d", "month:m"])
    assert (day.spent_micros, day.reserved_micros, month.spent_micros) == (120, 0, 120)
    [entry] = store.list_ledger(t.id)
    assert not entry.unsettled and entry.cost_micros == 120


def test_unsettled_charge_of_a_live_reservation_then_settle(store):
    # given a live reservation charged unsettled (its call timed out after sending)
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    res = reservation(t.id, 500, ["day:d"])
    assert store.reserve(res, win, [], time.time()).ok
    store.settle(res, 500, unsettled_entry(res), [])
    state = store.get_windows(t.id, ["day:d"])[0]
    assert (state.spent_micros, state.reserved_micros) == (500, 0)
    # the charge is never reclaimed again, and a settled entry is never replaced by an unsettled one
    assert store.reclaim_expired(t.id, time.time() + 10 * 86_400) == 0
    other = reservation(t.id, 200, ["day:d"])
    assert store.reserve(other, win, [], time.time()).ok
    done = ledger(other, 150)
    done.id = ledger_id_for(other.id)
    store.settle(other, 150, done, [])
    store.settle(other, 200, unsettled_entry(other), [])
    assert store.get_windows(t.id, ["day:d"])[0].spent_micros == 650
    assert sorted((e.cost_micros, e.unsettled) for e in store.list_ledger(t.id)) == [(150, False), (500, True)]


def test_rate_limit_gcra(store):
    t = tenant(store)
    rpm = RateLimit("rpm", limit_per_minute=3, cost=1)
    now = time.time()
    results = [store.reserve(reservation(t.id, 0, []), [], [rpm], now).ok for _ in range(4)]
    assert results == [True, True, True, False]
    refused = store.reserve(reservation(t.id, 0, []), [], [rpm], now)
    assert refused.refusal.kind == "rate" and 0 < refused.refusal.retry_after_s <= 20.001
    # 20 s later one request's worth has dripped back
    assert store.reserve(reservation(t.id, 0, []), [], [rpm], now + 20.01).ok


def test_concurrent_reservations_never_overspend(store):
    # given a window that fits exactly 10 reservations of 100
    t = tenant(store)
    win = [WindowLimit("day:d", 1000, FAR)]
    oks: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        ok = store.reserve(reservation(t.id, 100, ["day:d"]), win, [], time.time()).ok
        with lock:
            oks.append(ok)

    # when 30 threads race
    threads = [threading.Thread(target=one) for _ in range(30)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # then exactly 10 got through
    assert oks.count(True) == 10
    assert store.get_windows(t.id, ["day:d"])[0].reserved_micros == 1000


def test_markers_fire_once(store):
    t = tenant(store)
    assert store.claim_marker(t.id, "alert:day:d", FAR) is True
    assert store.claim_marker(t.id, "alert:day:d", FAR) is False


def test_audit_newest_first_with_paging(store):
    t = tenant(store)
    other = tenant(store, name="other")
    events = [AuditEvent(id=new_id("aud"), tenant_id=t.id, type="operation", at=f"2026-11-22T00:00:0{i}.000000Z")
              for i in range(5)]
    store.append_audit(events + [AuditEvent(id=new_id("aud"), tenant_id=other.id, type="operation")])
    page = store.list_audit(t.id, limit=2)
    assert [e.at for e in page] == [events[4].at, events[3].at]
    rest = store.list_audit(t.id, limit=10, before=page[-1].at)
    assert [e.at for e in rest] == [events[2].at, events[1].at, events[0].at]


def test_notes_and_tickets_are_per_tenant(store):
    a, b = tenant(store), tenant(store, name="b")
    store.add_note(Note(id=new_id("note"), tenant_id=a.id, title="Q4 plan", body="launch in March", tags=["plan"]))
    assert [n.title for n in store.list_notes(a.id, "march")] == ["Q4 plan"]
    assert store.list_notes(b.id) == []
    ticket = Ticket(id=new_id("tkt"), tenant_id=a.id, subject="login broken", body="500 on /login")
    store.create_ticket(ticket)
    assert store.update_ticket(a.id, ticket.id, {"status": "resolved"}).status == "resolved"
    with pytest.raises(KeyError):
        store.update_ticket(b.id, ticket.id, {"status": "closed"})
    assert store.list_tickets(b.id) == []
    assert [x.status for x in store.list_tickets(a.id, status="resolved")] == ["resolved"]


def test_idempotency_claim_complete_release(store):
    t = tenant(store)
    now = time.time()
    rec = IdempotencyRecord(key="k1", body_hash="abc", expires_at=now + 60)
    assert store.claim_idempotency(t.id, rec, now) is None
    held = store.claim_idempotency(t.id, rec, now)
    assert held is not None and held.response is None and held.body_hash == "abc"
    store.complete_idempotency(t.id, "k1", {"id": "r1"})
    assert store.claim_idempotency(t.id, rec, now).response == {"id": "r1"}
    store.release_idempotency(t.id, "k1")
    assert store.claim_idempotency(t.id, rec, now) is None
    # an expired claim is replaced
    old = IdempotencyRecord(key="k2", body_hash="x", expires_at=now - 1)
    assert store.claim_idempotency(t.id, old, now - 10) is None
    assert store.claim_idempotency(t.id, IdempotencyRecord("k2", "y", now + 60), now) is None


def test_ping(store):
    store.ping()


def test_runs_round_trip_and_optimistic_version(store):
    # given a stored run
    t, other = tenant(store), tenant(store, name="other")
    run = RunRecord(id=new_id("run"), tenant_id=t.id, status="queued", data={"task": "plan Q3", "steps": []},
                    expires_at=FAR)
    store.put_run(run)
    assert run.version == 1
    with pytest.raises(KeyError):
        store.put_run(RunRecord(id=run.id, tenant_id=t.id))
    # when it is read back by its tenant, and by another tenant
    got = store.get_run(t.id, run.id)
    assert got is not None and got.data == {"task": "plan Q3", "steps": []} and got.version == 1
    assert store.get_run(other.id, run.id) is None
    # then an update with the current version wins once, a stale one loses
    got.status, got.owner, got.lease_until = "running", "inst-a", 123.5
    got.data["steps"].append({"id": "s1", "status": "running"})
    assert store.update_run(got, 1) is True and got.version == 2
    stale = RunRecord(**{**run.__dict__, "status": "cancelled"})
    assert store.update_run(stale, 1) is False
    now = store.get_run(t.id, run.id)
    assert (now.status, now.owner, now.lease_until, now.version) == ("running", "inst-a", 123.5, 2)
    assert now.data["steps"] == [{"id": "s1", "status": "running"}]
    assert store.update_run(RunRecord(id="run_missing", tenant_id=t.id), 0) is False


def test_runs_are_listed_per_tenant_newest_first_with_paging(store):
    # given five runs of a tenant (two created at the same instant) and one of another tenant
    t, other = tenant(store), tenant(store, name="other")
    times = ["2026-01-01T00:00:01.000000Z", "2026-01-01T00:00:02.000000Z", "2026-01-01T00:00:03.000000Z",
             "2026-01-01T00:00:03.000000Z", "2026-01-01T00:00:04.000000Z"]
    runs = [RunRecord(id=f"run_{i}{new_id('x')[2:10]}", tenant_id=t.id, data={"task": f"t{i}"}, created_at=at,
                      expires_at=FAR) for i, at in enumerate(times)]
    for run in reversed(runs):  # stored out of order: the listing sorts by creation
        store.put_run(run)
    store.put_run(RunRecord(id=new_id("run"), tenant_id=other.id, created_at="2026-01-01T00:00:05.000000Z",
                            expires_at=FAR))
    # and an update of the oldest one (its updated_at moves, its created_at does not)
    oldest = store.get_run(t.id, runs[0].id)
    oldest.status = "succeeded"
    assert store.update_run(oldest, 1)
    # when listed
    listed = store.list_runs(t.id)
    expected = sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)
    # then newest first (ties by id, descending), only the tenant's, with their documents
    assert [r.id for r in listed] == [r.id for r in expected]
    assert listed[-1].status == "succeeded" and listed[-1].data == {"task": "t0"} and listed[-1].version == 2
    # and a limit and a `before` (a created_at, strictly) page through them
    assert [r.id for r in store.list_runs(t.id, 2)] == [r.id for r in expected[:2]]
    assert [r.id for r in store.list_runs(t.id, 10, "2026-01-01T00:00:03.000000Z")] == [runs[1].id, runs[0].id]
    assert [r.id for r in store.list_runs(t.id, 1, "2026-01-01T00:00:02.000000Z")] == [runs[0].id]
    assert store.list_runs(t.id, 10, "2026-01-01T00:00:01.000000Z") == []
    assert store.list_runs(tenant(store, name="empty").id) == []


def test_run_reservations_are_charged_by_run(store):
    # given two reservations of a run and one of another call
    t = tenant(store)
    wins = [WindowLimit("day:d", 10_000, FAR), WindowLimit("run:r1", 5_000, FAR)]
    a = reservation(t.id, 100, ["day:d", "run:r1"])
    b = reservation(t.id, 200, ["day:d", "run:r1", "run:r1/hop"])
    c = reservation(t.id, 400, ["day:d"])
    for res, w in ((a, wins), (b, wins + [WindowLimit("run:r1/hop", 1_000, FAR)]), (c, wins[:1])):
        assert store.reserve(res, w, [], time.time()).ok
    # when the run's reservations are charged (their owner crashed or the run was cancelled)
    assert store.charge_run_reservations(t.id, "r1") == 2
    # then only the other call's money is still held; the run's is spent, unsettled
    day, run, hop = store.get_windows(t.id, ["day:d", "run:r1", "run:r1/hop"])
    assert (day.reserved_micros, run.reserved_micros, hop.reserved_micros) == (400, 0, 0)
    assert (day.spent_micros, run.spent_micros, hop.spent_micros) == (300, 300, 200)
    assert sorted(e.cost_micros for e in store.list_ledger(t.id) if e.unsettled) == [100, 200]
    assert store.charge_run_reservations(t.id, "r1") == 0


def test_sessions_are_per_tenant_with_optimistic_version(store):
    t, other = tenant(store), tenant(store, name="other")
    sid = "sess-shared-name"
    first = SessionRecord(id=sid, tenant_id=t.id, messages=[{"role": "user", "content": "hi"}], expires_at=FAR)
    assert store.put_session(first, 0) is True and first.version == 1
    # a second creation loses, a stale update loses, a current one wins
    assert store.put_session(SessionRecord(id=sid, tenant_id=t.id, expires_at=FAR), 0) is False
    got = store.get_session(t.id, sid)
    got.messages.append({"role": "assistant", "content": "hello"})
    assert store.put_session(got, 1) is True and got.version == 2
    assert store.put_session(SessionRecord(id=sid, tenant_id=t.id, messages=[], expires_at=FAR), 1) is False
    assert [m["content"] for m in store.get_session(t.id, sid).messages] == ["hi", "hello"]
    # another tenant using the same id sees nothing and writes its own session
    assert store.get_session(other.id, sid) is None
    assert store.put_session(SessionRecord(id=sid, tenant_id=other.id, messages=[], expires_at=FAR), 0) is True
    assert len(store.get_session(t.id, sid).messages) == 2
    store.delete_session(t.id, sid)
    assert store.get_session(t.id, sid) is None and store.get_session(other.id, sid) is not None


def test_concurrent_session_writers_never_lose_a_message(store):
    # given a session and 8 writers that rebase on conflict
    t = tenant(store)
    sid = "sess-race"

    def append(n: int) -> None:
        while True:
            cur = store.get_session(t.id, sid)
            version = cur.version if cur else 0
            msgs = (cur.messages if cur else []) + [{"role": "user", "content": f"m{n}"}]
            if store.put_session(SessionRecord(id=sid, tenant_id=t.id, messages=msgs, expires_at=FAR), version):
                return

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    final = store.get_session(t.id, sid)
    assert sorted(m["content"] for m in final.messages) == sorted(f"m{n}" for n in range(8))
    assert final.version == 8
