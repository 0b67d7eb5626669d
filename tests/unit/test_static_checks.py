"""The tree stays lint-clean and `shared/` type-checks under mypy --strict (DESIGN habits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean():
    out = run(str(BIN / "ruff"), "check", "shared", "functions", "tests", "scripts", "sdk/python")
    assert out.returncode == 0, out.stdout[-3000:]


def test_mypy_strict_on_shared():
    out = run(sys.executable, "-m", "mypy", "--strict", "--no-incremental", "shared")
    assert out.returncode == 0, out.stdout[-3000:]
