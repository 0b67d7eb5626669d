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
from typing import TYPE_CHECKING, Any, NoReturn

from shared.errors import CLIError, ConfigurationError, MultiAgentError, ProblemError

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.tenants import TenantAdmin


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


def money(usd: float) -> str:
    """USD as the CLI prints it: cents, and as many more digits (to the micro-dollar the
    store keeps) as it takes not to round a non-zero amount away: $3.00, $0.004, $1.000123."""
    text = f"{usd:.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def _tenant_text(t: dict[str, Any]) -> str:
    teams = ",".join(t["teams"]) if t["teams"] else "all"
    state = "DISABLED" if t["disabled"] else "active"
    return (f"{t['tenant_id']}  {t['name']}  {state}  daily {money(t['daily_usd'])}  monthly {money(t['monthly_usd'])}"
            f"  rpm {t['rpm']}  tpm {t['tpm']}  teams {teams}")


def cmd_teams(args: argparse.Namespace) -> int:
    from shared.catalog import load_catalog

    teams = [t.describe() for t in load_catalog()]
    _print({"teams": teams}, args.json, lambda d: "\n".join(
        f"{t['name']:<24} {', '.join(o['name'] for o in t['operations'])}" for t in d["teams"]))
    return 0


def cmd_tenants(args: argparse.Namespace) -> int:
    from shared.tenants import public_tenant

    admin = _admin()
    if getattr(args, "id", None) is not None:
        args.id = admin.resolve(args.id).id  # T: a tenant's unique name or its id
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
    elif args.action == "enable":
        _print(public_tenant(admin.enable(args.id)), args.json, _tenant_text)
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


