"""Google's Firestore emulator on loopback, started once per test session.

``fresh_store_url`` hands every test its own ``demo-<hex>`` project, so tests never see
each other's data on the shared emulator. The emulator is a Java process started by the
Cloud SDK's shell launcher (``platform/cloud-firestore-emulator/cloud_firestore_emulator``,
what ``gcloud emulators firestore start`` runs too), so it gets its own process group and
the whole group is killed at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from tests.ports import free_port

INSTALL_HINT = (
    "Firestore emulator not installed: apt-get install google-cloud-cli-firestore-emulator (Google Cloud SDK apt "
    "repo) or gcloud components install cloud-firestore-emulator; it needs Java 11+"
)
READY_TIMEOUT_S = 60.0

_lock = threading.Lock()
_server: Emulator | None = None


class EmulatorNotInstalled(RuntimeError):
    """Neither the emulator launcher nor Java could be found."""


def _sdk_roots() -> list[Path]:
    roots = [
        os.environ.get("CLOUDSDK_ROOT_DIR", ""),
        "/usr/lib/google-cloud-sdk",
        "/usr/share/google-cloud-sdk",
        "/opt/google-cloud-sdk",
        str(Path.home() / "google-cloud-sdk"),
    ]
    gcloud = shutil.which("gcloud")
    if gcloud:
        real = Path(gcloud).resolve()  # .../google-cloud-sdk/bin/gcloud
        roots.append(str(real.parent.parent))
    return [Path(r) for r in roots if r]


def emulator_command(port: int) -> list[str]:
    """The command that starts the emulator on 127.0.0.1:``port``."""
    if not shutil.which(os.environ.get("JAVA", "java")):
        raise EmulatorNotInstalled(INSTALL_HINT)
    for root in _sdk_roots():
        launcher = root / "platform" / "cloud-firestore-emulator" / "cloud_firestore_emulator"
        if launcher.is_file() and (launcher.parent / "cloud-firestore-emulator.jar").is_file():
            return [str(launcher), "start", "--host=127.0.0.1", f"--port={port}"]
    raise EmulatorNotInstalled(INSTALL_HINT)



class Emulator:
    """One Firestore emulator process group on a loopback port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="firestore-emulator-", suffix=".log", delete=False)
        self.log_path = self._log.name
        self.proc = subprocess.Popen(
            emulator_command(self.port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the launcher's java child dies with it
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Block until ``GET /`` answers ``Ok``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Firestore emulator exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as resp:
                    if resp.read().strip() == b"Ok":
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Firestore emulator not ready on {self.host} after {timeout}s: {self.log_tail()}")

    def warm_up(self) -> None:
        """Run each kind of call once with a generous timeout: the JVM's first commit can take
        seconds, longer than the store's short per-call timeout."""
        from google.cloud import firestore

        previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = self.host  # read once, when the client is made
        try:
            client = firestore.Client(project="demo-warmup")
        finally:
            if previous is None:
                del os.environ["FIRESTORE_EMULATOR_HOST"]
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = previous
        try:
            ref = client.collection("warm").document("up")
            batch = client.batch()
            batch.set(ref, {"n": firestore.Increment(1)}, merge=True)
            batch.commit(timeout=60)
            snap = ref.get(timeout=60)
            ref.update({"n": 0}, option=client.write_option(last_update_time=snap.update_time), timeout=60)
            list(client.get_all([ref], timeout=60))
            list(client.collection("warm").where(filter=firestore.FieldFilter("n", ">=", 0)).stream(timeout=60))
        finally:
            client.close()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Kill the whole process group (the shell launcher and its java child)."""
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:  # the launcher may be gone while java lingers in the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def start_server() -> str:
    """Start the session's emulator once; set FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT;
    return ``host:port``. Skips the calling test when the emulator is not installed."""
    global _server
    with _lock:
        if _server is None:
            try:
                emulator = Emulator()
            except EmulatorNotInstalled as exc:
                import pytest

                pytest.skip(str(exc))
            try:
                emulator.wait_ready()
                emulator.warm_up()
            except BaseException:
                emulator.stop()
                raise
            _server = emulator
            atexit.register(stop_server)
        os.environ["FIRESTORE_EMULATOR_HOST"] = _server.host
        os.environ["GOOGLE_CLOUD_PROJECT"] = "demo-multiagent"
        return _server.host


def stop_server() -> None:
    """Stop the session's emulator (idempotent)."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.stop()
        if os.environ.get("FIRESTORE_EMULATOR_HOST") == server.host:
            del os.environ["FIRESTORE_EMULATOR_HOST"]


def fresh_store_url(tmp_path: Path | None = None) -> str:
    """A ``firestore://`` URL of a project no other test uses, on the session's emulator."""
    start_server()
    return f"firestore://demo-{uuid.uuid4().hex[:16]}"
