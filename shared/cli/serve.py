"""``multiagent serve``: the gateway and every team (the only command that loads the HTTP stack).

One worker (the default on one CPU) serves in this process. With ``--workers N`` (default:
the CPUs this process may run on) this process binds the port and becomes a supervisor:
N worker processes (``multiagent serve --_worker-fd FD``) accept on that one socket, each
with its own event loop, and share the store (SQLite takes its write lock per transaction,
so budgets hold across them; ``sqlite:///:memory:`` is one database per process and is
refused). SIGTERM or SIGINT to the supervisor is passed on once to every worker, each
finishes its in-flight calls within the grace period, and the supervisor exits 0 when all
did. A worker dies with its supervisor. ``/metrics`` sums every worker's counters
(prometheus_client's multiprocess mode). The cloud entry points stay one process per instance.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any


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
        return _serve(runtime, args, sockets=[_inherited_socket(args.worker_fd)])
    workers = args.workers if args.workers is not None else default_workers()
    if workers > 1 and runtime.settings.store_url.endswith(":memory:"):
        if args.workers is not None:
            store = runtime.settings.store_url
            print(f"multiagent: serve: --workers {workers} needs a store the workers share; {store} is one "
                  "database per process (use a file, e.g. sqlite:///./data/multiagent.db)", file=sys.stderr)
            return 2
        workers = 1  # the default asked for several: one process is what an in-memory store can serve
    print(f"multiagent: serving {len(runtime.catalog)} teams on http://{args.host}:{args.port} "
          f"(store {runtime.settings.store_url}, model {runtime.settings.model_provider}"
          f"{f', {workers} workers' if workers > 1 else ''})", file=sys.stderr, flush=True)
    if workers == 1:
        return _serve(runtime, args, sockets=None)
    runtime.close()
    return _supervise(args, workers)


def _serve(runtime: Any, args: argparse.Namespace, sockets: list[Any] | None) -> int:
    """One worker: this process's event loop, on ``sockets`` (inherited) or on host:port."""
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
    server = uvicorn.Server(config)
    shutdown.prepare()  # SIGTERM: stop listening, finish in-flight calls up to the grace, exit 0
    server.run(sockets=sockets)
    shutdown.finish(runtime)
    if not server.started:
        return 1  # uvicorn said why (the port is taken, ...)
    return 0


def _inherited_socket(fd: int) -> Any:
    import socket

    return socket.socket(fileno=fd)


def _supervise(args: argparse.Namespace, workers: int) -> int:
    """Bind host:port, start ``workers`` worker processes on it, pass SIGTERM/SIGINT on once,
    and exit when they all have (0 when every one exited 0)."""
    import shutil
    import socket
    import subprocess
    import tempfile

    try:
        listener = socket.create_server((args.host, args.port), backlog=2048)
    except OSError as exc:
        print(f"multiagent: serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    listener.set_inheritable(True)
    metrics_dir = tempfile.mkdtemp(prefix="multiagent-metrics-")  # /metrics: every worker's counters, summed
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    command = [sys.executable, "-m", "shared.cli", "serve", "--host", args.host, "--port", str(args.port),
               "--_worker-fd", str(listener.fileno())]
    children: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if stopping:
            return  # passed on once: a second signal would cut the workers' grace short
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    try:
        for _ in range(workers):
            # its own session: a terminal's Ctrl-C reaches the supervisor, which passes it on once
            children.append(subprocess.Popen(command, env=env, pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL,
                                             start_new_session=True, preexec_fn=_die_with_parent))
        listener.close()  # the workers hold it now
        while any(child.returncode is None for child in children):
            try:
                pid, status = os.wait()
            except ChildProcessError:  # reaped already (by Popen.poll in stop)
                break
            child = next((c for c in children if c.pid == pid), None)
            if child is None:
                continue
            child.returncode = os.waitstatus_to_exitcode(status)
            _forget_worker_metrics(pid)
            if child.returncode != 0:
                failed = True
            if not stopping:  # a worker ended on its own: stop the others rather than serve short-handed
                failed = True
                print(f"multiagent: serve: worker {pid} exited ({child.returncode}); stopping", file=sys.stderr,
                      flush=True)
                stop(signal.SIGTERM, None)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 1 if failed or any(child.returncode != 0 for child in children) else 0


def _die_with_parent() -> None:
    """In a worker, before it runs: SIGKILL when the supervisor dies (Linux), so a killed
    supervisor never leaves workers serving on its port."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _forget_worker_metrics(pid: int) -> None:
    """Drop a finished worker's live gauges (its counters stay in the sums)."""
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - metrics never stop a shutdown
        pass
