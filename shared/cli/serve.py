"""``multiagent serve``: the gateway and every team (the only command that loads the HTTP stack).

One worker (the default on one CPU) serves in this process. With ``--workers N`` (default:
the CPUs this process may run on) this process binds the port and becomes a supervisor:
N worker processes (``multiagent serve --_worker-fd FD``) accept on that one socket, each
with its own event loop, and share the store (SQLite takes its write lock per transaction,
so budgets hold across them; ``sqlite:///:memory:`` is one database per process and is
refused; the default then serves it with one). SIGTERM or SIGINT to the supervisor is
passed on to every worker as SIGTERM, each finishes its in-flight calls within the grace
period, and the supervisor exits 0 when all did (a second SIGINT, a second Ctrl-C, is passed
on too: the workers stop without waiting, as one process does). A worker dies with its
supervisor. ``/metrics`` sums every worker's counters (prometheus_client's multiprocess mode,
in a temporary directory the supervisor removes, or the next start does after a SIGKILL).
The cloud entry points stay one process per instance.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

METRICS_DIR_PREFIX = "multiagent-metrics-"
METRICS_DIR_LOCK = ".supervisor.lock"  # held by the supervisor while it runs (not a *.db: prometheus_client skips it)


def default_workers() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - no affinity on this platform
        return max(1, os.cpu_count() or 1)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, then finish in-flight calls within the grace period."""
    from shared.runtime import Runtime

    runtime = Runtime()
    runtime.check()  # a model without a price stops the start, before anything listens
    if args.worker_fd is not None:
        return _serve(runtime, args, sockets=[_inherited_socket(args.worker_fd)], ready_fd=args.ready_fd)
    workers = args.workers if args.workers is not None else default_workers()
    note = ""
    if workers > 1 and runtime.settings.store_url.endswith(":memory:"):
        if args.workers is not None:
            store = runtime.settings.store_url
            print(f"multiagent: serve: --workers {workers} needs a store the workers share; {store} is one "
                  "database per process (use a file, e.g. sqlite:///./data/multiagent.db)", file=sys.stderr)
            return 2
        workers = 1  # the default asked for several: one process is what an in-memory store can serve
        note = ", 1 worker: an in-memory store is not shared between processes"
    print(f"multiagent: serving {len(runtime.catalog)} teams on http://{args.host}:{args.port} "
          f"(store {runtime.settings.store_url}, model {runtime.settings.model_provider}"
          f"{f', {workers} workers' if workers > 1 else note})", file=sys.stderr, flush=True)
    if workers == 1:
        return _serve(runtime, args, sockets=None)
    runtime.close()
    return _supervise(args, workers)


def _serve(runtime: Any, args: argparse.Namespace, sockets: list[Any] | None, ready_fd: int | None = None) -> int:
    """One worker: this process's event loop, on ``sockets`` (inherited) or on host:port. A
    worker of a supervisor writes one byte to ``ready_fd`` once it accepts connections."""
    import uvicorn

    from shared.http.app import build_app
    from shared.http_limits import guard, server_options  # heads, concurrency, proxies: bounded before the app
    from shared.observability import shutdown

    app = build_app(runtime, serve_mode=True)
    grace = shutdown.grace_seconds()
    config = uvicorn.Config(guard(app, runtime.settings), host=args.host, port=args.port, log_level="warning",
                            access_log=False,
                            timeout_graceful_shutdown=grace,  # type: ignore[arg-type]  # a float works (asyncio.wait_for)
                            **server_options(runtime.settings, platform=False))
    server = uvicorn.Server(config) if ready_fd is None else _reporting_server(config, ready_fd)
    shutdown.prepare(server)  # SIGTERM: stop listening, finish in-flight calls up to the grace, exit 0
    server.run(sockets=sockets)
    shutdown.finish(runtime)
    if not server.started:
        return 1  # uvicorn said why (the port is taken, ...)
    return 0


