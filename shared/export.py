"""``multiagent export KIND [--out FILE] [--check]``: one command, many kinds of artifact.

Each kind is an entry of :data:`EXPORTERS`: a callable ``(args) -> str | bytes`` that
returns the artifact. The command writes it to ``--out`` (stdout by default), or with
``--check`` compares it to ``--out`` and exits 1 when the file is stale (for CI). A kind
that needs its own flags adds them through :data:`EXPORT_OPTIONS` (callables taking the
``export`` sub-parser); flags are shared by every kind, so name them for what they mean.

Register a kind from its own module, importing heavy things inside the callable so the
CLI stays fast::

    from shared.export import EXPORTERS

    def export_ledger(args): ...
    EXPORTERS["ledger"] = export_ledger

and import that module below (``_BUILTIN_MODULES``) so the command knows it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Exporter = Callable[[argparse.Namespace], "str | bytes"]

EXPORTERS: dict[str, Exporter] = {}
"""kind -> exporter; the exporter's docstring's first line is the kind's help."""

EXPORT_OPTIONS: list[Callable[[argparse.ArgumentParser], None]] = []
"""Extra flags of ``export`` (each adds arguments to the sub-parser)."""

# Modules that register kinds when imported (kept light: no heavy imports at top level).
_BUILTIN_MODULES: list[str] = ["shared.sdkgen", "shared.migrate"]


def _load_builtin_kinds() -> None:
    for name in _BUILTIN_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a kind's module not written yet must not break the CLI
            if exc.name != name:
                raise


def cmd_export(args: argparse.Namespace) -> int:
    """Write (or ``--check``) the artifact of ``args.kind``."""
    from shared.cli import CLIError

    exporter = EXPORTERS.get(args.kind)
    if exporter is None:
        raise CLIError(f"unknown export kind {args.kind!r} (known: {', '.join(sorted(EXPORTERS))})")
    data = exporter(args)
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
    """The ``export`` sub-command (registered in ``shared.cli.CLI_EXTENSIONS``)."""
    _load_builtin_kinds()
    kinds = sorted(EXPORTERS)
    lines = [f"  {k:<12} {((EXPORTERS[k].__doc__ or '').strip().splitlines() or [''])[0]}" for k in kinds]
    s = subparsers.add_parser("export", help="write a generated artifact (" + ", ".join(kinds) + ")",
                              description="kinds:\n" + "\n".join(lines),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("kind", choices=kinds, metavar="KIND", help="one of: " + ", ".join(kinds))
    s.add_argument("--out", help="file to write (default: stdout)")
    s.add_argument("--check", action="store_true", help="exit 1 when --out differs from what would be written")
    for extend in EXPORT_OPTIONS:
        extend(s)
    s.set_defaults(fn=cmd_export)


def _register() -> None:
    from shared.cli import CLI_EXTENSIONS

    if add_export_command not in CLI_EXTENSIONS:
        CLI_EXTENSIONS.append(add_export_command)


_register()
