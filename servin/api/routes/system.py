"""/_ping, /version, /info, /events."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from servin import errors
from servin.api import streams
from servin.api.errors import json_response
from servin.api.context import services
from servin.api.wire import containers as wire_containers
from servin.api.wire import images as wire_images
from servin.api.wire import system as wire
from servin.api.wire import volumes as wire_volumes
from servin.api.wire.filters import parse_filters
from servin.core.volumes import tree_size

EVENT_FILTERS = frozenset({"container", "daemon", "event", "image", "label", "network", "node",
                           "plugin", "scope", "secret", "service", "type", "volume", "config"})


async def ping(request: web.Request) -> web.Response:
    headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
               "Builder-Version": "1", "Swarm": "inactive"}
    if request.method == "HEAD":
        return web.Response(status=200, headers={**headers, "Content-Length": "0",
                                                 "Content-Type": "text/plain; charset=utf-8"})
    return web.Response(text="OK", headers=headers)


async def version(request: web.Request) -> web.Response:
    return json_response(wire.version(services(request).info))


async def info(request: web.Request) -> web.Response:
    s = services(request)
    counts = s.containers.counts()
    n_images = len(await asyncio.to_thread(s.images.list))
    return json_response(wire.info(s.info, counts, n_images))


def _time_arg(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for {name}: {value}") from None


async def events(request: web.Request) -> web.StreamResponse:
    bus = services(request).events
    filters = parse_filters(request.query.get("filters"), EVENT_FILTERS)
    since = _time_arg(request.query.get("since"), "since")
    until = _time_arg(request.query.get("until"), "until")
    queue = bus.subscribe()
    try:
        resp = await streams.open_stream(request, "application/json")
        if since is not None:
            for ev in bus.history():
                if ev.time_nano >= since * 1e9 and (until is None or ev.time_nano <= until * 1e9):
                    if wire.event_matches(ev, filters):
                        await resp.write(json.dumps(wire.event(ev)).encode() + b"\n")
        while True:
            timeout = None if until is None else until - time.time()
            if timeout is not None and timeout <= 0:
                break
            try:
                ev = await asyncio.wait_for(queue.get(), timeout)
            except asyncio.TimeoutError:
                break
            if wire.event_matches(ev, filters):
                await resp.write(json.dumps(wire.event(ev)).encode() + b"\n")
        await resp.write_eof()
        return resp
    finally:
        bus.unsubscribe(queue)


async def disk_usage(request: web.Request) -> web.Response:
    """`docker system df`: images, containers (their writable layer), volumes."""
    s = services(request)
    engine = s.containers
    containers = engine.list()
    images = await asyncio.to_thread(s.images.list)
    users: dict[str, int] = {}
    for c in containers:
        users[c.image_id] = users.get(c.image_id, 0) + 1
    image_size = {i.id: i.size for i in images}
    layer_sizes: dict[str, int] = {}
    for img in images:
        per_layer = img.size // max(len(img.diff_ids), 1)
        for diff_id in img.diff_ids:
            layer_sizes.setdefault(diff_id, per_layer)
    now = time.time_ns()
    c_rows = []
    for c in containers:
        size_rw = await asyncio.to_thread(tree_size, engine.store.dir(c.id) / "upper")
        row = wire_containers.summary(c, now)
        row.update({"SizeRw": size_rw, "SizeRootFs": size_rw + image_size.get(c.image_id, 0)})
        c_rows.append(row)
    vols = []
    for v in engine.volumes.list() if engine.volumes is not None else []:
        size = await asyncio.to_thread(engine.volumes.size, v.name)
        vols.append(wire_volumes.volume(v, size=size, ref_count=len(engine.volume_users(v.name))))
    return json_response({
        "LayersSize": sum(layer_sizes.values()),
        "Images": [{**wire_images.image_summary(i, containers=users.get(i.id, 0)), "SharedSize": 0}
                   for i in images],
        "Containers": c_rows,
        "Volumes": vols,
        "BuildCache": [],
    })


async def not_swarm(request: web.Request) -> web.Response:
    raise errors.Unavailable(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to "
        "connect this node to swarm and try again.")


async def swarm_leave(request: web.Request) -> web.Response:
    raise errors.Unavailable("This node is not part of a swarm")


async def swarm_init(request: web.Request) -> web.Response:
    raise errors.NotImplementedYet("swarm mode is not supported by Servin")


async def build_not_yet(request: web.Request) -> web.Response:
    raise errors.NotImplementedYet("building images is not implemented in Servin yet")


async def plugins(request: web.Request) -> web.Response:
    """Servin has no plugin system: no plugins are installed (docker plugin ls shows an empty list)."""
    return json_response([])


async def build_cache_prune(request: web.Request) -> web.Response:
    """No builder, so no build cache: pruning it reclaims nothing (docker system prune calls it)."""
    return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})


def add_routes(add: Any) -> None:
    add("GET", "/_ping", ping)
    add("HEAD", "/_ping", ping)
    add("GET", "/version", version)
    add("GET", "/info", info)
    add("GET", "/events", events)
    add("GET", "/swarm", not_swarm)
    for path in ("/build", "/session"):  # the builder is a later piece of work
        add("POST", path, build_not_yet)
    add("POST", "/build/prune", build_cache_prune)
    add("GET", "/plugins", plugins)
    add("POST", "/swarm/leave", swarm_leave)
    add("POST", "/swarm/init", swarm_init)
    add("POST", "/swarm/join", swarm_init)
    for kind in ("services", "nodes", "tasks", "secrets", "configs"):  # the swarm-only lists
        add("GET", f"/{kind}", not_swarm)
    add("GET", "/system/df", disk_usage)
