"""/_ping, /version, /info, /events, /system/df, and the swarm, plugin and build routes Servin answers as off."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from servin import errors
from servin.api import streams
from servin.api.errors import json_response
from servin.api.context import flag, services
from servin.api.wire import buildcache as wire_buildcache
from servin.api.wire import system as wire
from servin.api.wire import usage as wire_usage
from servin.api.wire import versions
from servin.api.wire.filters import parse_filters

EVENT_FILTERS = frozenset({"container", "daemon", "event", "image", "label", "network", "node",
                           "plugin", "scope", "secret", "service", "type", "volume", "config"})


async def ping(request: web.Request) -> web.Response:
    facts = services(request).system.ping()
    headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
               "Builder-Version": facts.builder_version, "Swarm": facts.swarm}
    if request.method == "HEAD":
        return web.Response(status=200, headers={**headers, "Content-Length": "0",
                                                 "Content-Type": "text/plain; charset=utf-8"})
    return web.Response(text="OK", headers=headers)


async def version(request: web.Request) -> web.Response:
    return json_response(wire.version(services(request).system.facts()))


async def info(request: web.Request) -> web.Response:
    i = await services(request).system.info()
    return json_response(wire.info(i.facts, dict(i.containers), i.images, i.registry))


def _time_arg(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for {name}: {value}") from None


JSON_SEQ = "application/json-seq"
EVENT_MEDIA_TYPES = ("application/jsonl", "application/x-ndjson", JSON_SEQ)  # what an Accept may pick


async def events(request: web.Request) -> web.StreamResponse:
    filters = parse_filters(request.query.get("filters"), EVENT_FILTERS)
    since = _time_arg(request.query.get("since"), "since")
    until = _time_arg(request.query.get("until"), "until")
    subscription = services(request).system.subscribe(filters, since=since, until=until)
    try:
        media = streams.accepted(request, EVENT_MEDIA_TYPES) or versions.value("events media type")
        separator = b"\x1e" if media == JSON_SEQ else b""  # RFC 7464 records
        resp = await streams.open_stream(request, media)
        async for ev in subscription:
            message = wire.event(ev)
            if message is not None:
                await resp.write(separator + json.dumps(message).encode() + b"\n")
        await resp.write_eof()
        return resp
    finally:
        subscription.close()


async def disk_usage(request: web.Request) -> web.Response:
    """`docker system df`: images, containers (their writable layer), volumes, the build cache."""
    parts = wire_usage.parts_of(request.query.getall("type", []))
    usage = await services(request).system.disk_usage()
    return json_response(wire_usage.disk_usage(usage, parts=parts, verbose=flag(request, "verbose")))


async def not_swarm(request: web.Request) -> web.Response:
    raise errors.Unavailable(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to "
        "connect this node to swarm and try again.")


async def swarm_leave(request: web.Request) -> web.Response:
    raise errors.Unavailable("This node is not part of a swarm")


async def swarm_init(request: web.Request) -> web.Response:
    raise errors.NotImplementedYet("swarm mode is not supported by Servin")


async def plugins(request: web.Request) -> web.Response:
    """Servin has no plugin system: no plugins are installed (docker plugin ls shows an empty list)."""
    return json_response([])


async def build_cache_prune(request: web.Request) -> web.Response:
    """`docker builder prune` (and `docker system prune`): the classic builder's cache."""
    r = await services(request).system.prune_build_cache(wire_buildcache.prune_options(request.query))
    return json_response({"CachesDeleted": list(r.deleted) or None, "SpaceReclaimed": r.reclaimed})


def add_routes(add: Any) -> None:
    add("GET", "/_ping", ping)
    add("HEAD", "/_ping", ping)
    add("GET", "/version", version)
    add("GET", "/info", info)
    add("GET", "/events", events)
    add("GET", "/swarm", not_swarm)
    add("POST", "/build/prune", build_cache_prune)
    add("GET", "/plugins", plugins)
    add("POST", "/swarm/leave", swarm_leave)
    add("POST", "/swarm/init", swarm_init)
    add("POST", "/swarm/join", swarm_init)
    for kind in ("services", "nodes", "tasks", "secrets", "configs"):  # the swarm-only lists
        add("GET", f"/{kind}", not_swarm)
    add("GET", "/system/df", disk_usage)
