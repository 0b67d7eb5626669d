"""State-store factory: the URL scheme of ``MULTIAGENT_STORE`` picks the backend.

Cloud SDKs are imported only by the backend module that needs them, and only when that
backend is opened, so a function on SQLite never loads boto3 or google-cloud.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from shared.errors import ConfigurationError
from shared.store.base import Store, StoreUnavailable

__all__ = ["Store", "StoreUnavailable", "open_store"]

DEFAULT_STORE_URL = "sqlite:///./data/multiagent.db"


def open_store(url: str = DEFAULT_STORE_URL) -> Store:
    """Open the store named by ``url`` (see the contract's ``MULTIAGENT_STORE``)."""
    if url.startswith("sqlite:///"):
        from shared.store.sqlite import SQLiteStore

        path = url[len("sqlite:///") :]
        if not path:
            raise ConfigurationError("MULTIAGENT_STORE=sqlite:/// needs a path, e.g. sqlite:///./data/multiagent.db")
        return SQLiteStore(path)
    parsed = urlparse(url)
    if parsed.scheme == "dynamodb":
        from shared.store.dynamodb import DynamoDBStore

        region = parse_qs(parsed.query).get("region", [None])[0]
        return DynamoDBStore(table_prefix=parsed.netloc + parsed.path.rstrip("/"), region=region)
    if parsed.scheme == "firestore":
        from shared.store.firestore import FirestoreStore

        database = parsed.path.strip("/") or "(default)"
        return FirestoreStore(project=parsed.netloc, database=database)
    raise ConfigurationError(
        f"MULTIAGENT_STORE={url!r} is not understood; use sqlite:///PATH, firestore://PROJECT[/DATABASE] "
        "or dynamodb://TABLE_PREFIX[?region=R]"
    )
