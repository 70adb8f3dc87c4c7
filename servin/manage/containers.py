"""/api/v1/containers: the list (Docker's filter vocabulary as `filter=key=value`), details with resource
use, start, stop and restart, and logs (NDJSON envelopes with follow=true), over core's services."""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from servin import errors
from servin.core.logs import LogLine, LogQuery
from servin.core.model import Container, Status
from servin.core.views import ContainerListing
from servin.manage import envelope
from servin.manage.engine import Engine, engine

DEFAULT_TAIL = 100
CPU_SAMPLE_SECONDS = 0.1  # the window of a detail's cpu_percent (two cgroup readings)
NEVER = "0001-01-01T00:00:00Z"  # Docker's zero time: never started
FILTERS = ("ancestor", "exited", "health", "id", "label", "name", "status")  # what core/query.select reads


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/containers", list_containers)
    app.router.add_get("/api/v1/containers/{id}", detail)
    app.router.add_post("/api/v1/containers/{id}/start", start)
    app.router.add_post("/api/v1/containers/{id}/stop", stop)
    app.router.add_post("/api/v1/containers/{id}/restart", restart)
    app.router.add_get("/api/v1/containers/{id}/logs", logs)


def status_of(c: Container) -> str:
    """Docker's status, but `stopped` for exited and dead ones, as the reference's answers say."""
    return "stopped" if c.state.status in (Status.EXITED, Status.DEAD) else c.state.status.value


def summary(listing: ContainerListing) -> dict[str, Any]:
    c = listing.container
    return {"id": c.id, "name": c.name, "image": c.config.image, "status": status_of(c), "created": c.created,
            "ports": list({(p.container_port, p.host_port, p.proto): {  # one per port: IPv4's and IPv6's share it
                "internal": p.container_port, "external": p.host_port, "protocol": p.proto}
                for _net, ep in listing.networks if ep is not None for p in ep.ports}.values())}


def filters_of(request: web.Request) -> dict[str, list[str]]:
    """`filter=key=value`, repeated: Docker's filters of `docker ps` that the engine applies (FILTERS)."""
    filters: dict[str, list[str]] = {}
    for text in request.query.getall("filter", []):
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise errors.InvalidParameter(f"filter must be key=value, not {text!r}")
        if name.strip() not in FILTERS:
            raise errors.InvalidParameter(f"invalid filter {name.strip()!r}: one of {', '.join(FILTERS)}")
        if name.strip() == "name":
            _regex(value)
        filters.setdefault(name.strip(), []).append(value)
    return filters


def _regex(text: str) -> None:
    try:
        re.compile(text)
    except re.error as exc:  # a name filter is a regular expression
        raise errors.InvalidParameter(f"invalid filter 'name={text}': {exc}") from None


async def list_containers(request: web.Request) -> web.Response:
    e = engine(request)
    all_ = envelope.flag(request, "all")
    filters = filters_of(request)
    try:
        listings = e.views.list(filters, all_=all_, limit=0)
    except errors.InvalidArgument as exc:
        raise errors.InvalidParameter(exc.message) from None
    return envelope.ok(envelope.paginate(request, [summary(item) for item in listings]))


async def detail(request: web.Request) -> web.Response:
    e = engine(request)
    d = e.views.inspect(request.match_info["id"])
    c = d.container
    listing = ContainerListing(container=c, networks=d.networks)
    return envelope.ok({
        **summary(listing),
        "started": None if c.state.started_at == NEVER else c.state.started_at,
        "networks": [{"name": net.name, "ip_address": (ep.ip or "").partition("/")[0] if ep else ""}
                     for net, ep in d.networks],
        "volumes": [{"source": m.source, "destination": m.destination, "mode": "rw" if m.rw else "ro"}
                    for m in c.mount_points],
        "environment": [{"key": k, "value": v} for k, _, v in (item.partition("=") for item in c.resolved_env)],
        "resource_usage": await resource_usage(e, c),
    })


