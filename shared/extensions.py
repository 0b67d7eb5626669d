"""Registers the optional route groups (admin API, metrics, dashboard, runs) on the app.

Kept apart from ``shared.app`` so each group stays in its own module and the app factory
does not grow with every feature.
"""

from __future__ import annotations

from shared.admin import admin_routes
from shared.app import EXTENSIONS
from shared.hops import install as install_hops  # platform identity / transport of gateway -> team hops

if admin_routes not in EXTENSIONS:
    EXTENSIONS.append(admin_routes)
if install_hops not in EXTENSIONS:
    EXTENSIONS.append(install_hops)
