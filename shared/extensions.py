"""Registers the optional route groups (admin API, metrics, dashboard, runs) on the app.

Kept apart from ``shared.app`` so each group stays in its own module and the app factory
does not grow with every feature.
"""

from __future__ import annotations

from shared.admin import admin_routes
from shared.app import EXTENSIONS, MIDDLEWARE_EXTENSIONS, OPERATION_HOOKS
from shared.hops import install as install_hops  # platform identity / transport of gateway -> team hops
from shared.observability.http import observability_middleware, observability_routes, on_operation
from shared.runs_api import run_routes  # orchestrated runs (/v1/runs) and sessions (/v1/sessions)

if admin_routes not in EXTENSIONS:
    EXTENSIONS.append(admin_routes)
if install_hops not in EXTENSIONS:
    EXTENSIONS.append(install_hops)
# health is in the core app; metrics, stats, dashboard, audit batching and traces here
if observability_routes not in EXTENSIONS:
    EXTENSIONS.append(observability_routes)
if observability_middleware not in MIDDLEWARE_EXTENSIONS:
    MIDDLEWARE_EXTENSIONS.append(observability_middleware)
if on_operation not in OPERATION_HOOKS:
    OPERATION_HOOKS.append(on_operation)
if run_routes not in EXTENSIONS:
    EXTENSIONS.append(run_routes)
