"""Sustained reserve+settle throughput of ONE tenant on the Firestore store.

Runs ``--workers`` threads against one tenant for ``--seconds``; each call reserves (day,
month and team windows, rpm and tpm rates), then settles at a random cost up to the held
amount, like the gateway does around a model call. Prints calls/s, latency, refusals
(and whether the budget justified them), errors, round trips and write conflicts per
call, then checks the books: nothing left reserved, spent equals what was settled and
never exceeds a limit.

Against the emulator (started here unless FIRESTORE_EMULATOR_HOST is set)::

    .venv/bin/python scripts/bench_firestore_tenant.py              # ample budget: expect 0 refusals
    .venv/bin/python scripts/bench_firestore_tenant.py --daily-usd 0.2   # budget runs out mid-run

Exit status 1 when throughput is below ``--target`` calls/s, any call errored, a refusal
was not caused by the budget, or the books do not balance.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.store.base import (  # noqa: E402
    LedgerEntry,
    RateLimit,
    Reservation,
    StoreUnavailable,
    Tenant,
    WindowLimit,
    new_id,
)
from shared.store.firestore import FirestoreStore  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--daily-usd", type=float, default=10_000.0)
    parser.add_argument("--amount-micros", type=int, default=20_000, help="held per call (2 cents)")
    parser.add_argument("--rpm", type=int, default=100_000)
    parser.add_argument("--tpm", type=int, default=100_000_000)
    parser.add_argument("--target", type=float, default=20.0, help="calls/s below which the run fails")
    args = parser.parse_args()

    emulator = None
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        from tests.integration import server_firestore

        emulator = server_firestore.Emulator()
        emulator.wait_ready()
        emulator.warm_up()
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    try:
        return run(args)
    finally:
        if emulator is not None:
            emulator.stop()


def run(args: argparse.Namespace) -> int:
    store = FirestoreStore(project=f"demo-bench-{uuid.uuid4().hex[:12]}", shards=args.shards)
    store.init()
    daily = int(args.daily_usd * 1_000_000)
    tenant = Tenant(
        id=new_id("ten"),
        name="bench",
        daily_limit_micros=daily,
        monthly_limit_micros=daily * 30,
        rpm=args.rpm,
        tpm=args.tpm,
    )
    store.create_tenant(tenant)
    far = time.time() + 86_400
    windows = [
        WindowLimit("day:bench", daily, far),
        WindowLimit("month:bench", daily * 30, far),
        WindowLimit("team:finance:day:bench", daily, far),
    ]
    keys = [w.key for w in windows]

    lock = threading.Lock()
    calls = 0
    settled_micros = 0
    latencies: list[float] = []
    refusals: Counter[str] = Counter()
    unjustified: list[str] = []
    errors: Counter[str] = Counter()
    start = time.monotonic()
    stop = start + args.seconds

    def worker() -> None:
        nonlocal calls, settled_micros
        rng = random.Random()
        while time.monotonic() < stop:
            began = time.monotonic()
            amount = args.amount_micros
            tokens = rng.randint(200, 4000)
            res = Reservation(
                id=new_id("res"),
                tenant_id=tenant.id,
                amount_micros=amount,
                windows=keys,
                expires_at=time.time() + 300,
                team="finance",
                operation="ask",
            )
            rates = [RateLimit("rpm", args.rpm, 1), RateLimit("tpm", args.tpm, tokens)]
            try:
                out = store.reserve(res, windows, rates, time.time())
                if not out.ok:
                    refusal = out.refusal
                    assert refusal is not None
                    with lock:
                        refusals[f"{refusal.kind}:{refusal.key}"] += 1
                        if refusal.kind == "window" and refusal.remaining_micros >= amount:
                            unjustified.append(f"{refusal.key} refused {amount} with {refusal.remaining_micros} left")
                    time.sleep(0.05)
                    continue
                cost = rng.randint(amount // 2, amount)
                ledger = LedgerEntry(
                    id=new_id("led"),
                    tenant_id=tenant.id,
                    request_id=res.id,
                    team="finance",
                    operation="ask",
                    model="bench",
                    input_tokens=tokens,
                    output_tokens=100,
                    cost_micros=cost,
                )
                store.settle(res, cost, ledger, [])
            except StoreUnavailable as exc:
                with lock:
                    errors[str(exc)[:120]] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure
                with lock:
                    errors[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
                continue
            with lock:
                calls += 1
                settled_micros += cost
                latencies.append(time.monotonic() - began)

    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - start

    rate = calls / elapsed
    attempted = calls + sum(refusals.values()) + sum(errors.values())
    host = os.environ["FIRESTORE_EMULATOR_HOST"]
    print(f"workers={args.workers} shards={args.shards} seconds={elapsed:.1f} emulator={host}")
    print(f"reserve+settle calls: {calls}  ->  {rate:.1f} calls/s")
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        print(f"latency per call: p50 {q[49] * 1000:.0f} ms  p95 {q[94] * 1000:.0f} ms  p99 {q[98] * 1000:.0f} ms")
    print(
        f"round trips per call: {store.round_trips / max(1, attempted):.2f}   "
        f"write conflicts (retried commits) per call: {store.conflicts / max(1, attempted):.2f}"
    )
    print(f"refusals: {sum(refusals.values())} {dict(refusals)}")
    print(f"refusals the budget did not cause: {len(unjustified)} {unjustified[:3]}")
    print(f"errors: {sum(errors.values())} {dict(errors)}")

    states = store.get_windows(tenant.id, keys)
    ok = True
    for w, state in zip(windows, states, strict=True):
        balanced = state.reserved_micros == 0 and state.spent_micros == settled_micros
        within = state.spent_micros <= w.limit_micros
        print(
            f"window {w.key}: limit {w.limit_micros} spent {state.spent_micros} reserved {state.reserved_micros}"
            f" (settled by workers {settled_micros}) {'ok' if balanced and within else 'MISMATCH'}"
        )
        ok = ok and balanced and within
    ledger_total = sum(e.cost_micros for e in store.list_ledger(tenant.id, limit=1_000_000))
    print(f"ledger total {ledger_total} {'ok' if ledger_total == settled_micros else 'MISMATCH'}")
    ok = ok and ledger_total == settled_micros
    store.close()

    failed = rate < args.target or errors or unjustified or not ok
    print("RESULT:", "FAIL" if failed else "PASS", f"(target {args.target:.0f} calls/s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
