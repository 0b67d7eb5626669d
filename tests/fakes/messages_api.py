"""Loopback fake of the Anthropic Messages API.

The real ``anthropic`` SDK talks to it over HTTP on 127.0.0.1 via ``base_url`` (or ``ANTHROPIC_BASE_URL``);
nothing in the SDK is patched.

In-process use::

    with FakeMessagesServer() as fake:
        fake.state.push(text("hello"), error(429, headers={"retry-after-ms": "1"}))
        client = anthropic.Anthropic(base_url=fake.url, api_key="test")
        ...
        fake.state.log()  # list of request entries

As a separate process (cwd must be the repository root so ``tests`` is importable)::

    python -m tests.fakes.messages_api --port 0 --delay 0.2
    # prints "READY http://127.0.0.1:<port>" on stdout once it accepts connections

and drive it remotely with :class:`RemoteFake` (``POST /_fake/script``, ``GET /_fake/log``, ``POST /_fake/reset``,
``POST /_fake/billing``).

Billing: every ``/v1/messages`` request the fake accepts is billed, like a real provider, and the log entry records it
as ``billed: {"input_tokens", "output_tokens"}`` -- also when the client went away before the answer (the provider
keeps generating: the full answer is billed); errors (scripted 4xx/5xx, invalid requests) are billed zero. Two modes::

    FakeState(billing="default")          # today's estimate: ~4 characters of the JSON per token (the default)
    FakeState(billing="tokens_per_byte")  # 1 token per UTF-8 byte of the text the model reads: the densest
                                          # realistic byte-level tokenizer (see model_read_bytes)
    fake.state.billing = "tokens_per_byte"; fake.state.usage_override = {"input_tokens": -3000000}
    RemoteFake(url).set_billing("tokens_per_byte", usage_override={"input_tokens": 2e18})
    python -m tests.fakes.messages_api --billing tokens_per_byte

``usage_override`` replaces fields of the usage REPORTED in answers (any JSON value: negative, huge, fractional, a
string) while ``billed`` stays the real count: a misbehaving provider or proxy. ``count_tokens`` answers the exact
input tokens the billing mode bills for that body. :func:`billed_micros` / :func:`billed_usd` add up log entries at
``shared.pricing`` prices.

Without a scripted behaviour the fake answers in "auto mode": a forced ``tool_choice`` (``{"type": "tool"}`` or
``{"type": "any"}``) gets a ``tool_use`` block whose input is generated to validate against the tool's
``input_schema``; a JSON-schema ``output_config.format`` gets a JSON text answer valid against that schema; anything
else gets ``"Fake answer to: <first 60 chars of the last user text>"``.

Note on retries (``anthropic._base_client``): the SDK honours ``retry-after-ms`` / ``retry-after`` only when the value
is > 0; ``retry-after: 0`` falls back to its exponential backoff (~0.4-0.5 s for the first retry). For fast retries
use ``headers={"retry-after-ms": "1"}`` (or ``"retry-after": "0.001"``). ``x-should-retry: true|false`` overrides the
status-code based decision.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import math
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "BILLING_MODES",
    "Behaviour",
    "FakeMessagesProcess",
    "FakeMessagesServer",
    "FakeState",
    "RemoteFake",
    "auto",
    "billed_by_model",
    "billed_micros",
    "billed_tokens",
    "billed_usd",
    "create_app",
    "delay",
    "error",
    "example_for_schema",
    "forced_invalid",
    "max_overlap",
    "model_read_bytes",
    "text",
    "tool_use",
    "tool_uses",
]

# This SDK version sends api_key as "Authorization: Bearer <key>"; older ones used "x-api-key". Both are logged, and
# log entries carry "api_key" taken from whichever is present.
HEADERS_OF_INTEREST = ("x-api-key", "authorization", "anthropic-version", "user-agent", "anthropic-beta")

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# --------------------------------------------------------------------------------------------------------------------
# Behaviours
# --------------------------------------------------------------------------------------------------------------------

BILLING_MODES = ("default", "tokens_per_byte")

BEHAVIOUR_KINDS = ("auto", "text", "tool_use", "tool_uses", "forced_invalid", "error", "delay")


@dataclass(frozen=True)
class Behaviour:
    """One scripted answer. Build with :func:`text`, :func:`tool_use`, :func:`forced_invalid`, :func:`error`,
    :func:`delay` or :func:`auto`. JSON round-trips via :meth:`to_dict` / :meth:`from_dict`."""

    kind: str
    text: str | None = None
    stop_reason: str | None = None
    name: str | None = None
    input: Any = None
    status: int | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    seconds: float = 0.0
    then: Behaviour | None = None

    def __post_init__(self) -> None:
        if self.kind not in BEHAVIOUR_KINDS:
            raise ValueError(f"unknown behaviour kind {self.kind!r}; expected one of {BEHAVIOUR_KINDS}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("text", "stop_reason", "name", "input", "status", "body", "headers"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.seconds:
            out["seconds"] = self.seconds
        if self.then is not None:
            out["then"] = self.then.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Behaviour:
        data = dict(data)
        then = data.pop("then", None)
        known = {"kind", "text", "stop_reason", "name", "input", "status", "body", "headers", "seconds"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown behaviour fields: {sorted(unknown)}")
        return cls(**data, then=cls.from_dict(then) if then is not None else None)


def auto() -> Behaviour:
    """Answer as if nothing was scripted (schema-valid forced tool input, or a text answer)."""
    return Behaviour("auto")


def text(value: str, stop_reason: str = "end_turn") -> Behaviour:
    """A text turn."""
    return Behaviour("text", text=value, stop_reason=stop_reason)


def tool_use(name: str, input: dict[str, Any] | None = None, text: str | None = None) -> Behaviour:  # noqa: A002
    """A ``tool_use`` block (id ``toolu_fake_<n>``), optionally preceded by a text block; stop_reason ``tool_use``."""
    return Behaviour("tool_use", name=name, input=dict(input or {}), text=text, stop_reason="tool_use")


def tool_uses(uses: list[dict[str, Any]]) -> Behaviour:
    """Several ``tool_use`` blocks in one answer: ``uses`` is ``[{"name", "input"}, ...]``."""
    return Behaviour("tool_uses", input=[dict(u) for u in uses], stop_reason="tool_use")


def forced_invalid() -> Behaviour:
    """With a forced tool_choice: a ``tool_use`` with input ``{}`` (invalid for schemas with required fields).
    Without one: an auto text answer."""
    return Behaviour("forced_invalid")


def error(
    status: int, body: Any = None, headers: dict[str, str] | None = None, message: str | None = None
) -> Behaviour:
    """An HTTP error with the Anthropic error body ``{"type": "error", "error": {"type": ..., "message": ...}}``
    (type derived from the status: 429 rate_limit_error, 529 overloaded_error, 500 api_error, ...) unless ``body``
    is given. Every error carries a ``request-id`` header; ``headers`` are added (e.g. ``{"retry-after-ms": "1"}``)."""
    if body is None:
        err_type = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = {"type": "error", "error": {"type": err_type, "message": message or f"Fake {err_type} ({status})"}}
    return Behaviour("error", status=status, body=body, headers=dict(headers or {}))


def delay(seconds: float, then: Behaviour | None = None) -> Behaviour:
    """Sleep ``seconds`` (asynchronously; other requests proceed), then answer with ``then`` (auto if None).
    The sleep ends early if the client disconnects (e.g. a client-side timeout); the answer it would have given is
    billed all the same (a provider keeps generating)."""
    return Behaviour("delay", seconds=float(seconds), then=then)


# --------------------------------------------------------------------------------------------------------------------
# JSON Schema -> example value
# --------------------------------------------------------------------------------------------------------------------

_STRING_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "duration": "PT1H",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}

_PATTERN_CANDIDATES = (
    "a",
    "abc",
    "example",
    "A",
    "ABC",
    "Abc",
    "a1",
    "A1",
    "1",
    "123",
    "0",
    "a-b",
    "a_b",
    "abc123",
    "2024-01-01",
    "user@example.com",
    "https://example.com/",
    "x" * 8,
)

# The SDK's transform_schema() moves unsupported constraints into the description as "{minimum: 1, maximum: 10}".
_DESC_CONSTRAINT_KEYS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)
_MAX_DEPTH = 12


def _desc_constraints(schema: dict[str, Any]) -> dict[str, Any]:
    desc = schema.get("description")
    if not isinstance(desc, str) or not desc.rstrip().endswith("}"):
        return {}
    tail = desc[desc.rfind("{") :]
    found: dict[str, Any] = {}
    for key in _DESC_CONSTRAINT_KEYS:
        if key in schema:
            continue
        m = re.search(r"[{,]\s*" + key + r":\s*(-?[0-9][0-9.eE+-]*)\s*[,}]", tail)
        if m:
            try:
                num = float(m.group(1))
            except ValueError:
                continue
            found[key] = int(num) if num.is_integer() else num
    return found


class _SchemaExampleGenerator:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self._ref_stack: list[str] = []
        self._minimal = 0

    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref supported, got {ref!r}")
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def normalize(self, schema: Any) -> dict[str, Any]:
        """Resolve $ref / single-branch allOf and merge sibling keys; add constraints hidden in descriptions."""
        if schema is True or schema is None:
            return {}
        if not isinstance(schema, dict):
            return {}
        seen = 0
        while "$ref" in schema and seen < 50:
            seen += 1
            target = self.resolve(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **{k: v for k, v in rest.items() if k not in ("description", "title")}}
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.normalize(part)
                for k, v in part.items():
                    if k == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **v}
                    elif k == "required":
                        merged["required"] = list(dict.fromkeys([*merged.get("required", []), *v]))
                    else:
                        merged.setdefault(k, v)
            schema = merged
        extra = _desc_constraints(schema)
        if extra:
            schema = {**schema, **extra}
        return schema

    def generate(self, schema: Any, depth: int = 0, variant: int = 0, hint: str = "") -> Any:
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not isinstance(ref, str):
            return self._generate(schema, depth, variant, hint)
        # Recursive models: below a $ref that is already being generated, only produce the minimum (required
        # properties, minItems, null for optionals) so the example stays small and finite.
        recursive = ref in self._ref_stack
        self._ref_stack.append(ref)
        self._minimal += recursive
        try:
            return self._generate(schema, depth, variant, hint)
        finally:
            self._minimal -= recursive
            self._ref_stack.pop()

    def _generate(self, schema: Any, depth: int, variant: int, hint: str) -> Any:
        if depth > 4 * _MAX_DEPTH:
            return None
        schema = self.normalize(schema)
        deep = depth >= _MAX_DEPTH or self._minimal > 0

        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            values = schema["enum"]
            non_null = [v for v in values if v is not None] or values
            return copy.deepcopy(non_null[variant % len(non_null)])
        if "default" in schema and deep:
            return copy.deepcopy(schema["default"])

        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                non_null = [o for o in options if self.normalize(o).get("type") != "null"]
                if deep and len(non_null) < len(options):
                    return None
                chosen = (non_null or options)[0]
                chosen = chosen if isinstance(chosen, dict) else {}
                # keep sibling constraints (e.g. description) but let the chosen branch win
                siblings = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
                return self.generate({**siblings, **chosen}, depth, variant, hint)

        typ = schema.get("type")
        if isinstance(typ, list):
            non_null = [t for t in typ if t != "null"]
            if deep and "null" in typ:
                return None
            typ = non_null[0] if non_null else "null"
        if typ is None:
            if "properties" in schema or "required" in schema or "additionalProperties" in schema:
                typ = "object"
            elif "items" in schema or "prefixItems" in schema:
                typ = "array"
            elif any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
                typ = "number"
            else:
                typ = "string"

        if typ == "object":
            return self._object(schema, depth, deep)
        if typ == "array":
            return self._array(schema, depth, deep, hint)
        if typ == "string":
            return self._string(schema, variant, hint)
        if typ == "integer":
            return self._integer(schema, variant)
        if typ == "number":
            return self._number(schema, variant)
        if typ == "boolean":
            return variant % 2 == 0
        if typ == "null":
            return None
        return f"fake {hint or 'value'}"

    def _object(self, schema: dict[str, Any], depth: int, deep: bool) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        out: dict[str, Any] = {}
        names = [n for n in props if n in required] if deep else list(props)
        for name in names:
            out[name] = self.generate(props[name], depth + 1, 0, name)
        extra_schema = schema.get("additionalProperties")
        if not isinstance(extra_schema, dict):
            pattern_props = schema.get("patternProperties")
            has_pattern = isinstance(pattern_props, dict) and pattern_props
            extra_schema = next(iter(pattern_props.values())) if has_pattern else {}
        for name in required:
            if name not in out:
                out[name] = self.generate(extra_schema, depth + 1, 0, name)
        min_props = int(schema.get("minProperties") or 0)
        i = 0
        while len(out) < min_props:
            key = f"key_{i}"
            i += 1
            if key not in out:
                out[key] = self.generate(extra_schema, depth + 1, i, key)
        return out

    def _array(self, schema: dict[str, Any], depth: int, deep: bool, hint: str) -> list[Any]:
        min_items = int(schema.get("minItems") or 0)
        max_items = schema.get("maxItems")
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            out = [self.generate(s, depth + 1, i, hint) for i, s in enumerate(prefix)]
            items = schema.get("items")
            while len(out) < min_items and isinstance(items, dict):
                out.append(self.generate(items, depth + 1, len(out), hint))
            return out
        count = min_items if deep else max(min_items, 1)
        if max_items is not None:
            count = min(count, int(max_items))
        items = schema.get("items")
        if items is False:
            return []
        item_schema = items if isinstance(items, dict) else {}
        return [self.generate(item_schema, depth + 1, i, hint) for i in range(count)]

    def _string(self, schema: dict[str, Any], variant: int, hint: str) -> str:
        min_len = int(schema.get("minLength") or 0)
        max_len = schema.get("maxLength")
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _STRING_FORMATS:
            return _STRING_FORMATS[fmt]
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                compiled = re.compile(pattern)
            except re.error:
                compiled = None
            if compiled is not None:
                for cand in _PATTERN_CANDIDATES:
                    if compiled.search(cand) and len(cand) >= min_len and (max_len is None or len(cand) <= max_len):
                        return cand
        value = f"fake {hint}" if hint else "fake text"
        if variant:
            value = f"{value} {variant}"
        if len(value) < min_len:
            value = value + "x" * (min_len - len(value))
        if max_len is not None and len(value) > int(max_len):
            value = value[: int(max_len)]
            if variant and max_len:
                # keep variants distinct where possible (uniqueItems)
                value = (value[:-1] + "abcdefghijklmnopqrstuvwxyz"[variant % 26]) if value else value
        return value

    @staticmethod
    def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
        lo: float | None = None
        lo_excl = False
        hi: float | None = None
        hi_excl = False
        if isinstance(schema.get("minimum"), (int, float)):
            lo = schema["minimum"]
        ex_lo = schema.get("exclusiveMinimum")
        if isinstance(ex_lo, bool):  # draft-4 style
            lo_excl = ex_lo
        elif isinstance(ex_lo, (int, float)) and (lo is None or ex_lo >= lo):
            lo, lo_excl = ex_lo, True
        if isinstance(schema.get("maximum"), (int, float)):
            hi = schema["maximum"]
        ex_hi = schema.get("exclusiveMaximum")
        if isinstance(ex_hi, bool):
            hi_excl = ex_hi
        elif isinstance(ex_hi, (int, float)) and (hi is None or ex_hi <= hi):
            hi, hi_excl = ex_hi, True
        return lo, lo_excl, hi, hi_excl

    def _integer(self, schema: dict[str, Any], variant: int) -> int:
        lo_f, lo_excl, hi_f, hi_excl = self._bounds(schema)
        lo = None if lo_f is None else (math.floor(lo_f) + 1 if lo_excl else math.ceil(lo_f))
        hi = None if hi_f is None else (math.ceil(hi_f) - 1 if hi_excl else math.floor(hi_f))
        mult = schema.get("multipleOf")
        step = int(mult) if isinstance(mult, (int, float)) and mult >= 1 and float(mult).is_integer() else 1
        if lo is not None:
            value = lo
        elif hi is not None:
            value = min(hi, 1)
        else:
            value = 1
        value = math.ceil(value / step) * step
        if hi is not None and value > hi:
            value = math.floor(hi / step) * step
        candidate = value + variant * step
        if hi is None or candidate <= hi:
            value = candidate
        return int(value)

    def _number(self, schema: dict[str, Any], variant: int) -> float | int:
        lo, lo_excl, hi, hi_excl = self._bounds(schema)
        mult = schema.get("multipleOf")
        if isinstance(mult, (int, float)) and mult > 0:
            start = lo if lo is not None else (min(hi, 1.0) if hi is not None else 1.0)
            k = math.ceil(start / mult)
            if lo is not None and lo_excl and k * mult <= lo:
                k += 1
            k += variant
            value = k * mult
            if hi is not None and (value > hi or (hi_excl and value >= hi)):
                value = (k - variant) * mult
            value = round(value, 12)
            return int(value) if float(value).is_integer() and isinstance(mult, int) else value
        if lo is not None and hi is not None:
            span = hi - lo
            return lo + span * (0.5 if not variant else 1 / (2 + variant))
        if lo is not None:
            return lo + 1.0 + variant if lo_excl else lo + float(variant)
        if hi is not None:
            base = min(hi - 1.0, 1.0) if hi_excl else min(hi, 1.0)
            return base - variant
        return 1.5 + variant


def example_for_schema(schema: dict[str, Any]) -> Any:
    """A value valid against ``schema`` (JSON Schema as produced by pydantic, incl. ``$defs``/``$ref``)."""
    return _SchemaExampleGenerator(schema).generate(schema)


# --------------------------------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class FakeState:
    """Thread-safe script queue + request log shared between the test thread and the server thread.

    Log entries are dicts with: ``index``, ``path``, ``received_at`` / ``finished_at`` (``time.monotonic()``,
    comparable across processes on the same host), ``received_wall`` / ``finished_wall`` (``time.time()``), ``body``
    (parsed JSON), ``headers`` (x-api-key, authorization, anthropic-version, user-agent, anthropic-beta), ``api_key``
    (from x-api-key or the Bearer token), ``model``, ``max_tokens``,
    ``tool_choice``, ``stream``, ``behaviour`` (kind that produced the answer, after unwrapping delays),
    ``scripted`` (a queued behaviour was consumed), ``delay`` (seconds slept), ``status`` (HTTP status sent; 499 if
    the client went away during a delay), ``disconnected``.
    ``billed`` (``{"input_tokens", "output_tokens"}``: what the provider charges for the request; zero for errors
    and count_tokens), ``reported_usage`` (the usage sent in the answer, after ``usage_override``).
    ``finished_at`` is None while a request is in flight.

    ``billing`` is ``"default"`` or ``"tokens_per_byte"``; ``usage_override`` (dict or None) replaces fields of the
    reported usage. :meth:`reset` puts ``default_delay``, ``require_api_key``, ``billing`` and ``usage_override``
    back to the values the state was built with.
    """

    default_delay: float = 0.0
    require_api_key: str | None = None
    billing: str = "default"
    usage_override: dict[str, Any] | None = None
    _queue: deque[Behaviour] = field(default_factory=deque, repr=False)
    _log: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _cond: threading.Condition | None = field(default=None, repr=False)
    _counters: dict[str, int] = field(default_factory=dict, repr=False)
    _in_flight: int = 0
    max_in_flight: int = 0
    closing: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        self._cond = threading.Condition(self._lock)
        self.set_billing(self.billing, usage_override=self.usage_override)
        self._initial = (self.default_delay, self.require_api_key, self.billing, copy.deepcopy(self.usage_override))

    # -- script --------------------------------------------------------------------------------------------------
    def push(self, *behaviours: Behaviour) -> None:
        """Queue behaviours (FIFO; each consumed by one /v1/messages request, including SDK retries)."""
        for b in behaviours:
            if not isinstance(b, Behaviour):
                raise TypeError(f"expected Behaviour, got {type(b).__name__}")
        with self._lock:
            self._queue.extend(behaviours)

    def set_script(self, behaviours: Iterable[Behaviour], append: bool = False) -> None:
        behaviours = list(behaviours)
        with self._lock:
            if not append:
                self._queue.clear()
            self.push(*behaviours)

    def pending(self) -> int:
        """Number of queued, not yet consumed behaviours."""
        with self._lock:
            return len(self._queue)

    def pop(self) -> Behaviour | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def reset(self) -> None:
        """Clear the script, the log and counters; default_delay, require_api_key, billing and usage_override back
        to their initial values."""
        with self._lock:
            self._queue.clear()
            self._log.clear()
            self._counters.clear()
            self.default_delay, self.require_api_key, self.billing, override = self._initial
            self.usage_override = copy.deepcopy(override)
            self.max_in_flight = self._in_flight

    # -- billing -------------------------------------------------------------------------------------------------
    def set_billing(self, mode: str | None = None, *, usage_override: Any = ...) -> dict[str, Any]:
        """Set the billing mode (``"default"`` / ``"tokens_per_byte"``) and/or the reported-usage override
        (a dict of usage fields, or None to report the real usage); arguments left out keep their value.
        Returns the current settings."""
        if mode is not None and mode not in BILLING_MODES:
            raise ValueError(f"unknown billing mode {mode!r}; expected one of {BILLING_MODES}")
        if usage_override is not ... and usage_override is not None and not isinstance(usage_override, dict):
            raise ValueError("usage_override must be an object (usage field -> reported value) or null")
        with self._lock:
            if mode is not None:
                self.billing = mode
            if usage_override is not ...:
                self.usage_override = copy.deepcopy(usage_override)
            return self.billing_settings()

    def billing_settings(self) -> dict[str, Any]:
        """``{"mode", "usage_override"}``."""
        with self._lock:
            return {"mode": self.billing, "usage_override": copy.deepcopy(self.usage_override)}

    def input_tokens_for(self, body: dict[str, Any]) -> int:
        """Input tokens the current billing mode bills for a request body (what count_tokens answers)."""
        if self.billing == "tokens_per_byte":
            return max(1, model_read_bytes(body))
        return _input_tokens(body)

    def output_tokens_for(self, body: dict[str, Any], content: list[dict[str, Any]]) -> int:
        """Output tokens billed for ``content`` (clipped at the request's ``max_tokens``)."""
        if self.billing == "tokens_per_byte":
            n = max(1, _content_bytes(content))
        else:
            n = _estimate_tokens(content)
        return min(n, int(body.get("max_tokens") or 1))

    def next_id(self, kind: str) -> int:
        with self._lock:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            return self._counters[kind]

    # -- log -----------------------------------------------------------------------------------------------------
    def log(self, path: str | None = "/v1/messages") -> list[dict[str, Any]]:
        """Deep copy of the log entries for ``path`` (all paths when None)."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._log if path is None or e["path"] == path]

    def wait_for_requests(
        self, n: int, timeout: float = 5.0, path: str | None = "/v1/messages"
    ) -> list[dict[str, Any]]:
        """Block until at least ``n`` requests (for ``path``) were received; returns the log. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        assert self._cond is not None
        with self._cond:
            while True:
                entries = self.log(path)
                if len(entries) >= n:
                    return entries
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"only {len(entries)} of {n} requests arrived within {timeout}s")
                self._cond.wait(remaining)

    def _begin(self, path: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        body_d = body if isinstance(body, dict) else {}
        entry: dict[str, Any] = {
            "path": path,
            "received_at": time.monotonic(),
            "received_wall": time.time(),
            "finished_at": None,
            "finished_wall": None,
            "body": body,
            "headers": headers,
            "api_key": _api_key_from(headers),
            "model": body_d.get("model"),
            "max_tokens": body_d.get("max_tokens"),
            "tool_choice": body_d.get("tool_choice"),
            "stream": bool(body_d.get("stream", False)),
            "behaviour": None,
            "scripted": False,
            "delay": 0.0,
            "status": None,
            "disconnected": False,
            "billed": {"input_tokens": 0, "output_tokens": 0},
            "reported_usage": None,
        }
        assert self._cond is not None
        with self._cond:
            entry["index"] = len(self._log)
            self._log.append(entry)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self._cond.notify_all()
        return entry

    def _finish(self, entry: dict[str, Any], status: int | None = None) -> None:
        with self._lock:
            if entry["finished_at"] is not None:
                return
            entry["finished_at"] = time.monotonic()
            entry["finished_wall"] = time.time()
            if status is not None:
                entry["status"] = status
            self._in_flight -= 1


def _api_key_from(headers: dict[str, str]) -> str | None:
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def max_overlap(entries: Iterable[dict[str, Any]]) -> int:
    """Maximum number of requests simultaneously in flight according to received_at/finished_at of log entries."""
    events: list[tuple[float, int]] = []
    for e in entries:
        events.append((e["received_at"], 1))
        events.append((e["finished_at"] if e["finished_at"] is not None else math.inf, -1))
    events.sort(key=lambda t: (t[0], t[1]))  # ends before starts at identical timestamps
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


# --------------------------------------------------------------------------------------------------------------------
# Response building
# --------------------------------------------------------------------------------------------------------------------


def _estimate_tokens(obj: Any) -> int:
    return max(1, len(json.dumps(obj, default=str)) // 4)


def _input_tokens(body: dict[str, Any]) -> int:
    return _estimate_tokens({k: body.get(k) for k in ("messages", "system", "tools")})


def _utf8(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))


def _block_bytes(block: Any) -> int:
    """UTF-8 bytes the model reads in one content block (or a bare string)."""
    if isinstance(block, str):
        return _utf8(block)
    if not isinstance(block, dict):
        return _json_bytes(block) if block is not None else 0
    kind = block.get("type")
    if kind == "text":
        return _utf8(block.get("text"))
    if kind == "tool_use" or kind == "server_tool_use":
        return _utf8(block.get("name")) + _json_bytes(block.get("input", {}))
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, list):
            return sum(_block_bytes(b) for b in inner)
        return _block_bytes(inner) if inner is not None else 0
    if kind == "thinking":
        return _utf8(block.get("thinking"))
    if kind == "redacted_thinking":
        return _utf8(block.get("data"))
    if kind == "document" and isinstance(block.get("source"), dict) and block["source"].get("type") == "text":
        return _utf8(block["source"].get("data"))
    return _json_bytes(block)  # anything else: all of it, serialised


