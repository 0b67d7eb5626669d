"""Tests for tests/fakes/messages_api.py, driven through the REAL anthropic SDK over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

import anthropic
import httpx
import pydantic
import pytest
from pydantic import BaseModel, Field

from shared.pricing import cost_micros
from tests.fakes.messages_api import (
    Behaviour,
    FakeMessagesProcess,
    FakeMessagesServer,
    FakeState,
    RemoteFake,
    auto,
    billed_by_model,
    billed_micros,
    billed_tokens,
    billed_usd,
    delay,
    error,
    example_for_schema,
    forced_invalid,
    max_overlap,
    model_read_bytes,
    text,
    tool_use,
)

MODEL = "claude-fake-model"
USER = [{"role": "user", "content": "Please summarise the quarterly report for the board of directors, briefly."}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeMessagesServer]:
    with FakeMessagesServer() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeMessagesServer) -> FakeMessagesServer:
    server.state.reset()
    return server


def sync_client(fake: FakeMessagesServer, **kw) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=fake.url, api_key="test", **kw)


# ---------------------------------------------------------------------------------------------------------------------
# Schemas used for forced tool_choice
# ---------------------------------------------------------------------------------------------------------------------


class Priority(StrEnum):
    low = "low"
    high = "high"


class Step(BaseModel):
    title: str = Field(min_length=12, max_length=20)
    weight: float = Field(gt=0, le=1)
    tags: list[str] = Field(min_length=2, max_length=4)
    retries: int = Field(ge=0, lt=3)


class SubPlan(BaseModel):
    kind: Literal["plan"]
    steps: list[Step] = Field(min_length=1)
    priority: Priority
    note: str | None = None
    count: int = Field(gt=5, lt=10)
    ratio: float = Field(gt=-1, lt=0)
    sizes: list[int] = Field(default_factory=list, max_length=0)


class Plan(BaseModel):
    id: UUID
    created: datetime
    name: str
    sub: SubPlan
    alternatives: list[SubPlan] = Field(min_length=3)
    mapping: dict[str, int] = Field(default_factory=dict)
    children: list[Plan] = Field(default_factory=list)
    level: Priority | None = None


def plan_tool() -> dict:
    return {"name": "submit_plan", "description": "Submit the plan", "input_schema": Plan.model_json_schema()}


# ---------------------------------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------------------------------


def test_plain_text_turn_auto_mode_and_log(fake: FakeMessagesServer) -> None:
    with sync_client(fake) as client:
        msg = client.messages.create(model=MODEL, max_tokens=200, messages=USER, system="be brief")

    assert msg.type == "message" and msg.role == "assistant" and msg.model == MODEL
    assert msg.id == "msg_fake_1"
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Fake answer to: " + USER[0]["content"][:60]
    assert msg.usage.input_tokens >= 1 and msg.usage.output_tokens >= 1
    assert msg.usage.cache_creation_input_tokens == 0 and msg.usage.cache_read_input_tokens == 0
    assert msg._request_id and msg._request_id.startswith("req_fake_")

    (entry,) = fake.state.log()
    assert entry["model"] == MODEL and entry["max_tokens"] == 200 and entry["tool_choice"] is None
    assert entry["body"]["system"] == "be brief"
    assert entry["api_key"] == "test"
    assert entry["headers"]["anthropic-version"]
    assert "Anthropic/Python" in entry["headers"]["user-agent"]
    assert entry["received_at"] <= entry["finished_at"]
    assert entry["received_wall"] <= entry["finished_wall"]
    assert entry["status"] == 200 and entry["behaviour"] == "auto"


def test_scripted_text_fifo_and_output_tokens_clipped(fake: FakeMessagesServer) -> None:
    fake.state.push(text("first " * 200), text("second", stop_reason="max_tokens"))
    with sync_client(fake) as client:
        first = client.messages.create(model=MODEL, max_tokens=5, messages=USER)
        second = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
        third = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert first.content[0].text.startswith("first ")
    assert first.usage.output_tokens == 5
    assert second.content[0].text == "second" and second.stop_reason == "max_tokens"
    assert third.content[0].text.startswith("Fake answer to:")
    assert fake.state.pending() == 0


def test_tool_use_turn(fake: FakeMessagesServer) -> None:
    fake.state.push(tool_use("get_weather", {"city": "Paris"}, text="Let me check."))
    tools = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    with sync_client(fake) as client:
        msg = client.messages.create(model=MODEL, max_tokens=100, messages=USER, tools=tools)
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["text", "tool_use"]
    block = msg.content[1]
    assert block.name == "get_weather" and block.input == {"city": "Paris"}
    assert block.id.startswith("toolu_fake_")


def test_forced_tool_choice_returns_schema_valid_input(fake: FakeMessagesServer) -> None:
    tools = [{"name": "other", "input_schema": {"type": "object"}}, plan_tool()]
    with sync_client(fake) as client:
        msg = client.messages.create(
            model=MODEL,
            max_tokens=4000,
            messages=USER,
            tools=tools,
            tool_choice={"type": "tool", "name": "submit_plan"},
        )
    assert msg.stop_reason == "tool_use"
    (block,) = msg.content
    assert block.type == "tool_use" and block.name == "submit_plan"
    plan = Plan.model_validate(block.input)
    assert len(plan.alternatives) == 3 and plan.sub.kind == "plan"
    assert fake.state.log()[0]["tool_choice"] == {"type": "tool", "name": "submit_plan"}


def test_structured_output_parse_is_schema_valid(fake: FakeMessagesServer) -> None:
    # messages.parse() moves unsupported constraints into descriptions; the fake recovers them.
    with sync_client(fake) as client:
        msg = client.messages.parse(model=MODEL, max_tokens=4000, messages=USER, output_format=SubPlan)
    assert isinstance(msg.parsed_output, SubPlan)


def test_forced_invalid(fake: FakeMessagesServer) -> None:
    fake.state.push(forced_invalid(), forced_invalid())
    with sync_client(fake) as client:
        forced = client.messages.create(
            model=MODEL,
            max_tokens=100,
            messages=USER,
            tools=[plan_tool()],
            tool_choice={"type": "tool", "name": "submit_plan"},
        )
        unforced = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert forced.content[0].type == "tool_use" and forced.content[0].input == {}
    with pytest.raises(pydantic.ValidationError):
        Plan.model_validate(forced.content[0].input)
    assert unforced.content[0].type == "text"


def test_unknown_forced_tool_is_a_400(fake: FakeMessagesServer) -> None:
    with sync_client(fake) as client, pytest.raises(anthropic.BadRequestError):
        client.messages.create(
            model=MODEL,
            max_tokens=100,
            messages=USER,
            tools=[plan_tool()],
            tool_choice={"type": "tool", "name": "nope"},
        )


def test_429_retry_after_zero_is_retried_by_sdk(fake: FakeMessagesServer) -> None:
    fake.state.push(error(429, headers={"retry-after": "0"}))
    start = time.monotonic()
    with sync_client(fake, max_retries=2) as client:
        msg = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert msg.content[0].type == "text"
    assert time.monotonic() - start < 2.0
    log = fake.state.log()
    assert [e["status"] for e in log] == [429, 200]
    assert [e["behaviour"] for e in log] == ["error", "auto"]


def test_529_overloaded_surfaces_without_retries(fake: FakeMessagesServer) -> None:
    fake.state.push(error(529))
    with sync_client(fake, max_retries=0) as client, pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    exc = info.value
    assert isinstance(exc, anthropic.APIStatusError) and exc.status_code == 529
    assert exc.body["type"] == "error" and exc.body["error"]["type"] == "overloaded_error"
    assert exc.request_id and exc.request_id.startswith("req_fake_")
    assert len(fake.state.log()) == 1


def test_500_api_error_body_and_custom_body(fake: FakeMessagesServer) -> None:
    fake.state.push(error(500), error(400, body={"type": "error", "error": {"type": "x", "message": "custom"}}))
    with sync_client(fake) as client:
        with pytest.raises(anthropic.InternalServerError) as info:
            client.messages.create(model=MODEL, max_tokens=100, messages=USER)
        assert info.value.body["error"]["type"] == "api_error"
        with pytest.raises(anthropic.BadRequestError) as info2:
            client.messages.create(model=MODEL, max_tokens=100, messages=USER)
        assert info2.value.body["error"]["message"] == "custom"


def test_delay_with_client_timeout_raises_api_timeout(fake: FakeMessagesServer) -> None:
    fake.state.push(delay(1.5))
    start = time.monotonic()
    with sync_client(fake, timeout=0.3) as client, pytest.raises(anthropic.APITimeoutError):
        client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert time.monotonic() - start < 1.0
    deadline = time.monotonic() + 1.0
    while fake.state.log()[0]["finished_at"] is None and time.monotonic() < deadline:
        time.sleep(0.01)
    entry = fake.state.log()[0]
    assert entry["disconnected"] is True and entry["finished_at"] is not None


def test_delay_then_behaviour(fake: FakeMessagesServer) -> None:
    fake.state.push(delay(0.2, then=text("late")))
    start = time.monotonic()
    with sync_client(fake) as client:
        msg = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert msg.content[0].text == "late"
    assert time.monotonic() - start >= 0.2
    entry = fake.state.log()[0]
    assert entry["finished_at"] - entry["received_at"] >= 0.2
    assert entry["behaviour"] == "text" and entry["scripted"] is True and entry["delay"] == 0.2


def test_streaming_text(fake: FakeMessagesServer) -> None:
    fake.state.push(text("Streaming works across several chunks of text, definitely."))
    with sync_client(fake) as client:
        with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
            chunks = list(stream.text_stream)
            final = stream.get_final_message()
    assert len(chunks) > 1
    assert "".join(chunks) == "Streaming works across several chunks of text, definitely."
    assert final.content[0].text == "".join(chunks)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens >= 1
    assert fake.state.log()[0]["stream"] is True


async def test_async_streaming_forced_tool(fake: FakeMessagesServer) -> None:
    async with anthropic.AsyncAnthropic(base_url=fake.url, api_key="test", max_retries=0) as client:
        async with client.messages.stream(
            model=MODEL, max_tokens=4000, messages=USER, tools=[plan_tool()], tool_choice={"type": "any"}
        ) as stream:
            final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    Plan.model_validate(final.content[0].input)


async def test_async_concurrent_requests_overlap(fake: FakeMessagesServer) -> None:
    fake.state.default_delay = 0.3
    async with anthropic.AsyncAnthropic(base_url=fake.url, api_key="test", max_retries=0) as client:
        start = time.monotonic()
        results = await asyncio.gather(
            *(client.messages.create(model=MODEL, max_tokens=50, messages=USER) for _ in range(3))
        )
        elapsed = time.monotonic() - start
    assert len({m.id for m in results}) == 3
    assert elapsed < 0.85
    log = fake.state.log()
    assert max_overlap(log) == 3 and fake.state.max_in_flight == 3
    assert all(e["finished_at"] - e["received_at"] >= 0.3 for e in log)


def test_count_tokens(fake: FakeMessagesServer) -> None:
    with sync_client(fake) as client:
        result = client.messages.count_tokens(model=MODEL, messages=USER)
    assert result.input_tokens >= 1
    assert fake.state.log() == []
    assert fake.state.log("/v1/messages/count_tokens")[0]["model"] == MODEL


def test_remote_script_and_log_endpoints(fake: FakeMessagesServer) -> None:
    remote = RemoteFake(fake.url)
    remote.set_script([text("remote one"), error(529), delay(0.05, then=tool_use("t", {"x": 1}))])
    assert fake.state.pending() == 3
    remote.push(auto())
    with sync_client(fake) as client:
        assert client.messages.create(model=MODEL, max_tokens=10, messages=USER).content[0].text == "remote one"
        with pytest.raises(anthropic.APIStatusError):
            client.messages.create(model=MODEL, max_tokens=10, messages=USER)
        assert client.messages.create(model=MODEL, max_tokens=10, messages=USER).content[0].input == {"x": 1}
    log = remote.log()
    assert [e["status"] for e in log] == [200, 529, 200]
    json.dumps(log)
    remote.reset()
    assert fake.state.pending() == 0 and remote.log() == []
    bad = httpx.post(f"{fake.url}/_fake/script", json={"script": [{"kind": "nope"}]})
    assert bad.status_code == 400


def test_behaviour_dict_round_trip() -> None:
    b = delay(0.5, then=error(429, headers={"retry-after": "0"}))
    assert Behaviour.from_dict(json.loads(json.dumps(b.to_dict()))) == b


def test_state_is_independent_and_wait_for_requests() -> None:
    state = FakeState(default_delay=0.1)
    with FakeMessagesServer(state) as fake:
        assert fake.state is state
        with sync_client(fake) as client:
            client.messages.create(model=MODEL, max_tokens=10, messages=USER)
        assert len(state.wait_for_requests(1, timeout=1)) == 1
        with pytest.raises(TimeoutError):
            state.wait_for_requests(2, timeout=0.05)


def test_subprocess_mode_prints_ready_and_serves() -> None:
    with FakeMessagesProcess(delay=0.05) as proc:
        assert proc.url.startswith("http://127.0.0.1:")
        proc.remote.push(text("from subprocess"))
        with anthropic.Anthropic(base_url=proc.url, api_key="test", max_retries=0) as client:
            first = client.messages.create(model=MODEL, max_tokens=10, messages=USER)
            second = client.messages.create(model=MODEL, max_tokens=10, messages=USER)
        assert first.content[0].text == "from subprocess"
        assert second.content[0].text.startswith("Fake answer to:")
        log = proc.remote.log()
        assert len(log) == 2 and log[1]["finished_at"] - log[1]["received_at"] >= 0.05
    assert proc.proc.returncode == 0


# ---------------------------------------------------------------------------------------------------------------------
# Billing
# ---------------------------------------------------------------------------------------------------------------------

PRICED = "claude-opus-4-5"
DENSE_TOOL = {
    "name": "lookup_ü",
    "description": "Look up — anything",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string", "description": "Qüery"}}},
}
DENSE_MESSAGES = [
    {"role": "user", "content": "Héllo 日本"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup_ü", "input": {"q": "ü"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "résultat"},
            {"type": "text", "text": "go on"},
        ],
    },
]


def dense_bytes() -> int:
    """What the model reads in DENSE_MESSAGES + DENSE_TOOL + system "sÿs", counted by hand."""
    texts = [
        "sÿs",
        "Héllo 日本",
        "ok",
        "lookup_ü",
        '{"q": "ü"}',
        "résultat",
        "go on",
        "lookup_ü",
        "Look up — anything",
        json.dumps(DENSE_TOOL["input_schema"], ensure_ascii=False),
    ]
    return sum(len(t.encode()) for t in texts)


@pytest.fixture
def dense_fake(fake: FakeMessagesServer) -> Iterator[FakeMessagesServer]:
    fake.state.set_billing("tokens_per_byte")
    yield fake
    fake.state.set_billing("default", usage_override=None)


def test_default_billing_bills_what_it_reports(fake: FakeMessagesServer) -> None:
    with sync_client(fake) as client:
        msg = client.messages.create(model=PRICED, max_tokens=100, messages=USER, system="be brief")
        counted = client.messages.count_tokens(model=PRICED, messages=USER, system="be brief")
    (entry,) = fake.state.log()
    assert fake.state.billing_settings() == {"mode": "default", "usage_override": None}
    assert entry["billed"] == {"input_tokens": msg.usage.input_tokens, "output_tokens": msg.usage.output_tokens}
    assert counted.input_tokens == msg.usage.input_tokens
    assert fake.state.log("/v1/messages/count_tokens")[0]["billed"] == {"input_tokens": 0, "output_tokens": 0}


def test_tokens_per_byte_bills_every_utf8_byte_the_model_reads(dense_fake: FakeMessagesServer) -> None:
    dense_fake.state.push(text("réponse ✓"))
    with sync_client(dense_fake) as client:
        msg = client.messages.create(
            model=PRICED, max_tokens=100, messages=DENSE_MESSAGES, system="sÿs", tools=[DENSE_TOOL]
        )
        counted = client.messages.count_tokens(model=PRICED, messages=DENSE_MESSAGES, system="sÿs", tools=[DENSE_TOOL])
        clipped = client.messages.create(model=PRICED, max_tokens=3, messages=USER)
    assert msg.usage.input_tokens == dense_bytes() == counted.input_tokens
    assert msg.usage.output_tokens == len("réponse ✓".encode())
    first, second = dense_fake.state.log()
    assert first["billed"] == {"input_tokens": dense_bytes(), "output_tokens": len("réponse ✓".encode())}
    assert model_read_bytes(first["body"]) == dense_bytes()
    assert second["billed"] == {"input_tokens": len(USER[0]["content"]), "output_tokens": 3}
    assert clipped.usage.output_tokens == 3


def test_system_blocks_and_structured_output_schema_are_read(dense_fake: FakeMessagesServer) -> None:
    system = [{"type": "text", "text": "ab"}, {"type": "text", "text": "é"}]
    with sync_client(dense_fake) as client:
        msg = client.messages.parse(model=PRICED, max_tokens=4000, messages=USER, output_format=SubPlan, system=system)
    body = dense_fake.state.log()[0]["body"]
    fmt = (body.get("output_config") or {}).get("format") or body["output_format"]
    expected = 2 + 2 + len(USER[0]["content"]) + len(json.dumps(fmt["schema"], ensure_ascii=False).encode())
    assert msg.usage.input_tokens == expected == dense_fake.state.log()[0]["billed"]["input_tokens"]


def test_client_gone_during_delay_is_billed_for_the_full_answer(dense_fake: FakeMessagesServer) -> None:
    dense_fake.state.push(delay(1.0, then=text("a long answer the client never read")))
    with sync_client(dense_fake, timeout=0.2) as client, pytest.raises(anthropic.APITimeoutError):
        client.messages.create(model=PRICED, max_tokens=100, messages=USER)
    deadline = time.monotonic() + 2
    while dense_fake.state.log()[0]["finished_at"] is None and time.monotonic() < deadline:
        time.sleep(0.01)
    (entry,) = dense_fake.state.log()
    assert entry["status"] == 499 and entry["disconnected"] is True
    assert entry["billed"] == {
        "input_tokens": len(USER[0]["content"]),
        "output_tokens": len("a long answer the client never read"),
    }


def test_errors_are_billed_zero(dense_fake: FakeMessagesServer) -> None:
    dense_fake.state.push(error(529), delay(0.05, then=error(500)), error(400))
    with sync_client(dense_fake) as client:
        for _ in range(3):
            with pytest.raises(anthropic.APIStatusError):
                client.messages.create(model=PRICED, max_tokens=100, messages=USER)
        with pytest.raises(anthropic.BadRequestError):  # invalid request: never reaches a model
            client.messages.create(
                model=PRICED,
                max_tokens=100,
                messages=USER,
                tools=[plan_tool()],
                tool_choice={"type": "tool", "name": "nope"},
            )
    log = dense_fake.state.log()
    assert [e["status"] for e in log] == [529, 500, 400, 400]
    assert all(e["billed"] == {"input_tokens": 0, "output_tokens": 0} for e in log)
    assert billed_micros(log) == 0 and billed_tokens(log)["requests"] == 0


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic, serialising the SDK's non-int usage
@pytest.mark.parametrize("bogus", [-3_000_000, 2e18, 12.5, "lots"])
def test_usage_override_reports_nonsense_but_bills_the_truth(dense_fake: FakeMessagesServer, bogus) -> None:
    dense_fake.state.set_billing(usage_override={"input_tokens": bogus})
    with sync_client(dense_fake) as client:
        msg = client.messages.create(model=PRICED, max_tokens=100, messages=USER)
        with client.messages.stream(model=PRICED, max_tokens=100, messages=USER) as stream:
            streamed = stream.get_final_message()
    assert msg.usage.input_tokens == bogus and streamed.usage.input_tokens == bogus
    assert msg.usage.output_tokens == streamed.usage.output_tokens == len(msg.content[0].text.encode())
    for entry in dense_fake.state.log():
        assert entry["billed"] == {"input_tokens": len(USER[0]["content"]), "output_tokens": msg.usage.output_tokens}
        assert entry["reported_usage"]["input_tokens"] == bogus


def test_usage_override_of_output_tokens_in_a_stream(dense_fake: FakeMessagesServer) -> None:
    dense_fake.state.set_billing(usage_override={"output_tokens": -1, "cache_read_input_tokens": 7})
    with sync_client(dense_fake) as client:
        with client.messages.stream(model=PRICED, max_tokens=100, messages=USER) as stream:
            final = stream.get_final_message()
    assert final.usage.output_tokens == -1 and final.usage.cache_read_input_tokens == 7
    assert dense_fake.state.log()[0]["billed"]["output_tokens"] == len(final.content[0].text.encode())


def test_billed_usd_prices_each_request_per_model(dense_fake: FakeMessagesServer) -> None:
    with sync_client(dense_fake) as client:
        client.messages.create(model=PRICED, max_tokens=100, messages=USER)
        client.messages.create(model="claude-haiku-4-5-20251001", max_tokens=100, messages=USER)
    log = dense_fake.state.log()
    expected = {
        e["model"]: cost_micros(e["model"], e["billed"]["input_tokens"], e["billed"]["output_tokens"]) for e in log
    }
    assert billed_by_model(log) == expected and all(v > 0 for v in expected.values())
    assert billed_micros(log) == sum(expected.values())
    assert billed_usd(log) == pytest.approx(sum(expected.values()) / 1e6)
    assert (
        billed_micros(log, cost=lambda model, i, o: i + o)
        == billed_tokens(log)["input_tokens"] + billed_tokens(log)["output_tokens"]
    )


def test_billing_knobs_remotely_and_reset_restores_them(fake: FakeMessagesServer) -> None:
    remote = RemoteFake(fake.url)
    assert remote.billing() == {"mode": "default", "usage_override": None}
    assert remote.set_billing("tokens_per_byte") == {"mode": "tokens_per_byte", "usage_override": None}
    assert remote.set_billing(usage_override={"input_tokens": 2e18})["usage_override"] == {"input_tokens": 2e18}
    assert fake.state.billing == "tokens_per_byte"
    with sync_client(fake) as client:
        assert client.messages.create(model=PRICED, max_tokens=10, messages=USER).usage.input_tokens == 2e18
    assert remote.log()[0]["billed"]["input_tokens"] == len(USER[0]["content"])
    remote.set_billing(usage_override=None)
    assert remote.billing() == {"mode": "tokens_per_byte", "usage_override": None}
    scripted = httpx.post(
        f"{fake.url}/_fake/script",
        json={"script": [], "billing": {"mode": "default", "usage_override": {"output_tokens": 0}}},
    )
    assert scripted.json()["billing"] == {"mode": "default", "usage_override": {"output_tokens": 0}}
    for bad in ({"mode": "free"}, {"usage_override": 3}, {"nope": 1}, [1]):
        assert httpx.post(f"{fake.url}/_fake/billing", json=bad).status_code == 400
    assert httpx.post(f"{fake.url}/_fake/script", json={"billing": {"mode": "x"}}).status_code == 400
    remote.reset()
    assert remote.billing() == {"mode": "default", "usage_override": None}
    dense = FakeState(billing="tokens_per_byte", usage_override={"input_tokens": -1})
    dense.set_billing("default", usage_override=None)
    dense.reset()
    assert dense.billing_settings() == {"mode": "tokens_per_byte", "usage_override": {"input_tokens": -1}}
    with pytest.raises(ValueError):
        FakeState(billing="cheap")


def test_subprocess_billing_flag() -> None:
    with FakeMessagesProcess(billing="tokens_per_byte") as proc:
        assert proc.remote.billing()["mode"] == "tokens_per_byte"
        with anthropic.Anthropic(base_url=proc.url, api_key="test", max_retries=0) as client:
            assert client.messages.count_tokens(model=PRICED, messages=USER).input_tokens == len(USER[0]["content"])


# ---------------------------------------------------------------------------------------------------------------------
# Schema example generator
# ---------------------------------------------------------------------------------------------------------------------


class Bounded(BaseModel):
    a: int = Field(gt=0, lt=2)
    b: float = Field(ge=10.5, le=10.5)
    c: int = Field(multiple_of=7, ge=8)
    d: float = Field(lt=-100)
    e: list[int] = Field(min_length=3, max_length=3)
    f: set[str] = Field(min_length=3)
    g: str = Field(pattern=r"^[0-9]+$")
    h: tuple[int, str, bool]
    i: Literal["x", "y"]
    j: bool


def test_example_for_schema_bounds_and_shapes() -> None:
    value = example_for_schema(Bounded.model_json_schema())
    model = Bounded.model_validate(value)
    assert model.a == 1 and model.b == 10.5 and model.c % 7 == 0 and len(model.f) == 3


class Node(BaseModel):
    name: str
    left: list[Node] = []
    right: list[Node] = []
    parent: Node | None = None


def test_example_for_recursive_schema_stays_small() -> None:
    value = example_for_schema(Node.model_json_schema())
    Node.model_validate(value)
    assert len(json.dumps(value)) < 500


EDGE_CASES = [
    ({"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5}, lambda v: v == 4),
    ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001}, lambda v: 0 < v < 0.001),
    ({"type": "string", "minLength": 100}, lambda v: len(v) >= 100),
    ({"type": "string", "maxLength": 2}, lambda v: len(v) <= 2),
    ({"type": "array", "items": {"type": "string"}, "maxItems": 0}, lambda v: v == []),
    (
        {"allOf": [{"$ref": "#/$defs/X"}], "$defs": {"X": {"type": "object", "required": ["q"]}}},
        lambda v: isinstance(v, dict) and "q" in v,
    ),
    ({"oneOf": [{"type": "null"}, {"type": "integer", "minimum": 4}]}, lambda v: isinstance(v, int) and v >= 4),
    ({"type": ["null", "string"], "enum": [None, "only"]}, lambda v: v == "only"),
    (
        {
            "type": "object",
            "properties": {"n": {"const": 3}},
            "required": ["n"],
            "minProperties": 3,
            "additionalProperties": {"type": "boolean"},
        },
        lambda v: v["n"] == 3 and len(v) >= 3 and all(isinstance(x, bool) for k, x in v.items() if k != "n"),
    ),
    ({"type": "integer", "description": "A number\n\n{minimum: 7, maximum: 9}"}, lambda v: 7 <= v <= 9),
]


@pytest.mark.parametrize(("schema", "check"), EDGE_CASES)
def test_example_for_schema_edge_cases(schema: dict, check) -> None:
    value = example_for_schema(schema)
    assert check(value), value
