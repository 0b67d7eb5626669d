"""A serialised moto DynamoDB server for the integration tests.

Plain threaded ``moto_server`` runs requests concurrently against shared in-memory state
and loses conditional updates under contention (two transactions both see "fits"). Real
DynamoDB serialises writes per item; here a WSGI middleware holds one lock around each
whole request (response body included), which is stricter and good enough for tests.

Run as ``python -m tests.integration.server_dynamodb --port N`` (``0`` picks a free port);
it prints ``READY <port>`` once listening. The test process starts one such server lazily
per session (:func:`start_server`, stopped at exit) and points boto3 at it through the
standard ``AWS_ENDPOINT_URL`` variables; :class:`MotoServer` starts private instances for
tests that must kill theirs.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.processes import stop_process

REGION = "us-east-1"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT_S = 60.0


class MotoServer:
    """One moto server subprocess on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        """The endpoint URL (valid once started)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the subprocess and wait for its READY line; returns the endpoint URL."""
        self._log = tempfile.NamedTemporaryFile(prefix="moto-dynamodb-", suffix=".log", delete=False)  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.server_dynamodb", "--port", str(self.port)],
            cwd=_REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        lines: list[str] = []
        stdout = proc.stdout
        reader = threading.Thread(target=lambda: lines.append(stdout.readline() if stdout else ""), daemon=True)
        reader.start()
        reader.join(_START_TIMEOUT_S)
        line = lines[0].strip() if lines else ""
        if not line.startswith("READY"):
            proc.kill()
            proc.wait()
            log = Path(self._log.name).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"moto DynamoDB server did not start (got {line!r}); log:\n{log}")
        self.port = int(line.split()[1])
        self.proc = proc
        return self.url

    def stop(self) -> None:
        """Terminate the subprocess (its state is lost)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_process(proc)
        if proc.stdout:
            proc.stdout.close()
        if self._log is not None:
            self._log.close()


_lock = threading.Lock()
_server: MotoServer | None = None
_last_port = 0


def start_server() -> str:
    """Start the session's shared server if it is not running; returns its endpoint URL.

    Restarting after :func:`stop_server` reuses the previous port when it is free, so
    clients created before the outage reconnect once the store is back (with empty state).
    """
    global _server, _last_port
    with _lock:
        if _server is None:
            server = MotoServer(_last_port)
            try:
                server.start()
            except RuntimeError:
                if not _last_port:
                    raise
                server = MotoServer(0)
                server.start()
            _server, _last_port = server, server.port
        os.environ["AWS_ENDPOINT_URL"] = _server.url
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = _server.url
        os.environ["AWS_ACCESS_KEY_ID"] = "testing"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
        os.environ["AWS_DEFAULT_REGION"] = REGION
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        return _server.url


def stop_server() -> None:
    """Stop the session's shared server (the next :func:`start_server` starts a new one)."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.stop()


atexit.register(stop_server)


def fresh_store_url(tmp_path: Path) -> str:
    """A store URL with a table prefix no other test uses, on the session's server."""
    start_server()
    return f"dynamodb://t{uuid.uuid4().hex[:16]}?region={REGION}"


# the server process ---------------------------------------------------------------------------
class SerialisedApp:
    """WSGI middleware: one request at a time, body included (moto's state is not atomic)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def _serve(port: int) -> None:
    import logging

    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = SerialisedApp(DomainDispatcherApplication(create_backend_app))
    # make_server is what werkzeug's run_simple(threaded=True) runs; calling it directly
    # lets READY be printed only once the socket is bound.
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"READY {server.server_address[1]}", flush=True)
    # Nobody reads stdout after READY: send anything moto prints later to the log instead of
    # letting it fill the pipe and block the server.
    os.dup2(2, 1)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _serve(args.port)


if __name__ == "__main__":
    main()
