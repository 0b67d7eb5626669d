"""``multiagent export KIND [--out FILE] [--check]``: one command, many kinds of artifact.

Each kind is a row of :data:`KINDS`: its help line and the ``"module:function"`` of a
callable ``(args) -> str | bytes`` that returns the artifact, imported only when that kind
is exported (the CLI stays fast). The command writes it to ``--out`` (stdout by default),
or with ``--check`` compares it to ``--out`` and exits 1 when the file is stale (for CI).
Flags are shared by every kind, so they are named for what they mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shared.errors import CLIError

KINDS: dict[str, tuple[str, str]] = {
    "ledger": ("shared.migrate:export_ledger_kind", "the usage ledger, JSON lines (--store, --tenant, --since)"),
    "openapi": ("shared.sdkgen:export_openapi", "OpenAPI 3.1 document of `multiagent serve` (commit it as "
                                                "sdk/openapi.json)."),
    "sdk-types": ("shared.sdkgen:export_sdk_types", "Python SDK models and team classes "
                                                    "(sdk/python/src/multiagent_sdk/_generated.py)."),
    "tenants": ("shared.migrate:export_tenants_kind", "tenants and their API key hashes, JSON lines (--store)"),
    "terraform": ("shared.migrate:export_terraform_kind", "infra/terraform/teams.auto.tfvars.json (the default "
                                                          "--out), read by both roots"),
    "ts-types": ("shared.sdkgen:export_ts_types", "TypeScript SDK types and team classes "
                                                  "(sdk/typescript/src/generated.ts)."),
}
"""kind -> ("module:function" of its exporter, its help line)."""


def cmd_export(args: argparse.Namespace) -> int:
    """Write (or ``--check``) the artifact of ``args.kind``."""
    from shared.cli import resolve

    if args.kind not in KINDS:
        raise CLIError(f"unknown export kind {args.kind!r} (known: {', '.join(sorted(KINDS))})")
    data = resolve(KINDS[args.kind][0])(args)
    blob = data.encode() if isinstance(data, str) else data
    if args.check:
        if not args.out:
            raise CLIError("--check needs --out FILE (the committed artifact to compare with)")
        path = Path(args.out)
        if not path.exists() or path.read_bytes() != blob:
            raise CLIError(f"{path} is stale: run `multiagent export {args.kind} --out {path}`")
        print(f"{path} is up to date", file=sys.stderr)
        return 0
    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        print(f"wrote {path} ({len(blob)} bytes)", file=sys.stderr)
    else:
        sys.stdout.buffer.write(blob)
        sys.stdout.flush()
    return 0


def add_export_command(subparsers: Any) -> None:
    """The ``export`` sub-command (``shared.cli.COMMAND_MODULES``)."""
    kinds = sorted(KINDS)
    lines = [f"  {k:<12} {KINDS[k][1]}" for k in kinds]
    s = subparsers.add_parser("export", help="write a generated artifact (" + ", ".join(kinds) + ")",
                              description="kinds:\n" + "\n".join(lines),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("kind", choices=kinds, metavar="KIND", help="one of: " + ", ".join(kinds))
    s.add_argument("--out", help="file to write (default: stdout)")
    s.add_argument("--check", action="store_true", help="exit 1 when --out differs from what would be written")
    s.add_argument("--store", help="tenants, ledger: the store URL (default: MULTIAGENT_STORE)")
    s.add_argument("--tenant", help="ledger: one tenant only")
    s.add_argument("--since", help="ledger: entries at or after this ISO time, e.g. 2026-11-01")
    s.set_defaults(fn=cmd_export)


__all__ = ["KINDS", "add_export_command", "cmd_export"]
