"""Conversation memory for ``X-Session-Id``: per tenant, trimmed, written optimistically.

A session is keyed by (tenant id, session id) in the store, so a tenant that sends another
tenant's session id simply gets its own, empty session: nothing crosses the boundary.

A turn is appended as one (user, assistant) pair, after the operation or run succeeded.
Two turns finishing at once both read version N; the store lets one write N+1 and tells
the other it lost, which then re-reads and appends its pair to the newer messages
(a rebase). Only after :data:`MAX_ATTEMPTS` lost races is the turn refused with 409.
Messages are trimmed, oldest pairs first, to the session's token budget on every write.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from typing import Any

from shared.errors import Conflict, ValidationFailed
from shared.store.aio import store_call
from shared.store.base import SessionRecord, Store, now_iso

HEADER = "x-session-id"
SESSION_TTL_S = 30 * 86_400
MAX_ATTEMPTS = 60
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def session_id_from(headers: Any) -> str | None:
    """The ``X-Session-Id`` of a request (422 when it is not 1-128 URL-safe characters)."""
    value = headers.get(HEADER)
    if value is None or value == "":
        return None
    if not _ID.match(value):
        raise ValidationFailed("X-Session-Id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
                               errors=[{"loc": ["header", "X-Session-Id"], "msg": "invalid session id"}])
    return str(value)


def estimate_tokens(text: str) -> int:
    """A conservative token count (UTF-8 bytes / 3)."""
    return math.ceil(len(text.encode()) / 3) + 4


def trim(messages: list[dict[str, Any]], budget: int, keep_last: int = 0) -> list[dict[str, Any]]:
    """The newest messages that fit ``budget`` tokens (and at least the last ``keep_last``),
    starting with a user message."""
    kept: list[dict[str, Any]] = []
    total = 0
    for message in reversed(messages):
        total += estimate_tokens(str(message.get("content", "")))
        if total > budget and len(kept) >= keep_last:
            break
        kept.append(message)
    kept.reverse()
    while kept and kept[0].get("role") != "user":
        kept.pop(0)
    return kept


def as_model_messages(session: SessionRecord | None, budget: int) -> list[dict[str, Any]]:
    """The session as Messages API history: alternating user/assistant, ending with the assistant."""
    if session is None:
        return []
    out: list[dict[str, Any]] = []
    for m in trim(session.messages, budget):
        role = "assistant" if m.get("role") == "assistant" else "user"
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + str(m.get("content", ""))
        else:
            out.append({"role": role, "content": str(m.get("content", ""))})
    if out and out[-1]["role"] == "user":
        out.pop()
    return out


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await store_call(fn, *args)


async def load(store: Store, tenant_id: str, session_id: str) -> SessionRecord | None:
    """The tenant's session (None when it has none by that id)."""
    return await _in_thread(store.get_session, tenant_id, session_id)  # type: ignore[no-any-return]


async def append_turn(store: Store, tenant_id: str, session_id: str, user: str, assistant: str,
                      budget: int) -> SessionRecord:
    """Append one (user, assistant) pair, rebasing on a concurrent write (409 after many lost races)."""
    at = now_iso()
    pair = [{"role": "user", "content": user, "at": at}, {"role": "assistant", "content": assistant, "at": at}]
    for attempt in range(MAX_ATTEMPTS):
        current = await load(store, tenant_id, session_id)
        version = current.version if current else 0
        record = SessionRecord(id=session_id, tenant_id=tenant_id,
                               messages=trim((current.messages if current else []) + pair, budget, keep_last=2),
                               version=version, expires_at=time.time() + SESSION_TTL_S)
        if await _in_thread(store.put_session, record, version):
            return record
        await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))
    raise Conflict(f"session {session_id!r} kept changing under this turn; retry it")


def public(session: SessionRecord) -> dict[str, Any]:
    """``GET /v1/sessions/{id}``."""
    return {"id": session.id, "version": session.version, "updated_at": session.updated_at,
            "messages": [{"role": m.get("role"), "content": m.get("content"), "at": m.get("at")}
                         for m in session.messages]}


__all__ = ["HEADER", "append_turn", "as_model_messages", "load", "public", "session_id_from", "trim"]