async def resource_usage(e: Engine, c: Container) -> dict[str, Any]:
    """Two cgroup readings CPU_SAMPLE_SECONDS apart (cpu_percent of one CPU, as `docker stats`); zeros
    for a container that is not running, whose limit is then its configured one or the host's memory."""
    _c, first = e.views.stats_sample(c.id)
    limit = c.host_config.memory or e.facts.mem_total
    if first is None:
        return {"cpu_percent": 0.0, "memory_usage": 0, "memory_limit": limit, "memory_percent": 0.0,
                "network_rx": 0, "network_tx": 0, "block_read": 0, "block_write": 0}
    t0 = time.monotonic()
    await asyncio.sleep(CPU_SAMPLE_SECONDS)
    _c, second = e.views.stats_sample(c.id)
    sample = second or first
    elapsed_ns = (time.monotonic() - t0) * 1e9
    cpu = 100.0 * max(0, sample.cpu_usage_ns - first.cpu_usage_ns) / elapsed_ns if second else 0.0
    limit = min(sample.memory_limit or limit, e.facts.mem_total)
    interfaces: Mapping[str, Mapping[str, int]] = await e.views.network_stats(c.id) or {}
    io = sample.io_service_bytes
    return {"cpu_percent": round(cpu, 2), "memory_usage": sample.memory_usage, "memory_limit": limit,
            "memory_percent": round(100.0 * sample.memory_usage / limit, 2) if limit else 0.0,
            "network_rx": sum(i.get("rx_bytes", 0) for i in interfaces.values()),
            "network_tx": sum(i.get("tx_bytes", 0) for i in interfaces.values()),
            "block_read": sum(v for _maj, _min, op, v in io if op.lower() == "read"),
            "block_write": sum(v for _maj, _min, op, v in io if op.lower() == "write")}


def _answer(e: Engine, ref: str) -> web.Response:
    c = e.containers.get(ref)
    return envelope.ok({"id": c.id, "name": c.name, "status": status_of(c)})


async def start(request: web.Request) -> web.Response:
    e, ref = engine(request), request.match_info["id"]
    try:
        await e.containers.start(ref)
    except errors.NotModified:
        pass  # already running: the answer says so
    except errors.ExecFailed as exc:  # the runtime refused the process (Docker's 400): an operation that failed
        raise errors.OperationFailed(exc.message) from None
    return _answer(e, ref)


async def stop(request: web.Request) -> web.Response:
    e, ref = engine(request), request.match_info["id"]
    timeout = _timeout(request)
    try:
        await e.containers.stop(ref, timeout)
    except errors.NotModified:
        pass  # already stopped
    return _answer(e, ref)


async def restart(request: web.Request) -> web.Response:
    e, ref = engine(request), request.match_info["id"]
    try:
        await e.containers.restart(ref, _timeout(request))
    except errors.ExecFailed as exc:
        raise errors.OperationFailed(exc.message) from None
    return _answer(e, ref)


def _timeout(request: web.Request) -> int | None:
    """Seconds before SIGKILL; absent: the container's StopTimeout, else 10 (-1 waits without end)."""
    return envelope.integer(request, "timeout", -2, minimum=-1) if "timeout" in request.query else None


def log_query(request: web.Request) -> LogQuery:
    tail_text = request.query.get("tail")
    tail = None if tail_text == "all" else envelope.integer(request, "tail", DEFAULT_TAIL)
    return LogQuery(stdout=envelope.flag(request, "stdout", True), stderr=envelope.flag(request, "stderr", True),
                    since_ns=_time_ns(request, "since"), until_ns=_time_ns(request, "until"), tail=tail,
                    follow=envelope.flag(request, "follow"))


def _time_ns(request: web.Request, name: str) -> int:
    """Unix seconds (fractions allowed) or RFC 3339; 0 when absent."""
    text = request.query.get(name)
    if not text:
        return 0
    try:
        return int(float(text) * 1e9)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidParameter(f"{name} must be unix seconds or an RFC 3339 time, not {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return int(when.timestamp() * 1e9)


def log_entry(line: LogLine) -> dict[str, str]:
    message = line.data.decode("utf-8", "replace")
    return {"timestamp": line.time, "stream": line.stream, "message": message.removesuffix("\n")}


async def logs(request: web.Request) -> web.StreamResponse:
    query = log_query(request)
    if query.stdout is False and query.stderr is False:
        raise errors.InvalidParameter("stdout and stderr are both false: nothing to show")
    _c, batches = engine(request).views.logs(request.match_info["id"], query)
    if not query.follow:
        entries = [log_entry(line) async for batch in batches for line in batch]
        return envelope.ok({"logs": entries})
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    async for batch in batches:
        if batch:
            line = {"success": True, "data": {"logs": [log_entry(b) for b in batch]}, "error": None}
            await resp.write(json.dumps(line).encode() + b"\n")
    await resp.write_eof()
    return resp
