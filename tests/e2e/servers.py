"""Start ``multiagent serve`` as real processes, the way a user or a platform would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.ports import free_port
from tests.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]


def server_env(store_url: str, model_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a server process: this process's (emulator variables included),
    minus any MULTIAGENT_/ANTHROPIC_ settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MULTIAGENT_", "ANTHROPIC_"))}
    env["MULTIAGENT_STORE"] = store_url
    env["PYTHONPATH"] = str(ROOT)
    if model_url:
        env |= {"MULTIAGENT_MODEL_PROVIDER": "anthropic", "ANTHROPIC_BASE_URL": model_url,
                "ANTHROPIC_API_KEY": "test-key"}
    env.update(extra)
    return env


class ServeProcess:
    """One ``multiagent serve`` on a free port."""

    def __init__(self, env: dict[str, str], workers: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="serve-", suffix=".log", delete=False)  # noqa: SIM115
        extra = ["--workers", str(workers)] if workers is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "serve", "--port", str(self.port), *extra], env=env, cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> ServeProcess:
        """Block until ``/health`` answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.tail()}")
            try:
                httpx.get(self.url + "/health", timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server not ready: {self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        """The end of the server's log."""
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL: a crashed instance."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def cli(env: dict[str, str], *args: str) -> dict:
    """Run ``multiagent ARGS --json`` and parse its output."""
    out = subprocess.run([sys.executable, "-m", "shared.cli", *args, "--json"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"multiagent {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout)


@contextmanager
def mcp_http_app(env: dict[str, str]) -> Iterator[str]:
    """``python -m functions.mcp.main --http PORT`` with ``env``; yields its ``/mcp`` URL once ``/health``
    answers, and stops it at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "functions.mcp.main", "--http", str(port)], cwd=ROOT,
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not _answers(url + "/health"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the MCP HTTP app did not start (exit {proc.poll()}):\n"
                                       f"{log.read().decode(errors='replace')[-3000:]}")
                time.sleep(0.05)
            yield url + "/mcp"
        finally:
            stop_process(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
