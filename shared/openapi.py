"""OpenAPI 3.1 generated from the team catalog: every operation with its input and output
schemas, the auth schemes, every problem type of :mod:`shared.errors` with its headers,
and the other paths the app serves (usage, audit, admin, runs, metrics, dashboard).

The document is the one contract the SDK generators read (:mod:`shared.sdkgen`): team
models become ``components.schemas`` named ``{Team}{Operation}Input`` /
``{Team}{Operation}Output`` (nested models ``{Team}{Model}``), and every operation's path
item carries ``x-team`` and ``x-operation``.

Paths outside the catalog are listed in :data:`PATH_ITEMS`; :func:`build_openapi` keeps
only those the app really serves when it is given the app's route paths, so the document
never names an endpoint that answers 404. A feature of :mod:`shared.http` that adds routes
adds its path items here too (``PATH_ITEMS["/v1/things"] = {...}``).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Iterable
from typing import Any

from shared.catalog import Catalog
from shared.errors import PROBLEM_TYPES, ProblemError
from shared.limits import MAX_RATE, MAX_USD
from shared.schema_examples import schema_example

PROBLEM_JSON = "application/problem+json"


def pascal(text: str) -> str:
    """``customer-service`` / ``analyze_campaign`` -> ``CustomerService`` / ``AnalyzeCampaign``."""
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", "_").split("_") if part)


def _ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


# --------------------------------------------------------------------------------------------------------------------
# Team models -> components.schemas
# --------------------------------------------------------------------------------------------------------------------


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite_refs(v, renames) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = "#/components/schemas/" + renames[ref.split("/")[-1]]
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _canonical(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True)


def team_schemas(catalog: Catalog) -> tuple[dict[str, Any], dict[tuple[str, str], tuple[str, str]]]:
    """Every team model as a named component, and ``(team, op) -> (input name, output name)``.

    A nested model is ``{Team}{Model}`` when the team's operations agree on its schema,
    else ``{Team}{Operation}{Model}``; either way two teams' models never clash.
    """
    schemas: dict[str, Any] = {}
    names: dict[tuple[str, str], tuple[str, str]] = {}
    for team in catalog:
        for op in team.operations:
            base = f"{pascal(team.name)}{pascal(op.name)}"
            io_names = (f"{base}Input", f"{base}Output")
            for name, schema in zip(io_names, (op.input_schema(), op.output_schema()), strict=True):
                schema = copy.deepcopy(schema)
                local = schema.pop("$defs", {})
                renames: dict[str, str] = {}
                for def_name, sub in local.items():
                    candidate = f"{pascal(team.name)}{def_name}"
                    fixed_probe = _canonical(sub)
                    existing = schemas.get(candidate)
                    if existing is not None and existing.get("x-source") != fixed_probe:
                        candidate = f"{base}{def_name}"
                    renames[def_name] = candidate
                for def_name, sub in local.items():
                    fixed = _rewrite_refs(sub, renames)
                    fixed["x-source"] = _canonical(sub)
                    fixed["title"] = renames[def_name]  # generators name classes by title: unique, as the key
                    schemas.setdefault(renames[def_name], fixed)
                schemas[name] = {**_rewrite_refs(schema, renames), "title": name}  # not every team's `AskInput`
            names[(team.name, op.name)] = io_names
    for schema in schemas.values():
        schema.pop("x-source", None)
    return schemas, names


# --------------------------------------------------------------------------------------------------------------------
# Problems, headers, parameters
# --------------------------------------------------------------------------------------------------------------------

PROBLEM_EXTRAS: dict[str, dict[str, Any]] = {
    "payload-too-large": {"limit_bytes": {"type": "integer", "description": "The body limit in bytes."}},
    "validation-error": {"errors": {"type": "array", "description": "What is wrong, one entry per problem.",
                                    "items": _ref("ValidationErrorItem")}},
    "budget-exceeded": {
        "limit_usd": {"type": "number", "description": "The cap of the refusing window, USD."},
        "spent_usd": {"type": "number", "description": "Settled spend in that window, USD."},
        "window": {"type": "string", "description": "`day`, `month` or `team:<name>:day`."},
        "reset_at": {"type": "string", "format": "date-time", "description": "When the window resets (UTC)."},
    },
    "rate-limited": {
        "retry_after_s": {"type": "integer", "description": "Seconds to wait; same as `Retry-After`."},
        "limit": {"type": "string", "description": "The exhausted limit, e.g. `60 requests/min`."},
    },
    "unavailable": {"retry_after_s": {"type": "integer", "description": "Seconds to wait; same as `Retry-After`."}},
    "uri-too-long": {"limit_bytes": {"type": "integer", "description": "The path limit, bytes."}},
}

PROBLEM_WHEN: dict[str, str] = {
    "invalid-json": "The body is not JSON.",
    "unauthenticated": "No key, an unknown key or a revoked key.",
    "forbidden": "The tenant is disabled, the team is not allowed for the tenant, or a team-to-team envelope is "
                 "forged, expired or widened.",
    "not-found": "Unknown team, operation or path.",
    "conflict": "A call with the same `Idempotency-Key` is still in progress; retry shortly.",
    "payload-too-large": "The body is over the configured limit (default 256 KiB).",
    "uri-too-long": "The request path is over the configured limit (default 8 KiB).",
    "method-not-allowed": "A known path asked with another method; the `Allow` header lists those it serves.",
    "request-header-fields-too-large": "The request head is over its limits (default 32 KiB in all, 8 KiB per "
                                       "header, 100 headers); may also be refused before the app.",
    "validation-error": "The input does not match the operation's schema.",
    "budget-exceeded": "The call could cost more than what is left of the day's or month's budget. "
                       "Retrying cannot help before `reset_at` (`x-should-retry: false`).",
    "rate-limited": "Requests or tokens per minute exhausted; wait `Retry-After` seconds.",
    "model-error": "The model failed or never produced valid output.",
    "unavailable": "The state store, secret store or model provider is unreachable (fail closed); "
                   "wait `Retry-After` seconds.",
    "timeout": "The operation ran past its deadline.",
}

HEADERS: dict[str, dict[str, Any]] = {
    "XRequestId": {"description": "The request id; quote it when reporting a problem.",
                   "schema": {"type": "string"}},
    "XBudgetRemainingUsd": {"description": "The smaller of the day's and the month's remaining budget, USD.",
                            "schema": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}},
    "XRateLimitRemainingRequests": {"description": "Requests left in the current minute.",
                                    "schema": {"type": "string", "pattern": r"^\d+$"}},
    "XRateLimitRemainingTokens": {"description": "Tokens left in the current minute.",
                                  "schema": {"type": "string", "pattern": r"^\d+$"}},
    "IdempotentReplayed": {"description": "`true` when this answer is the stored first result of an earlier call "
                                          "with the same `Idempotency-Key` (not charged again).",
                           "schema": {"type": "string", "enum": ["true"]}},
    "RetryAfter": {"description": "Whole seconds to wait before retrying.", "schema": {"type": "integer"}},
    "XShouldRetry": {"description": "Whether a client should retry (Anthropic and OpenAI SDK convention).",
                     "schema": {"type": "string", "enum": ["true", "false"]}},
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "IdempotencyKey": {
        "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 256},
        "description": "A retried call with the same key and body returns the first result and is charged once.",
    },
    "SessionId": {"name": "X-Session-Id", "in": "header", "required": False, "schema": {"type": "string"},
                  "description": "Conversation memory: calls with the same id share context."},
    "RequestId": {"name": "X-Request-Id", "in": "header", "required": False,
                  "schema": {"type": "string", "maxLength": 64},
                  "description": "Your own request id (letters, digits, `-`, `_`); one is made otherwise."},
    "Envelope": {"name": "X-Multiagent-Envelope", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "Team-to-team calls only: the signed budget envelope. A forged, expired or widened "
                                "envelope is refused with 403."},
}


def _schema_name(cls: type[ProblemError]) -> str:
    return pascal(cls.slug) + "Problem"


def _response_name(cls: type[ProblemError]) -> str:
    return pascal(cls.slug)


PROBLEM_MEMBERS: dict[str, Any] = {  # the members every problem has
    "type": {"type": "string", "description": "`/problems/<slug>`, a relative reference to a short explanation page."},
    "title": {"type": "string"},
    "status": {"type": "integer"},
    "detail": {"type": "string", "description": "What happened and what to change."},
    "instance": {"type": "string"},
    "request_id": {"type": "string"},
}
PROBLEM_REQUIRED = ["type", "title", "status", "detail"]


def _problem_components() -> tuple[dict[str, Any], dict[str, Any]]:
    # Each problem is one flat object (the shared members inlined, `type` and `status` as consts),
    # not an allOf of `Problem` and a const: generators cannot merge an enum with a const.
    known = ", ".join(f"`/problems/{p.slug}`" for p in PROBLEM_TYPES)
    schemas: dict[str, Any] = {
        "Problem": {
            "type": "object", "title": "Problem",
            "description": "An RFC 9457 problem. `type` is a relative reference to a short explanation page: "
                           f"{known} or `/problems/internal` (each has its own schema, `<Slug>Problem`).",
            "required": list(PROBLEM_REQUIRED),
            "properties": copy.deepcopy(PROBLEM_MEMBERS),
        },
        "ValidationErrorItem": {
            "type": "object", "required": ["loc", "msg"],
            "properties": {"loc": {"type": "array", "items": {"type": ["string", "integer"]},
                                   "description": "Where, e.g. `[\"body\", \"amount\"]`."},
                           "msg": {"type": "string"}},
        },
    }
    responses: dict[str, Any] = {}
    for cls in PROBLEM_TYPES:
        extras = PROBLEM_EXTRAS.get(cls.slug, {})
        schemas[_schema_name(cls)] = {
            "type": "object", "title": _schema_name(cls),
            "description": f"{cls.status} `{cls.slug}`: {PROBLEM_WHEN.get(cls.slug, cls.title)}",
            "required": PROBLEM_REQUIRED + sorted(extras),
            "properties": {**copy.deepcopy(PROBLEM_MEMBERS),
                           "type": {"type": "string", "const": f"/problems/{cls.slug}"},
                           "status": {"type": "integer", "const": cls.status}, **copy.deepcopy(extras)},
        }
        headers: dict[str, Any] = {"x-request-id": _ref("XRequestId", "headers")}
        if cls.status in (429, 503):
            headers["retry-after"] = {**_ref("RetryAfter", "headers")}
            headers["x-should-retry"] = _ref("XShouldRetry", "headers")
        if cls.status == 402:
            headers["x-should-retry"] = _ref("XShouldRetry", "headers")
        example: dict[str, Any] = {"type": f"/problems/{cls.slug}", "title": cls.title, "status": cls.status,
                                   "detail": PROBLEM_WHEN.get(cls.slug, cls.title), "request_id": "req_0123"}
        responses[_response_name(cls)] = {
            "description": f"{cls.title} (`/problems/{cls.slug}`): {PROBLEM_WHEN.get(cls.slug, '')}".rstrip(": "),
            "headers": headers,
            "content": {PROBLEM_JSON: {"schema": _ref(_schema_name(cls)), "example": example}},
        }
    responses["Internal"] = {
        "description": "An unexpected error (`/problems/internal`); never a stack trace.",
        "headers": {"x-request-id": _ref("XRequestId", "headers")},
        "content": {PROBLEM_JSON: {"schema": _ref("Problem")}},
    }
    return schemas, responses


def _problems(*slugs: str) -> dict[str, Any]:
    """Response entries for the given problem slugs (status -> $ref), plus ``default``."""
    by_slug = {p.slug: p for p in PROBLEM_TYPES}
    out: dict[str, Any] = {}
    for slug in slugs:
        cls = by_slug[slug]
        out[str(cls.status)] = _ref(_response_name(cls), "responses")
    out["default"] = _ref("Internal", "responses")
    return out


OPERATION_PROBLEMS = ("invalid-json", "unauthenticated", "budget-exceeded", "forbidden", "not-found",
                      "method-not-allowed", "conflict",
                      "payload-too-large", "uri-too-long", "request-header-fields-too-large", "validation-error",
                      "rate-limited", "model-error", "unavailable", "timeout")


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _id_header() -> dict[str, Any]:
    return {"x-request-id": _ref("XRequestId", "headers")}


# --------------------------------------------------------------------------------------------------------------------
# The other shapes and paths
# --------------------------------------------------------------------------------------------------------------------

SHAPES: dict[str, Any] = {
    "Usage": {"type": "object", "required": ["input_tokens", "output_tokens", "cost_usd"], "properties": {
        "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
        "cost_usd": {"type": "number", "description": "What the call cost, USD (0 on the offline model)."}}},
    "OperationInfo": {"type": "object", "required": ["name", "description", "input_schema", "output_schema"],
                      "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                                     "input_schema": {"type": "object", "description": "JSON Schema of the input."},
                                     "output_schema": {"type": "object", "description": "JSON Schema of the output."}}},
    "TeamInfo": {"type": "object", "required": ["name", "description", "operations"], "properties": {
        "name": {"type": "string"}, "description": {"type": "string"},
        "operations": {"type": "array", "items": _ref("OperationInfo")}}},
    "TeamList": {"type": "object", "required": ["teams"],
                 "properties": {"teams": {"type": "array", "items": _ref("TeamInfo")}}},
    "HealthCheck": {"type": "object", "required": ["status"], "properties": {
        "status": {"type": "string", "enum": ["pass", "warn", "fail"]}, "message": {"type": "string"},
        "latency_ms": {"type": "number"}}},
    "Health": {"type": "object", "required": ["status", "checks", "version"], "properties": {
        "status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
        "checks": {"type": "object", "additionalProperties": _ref("HealthCheck")}, "version": {"type": "string"}}},
    "UsageRow": {"type": "object", "required": ["calls", "input_tokens", "output_tokens", "cost_usd"], "properties": {
        "team": {"type": "string"}, "day": {"type": "string"}, "model": {"type": "string"},
        "calls": {"type": "integer"}, "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
        "cost_usd": {"type": "number"},
        "unsettled_usd": {"type": "number", "description": "Part of cost_usd charged at the reserved worst case "
                                                           "because the request's outcome is unknown."}}},
    "UsageReport": {"type": "object", "required": ["tenant_id", "spent_usd", "limits", "by_team"], "properties": {
        "tenant_id": {"type": "string"},
        "spent_usd": {"type": "object", "required": ["day", "month"],
                      "properties": {"day": {"type": "number"}, "month": {"type": "number"}}},
        "unsettled_usd": {"type": "object", "required": ["day", "month"],
                          "description": "Part of spent_usd charged at the reserved worst case: requests whose "
                                         "outcome is unknown (an instance crashed or paused, a timeout after "
                                         "sending); a late settle replaces it by the real cost.",
                          "properties": {"day": {"type": "number"}, "month": {"type": "number"}}},
        "reserved_usd": {"type": "object", "additionalProperties": {"type": "number"}},
        "limits": {"type": "object", "properties": {
            "daily_usd": {"type": "number"}, "monthly_usd": {"type": "number"}, "rpm": {"type": "integer"},
            "tpm": {"type": "integer"}, "alert_threshold": {"type": "number"},
            "team_daily_usd": {"type": "object", "additionalProperties": {"type": "number"}}}},
        "by_team": {"type": "array", "items": _ref("UsageRow")},
        "by_day": {"type": "array", "items": _ref("UsageRow")},
        "by_model": {"type": "array", "items": _ref("UsageRow")}}},
    "AuditEvent": {"type": "object", "required": ["at", "type", "request_id"], "properties": {
        "at": {"type": "string", "format": "date-time"}, "type": {"type": "string"},
        "request_id": {"type": "string"}, "team": {"type": "string"}, "operation": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "object"}}},
    "AuditPage": {"type": "object", "required": ["events"], "properties": {
        "events": {"type": "array", "items": _ref("AuditEvent")},
        "next": {"type": "string", "description": "Pass as `before` to get the next (older) page."}}},
    "Tenant": {"type": "object", "required": ["tenant_id", "name"], "properties": {
        "tenant_id": {"type": "string"}, "name": {"type": "string"}, "daily_usd": {"type": "number"},
        "monthly_usd": {"type": "number"}, "rpm": {"type": "integer"}, "tpm": {"type": "integer"},
        "teams": {"type": ["array", "null"], "items": {"type": "string"}},
        "team_daily_usd": {"type": "object", "additionalProperties": {"type": "number"}},
        "alert_threshold": {"type": "number"}, "disabled": {"type": "boolean"},
        "webhook_url": {"type": ["string", "null"]}, "on_low_budget": {"type": "string"},
        "content_logging": {"type": "boolean"}, "created_at": {"type": "string"}}},
    "TenantFields": {"type": "object", "properties": {  # the rules of shared/limits.py
        "name": {"type": "string"}, "daily_usd": {"type": "number", "minimum": 0, "maximum": MAX_USD},
        "monthly_usd": {"type": "number", "minimum": 0, "maximum": MAX_USD},
        "rpm": {"type": "integer", "minimum": 1, "maximum": MAX_RATE},
        "tpm": {"type": "integer", "minimum": 1, "maximum": MAX_RATE},
        "teams": {"type": "array", "items": {"type": "string"}},
        "team_daily_usd": {"type": "object",
                           "additionalProperties": {"type": "number", "minimum": 0, "maximum": MAX_USD}},
        "alert_threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}, "disabled": {"type": "boolean"},
        "webhook_url": {"type": "string"}, "on_low_budget": {"type": "string", "enum": ["refuse", "cheaper_model"]},
        "content_logging": {"type": "boolean"}}},
    "TenantWithKey": {"allOf": [_ref("Tenant"), {"type": "object", "required": ["api_key"], "properties": {
        "api_key": {"type": "string", "description": "Shown once; only its hash is stored."}}}]},
    "RunRequest": {"type": "object", "required": ["task"], "properties": {
        "task": {"type": "string"}, "teams": {"type": "array", "items": {"type": "string"}},
        "max_usd": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_USD},
        "deadline_s": {"type": "number", "exclusiveMinimum": 0}}},
    "RunStep": {"type": "object", "properties": {
        "id": {"type": "string"}, "team": {"type": "string"}, "operation": {"type": "string"},
        "status": {"type": "string"}, "output": {}, "usage": {}, "depends_on": {}, "error": {}, "note": {},
        "model": {"type": "string"}, "degraded": {}, "started_at": {}, "finished_at": {}}},
    "Run": {"type": "object", "required": ["id", "status"], "properties": {
        "id": {"type": "string"}, "status": {"type": "string"}, "task": {"type": "string"},
        "teams": {"type": ["array", "null"], "items": {"type": "string"}}, "plan": {},
        "steps": {"type": "array", "items": _ref("RunStep")}, "answer": {"type": ["string", "null"]},
        "usage": _ref("Usage"), "max_usd": {"type": ["number", "null"]}, "deadline": {"type": ["string", "null"]},
        "created_at": {}, "updated_at": {}, "error": {}, "synthesis": {}}},
    "Session": {"type": "object", "required": ["id", "messages"], "properties": {
        "id": {"type": "string"}, "version": {"type": "integer"}, "updated_at": {},
        "messages": {"type": "array", "items": {"type": "object", "properties": {
            "role": {"type": "string"}, "content": {}, "at": {}}}}}},
}

_PUBLIC: dict[str, Any] = {"security": []}
_ADMIN = {"security": [{"adminBearer": []}], "tags": ["admin"]}
_TENANT_ID = {"name": "tenant_id", "in": "path", "required": True, "schema": {"type": "string"}}
_RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
# Server-Sent Events (`Accept: text/event-stream`): progress events, then `done` with the JSON answer or `error`
# with the problem.
SSE = {"text/event-stream": {"schema": {
    "type": "string", "description": "Server-Sent Events: progress, then `done` (the JSON answer) or `error`."}}}

PATH_ITEMS: dict[str, dict[str, Any]] = {
    "/health": {"get": {
        "operationId": "health", "tags": ["meta"], "summary": "Health of the store, secrets and model provider.",
        **_PUBLIC, "parameters": [{"name": "deep", "in": "query", "required": False,
                                   "schema": {"type": "string", "enum": ["1"]},
                                   "description": "`1` also makes a real model call."}],
        "responses": {"200": _json(_ref("Health"), "Healthy or degraded."),
                      "503": _json(_ref("Health"), "Unhealthy.")}}},
    "/v1/usage": {"get": {
        "operationId": "usage", "tags": ["account"], "summary": "The calling tenant's spend, limits and ledger.",
        "responses": {"200": _json(_ref("UsageReport"), "Spend this day and month.", _id_header()),
                      **_problems("unauthenticated", "forbidden", "unavailable")}}},
    "/v1/audit": {"get": {
        "operationId": "audit", "tags": ["account"], "summary": "The calling tenant's audit events, newest first.",
        "parameters": [
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
            {"name": "before", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "The `next` of the previous page."}],
        "responses": {"200": _json(_ref("AuditPage"), "Audit events.", _id_header()),
                      **_problems("unauthenticated", "forbidden", "validation-error", "unavailable")}}},
    "/openapi.json": {"get": {"operationId": "openapi", "tags": ["meta"], "summary": "This document.", **_PUBLIC,
                              "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")}}},
    "/docs": {"get": {"operationId": "docs", "tags": ["meta"],
                      "summary": "Interactive docs (Swagger UI): authorize with a key, try any operation from its "
                                 "example body, copy its curl line.",
                      **_PUBLIC, "responses": {"200": {"description": "HTML.",
                                                       "content": {"text/html": {"schema": {"type": "string"}}}}}}},
    "/problems/{slug}": {"get": {
        "operationId": "problem_page", "tags": ["meta"], "summary": "A short explanation of a problem type.",
        **_PUBLIC, "parameters": [{"name": "slug", "in": "path", "required": True,
                                   "schema": {"type": "string", "enum": [p.slug for p in PROBLEM_TYPES]}}],
        "responses": {"200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}},
                      **_problems("not-found")}}},
    "/metrics": {"get": {"operationId": "metrics", "tags": ["meta"], "summary": "Prometheus text exposition.",
                         **_PUBLIC, "responses": {"200": {"description": "Metrics.", "content": {
                             "text/plain": {"schema": {"type": "string"}}}}}}},
    "/dashboard": {"get": {"operationId": "dashboard", "tags": ["meta"], **_PUBLIC,
                           "summary": "The operator page (reads a key from `#key=KEY`, never sent to the server).",
                           "responses": {"200": {"description": "HTML.", "content": {
                               "text/html": {"schema": {"type": "string"}}}}}}},
    "/v1/admin/tenants": {
        "get": {"operationId": "admin_list_tenants", **_ADMIN, "summary": "All tenants.",
                "responses": {"200": _json({"type": "object", "required": ["tenants"], "properties": {
                    "tenants": {"type": "array", "items": _ref("Tenant")}}}, "Tenants."),
                    **_problems("unauthenticated", "forbidden", "not-found")}},
        "post": {"operationId": "admin_create_tenant", **_ADMIN, "summary": "Create a tenant and its first key.",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "allOf": [_ref("TenantFields"), {"required": ["name"]}]}}}},
                 "responses": {"201": _json(_ref("TenantWithKey"), "Created; the key is shown once."),
                               **_problems("invalid-json", "unauthenticated", "forbidden", "not-found",
                                           "validation-error")}}},
    "/v1/admin/tenants/{tenant_id}": {
        "parameters": [_TENANT_ID],
        "get": {"operationId": "admin_get_tenant", **_ADMIN, "summary": "One tenant.",
                "responses": {"200": _json(_ref("Tenant"), "The tenant."),
                              **_problems("unauthenticated", "forbidden", "not-found")}},
        "patch": {"operationId": "admin_update_tenant", **_ADMIN, "summary": "Change limits or settings.",
                  "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("TenantFields")}}},
                  "responses": {"200": _json(_ref("Tenant"), "The updated tenant."),
                                **_problems("invalid-json", "unauthenticated", "forbidden", "not-found",
                                            "validation-error")}}},
    "/v1/admin/tenants/{tenant_id}/keys": {
        "parameters": [_TENANT_ID],
        "post": {"operationId": "admin_issue_key", **_ADMIN, "summary": "Another API key for the tenant.",
                 "responses": {"201": _json({"type": "object", "required": ["tenant_id", "api_key"], "properties": {
                     "tenant_id": {"type": "string"}, "api_key": {"type": "string"}}}, "The key, shown once."),
                     **_problems("unauthenticated", "forbidden", "not-found")}},
        "delete": {"operationId": "admin_revoke_keys", **_ADMIN, "summary": "Revoke every key of the tenant.",
                   "responses": {"200": _json({"type": "object", "required": ["revoked"], "properties": {
                       "revoked": {"type": "integer"}}}, "How many keys were revoked."),
                       **_problems("unauthenticated", "forbidden", "not-found")}}},
    "/v1/runs": {"post": {
        "operationId": "create_run", "tags": ["runs"], "summary": "An orchestrated multi-team run.",
        "parameters": [_ref("IdempotencyKey", "parameters"), _ref("SessionId", "parameters"),
                       {"name": "Prefer", "in": "header", "required": False,
                        "schema": {"type": "string", "enum": ["respond-async"]},
                        "description": "`respond-async`: answer 202 at once with `Location: /v1/runs/{id}`."}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("RunRequest")}}},
        "responses": {"200": {"description": "The finished run (or its events with `Accept: text/event-stream`).",
                              "headers": _id_header(),
                              "content": {"application/json": {"schema": _ref("Run")}, **SSE}},
                      "202": _json(_ref("Run"), "Accepted; poll `Location`.",
                                   {**_id_header(), "location": {"schema": {"type": "string"}}}),
                      **_problems(*OPERATION_PROBLEMS)}},
        "get": {"operationId": "list_runs", "tags": ["runs"],
                "summary": "The calling tenant's runs, newest first (without plans, answers or step outputs).",
                "parameters": [
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20}},
                    {"name": "before", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "The `next` of the previous page."}],
                "responses": {"200": _json({"type": "object", "required": ["runs"], "properties": {
                    "runs": {"type": "array", "items": _ref("Run")},
                    "next": {"type": "string", "description": "Pass as `before` to get the next (older) page."}}},
                    "A page of runs.", _id_header()),
                    **_problems("unauthenticated", "forbidden", "validation-error", "unavailable")}}},
    "/v1/runs/{run_id}": {
        "parameters": [_RUN_ID],
        "get": {"operationId": "get_run", "tags": ["runs"], "summary": "A run's state.",
                "responses": {"200": _json(_ref("Run"), "The run.", _id_header()),
                              **_problems("unauthenticated", "forbidden", "not-found", "unavailable")}},
        "delete": {"operationId": "cancel_run", "tags": ["runs"], "summary": "Cancel a run; reservations return.",
                   "responses": {"200": _json(_ref("Run"), "The cancelled run.", _id_header()),
                                 **_problems("unauthenticated", "forbidden", "not-found", "unavailable")}}},
    "/v1/runs/{run_id}/resume": {
        "parameters": [_RUN_ID],
        "post": {"operationId": "resume_run", "tags": ["runs"], "security": [],
                 "summary": "Internal: a queued continuation of an async run (Cloud Tasks, Lambda async invoke).",
                 "parameters": [_ref("Envelope", "parameters")],
                 "responses": {"200": _json(_ref("Run"), "The run after this continuation.", _id_header()),
                               **_problems("unauthenticated", "forbidden", "not-found", "conflict")}}},
    "/v1/sessions/{session_id}": {
        "parameters": [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "get": {"operationId": "get_session", "tags": ["account"], "summary": "A conversation's messages.",
                "responses": {"200": _json(_ref("Session"), "The session."),
                              **_problems("unauthenticated", "forbidden", "not-found", "unavailable")}},
        "delete": {"operationId": "delete_session", "tags": ["account"], "summary": "Forget a conversation.",
                   "responses": {"204": {"description": "Deleted."},
                                 **_problems("unauthenticated", "forbidden", "not-found", "unavailable")}}},
}


# --------------------------------------------------------------------------------------------------------------------
# Examples and curl lines for /docs (Swagger UI shows them; "Try it out" starts from the example)
# --------------------------------------------------------------------------------------------------------------------

_MONEY_WORDS = ("amount", "budget", "income", "price", "cost", "balance", "revenue", "salary", "inflow", "outflow",
                "saving", "spend", "usd", "expense", "value", "payment")
_NUMBER_WORDS = (("percent", 10), ("year", 5), ("month", 12), ("week", 4), ("day", 30), ("hour", 8), ("rate", 10))
_TEXT: dict[str, str] = {  # meaningful values for the catalog's most common free-text fields
    "question": "What are the three biggest risks in our plan to expand to Germany next year?",
    "audience": "small-business owners", "context": "A 40-person B2B software company growing 30% a year.",
    "constraints": "Keep it under 300 words; no jargon.", "product": "Acme Invoicing, invoicing software for "
    "freelancers", "name": "Acme Invoicing", "goals": "Grow paid sign-ups by 20% this quarter.",
    "goal": "Grow paid sign-ups by 20% this quarter.", "objective": "Cut onboarding time in half.",
    "tone": "friendly and direct", "company": "Acme Corp, a 40-person B2B software company", "period": "Q3 2025",
    "problem": "Customers abandon sign-up at the payment step.", "description": "Invoices fail to export as "
    "PDF for some customers since Monday.", "team": "Platform engineering: 8 engineers who run the billing service.",
    "project": "Launch of the new customer portal", "language": "Python", "jurisdiction": "England and Wales",
    "region": "eu-west-1", "cloud": "aws", "target_cloud": "gcp", "deadline": "2025-12-31", "role": "Backend engineer",
    "title": "Senior backend engineer", "task": "Write a function that removes duplicate emails from a list, "
    "case-insensitively.", "code": "def add(a, b):\n    return a + b\n", "text": "Our Q3 revenue grew 12% while "
    "costs fell.", "feature": "Export invoices as PDF", "market": "EU mid-size retailers", "subject": "Our 2026 "
    "hiring plan", "requirements": "Must support SSO and export to CSV.", "process": "Monthly invoice approval",
    "ticket_id": "T-1042", "unit": "GB-month", "category": "payroll", "notes": "Customer has been with us 3 years.",
    "customer_message": "My invoice shows the wrong amount, can you fix it?", "complaint": "The order arrived two "
    "weeks late and damaged.", "partner": "Globex, a payments provider for European retailers",
    "proposal": "Bundle our invoicing with their payments at a 10% discount.", "recipient": "Globex's head of "
    "partnerships, who needs faster invoicing for 2,000 merchants", "offer": "Our invoicing API at $2 per merchant "
    "a month, 12-month term", "workload": "A web shop with 50k daily users, a Postgres database and nightly reports.",
    "current_system": "A Django monolith on two VMs with a self-managed Postgres 12 database.",
    "announcement": "Acme Invoicing now supports recurring invoices.", "organization": "Acme Corp",
    "situation": "A payment outage stopped checkouts for two hours this morning.", "stakeholders": "customers",
    "change": "From 1 July, expense reports are filed in the new finance tool.", "messages": "The new export is great, "
    "thanks!", "schema_description": "orders(id, customer_id, total_usd, created_at); customers(id, name, country)",
    "design_description": "A landing page with a blue header, one headline, three feature cards and a sign-up button.",
    "brief": "A campaign that makes invoicing feel effortless for freelancers.", "competencies": "system design",
    "contract_text": "The Supplier may terminate this Agreement at any time without notice.",
    "activity": "Storing EU customers' invoices in a US data centre.", "jurisdictions": "EU",
    "clause_text": "Neither party shall be liable for indirect or consequential damages.",
    "data_description": "50k labelled support tickets with a category and free text.",
    "model_purpose": "Route support tickets to the right queue.", "symptoms": "Validation loss rises after epoch 3 "
    "while training loss keeps falling.", "model": "A 12-layer transformer classifier",
    "defect_description": "Hairline cracks on 3% of moulded housings.", "process_description": "Manual packing "
    "station: pick, wrap, box and label, 4 workers per shift.", "target": "freelance designers",
    "workflow": "Purchase requests are emailed, approved by two managers and typed into the ERP.",
    "target_users": "freelancers who send 5-50 invoices a month", "updates": "Design done; API 80% complete; "
    "QA starts next week.", "report": "Clicking Export on an invoice with 200 lines shows a blank page.",
    "research_question": "Does a free trial raise paid conversion for B2B software?", "claim": "Remote teams are "
    "more productive than office teams.", "initiative": "Moving all customer data to a new cloud provider.",
    "risk": "Our only payments provider has an outage.", "drivers": "interest rates", "contact_role": "CFO",
    "objection": "Your price is higher than our current tool.", "prospect": "Initech, a 200-person accounting firm",
    "value_proposition": "Invoices sent in one click, paid twice as fast.", "system_description": "A public web API "
    "with a React front end, a Python back end and a Postgres database.", "config_text": '{"Effect": "Allow", '
    '"Action": "s3:*", "Resource": "*"}', "decision": "Build or buy a billing system", "options": "build in-house",
    "item": "Espresso machine model X2", "country": "Germany", "body": "Since the update I cannot log in on my phone.",
    "issue": "Password reset emails do not arrive.", "resolution": "Add noreply@acme.example to the allow list.",
    "our_goals": "Reach 1,000 new merchants in 2026.",
}


_SECOND = {"options": "buy an off-the-shelf tool"}  # a list of two needs two different values to read well


def _number_example(schema: dict[str, Any], name: str, integer: bool) -> int | float:
    lname = name.lower()
    nice: float = 10000 if any(w in lname for w in _MONEY_WORDS) else next(
        (n for w, n in _NUMBER_WORDS if w in lname), 10)
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    fits = ((low is None or nice >= low) and (high is None or nice <= high) and (xlow is None or nice > xlow)
            and (xhigh is None or nice < xhigh))
    if not fits:
        lo, hi = (low if low is not None else xlow), (high if high is not None else xhigh)
        if lo is not None and hi is not None:
            nice = (lo + hi) / 2
        elif lo is not None:
            nice = lo + 1
        elif hi is not None:
            nice = hi - 1
    return int(nice) if integer or (float(nice).is_integer() and not isinstance(nice, float)) else nice


def _string_example(schema: dict[str, Any], name: str) -> str:
    formats = {"date": "2025-06-30", "date-time": "2025-06-30T12:00:00Z", "email": "ops@example.com",
               "uri": "https://example.com", "uuid": "00000000-0000-4000-8000-000000000000"}
    text = formats.get(schema.get("format", ""), "")
    described = re.search(r"e\.g\. ['\"`]([^'\"`]+)['\"`]", schema.get("description", ""))
    text = text or (described.group(1) if described else _TEXT.get(name, ""))
    text = text or f"Example {name.replace('_', ' ')}" if name != "value" else text or "example"
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    padded: str = str(text) + "." * max(0, int(low) - len(text))
    return padded[: int(high)] if high is not None else padded


def docs_example(schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "value") -> Any:
    """A meaningful value valid against a team model's JSON Schema, for the docs: the schema's own example or
    default when it has one, the first enum value, required members only, money-like numbers as 10000, and
    strings from the field's ``e.g. '...'`` description or a table of common field names."""
    return schema_example(schema, _docs_leaf, root, name, preset=_docs_preset, required_only=True,
                          items=lambda name, items: [_SECOND.get(name, item) if i == 1 else item
                                                     for i, item in enumerate(items)])


