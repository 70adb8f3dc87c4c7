"""The management API under /api/v1: its envelope, key and token management, the system, container,
container stats, image and troubleshooting endpoints."""

from __future__ import annotations

from aiohttp import web

from servin.manage import containers, images, stats, system, troubleshoot
from servin.manage.engine import ENGINE, Engine


def add_routes(app: web.Application, engine: Engine) -> None:
    """The engine-facing endpoints (credentials.add_routes adds keys and tokens)."""
    app[ENGINE] = engine
    system.add_routes(app)
    containers.add_routes(app)
    stats.add_routes(app)
    images.add_routes(app)
    troubleshoot.add_routes(app)
