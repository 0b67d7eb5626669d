"""Tenant administration, shared by the CLI and the admin API (and audited by both)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared import limits, webhooks
from shared.auth import Authenticator
from shared.config import Settings
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.pricing import micros, usd
from shared.store.base import AuditEvent, Store, Tenant, new_id

if TYPE_CHECKING:
    from shared.catalog import Catalog

EDITABLE = ("name", "daily_usd", "monthly_usd", "rpm", "tpm", "teams", "team_daily_usd", "alert_threshold",
            "disabled", "webhook_url", "on_low_budget", "content_logging")


def _bad(field: str, msg: str) -> ValidationFailed:
    return limits.invalid(["body", field], msg)


class NameTaken(Conflict):
    """Another tenant already has this name (names are unique, compared case-insensitively)."""

    title = "Tenant name taken"


class AmbiguousName(Conflict):
    """A name several tenants share (made before names were unique): use an id."""

    title = "Ambiguous tenant name"


def to_changes(fields: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """Validate user-facing fields (USD, limits, flags, names) and turn them into stored
    tenant fields (money as integer micro-dollars). Nothing is stored unless all are valid."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        loc = ["body", key]
        if key not in EDITABLE:
            raise _bad(key, f"unknown field; editable: {', '.join(EDITABLE)}")
        if key == "name":
            if not isinstance(value, str) or not value.strip():
                raise _bad(key, "must be a non-empty string")
            out[key] = value.strip()
        elif key in ("daily_usd", "monthly_usd"):
            out["daily_limit_micros" if key == "daily_usd" else "monthly_limit_micros"] = limits.usd_micros(value, loc)
        elif key in ("rpm", "tpm"):
            out[key] = limits.rate(value, loc)
        elif key == "teams":
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise _bad(key, "must be a list of team names")
            unknown = [t for t in value if t not in catalog]
            if unknown:
                raise _bad(key, f"unknown teams {unknown}")
            out[key] = list(value)
        elif key == "team_daily_usd":
            out["team_daily_limit_micros"] = limits.team_usd_micros(value, loc, catalog)
        elif key == "alert_threshold":
            out[key] = limits.fraction(value, loc)
        elif key in ("disabled", "content_logging"):
            out[key] = limits.flag(value, loc)
        elif key == "on_low_budget":
            if value not in ("refuse", "cheaper_model"):
                raise _bad(key, "must be 'refuse' or 'cheaper_model'")
            out[key] = value
        elif key == "webhook_url":  # https to a public host name only (shared/webhooks.py)
            out[key] = webhooks.validate_webhook_url(value, loc)
    return out


def public_tenant(t: Tenant) -> dict[str, Any]:
    """A tenant as the CLI and admin API show it (USD, not micro-dollars)."""
    return {
        "tenant_id": t.id, "name": t.name, "daily_usd": usd(t.daily_limit_micros),
        "monthly_usd": usd(t.monthly_limit_micros), "rpm": t.rpm, "tpm": t.tpm, "teams": t.teams,
        "team_daily_usd": {k: usd(v) for k, v in t.team_daily_limit_micros.items()},
        "alert_threshold": t.alert_threshold, "disabled": t.disabled, "webhook_url": t.webhook_url,
        "on_low_budget": t.on_low_budget, "content_logging": t.content_logging, "created_at": t.created_at,
    }


class TenantAdmin:
    """Create, list, show, update and disable tenants; issue keys. Every change is audited."""

    def __init__(self, store: Store, settings: Settings, catalog: Catalog, actor: str = "cli") -> None:
        self.store, self.settings, self.catalog, self.actor = store, settings, catalog, actor

    def _audit(self, tenant_id: str, kind: str, detail: dict[str, Any]) -> None:
        self.store.append_audit([AuditEvent(id=new_id("aud"), tenant_id=tenant_id, type=kind,
                                            detail={"actor": self.actor, **detail})])

    def create(self, name: str, /, **fields: Any) -> tuple[Tenant, str]:
        """A new tenant (defaults from settings) and its first API key (shown once)."""
        if not isinstance(name, str) or not name.strip():
            raise _bad("name", "must be a non-empty string")
        s = self.settings
        changes = to_changes(fields, self.catalog)
        self._check_name_free(name.strip())
        tenant = Tenant(id=new_id("ten"), name=name.strip(), daily_limit_micros=micros(s.default_daily_usd),
                        monthly_limit_micros=micros(s.default_monthly_usd), rpm=s.default_rpm, tpm=s.default_tpm)
        tenant = Tenant.from_dict({**tenant.to_dict(), **changes})
        try:
            self.store.create_tenant(tenant)
        except KeyError:
            raise Conflict(f"a tenant with id {tenant.id} already exists") from None
        key = Authenticator(self.store).issue_key(tenant.id)
        self._audit(tenant.id, "admin.tenant_created", {"name": tenant.name})
        return tenant, key

    def _check_name_free(self, name: str, tenant_id: str | None = None) -> None:
        """409 when another tenant (not ``tenant_id``) already has ``name``. Checked on a read
        of the tenants: two creates racing with one new name can both pass (the CLI and the
        admin API are operator tools, not a hot path)."""
        taken = [t for t in self.store.list_tenants() if t.name.casefold() == name.casefold() and t.id != tenant_id]
        if taken:
            raise NameTaken(f"a tenant named {taken[0].name!r} already exists ({taken[0].id}); names are unique")

    def get(self, tenant_id: str) -> Tenant:
        """The tenant or 404."""
        tenant = self.store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return tenant

    def resolve(self, ref: str) -> Tenant:
        """The tenant whose id or (case-insensitively) unique name is ``ref``, or 404; a name
        that several tenants share (made before names were unique) is a 409 naming their ids."""
        tenant = self.store.get_tenant(ref)
        if tenant is not None:
            return tenant
        named = [t for t in self.store.list_tenants() if t.name.casefold() == ref.strip().casefold()]
        if len(named) > 1:
            raise AmbiguousName(f"{len(named)} tenants are named {ref!r}; use an id: {', '.join(t.id for t in named)}")
        if not named:
            raise NotFound(f"no tenant with the id or name {ref!r}")
        return named[0]

    def update(self, tenant_id: str, /, **fields: Any) -> Tenant:
        """Change limits or settings."""
        self.get(tenant_id)
        changes = to_changes(fields, self.catalog)
        if "name" in changes:
            self._check_name_free(changes["name"], tenant_id)
        tenant = self.store.update_tenant(tenant_id, changes)
        self._audit(tenant_id, "admin.tenant_updated", {"fields": sorted(fields)})
        return tenant

    def disable(self, tenant_id: str) -> Tenant:
        """Disable the tenant: its keys stop working (403)."""
        return self.update(tenant_id, disabled=True)

    def enable(self, tenant_id: str) -> Tenant:
        """Enable a disabled tenant again: its keys that were not revoked work again."""
        return self.update(tenant_id, disabled=False)

    def issue_key(self, tenant_id: str) -> str:
        """Another API key for the tenant."""
        self.get(tenant_id)
        key = Authenticator(self.store).issue_key(tenant_id)
        self._audit(tenant_id, "admin.key_created", {"prefix": key[:10]})
        return key

    def revoke_keys(self, tenant_id: str) -> int:
        """Revoke every key of the tenant."""
        self.get(tenant_id)
        count = self.store.revoke_api_keys(tenant_id)
        self._audit(tenant_id, "admin.keys_revoked", {"count": count})
        return count
