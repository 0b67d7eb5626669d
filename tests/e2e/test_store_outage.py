"""Fail closed on money: when the state store goes down mid-run, calls are refused with
503 and the model is never called unbudgeted (DynamoDB on moto, Firestore emulator)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.store.base import new_id
from tests.helpers import local_app
from tests.integration import server_dynamodb, server_firestore

pytestmark = pytest.mark.e2e
QUESTION = {"question": "Can we terminate this contract early?"}


class PrivateStore:
    """A store server of this test alone (the session's shared one stays up)."""

    def __init__(self, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.backend = backend
        if backend == "dynamodb":
            server_dynamodb.start_server()  # credentials and region for boto3
            self.server = server_dynamodb.MotoServer()
            endpoint = self.server.start()
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
            monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
            self.url = f"dynamodb://{new_id('t')[:24]}?region=us-east-1"
        else:
            server_firestore.start_server()  # skips when the emulator is not installed
            self.server = server_firestore.Emulator()
            self.server.wait_ready()
            self.server.warm_up()
            monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", self.server.host)
            self.url = f"firestore://demo-{new_id('p')[-12:]}"

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(params=["dynamodb", "firestore"])
def private_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateStore]:
    store = PrivateStore(request.param, monkeypatch)
    try:
        yield store
    finally:
        store.stop()


async def test_store_down_mid_run_refuses_and_never_calls_the_model(private_store, model_env, fake):
    async with local_app(private_store.url, **model_env) as app:
        tenant_id, key = app.tenant(daily_usd=5)
        # given three paid calls while the store is up
        for _ in range(3):
            assert (await app.call("legal", "ask", QUESTION, key)).status_code == 200
        ledger = app.runtime.store.list_ledger(tenant_id)
        assert len(ledger) == 3 and len(fake.state.log()) == 3
        # when the store goes down
        private_store.stop()
        started = time.monotonic()
        refused = [await app.call("legal", "ask", QUESTION, key) for _ in range(3)]
        # then every call is a 503 problem with a retry hint, quickly, and no model call was made
        for resp in refused:
            assert resp.status_code == 503, resp.text
            assert resp.json()["type"] == "/problems/unavailable"
            assert int(resp.headers["retry-after"]) >= 1 and resp.headers["x-should-retry"] == "true"
        assert time.monotonic() - started < 30
        assert len(fake.state.log()) == 3