def _content_bytes(content: Any) -> int:
    if isinstance(content, list):
        return sum(_block_bytes(b) for b in content)
    return _block_bytes(content)


def model_read_bytes(body: dict[str, Any]) -> int:
    """UTF-8 bytes of the text the model reads in a Messages request: the system text, every text / tool_result
    content / tool_use input (JSON without ASCII escaping) of every message, each tool's name, description and
    input_schema, and a structured-output schema if any. ``tokens_per_byte`` billing charges one token per byte."""
    if not isinstance(body, dict):
        return 0
    total = _content_bytes(body.get("system")) if body.get("system") is not None else 0
    for msg in body.get("messages") or []:
        if isinstance(msg, dict):
            total += _content_bytes(msg.get("content"))
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        total += _utf8(tool.get("name")) + _utf8(tool.get("description"))
        if "input_schema" in tool:
            total += _json_bytes(tool["input_schema"])
    schema = _output_schema(body)
    if schema is not None:
        total += _json_bytes(schema)
    return total


def billed_tokens(entries: Iterable[dict[str, Any]]) -> dict[str, int]:
    """``{"input_tokens", "output_tokens", "requests"}`` billed over log entries (requests = entries billed > 0)."""
    out = {"input_tokens": 0, "output_tokens": 0, "requests": 0}
    for e in entries:
        b = e.get("billed") or {}
        i, o = int(b.get("input_tokens", 0)), int(b.get("output_tokens", 0))
        out["input_tokens"] += i
        out["output_tokens"] += o
        out["requests"] += 1 if (i or o) else 0
    return out


