"""The README's quick start, run as written: every command of its code blocks, read out of
README.md (so this test breaks when the README drifts), in bash, from the repo root, with
the repo's .venv. Only what a fresh terminal would not share with this suite is changed:
the store is a temporary SQLite file (MULTIAGENT_STORE), the port a free one instead of
8080, and ``export KEY=mak_...`` takes the key the command before it printed.

It covers both halves: the offline model ($0 everywhere) and the simulated budget demo
(no key, no network): the day's spend rises call by call, a 402 budget-exceeded problem
arrives, ``multiagent usage`` and ``GET /v1/usage`` agree, and the dashboard's budget bar
moves under a "simulated costs" badge (headless Chromium, as in test_dashboard.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.catalog import load_catalog
from tests.e2e.chromium import ARTIFACTS, browser_missing, run_script
from tests.e2e.live_server import REPO_ROOT
from tests.ports import free_port

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
README_PORT = "8080"  # what the quick start's URLs assume (multiagent serve's default)


# ---------- the README, parsed ----------

def quick_start_blocks(text: str) -> list[str]:
    """The ```sh code blocks of the README's "## Quick start" section, in order."""
    assert "\n## Quick start\n" in text, "README.md has no '## Quick start' section"
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)


def _complete(command: str) -> bool:
    if command.rstrip().endswith("\\"):
        return False
    return subprocess.run(["bash", "-n", "-c", command], capture_output=True).returncode == 0


def shell_commands(block: str) -> list[str]:
    """The block's commands as bash reads them (continuation lines and loops kept whole)."""
    commands, pending = [], ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line
        if _complete(pending):
            commands.append(pending)
            pending = ""
    assert not pending, f"an unfinished command in the README's quick start: {pending!r}"
    return commands


# ---------- running it ----------

@dataclass
class Step:
    command: str  # as the README writes it
    ran: str  # as run (port substituted), or why it was not run
    returncode: int | None = None
    output: str = ""  # stdout and stderr interleaved, as a terminal shows them


@dataclass
class Walkthrough:
    """A terminal (this process) running the quick start; the server is the other terminal."""

    workdir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    servers: list[tuple[Step, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    before: dict[str, Callable[[Walkthrough], None]] = field(default_factory=dict)  # command prefix -> hook
    shots: dict[str, dict[str, Any]] = field(default_factory=dict)  # dashboard views, by moment
    browser_missing: str | None = None  # why the dashboard could not be looked at

    def __post_init__(self) -> None:
        # a fresh terminal: nothing of this suite's model or store settings, no API key
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("MULTIAGENT_", "ANTHROPIC_")) and k not in ("KEY", "PYTHONPATH")}
        self.env["MULTIAGENT_STORE"] = f"sqlite:///{self.workdir}/quickstart.db"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def localize(self, command: str) -> str:
        """The README's port 8080 -> this run's free port."""
        command = re.sub(r"\b(localhost|127\.0\.0\.1):" + README_PORT + r"\b", rf"\1:{self.port}", command)
        return re.sub(r"(^|\s)(scripts/serve\.sh)\b", rf"\1\2 --port {self.port}", command, count=1)

    def run(self, command: str) -> Step:
        for prefix, hook in self.before.items():
            if command.startswith(prefix):
                hook(self)
        if re.search(r"(^|\s)scripts/test\.sh\b", command):
            step = Step(command, "not run: scripts/test.sh runs the whole suite, this test included")
        elif re.search(r"(^|\s)scripts/serve\.sh\b", command):
            step = self._serve(command)
        elif m := re.fullmatch(r"export (\w+)=mak_\.\.\.(\s+#.*)?", command):
            printed = re.findall(r"\bmak_[A-Za-z0-9_-]{20,}", self.steps[-1].output)
            assert printed, f"the command before {command!r} printed no API key:\n{self.steps[-1].output}"
            self.env[m.group(1)] = printed[-1]
            step = Step(command, f"export {m.group(1)}=<the key printed above>", 0)
        else:
            ran = self.localize(command)
            proc = subprocess.run(["bash", "-c", ran], cwd=REPO_ROOT, env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=240)
            step = Step(command, ran, proc.returncode, proc.stdout)
            assert proc.returncode == 0, f"README command failed ({proc.returncode}): {ran}\n{proc.stdout}"
        self.steps.append(step)
        return step

    def _serve(self, command: str) -> Step:
        self.stop_server(signal.SIGINT)  # "Stop the server (Ctrl-C)"
        ran = self.localize(command)
        log = self.workdir / f"serve-{len(self.servers)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(["bash", "-c", ran], cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        step = Step(command, ran)
        self.servers.append((step, proc, log))
        deadline = time.monotonic() + 120  # serve.sh may have to install first
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"{ran} exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code in (200, 503):
                    return step
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{ran} did not serve within 120 s:\n{log.read_text(errors='replace')[-3000:]}")

    def stop_server(self, sig: int = signal.SIGTERM) -> None:
        if not self.servers or self.servers[-1][1].poll() is not None:
            return
        step, proc, _ = self.servers[-1]
        os.killpg(proc.pid, sig)
        try:
            step.returncode = proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            raise AssertionError(f"{step.ran} did not stop on signal {sig}") from None

    def step(self, pattern: str) -> Step:
        """The last step whose README command matches ``pattern``."""
        found = [s for s in self.steps if re.search(pattern, s.command)]
        assert found, f"no README quick-start command matches {pattern!r}"
        return found[-1]

    def server_log(self, index: int) -> str:
        return self.servers[index][2].read_text(errors="replace")


def dashboard(walk: Walkthrough, name: str) -> dict[str, Any]:
    """What /dashboard#key=$KEY shows a person (tests/e2e/browser/quickstart.cjs)."""
    out = run_script("quickstart.cjs", f"{walk.url}/dashboard#key={walk.env['KEY']}",
                     str(ARTIFACTS / f"quickstart-{name}.png"))
    assert not out["errors"], out
    assert out["data"]["state"] == "ready", out
    return out["data"]  # type: ignore[no-any-return]


def _let_serve_sh_reuse_this_venv() -> None:
    """serve.sh installs the project into .venv unless its stamp for this pyproject.toml is
    there. This suite already runs from that .venv with the project installed editable (by
    scripts/test.sh, with more extras than serve.sh asks for), so there is nothing to add;
    without the stamp, serve.sh would reinstall into the venv the running suite uses and
    delete test.sh's own stamp (its `rm -f .venv/.installed-*`)."""
    venv = REPO_ROOT / ".venv"
    stamp = venv / f".installed-{hashlib.sha1((REPO_ROOT / 'pyproject.toml').read_bytes()).hexdigest()[:12]}"
    if (venv / "bin" / "multiagent").exists() and not stamp.exists():
        stamp.touch()


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    _let_serve_sh_reuse_this_venv()
    walk = Walkthrough(tmp_path_factory.mktemp("quickstart"), browser_missing=browser_missing())

    def before_loop(w: Walkthrough) -> None:  # the budget demo's calls start: look at the dashboard first
        if w.browser_missing is None:
            w.shots["before"] = dashboard(w, "before")

    walk.before["for "] = before_loop
    try:
        for block in quick_start_blocks(README.read_text()):
            for command in shell_commands(block):
                walk.run(command)
        if walk.browser_missing is None:  # the README's last step: /dashboard#key=KEY
            walk.shots["after"] = dashboard(walk, "after")
        yield walk
    finally:
        walk.stop_server()


# ---------- what a newcomer should see ----------

def test_the_quick_start_is_the_one_this_test_runs(walkthrough: Walkthrough) -> None:
    ran = [s.command for s in walkthrough.steps]
    assert ran[0].startswith("scripts/serve.sh") and ran[1].startswith("scripts/test.sh")
    assert any(re.match(r"MULTIAGENT_MODEL_PROVIDER=simulated scripts/serve\.sh", c) for c in ran)
    assert any("tenants create demo --daily-usd 0.05" in c for c in ran)
    # the offline server stopped on Ctrl-C like a terminal's, before the simulated one started
    offline_server = walkthrough.servers[0]
    assert offline_server[1].poll() is not None and len(walkthrough.servers) == 2


def test_offline_half_costs_nothing(walkthrough: Walkthrough) -> None:
    log = walkthrough.server_log(0)
    assert "offline model" in log and "$0" in log  # the start-up banner
    teams = walkthrough.step(r"/v1/teams \|").output.split()
    assert len(teams) == 24 and '"finance"' in teams
    answer = json.loads(walkthrough.step(r"finance/analyze_investment").output)
    assert answer["model"] == "offline" and answer["usage"]["cost_usd"] == 0
    assert re.search(r"^-- offline, 0\+0 tokens, \$0\.0+, ", walkthrough.step(r"invoke marketing").output, re.M)
    first_usage = next(s for s in walkthrough.steps if re.fullmatch(r"\.venv/bin/multiagent usage", s.command))
    [line] = [ln for ln in first_usage.output.splitlines() if re.match(r"ten_\w+: today", ln)]
    assert amounts(line)[:2] == [0, 5] and "(simulated)" not in first_usage.output


def amounts(text: str) -> list[float]:
    """The dollar amounts in ``text``, in order ($1,234.50 -> 1234.5)."""
    return [float(a.replace(",", "")) for a in re.findall(r"\$(\d[\d,]*(?:\.\d+)?)", text)]


@dataclass
class DemoCall:
    cost: float | None  # None: refused
    spent_after: float
    line: str


def demo_calls(output: str) -> list[DemoCall]:
    """The loop's output: each call's line (cost, or the 402), then the day's spend."""
    calls: list[DemoCall] = []
    pending: tuple[float | None, str] | None = None
    for line in output.splitlines():
        if m := re.match(r"-- (\S+), (\d+)\+(\d+) tokens, \$([\d.]+), ", line):
            assert m.group(1) == f"simulated:{load_catalog().team('legal').model}", line
            assert int(m.group(2)) > 0 and int(m.group(3)) > 0, line
            pending = (float(m.group(4)), line)
        elif "402 Budget exceeded" in line:
            pending = (None, line)
        elif re.match(r"multiagent: (?!\d{3} )", line):
            continue  # the CLI's notes on stderr (e.g. which server it calls), not a result
        elif line.startswith("{"):
            assert pending is not None, f"a spend line with no call before it: {line}"
            calls.append(DemoCall(pending[0], json.loads(line)["day"], pending[1]))
            pending = None
        else:
            raise AssertionError(f"unexpected line in the budget demo's output: {line!r}")
    return calls


def test_simulated_spend_rises_call_by_call_until_a_402(walkthrough: Walkthrough) -> None:
    assert "Costs are simulated" in walkthrough.server_log(1)  # the simulated server's start-up banner
    calls = demo_calls(walkthrough.step(r"^for ").output)
    answered = [c for c in calls if c.cost is not None]
    refused = [c for c in calls if c.cost is None]
    assert len(answered) >= 2 and refused, [c.line for c in calls]
    assert calls.index(refused[0]) == len(answered)  # answered until the cap, refused from then on
    spent = 0.0
    for call in calls:
        spent += call.cost or 0.0  # the day's spend grows by each answered call's cost, not at all on a 402
        assert call.spent_after == pytest.approx(spent, abs=2e-6), call.line
    assert 0 < spent <= 0.05

    # the refusal the CLI reported is the contract's problem: the same call over HTTP
    loop = walkthrough.step(r"^for ").command
    team, operation, payload = re.search(r"invoke (\S+) (\S+) --input '([^']*)'", loop).groups()  # type: ignore[union-attr]
    resp = httpx.post(f"{walkthrough.url}/v1/teams/{team}/{operation}", content=payload,
                      headers={"authorization": f"Bearer {walkthrough.env['KEY']}",
                               "content-type": "application/json"}, timeout=60)
    assert resp.status_code == 402 and resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["type"].endswith("budget-exceeded") and problem["window"] == "day"
    assert problem["limit_usd"] == 0.05 and problem["spent_usd"] == pytest.approx(spent, abs=2e-6)


def test_cli_usage_and_the_api_agree_and_say_simulated(walkthrough: Walkthrough) -> None:
    api = httpx.get(f"{walkthrough.url}/v1/usage", headers={"authorization": f"Bearer {walkthrough.env['KEY']}"},
                    timeout=30).json()
    demo = api["tenant_id"]  # KEY is the key `tenants create demo` printed
    assert demo in walkthrough.step(r"tenants create demo").output
    cli = subprocess.run([".venv/bin/multiagent", "usage", "--json"], cwd=REPO_ROOT, env=walkthrough.env,
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    [report] = [r for r in json.loads(cli.stdout)["usage"] if r["tenant_id"] == demo]
    assert report["spent_usd"] == api["spent_usd"] and api["spent_usd"]["day"] > 0
    assert report["by_model"] == api["by_model"]
    assert [r["model"] for r in api["by_model"]] == [f"simulated:{load_catalog().team('legal').model}"]
    assert sum(r["cost_usd"] for r in api["by_model"]) == pytest.approx(api["spent_usd"]["day"])

    text = walkthrough.step(r"^\.venv/bin/multiagent usage$").output  # the README's last command
    [line] = [ln for ln in text.splitlines() if ln.startswith(demo)]
    assert amounts(line)[:2] == [pytest.approx(api["spent_usd"]["day"]), 0.05] and line.endswith("(simulated)")
    assert re.search(r"^\s+simulated:claude-\S+\s+\d+ calls", text, re.M)


def test_dashboard_budget_bar_moves_under_a_simulated_badge(walkthrough: Walkthrough) -> None:
    if walkthrough.browser_missing:
        pytest.skip(walkthrough.browser_missing)
    before, after = walkthrough.shots["before"], walkthrough.shots["after"]
    usage = httpx.get(f"{walkthrough.url}/v1/usage", headers={"authorization": f"Bearer {walkthrough.env['KEY']}"},
                      timeout=30).json()
    day = next(w for w in usage["windows"] if w["window"] == "day")

    assert before["badge"] is None or not before["badge"]["visible"]  # nothing simulated spent yet
    [bar_before] = [w for w in before["windows"] if w["window"] == "day"]
    assert bar_before["fillFraction"] == 0 and bar_before["text"] == "$0.05 left"

    assert after["badge"]["visible"] and after["badge"]["text"] == "simulated costs"
    assert float(after["kpiDay"]["value"]) == pytest.approx(usage["spent_usd"]["day"])
    [bar] = [w for w in after["windows"] if w["window"] == "day"]
    assert bar["fillFraction"] == pytest.approx(day["spent_usd"] / day["limit_usd"], abs=0.01)
    assert bar["fillFraction"] > 0.5
    assert float(bar["remaining"]) == pytest.approx(day["remaining_usd"])
    assert "of $0.05 used" in bar["label"] and "spent of $0.05" in bar["foot"]
