"""The MCP server: one tool per team operation (from the catalog), ``list_teams``, and the
orchestrated runs: ``start_run``, ``get_run`` and ``list_runs``.

Every tool call goes to the gateway over HTTP with a tenant key, so authentication,
budgets, rate limits and the audit trail apply exactly as for any other client. A problem
answer (402, 422, 429...) comes back as a tool error (``isError``) whose text is the
problem's title and detail, so the model can read what went wrong and what to change.

Tool names are ``{team}_{operation}`` with the team's hyphens as underscores
(``customer_service_draft_reply``): Claude Desktop accepts only ``[A-Za-z0-9_-]{1,64}``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from shared.catalog import Catalog, load_catalog
from shared.errors import ConfigurationError

log = logging.getLogger("multiagent.mcp")

LIST_TEAMS = "list_teams"
START_RUN, GET_RUN, LIST_RUNS = "start_run", "get_run", "list_runs"
RUN_TOOLS = (START_RUN, GET_RUN, LIST_RUNS)
RUN_TIMEOUT_S = 3_700.0  # a run may last up to its deadline (at most an hour)
DEFAULT_API_URL = "http://127.0.0.1:8080"
# The key of the HTTP request being served (streamable-HTTP mode), when the client sent one.
REQUEST_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar("mcp_request_key", default=None)


@dataclass(frozen=True)
class ToolTarget:
    """Where a tool call goes."""

    team: str
    operation: str


def tool_name(team: str, operation: str) -> str:
    """``customer-service`` + ``draft_reply`` -> ``customer_service_draft_reply``."""
    return f"{team.replace('-', '_')}_{operation}"


def select_teams(catalog: Catalog, teams: Iterable[str] | None) -> list[str]:
    """The team names to expose (all by default); an unknown name is a configuration error."""
    if not teams:
        return catalog.names
    wanted = [t.strip() for t in teams if t.strip()]
    unknown = [t for t in wanted if t not in catalog]
    if unknown:
        raise ConfigurationError(f"--teams: unknown teams {', '.join(unknown)} (known: {', '.join(catalog.names)})")
    return wanted


def build_tools(catalog: Catalog, teams: list[str]) -> tuple[list[types.Tool], dict[str, ToolTarget]]:
    """The MCP tools of ``teams`` and the routing table from tool name to operation."""
    tools = [types.Tool(
        name=LIST_TEAMS,
        description="List the available AI teams and their operations (what each tool can do).",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )]
    tools += run_tools(teams)
    targets: dict[str, ToolTarget] = {}
    for name in teams:
        team = catalog.team(name)
        for op in team.operations:
            tname = tool_name(team.name, op.name)
            targets[tname] = ToolTarget(team.name, op.name)
            tools.append(types.Tool(
                name=tname,
                title=f"{team.name}: {op.name.replace('_', ' ')}",
                description=f"[{team.name} team] {op.description} (Team: {team.description}) "
                            "Each call is billed to your tenant's budget.",
                input_schema=op.input_schema(),
                output_schema=op.output_schema(),
                annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=True),
            ))
    return tools, targets


def run_tools(teams: list[str]) -> list[types.Tool]:
    """The tools of orchestrated runs (``POST /v1/runs``, ``GET /v1/runs/{id}``, ``GET /v1/runs``)."""
    return [
        types.Tool(
            name=START_RUN, title="Start an orchestrated run",
            description="Give a task to several teams at once: a planner splits it into steps for the teams, the "
                        "steps run in parallel and an answer is written from their results. Billed to your tenant's "
                        "budget (max_usd caps the whole run). The run ends succeeded, partial (some steps failed or "
                        "were refused) or failed. With wait=false it answers at once with the run's id; read it "
                        f"later with {GET_RUN}.",
            input_schema={"type": "object", "required": ["task"], "additionalProperties": False, "properties": {
                "task": {"type": "string", "minLength": 1, "maxLength": 20_000, "description": "What to accomplish."},
                "teams": {"type": "array", "items": {"type": "string", "enum": teams}, "minItems": 1, "maxItems": 8,
                          "description": "Teams that must take part (default: the planner picks)."},
                "max_usd": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e9,
                            "description": "The run's total budget in USD."},
                "wait": {"type": "boolean", "default": True,
                         "description": "Wait for the run to finish (default) or answer at once with its id."}}},
            annotations=types.ToolAnnotations(read_only_hint=False, open_world_hint=True),
        ),
        types.Tool(
            name=GET_RUN, title="Read a run",
            description="A run's status, steps and answer, by the id start_run or list_runs gave.",
            input_schema={"type": "object", "required": ["run_id"], "additionalProperties": False,
                          "properties": {"run_id": {"type": "string", "minLength": 1, "maxLength": 200}}},
            annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
        ),
        types.Tool(
            name=LIST_RUNS, title="List runs",
            description="Your tenant's runs, newest first (status, task, cost; no answers: use get_run).",
            input_schema={"type": "object", "additionalProperties": False, "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20},
                "before": {"type": "string", "description": "The `next` of the previous page."}}},
            annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
        ),
    ]


def run_text(run: dict[str, Any]) -> str:
    """A run as the model reads it: the answer, then one line of status and cost."""
    steps = run.get("steps") or []
    ok = sum(1 for s in steps if s.get("status") == "succeeded")
    problems = "; ".join(
        f"{s.get('id')} {s.get('status')}" + (f" ({s['error'].get('status')} {s['error'].get('title')})"
                                               if isinstance(s.get("error"), dict) else "")
        for s in steps if s.get("status") != "succeeded")
    cost = float((run.get("usage") or {}).get("cost_usd") or 0)
    footer = (f"[run {run.get('id')} {run.get('status')}: {ok} of {len(steps)} steps succeeded"
              + (f"; {problems}" if problems else "") + f"; ${cost:.6f}]")
    if isinstance(run.get("error"), dict):
        footer += f"\n{run['error'].get('title', 'Error')}: {run['error'].get('detail', '')}"
    answer = run.get("answer")
    if run.get("status") not in ("succeeded", "partial", "failed", "cancelled"):
        answer = answer or f"The run is {run.get('status')}; call {GET_RUN} with its id to read it later."
    return f"{answer or '(no answer)'}\n\n{footer}"


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def problem_text(status: int, body: Any) -> str:
    """One readable paragraph from a problem+json answer."""
    if not isinstance(body, dict):
        return f"The API answered {status}: {str(body)[:500]}"
    text = f"{body.get('title', 'Error')} ({status}): {body.get('detail', '')}".strip()
    if body.get("errors"):
        text += "\nInvalid fields: " + "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', []) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in body["errors"])
    if body.get("reset_at"):
        text += f"\nThe {body.get('window', '')} budget resets at {body['reset_at']}."
    if body.get("retry_after_s"):
        text += f"\nRetry after {body['retry_after_s']} s."
    if body.get("request_id"):
        text += f"\n(request id {body['request_id']})"
    return text


class GatewayClient:
    """Calls the gateway's HTTP API with a tenant key."""

    def __init__(self, api_url: str, api_key: str | None, timeout_s: float = 300.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {"accept": "application/json", "user-agent": "multiagent-mcp/0.1"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    async def get(self, path: str, key: str | None, params: dict[str, Any] | None = None) -> httpx.Response:
        """A GET on the gateway."""
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            return await client.get(self.api_url + path, headers=self._headers(key), params=params)

    async def post(self, path: str, body: dict[str, Any], key: str | None, headers: dict[str, str] | None = None,
                   timeout_s: float | None = None) -> httpx.Response:
        """A POST on the gateway, with a fresh Idempotency-Key."""
        sent = {**self._headers(key), "idempotency-key": f"mcp_{uuid.uuid4().hex}", **(headers or {})}
        async with httpx.AsyncClient(timeout=timeout_s or self.timeout_s) as client:
            return await client.post(self.api_url + path, json=body, headers=sent)


def _request_key(ctx: ServerRequestContext[Any, Any] | None) -> str | None:
    request = getattr(ctx, "request", None)
    headers = getattr(request, "headers", None)
    if headers is not None:
        auth = headers.get("authorization") or ""
        if auth.lower().startswith("bearer ") and auth[7:].strip():
            return str(auth[7:].strip())
        if headers.get("x-api-key"):
            return str(headers["x-api-key"]).strip()
    return REQUEST_KEY.get()


def build_server(api_url: str | None = None, api_key: str | None = None, teams: Iterable[str] | None = None,
                 catalog: Catalog | None = None) -> Server[Any]:
    """The MCP server for ``teams`` (all by default), calling the gateway at ``api_url``.

    In HTTP mode a key sent by the MCP client (``Authorization: Bearer`` or ``x-api-key``)
    is used instead of ``api_key``, so one deployment can serve many tenants.
    """
    catalog = catalog or load_catalog()
    tools, targets = build_tools(catalog, select_teams(catalog, teams))
    gateway = GatewayClient(api_url or DEFAULT_API_URL, api_key)

    async def list_tools(ctx: ServerRequestContext[Any, Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: ServerRequestContext[Any, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult:
        key = _request_key(ctx) or gateway.api_key
        arguments = dict(params.arguments or {})
        try:
            if params.name == LIST_TEAMS:
                return await _list_teams(gateway, key, set(select_teams(catalog, teams)))
            if params.name in RUN_TOOLS:
                return await _run_tool(gateway, key, params.name, arguments)
            target = targets.get(params.name)
            if target is None:
                return _error(f"Unknown tool {params.name!r}; call {LIST_TEAMS} to see what is available.")
            response = await gateway.post(f"/v1/teams/{target.team}/{target.operation}", arguments, key)
        except httpx.HTTPError as exc:
            return _error(f"Cannot reach the multiagent API at {gateway.api_url}: {exc}")
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code != 200:
            return _error(problem_text(response.status_code, body))
        output = body.get("output", {})
        usage = body.get("usage", {})
        footer = (f"[{body.get('team')}/{body.get('operation')} on {body.get('model')}: "
                  f"{usage.get('input_tokens', 0)}+{usage.get('output_tokens', 0)} tokens, "
                  f"${usage.get('cost_usd', 0):.6f}; budget left ${response.headers.get('x-budget-remaining-usd', '?')}"
                  f"; request id {body.get('id')}]")
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(output, indent=2, ensure_ascii=False)),
                     types.TextContent(type="text", text=footer)],
            structured_content=output,
        )

    return Server(
        "multiagent-framework",
        version="0.1.0",
        instructions="Specialised AI teams (finance, legal, marketing...). Each tool runs one team operation and is "
                     f"billed to the tenant's budget; call {LIST_TEAMS} for an overview, {START_RUN} to give one "
                     "task to several teams at once.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def _list_teams(gateway: GatewayClient, key: str | None, allowed: set[str]) -> types.CallToolResult:
    response = await gateway.get("/v1/teams", key)
    if response.status_code != 200:
        try:
            return _error(problem_text(response.status_code, response.json()))
        except ValueError:
            return _error(f"The API answered {response.status_code}")
    teams = [
        {"name": t["name"], "description": t.get("description", ""),
         "operations": [{"tool": tool_name(t["name"], o["name"]), "description": o.get("description", "")}
                        for o in t.get("operations", [])]}
        for t in response.json().get("teams", []) if t["name"] in allowed
    ]
    text = "\n".join(f"- {t['name']}: {t['description']}\n" + "\n".join(
        f"    - {o['tool']}: {o['description']}" for o in t["operations"]) for t in teams)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                structured_content={"teams": teams})


async def _run_tool(gateway: GatewayClient, key: str | None, name: str,
                    arguments: dict[str, Any]) -> types.CallToolResult:
    """``start_run``, ``get_run`` or ``list_runs`` through the gateway."""
    if name == START_RUN:
        wait = arguments.pop("wait", True)
        if not isinstance(wait, bool):
            return _error("Invalid fields: wait: must be true or false")
        response = await gateway.post("/v1/runs", arguments, key, timeout_s=RUN_TIMEOUT_S,
                                      headers={} if wait else {"prefer": "respond-async"})
    elif name == GET_RUN:
        run_id = arguments.get("run_id")
        if not isinstance(run_id, str) or not run_id.strip():
            return _error("Invalid fields: run_id: must be a run id, e.g. run_0123abcd")
        from urllib.parse import quote

        response = await gateway.get(f"/v1/runs/{quote(run_id.strip(), safe='')}", key)
    else:
        response = await gateway.get("/v1/runs", key, {k: v for k, v in arguments.items()
                                                       if k in ("limit", "before") and v is not None})
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code not in (200, 202) or not isinstance(body, dict):
        return _error(problem_text(response.status_code, body))
    if name == LIST_RUNS:
        lines = [f"- {r.get('id')} {r.get('status')} ({r.get('created_at')}, "
                 f"${float((r.get('usage') or {}).get('cost_usd') or 0):.6f}): {str(r.get('task'))[:120]}"
                 for r in body.get("runs", [])]
        if body.get("next"):
            lines.append(f"(older runs: call {LIST_RUNS} with before={body['next']})")
        return types.CallToolResult(content=[types.TextContent(type="text", text="\n".join(lines) or "no runs")],
                                    structured_content=body)
    return types.CallToolResult(content=[types.TextContent(type="text", text=run_text(body))],
                                structured_content=body, is_error=body.get("status") in ("failed", "cancelled"))


def settings_from_env(api_url: str | None, api_key: str | None,
                      teams: Iterable[str] | None) -> tuple[str, str | None, list[str] | None]:
    """Arguments, falling back to ``MULTIAGENT_API_URL`` / ``MULTIAGENT_API_KEY`` / ``MULTIAGENT_MCP_TEAMS``."""
    url = api_url or os.environ.get("MULTIAGENT_API_URL") or DEFAULT_API_URL
    key = api_key or os.environ.get("MULTIAGENT_API_KEY") or None
    if teams is None and os.environ.get("MULTIAGENT_MCP_TEAMS"):
        teams = os.environ["MULTIAGENT_MCP_TEAMS"].split(",")
    return url, key, list(teams) if teams is not None else None
