"""/api/v1/system/info, /system/status and /system/stats: the daemon and its host, in the reference's
fields, read from the engine's services and /proc (real values, never placeholders)."""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from typing import Any

from aiohttp import web

from servin import __version__
from servin.core.model import Status
from servin.manage import envelope
from servin.manage.engine import Engine, data_root, engine
from servin.manage.hoststats import percent, space

log = logging.getLogger(__name__)

LOW_DISK_PERCENT = 5.0  # below this share of free space on the data root, status says so


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/system/info", info)
    app.router.add_get("/api/v1/system/status", status)
    app.router.add_get("/api/v1/system/stats", stats)


async def info(request: web.Request) -> web.Response:
    e = engine(request)
    disk = await asyncio.to_thread(space, data_root(e.facts))
    return envelope.ok({"version": __version__, "docker_version": e.docker_version, "platform": "linux",
                        "cpu_count": e.facts.ncpu, "memory_total": e.facts.mem_total, "disk_free": disk.free})


async def status(request: web.Request) -> web.Response:
    e = engine(request)
    problems: list[str] = []
    connection = "connected"
    try:
        e.views.list({}, all_=True, limit=0)
    except Exception as exc:  # the status page reports what is wrong rather than failing itself
        log.warning("system status: the container engine did not answer: %s", exc)
        connection = "disconnected"
        problems.append(f"the container engine does not answer: {exc}")
    root = data_root(e.facts)
    disk = await asyncio.to_thread(space, root)
    if percent(disk.free, disk.total) < LOW_DISK_PERCENT:
        problems.append(f"the data root {root} has {percent(disk.free, disk.total)}% free space")
    return envelope.ok({"status": "; ".join(problems) or "healthy",
                        "services": {"api": "running", "daemon": "running", "docker_connection": connection},
                        "uptime": max(0, (time.time_ns() - e.facts.start_time_ns) // 1_000_000_000)})


async def stats(request: web.Request) -> web.Response:
    e = engine(request)
    cpu = await e.host.cpu_percent()
    memory = e.host.memory()
    disk = await asyncio.to_thread(space, data_root(e.facts))
    rx, tx = e.host.network()
    return envelope.ok({
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        "cpu": {"usage_percent": cpu, "cores": e.facts.ncpu},
        "memory": {"total": memory.total, "used": memory.used, "free": memory.free,
                   "usage_percent": percent(memory.used, memory.total)},
        "disk": {"total": disk.total, "used": disk.used, "free": disk.free,
                 "usage_percent": percent(disk.used, disk.total)},
        "network": {"rx_bytes": rx, "tx_bytes": tx},
        "containers": container_counts(e),
    })


def container_counts(e: Engine) -> dict[str, Any]:
    counts = {"total": 0, "running": 0, "paused": 0, "stopped": 0}
    for listing in e.views.list({}, all_=True, limit=0):
        state = listing.container.state
        counts["total"] += 1
        if state.status == Status.PAUSED:
            counts["paused"] += 1
        elif state.running:
            counts["running"] += 1
        else:
            counts["stopped"] += 1
    return counts
