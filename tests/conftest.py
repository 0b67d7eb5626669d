"""Fixtures shared by every test folder: a fresh store per backend (real servers on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.store import open_store
from shared.store.base import Store
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
