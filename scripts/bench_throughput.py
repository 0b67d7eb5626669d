#!/usr/bin/env python3
"""Throughput benchmark: what a budgeted call costs next to the model call it makes.

In ONE run, on this machine, alternating rounds (a fresh server process each round, the order
rotated every round), each scenario loaded by the same client for a fixed time:

  (e) the load generator's own ceiling: a hello-world Starlette app (uvicorn, one worker);
  (f) the fake Messages API alone (tests/fakes/messages_api.py in its own process, zero delay):
      its ceiling, so it is known not to be the bottleneck. By default its app and state
      (create_app, FakeState) run under a plain ``uvicorn.run``: FakeMessagesProcess binds its
      own socket without TCP_NODELAY, so each of its answers waits ~40 ms for the client's
      delayed ACK (``--fake process`` to measure it that way anyway);
  (a) the floor: a bare Starlette app (uvicorn, one worker) making the same single SDK call
      per request that (b) makes, ``AsyncAnthropic().messages.with_raw_response.create`` with
      its answer read as JSON (base_url = the fake), with the exact body (b) sends -- captured
      from the fake's log -- and no budgets, no validation;
  (b) ``multiagent serve`` on SQLite, provider anthropic pointed at the fake, a tenant whose
      budgets and rate limits are on but never reached, ``POST /v1/teams/research/ask``;
  (c) the same with ``--workers 2`` when ``multiagent serve --help`` offers it;
  (d) the LiteLLM proxy (litellm[proxy] in .venv-bench, scripts/bench_setup.sh), one model
      with ``mock_response`` (no upstream call at all), a master key, budgets off (they need
      Postgres), ``POST /chat/completions``.

The client: asyncio + aiohttp, N keep-alive connections (32), one priming request, a warm-up
(2 s), then a fixed measured window (8 s); loopback only; request counts and time bounded.
Per scenario: req/s, p50/p99 latency, the server's CPU ms per call (utime+stime of its process
tree from /proc, over the window / calls completed in it) and the non-200 count, which must
be 0 in every measured run (the script stops with exit 1 otherwise). Printed: medians over
the rounds, and the ratios b/a and b/d.

CPU pinning (default with >= 2 CPUs, ``--no-pin`` to turn off): the server under test runs on
CPU 0; this script (the load generator) and the fake run on the others.

``--profile``: one more (b) round with ``py-spy record`` (from .venv-bench; needs root)
attached to the server; prints the top 25 functions by own time on the event-loop thread and
the loop's time grouped (SDK request, tool definitions / JSON schema, middleware, routing /
validation, store hand-offs, audit / metrics, ...).

Usage: .venv/bin/python scripts/bench_throughput.py [--rounds 3] [--duration 8] [--profile]
       [--only e,f,a,b,c,d] [--no-pin] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_VENV = ROOT / ".venv-bench"
QUESTION = "What does a p-value measure?"
MAX_REQUESTS_PER_PHASE = 400_000  # a bound on any one phase, whatever the speed
CLK_TCK = os.sysconf("SC_CLK_TCK")
LITELLM_KEY = "sk-bench-master-key"


# --------------------------------------------------------------------------------------------------------------------
# Servers run by this script itself (python scripts/bench_throughput.py --_serve KIND ...)
# --------------------------------------------------------------------------------------------------------------------


def _serve_child(kind: str, port: int, fake_url: str, body_file: str) -> int:
    """Run the hello-world app or the floor app under uvicorn (one worker, uvloop/httptools when installed)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    if kind == "fake":  # the fake's own app and state, bound by uvicorn itself (TCP_NODELAY on, see --fake)
        from tests.fakes.messages_api import FakeState, create_app

        uvicorn.run(create_app(FakeState()), host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return 0

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello")

    routes = [Route("/health", hello), Route("/hello", hello)]
    if kind == "floor":
        import anthropic

        captured: dict[str, Any] = json.loads(Path(body_file).read_text())
        known = {"model", "max_tokens", "messages", "system", "tools", "tool_choice", "temperature", "metadata",
                 "stop_sequences", "top_k", "top_p"}
        kwargs = {k: v for k, v in captured.items() if k in known}
        extra = {k: v for k, v in captured.items() if k not in known and k != "stream"}
        client = anthropic.AsyncAnthropic(base_url=fake_url, api_key="test-key", max_retries=0)

        async def ask(request: Request) -> Response:
            payload = await request.json()  # read the question like any API would; the model call is the same
            # the call (b) makes (shared/models/anthropic.py): the SDK's request, its answer read as JSON
            raw = await client.messages.with_raw_response.create(**kwargs, extra_body=extra or None)
            message = raw.http_response.json()
            text = "".join(block.get("text", "") for block in message["content"])
            return JSONResponse({"question": payload.get("question"), "answer": text,
                                 "usage": {"input_tokens": message["usage"]["input_tokens"],
                                           "output_tokens": message["usage"]["output_tokens"]}})

        routes.append(Route("/ask", ask, methods=["POST"]))
    uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return 0


# --------------------------------------------------------------------------------------------------------------------
# Processes, CPU time, readiness
# --------------------------------------------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """utime+stime of ``pid`` and its live descendants (all threads), from /proc."""
    total = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


@dataclass
class Proc:
    """A server this script started (its own process group), with its log."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def free_port() -> int:
    from tests.ports import free_port as _free

    return int(_free())


def start(name: str, args: list[str], env: dict[str, str], workdir: Path, cpus: set[int] | None,
          port: int, health: str, timeout: float = 120.0, cwd: Path = ROOT) -> Proc:
    """Start a server in its own process group (pinned to ``cpus``) and wait until ``health`` answers 200."""
    import httpx

    log_path = workdir / f"{name}-{time.monotonic_ns()}.log"

    def pre() -> None:
        os.setsid()
        if cpus:
            os.sched_setaffinity(0, cpus)

    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=pre)  # noqa: PLW1509 - affinity before exec
    server = Proc(name, proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before answering {health}:\n{server.tail()}")
        try:
            if httpx.get(server.url + health, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not answer {health} within {timeout:.0f} s:\n{server.tail()}")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------------------------------
# The load generator
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Target:
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]


@dataclass
class Result:
    calls: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[str]
    cpu_s: float
    samples: list[str] = field(default_factory=list)  # bodies of a few non-200 answers
    fake_cpu_s: float = 0.0  # the fake Messages API's CPU over the same window

    @property
    def fake_busy(self) -> float:
        """The fraction of one CPU the fake used over the window."""
        return self.fake_cpu_s / self.seconds

    @property
    def rps(self) -> float:
        return self.calls / self.seconds

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies_ms)
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s != "200")

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_s / self.calls if self.calls else float("nan")


async def _load(target: Target, connections: int, warmup: float, duration: float,
                cpu_of: Callable[[], tuple[float, float]]) -> Result:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    samples: list[str] = []
    issued = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> tuple[str, float, float, str]:
            t0 = time.perf_counter()
            try:
                async with session.request(target.method, target.url, data=target.body,
                                           headers=target.headers) as resp:
                    text = await resp.read()
                    status = str(resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return f"error:{type(exc).__name__}", t0, time.perf_counter(), str(exc)
            return status, t0, time.perf_counter(), text[:300].decode(errors="replace") if status != "200" else ""

        first = await one()  # priming: lazy imports, caches, the first connection
        if first[0] != "200":
            statuses[first[0]] += 1
            samples.append(first[3])
            return Result(0, duration, [], statuses, 0.0, samples)
        window: dict[str, tuple[float, float]] = {}
        begin = time.perf_counter()
        start = begin + warmup
        stop = start + duration

        async def worker() -> None:
            nonlocal issued
            while issued < MAX_REQUESTS_PER_PHASE:
                now = time.perf_counter()
                if now >= stop:
                    return
                if now >= start and "cpu0" not in window:
                    window["cpu0"] = cpu_of()
                issued += 1
                status, t0, t1, body = await one()
                if start <= t1 <= stop:
                    statuses[status] += 1
                    if status == "200":
                        latencies.append((t1 - t0) * 1000)
                    elif len(samples) < 3:
                        samples.append(body)
                elif t1 < start and status != "200":  # a warm-up failure counts too
                    statuses[status] += 1
                    if len(samples) < 3:
                        samples.append(body)

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), warmup + duration + 90)
        cpu1 = cpu_of()
    cpu0 = window.get("cpu0", cpu1)
    return Result(sum(statuses.values()), duration, latencies, statuses, cpu1[0] - cpu0[0], samples,
                  cpu1[1] - cpu0[1])


def run_load(target: Target, pid: int | None, fake_pid: int, args: argparse.Namespace) -> Result:
    def cpu_of() -> tuple[float, float]:
        return (tree_cpu_seconds(pid) if pid else 0.0), tree_cpu_seconds(fake_pid)

    try:
        import uvloop

        return uvloop.run(_load(target, args.connections, args.warmup, args.duration, cpu_of))
    except ImportError:
        return asyncio.run(_load(target, args.connections, args.warmup, args.duration, cpu_of))


# --------------------------------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Fake:
    """The fake Messages API process: its URL, remote control and pid."""

    url: str
    remote: Any  # tests.fakes.messages_api.RemoteFake
    pid: int
    stop: Callable[[], None]


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    fake: Fake
    body_file: Path
    server_cpus: set[int] | None
    other_cpus: set[int] | None
    serve_workers: bool
    litellm: Path | None
    results: dict[str, list[Result]] = field(default_factory=lambda: defaultdict(list))

    def serve_env(self, store: Path) -> dict[str, str]:
        from tests.e2e.servers import server_env

        return server_env(f"sqlite:///{store}", self.fake.url, MULTIAGENT_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
                          MULTIAGENT_SHUTDOWN_GRACE_S="1")

    def start_serve(self, workers: int) -> tuple[Proc, str]:
        """A fresh store, a tenant with budgets and limits on but out of reach, and ``multiagent serve``."""
        store = self.workdir / f"store-{time.monotonic_ns()}.db"
        env = self.serve_env(store)
        cli = [sys.executable, "-m", "shared.cli"]
        subprocess.run([*cli, "store", "init"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
        made = subprocess.run([*cli, "tenants", "create", "bench", "--daily-usd", "1000000", "--monthly-usd",
                               "1000000", "--rpm", "100000000", "--tpm", "1000000000", "--json"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        if made.returncode != 0:
            raise RuntimeError(f"multiagent tenants create failed: {made.stderr.strip()}")
        key = json.loads(made.stdout)["api_key"]
        port = free_port()
        extra = ["--workers", str(workers)] if self.serve_workers else []  # (b) one worker, (c) two
        cpus = self.server_cpus if workers == 1 else None
        return start("serve", [*cli, "serve", "--port", str(port), *extra], env, self.workdir, cpus, port,
                     "/health"), key

    def serve_target(self, server: Proc, key: str) -> Target:
        return Target("POST", server.url + "/v1/teams/research/ask", json.dumps({"question": QUESTION}).encode(),
                      {"authorization": f"Bearer {key}", "content-type": "application/json"})

    def child(self, kind: str) -> Proc:
        port = free_port()
        return start(kind, [sys.executable, str(Path(__file__).resolve()), "--_serve", kind, "--_port", str(port),
                            "--_fake", self.fake.url, "--_body", str(self.body_file)],
                     {**os.environ, "PYTHONPATH": str(ROOT)}, self.workdir, self.server_cpus, port, "/health")

    def start_litellm(self) -> Proc:
        assert self.litellm is not None
        config = self.workdir / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            "  - model_name: bench-model\n"
            "    litellm_params:\n"
            "      model: anthropic/claude-haiku-4-5\n"
            "      api_key: test-key\n"
            "      mock_response: \"Fake answer to: " + QUESTION + "\"\n"
            "litellm_settings:\n"
            "  telemetry: false\n"
            "general_settings:\n"
            f"  master_key: {LITELLM_KEY}\n"
        )
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "LITELLM_", "ANTHROPIC_"))}
        env |= {"LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION", "LITELLM_TELEMETRY": "False",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True", "DISABLE_SCHEMA_UPDATE": "True"}
        return start("litellm", [str(self.litellm), "--config", str(config), "--host", "127.0.0.1", "--port",
                                 str(port), "--num_workers", "1"], env, self.workdir, self.server_cpus, port,
                     "/health/liveliness", timeout=180, cwd=self.workdir)

    def measure(self, label: str, server: Proc | None, target: Target) -> Result:
        try:
            result = run_load(target, server.proc.pid if server else None, self.fake.pid, self.args)
        finally:
            if server is not None:
                server.stop()
            self.fake.remote.reset()  # its request log grows with every call
        if result.errors or not result.calls:
            print(f"\nFAIL: {label}: {result.errors} non-200 answers in a measured run "
                  f"({dict(result.statuses)}); first bodies: {result.samples}", file=sys.stderr)
            if server is not None:
                print(f"{server.name} log tail:\n{server.tail()}", file=sys.stderr)
            raise SystemExit(1)
        self.results[label].append(result)
        print(f"  {label:<2} {result.rps:8.1f} req/s  p50 {result.pct(0.5):7.1f} ms  p99 {result.pct(0.99):7.1f} ms"
              f"  cpu {result.cpu_ms_per_call:6.2f} ms/call  fake busy {100 * result.fake_busy:3.0f}%"
              f"  non-200 {result.errors}", flush=True)
        return result

    def scenario(self, label: str) -> None:
        if label == "e":
            server = self.child("hello")
            self.measure("e", server, Target("GET", server.url + "/hello", None, {}))
        elif label == "f":
            body = self.body_file.read_bytes()
            self.measure("f", None, Target("POST", self.fake.url + "/v1/messages", body,
                                           {"content-type": "application/json", "x-api-key": "test-key",
                                            "anthropic-version": "2023-06-01"}))
        elif label == "a":
            server = self.child("floor")
            self.measure("a", server, Target("POST", server.url + "/ask", json.dumps({"question": QUESTION}).encode(),
                                             {"content-type": "application/json"}))
        elif label in ("b", "c"):
            server, key = self.start_serve(1 if label == "b" else 2)
            self.measure(label, server, self.serve_target(server, key))
        elif label == "d":
            server = self.start_litellm()
            chat = {"model": "bench-model", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 1024}
            self.measure("d", server, Target("POST", server.url + "/chat/completions", json.dumps(chat).encode(),
                                             {"authorization": f"Bearer {LITELLM_KEY}",
                                              "content-type": "application/json"}))


def capture_body(bench: Bench) -> None:
    """One (b) call, then the body it sent to the fake: the floor (a) and the fake's ceiling (f) send exactly it."""
    import httpx

    server, key = bench.start_serve(1)
    try:
        target = bench.serve_target(server, key)
        bench.fake.remote.reset()
        resp = httpx.post(target.url, content=target.body, headers=target.headers, timeout=60)
        if resp.status_code != 200:
            raise SystemExit(f"FAIL: the first (b) call answered {resp.status_code}: {resp.text[:500]}")
        entries = bench.fake.remote.log("/v1/messages")
        if len(entries) != 1:
            raise SystemExit(f"FAIL: one (b) call made {len(entries)} model calls (expected 1)")
        bench.body_file.write_text(json.dumps(entries[0]["body"]))
    finally:
        server.stop()
        bench.fake.remote.reset()


# --------------------------------------------------------------------------------------------------------------------
# Profile (py-spy)
# --------------------------------------------------------------------------------------------------------------------

# Where the event loop's time goes. A sample's stack is read from the leaf outwards: the SDK, JSON-schema building
# and the store are recognised anywhere on it (they call nothing of ours); otherwise the innermost frame of ours
# (shared/) names the part; with none, the innermost library frame does.
ANYWHERE: list[tuple[str, Callable[[str, str], bool]]] = [
    ("tool definitions / JSON schema (Tool.definition, submit_tool, model_json_schema)",
     lambda fn, f: (fn == "definition" and f.endswith("shared/tools/base.py")) or fn in (
         "model_json_schema", "submit_tool", "output_schema", "input_schema") or "pydantic/json_schema" in f),
    ("SDK request (anthropic, httpx, httpcore)",
     lambda fn, f: any(m in f for m in ("anthropic/", "httpx/", "httpx2/", "httpcore/", "httpcore2/", "h11/"))),
    ("store (shared/store: SQLite on the loop, hand-offs to its thread)",
     lambda fn, f: "shared/store/" in f or "anyio/to_thread" in f or "concurrent/futures" in f),
]
OURS: list[tuple[str, tuple[str, ...]]] = [
    ("audit / metrics / logging (shared/observability, usage)", ("shared/observability/", "shared/usage.py")),
    ("budget guard (budget, limits, pricing)",
     ("shared/budget.py", "shared/limits.py", "shared/pricing.py")),
    ("tool loop / prompt (agent, models, tools)", ("shared/agent.py", "shared/models/", "shared/tools/")),
    ("routing / validation (http request+teams, auth, envelope, catalog)",
     ("shared/http/request.py", "shared/http/teams.py", "shared/auth.py", "shared/envelope.py",
      "shared/catalog.py", "shared/tenants.py", "shared/operations.py", "shared/schema_examples.py")),
    ("middleware (http boundary, http_limits, app)", ("shared/http", "shared/http_limits.py")),
    ("other shared/", ("shared/",)),
]
LIBS: list[tuple[str, tuple[str, ...]]] = [
    ("routing / validation (http request+teams, auth, envelope, catalog)", ("starlette/routing", "pydantic")),
    ("middleware (http boundary, http_limits, app)", ("starlette/",)),
    ("logging (stdlib)", ("logging/",)),
    ("server (uvicorn, uvloop, asyncio)", ("uvicorn/", "asyncio/", "uvloop", "contextvars")),
]


def _group(stack: list[int], names: list[tuple[str, str, int]]) -> str:
    for group, matches in ANYWHERE:
        if any(matches(names[i][0], names[i][1]) for i in stack):
            return group
    for i in reversed(stack):  # the stack is root first
        f = names[i][1]
        if f.startswith("shared/") and not f.startswith("shared/cli/"):  # cli: only the root of every stack
            return next(group for group, marks in OURS if any(f.startswith(m) for m in marks))
    for i in reversed(stack):
        f = names[i][1]
        for group, marks in LIBS:
            if any(m in f for m in marks):
                return group
    return "other"


def profile_round(bench: Bench, out: Path) -> None:
    pyspy = BENCH_VENV / "bin" / "py-spy"
    if not pyspy.exists():
        raise SystemExit(f"FAIL: --profile needs {pyspy}: run scripts/bench_setup.sh")
    server, key = bench.start_serve(1)
    spy_log = bench.workdir / "py-spy.log"
    spy_seconds = int(bench.args.warmup + bench.args.duration)
    with spy_log.open("wb") as log:
        spy = subprocess.Popen([str(pyspy), "record", "--pid", str(server.proc.pid), "--rate", "250", "--nonblocking",
                                "--duration", str(spy_seconds), "--format", "speedscope", "--output", str(out)],
                               stdout=log, stderr=subprocess.STDOUT)
    time.sleep(1.0)  # let py-spy attach before the load starts
    print("  profiled round (py-spy attached, so slower):", flush=True)
    bench.measure("b*", server, bench.serve_target(server, key))
    try:
        spy.wait(spy_seconds + 60)
    except subprocess.TimeoutExpired:
        spy.kill()
    if not out.exists():
        raise SystemExit(f"FAIL: py-spy wrote no profile:\n{spy_log.read_text(errors='replace')[-2000:]}")
    report_profile(out)


def report_profile(path: Path) -> None:
    """Top functions by own time on the event-loop thread, who called them, and the loop's time by part."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    names = [(fr.get("name", "?"), _short(fr.get("file") or ""), fr.get("line") or 0) for fr in frames]

    def weight(p: dict[str, Any]) -> float:
        return float(sum(p.get("weights") or [1] * len(p["samples"])))

    profiles = sorted(data["profiles"], key=weight, reverse=True)
    total_all = sum(weight(p) for p in profiles) or 1
    print("\nBusy samples by thread (py-spy, idle excluded): " + ", ".join(
        f"{p.get('name', '?')} {100 * weight(p) / total_all:.0f}%" for p in profiles[:3])
        + f", {len(profiles) - 3} more threads {100 * sum(weight(p) for p in profiles[3:]) / total_all:.0f}%")
    loop = next((p for p in profiles if "MainThread" in p.get("name", "")), profiles[0])
    samples, weights = loop["samples"], loop.get("weights") or [1] * len(loop["samples"])
    total = sum(weights) or 1
    own: Counter[int] = Counter()
    inclusive: Counter[int] = Counter()
    groups: Counter[str] = Counter()
    callers: dict[int, Counter[str]] = defaultdict(Counter)
    for stack, w in zip(samples, weights, strict=True):
        if not stack:
            continue
        own[stack[-1]] += w
        for idx in set(stack):
            inclusive[idx] += w
        groups[_group(stack, names)] += w
        ours = next((names[i] for i in reversed(stack[:-1])
                     if names[i][1].startswith("shared/") and not names[i][1].startswith("shared/cli/")), None)
        callers[stack[-1]][f"{ours[0]} ({ours[1]}:{ours[2]})" if ours else "-"] += w
    print(f"Event-loop thread ({loop.get('name', '?')}): {len(samples)} samples")
    print("\nTop 25 functions by own time on it (own % | inclusive % | function | innermost shared/ caller):")
    for idx, w in own.most_common(25):
        fn, f, line = names[idx]
        caller, _n = callers[idx].most_common(1)[0]
        print(f"{100 * w / total:6.1f} {100 * inclusive[idx] / total:6.1f}  {fn} ({f}:{line})  <- {caller}")
    print("\nEvent-loop time by part:")
    for name, w in groups.most_common():
        print(f"{100 * w / total:6.1f} %  {name}")
    print("\nInclusive time of selected functions of ours:")
    ours_frames = [i for i, n in enumerate(names) if n[1].startswith("shared/") and not n[1].startswith("shared/cli/")]
    for i in sorted(ours_frames, key=lambda i: -inclusive[i])[:20]:
        fn, f, line = names[i]
        print(f"{100 * inclusive[i] / total:6.1f} %  {fn} ({f}:{line})")


def _short(path: str) -> str:
    path = re.sub(r"^.*/lib/python3\.\d+/(site-packages/)?", "", path)
    return path.replace(str(ROOT) + "/", "")


# --------------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------------

LABELS = {
    "e": "(e) load generator ceiling: hello-world Starlette (uvicorn, 1 worker)",
    "f": "(f) fake Messages API alone (its own process)",
    "a": "(a) floor: bare Starlette + one AsyncAnthropic call (1 worker)",
    "b": "(b) multiagent serve, SQLite, budgets on, /v1/teams/research/ask",
    "c": "(c) multiagent serve --workers 2",
    "d": "(d) LiteLLM proxy, mock_response, /chat/completions",
    "b*": "(b) under py-spy (not a measured round)",
}


def serve_has_workers() -> bool:
    out = subprocess.run([sys.executable, "-m", "shared.cli", "serve", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    return "--workers" in out.stdout


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def print_table(bench: Bench, skipped: dict[str, str]) -> None:
    print(f"\nMedians over {bench.args.rounds} rounds ({bench.args.connections} connections, "
          f"{bench.args.duration:g} s measured after {bench.args.warmup:g} s warm-up; load average now "
          f"{load_average()}):\n")
    head = f"| {'scenario':<70} | req/s | p50 ms | p99 ms | server CPU ms/call | fake busy | non-200 |"
    print(head)
    print("| " + " | ".join("-" * n for n in (70, 5, 6, 6, 18, 9, 7)) + " |")
    med: dict[str, float] = {}
    for label in ("e", "f", "a", "b", "c", "d"):
        if label in skipped:
            print(f"| {LABELS[label]:<70} | {skipped[label]} |")
            continue
        rs = bench.results.get(label)
        if not rs:
            continue
        med[label] = statistics.median(r.rps for r in rs)
        cpu = statistics.median(r.cpu_ms_per_call for r in rs) if label != "f" else float("nan")
        cpu_s = f"{cpu:.2f}" if cpu == cpu else "n/a"
        print(f"| {LABELS[label]:<70} | {med[label]:5.0f} | {statistics.median(r.pct(0.5) for r in rs):6.1f} | "
              f"{statistics.median(r.pct(0.99) for r in rs):6.1f} | {cpu_s:>18} | "
              f"{100 * statistics.median(r.fake_busy for r in rs):8.0f}% | {sum(r.errors for r in rs):7d} |")
    print("\nPer round req/s: " + "; ".join(
        f"{k} " + "/".join(f"{r.rps:.0f}" for r in v) for k, v in bench.results.items() if k != "b*"))
    if "b" in med and "a" in med:
        print(f"b/a = {med['b'] / med['a']:.2f}  (throughput of a budgeted call / the bare model call)")
    if "b" in med and "d" in med:
        print(f"b/d = {med['b'] / med['d']:.2f}  (multiagent serve / LiteLLM proxy)")
    if "c" in med and "b" in med:
        print(f"c/b = {med['c'] / med['b']:.2f}")
    for label in ("a", "b", "c"):
        if label in med and "f" in med and med["f"] < 1.5 * med[label]:
            print(f"WARNING: the fake's ceiling ({med['f']:.0f} req/s) is under 1.5x ({label}): "
                  "it may be what limits that row")
        if label in med and "e" in med and med["e"] < 1.5 * med[label]:
            print(f"WARNING: the load generator's ceiling ({med['e']:.0f} req/s) is under 1.5x ({label})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (>= 3 for the medians)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per scenario and round")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each measured window")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--only", default="e,f,a,b,c,d", help="scenarios to run, e.g. a,b")
    parser.add_argument("--profile", action="store_true", help="one more (b) round under py-spy; top functions")
    parser.add_argument("--profile-out", default="", help="where to keep the speedscope file (default: temp)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server under test to CPU 0")
    parser.add_argument("--fake", choices=("uvicorn", "process"), default="uvicorn",
                        help="uvicorn (default): the fake's app and state (create_app, FakeState) under a plain "
                             "uvicorn.run; process: FakeMessagesProcess as the tests run it, whose pre-bound socket "
                             "lacks TCP_NODELAY (every answer waits ~40 ms for a delayed ACK)")
    parser.add_argument("--_serve", help=argparse.SUPPRESS)
    parser.add_argument("--_port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_fake", default="", help=argparse.SUPPRESS)
    parser.add_argument("--_body", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._serve:
        return _serve_child(args._serve, args._port, args._fake, args._body)

    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    if bad := [s for s in wanted if s not in "efabcd" or len(s) != 1]:
        parser.error(f"--only: unknown scenario(s) {bad}; choose from e,f,a,b,c,d")
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0 or not 1 <= args.connections <= 1024:
        parser.error("--rounds >= 1, --duration > 0, --warmup >= 0, 1 <= --connections <= 1024")
    if args.rounds < 3:
        print(f"note: {args.rounds} round(s): medians need >= 3 to mean much", file=sys.stderr)

    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = other_cpus = None
    if not args.no_pin and len(cpus) >= 2:
        server_cpus, other_cpus = {cpus[0]}, set(cpus[1:])
        os.sched_setaffinity(0, other_cpus)  # this process (the load generator) and the fake it starts
    skipped: dict[str, str] = {}
    workers = serve_has_workers()
    if "c" in wanted and not workers:
        skipped["c"] = "n/a (serve has no --workers yet)"
    litellm = BENCH_VENV / "bin" / "litellm"
    if "d" in wanted and not litellm.exists():
        print("setting up .venv-bench (scripts/bench_setup.sh) for the LiteLLM proxy ...", file=sys.stderr)
        if subprocess.run(["bash", str(ROOT / "scripts" / "bench_setup.sh")]).returncode != 0:
            raise SystemExit("FAIL: scripts/bench_setup.sh failed; the LiteLLM row needs it")
    pinning = f"server on CPU {sorted(server_cpus)}, client and fake on {sorted(other_cpus)}" if server_cpus and \
        other_cpus else "off"
    head = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    print(f"bench_throughput at {head.stdout.strip() or '?'}: {len(cpus)} CPUs, pinning {pinning}; "
          f"load average {load_average()}; python {sys.version.split()[0]}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        workdir = Path(tmp)
        fake = start_fake(args.fake, workdir)
        try:
            bench = Bench(args, workdir, fake, workdir / "model-call.json", server_cpus, other_cpus, workers,
                          litellm if litellm.exists() else None)
            run_all(bench, wanted, skipped)
        finally:
            fake.stop()
    return 0


def start_fake(how: str, workdir: Path) -> Fake:
    """The fake Messages API (tests/fakes/messages_api.py) in its own process, zero delay, on the client's CPUs."""
    from tests.fakes.messages_api import FakeMessagesProcess, RemoteFake

    if how == "process":
        process = FakeMessagesProcess(delay=0.0, cwd=ROOT).start()
        assert process.proc is not None and process.remote is not None
        return Fake(process.url, process.remote, process.proc.pid, process.stop)
    port = free_port()
    child = start("fake", [sys.executable, str(Path(__file__).resolve()), "--_serve", "fake", "--_port", str(port)],
                  {**os.environ, "PYTHONPATH": str(ROOT)}, workdir, None, port, "/_fake/billing")
    return Fake(child.url, RemoteFake(child.url), child.proc.pid, child.stop)


def run_all(bench: Bench, wanted: list[str], skipped: dict[str, str]) -> None:
    args = bench.args
    capture_body(bench)
    print(f"(a) and (f) send the body (b) sent: {bench.body_file.stat().st_size} bytes, "
          f"{len(json.loads(bench.body_file.read_text()).get('tools') or [])} tools", flush=True)
    order = [s for s in wanted if s not in skipped]
    for rnd in range(args.rounds):
        shift = rnd % len(order) if order else 0
        this = order[shift:] + order[:shift]  # rotate: no scenario always runs first or last
        print(f"round {rnd + 1}/{args.rounds} ({','.join(this)}), load average {load_average()}", flush=True)
        for label in this:
            bench.scenario(label)
    if args.profile:
        out = Path(args.profile_out) if args.profile_out else bench.workdir / "serve.speedscope.json"
        profile_round(bench, out)
        if args.profile_out:
            print(f"speedscope profile: {out} (open in https://www.speedscope.app)")
    print_table(bench, skipped)


if __name__ == "__main__":
    sys.exit(main())
