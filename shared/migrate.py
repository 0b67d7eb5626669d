"""Moving a deployment between stores, and the Terraform team list.

Export kinds of :data:`shared.cli.export.KINDS` (``multiagent export KIND``)::

    tenants     tenants with their API key hashes                 (JSON lines; --store)
    ledger      the usage ledger, oldest first per tenant         (JSON lines; --store, --tenant, --since)
    terraform   infra/terraform/teams.auto.tfvars.json, the team list both Terraform roots
                read (each root links to it); written there unless --out says otherwise

and the command ``multiagent import FILE... [--store URL] [--dry-run]`` (``-`` is stdin).

A JSON-lines record is tagged with its ``kind`` and format ``v``::

    {"kind": "tenant", "v": 1, "tenant": {...}, "api_keys": [{"key_hash", "prefix", "created_at", "revoked"}]}
    {"kind": "ledger", "v": 1, "entry": {...}}

Import is idempotent, so a failed import is simply run again: a tenant that exists is
updated to the exported fields, a key hash that exists is left alone, and a ledger entry
goes through the store's own ``settle`` (keyed by the entry id: a repeated settle changes
nothing). Settling also rebuilds the spend of the budget windows the entry falls in (day,
month, per-team day) while those windows are live, so a tenant cannot spend its day's
budget a second time after a move. Keys move as hashes: they keep working after a move and
are never exported in clear.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from shared.errors import CLIError
from shared.store.base import ApiKeyRecord, LedgerEntry, Reservation, Store, Tenant, new_id

FORMAT_VERSION = 1
LEDGER_PAGE = 1000
REPO_ROOT = Path(__file__).resolve().parents[1]
TERRAFORM_TEAMS_FILE = REPO_ROOT / "infra" / "terraform" / "teams.auto.tfvars.json"


# --- store helpers -----------------------------------------------------------------------
def open_initialised(url: str | None) -> Store:
    """The store at ``url`` (default: ``MULTIAGENT_STORE``), tables created if missing."""
    from shared.config import Settings
    from shared.store import open_store

    store = open_store(url or Settings.from_env().store_url)
    store.init()
    return store


def iter_ledger(store: Store, tenant_id: str, since: str | None = None) -> Iterator[LedgerEntry]:
    """Every ledger entry of a tenant at or after ``since``, oldest first, page by page.

    ``since`` is inclusive, so each page starts at the last instant of the one before and
    skips the ids already given; a page that holds one instant only is widened, or the
    walk could not move past it.
    """
    seen: set[str] = set()  # ids already given at the cursor instant
    cursor, limit = since, LEDGER_PAGE
    while True:
        page = store.list_ledger(tenant_id, since=cursor, limit=limit)
        yield from (e for e in page if e.id not in seen)
        if len(page) < limit:
            return
        last = page[-1].at
        if last == cursor:
            seen |= {e.id for e in page}
            limit *= 2
            continue
        cursor, limit = last, LEDGER_PAGE
        seen = {e.id for e in page if e.at == last}


# --- export ------------------------------------------------------------------------------
def export_tenants(store: Store) -> Iterator[dict[str, Any]]:
    """The ``tenant`` records of every tenant, oldest first."""
    for tenant in store.list_tenants():
        keys = [{k: v for k, v in dataclasses.asdict(r).items() if k != "tenant_id"}
                for r in store.list_api_keys(tenant.id)]
        yield {"kind": "tenant", "v": FORMAT_VERSION, "tenant": tenant.to_dict(), "api_keys": keys}


def export_ledger(store: Store, tenant_id: str | None = None, since: str | None = None) -> Iterator[dict[str, Any]]:
    """The ``ledger`` records of one tenant or all, oldest first per tenant."""
    ids = [tenant_id] if tenant_id else [t.id for t in store.list_tenants()]
    for tid in ids:
        for entry in iter_ledger(store, tid, since):
            yield {"kind": "ledger", "v": FORMAT_VERSION, "entry": dataclasses.asdict(entry)}


def json_lines(records: Iterable[dict[str, Any]]) -> str:
    """Records as JSON lines (keys sorted: the same data always gives the same bytes)."""
    return "".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in records)


# --- import ------------------------------------------------------------------------------
@dataclasses.dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    tenants_created: int = 0
    tenants_updated: int = 0
    keys_added: int = 0
    ledger_entries: int = 0

    def summary(self) -> str:
        """One line for the terminal."""
        return (f"tenants: {self.tenants_created} created, {self.tenants_updated} updated; "
                f"api keys: {self.keys_added} added; ledger entries: {self.ledger_entries} settled")


class Importer:
    """Applies export records to a store (the rules are in the module docstring)."""

    def __init__(self, store: Store, *, dry_run: bool = False, now: float | None = None) -> None:
        self.store = store
        self.dry_run = dry_run
        self.now = now
        self.report = ImportReport()
        self._tenants: dict[str, Tenant] = {}

    def apply(self, record: Any, where: str = "") -> None:
        """Apply one record; a bad one raises :class:`CLIError` naming ``where``."""
        if not isinstance(record, dict) or record.get("v") != FORMAT_VERSION:
            raise CLIError(f"{where}: not a multiagent export record of format v{FORMAT_VERSION}")
        kind = record.get("kind")
        if kind not in ("tenant", "ledger"):
            raise CLIError(f"{where}: unknown record kind {kind!r} (expected tenant or ledger)")
        try:
            self._tenant(record) if kind == "tenant" else self._ledger(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise CLIError(f"{where}: malformed {kind} record: {type(exc).__name__}: {exc}") from None

    def _tenant(self, record: dict[str, Any]) -> None:
        tenant = Tenant.from_dict(record["tenant"])
        existing = self.store.get_tenant(tenant.id)
        if existing is None:
            self.report.tenants_created += 1
            if not self.dry_run:
                self.store.create_tenant(tenant)
        elif existing.to_dict() != tenant.to_dict():
            self.report.tenants_updated += 1
            if not self.dry_run:
                tenant = self.store.update_tenant(tenant.id, {k: v for k, v in tenant.to_dict().items() if k != "id"})
        self._tenants[tenant.id] = tenant
        for key in record.get("api_keys", []):
            rec = ApiKeyRecord(key_hash=key["key_hash"], tenant_id=tenant.id, prefix=key["prefix"],
                               created_at=key["created_at"], revoked=bool(key.get("revoked", False)))
            if self.store.get_api_key(rec.key_hash) is None:
                self.report.keys_added += 1
                if not self.dry_run:
                    self.store.put_api_key(rec)

    def _tenant_for(self, tenant_id: str) -> Tenant:
        if tenant_id not in self._tenants:
            tenant = self.store.get_tenant(tenant_id)
            if tenant is None:
                raise CLIError(f"ledger entry of unknown tenant {tenant_id!r}: import its tenant record first")
            self._tenants[tenant_id] = tenant
        return self._tenants[tenant_id]

    def _ledger(self, record: dict[str, Any]) -> None:
        from shared.budget import window_limits

        known = {f.name for f in dataclasses.fields(LedgerEntry)}
        entry = LedgerEntry(**{k: v for k, v in record["entry"].items() if k in known})
        tenant = self._tenant_for(entry.tenant_id)
        self.report.ledger_entries += 1
        if self.dry_run:
            return
        now = self.now if self.now is not None else time.time()
        at = datetime.fromisoformat(entry.at.replace("Z", "+00:00")).timestamp()
        live = [w for w in window_limits(tenant, entry.team, at) if w.expires_at > now]
        reservation = Reservation(id=new_id("imp"), tenant_id=tenant.id, amount_micros=0,
                                  windows=[w.key for w in live], expires_at=now + 300,
                                  request_id=entry.request_id, team=entry.team, operation=entry.operation)
        # A zero hold creates missing windows with the tenant's limits. It always fits,
        # unless a limit was lowered below what was spent: then only the ledger moves.
        if live and not self.store.reserve(reservation, live, [], now).ok:
            reservation.windows = []
        self.store.settle(reservation, entry.cost_micros, entry, [])
        if reservation.windows:
            # a settle of an entry that was already there changed nothing and left the hold
            self.store.release(tenant.id, reservation.id)


def read_records(paths: list[str]) -> Iterator[tuple[str, Any]]:
    """``(file:line, record)`` for every non-blank line of ``paths`` (``-``: stdin)."""
    for path in paths:
        try:
            stream: IO[str] = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CLIError(f"cannot read {path}: {exc.strerror}") from None
        try:
            for number, line in enumerate(stream, 1):
                if line.strip():
                    try:
                        yield f"{path}:{number}", json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise CLIError(f"{path}:{number}: not JSON: {exc.msg}") from None
        finally:
            if stream is not sys.stdin:
                stream.close()


def import_records(store: Store, paths: list[str], dry_run: bool = False) -> ImportReport:
    """Import every record of ``paths`` into ``store``: tenants first, whatever the file order."""
    records = list(read_records(paths))
    importer = Importer(store, dry_run=dry_run)
    for where, record in sorted(records, key=lambda r: 0 if isinstance(r[1], dict) and r[1].get("kind") == "tenant"
                                else 1):
        importer.apply(record, where)
    return importer.report


# --- terraform ---------------------------------------------------------------------------
def terraform_teams() -> str:
    """``teams.auto.tfvars.json``: ``var.teams`` of both Terraform roots, from the catalog."""
    from shared.catalog import load_catalog

    teams = {t.name: {"description": t.description} for t in load_catalog()}
    return json.dumps({"teams": teams}, indent=2, sort_keys=True) + "\n"


# --- registration ------------------------------------------------------------------------
def export_tenants_kind(args: argparse.Namespace) -> str:
    """tenants and their API key hashes, JSON lines (--store)"""
    store = open_initialised(args.store)
    try:
        return json_lines(export_tenants(store))
    finally:
        store.close()


def export_ledger_kind(args: argparse.Namespace) -> str:
    """the usage ledger, JSON lines (--store, --tenant, --since)"""
    store = open_initialised(args.store)
    try:
        return json_lines(export_ledger(store, args.tenant, args.since))
    finally:
        store.close()


def export_terraform_kind(args: argparse.Namespace) -> str:
    """infra/terraform/teams.auto.tfvars.json (the default --out), read by both roots"""
    if not args.out:
        args.out = str(TERRAFORM_TEAMS_FILE)
    return terraform_teams()


def cmd_import(args: argparse.Namespace) -> int:
    """``multiagent import FILE...``."""
    store = open_initialised(args.store)
    try:
        report = import_records(store, args.files, dry_run=args.dry_run)
    finally:
        store.close()
    print(("dry run, nothing written: " if args.dry_run else "imported ") + report.summary())
    return 0


def add_import_command(sub: Any) -> None:
    """The ``import`` sub-command (``shared.cli.COMMAND_MODULES``)."""
    p = sub.add_parser("import", help="import tenant and ledger records written by `multiagent export`")
    p.add_argument("files", nargs="+", help="JSON-lines files ('-' for stdin)")
    p.add_argument("--store", help="store URL (default: MULTIAGENT_STORE)")
    p.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    p.set_defaults(fn=cmd_import)
