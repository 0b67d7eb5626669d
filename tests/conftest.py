"""Fixtures shared by every test folder: a fresh store per backend (real servers on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.store import open_store
from shared.store.base import Store
from tests.fakes.messages_api import FakeMessagesServer
from tests.integration import servers

BACKENDS = ["sqlite", "dynamodb", "firestore"]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, empty store URL for each backend (servers started once per session)."""
    yield servers.fresh_store_url(request.param, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    s.init()
    yield s
    s.close()


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeMessagesServer]:
    """One loopback fake Messages API server for the test session (tests reset it)."""
    with FakeMessagesServer() as server:
        yield server


@pytest.fixture
def model_env(fake: FakeMessagesServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings for an app whose model is the fake server through the real anthropic SDK."""
    fake.state.reset()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    return {"MULTIAGENT_MODEL_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "test-key"}
