"""Settings from the environment, validated once at start-up.

A plain dataclass rather than pydantic-settings: it is read on every cold start and this
keeps that path to the standard library. Every bad value is a :class:`ConfigurationError`
whose message names the variable and what would be valid.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlparse

from shared.errors import ConfigurationError

PROVIDERS = ("anthropic", "bedrock", "vertex", "offline", "simulated")
SECRET_BACKENDS = ("env", "gcp", "aws")
TEAM_AUTH = ("none", "google-id-token")  # platform identity on gateway -> team hops (shared/hops)
N = TypeVar("N", int, float)


def _parsed(env: dict[str, str], name: str, parse: Callable[[str], N], kind: str, check: Callable[[N], bool],
            rule: str) -> N | None:
    """``env[name]`` parsed (None when unset or empty); one line naming the variable otherwise."""
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} must be {kind}") from None
    if not check(value):
        raise ConfigurationError(f"{name}={raw!r} must be {rule}")
    return value


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    value = _parsed(env, name, int, "an integer", lambda v: v >= minimum, f"at least {minimum}")
    return default if value is None else value


def _float(env: dict[str, str], name: str, default: float) -> float:
    value = _parsed(env, name, float, "a number", lambda v: math.isfinite(v) and v > 0, "a positive finite number")
    return default if value is None else value


def _usd(env: dict[str, str], name: str, default: float) -> float:
    """A default tenant cap: the same rule as every money input (shared/limits.py)."""
    from shared import limits
    from shared.errors import ValidationFailed
    from shared.pricing import usd

    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return usd(limits.usd_micros(limits.number_from_text(raw, [name]), [name]))
    except ValidationFailed as exc:
        raise ConfigurationError(f"{name}={raw!r}: {exc.extra['errors'][0]['msg']}") from None


def _rate(env: dict[str, str], name: str, default: int) -> int:
    """A default tenant rate limit: the same rule as every limit input (shared/limits.py)."""
    from shared import limits
    from shared.errors import ValidationFailed

    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return limits.rate(limits.number_from_text(raw, [name], whole=True), [name])
    except ValidationFailed as exc:
        raise ConfigurationError(f"{name}={raw!r}: {exc.extra['errors'][0]['msg']}") from None


def _trusted_proxies(env: dict[str, str]) -> tuple[str, ...] | None:
    raw = env.get("MULTIAGENT_TRUSTED_PROXIES")
    if raw is None or raw.strip() == "":
        return None
    from shared.http_limits import parse_trusted_proxies

    return parse_trusted_proxies(raw, "MULTIAGENT_TRUSTED_PROXIES")


@dataclass(frozen=True)
class Settings:
    """Everything a function needs to know about its deployment."""

    store_url: str = "sqlite:///./data/multiagent.db"
    model_provider: str = "offline"
    model_override: str | None = None
    secrets_backend: str = "env"
    admin_key: str | None = None
    team: str | None = None
    team_urls: dict[str, str] = field(default_factory=dict)
    team_auth: str = "none"
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 256 * 1024
    # A request path over this is answered 414 before routing (shared/observability/access.py).
    max_path_bytes: int = 8 * 1024
    # The request head, refused before the app runs (shared/http_limits.py): its total size
    # (request line + headers), one header line's size, the number of headers; and the
    # requests one process serves at once (503 past it).
    max_header_bytes: int = 32 * 1024
    max_header_field_bytes: int = 8 * 1024
    max_headers: int = 100
    max_concurrency: int = 256
    # Peers whose X-Forwarded-For/-Proto are believed (IPs or CIDRs, "*" for any); None: the
    # entry point's default (none for `serve`; the platform's front end in the container).
    trusted_proxies: tuple[str, ...] | None = None
    operation_deadline_s: float = 120.0
    reservation_margin_s: float = 60.0
    # One model request's timeout; a request past it may still be billed, so it is charged
    # unsettled and retried by the budget guard under a new reservation.
    model_timeout_s: float = 60.0
    max_turns: int = 8
    max_output_retries: int = 2
    default_daily_usd: float = 10.0
    default_monthly_usd: float = 100.0
    default_rpm: int = 60
    default_tpm: int = 200_000
    budgets_enabled: bool = True
    log_level: str = "INFO"
    planner_model: str = "claude-sonnet-4-5"  # orchestrated runs: planner and synthesis turns
    run_deadline_s: float = 600.0  # default deadline of an orchestrated run
    run_lease_s: float = 30.0  # how long a run's owner holds it without renewing
    session_token_budget: int = 8_000  # conversation memory kept per session
    run_continuation: str = "local"  # local | cloudtasks:QUEUE@SERVICE_URL | lambda:FUNCTION (long runs)
    version: str = "0.1.0"

    @property
    def distributed(self) -> bool:
        """True when teams run in functions of their own (a gateway with team URLs, or a team
        function): team-to-team hops then cross processes and need the signing key."""
        return bool(self.team_urls or self.team)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read and validate ``MULTIAGENT_*`` variables (see the contract)."""
        env = dict(os.environ if environ is None else environ)
        provider = env.get("MULTIAGENT_MODEL_PROVIDER") or ("anthropic" if env.get("ANTHROPIC_API_KEY") else "offline")
        if provider not in PROVIDERS:
            raise ConfigurationError(f"MULTIAGENT_MODEL_PROVIDER={provider!r} must be one of {', '.join(PROVIDERS)}")
        secrets_backend = env.get("MULTIAGENT_SECRETS") or "env"
        if secrets_backend not in SECRET_BACKENDS:
            raise ConfigurationError(
                f"MULTIAGENT_SECRETS={secrets_backend!r} must be one of {', '.join(SECRET_BACKENDS)}")
        base_url = env.get("ANTHROPIC_BASE_URL")
        if base_url and not urlparse(base_url).scheme.startswith("http"):
            raise ConfigurationError(f"ANTHROPIC_BASE_URL={base_url!r} must be an http(s) URL")
        team_urls: dict[str, str] = {}
        if env.get("MULTIAGENT_TEAM_URLS"):
            try:
                team_urls = json.loads(env["MULTIAGENT_TEAM_URLS"])
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"MULTIAGENT_TEAM_URLS is not a JSON object of team -> URL: {exc}") from None
            if not isinstance(team_urls, dict) or not all(
                isinstance(v, str) and v.startswith(("http", "lambda://")) for v in team_urls.values()
            ):
                raise ConfigurationError(
                    "MULTIAGENT_TEAM_URLS must be a JSON object of team -> http(s) base URL or lambda://FUNCTION"
                )
        team_auth = env.get("MULTIAGENT_TEAM_AUTH") or "none"
        if team_auth not in TEAM_AUTH:
            raise ConfigurationError(f"MULTIAGENT_TEAM_AUTH={team_auth!r} must be one of {', '.join(TEAM_AUTH)}")
        origins = tuple(o.strip() for o in env.get("MULTIAGENT_ALLOWED_ORIGINS", "").split(",") if o.strip())
        return cls(
            store_url=env.get("MULTIAGENT_STORE") or cls.store_url,
            model_provider=provider,
            model_override=env.get("MULTIAGENT_MODEL") or None,
            secrets_backend=secrets_backend,
            admin_key=env.get("MULTIAGENT_ADMIN_KEY") or None,
            team=env.get("MULTIAGENT_TEAM") or None,
            team_urls=team_urls,
            team_auth=team_auth,
            allowed_origins=origins,
            max_body_bytes=_int(env, "MULTIAGENT_MAX_BODY_BYTES", cls.max_body_bytes, 1),
            max_path_bytes=_int(env, "MULTIAGENT_MAX_PATH_BYTES", cls.max_path_bytes, 1),
            max_header_bytes=_int(env, "MULTIAGENT_MAX_HEADER_BYTES", cls.max_header_bytes, 1024),
            max_header_field_bytes=_int(env, "MULTIAGENT_MAX_HEADER_FIELD_BYTES", cls.max_header_field_bytes, 256),
            max_headers=_int(env, "MULTIAGENT_MAX_HEADERS", cls.max_headers, 8),
            max_concurrency=_int(env, "MULTIAGENT_MAX_CONCURRENCY", cls.max_concurrency, 1),
            trusted_proxies=_trusted_proxies(env),
            operation_deadline_s=_float(env, "MULTIAGENT_DEADLINE_S", cls.operation_deadline_s),
            reservation_margin_s=_float(env, "MULTIAGENT_RESERVATION_MARGIN_S", cls.reservation_margin_s),
            model_timeout_s=_float(env, "MULTIAGENT_MODEL_TIMEOUT_S", cls.model_timeout_s),
            max_turns=_int(env, "MULTIAGENT_MAX_TURNS", cls.max_turns, 1),
            default_daily_usd=_usd(env, "MULTIAGENT_DEFAULT_DAILY_USD", cls.default_daily_usd),
            default_monthly_usd=_usd(env, "MULTIAGENT_DEFAULT_MONTHLY_USD", cls.default_monthly_usd),
            default_rpm=_rate(env, "MULTIAGENT_DEFAULT_RPM", cls.default_rpm),
            default_tpm=_rate(env, "MULTIAGENT_DEFAULT_TPM", cls.default_tpm),
            budgets_enabled=env.get("MULTIAGENT_BUDGETS", "on") != "off",
            log_level=(env.get("MULTIAGENT_LOG_LEVEL") or "INFO").upper(),
            planner_model=env.get("MULTIAGENT_PLANNER_MODEL") or cls.planner_model,
            run_deadline_s=_float(env, "MULTIAGENT_RUN_DEADLINE_S", cls.run_deadline_s),
            run_lease_s=_float(env, "MULTIAGENT_RUN_LEASE_S", cls.run_lease_s),
            session_token_budget=_int(env, "MULTIAGENT_SESSION_TOKENS", cls.session_token_budget, 100),
            run_continuation=env.get("MULTIAGENT_RUN_CONTINUATION") or cls.run_continuation,
        )
