"""Once the model provider is built (the warm-up), what the process has loaded is out of the
cyclic collector's sight and young collections are rarer (shared/heap.py). Checked in a fresh
interpreter: the collector's state is per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json
from shared.config import Settings
from shared.runtime import Runtime
before = {"frozen": gc.get_freeze_count(), "young": gc.get_threshold()[0]}
runtime = Runtime(Settings.from_env({"MULTIAGENT_STORE": "sqlite:///:memory:", "MULTIAGENT_MODEL_PROVIDER": "offline"}))
runtime.warm_up()
runtime._provider_thread.join(60)
assert runtime.provider_ready
print(json.dumps({"before": before, "after": {"frozen": gc.get_freeze_count(), "young": gc.get_threshold()[0]}}))
"""


def test_the_warm_up_settles_the_heap() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state["before"] == {"frozen": 0, "young": 700}
    assert state["after"]["frozen"] > 10_000  # the SDK, pydantic and the catalog: tens of thousands of objects
    assert state["after"]["young"] >= 10_000
