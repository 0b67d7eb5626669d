"""Pure helpers of runs and sessions: continuation selection, session trimming, request checks."""

from __future__ import annotations

import pytest

from shared.catalog import load_catalog
from shared.continuations import CloudTasksContinuation, LambdaContinuation, LocalContinuation, continuation_for
from shared.errors import ConfigurationError, Forbidden, NotFound, ValidationFailed
from shared.orchestrator import check_request, resolve_input, validate_plan
from shared.sessions import as_model_messages, session_id_from, trim
from shared.store.base import SessionRecord, Tenant


def tenant(**kw) -> Tenant:  # type: ignore[no-untyped-def]
    return Tenant(id="ten_a", name="a", daily_limit_micros=10, monthly_limit_micros=10, rpm=1, tpm=1, **kw)


def test_continuation_is_chosen_by_configuration():
    local = LocalContinuation(None)
    assert continuation_for("local", local) is local
    tasks = continuation_for("cloudtasks:projects/p/locations/l/queues/q@https://gw.run.app#runs@p.iam", local)
    assert isinstance(tasks, CloudTasksContinuation)
    assert (tasks.queue, tasks.service_url, tasks.service_account) == (
        "projects/p/locations/l/queues/q", "https://gw.run.app", "runs@p.iam")
    assert isinstance(continuation_for("lambda:gateway-fn", local), LambdaContinuation)
    with pytest.raises(ConfigurationError):
        continuation_for("sqs:nope", local)


def test_session_trimming_keeps_the_newest_turns_and_alternation():
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i} " + "x" * 300} for i in range(20)]
    kept = trim(messages, budget=500)
    assert kept[-1] == messages[-1] and kept[0]["role"] == "user" and len(kept) < 20
    assert trim(messages[-2:], budget=1, keep_last=2) == messages[-2:]
    history = as_model_messages(SessionRecord(id="s", tenant_id="t", messages=messages), 10_000)
    assert [m["role"] for m in history][:2] == ["user", "assistant"] and history[-1]["role"] == "assistant"
    with pytest.raises(ValidationFailed):
        session_id_from({"x-session-id": "has spaces"})
    assert session_id_from({"x-session-id": "ok-id_1:2"}) == "ok-id_1:2" and session_id_from({}) is None


def test_run_requests_are_checked():
    catalog = load_catalog()
    ok = check_request(catalog, tenant(), {"task": "t", "teams": ["finance", "finance"], "max_usd": 1})
    assert ok == {"task": "t", "teams": ["finance"], "max_micros": 1_000_000, "deadline_s": None}
    for body in ({}, {"task": ""}, {"task": "t", "max_usd": 0}, {"task": "t", "deadline_s": 7200},
                 {"task": "t", "max_usd": float("nan")}, {"task": "t", "max_usd": float("inf")},
                 {"task": "t", "max_usd": 1e13}, {"task": "t", "max_usd": True},
                 {"task": "t", "teams": []}, {"task": "t", "extra": 1}, ["task"]):
        with pytest.raises(ValidationFailed):
            check_request(catalog, tenant(), body)
    with pytest.raises(NotFound):
        check_request(catalog, tenant(), {"task": "t", "teams": ["nope"]})
    with pytest.raises(Forbidden):
        check_request(catalog, tenant(teams=["legal"]), {"task": "t", "teams": ["finance"]})


def test_plans_are_acyclic_capped_and_fill_earlier_results():
    catalog = load_catalog()
    raw = [{"id": "a", "team": "finance", "operation": "ask", "input": {"question": "q"}, "depends_on": ["b"]},
           {"id": "b", "team": "legal", "operation": "ask", "input": {"question": "see {{step:a}}"},
            "depends_on": ["a"]}] + [{"id": f"x{i}", "team": "hr", "operation": "ask",
                                      "input": {"question": "q"}} for i in range(10)]
    steps, dropped = validate_plan(raw, catalog, ["finance", "legal", "hr"], ["research"], "task")
    assert steps[0]["depends_on"] == [] and steps[1]["depends_on"] == ["a"]  # only earlier steps: no cycle
    assert len(steps) == 9 and steps[-1]["team"] == "research"  # 8 planned + the named team's ask
    assert len(dropped) == 4 and all("more than 8" in d["reason"] for d in dropped)
    done = {"id": "a", "team": "finance", "operation": "ask", "status": "succeeded", "output": {"answer": "42"}}
    filled = resolve_input(steps[1], {"a": done})
    assert filled["question"].startswith("see 42") and "[a] finance/ask: 42" in filled["question"]
