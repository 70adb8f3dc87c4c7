"""/api/v1/containers/{id}/stats: one reading of a container's cgroup in the reference's shape (the readings
Docker's /containers/{id}/stats renders), or with stream=true one NDJSON envelope a second until the client
leaves. A container that is not running reads as zeros, as `docker stats` shows it."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from servin import errors
from servin.core.model import Container
from servin.core.views import ResourceStats
from servin.manage import envelope
from servin.manage.engine import Engine, engine

STREAM_INTERVAL = 1.0  # seconds between two envelopes of a stream, as `docker stats`
NETWORK_COUNTERS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
                    "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/containers/{id}/stats", stats)


async def stats(request: web.Request) -> web.StreamResponse:
    e = engine(request)
    stream = envelope.flag(request, "stream")
    ref = request.match_info["id"]
    first = await reading(e, ref)  # an unknown container is a 404 before anything streams
    if not stream:
        return envelope.ok(first)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    data: dict[str, Any] | None = first
    try:
        while data is not None:
            await resp.write(json.dumps({"success": True, "data": data, "error": None}).encode() + b"\n")
            await asyncio.sleep(STREAM_INTERVAL)
            try:
                data = await reading(e, first["id"])
            except errors.NotFound:  # removed meanwhile: the stream ends
                data = None
        await resp.write_eof()
    except (ConnectionResetError, BrokenPipeError):
        pass  # the client left
    return resp


async def reading(e: Engine, ref: str) -> dict[str, Any]:
    c, sample = e.views.stats_sample(ref)
    interfaces = await e.views.network_stats(c.id) if sample is not None else None
    return render(c, sample, system_ns=e.host_cpu_ns() if sample is not None else 0, ncpu=e.facts.ncpu,
                  mem_total=e.facts.mem_total, interfaces=interfaces or {})


def render(c: Container, sample: ResourceStats | None, *, system_ns: int, ncpu: int, mem_total: int,
           interfaces: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """The reference's stats of one reading (None: the container is not running, every number 0)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    head = {"id": c.id, "name": c.name, "timestamp": now}
    if sample is None:
        return {**head, "cpu_stats": _cpu(None, 0, 0), "memory_stats": {"usage": 0, "max_usage": 0, "limit": 0,
                                                                         "stats": {}},
                "network_stats": dict.fromkeys(NETWORK_COUNTERS, 0),
                "io_stats": {"read": {"ops": 0, "bytes": 0}, "write": {"ops": 0, "bytes": 0}}}
    return {
        **head,
        "cpu_stats": _cpu(sample, system_ns, ncpu),
        "memory_stats": {"usage": sample.memory_usage, "max_usage": sample.memory_max_usage,
                         "limit": sample.memory_limit or mem_total, "stats": dict(sample.memory_detail)},
        "network_stats": {k: sum(i.get(k, 0) for i in interfaces.values()) for k in NETWORK_COUNTERS},
        "io_stats": {op: {"ops": _io_sum(sample.io_serviced, op), "bytes": _io_sum(sample.io_service_bytes, op)}
                     for op in ("read", "write")},
    }


def _cpu(sample: ResourceStats | None, system_ns: int, ncpu: int) -> dict[str, Any]:
    t = sample.throttling if sample is not None else {}
    return {"cpu_usage": {"total_usage": sample.cpu_usage_ns if sample else 0,
                          "percpu_usage": list(sample.percpu_ns) if sample else [],
                          "usage_in_kernelmode": sample.cpu_system_ns if sample else 0,
                          "usage_in_usermode": sample.cpu_user_ns if sample else 0},
            "system_cpu_usage": system_ns, "online_cpus": ncpu,
            "throttling_data": {"periods": t.get("nr_periods", 0), "throttled_periods": t.get("nr_throttled", 0),
                                "throttled_time": t.get("throttled_time", 0)}}


def _io_sum(entries: Sequence[tuple[int, int, str, int]], op: str) -> int:
    """Over every device: v1 names ops Read/Write (beside Sync, Async, Total), v2 read/write."""
    return sum(value for _major, _minor, name, value in entries if name.lower() == op)
