"""/api/v1/monitoring/troubleshoot/connection: what stands between a client and this daemon (its listeners,
the data root's free space, cgroup and overlay support, the supervisor binaries), each issue with Servin's
own advice; the facts are the daemon's, handed over in the Engine (manage/findings.py)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from servin.manage import envelope
from servin.manage.engine import engine
from servin.manage.findings import report


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/monitoring/troubleshoot/connection", connection)


async def connection(request: web.Request) -> web.Response:
    findings = await asyncio.to_thread(engine(request).connection)
    return envelope.ok(report(findings))