class _Api:
    """Where ``invoke`` and ``run`` send their request: the server at ``--api-url`` (or
    ``MULTIAGENT_API_URL``), else the gateway app run inside this command on this machine's
    ``MULTIAGENT_STORE`` (same code, same budgets; a running server is not involved)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url = (args.api_url or os.environ.get("MULTIAGENT_API_URL") or "").rstrip("/") or None
        self.source = "--api-url" if args.api_url else "MULTIAGENT_API_URL"
        self.key = args.api_key or os.environ.get("MULTIAGENT_API_KEY")
        if not self.key:
            raise CLIError("--api-key (or MULTIAGENT_API_KEY) is needed" + (
                " with --api-url" if self.url else "; `multiagent tenants create NAME` makes one"))

    @property
    def where(self) -> str:
        """Where the request went, for a message."""
        if self.url:
            return f"at {self.url} ({self.source})"
        return "in-process: no --api-url or MULTIAGENT_API_URL, so the gateway ran inside this command"

    def note(self) -> None:
        """Say on stderr where the request is served (once it was accepted)."""
        if self.url:
            print(f"multiagent: calling the server {self.where}", file=sys.stderr, flush=True)
        else:
            print(f"multiagent: {self.where} on {_settings().store_url} (pass --api-url or set MULTIAGENT_API_URL "
                  "to use a running server)", file=sys.stderr, flush=True)

    def failure(self, status: int, body: Any) -> CLIError:
        """The one-line error of a problem answer."""
        if not isinstance(body, dict):
            return CLIError(f"{status} from the API ({self.where}): {str(body)[:300]}")
        fields = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'body'}: {e.get('msg')}"
                           for e in body.get("errors", []) if isinstance(e, dict))
        return CLIError(f"{status} {body.get('title', 'error')}: {body.get('detail', body)}"
                        + (f" ({fields})" if fields else "") + f" [{'at ' + self.url if self.url else 'in-process'}]")

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None,
             on_event: Callable[[str, Any], None] | None = None) -> dict[str, Any]:
        """The 200 body of ``method path``; with ``on_event`` the answer is streamed as
        Server-Sent Events, each passed to it as it arrives, and the body is the ``done``
        event's. A problem answer (or an ``error`` event) raises the one-line :class:`CLIError`."""
        import asyncio

        headers = {"authorization": f"Bearer {self.key}", "accept": "text/event-stream" if on_event else
                   "application/json", "content-type": "application/json"}
        body = json.dumps(payload).encode() if payload is not None else b""
        state: dict[str, Any] = {"status": 0, "raw": b"", "done": None, "error": None}
        events = _EventParser(lambda name, data: self._event(state, name, data, on_event))

        def start(status: int) -> None:
            state["status"] = status
            if status == 200:
                self.note()

        def chunk(data: bytes) -> None:
            if state["status"] == 200 and on_event is not None:
                events.feed(data)
            else:
                state["raw"] += data

        if self.url:
            asyncio.run(self._over_http(method, path, body, headers, start, chunk))
        else:
            asyncio.run(self._in_process(method, path, body, headers, start, chunk))
        status = state["status"]
        if status == 200 and on_event is not None:
            if state["error"] is not None:
                raise self.failure(int(state["error"].get("status", 500)), state["error"])
            if state["done"] is None:
                raise CLIError(f"the event stream ended before the run was done ({self.where})")
            return state["done"]  # type: ignore[no-any-return]
        try:
            answer = json.loads(state["raw"] or b"null")
        except ValueError:
            raise CLIError(f"the API answered {status} with a non-JSON body ({self.where})") from None
        if status != 200:
            raise self.failure(status, answer)
        return answer  # type: ignore[no-any-return]

    @staticmethod
    def _event(state: dict[str, Any], name: str, data: Any, on_event: Callable[[str, Any], None] | None) -> None:
        if name == "done":
            state["done"] = data
        elif name == "error":
            state["error"] = data if isinstance(data, dict) else {"detail": str(data)}
        if on_event is not None:
            on_event(name, data)

    async def _over_http(self, method: str, path: str, body: bytes, headers: dict[str, str],
                         start: Callable[[int], None], chunk: Callable[[bytes], None]) -> None:
        import httpx

        url = f"{self.url}{path}"
        try:
            # a run may last up to its deadline (at most an hour); a stream sends a keep-alive every 15 s
            async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=3_700.0)) as client, \
                    client.stream(method, url, content=body or None, headers=headers) as resp:
                start(resp.status_code)
                async for data in resp.aiter_bytes():
                    chunk(data)
        except httpx.HTTPError as exc:
            raise CLIError(f"cannot reach {url}: {exc or type(exc).__name__}") from None

    @staticmethod
    async def _in_process(method: str, path: str, body: bytes, headers: dict[str, str],
                          start: Callable[[int], None], chunk: Callable[[bytes], None]) -> None:
        """One request through the gateway app, its body passed on chunk by chunk as the app
        sends it (so a stream is printed as it happens, unlike httpx's ASGITransport)."""
        import asyncio

        from shared.entrypoints import asgi_app
        from shared.observability import audit

        app = asgi_app("gateway")
        finished = asyncio.Event()
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()  # the client stays until the whole answer was sent
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start(int(message["status"]))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunk(bytes(message["body"]))
                if not message.get("more_body"):
                    finished.set()

        path_only, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path_only, "raw_path": path_only.encode(), "query_string": query.encode(),
                 "root_path": "", "headers": [(k.encode(), v.encode()) for k, v in
                                              {**headers, "host": "in-process"}.items()],
                 "client": ("127.0.0.1", 0), "server": ("in-process", 80)}
        try:
            await app(scope, receive, send)  # type: ignore[arg-type]
        finally:
            finished.set()
            await audit.drain()  # the audit trail is written before the command exits


class _EventParser:
    """Server-Sent Events from a byte stream: ``on_event(name, JSON data)`` per event."""

    def __init__(self, on_event: Callable[[str, Any], None]) -> None:
        self.on_event, self.buffer = on_event, b""

    def feed(self, data: bytes) -> None:
        """Take the next bytes; report every event they complete."""
        self.buffer = (self.buffer + data).replace(b"\r\n", b"\n")
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            name, lines = "message", []
            for line in block.decode("utf-8", "replace").split("\n"):
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "data":
                    lines.append(value)
            if lines:
                try:
                    self.on_event(name, json.loads("\n".join(lines)))
                except ValueError:
                    self.on_event(name, "\n".join(lines))


def cmd_invoke(args: argparse.Namespace) -> int:
    payload = _read_input(args.input)
    api = _Api(args)
    body = api.call("POST", f"/v1/teams/{args.team}/{args.operation}", payload)
    _print(body, args.json, lambda d: json.dumps(d["output"], indent=2) +
           f"\n-- {d['model']}, {d['usage']['input_tokens']}+{d['usage']['output_tokens']} tokens, "
           f"{money(d['usage']['cost_usd'])}, {d['duration_ms']} ms")
    return 0


# `multiagent run`: 0 when the run succeeded, PARTIAL_EXIT when some steps failed or were refused, 1 when it failed
PARTIAL_EXIT = 3


