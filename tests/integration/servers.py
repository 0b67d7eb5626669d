"""Real backing servers for integration tests, started once per test session.

SQLite needs none; DynamoDB runs on a serialised moto server (server_dynamodb.py);
Firestore runs on Google's emulator (server_firestore.py). Each module exposes
``fresh_store_url(tmp_path) -> str`` and starts its server lazily, once per session.
"""

from __future__ import annotations

import importlib
from pathlib import Path


def fresh_store_url(backend: str, tmp_path: Path) -> str:
    """A store URL no other test uses, for ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    module = importlib.import_module(f"tests.integration.server_{backend}")
    return module.fresh_store_url(tmp_path)  # type: ignore[no-any-return]
