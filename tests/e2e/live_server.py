"""A real ``multiagent serve`` in a subprocess, for end-to-end tests (reusable by any module).

    from tests.e2e.live_server import LiveServer, live_server_fixture

    server = live_server_fixture()                          # offline model, zero cost
    priced = live_server_fixture(fake_model=True,           # the fake Messages API: real costs
                                 env={"MULTIAGENT_DEADLINE_S": "4"})

    def test_something(server: LiveServer) -> None:
        httpx.get(server.url + "/v1/usage", headers=server.auth())
        budget = server.create_tenant("poor", "--daily-usd", "0.0001")   # CLI `tenants create`
        server.fake.push(error(529))                                     # fake_model=True only

Each fixture starts its servers once per module (``scope`` to change it) on free loopback
ports, with its own SQLite file, creates a default tenant through the CLI, and stops
everything at the end. ``start_live_server`` does the same outside pytest; ``serve_next_to``
starts one more ``multiagent serve`` on a running server's store.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import servers
from tests.fakes.messages_api import FakeMessagesProcess, RemoteFake
from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Tenant:
    """A tenant made by ``multiagent tenants create --json``."""

    tenant_id: str
    api_key: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class LiveServer:
    """A running ``multiagent serve`` (and, with a fake model, the fake Messages API)."""

    url: str
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    tenant: Tenant
    fake_process: FakeMessagesProcess | None = None

    @property
    def api_key(self) -> str:
        """The default tenant's key."""
        return self.tenant.api_key

    @property
    def fake(self) -> RemoteFake:
        """The fake Messages API's remote control (servers started with ``fake_model=True``)."""
        if self.fake_process is None or self.fake_process.remote is None:
            raise RuntimeError("this server runs the offline model; start it with fake_model=True")
        return self.fake_process.remote

    def auth(self, key: str | None = None) -> dict[str, str]:
        """``Authorization`` header for ``key`` (default tenant by default)."""
        return {"authorization": f"Bearer {key or self.api_key}"}

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``multiagent ARGS`` against the server's store."""
        proc = subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=REPO_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"multiagent {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def create_tenant(self, name: str, *args: str) -> Tenant:
        """``multiagent tenants create NAME ARGS --json`` (e.g. ``"--daily-usd", "0.0001"``)."""
        info = json.loads(self.cli("tenants", "create", name, *args, "--json").stdout)
        return Tenant(info["tenant_id"], info["api_key"], info)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's stderr."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and the fake."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.fake_process is not None:
            self.fake_process.stop()


def server_env(store_path: Path, *, fake_url: str | None = None,
               env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a test server: its own SQLite file, quiet logs, offline unless a fake URL is given."""
    settings = {"MULTIAGENT_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", "MULTIAGENT_SHUTDOWN_GRACE_S": "1"}
    if not fake_url:
        settings["MULTIAGENT_MODEL_PROVIDER"] = "offline"
    return servers.server_env(f"sqlite:///{store_path}", fake_url, **(settings | dict(env or {})))


def start_live_server(
    workdir: Path,
    *,
    fake_model: bool = False,
    env: Mapping[str, str] | None = None,
    tenant_args: Sequence[str] = (),
    fake_delay: float = 0.0,
    ready_timeout: float = 40.0,
) -> LiveServer:
    """Start the fake (optional) and ``multiagent serve`` on free ports; create the default tenant."""
    workdir.mkdir(parents=True, exist_ok=True)
    fake = FakeMessagesProcess(delay=fake_delay, cwd=REPO_ROOT).start() if fake_model else None
    try:
        full_env = server_env(workdir / "store.db", fake_url=fake.url if fake else None, env=env)
        port = free_port()
        log_path = workdir / "server.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "serve", "--port", str(port)],
                                    cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        server = LiveServer(url=url, env=full_env, workdir=workdir, proc=proc, log_path=log_path,
                            tenant=Tenant("", ""), fake_process=fake)
        try:
            server.cli("store", "init")
            server.tenant = server.create_tenant("e2e-default", *tenant_args)
            _wait_ready(server, ready_timeout)
        except BaseException:
            server.stop()
            raise
        return server
    except BaseException:
        if fake is not None:
            fake.stop()
        raise


def serve_next_to(first: LiveServer, name: str, **env: str) -> LiveServer:
    """Another ``multiagent serve`` on ``first``'s store, fake model and tenant (``env`` added to its
    environment), logging to ``NAME.log`` in its workdir; stop it with :meth:`LiveServer.stop`."""
    port = free_port()
    log_path = first.workdir / f"{name}.log"
    full_env = {**first.env, **env}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "serve", "--port", str(port)], cwd=REPO_ROOT,
                                env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(url=f"http://127.0.0.1:{port}", env=full_env, workdir=first.workdir, proc=proc,
                        log_path=log_path, tenant=first.tenant)
    try:
        _wait_ready(server, 40)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"multiagent serve exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"multiagent serve did not answer /health within {timeout} s:\n{server.log_tail()}")


def live_server_fixture(
    *,
    fake_model: bool = False,
    env: Mapping[str, str] | None = None,
    tenant_args: Sequence[str] = (),
    fake_delay: float = 0.0,
    scope: str = "module",
) -> Callable[..., Any]:
    """A pytest fixture yielding a :class:`LiveServer` started with these options (once per ``scope``)."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload, untyped-decorator]
    def _fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
        server = start_live_server(tmp_path_factory.mktemp("live-server"), fake_model=fake_model, env=env,
                                   tenant_args=tenant_args, fake_delay=fake_delay)
        try:
            yield server
        finally:
            server.stop()

    return _fixture  # type: ignore[no-any-return]


live_server = live_server_fixture()
"""An offline-model server (zero cost), once per module."""

live_server_fake_model = live_server_fixture(fake_model=True)
"""A server on the fake Messages API (real token costs), once per module."""