def _run_text(run: dict[str, Any]) -> str:
    lines = [str(run.get("answer") or "(no answer)"), ""]
    for s in run.get("steps") or []:
        usage = s.get("usage") or {}
        line = f"  [{s['id']}] {s['team']}/{s['operation']}: {s['status']}"
        if usage.get("cost_usd") is not None:
            line += f", {money(float(usage['cost_usd']))}"
        if s.get("error"):
            line += f" ({s['error'].get('status', '')} {s['error'].get('title', '')}: {s['error'].get('detail', '')})"
        lines.append(line[:400])
    u = run.get("usage") or {}
    ok = sum(1 for s in run.get("steps") or [] if s["status"] == "succeeded")
    lines.append(f"-- {run['id']} {run['status']}: {ok} of {len(run.get('steps') or [])} steps succeeded, "
                 f"{u.get('input_tokens', 0)}+{u.get('output_tokens', 0)} tokens, {money(u.get('cost_usd', 0.0))}")
    return "\n".join(lines)


def _event_text(name: str, data: Any) -> str | None:
    """One line per run event worth a line on a terminal (``done`` is printed as the result)."""
    if not isinstance(data, dict):
        return None
    label = f"[{data.get('step')}] {data.get('team')}/{data.get('operation')}"
    if name == "step.started":
        return f"{label} started"
    if name == "step.completed":
        error = data.get("error") or {}
        cost = (data.get("usage") or {}).get("cost_usd")
        return (f"{label} {data.get('status')}" + (f", {money(float(cost))}" if cost is not None else "")
                + (f" ({error.get('status')} {error.get('title')}: {error.get('detail')})"[:300] if error else ""))
    if name == "tool.called":
        return f"{label} tool {data.get('tool', data.get('name', '?'))}"
    if name == "model.delta" and data.get("step") == "plan":
        return f"[plan] planned on {data.get('model')}"
    if name == "usage":
        return f"[usage] {data.get('input_tokens', 0)}+{data.get('output_tokens', 0)} tokens, " \
               f"{money(float(data.get('cost_usd', 0.0)))}"
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from shared import limits

    if not args.task.strip():
        raise CLIError("TASK must not be empty")
    payload: dict[str, Any] = {"task": args.task}
    if args.teams is not None:
        teams = _teams_arg(args.teams)
        if not teams:
            raise CLIError("--teams needs at least one team name, e.g. --teams finance,legal")
        payload["teams"] = teams
    if args.max_usd is not None:
        value = _number(args.max_usd, "max_usd")
        limits.usd_micros(value, ["body", "max_usd"], positive=True)  # the server's rule, checked before sending
        payload["max_usd"] = value
    api = _Api(args)

    def show(name: str, data: Any) -> None:
        if args.json:
            print(json.dumps({"event": name, "data": data}), flush=True)
        elif name not in ("done", "error"):
            line = _event_text(name, data)
            if line:
                print(line, flush=True)

    run = api.call("POST", "/v1/runs", payload, on_event=show if args.follow else None)
    if not (args.follow and args.json):  # with --follow --json the `done` event was the last line
        _print(run, args.json, _run_text)
    if run["status"] == "succeeded":
        return 0
    not_ok = [f"{s['id']} {s['status']}" for s in run.get("steps") or [] if s["status"] != "succeeded"]
    detail = (run.get("error") or {}).get("detail") or ", ".join(not_ok)
    print(f"multiagent: run {run['id']} {run['status']}: {detail}"[:1_000], file=sys.stderr)
    return PARTIAL_EXIT if run["status"] == "partial" else 1


def cmd_usage(args: argparse.Namespace) -> int:
    from types import SimpleNamespace

    from shared.usage import usage_report

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


def since_time(text: str, now: float | None = None) -> str:
    """``--since`` as the store's timestamp format (UTC): an ISO 8601 date or time (without
    an offset: UTC), or a relative ``30m``, ``1h``, ``7d``, ``2w`` (before now)."""
    import re
    from datetime import UTC, datetime, timedelta

    raw = text.strip()
    relative = re.fullmatch(r"(\d{1,6})\s*([smhdw])", raw)
    if relative:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[relative[2]]
        at = datetime.fromtimestamp(time.time() if now is None else now, UTC) - timedelta(**{unit: int(relative[1])})
    else:
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            raise CLIError(f"--since {text!r} is neither an ISO 8601 time (2026-11-22, 2026-11-22T09:30Z) "
                           "nor a relative one (30m, 1h, 7d, 2w)") from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cmd_audit(args: argparse.Namespace) -> int:
    from shared.observability.audit import recent

    since = since_time(args.since) if args.since is not None else None
    if args.limit < 1:
        raise CLIError(f"--limit {args.limit} must be at least 1")
    admin = _admin()
    tenants = [admin.resolve(args.tenant)] if args.tenant else admin.store.list_tenants()
    events = []
    for t in tenants:
        events += recent(admin.store, t.id, since, cap=args.limit) if since else \
            admin.store.list_audit(t.id, args.limit)
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


