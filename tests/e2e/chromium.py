"""Headless Chromium for the e2e tests: Debian's ``chromium``, driven by the playwright-core scripts
in tests/e2e/browser (both installed by scripts/test.d/chromium.sh); screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.live_server import REPO_ROOT

BROWSER_DIR = REPO_ROOT / "tests" / "e2e" / "browser"
ARTIFACTS = REPO_ROOT / "test-artifacts"


def browser_missing() -> str | None:
    """Why the browser cannot run on this machine, or ``None`` when it can."""
    if not Path("/usr/bin/chromium").exists():
        return "Debian chromium is not installed (scripts/test.d/chromium.sh installs it)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed in tests/e2e/browser (scripts/test.d/chromium.sh installs it)"
    return None


def run_script(script: str, *args: str, timeout: float = 90) -> dict[str, Any]:
    """``node tests/e2e/browser/SCRIPT ARGS``: the JSON of its last output line, once it exited 0 and said ``ok``."""
    ARTIFACTS.mkdir(exist_ok=True)
    proc = subprocess.run(["node", str(BROWSER_DIR / script), *args], cwd=BROWSER_DIR, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ok"], out
    return out