def billed_by_model(entries: Iterable[dict[str, Any]], cost: Any = None) -> dict[str, int]:
    """Billed micro-dollars per model over log entries, each request priced on its own (rounded up, as the ledger
    does) with ``cost(model, input_tokens, output_tokens)`` -- ``shared.pricing.cost_micros`` by default."""
    if cost is None:
        from shared.pricing import cost_micros as cost
    out: dict[str, int] = {}
    for e in entries:
        b = e.get("billed") or {}
        i, o = int(b.get("input_tokens", 0)), int(b.get("output_tokens", 0))
        if not (i or o):
            continue
        model = str(e.get("model"))
        out[model] = out.get(model, 0) + int(cost(model, i, o))
    return out


def billed_micros(entries: Iterable[dict[str, Any]], cost: Any = None) -> int:
    """What the provider charged for these log entries, in micro-dollars (see :func:`billed_by_model`)."""
    return sum(billed_by_model(entries, cost).values())


def billed_usd(entries: Iterable[dict[str, Any]], cost: Any = None) -> float:
    """:func:`billed_micros` in USD."""
    return billed_micros(entries, cost) / 1_000_000


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for msg in reversed(messages):
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            parts: list[str] = []
            for block in content:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
                elif block.get("type") == "tool_result":
                    inner = block.get("content")
                    if isinstance(inner, str):
                        parts.append(inner)
                    elif isinstance(inner, list):
                        parts.extend(str(b.get("text", "")) for b in inner if isinstance(b, dict))
            return " ".join(p for p in parts if p)
        return ""
    return ""