class ArgumentParser(argparse.ArgumentParser):
    """argparse with every usage error as ONE line on stderr (exit 2), not its usage block."""

    def error(self, message: str) -> NoReturn:
        """``multiagent: <command>: <what is wrong> (see <command> --help)``."""
        text = " ".join(message.split())
        command = self.prog.removeprefix("multiagent").strip()
        self.exit(2, f"multiagent: {command + ': ' if command else ''}{text} (see {self.prog} --help)\n")


def _positive_int(value: str) -> int:
    """An integer of at least 1 (argparse reports anything else as a usage error)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the docs)."""
    p = ArgumentParser(prog="multiagent", description="24 AI teams behind one API, with budgets.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="gateway + all teams (one process per worker)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=_positive_int, default=None,
                   help="worker processes sharing the port and the store (default: the CPUs this process may use)")
    s.add_argument("--_worker-fd", dest="worker_fd", type=int, default=None, help=argparse.SUPPRESS)
    s.set_defaults(fn="shared.cli.serve:cmd_serve")  # the HTTP stack loads for this command only

    s = sub.add_parser("teams", help="list teams and operations")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_teams)

    t = sub.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True)
    for action in ("create", "update"):
        s = t.add_parser(action)
        if action == "create":
            s.add_argument("name")
        else:
            s.add_argument("id", metavar="T", help="the tenant's unique name or its id")
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
    for action in ("list", "show", "disable", "enable", "key"):
        s = t.add_parser(action)
        if action != "list":
            s.add_argument("id", metavar="T", help="the tenant's unique name or its id")
        s.add_argument("--json", action="store_true")
        s.set_defaults(fn=cmd_tenants)

    s = sub.add_parser("invoke", help="call one operation")
    s.add_argument("team")
    s.add_argument("operation")
    s.add_argument("--input", required=True, help="JSON object or @FILE")
    s.add_argument("--api-url", help="the server to call (default: MULTIAGENT_API_URL, else in-process)")
    s.add_argument("--api-key", help="a tenant's API key (default: MULTIAGENT_API_KEY)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_invoke)

    s = sub.add_parser("run", help="an orchestrated multi-team run",
                       epilog=f"exit status: 0 succeeded, {PARTIAL_EXIT} partial (some steps failed or were "
                              "refused), 1 failed")
    s.add_argument("task")
    s.add_argument("--teams", help="comma-separated teams that must take part (default: the planner picks)")
    s.add_argument("--max-usd", metavar="USD", help="the run's total budget, (0, 1e9]")
    s.add_argument("--follow", action="store_true", help="print the run's events as they happen")
    s.add_argument("--api-url", help="the server to call (default: MULTIAGENT_API_URL, else in-process)")
    s.add_argument("--api-key", help="a tenant's API key (default: MULTIAGENT_API_KEY)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("usage", help="spend per tenant")
    s.add_argument("--tenant")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_usage)

    s = sub.add_parser("audit", help="audit events")
    s.add_argument("--tenant", help="a tenant's name or id (default: every tenant)")
    s.add_argument("--since", help="ISO 8601 (2026-11-22, 2026-11-22T09:30Z) or relative (30m, 1h, 7d, 2w)")
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
    for adder in COMMAND_MODULES:
        resolve(adder)(sub)
    return p


# Commands whose module adds its own sub-parser, "module:function(subparsers)", imported when
# the parser is built; a command's ``fn`` may also be "module:function", imported when it runs.
COMMAND_MODULES = ("shared.cli.export:add_export_command", "shared.migrate:add_import_command")


def resolve(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """The function a ``"module:function"`` string names (a callable is returned as is)."""
    if callable(target):
        return target
    import importlib

    module, _, name = target.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return fn


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
        return int(resolve(args.fn)(args) or 0)
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

