#!/usr/bin/env python3
"""Cold-start benchmark: what a serverless user pays and waits for on a new instance.

Measures, in one run, the median over several fresh processes of:
  (a) a team function's process start -> first 200 on /health
  (b) a team function's process start -> first 200 of an operation (fake Messages API)
  (c) bare uvicorn + Starlette hello world: process start -> first 200
  (d) python -c "import anthropic"
and prints a/c (target <= 1.5) and b/(c+d) (target <= 1.2).

Usage: .venv/bin/python scripts/bench_coldstart.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.servers import free_port  # noqa: E402
from tests.fakes.messages_api import FakeMessagesServer  # noqa: E402

HELLO = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def health(request):
    return JSONResponse({"status": "healthy"})

app = Starlette(routes=[Route("/health", health)])
"""


def time_until_200(cmd: list[str], env: dict[str, str], port: int, method: str, path: str,
                   body: dict | None = None, headers: dict | None = None) -> float:
    """Seconds from spawning ``cmd`` to the first 200 on ``path``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=30) as client:
            while True:
                try:
                    resp = client.request(method, f"http://127.0.0.1:{port}{path}", json=body, headers=headers)
                    if resp.status_code == 200:
                        return time.perf_counter() - start
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd} exited {proc.returncode}")
                time.sleep(0.002)
    finally:
        proc.terminate()
        proc.wait()


def uvicorn_cmd(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="coldstart-"))
    (tmp / "hello_app.py").write_text(HELLO)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MULTIAGENT_", "ANTHROPIC_"))}
    store = f"sqlite:///{tmp}/store.db"
    env = base_env | {"MULTIAGENT_STORE": store, "MULTIAGENT_TEAM": "finance", "PYTHONPATH": str(ROOT),
                      "MULTIAGENT_LOG_LEVEL": "WARNING"}
    key = json.loads(subprocess.run([sys.executable, "-m", "shared.cli", "tenants", "create", "bench", "--json",
                                     "--rpm", "100000"], env=env, cwd=ROOT, capture_output=True, text=True,
                                    check=True).stdout)["api_key"]
    auth = {"authorization": f"Bearer {key}"}
    results: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
    with FakeMessagesServer() as fake:
        model_env = env | {"MULTIAGENT_MODEL_PROVIDER": "anthropic", "ANTHROPIC_BASE_URL": fake.url,
                           "ANTHROPIC_API_KEY": "test-key"}
        for _ in range(args.runs):
            port = free_port()
            results["a"].append(time_until_200(uvicorn_cmd("functions.team.main:app", port), model_env, port,
                                               "GET", "/health"))
            port = free_port()
            results["b"].append(time_until_200(uvicorn_cmd("functions.team.main:app", port), model_env, port,
                                               "POST", "/v1/teams/finance/ask", {"question": "hi"}, auth))
            port = free_port()
            results["c"].append(time_until_200(uvicorn_cmd("hello_app:app", port),
                                               base_env | {"PYTHONPATH": str(tmp)}, port, "GET", "/health"))
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import anthropic"], check=True)
            results["d"].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in results.items()}
    labels = {"a": "team function -> first 200 /health", "b": "team function -> first 200 operation",
              "c": "bare uvicorn + Starlette -> first 200", "d": "python -c 'import anthropic'"}
    print(f"{'measure':<42} {'median s':>9}   runs={args.runs}")
    for k in "abcd":
        print(f"({k}) {labels[k]:<38} {med[k]:>9.3f}")
    print(f"a/c     = {med['a'] / med['c']:.2f}   (target <= 1.5)")
    print(f"b/(c+d) = {med['b'] / (med['c'] + med['d']):.2f}   (target <= 1.2)")


if __name__ == "__main__":
    main()