def _docs_preset(schema: dict[str, Any]) -> Any:
    """The schema's own example, if it has one."""
    if schema.get("examples"):
        return schema["examples"][0]
    return schema["example"] if "example" in schema else NotImplemented


def _docs_leaf(schema: dict[str, Any], kind: str, name: str) -> Any:
    if kind == "boolean":
        return schema.get("default", True)
    if kind in ("integer", "number"):
        return _number_example(schema, name, kind == "integer")
    return _string_example(schema, name)


def curl_line(path: str, body: Any) -> str:
    """The shell command that calls ``path`` with ``body`` (``MULTIAGENT_API_URL`` / ``MULTIAGENT_API_KEY``, as the
    CLI and the SDKs read them)."""
    return (f'curl -s "$MULTIAGENT_API_URL{path}" -H "Authorization: Bearer $MULTIAGENT_API_KEY" '
            f"-H 'content-type: application/json' -d {shlex.quote(json.dumps(body))}")


def _operation_item(team: str, op: Any, input_name: str, output_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    result = {"type": "object", "required": ["id", "team", "operation", "output", "model", "usage", "duration_ms"],
              "properties": {
                  "id": {"type": "string", "description": "The request id."},
                  "team": {"type": "string", "const": team}, "operation": {"type": "string", "const": op.name},
                  "output": _ref(output_name), "model": {"type": "string"}, "usage": _ref("Usage"),
                  "duration_ms": {"type": "number"}}}
    example = docs_example(op.input_schema())
    headers = {
        "x-request-id": _ref("XRequestId", "headers"),
        "x-budget-remaining-usd": _ref("XBudgetRemainingUsd", "headers"),
        "x-ratelimit-remaining-requests": _ref("XRateLimitRemainingRequests", "headers"),
        "x-ratelimit-remaining-tokens": _ref("XRateLimitRemainingTokens", "headers"),
        "idempotent-replayed": _ref("IdempotentReplayed", "headers"),
    }
    return {"post": {
        "operationId": f"{team.replace('-', '_')}__{op.name}",
        "tags": [team], "summary": op.description,
        "description": f"{op.description}\n\n```sh\n{curl_line(f'/v1/teams/{team}/{op.name}', example)}\n```",
        "x-team": team, "x-operation": op.name,
        "parameters": [_ref("IdempotencyKey", "parameters"), _ref("SessionId", "parameters"),
                       _ref("RequestId", "parameters"), _ref("Envelope", "parameters")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(input_name),
                                                                           "example": example}}},
        "responses": {"200": {"description": "The operation's output (events with `Accept: text/event-stream`).",
                              "headers": headers,
                              "content": {"application/json": {"schema": _ref(f"{pascal(team)}{pascal(op.name)}"
                                                                               "Result")}, **SSE}},
                      **_problems(*OPERATION_PROBLEMS)},
    }}, result