def _forced_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool definition the request forces (tool_choice type "tool", or "any" -> first tool), else None."""
    choice = body.get("tool_choice")
    tools = body.get("tools") or []
    if not isinstance(choice, dict) or not isinstance(tools, list):
        return None
    if choice.get("type") == "tool":
        for tool in tools:
            if isinstance(tool, dict) and tool.get("name") == choice.get("name"):
                return tool
        raise _RequestError(f"tool_choice names unknown tool {choice.get('name')!r}")
    if choice.get("type") == "any" and tools:
        return tools[0]
    return None


def _output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """JSON schema requested via output_config.format (GA) or output_format (beta), if any."""
    for fmt in ((body.get("output_config") or {}).get("format"), body.get("output_format")):
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
            return fmt["schema"]
    return None


class _RequestError(Exception):
    pass


def _validate_messages_request(body: Any) -> None:
    if not isinstance(body, dict):
        raise _RequestError("request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _RequestError("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _RequestError("max_tokens: Field required (integer >= 1)")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise _RequestError("messages: at least one message is required")


class _Responder:
    def __init__(self, state: FakeState, body: dict[str, Any]) -> None:
        self.state = state
        self.body = body

    def tool_block(self, name: str, tool_input: Any) -> dict[str, Any]:
        tool_id = f"toolu_fake_{self.state.next_id('toolu')}"
        return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}

    def auto_content(self) -> tuple[list[dict[str, Any]], str]:
        tool = _forced_tool(self.body)
        if tool is not None:
            tool_input = example_for_schema(tool.get("input_schema") or {"type": "object"})
            if not isinstance(tool_input, dict):
                tool_input = {}
            return [self.tool_block(tool["name"], tool_input)], "tool_use"
        schema = _output_schema(self.body)
        if schema is not None:
            return [{"type": "text", "text": json.dumps(example_for_schema(schema))}], "end_turn"
        return self.fallback_text(), "end_turn"

    def fallback_text(self) -> list[dict[str, Any]]:
        return [{"type": "text", "text": f"Fake answer to: {_last_user_text(self.body.get('messages'))[:60]}"}]

    def content_for(self, behaviour: Behaviour) -> tuple[list[dict[str, Any]], str]:
        if behaviour.kind == "text":
            return [{"type": "text", "text": behaviour.text or ""}], behaviour.stop_reason or "end_turn"
        if behaviour.kind == "tool_uses":  # several tool_use blocks in one answer
            return [self.tool_block(u["name"], copy.deepcopy(u.get("input") or {})) for u in behaviour.input], \
                "tool_use"
        if behaviour.kind == "tool_use":
            blocks: list[dict[str, Any]] = []
            if behaviour.text:
                blocks.append({"type": "text", "text": behaviour.text})
            blocks.append(self.tool_block(behaviour.name or "tool", copy.deepcopy(behaviour.input or {})))
            return blocks, "tool_use"
        if behaviour.kind == "forced_invalid":
            tool = _forced_tool(self.body)
            if tool is not None:
                return [self.tool_block(tool["name"], {})], "tool_use"
            return self.fallback_text(), "end_turn"
        return self.auto_content()

    def message(
        self, content: list[dict[str, Any]], stop_reason: str, entry: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The answer; bills it in ``entry`` (the real usage) and reports the usage after ``usage_override``."""
        body = self.body
        state = self.state
        with state._lock:
            input_tokens = state.input_tokens_for(body)
            output_tokens = state.output_tokens_for(body, content)
            override = copy.deepcopy(state.usage_override)
        usage: dict[str, Any] = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        if override:
            usage.update(override)
        if entry is not None:
            entry["billed"] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
            entry["reported_usage"] = copy.deepcopy(usage)
        return {
            "id": f"msg_fake_{self.state.next_id('msg')}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(s: str, size: int = 16) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)] or [""]


def _stream_events(message: dict[str, Any]) -> list[bytes]:
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events = [_sse("message_start", {"type": "message_start", "message": start}), _sse("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            skeleton = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": c} for c in _chunks(json.dumps(block["input"]))]
        else:
            skeleton = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block.get("text", ""))]
        events.append(
            _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": skeleton})
        )
        for d in deltas:
            events.append(_sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}))
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"].get("output_tokens")},
            },
        )
    )
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events


