"""The ``multiagent`` command line (see the contract's "Command line").

Every error is one line on stderr and a non-zero exit, never a traceback. Commands that
only touch the store import nothing of the HTTP stack or the model SDK.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError, MultiAgentError, ProblemError

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.tenants import TenantAdmin


class CLIError(MultiAgentError):
    """A user mistake on the command line."""


def _print(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    print(json.dumps(data, indent=2) if as_json else text(data))


def _settings() -> Settings:
    from shared.config import Settings

    return Settings.from_env()


def _admin() -> TenantAdmin:
    from shared.catalog import load_catalog
    from shared.store import open_store
    from shared.tenants import TenantAdmin

    settings = _settings()
    return TenantAdmin(open_store(settings.store_url), settings, load_catalog(), actor="cli")


def _teams_arg(value: str | None) -> list[str] | None:
    return [t.strip() for t in value.split(",") if t.strip()] if value else None


def _number(text: str | None, *loc: str, whole: bool = False) -> int | float | None:
    """A money or limit flag as a number; its range is checked with every other input's
    (shared/limits.py, through TenantAdmin), so a bad one is the same one-line 422."""
    from shared.limits import number_from_text

    return None if text is None else number_from_text(text, ["body", *loc], whole=whole)


def _team_caps(text: str) -> dict[str, int | float | None]:
    from shared.limits import invalid

    caps: dict[str, int | float | None] = {}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        team, sep, amount = pair.partition("=")
        if not sep or not team.strip():
            raise invalid(["body", "team_daily_usd"], f"{pair!r} is not TEAM=USD (e.g. legal=5,finance=2)")
        caps[team.strip()] = _number(amount, "team_daily_usd", team.strip())
    return caps


def _tenant_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields = {"daily_usd": _number(args.daily_usd, "daily_usd"),
              "monthly_usd": _number(args.monthly_usd, "monthly_usd"),
              "rpm": _number(args.rpm, "rpm", whole=True), "tpm": _number(args.tpm, "tpm", whole=True),
              "teams": _teams_arg(args.teams), "alert_threshold": _number(args.alert_threshold, "alert_threshold"),
              "webhook_url": args.webhook_url, "on_low_budget": args.on_low_budget}
    if getattr(args, "team_daily_usd", None):
        fields["team_daily_usd"] = _team_caps(args.team_daily_usd)
    return fields


def _tenant_text(t: dict[str, Any]) -> str:
    teams = ",".join(t["teams"]) if t["teams"] else "all"
    state = "DISABLED" if t["disabled"] else "active"
    return (f"{t['tenant_id']}  {t['name']}  {state}  daily ${t['daily_usd']:.2f}  monthly ${t['monthly_usd']:.2f}  "
            f"rpm {t['rpm']}  tpm {t['tpm']}  teams {teams}")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    import shared.extensions  # noqa: F401  (admin, metrics, dashboard routes)
    from shared.app import create_app
    from shared.runtime import Runtime

    runtime = Runtime()
    runtime.check()  # a model without a price stops the start, before anything listens
    app = create_app(runtime, serve_mode=True)
    print(f"multiagent: serving {len(runtime.catalog)} teams on http://{args.host}:{args.port} "
          f"(store {runtime.settings.store_url}, model {runtime.settings.model_provider})", file=sys.stderr, flush=True)
    from shared.observability import shutdown

    grace = shutdown.grace_seconds()
    shutdown.prepare()  # SIGTERM: stop listening, finish in-flight calls up to the grace, exit 0
    from shared.http_limits import guard, server_options  # heads, concurrency, proxies: bounded before the app

    uvicorn.run(guard(app, runtime.settings), host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=grace,  # type: ignore[arg-type]  # a float works (asyncio.wait_for)
                **server_options(runtime.settings, platform=False))
    shutdown.finish(runtime)
    return 0


def cmd_teams(args: argparse.Namespace) -> int:
    from shared.catalog import load_catalog

    teams = [t.describe() for t in load_catalog()]
    _print({"teams": teams}, args.json, lambda d: "\n".join(
        f"{t['name']:<24} {', '.join(o['name'] for o in t['operations'])}" for t in d["teams"]))
    return 0


def cmd_tenants(args: argparse.Namespace) -> int:
    from shared.tenants import public_tenant

    admin = _admin()
    if args.action == "create":
        tenant, key = admin.create(args.name, **_tenant_fields(args))
        out = {**public_tenant(tenant), "api_key": key}
        _print(out, args.json,
               lambda d: f"created {d['tenant_id']} ({d['name']})\napi key (shown once): {d['api_key']}")
    elif args.action == "list":
        items = [public_tenant(t) for t in admin.store.list_tenants()]
        _print({"tenants": items}, args.json, lambda d: "\n".join(map(_tenant_text, d["tenants"])) or "no tenants")
    elif args.action == "show":
        _print(public_tenant(admin.get(args.id)), args.json, _tenant_text)
    elif args.action == "update":
        fields = {**_tenant_fields(args), "name": args.name}
        _print(public_tenant(admin.update(args.id, **fields)), args.json, _tenant_text)
    elif args.action == "disable":
        _print(public_tenant(admin.disable(args.id)), args.json, _tenant_text)
    elif args.action == "key":
        key = admin.issue_key(args.id)
        _print({"tenant_id": args.id, "api_key": key}, args.json, lambda d: f"api key (shown once): {d['api_key']}")
    return 0


def _read_input(value: str) -> dict[str, Any]:
    raw = value
    if value.startswith("@"):
        try:
            raw = Path(value[1:]).read_text()
        except OSError as exc:
            raise CLIError(f"cannot read {value[1:]}: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CLIError(f"--input is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CLIError("--input must be a JSON object")
    return data


def cmd_invoke(args: argparse.Namespace) -> int:
    payload = _read_input(args.input)
    url = args.api_url or os.environ.get("MULTIAGENT_API_URL")
    key = args.api_key or os.environ.get("MULTIAGENT_API_KEY")
    if url:
        if not key:
            raise CLIError("--api-key (or MULTIAGENT_API_KEY) is needed with --api-url")
        status, body = _http_post(f"{url.rstrip('/')}/v1/teams/{args.team}/{args.operation}", payload, key)
    else:
        if not key:
            raise CLIError("--api-key (or MULTIAGENT_API_KEY) is needed; `multiagent tenants create NAME` makes one")
        status, body = _invoke_in_process(args.team, args.operation, payload, key)
    if status != 200:
        fields = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'body'}: {e.get('msg')}"
                           for e in body.get("errors", []))
        raise CLIError(f"{status} {body.get('title', 'error')}: {body.get('detail', body)}"
                       + (f" ({fields})" if fields else ""))
    _print(body, args.json, lambda d: json.dumps(d["output"], indent=2) +
           f"\n-- {d['model']}, {d['usage']['input_tokens']}+{d['usage']['output_tokens']} tokens, "
           f"${d['usage']['cost_usd']:.6f}, {d['duration_ms']} ms")
    return 0


def _http_post(url: str, payload: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    import httpx

    try:
        resp = httpx.post(url, json=payload, headers={"authorization": f"Bearer {key}"}, timeout=300)
    except httpx.HTTPError as exc:
        raise CLIError(f"cannot reach {url}: {exc}") from None
    try:
        return resp.status_code, resp.json()
    except ValueError:
        raise CLIError(f"{url} answered {resp.status_code} with a non-JSON body") from None


def _invoke_in_process(team: str, operation: str, payload: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    import httpx

    from shared.entrypoints import asgi_app

    async def go() -> tuple[int, dict[str, Any]]:
        app = asgi_app("gateway")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as client:
            resp = await client.post(f"/v1/teams/{team}/{operation}", json=payload,
                                     headers={"authorization": f"Bearer {key}"}, timeout=300)
            return resp.status_code, resp.json()

    import asyncio

    return asyncio.run(go())


def cmd_usage(args: argparse.Namespace) -> int:
    from types import SimpleNamespace

    from shared.app import usage_report

    admin = _admin()
    tenants = [admin.get(args.tenant)] if args.tenant else admin.store.list_tenants()
    runtime = SimpleNamespace(store=admin.store)  # the report reads only the store (Runtime.catalog is read-only)
    reports = [usage_report(runtime, t) for t in tenants]  # type: ignore[arg-type]

    def text(d: dict[str, Any]) -> str:
        lines = []
        for r in d["usage"]:
            # MULTIAGENT_MODEL_PROVIDER=simulated: real budgets, offline answers, nobody billed
            simulated = any(row["model"].startswith("simulated:") for row in r["by_model"])
            lines.append(f"{r['tenant_id']}: today ${r['spent_usd']['day']:.6f} of ${r['limits']['daily_usd']:.2f}, "
                         f"month ${r['spent_usd']['month']:.6f} of ${r['limits']['monthly_usd']:.2f}"
                         + ("  (simulated)" if simulated else ""))
            if simulated:
                lines.append("  simulated: spend of MULTIAGENT_MODEL_PROVIDER=simulated (offline answers at the "
                             "team's model price, counted against the budget; no provider billed it)")
            if r["unsettled_usd"]["month"]:
                lines.append(f"  unsettled (charged at worst case, outcome unknown): today "
                             f"${r['unsettled_usd']['day']:.6f}, month ${r['unsettled_usd']['month']:.6f}")
            for table, key in (("by_day", "day"), ("by_team", "team"), ("by_model", "model")):
                if r[table]:
                    lines.append(f"  by {key}:")
                    width = max(24, *(len(row[key]) for row in r[table]))
                    lines += [f"    {row[key]:<{width}} {row['calls']:>5} calls  {row['input_tokens']:>9} in  "
                              f"{row['output_tokens']:>8} out  ${row['cost_usd']:.6f}"
                              + (f"  (${row['unsettled_usd']:.6f} unsettled)" if row["unsettled_usd"] else "")
                              for row in r[table]]
        return "\n".join(lines) or "no tenants"

    _print({"usage": reports} if not args.tenant else reports[0], args.json,
           lambda d: text(d if "usage" in d else {"usage": [d]}))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    admin = _admin()
    tenants = [admin.get(args.tenant)] if args.tenant else admin.store.list_tenants()
    events = []
    for t in tenants:
        events += [e for e in admin.store.list_audit(t.id, args.limit) if not args.since or e.at >= args.since]
    events.sort(key=lambda e: e.at, reverse=True)
    data = {"events": [{"tenant_id": e.tenant_id, **e.public()} for e in events[: args.limit]]}
    _print(data, args.json, lambda d: "\n".join(
        f"{e['at']}  {e['tenant_id']}  {e['type']:<22} {e.get('team', '')}/{e.get('operation', '')} "
        f"{e.get('status', '')}" for e in d["events"]) or "no events")
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    from shared.store import open_store

    settings = _settings()
    store = open_store(settings.store_url)
    store.init()
    print(f"store ready: {settings.store_url}")
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from functions.mcp.main import run_stdio

    run_stdio(api_url=args.api_url, api_key=args.api_key, teams=_teams_arg(args.teams))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the docs)."""
    p = argparse.ArgumentParser(prog="multiagent", description="24 AI teams behind one API, with budgets.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="gateway + all teams in one process")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(fn=cmd_serve)

    s = sub.add_parser("teams", help="list teams and operations")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_teams)

    t = sub.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True)
    for action in ("create", "update"):
        s = t.add_parser(action)
        s.add_argument("name" if action == "create" else "id")
        if action == "update":
            s.add_argument("--name", dest="new_name")
        # Money and limits are read as text and checked by shared/limits.py (one-line errors, not argparse's).
        s.add_argument("--daily-usd", metavar="USD", help="daily cap, 0 to 1e9")
        s.add_argument("--monthly-usd", metavar="USD", help="monthly cap, 0 to 1e9")
        s.add_argument("--rpm", metavar="N", help="requests per minute (whole number)")
        s.add_argument("--tpm", metavar="N", help="tokens per minute (whole number)")
        s.add_argument("--teams", help="comma-separated allow-list")
        s.add_argument("--team-daily-usd", help="per-team daily caps, e.g. legal=5,finance=2")
        s.add_argument("--alert-threshold", metavar="FRACTION", help="in (0, 1], default 0.8")
        s.add_argument("--webhook-url")
        s.add_argument("--on-low-budget", choices=["refuse", "cheaper_model"])
        s.add_argument("--json", action="store_true")
        s.set_defaults(fn=cmd_tenants)
    for action in ("list", "show", "disable", "key"):
        s = t.add_parser(action)
        if action != "list":
            s.add_argument("id")
        s.add_argument("--json", action="store_true")
        s.set_defaults(fn=cmd_tenants)

    s = sub.add_parser("invoke", help="call one operation")
    s.add_argument("team")
    s.add_argument("operation")
    s.add_argument("--input", required=True, help="JSON object or @FILE")
    s.add_argument("--api-url")
    s.add_argument("--api-key")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_invoke)

    s = sub.add_parser("usage", help="spend per tenant")
    s.add_argument("--tenant")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_usage)

    s = sub.add_parser("audit", help="audit events")
    s.add_argument("--tenant")
    s.add_argument("--since", help="ISO time, e.g. 2026-11-22")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_audit)

    s = sub.add_parser("mcp", help="MCP server on stdio (for Claude Desktop)")
    s.add_argument("--api-url")
    s.add_argument("--api-key")
    s.add_argument("--teams", help="only these teams' tools, comma-separated")
    s.set_defaults(fn=cmd_mcp)

    st = sub.add_parser("store", help="state store tasks").add_subparsers(dest="action", required=True)
    s = st.add_parser("init", help="create the tables/indexes (idempotent)")
    s.set_defaults(fn=cmd_store)
    # Under `python -m shared.cli` this module is __main__: extensions register on the importable shared.cli.
    import shared.cli as registry
    import shared.export  # noqa: F401 - registers `export KIND` (other kinds register in its EXPORTERS)
    import shared.migrate  # noqa: F401 - export tenants|ledger|terraform, and `import`

    for extend in registry.CLI_EXTENSIONS:
        extend(sub)
    return p


# (subparsers) -> None; other modules (export/import) add their commands here.
CLI_EXTENSIONS: list[Callable[[Any], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``multiagent`` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "new_name", None):
        args.name = args.new_name
    elif args.command == "tenants" and args.action == "update":
        args.name = None
    started = time.monotonic()
    if args.command != "serve":
        os.environ.setdefault("MULTIAGENT_LOG_LEVEL", "WARNING")  # a CLI prints results, not access logs
    try:
        _settings()  # every command validates the environment first: one line naming the bad variable
        return int(args.fn(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ProblemError as exc:
        print(f"multiagent: {exc.status} {exc.title}: {exc.detail}", file=sys.stderr)
    except (MultiAgentError, ConfigurationError) as exc:
        print(f"multiagent: {exc}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - never a traceback to a user
        print(f"multiagent: unexpected {type(exc).__name__}: {exc} (after {time.monotonic() - started:.1f} s)",
              file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
