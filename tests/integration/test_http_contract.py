"""Every error of the contract, seen from the HTTP side, plus the happy path shape."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fakes.messages_api import delay, error, forced_invalid
from tests.helpers import local_app

pytestmark = pytest.mark.integration

INVEST = {"risk_tolerance": "medium", "amount": 100000}


def assert_problem(resp, status: int, slug: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status and body["title"] and body["detail"]
    assert resp.headers["x-request-id"]
    return body


async def test_success_shape_and_headers(tmp_path, model_env):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant()
        resp = await app.call("finance", "analyze_investment", INVEST, key)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) >= {"id", "team", "operation", "output", "model", "usage", "duration_ms"}
        assert body["team"] == "finance" and body["operation"] == "analyze_investment"
        assert body["usage"]["cost_usd"] > 0 and body["usage"]["input_tokens"] > 0
        assert body["id"] == resp.headers["x-request-id"]
        for header in ("x-budget-remaining-usd", "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"):
            assert header in resp.headers
        assert float(resp.headers["x-budget-remaining-usd"]) < 10.0


async def test_closing_the_provider_closes_the_sdk_client_on_its_own_loop(tmp_path, model_env):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant()
        assert (await app.call("legal", "ask", {"question": "NDA?"}, key)).status_code == 200
        provider = await app.runtime.provider()
        assert not provider.client.is_closed()
        await app.runtime.close_provider()
        assert provider.client.is_closed()


async def test_auth_errors(tmp_path):
    async with local_app(f"sqlite:///{tmp_path}/s.db") as app:
        tenant_id, key = app.tenant()
        assert_problem(await app.call("finance", "ask", {"question": "q"}, None), 401, "unauthenticated")
        assert_problem(await app.call("finance", "ask", {"question": "q"}, "mak_wrong"), 401, "unauthenticated")
        ok = await app.client.post("/v1/teams/finance/ask", json={"question": "q"}, headers={"x-api-key": key})
        assert ok.status_code == 200
        app.runtime.store.revoke_api_keys(tenant_id)
        app.runtime.auth._cache.clear()
        assert_problem(await app.call("finance", "ask", {"question": "q"}, key), 401, "unauthenticated")


async def test_forbidden_disabled_and_team_not_allowed(tmp_path):
    async with local_app(f"sqlite:///{tmp_path}/s.db") as app:
        _, key = app.tenant(teams=["legal"])
        assert_problem(await app.call("finance", "ask", {"question": "q"}, key), 403, "forbidden")
        assert (await app.call("legal", "ask", {"question": "q"}, key)).status_code == 200
        other_id, other_key = app.tenant("other")
        app.runtime.store.update_tenant(other_id, {"disabled": True})
        assert_problem(await app.call("legal", "ask", {"question": "q"}, other_key), 403, "forbidden")


async def test_not_found_invalid_json_too_large_and_validation(tmp_path):
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_MAX_BODY_BYTES="2048") as app:
        _, key = app.tenant()
        auth = {"authorization": f"Bearer {key}"}
        assert_problem(await app.call("nope", "ask", {"question": "q"}, key), 404, "not-found")
        assert_problem(await app.call("finance", "nope", {}, key), 404, "not-found")
        assert_problem(await app.client.get("/v1/nothing-here"), 404, "not-found")
        bad = await app.client.post("/v1/teams/finance/ask", content=b"{not json", headers=auth)
        assert_problem(bad, 400, "invalid-json")
        big = await app.client.post("/v1/teams/finance/ask", json={"question": "x" * 4000}, headers=auth)
        assert assert_problem(big, 413, "payload-too-large")["limit_bytes"] == 2048
        invalid = assert_problem(await app.call("finance", "analyze_investment",
                                                {"risk_tolerance": "extreme", "amount": -1}, key), 422,
                                 "validation-error")
        locs = [e["loc"] for e in invalid["errors"]]
        assert ["body", "risk_tolerance"] in locs and ["body", "amount"] in locs


async def test_a_known_path_with_another_method_is_405_with_allow(tmp_path):
    async with local_app(f"sqlite:///{tmp_path}/s.db") as app:
        tenant_id, key = app.tenant()
        auth = {"authorization": f"Bearer {key}"}
        for method, path, allow in (("GET", "/v1/teams/finance/ask", "POST"),
                                    ("PUT", "/v1/teams/finance/analyze_investment", "POST"),
                                    ("DELETE", "/v1/teams", "GET, HEAD"), ("POST", "/v1/teams/legal", "GET, HEAD"),
                                    ("POST", "/health", "GET, HEAD"), ("PATCH", "/v1/usage", "GET, HEAD"),
                                    ("OPTIONS", "/openapi.json", "GET, HEAD")):
            resp = await app.client.request(method, path, headers=auth)
            body = assert_problem(resp, 405, "method-not-allowed")
            assert resp.headers["allow"] == allow, (method, path)
            assert method in body["detail"] and path in body["detail"]
        # an unknown path stays 404, whatever the method
        for method in ("GET", "DELETE", "HEAD"):
            resp = await app.client.request(method, "/v1/nothing-here", headers=auth)
            assert resp.status_code == 404 and "allow" not in resp.headers
        # the method is refused before anything runs: nothing charged, nothing in the ledger
        assert app.runtime.store.list_ledger(tenant_id) == []


async def test_unknown_input_fields_are_422_naming_them(tmp_path):
    async with local_app(f"sqlite:///{tmp_path}/s.db") as app:
        _, key = app.tenant()
        # a misspelt field (`horizon` for `horizon_years`) is refused, never dropped silently
        typo = assert_problem(await app.call("finance", "analyze_investment", {**INVEST, "horizon": 10}, key),
                              422, "validation-error")
        assert {"loc": ["body", "horizon"], "msg": "Extra inputs are not permitted"} in typo["errors"]
        assert len(typo["errors"]) == 1
        nested = assert_problem(await app.call("finance", "review_budget", {
            "income": 5000, "expenses": [{"category": "rent", "amount": 2000, "amout": 1}]}, key),
            422, "validation-error")
        assert [e["loc"] for e in nested["errors"]] == [["body", "expenses", 0, "amout"]]
        ask = assert_problem(await app.call("legal", "ask", {"question": "NDA?", "context": "x"}, key),
                             422, "validation-error")
        assert [e["loc"] for e in ask["errors"]] == [["body", "context"]]
        ok = await app.call("finance", "analyze_investment", {**INVEST, "horizon_years": 10}, key)
        assert ok.status_code == 200, ok.text
        # and the document says so: every object of every operation input has additionalProperties: false
        doc = (await app.client.get("/openapi.json")).json()
        schemas = doc["components"]["schemas"]

        def objects(node):
            if isinstance(node, dict):
                ref = node.get("$ref")
                if ref:
                    yield from objects(schemas[ref.rsplit("/", 1)[-1]])
                if "properties" in node:
                    yield node
                for key_, value in node.items():
                    if key_ != "$ref":
                        yield from objects(value)
            elif isinstance(node, list):
                for value in node:
                    yield from objects(value)

        checked = 0
        for path, item in doc["paths"].items():
            post = item.get("post", {})
            if "x-team" in post:
                for obj in objects(post["requestBody"]["content"]["application/json"]["schema"]):
                    assert obj.get("additionalProperties") is False, (path, obj.get("title"))
                    checked += 1
        assert checked > 96  # 24 asks, the typed inputs and their nested models


async def test_budget_exceeded(tmp_path, model_env):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant(daily_usd=0.0001)
        resp = await app.call("finance", "analyze_investment", INVEST, key)
        body = assert_problem(resp, 402, "budget-exceeded")
        assert resp.headers["x-should-retry"] == "false"
        assert body["window"] == "day" and body["limit_usd"] == 0.0001 and "reset_at" in body
        assert body["spent_usd"] == 0


async def test_rate_limited(tmp_path):
    async with local_app(f"sqlite:///{tmp_path}/s.db") as app:
        _, key = app.tenant(rpm=2)
        for _ in range(2):
            assert (await app.call("finance", "ask", {"question": "q"}, key)).status_code == 200
        resp = await app.call("finance", "ask", {"question": "q"}, key)
        body = assert_problem(resp, 429, "rate-limited")
        assert int(resp.headers["retry-after"]) >= 1 and resp.headers["x-should-retry"] == "true"
        assert body["retry_after_s"] >= 1


async def test_model_error_after_invalid_outputs(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant()
        fake.state.push(forced_invalid(), forced_invalid(), forced_invalid(), forced_invalid())
        resp = await app.call("finance", "analyze_investment", INVEST, key)
        assert_problem(resp, 502, "model-error")


async def test_provider_overload_is_unavailable(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        tenant_id, key = app.tenant()
        fake.state.push(*[error(529, headers={"retry-after-ms": "1"}) for _ in range(3)])
        resp = await app.call("legal", "ask", {"question": "q"}, key)
        assert_problem(resp, 503, "unavailable")
        assert resp.headers["retry-after"] and resp.headers["x-should-retry"] == "true"
        # the failed call's reservation was released: nothing held, nothing spent
        state = app.runtime.store.get_windows(tenant_id, [w for w in _day_month()])
        assert all(w.reserved_micros == 0 and w.spent_micros == 0 for w in state)


async def test_retry_after_429_then_success(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant()
        fake.state.push(error(429, headers={"retry-after-ms": "1"}))
        resp = await app.call("legal", "ask", {"question": "q"}, key)
        assert resp.status_code == 200
        assert len(fake.state.log()) == 2


async def test_deadline_is_a_timeout(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_DEADLINE_S="0.5", **model_env) as app:
        tenant_id, key = app.tenant()
        fake.state.push(delay(1.5))
        resp = await app.call("legal", "ask", {"question": "q"}, key)
        assert_problem(resp, 504, "timeout")
        # the request the provider is still generating is not abandoned: it settles at its
        # real cost once answered (never released: it will be billed)
        for _ in range(100):
            state = app.runtime.store.get_windows(tenant_id, _day_month())
            if all(w.reserved_micros == 0 for w in state):
                break
            await asyncio.sleep(0.05)
        ledger = app.runtime.store.list_ledger(tenant_id)
        assert all(w.reserved_micros == 0 for w in state)
        assert len(ledger) == 1 and not ledger[0].unsettled and ledger[0].cost_micros > 0
        assert all(w.spent_micros == ledger[0].cost_micros for w in state)


async def test_store_unreachable_is_unavailable(tmp_path):
    async with local_app(f"sqlite:///{tmp_path}/s.db") as app:
        _, key = app.tenant()
        # the store's file now sits under a regular file: every open fails, as a downed server would
        (tmp_path / "not-a-dir").write_text("")
        app.runtime.store.close()
        app.runtime.store.path = str(tmp_path / "not-a-dir" / "x.db")
        app.runtime.auth._cache.clear()
        resp = await app.call("finance", "ask", {"question": "q"}, key)
        assert_problem(resp, 503, "unavailable")
        assert resp.headers["retry-after"]


async def test_public_paths_need_no_key(tmp_path):
    async with local_app(f"sqlite:///{tmp_path}/s.db") as app:
        assert (await app.client.get("/health")).status_code == 200
        teams = (await app.client.get("/v1/teams")).json()["teams"]
        assert len(teams) == 24
        assert (await app.client.get("/v1/teams/marketing")).json()["name"] == "marketing"
        assert (await app.client.get("/openapi.json")).json()["openapi"].startswith("3.1")
        assert_problem(await app.client.get("/v1/usage"), 401, "unauthenticated")
        assert_problem(await app.client.get("/v1/audit"), 401, "unauthenticated")


async def test_cors_only_when_configured(tmp_path):
    origin = {"origin": "https://app.example.com"}
    async with local_app(f"sqlite:///{tmp_path}/a.db") as app:
        assert "access-control-allow-origin" not in (await app.client.get("/health", headers=origin)).headers
    async with local_app(f"sqlite:///{tmp_path}/b.db", MULTIAGENT_ALLOWED_ORIGINS="https://app.example.com") as app:
        resp = await app.client.get("/health", headers=origin)
        assert resp.headers["access-control-allow-origin"] == "https://app.example.com"


def _day_month() -> list[str]:
    import time

    from shared.budget import day_key, month_key

    now = time.time()
    return [day_key(now), month_key(now)]


async def test_idempotent_retry_returns_the_first_result_and_is_charged_once(tmp_path, model_env, fake):
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        tenant_id, key = app.tenant()
        first = await app.call("finance", "analyze_investment", INVEST, key, **{"idempotency-key": "k-1"})
        calls = len(fake.state.log())
        again = await app.call("finance", "analyze_investment", INVEST, key, **{"idempotency-key": "k-1"})
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()  # the whole body, id and usage included
        assert again.headers["idempotent-replayed"] == "true"
        assert len(fake.state.log()) == calls  # no model call for the replay
        ledger = app.runtime.store.list_ledger(tenant_id)
        assert sum(e.cost_micros for e in ledger) == round(first.json()["usage"]["cost_usd"] * 1_000_000)
        other = await app.call("finance", "analyze_investment", {**INVEST, "amount": 5}, key,
                               **{"idempotency-key": "k-1"})
        assert_problem(other, 422, "validation-error")


async def test_idempotency_claim_of_a_crashed_call_is_a_lease(tmp_path):
    # given an Idempotency-Key whose call was claimed by an instance that then crashed
    import hashlib

    from shared.budget import body_hash
    from shared.store.base import IdempotencyRecord

    async with local_app(f"sqlite:///{tmp_path}/s.db", MULTIAGENT_DEADLINE_S="5",
                         MULTIAGENT_RESERVATION_MARGIN_S="1") as app:
        tenant_id, key = app.tenant()
        body = {"question": "q"}
        scoped = f"legal/ask/{hashlib.sha256(b'retry-me').hexdigest()}"
        now = time.time()
        app.runtime.store.claim_idempotency(tenant_id, IdempotencyRecord(scoped, body_hash(body), now + 6), now)
        # when a retry arrives while the claim's lease (deadline + margin) runs: wait
        busy = await app.call("legal", "ask", body, key, **{"idempotency-key": "retry-me"})
        assert_problem(busy, 409, "conflict")
        # and once the lease has passed, the retry takes the call over (not 24 h later)
        app.runtime.store.release_idempotency(tenant_id, scoped)  # the same claim, its lease now past
        app.runtime.store.claim_idempotency(tenant_id, IdempotencyRecord(scoped, body_hash(body), now - 1), now - 7)
        taken = await app.call("legal", "ask", body, key, **{"idempotency-key": "retry-me"})
        assert taken.status_code == 200, taken.text
        replay = await app.call("legal", "ask", body, key, **{"idempotency-key": "retry-me"})
        assert replay.status_code == 200 and replay.json()["id"] == taken.json()["id"]


async def test_non_ascii_input_reaches_the_model_as_utf8(tmp_path, model_env, fake):
    # given a question in Japanese and emoji
    question = "この契約は有効ですか？ 📜✍️" * 20
    async with local_app(f"sqlite:///{tmp_path}/s.db", **model_env) as app:
        _, key = app.tenant()
        resp = await app.call("legal", "ask", {"question": question}, key)
        assert resp.status_code == 200, resp.text
    # then the model reads the characters themselves, not \uXXXX escapes (2-3x the tokens)
    prompt = fake.state.log()[0]["body"]["messages"][0]["content"]
    assert question in prompt and "\\u" not in prompt