def build_openapi(catalog: Catalog, version: str, served: Iterable[str] | None = None) -> dict[str, Any]:
    """The whole document; ``served`` (route paths of the app) drops path items it does not serve."""
    problem_schemas, problem_responses = _problem_components()
    models, names = team_schemas(catalog)
    schemas: dict[str, Any] = {**problem_schemas, **copy.deepcopy(SHAPES)}
    paths: dict[str, Any] = {}
    for team in catalog:
        for op in team.operations:
            input_name, output_name = names[(team.name, op.name)]
            item, result = _operation_item(team.name, op, input_name, output_name)
            paths[f"/v1/teams/{team.name}/{op.name}"] = item
            schemas[f"{pascal(team.name)}{pascal(op.name)}Result"] = result
    schemas.update(models)
    paths["/v1/teams"] = {"get": {"operationId": "list_teams", "tags": ["teams"], **_PUBLIC,
                                  "summary": "Every team with its operations and their JSON Schemas.",
                                  "responses": {"200": _json(_ref("TeamList"), "Teams.")}}}
    paths["/v1/teams/{team}"] = {"get": {
        "operationId": "get_team", "tags": ["teams"], **_PUBLIC, "summary": "One team.",
        "parameters": [{"name": "team", "in": "path", "required": True,
                        "schema": {"type": "string", "enum": catalog.names}}],
        "responses": {"200": _json(_ref("TeamInfo"), "The team."), **_problems("not-found")}}}
    served_set = set(served) if served is not None else None
    for path, item in PATH_ITEMS.items():
        if served_set is None or path in served_set:
            paths[path] = copy.deepcopy(item)
    tags = [{"name": t.name, "description": t.description} for t in catalog]
    tags += [{"name": "teams", "description": "The team catalog."},
             {"name": "account", "description": "The calling tenant's usage and audit trail."},
             {"name": "runs", "description": "Orchestrated multi-team runs."},
             {"name": "admin", "description": "Tenant administration (`MULTIAGENT_ADMIN_KEY`)."},
             {"name": "meta", "description": "Health, documents and metrics."}]
    used_tags = {tag for item in paths.values() for op in item.values() if isinstance(op, dict)
                 for tag in op.get("tags", [])}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "multiagent-framework", "version": version,
            "description": f"{len(catalog)} specialised AI teams behind one API, with per-tenant budgets. Errors are "
                           "`application/problem+json` (RFC 9457); 429 and 503 carry `Retry-After` and "
                           "`x-should-retry: true`, 402 carries `x-should-retry: false`.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [t for t in tags if t["name"] in used_tags],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": problem_responses,
            "headers": copy.deepcopy(HEADERS),
            "parameters": copy.deepcopy(PARAMETERS),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <api key>`."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "adminBearer": {"type": "http", "scheme": "bearer",
                                "description": "The deployment's `MULTIAGENT_ADMIN_KEY`."},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }


def served_paths(app: Any) -> list[str]:
    """The route paths an ASGI app (Starlette) serves, for :func:`build_openapi`."""
    return [p for p in (getattr(r, "path", None) for r in getattr(app, "routes", [])) if isinstance(p, str)]


def export_document(catalog: Catalog | None = None, version: str | None = None) -> dict[str, Any]:
    """The document ``multiagent serve`` answers (a gateway in serve mode serves every path
    item; ``tests/unit/test_openapi_and_generated_sdks.py`` holds the two equal), built
    without building an app."""
    from shared.catalog import load_catalog
    from shared.config import Settings

    return build_openapi(catalog or load_catalog(), version or Settings.version)


def dumps(document: dict[str, Any]) -> str:
    """The stable text form of the document (what ``export openapi`` writes)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
