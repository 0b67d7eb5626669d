"""The money adversary: try to make the provider bill a tenant more than its cap, or more than the ledger shows.

Real ``multiagent serve`` processes share one store; the model is the fake Messages API in ``tokens_per_byte``
billing mode (one token per UTF-8 byte the model reads: the densest realistic tokenizer), which bills every request
it accepts, also when the client walked away (a provider keeps generating). Every case ends with the same check
(:func:`check_money`, contract "Budgets (the guarantee)" rules 1-3):

* what the provider billed for the tenant's calls <= the tenant's cap;
* the ledger's sum >= what the provider billed (every request that may have reached it is charged);
* the day and month windows' spent == the ledger's sum, and nothing is left reserved (after ``GET /v1/usage``,
  which charges expired reservations).

Attacks: a dense 100,000-character contract (alone, and 40 at once over two processes); SIGKILL with calls in
flight; SIGSTOP past the reservations' expiry while another process spends; SSE clients that walk away; a model
request that times out and is retried; bogus usage reported by the provider.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from functions.teams.legal import TEAM as LEGAL
from shared.budget import day_key, month_key
from shared.catalog import ASK, load_catalog
from shared.config import Settings
from shared.pricing import cost_micros, micros, usd
from shared.store import open_store
from shared.store.base import LedgerEntry
from shared.tenants import TenantAdmin
from tests.conftest import BACKENDS
from tests.e2e.servers import ServeProcess, server_env
from tests.fakes.messages_api import FakeMessagesServer, FakeState, billed_micros, billed_tokens, delay
from tests.integration import servers as backing

pytestmark = pytest.mark.e2e

QUESTION = {"question": "Is a verbal agreement binding?"}
# what legal/ask's worst case covers at least: max_tokens of output at the team's model
ASK_OUTPUT_WORST = cost_micros(LEGAL.model, 0, ASK.max_tokens)
# expiry = deadline + margin = ~3 s after a reservation: crashed and paused calls are charged quickly
FAST_EXPIRY = {"MULTIAGENT_DEADLINE_S": "2", "MULTIAGENT_RESERVATION_MARGIN_S": "1"}
QUIET = {"MULTIAGENT_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", "MULTIAGENT_SHUTDOWN_GRACE_S": "1"}


# ----------------------------------------------------------------------------------------------------------------------
# Fixtures: one fake provider for the module, two servers per backend, two "quick timeout" servers on SQLite
# ----------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeMessagesServer]:
    with FakeMessagesServer(FakeState(billing="tokens_per_byte")) as server:
        yield server


@pytest.fixture
def fake(provider: FakeMessagesServer) -> Iterator[FakeMessagesServer]:
    """The provider with a fresh log and script (tokens_per_byte billing, no delay, no usage override)."""
    provider.state.reset()
    yield provider
    provider.state.reset()


@dataclass
class Stack:
    """Servers on one store."""

    name: str
    store_url: str
    env: dict[str, str]
    servers: list[ServeProcess] = field(default_factory=list)

    def start(self, count: int) -> Stack:
        fresh = [ServeProcess(self.env) for _ in range(count)]
        self.servers.extend(fresh)
        for s in fresh:
            s.wait_ready()
        return self

    def replace(self, index: int) -> ServeProcess:
        """A new server in place of ``servers[index]`` (already stopped or killed); not waited for."""
        self.servers[index].stop()
        self.servers[index] = ServeProcess(self.env)
        return self.servers[index]

    def stop(self) -> None:
        for s in self.servers:
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGCONT)  # should a test have left it stopped
            s.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, provider: FakeMessagesServer,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two servers on a fresh store of each backend, fast reservation expiry."""
    url = backing.fresh_store_url(request.param, tmp_path_factory.mktemp(f"money-{request.param}"))
    stack = Stack(request.param, url, server_env(url, provider.url, **QUIET, **FAST_EXPIRY))
    try:
        yield stack.start(2)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def quick(provider: FakeMessagesServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two servers on one SQLite store: fast expiry, and a model request times out after 1 s."""
    url = backing.fresh_store_url("sqlite", tmp_path_factory.mktemp("money-quick"))
    stack = Stack("sqlite", url, server_env(url, provider.url, **QUIET, **FAST_EXPIRY, MULTIAGENT_MODEL_TIMEOUT_S="1"))
    try:
        yield stack.start(2)
    finally:
        stack.stop()


# ----------------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class Tenant:
    id: str
    key: str
    cap_usd: float

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}


def make_tenant(stack: Stack, cap_usd: float) -> Tenant:
    store = open_store(stack.store_url)
    try:
        store.init()
        admin = TenantAdmin(store, Settings.from_env({"MULTIAGENT_STORE": stack.store_url}), load_catalog())
        tenant, key = admin.create(f"adversary-{uuid.uuid4().hex[:8]}", daily_usd=cap_usd, rpm=10_000,
                                   tpm=100_000_000)  # names are unique per store
    finally:
        store.close()
    return Tenant(tenant.id, key, cap_usd)


def call(server: ServeProcess, tenant: Tenant, body: dict[str, Any] | None = None, operation: str = "legal/ask",
         timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/teams/{operation}", json=body or QUESTION, headers=tenant.auth,
                      timeout=timeout)


def usage(server: ServeProcess, tenant: Tenant) -> dict[str, Any]:
    """``GET /v1/usage`` (which charges the tenant's expired reservations)."""
    resp = httpx.get(f"{server.url}/v1/usage", headers=tenant.auth, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 15, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def provider_log(fake: FakeMessagesServer, timeout: float = 15) -> list[dict[str, Any]]:
    """The provider's log once no request is in flight any more."""
    wait_for("the provider to finish its requests",
             lambda: all(e["finished_at"] is not None for e in fake.state.log()), timeout)
    return fake.state.log()


def wait_until_nothing_reserved(server: ServeProcess, tenant: Tenant, timeout: float = 15) -> dict[str, Any]:
    """Poll ``GET /v1/usage`` until no reservation is held (expired ones are charged by the call itself)."""
    box: dict[str, Any] = {}

    def done() -> bool:
        box["usage"] = usage(server, tenant)
        return all(v == 0 for v in box["usage"]["reserved_usd"].values())

    wait_for("the tenant's reservations to be settled or charged", done, timeout, every=0.2)
    return box["usage"]


@dataclass
class Money:
    billed_micros: int
    billed_requests: int
    ledger: list[LedgerEntry]
    spent_micros: int

    @property
    def ledger_micros(self) -> int:
        return sum(e.cost_micros for e in self.ledger)

    @property
    def unsettled(self) -> list[LedgerEntry]:
        return [e for e in self.ledger if getattr(e, "unsettled", False)]


def check_money(stack: Stack, tenant: Tenant, entries: list[dict[str, Any]], server: ServeProcess | None = None
                ) -> Money:
    """The invariant, after ``GET /v1/usage`` on ``server``: billed <= cap, ledger >= billed, spent == ledger,
    nothing reserved, every ledger entry once and never negative."""
    if server is not None:
        usage(server, tenant)
    store = open_store(stack.store_url)
    now = time.time()
    try:
        windows = {w.key: w for w in store.get_windows(tenant.id, [day_key(now), month_key(now)])}
        ledger = store.list_ledger(tenant.id)
    finally:
        store.close()
    day, month = windows.get(day_key(now)), windows.get(month_key(now))
    billed = billed_micros(entries)
    money = Money(billed, billed_tokens(entries)["requests"], ledger, day.spent_micros if day else 0)
    cap = micros(tenant.cap_usd)
    assert billed <= cap, f"the provider billed ${usd(billed)} for this tenant's calls: over its ${tenant.cap_usd} cap"
    assert money.ledger_micros >= billed, (
        f"the ledger charges ${usd(money.ledger_micros)} ({len(ledger)} entries) but the provider billed "
        f"${usd(billed)} ({money.billed_requests} requests)")
    assert all(e.cost_micros >= 0 for e in ledger), [e.cost_micros for e in ledger]
    assert len({e.id for e in ledger}) == len(ledger), "a ledger entry is counted twice"
    spent = (day.spent_micros if day else 0, month.spent_micros if month else 0)
    assert spent == (money.ledger_micros, money.ledger_micros), f"spent (day, month) {spent} != ledger sum"
    reserved = (day.reserved_micros if day else 0, month.reserved_micros if month else 0)
    assert reserved == (0, 0), f"still reserved (day, month) after GET /v1/usage: {reserved}"
    return money


def dense_contract(seed: int, chars: int = 100_000) -> dict[str, Any]:
    """``legal/review_contract`` input whose contract is random printable ASCII: ~1 token per character."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0x20, 0x7F)]
    return {"contract_text": "".join(rng.choices(alphabet, k=chars)), "our_role": "customer"}


async def fire(jobs: list[tuple[ServeProcess, dict[str, Any], str]], tenant: Tenant) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=120) as client:
        return list(await asyncio.gather(*(
            client.post(f"{s.url}/v1/teams/{op}", json=body, headers=tenant.auth) for s, body, op in jobs)))


def in_background(count: int, fn: Callable[[], httpx.Response]) -> tuple[ThreadPoolExecutor, list[Any]]:
    pool = ThreadPoolExecutor(count)
    return pool, [pool.submit(fn) for _ in range(count)]


def outcomes(futures: list[Any], timeout: float = 60) -> list[httpx.Response | BaseException]:
    out: list[httpx.Response | BaseException] = []
    for f in futures:
        try:
            out.append(f.result(timeout))
        except Exception as exc:  # noqa: BLE001 - a killed server's calls end in transport errors
            out.append(exc)
    return out


def audit_types(server: ServeProcess, tenant: Tenant) -> list[str]:
    resp = httpx.get(f"{server.url}/v1/audit", params={"limit": "200"}, headers=tenant.auth, timeout=30)
    assert resp.status_code == 200, resp.text
    return [e["type"] for e in resp.json()["events"]]


# ----------------------------------------------------------------------------------------------------------------------
# (1) Dense input
# ----------------------------------------------------------------------------------------------------------------------


def test_dense_input_one_call(backend: Stack, fake: FakeMessagesServer) -> None:
    # given a $0.40 daily cap and a 100,000-character contract of random printable ASCII (~$0.50 of input alone)
    tenant = make_tenant(backend, 0.40)
    server = backend.servers[0]
    # when it is reviewed
    resp = call(server, tenant, dense_contract(1), "legal/review_contract")
    # then it is paid for or refused, never a 5xx, and the provider never bills more than the cap
    assert resp.status_code in (200, 402), resp.text
    check_money(backend, tenant, provider_log(fake), server)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the other backends: one call, and the kill case
def test_dense_input_40_at_once_over_two_processes(backend: Stack, fake: FakeMessagesServer) -> None:
    # given a cap that pays for one or two dense reviews, and 40 of them arriving at once on two servers
    tenant = make_tenant(backend, 3.0)
    jobs = [(backend.servers[i % 2], dense_contract(100 + i), "legal/review_contract") for i in range(40)]
    responses = asyncio.run(fire(jobs, tenant))
    statuses = [r.status_code for r in responses]
    # then only 200 and 402 answers, and the money adds up
    assert set(statuses) <= {200, 402}, [r.text[:300] for r in responses if r.status_code not in (200, 402)][:3]
    assert statuses.count(402) >= 1, statuses
    check_money(backend, tenant, provider_log(fake), backend.servers[0])


# ----------------------------------------------------------------------------------------------------------------------
# (2) SIGKILL with calls in flight
# ----------------------------------------------------------------------------------------------------------------------


def test_killed_instance_calls_are_charged_unsettled(backend: Stack, fake: FakeMessagesServer) -> None:
    # given ~10 calls of a tenant in flight at the provider on one server
    tenant = make_tenant(backend, 2.0)
    victim = backend.servers[1]
    fake.state.default_delay = 4.0
    pool, futures = in_background(10, lambda: call(victim, tenant, timeout=30))
    try:
        wait_for("10 calls at the provider", lambda: len(fake.state.log()) >= 10, timeout=20, every=0.05)
        # when the server is killed, and the platform starts another one
        victim.kill()
        outcomes(futures)
    finally:
        pool.shutdown(wait=False)
    restarted = backend.replace(1)
    entries = provider_log(fake)  # the provider finishes (and bills) what it was asked
    assert len(entries) == 10 and billed_tokens(entries)["requests"] == 10, entries
    restarted.wait_ready()
    # then once the reservations expire (~3 s), GET /v1/usage charges them at their worst case
    report = wait_until_nothing_reserved(restarted, tenant)
    money = check_money(backend, tenant, entries, restarted)
    assert len(money.unsettled) == 10, [(e.cost_micros, getattr(e, "unsettled", None)) for e in money.ledger]
    assert report["unsettled_usd"]["day"] == usd(sum(e.cost_micros for e in money.unsettled)), report


# ----------------------------------------------------------------------------------------------------------------------
# (3) SIGSTOP past expiry while another process spends
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_paused_instance_past_expiry_then_resumed(backend: Stack, fake: FakeMessagesServer) -> None:
    # given 4 calls in flight at the provider on server A, which is then paused (SIGSTOP)
    tenant = make_tenant(backend, 0.60)
    paused, other = backend.servers
    fake.state.default_delay = 0.5
    pool, futures = in_background(4, lambda: call(paused, tenant, timeout=60))
    try:
        wait_for("4 calls at the provider", lambda: len(fake.state.log()) >= 4, timeout=20, every=0.02)
        paused.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for("the provider to answer", lambda: all(e["finished_at"] for e in fake.state.log()), timeout=10)
            # when the reservations expire (charged unsettled by B's GET /v1/usage) and B spends what is left
            charged = wait_until_nothing_reserved(other, tenant)
            assert charged["spent_usd"]["day"] > 0, charged  # A's calls are charged at their worst case meanwhile
            fake.state.default_delay = 0.0
            spent_by_b = []
            for _ in range(40):
                resp = call(other, tenant)
                spent_by_b.append(resp.status_code)
                if resp.status_code != 200:
                    break
            assert spent_by_b[-1] == 402 and set(spent_by_b) <= {200, 402}, spent_by_b
        finally:
            paused.proc.send_signal(signal.SIGCONT)  # A wakes up with the provider's answers waiting for it
        results = outcomes(futures)
    finally:
        pool.shutdown(wait=False)
    # then the money adds up and each provider request has exactly one ledger entry: A's late settles replaced
    # the unsettled charges of its calls by their real cost (the provider had answered them all)
    entries = provider_log(fake)
    wait_until_nothing_reserved(other, tenant)
    money = check_money(backend, tenant, entries, other)
    assert len(money.ledger) == len(entries), (len(money.ledger), len(entries))
    assert not money.unsettled and money.ledger_micros == money.billed_micros, (
        f"{len(money.unsettled)} entries still unsettled after A resumed and read its answers "
        f"({[getattr(r, 'status_code', r) for r in results]}); ledger ${usd(money.ledger_micros)} "
        f"vs billed ${usd(money.billed_micros)}")
    for r in results:
        assert isinstance(r, httpx.Response) and r.status_code in (200, 504), r
        if r.status_code == 200:
            mine = [e for e in money.ledger if e.request_id == r.json()["id"]]
            assert sum(e.cost_micros for e in mine) == micros(r.json()["usage"]["cost_usd"]), mine


# ----------------------------------------------------------------------------------------------------------------------
# (4) SSE clients that walk away
# ----------------------------------------------------------------------------------------------------------------------


def test_sse_walk_aways_are_billed_and_charged(quick: Stack, fake: FakeMessagesServer) -> None:
    # given a provider that takes 0.6 s to answer
    tenant = make_tenant(quick, 1.0)
    server = quick.servers[0]
    fake.state.default_delay = 0.6
    # when 5 times a client opens an event stream, reads the first event and leaves before the answer
    for i in range(5):
        with httpx.Client(timeout=30) as client, client.stream(
                "POST", f"{server.url}/v1/teams/legal/ask", json=QUESTION,
                headers={**tenant.auth, "accept": "text/event-stream"}) as resp:
            assert resp.status_code == 200
            lines = resp.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: step.started"
            wait_for("the model request at the provider", lambda n=i + 1: len(fake.state.log()) >= n, timeout=10,
                     every=0.02)
    # then each request the provider billed has its ledger row, and the money adds up
    entries = provider_log(fake)
    assert len(entries) == 5
    wait_until_nothing_reserved(server, tenant)
    money = check_money(quick, tenant, entries, server)
    assert len(money.ledger) >= money.billed_requests == 5, (len(money.ledger), money.billed_requests)
    # the calls ran to their end without their clients: settled at their real cost
    assert not money.unsettled and money.ledger_micros == money.billed_micros, money.ledger


# ----------------------------------------------------------------------------------------------------------------------
# (5) A model request that times out, then a retry
# ----------------------------------------------------------------------------------------------------------------------


def test_timed_out_request_and_its_retry_are_both_charged(quick: Stack, fake: FakeMessagesServer) -> None:
    # given MULTIAGENT_MODEL_TIMEOUT_S=1 and a provider whose first answer takes 3 s, then answers at once
    tenant = make_tenant(quick, 1.0)
    server = quick.servers[0]
    fake.state.push(delay(3.0))
    # when a call is made
    resp = call(server, tenant)
    # then it succeeds after a retry (or times out), and both provider requests are in the ledger
    assert resp.status_code in (200, 504), resp.text
    entries = provider_log(fake)
    assert len(entries) == 2 and billed_tokens(entries)["requests"] == 2, [e["status"] for e in entries]
    wait_until_nothing_reserved(server, tenant)
    money = check_money(quick, tenant, entries, server)
    assert len(money.ledger) == 2, money.ledger
    # the timed-out request at its worst case (unsettled); the retry at its real cost if it succeeded
    unsettled = money.unsettled
    assert len(unsettled) == (1 if resp.status_code == 200 else len(unsettled)) >= 1, money.ledger
    assert unsettled[0].cost_micros >= max(ASK_OUTPUT_WORST, billed_micros(entries[:1])), money.ledger


# ----------------------------------------------------------------------------------------------------------------------
# (6) Bogus usage
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bogus", [-3_000_000, 2e18, 12.5])
def test_bogus_usage_is_charged_at_worst_case(quick: Stack, fake: FakeMessagesServer, bogus: Any) -> None:
    # given a provider that reports nonsense input_tokens (while billing what the model really read)
    tenant = make_tenant(quick, 1.0)
    server = quick.servers[1]
    fake.state.set_billing(usage_override={"input_tokens": bogus})
    # when two calls are made
    responses = [call(server, tenant) for _ in range(2)]
    # then each is answered, charged its worst case (never negative, never $0) and recorded as an anomaly
    assert [r.status_code for r in responses] == [200, 200], [r.text[:300] for r in responses]
    entries = provider_log(fake)
    money = check_money(quick, tenant, entries, server)
    assert len(money.ledger) == 2
    for entry, billed in zip(sorted(money.ledger, key=lambda e: e.at), entries, strict=True):
        # the worst case: at least max_tokens of output (the fake's answer is ~76 tokens)
        assert entry.cost_micros >= max(ASK_OUTPUT_WORST, billed_micros([billed])), entry
        assert isinstance(entry.input_tokens, int) and entry.input_tokens >= 0, entry
        assert getattr(entry, "anomaly", None) is True, entry
    for r in responses:
        cost = r.json()["usage"]["cost_usd"]
        assert 0 < cost <= tenant.cap_usd, r.json()["usage"]
    assert audit_types(server, tenant).count("usage.anomaly") == 2
    report = usage(server, tenant)
    assert 0 < report["spent_usd"]["day"] <= tenant.cap_usd, report

