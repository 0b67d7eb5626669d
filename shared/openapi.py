"""OpenAPI 3.1 generated from the team catalog: every operation with its schemas, the
auth schemes, every problem type and header of the contract."""

from __future__ import annotations

from typing import Any

from shared.catalog import Catalog
from shared.errors import PROBLEM_TYPES


def _hoist(schema: dict[str, Any], defs: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Move ``$defs`` into components, renaming refs so two teams' models never clash."""
    local = schema.pop("$defs", {})
    renames = {name: f"{prefix}{name}" for name in local}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: fix(v) for k, v in node.items()}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                out["$ref"] = "#/components/schemas/" + renames[ref.split("/")[-1]]
            return out
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    for name, sub in local.items():
        defs[renames[name]] = fix(sub)
    return fix(schema)


def _pascal(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace("-", "_").split("_"))


def build_openapi(catalog: Catalog, version: str) -> dict[str, Any]:
    """The whole document."""
    schemas: dict[str, Any] = {
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "enum": [f"/problems/{p.slug}" for p in PROBLEM_TYPES]},
                "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                "request_id": {"type": "string"}, "limit_bytes": {"type": "integer"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}}, "msg": {"type": "string"}}}},
                "limit_usd": {"type": "number"}, "spent_usd": {"type": "number"}, "window": {"type": "string"},
                "reset_at": {"type": "string", "format": "date-time"}, "retry_after_s": {"type": "integer"},
                "limit": {"type": "string"},
            },
        },
        "Usage": {"type": "object", "required": ["input_tokens", "output_tokens", "cost_usd"], "properties": {
            "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}, "cost_usd": {"type": "number"}}},
    }
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    problems = {
        str(p.status): {"description": f"{p.title} (`/problems/{p.slug}`)",
                        "content": {"application/problem+json": {"schema": problem_ref}}}
        for p in PROBLEM_TYPES
    }
    op_headers = {
        "x-request-id": {"schema": {"type": "string"}, "description": "Request id, quote it when reporting."},
        "x-budget-remaining-usd": {"schema": {"type": "string"}, "description": "Smaller of day and month remainder."},
        "x-ratelimit-remaining-requests": {"schema": {"type": "string"}},
        "x-ratelimit-remaining-tokens": {"schema": {"type": "string"}},
    }
    paths: dict[str, Any] = {}
    for team in catalog:
        for op in team.operations:
            name = f"{_pascal(team.name)}{_pascal(op.name)}"
            schemas[f"{name}Input"] = _hoist(op.input_schema(), schemas, name)
            schemas[f"{name}Output"] = _hoist(op.output_schema(), schemas, name)
            paths[f"/v1/teams/{team.name}/{op.name}"] = {"post": {
                "operationId": f"{team.name.replace('-', '_')}__{op.name}",
                "tags": [team.name], "summary": op.description,
                "x-team": team.name, "x-operation": op.name,
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}},
                    {"name": "X-Session-Id", "in": "header", "required": False, "schema": {"type": "string"}},
                ],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{name}Input"}}}},
                "responses": {
                    "200": {"description": "The operation's output.", "headers": op_headers, "content": {
                        "application/json": {"schema": {"type": "object", "required": [
                            "id", "team", "operation", "output", "model", "usage", "duration_ms"], "properties": {
                            "id": {"type": "string"}, "team": {"const": team.name}, "operation": {"const": op.name},
                            "output": {"$ref": f"#/components/schemas/{name}Output"}, "model": {"type": "string"},
                            "usage": {"$ref": "#/components/schemas/Usage"}, "duration_ms": {"type": "number"}}}}}},
                    **{k: v for k, v in problems.items() if k not in ("409",)},
                },
            }}
    public = {"security": []}
    paths["/health"] = {"get": {"operationId": "health", **public, "responses": {"200": {"description": "Healthy or "
                        "degraded."}, "503": {"description": "Unhealthy."}}}}
    paths["/v1/teams"] = {"get": {"operationId": "list_teams", **public, "responses": {"200": {"description": "Teams."}}}}
    paths["/v1/teams/{team}"] = {"get": {"operationId": "get_team", **public, "parameters": [
        {"name": "team", "in": "path", "required": True, "schema": {"type": "string", "enum": catalog.names}}],
        "responses": {"200": {"description": "One team."}, "404": problems["404"]}}}
    paths["/v1/usage"] = {"get": {"operationId": "usage", "responses": {"200": {"description": "Spend."},
                                                                        "401": problems["401"]}}}
    paths["/v1/audit"] = {"get": {"operationId": "audit", "responses": {"200": {"description": "Audit events."},
                                                                        "401": problems["401"]}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "multiagent-framework", "version": version,
                 "description": "24 specialised AI teams behind one API, with per-tenant budgets."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
        "security": [{"bearer": []}, {"apiKey": []}],
    }


def docs_html() -> str:
    """A dependency-free docs page listing every operation from ``/openapi.json``."""
    return """<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>multiagent-framework API</title><style>body{font:15px system-ui;margin:2rem auto;max-width:60rem;padding:0 1rem}
code{background:#f3f3f3;padding:0 .3em}details{margin:.4rem 0}pre{background:#f7f7f7;padding:.6rem;overflow:auto}</style>
</head><body><h1>multiagent-framework API</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a>.
Authenticate with <code>Authorization: Bearer KEY</code>.</p><div id="ops">Loading…</div><script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{const el=document.getElementById('ops');el.textContent='';
for(const [path,item] of Object.entries(doc.paths)){for(const [method,op] of Object.entries(item)){
const d=document.createElement('details');const s=document.createElement('summary');
s.innerHTML='<code>'+method.toUpperCase()+' '+path+'</code> ';s.append(op.summary||'');d.append(s);
const ref=op.requestBody&&op.requestBody.content['application/json'].schema.$ref;
if(ref){const pre=document.createElement('pre');pre.textContent=JSON.stringify(doc.components.schemas[ref.split('/').pop()],null,2);d.append(pre);}
el.append(d);}}});</script></body></html>"""