# --------------------------------------------------------------------------------------------------------------------
# App
# --------------------------------------------------------------------------------------------------------------------


def _apply_billing(state: FakeState, data: Any) -> dict[str, Any]:
    """``{"mode": ..., "usage_override": {...} | null}`` (either key optional) onto ``state``."""
    if not isinstance(data, dict):
        raise ValueError('billing must be an object like {"mode": "tokens_per_byte", "usage_override": {...}}')
    unknown = set(data) - {"mode", "usage_override"}
    if unknown:
        raise ValueError(f"unknown billing fields: {sorted(unknown)}")
    return state.set_billing(
        data.get("mode"), usage_override=data["usage_override"] if "usage_override" in data else ...
    )


def create_app(state: FakeState) -> Starlette:
    """Starlette app: POST /v1/messages, POST /v1/messages/count_tokens, GET /_fake/log, POST /_fake/script,
    POST /_fake/reset, GET|POST /_fake/billing."""

    def error_response(entry: dict[str, Any] | None, status: int, body: Any, headers: dict[str, str] | None = None):
        req_id = f"req_fake_{state.next_id('req')}"
        if isinstance(body, dict) and body.get("type") == "error":
            body = {**body, "request_id": req_id}
        resp = JSONResponse(body, status_code=status, headers={"request-id": req_id, **(headers or {})})
        if entry is not None:
            state._finish(entry, status)
        return resp

    def invalid(entry: dict[str, Any] | None, message: str, status: int = 400) -> Response:
        err_type = ERROR_TYPES.get(status, "invalid_request_error")
        return error_response(entry, status, {"type": "error", "error": {"type": err_type, "message": message}})

    async def read_entry(request: Request) -> tuple[dict[str, Any], Any, Response | None]:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {h: request.headers[h] for h in HEADERS_OF_INTEREST if h in request.headers}
        entry = state._begin(request.url.path, body, headers)
        if state.require_api_key is not None and entry["api_key"] != state.require_api_key:
            return entry, body, invalid(entry, "invalid x-api-key", 401)
        return entry, body, None

    async def sleep(request: Request, entry: dict[str, Any], seconds: float) -> bool:
        """Sleep; returns False if the client went away (or the server is closing) meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, 0.02))
            if state.closing.is_set() or await request.is_disconnected():
                entry["disconnected"] = True
                return False

    async def messages(request: Request) -> Response:
        entry, body, early = await read_entry(request)
        if early is not None:
            return early
        try:
            _validate_messages_request(body)
            _forced_tool(body)
        except _RequestError as exc:
            return invalid(entry, str(exc))

        scripted = state.pop()
        behaviour = scripted or auto()
        waited = 0.0
        while behaviour.kind == "delay":
            waited += behaviour.seconds
            behaviour = behaviour.then or auto()
        if behaviour.kind == "auto":
            waited += state.default_delay
        entry.update(behaviour=behaviour.kind, scripted=scripted is not None, delay=waited)
        if waited > 0 and not await sleep(request, entry, waited):
            # A provider keeps generating after its client left: the full answer is billed all the same.
            if behaviour.kind != "error":
                responder = _Responder(state, body)
                try:
                    responder.message(*responder.content_for(behaviour), entry)
                except _RequestError:
                    pass
            state._finish(entry, 499)
            return Response(status_code=499)

        if behaviour.kind == "error":
            return error_response(entry, behaviour.status or 500, behaviour.body, behaviour.headers)

        responder = _Responder(state, body)
        try:
            content, stop_reason = responder.content_for(behaviour)
        except _RequestError as exc:
            return invalid(entry, str(exc))
        message = responder.message(content, stop_reason, entry)
        req_id = f"req_fake_{state.next_id('req')}"

        if not body.get("stream"):
            state._finish(entry, 200)
            return JSONResponse(message, headers={"request-id": req_id})

        events = _stream_events(message)

        async def gen() -> AsyncIterator[bytes]:
            try:
                for ev in events:
                    yield ev
            finally:
                state._finish(entry, 200)

        entry["status"] = 200
        return StreamingResponse(
            gen(), media_type="text/event-stream", headers={"request-id": req_id, "cache-control": "no-cache"}
        )

    async def count_tokens(request: Request) -> Response:
        entry, body, early = await read_entry(request)
        if early is not None:
            return early
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return invalid(entry, "messages: Field required")
        n = state.input_tokens_for(body)
        state._finish(entry, 200)
        return JSONResponse({"input_tokens": n}, headers={"request-id": f"req_fake_{state.next_id('req')}"})

    async def get_log(request: Request) -> Response:
        path = request.query_params.get("path")
        return JSONResponse(state.log(path if path else None))

    async def post_script(request: Request) -> Response:
        try:
            data = await request.json()
            if isinstance(data, list):
                data = {"script": data}
            behaviours = [Behaviour.from_dict(d) for d in data.get("script", [])]
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        billing = data.get("billing")
        if billing is not None:
            try:
                _apply_billing(state, billing)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        state.set_script(behaviours, append=bool(data.get("append", False)))
        if data.get("default_delay") is not None:
            state.default_delay = float(data["default_delay"])
        return JSONResponse(
            {"pending": state.pending(), "default_delay": state.default_delay, "billing": state.billing_settings()}
        )

    async def post_billing(request: Request) -> Response:
        try:
            _apply_billing(state, await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(state.billing_settings())

    async def get_billing(request: Request) -> Response:
        return JSONResponse(state.billing_settings())

    async def post_reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/_fake/log", get_log, methods=["GET"]),
            Route("/_fake/script", post_script, methods=["POST"]),
            Route("/_fake/reset", post_reset, methods=["POST"]),
            Route("/_fake/billing", post_billing, methods=["POST"]),
            Route("/_fake/billing", get_billing, methods=["GET"]),
        ]
    )


# --------------------------------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------------------------------


class FakeMessagesServer:
    """Runs the fake with uvicorn in a daemon thread on 127.0.0.1 (``port=0``: a free port).

    ``with FakeMessagesServer() as fake: fake.url, fake.state`` — ``url`` is e.g. ``http://127.0.0.1:41234``
    (pass it as the SDK's ``base_url`` / ``ANTHROPIC_BASE_URL``)."""

    def __init__(self, state: FakeState | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state or FakeState()
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> FakeMessagesServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self.state.closing.clear()
        config = uvicorn.Config(
            create_app(self.state),
            log_level="warning",
            access_log=False,
            log_config=None,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"fake-messages-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("fake messages server failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError("fake messages server did not start")
            time.sleep(0.005)
        with socket.create_connection((self.host, self.port), timeout=timeout):
            pass
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is None or self._thread is None:
            return
        self.state.closing.set()
        self._server.should_exit = True
        self._thread.join(timeout / 2)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout / 2)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeMessagesServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RemoteFake:
    """Drives a fake running elsewhere (e.g. a subprocess) over HTTP."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def set_script(
        self, behaviours: Iterable[Behaviour], append: bool = False, default_delay: float | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"script": [b.to_dict() for b in behaviours], "append": append}
        if default_delay is not None:
            payload["default_delay"] = default_delay
        resp = httpx.post(f"{self.url}/_fake/script", json=payload, timeout=self.timeout)
        resp.raise_for_status()
        return resp.json()

    def push(self, *behaviours: Behaviour) -> dict[str, Any]:
        return self.set_script(behaviours, append=True)

    def set_default_delay(self, seconds: float) -> dict[str, Any]:
        return self.set_script([], append=True, default_delay=seconds)

    def set_billing(self, mode: str | None = None, *, usage_override: Any = ...) -> dict[str, Any]:
        """``POST /_fake/billing``: the billing mode and/or the reported-usage override (None: report the real
        usage); arguments left out keep their value. Returns ``{"mode", "usage_override"}``."""
        payload: dict[str, Any] = {}
        if mode is not None:
            payload["mode"] = mode
        if usage_override is not ...:
            payload["usage_override"] = usage_override
        resp = httpx.post(f"{self.url}/_fake/billing", json=payload, timeout=self.timeout)
        resp.raise_for_status()
        return resp.json()

    def billing(self) -> dict[str, Any]:
        """``GET /_fake/billing``: ``{"mode", "usage_override"}``."""
        resp = httpx.get(f"{self.url}/_fake/billing", timeout=self.timeout)
        resp.raise_for_status()
        return resp.json()

    def log(self, path: str | None = "/v1/messages") -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.url}/_fake/log", params={"path": path} if path else None, timeout=self.timeout)
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_fake/reset", timeout=self.timeout).raise_for_status()


REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeMessagesProcess:
    """Starts ``python -m tests.fakes.messages_api`` as a subprocess and waits for its ``READY <url>`` line.

    ``with FakeMessagesProcess(delay=0.1, billing="tokens_per_byte") as fake: fake.url, fake.remote (RemoteFake),
    fake.proc``."""

    def __init__(
        self,
        port: int = 0,
        delay: float = 0.0,
        python: str | None = None,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        ready_timeout: float = 15.0,
        billing: str = "default",
    ) -> None:
        self.args = [
            python or sys.executable,
            "-m",
            "tests.fakes.messages_api",
            "--port",
            str(port),
            "--delay",
            str(delay),
            "--billing",
            billing,
        ]
        self.cwd = str(cwd or REPO_ROOT)
        self.env = env
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.url: str = ""
        self.remote: RemoteFake | None = None

    def start(self) -> FakeMessagesProcess:
        self.proc = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, text=True)
        line_box: list[str] = []
        reader = threading.Thread(target=lambda: line_box.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.ready_timeout)
        line = line_box[0].strip() if line_box else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"fake messages process did not become ready (got {line!r})")
        self.url = line.split(" ", 1)[1]
        self.remote = RemoteFake(self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FakeMessagesProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback fake of the Anthropic Messages API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--delay", type=float, default=0.0, help="default delay (s) for auto answers")
    parser.add_argument("--billing", choices=BILLING_MODES, default="default", help="billing mode (see the docstring)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = FakeMessagesServer(
        FakeState(default_delay=args.delay, billing=args.billing), host=args.host, port=args.port
    )
    server.start()
    try:
        print(f"READY {server.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