def _reporting_server(config: Any, ready_fd: int) -> Any:
    """A ``uvicorn.Server`` that tells its supervisor (one byte on ``ready_fd``) when it accepts."""
    import uvicorn

    class ReportingServer(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                try:
                    os.write(ready_fd, b".")
                    os.close(ready_fd)
                except OSError:  # the supervisor is gone: this worker dies with it
                    pass

    return ReportingServer(config)


def _inherited_socket(fd: int) -> Any:
    import socket

    return socket.socket(fileno=fd)


def _supervise(args: argparse.Namespace, workers: int) -> int:
    """Bind host:port, start ``workers`` worker processes on it, pass SIGTERM/SIGINT on, and
    exit when they all have (0 when every one exited cleanly)."""
    import shutil
    import socket
    import subprocess
    import tempfile
    import threading

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET  # as uvicorn binds `--host ::`
    try:
        listener = socket.create_server((args.host, args.port), family=family, backlog=2048)
    except OSError as exc:
        print(f"multiagent: serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    listener.set_inheritable(True)
    _sweep_metrics_dirs()
    metrics_dir = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)  # /metrics: every worker's counters, summed
    held = _hold_metrics_dir(metrics_dir)  # a later start removes it if this process is SIGKILLed
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    ready_r, ready_w = os.pipe()  # each worker writes one byte once it accepts
    command = [sys.executable, "-m", "shared.cli", "serve", "--host", args.host, "--port", str(args.port),
               "--_worker-fd", str(listener.fileno()), "--_ready-fd", str(ready_w)]
    children: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []

    def tell(signum: int) -> None:
        for child in children:
            if child.returncode is None:
                try:
                    os.kill(child.pid, signum)
                except ProcessLookupError:  # exited, not reaped yet
                    pass

    def stop(signum: int, frame: Any) -> None:
        if not stopping:
            tell(signal.SIGTERM)  # each worker finishes its in-flight calls within the grace period
        elif signum == signal.SIGINT and signal.SIGINT not in stopping:
            tell(signal.SIGINT)  # a second Ctrl-C: stop without waiting, as one process does
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    try:
        for _ in range(workers):
            if stopping:
                break
            # its own session: a terminal's Ctrl-C reaches the supervisor only, which passes it on
            children.append(subprocess.Popen(command, env=env, pass_fds=(listener.fileno(), ready_w),
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             preexec_fn=_die_with_parent))
        listener.close()  # the workers hold it now
        os.close(ready_w)
        threading.Thread(target=_announce_ready, args=(ready_r, [c.pid for c in children]), daemon=True).start()
        if stopping:
            tell(signal.SIGTERM)  # a signal while they were being started may have missed the last one
        while any(child.returncode is None for child in children):
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:  # pragma: no cover - every child reaped already
                break
            child = next((c for c in children if c.pid == pid), None)
            if child is None:
                continue
            child.returncode = os.waitstatus_to_exitcode(status)
            _forget_worker_metrics(pid, metrics_dir)
            # killed by the SIGTERM it was sent before it could handle it: it was still starting, nothing in flight
            if child.returncode != 0 and not (stopping and child.returncode == -signal.SIGTERM):
                failed = True
            if not stopping:  # a worker ended on its own: stop the others rather than serve short-handed
                failed = True
                print(f"multiagent: serve: worker {pid} exited ({child.returncode}); stopping", file=sys.stderr,
                      flush=True)
                stop(signal.SIGTERM, None)
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                child.wait()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.close(held)
    return 1 if failed else 0


def _announce_ready(ready_r: int, pids: list[int]) -> None:
    """Say on stderr when every worker accepts connections (nothing if one ended before)."""
    got = 0
    with os.fdopen(ready_r, "rb", buffering=0) as pipe:
        while got < len(pids):
            chunk = pipe.read(len(pids))
            if not chunk:
                return
            got += len(chunk)
    print(f"multiagent: {len(pids)} workers ready (pids {', '.join(map(str, pids))})", file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    """In a worker, before it runs: SIGKILL when the supervisor dies (Linux), so a killed
    supervisor never leaves workers serving on its port."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _forget_worker_metrics(pid: int, metrics_dir: str) -> None:
    """Drop a finished worker's live gauges (its counters stay in the sums)."""
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - metrics never stop a shutdown
        pass


def _hold_metrics_dir(path: str) -> int:
    """Lock ``path`` for as long as this process lives (the kernel drops the lock when it dies, however).
    The descriptor is not inherited: the workers do not hold it."""
    import fcntl

    fd = os.open(os.path.join(path, METRICS_DIR_LOCK), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _sweep_metrics_dirs(min_age_s: float = 10.0) -> None:
    """Remove the metrics directories of supervisors that no longer run (killed with SIGKILL:
    no ``finally`` ran; their workers died with them). A running supervisor holds the lock in its
    directory; one being made (its lock not taken yet) is younger than ``min_age_s``."""
    import fcntl
    import glob
    import shutil
    import tempfile
    import time

    for path in glob.glob(os.path.join(tempfile.gettempdir(), METRICS_DIR_PREFIX + "*")):
        try:
            if os.stat(path).st_uid != os.getuid() or time.time() - os.stat(path).st_mtime < min_age_s:
                continue
            fd = os.open(os.path.join(path, METRICS_DIR_LOCK), os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue  # not ours, or not made by a supervisor that locks it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its supervisor runs
        finally:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
