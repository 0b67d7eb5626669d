"""The request path as the access log sees it, bounded whatever the client sent, and the
path limit (``MULTIAGENT_MAX_PATH_BYTES``, 414 ``uri-too-long``), both applied by the
outermost middleware (``shared.http.boundary.ErrorBoundary``) before routing.

A path is attacker-made text that every later step (routing, the 404 detail, the access log
and its redaction) works on; the limit keeps that work small, and the log line carries at
most :data:`MAX_LOGGED_PATH_CHARS` of it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from shared.errors import UriTooLong

MAX_LOGGED_PATH_CHARS = 256


def path_bytes(scope: MutableMapping[str, Any]) -> int:
    """The size of the request path: as received (``raw_path``) or, decoded, in UTF-8."""
    raw = scope.get("raw_path")
    path = scope.get("path")
    decoded = len(path.encode("utf-8", "replace")) if isinstance(path, str) else 0
    return max(len(raw) if isinstance(raw, (bytes, bytearray)) else 0, decoded)


def check_path(scope: MutableMapping[str, Any], limit_bytes: int) -> None:
    """Raise :class:`UriTooLong` when the request path is over ``limit_bytes``."""
    size = path_bytes(scope)
    if size > limit_bytes:
        raise UriTooLong(f"the request path is {size} bytes; the limit is {limit_bytes}", limit_bytes=limit_bytes)


def logged_path(scope: MutableMapping[str, Any]) -> str | None:
    """The path for a log line: its first :data:`MAX_LOGGED_PATH_CHARS` characters and the
    count of the rest."""
    path = scope.get("path")
    if not isinstance(path, str) or len(path) <= MAX_LOGGED_PATH_CHARS:
        return path if isinstance(path, str) or path is None else str(path)[:MAX_LOGGED_PATH_CHARS]
    return f"{path[:MAX_LOGGED_PATH_CHARS]}…(+{len(path) - MAX_LOGGED_PATH_CHARS} chars)"


__all__ = ["MAX_LOGGED_PATH_CHARS", "UriTooLong", "check_path", "logged_path", "path_bytes"]
