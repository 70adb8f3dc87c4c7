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
from servin.api.wire import system as wire
from servin.api.wire.filters import parse_filters

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


async def not_swarm(request: web.Request) -> web.Response:
    raise errors.Unavailable(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to "
        "connect this node to swarm and try again.")


def add_routes(add: Any) -> None:
    add("GET", "/_ping", ping)
    add("HEAD", "/_ping", ping)
    add("GET", "/version", version)
    add("GET", "/info", info)
    add("GET", "/events", events)
    add("GET", "/swarm", not_swarm)
