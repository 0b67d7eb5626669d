"""What one function instance holds: settings, the store, the authenticator, the catalog,
the model provider, the way to other teams' functions (:class:`~shared.remote.RemoteTeams`)
and the operation service. Nothing else is kept between requests.

The model provider is built off the request path: ``warm_up()`` starts it in a worker
thread as soon as the server listens (the ``anthropic`` import alone takes ~0.9 s), and
the first operation awaits it if it is not ready yet. ``/health`` never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from functools import cached_property
from typing import TYPE_CHECKING

from shared.auth import Authenticator
from shared.config import Settings
from shared.errors import ConfigurationError, Unavailable
from shared.models import ModelProvider, open_provider
from shared.pricing import price_for
from shared.secrets import ADMIN_KEY, ANTHROPIC_API_KEY, CachedSecrets, SecretUnavailable, open_secrets
from shared.store import Store, open_store

if TYPE_CHECKING:
    from shared.catalog import Catalog
    from shared.operations import OperationService
    from shared.remote import RemoteTeams

log = logging.getLogger("multiagent.runtime")


class Runtime:
    """Per-instance state, built once (see the module docstring)."""

    def __init__(self, settings: Settings | None = None, store: Store | None = None, *,
                 serve_mode: bool = False) -> None:
        self.settings = settings or Settings.from_env()
        self.serve_mode = serve_mode  # `multiagent serve`: Prometheus metrics instead of metric log lines
        self.instance_id = f"inst_{uuid.uuid4().hex[:12]}"  # owner of the runs this instance executes
        self.store = store or open_store(self.settings.store_url)
        self.auth = Authenticator(self.store)
        self.secrets: CachedSecrets = open_secrets(self.settings.secrets_backend)
        self._provider: ModelProvider | None = None
        self._provider_error: BaseException | None = None
        self._provider_lock = threading.Lock()
        self._provider_thread: threading.Thread | None = None

    @cached_property
    def remote(self) -> RemoteTeams:
        """Where teams served by other functions are, and how to reach them."""
        from shared.remote import RemoteTeams

        return RemoteTeams(self.settings, self.secrets)

    @cached_property
    def operations(self) -> OperationService:
        """Runs and records team operations (HTTP, ``consult_team`` and run steps alike)."""
        from shared.operations import OperationService

        return OperationService(self)

    def admin_key(self) -> str | None:
        """The operator key: ``MULTIAGENT_ADMIN_KEY``, else the ``admin-key`` secret (how a
        cloud deployment sets it: ``scripts/set-secret.sh admin-key``). None: admin API off.
        An unreachable secret store is a 503, never an open admin API."""
        if self.settings.admin_key:
            return self.settings.admin_key
        try:
            return self.secrets.get(ADMIN_KEY)
        except SecretUnavailable as exc:
            from shared.errors import Unavailable

            raise Unavailable(f"the secret store is unreachable, so the admin key cannot be checked: {exc}") from exc

    @property
    def catalog(self) -> Catalog:
        """The teams this function serves, loaded on first use (pydantic is not needed to
        answer ``/health``, so a cold start does not pay for it)."""
        from shared.catalog import load_catalog

        return load_catalog(self.settings.team)

    def check(self) -> None:
        """Validate everything that can be checked without a network call: the catalog
        loads and every model it can use has a price. ``multiagent serve`` calls it before
        listening; a function runs it in the warm-up, and ``/health`` reports its failure."""
        catalog = self.catalog  # a bad MULTIAGENT_TEAM or team module fails here, offline or not
        if self.settings.model_provider != "offline":
            self._check_prices(catalog)

    def _check_prices(self, catalog: Catalog) -> None:
        models = {self.settings.model_override} if self.settings.model_override else {t.model for t in catalog}
        models |= {t.on_low_budget_model for t in catalog if t.on_low_budget_model}
        for model in models:
            price_for(model)  # raises ConfigurationError: never a silent $0

    def model_for(self, team_model: str) -> str:
        """The model a team call uses (``MULTIAGENT_MODEL`` overrides every team)."""
        return self.settings.model_override or team_model

    def _build_provider(self) -> None:
        with self._provider_lock:
            if self._provider is not None or self._provider_error is not None:
                return
            try:
                self.check()
                name = self.settings.model_provider
                key = None
                if name == "anthropic":
                    key = self.secrets.get(ANTHROPIC_API_KEY)
                    if not key:
                        raise ConfigurationError(
                            "MULTIAGENT_MODEL_PROVIDER=anthropic needs the secret anthropic-api-key "
                            "(ANTHROPIC_API_KEY with MULTIAGENT_SECRETS=env)"
                        )
                self._provider = open_provider(name, api_key=key)
                from shared import heap

                heap.settle()  # the SDK and the catalog are loaded: out of the collector's sight from now on
            except SecretUnavailable as exc:
                log.error("secret store unreachable while building the model provider: %s", exc)
            except BaseException as exc:  # kept and re-raised on the request path
                self._provider_error = exc

    def warm_up(self) -> None:
        """Start building the model provider in the background (idempotent)."""
        if self._provider_thread is None:
            self._provider_thread = threading.Thread(target=self._build_provider, name="provider-warmup", daemon=True)
            self._provider_thread.start()

    @property
    def provider_ready(self) -> bool:
        """True once the provider is built."""
        return self._provider is not None

    async def provider(self) -> ModelProvider:
        """The model provider, waiting for the warm-up if it is still running."""
        if self._provider is None:
            await asyncio.to_thread(self._build_provider)
        if self._provider_error is not None:
            raise self._provider_error
        if self._provider is None:
            raise Unavailable("the secret store is unreachable; the model provider cannot be configured")
        return self._provider

    async def close_provider(self) -> None:
        """Close the model provider's connections, if it was built (an app embedded in a
        longer-lived program, e.g. a test or a benchmark, closes it before its loop ends)."""
        if self._provider is not None:
            await self._provider.aclose()

    def close(self) -> None:
        """Release the store connection."""
        self.store.close()
