#!/usr/bin/env python3
"""Budget benchmark: what ``@budgeted`` costs on each store backend.

For each backend (SQLite file, DynamoDB on a serialised moto server, Firestore on the
emulator), in one run, on the fake Messages API with zero delay:
  - store round trips per operation on the request path (counted by each backend, not
    guessed; the audit batch written after the response is listed but not counted);
  - latency p50/p99 of one single-turn operation with budgets on, and with budgets off
    (MULTIAGENT_BUDGETS=off) on the same app: the difference is what the budget adds;
  - the highest sustained calls/s for ONE tenant (16 concurrent callers for a few
    seconds) and how many calls failed for a reason other than the budget.

Targets: <= 2 round trips for SQLite and DynamoDB; added p50 <= 3 ms on SQLite; one
Firestore tenant sustains >= 20 calls/s on the emulator.

Usage: .venv/bin/python scripts/bench_budget.py [--calls 200] [--backends sqlite,dynamodb,firestore]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.messages_api import FakeMessagesServer  # noqa: E402
from tests.helpers import local_app  # noqa: E402

QUESTION = {"question": "Is a verbal agreement binding?"}


def store_url_for(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp}/bench-{time.monotonic_ns()}.db"
    import importlib

    module = importlib.import_module(f"tests.integration.server_{backend}")
    return str(module.fresh_store_url(tmp))


AFTER_RESPONSE = {"append_audit"}


def count_store_calls(store: object) -> dict[str, int]:
    """Round trips per store method from now on, read from the backend's own counter."""
    counts: dict[str, int] = {}
    for name in ("reserve", "settle", "release", "reclaim_expired", "get_api_key", "get_tenant", "append_audit",
                 "claim_marker", "claim_idempotency", "complete_idempotency", "get_windows", "list_ledger"):
        method = getattr(store, name)

        def counted(*args, _method=method, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            before = store.round_trips  # type: ignore[attr-defined]
            try:
                return _method(*args, **kwargs)
            finally:  # round trips this method made, by the backend's own counter
                counts[_name] = counts.get(_name, 0) + store.round_trips - before  # type: ignore[attr-defined]

        setattr(store, name, counted)
    return counts


async def latencies(backend: str, tmp: Path, calls: int, budgets: bool) -> tuple[list[float], float, dict]:
    """Per-call latency (ms) and store round trips per call, after a warm-up."""
    env = {"MULTIAGENT_MODEL_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "test-key",
           "MULTIAGENT_BUDGETS": "on" if budgets else "off", "MULTIAGENT_LOG_LEVEL": "WARNING"}
    async with local_app(store_url_for(backend, tmp), **env) as app:
        _, key = app.tenant(daily_usd=1000, monthly_usd=1000, rpm=1_000_000, tpm=1_000_000_000)
        for _ in range(5):  # warm: SDK client, key cache, window views
            await app.call("legal", "ask", QUESTION, key)
        counts = count_store_calls(app.runtime.store)
        out = []
        for _ in range(calls):
            start = time.perf_counter()
            resp = await app.call("legal", "ask", QUESTION, key)
            out.append((time.perf_counter() - start) * 1000)
            assert resp.status_code == 200, resp.text
        # the audit batch is written after the response is sent: not on the request path
        on_path = sum(n for name, n in counts.items() if name not in AFTER_RESPONSE)
        return out, on_path / calls, {name: n / calls for name, n in sorted(counts.items())}


async def sustained(backend: str, tmp: Path, seconds: float, workers: int = 16) -> tuple[float, int, int]:
    """(calls/s, budget refusals, other failures) for one tenant under concurrent load."""
    env = {"MULTIAGENT_MODEL_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "test-key",
           "MULTIAGENT_LOG_LEVEL": "WARNING"}
    async with local_app(store_url_for(backend, tmp), **env) as app:
        _, key = app.tenant(daily_usd=1000, monthly_usd=1000, rpm=1_000_000, tpm=1_000_000_000)
        await app.call("legal", "ask", QUESTION, key)
        done, refused, failed = 0, 0, 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, refused, failed
            while time.perf_counter() < deadline:
                resp = await app.call("legal", "ask", QUESTION, key)
                if resp.status_code == 200:
                    done += 1
                elif resp.status_code == 402:
                    refused += 1
                else:
                    failed += 1

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(workers)])
        return done / (time.perf_counter() - start), refused, failed


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backends", default="sqlite,dynamodb,firestore")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    rows = []
    with FakeMessagesServer() as fake:
        os.environ["ANTHROPIC_BASE_URL"] = fake.url
        os.environ["ANTHROPIC_API_KEY"] = "test-key"
        for backend in args.backends.split(","):
            on, trips, per_method = asyncio.run(latencies(backend, tmp, args.calls, True))
            off, _, _ = asyncio.run(latencies(backend, tmp, args.calls, False))
            print(f"{backend}: store round trips per operation: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in per_method.items()), flush=True)
            rate, refused, failed = asyncio.run(sustained(backend, tmp, args.seconds))
            rows.append((backend, trips, statistics.median(on), pct(on, 99), statistics.median(off), pct(off, 99),
                         rate, refused, failed))
    print(f"{'backend':<10} {'trips/call':>10} {'p50 on':>8} {'p99 on':>8} {'p50 off':>8} {'p99 off':>8} "
          f"{'added p50':>10} {'added p99':>10} {'calls/s':>8} {'402s':>5} {'errors':>6}")
    for backend, trips, p50, p99, p50off, p99off, rate, refused, failed in rows:
        print(f"{backend:<10} {trips:>10.2f} {p50:>7.2f}ms {p99:>7.2f}ms {p50off:>7.2f}ms {p99off:>7.2f}ms "
              f"{p50 - p50off:>8.2f}ms {p99 - p99off:>8.2f}ms {rate:>8.1f} {refused:>5} {failed:>6}")


if __name__ == "__main__":
    main()
