"""/networks handlers."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from aiohttp import web

from servin import errors
from servin.api.context import json_body, services
from servin.api.errors import json_response
from servin.api.wire import containers as wire_containers
from servin.api.wire import networks as wire
from servin.api.wire.filters import parse_filters
from servin.core.endpoints import PREDEFINED
from servin.core.events import Event
from servin.core.query import label_matches, parse_until

LIST_FILTERS = frozenset({"driver", "id", "label", "name", "scope", "type", "dangling"})


def _service(request: web.Request) -> Any:
    net = services(request).containers.networking.network
    if net is None:
        raise errors.NotImplementedYet("networking is off in this daemon (--bridge none)")
    return net


def _endpoints(request: web.Request, n: Any) -> list[tuple[Any, str]]:
    engine = services(request).containers
    out = []
    for ep in _service(request).store.endpoints(network_id=n.id):
        c = engine.store.get(ep.container_id)
        out.append((ep, c.name if c else ""))
    return out


async def list_(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"), LIST_FILTERS)
    nets = await asyncio.to_thread(_service(request).networks)
    if "name" in filters:
        nets = [n for n in nets if any(v in n.name for v in filters["name"])]
    if "id" in filters:
        nets = [n for n in nets if any(n.id.startswith(v) for v in filters["id"])]
    if "driver" in filters:
        nets = [n for n in nets if n.driver in filters["driver"]]
    if "label" in filters:
        nets = [n for n in nets if label_matches(dict(n.labels), filters["label"])]
    if "type" in filters:
        want = set(filters["type"])
        nets = [n for n in nets if ("builtin" if n.name in PREDEFINED else "custom") in want]
    if "dangling" in filters:
        dangling = filters["dangling"][0].lower() in ("1", "true")
        nets = [n for n in nets if n.name not in PREDEFINED
                and (not _service(request).store.endpoints(network_id=n.id)) == dangling]
    return json_response([wire.network(n) for n in nets])


async def inspect(request: web.Request) -> web.Response:
    n = await asyncio.to_thread(_service(request).find, request.match_info["id"])
    return json_response(wire.network(n, _endpoints(request, n)))


async def create(request: web.Request) -> web.Response:
    req = wire.parse_create(await json_body(request))
    n = await asyncio.to_thread(_service(request).create_network, req.pop("name"), **req)
    services(request).events.publish(Event(type="network", action="create", actor_id=n.id,
                                           attributes={"name": n.name, "type": n.driver}))
    return json_response({"Id": n.id, "Warning": ""}, status=201)


async def remove(request: web.Request) -> web.Response:
    svc = _service(request)
    n = await asyncio.to_thread(svc.find, request.match_info["id"])
    try:
        await asyncio.to_thread(svc.remove_network, n.id)
    except errors.InvalidArgument as exc:  # pre-defined networks: dockerd answers 403
        raise errors.Forbidden(exc.message) from None
    except errors.Conflict as exc:
        raise errors.Forbidden(exc.message) from None
    services(request).events.publish(Event(type="network", action="destroy", actor_id=n.id,
                                           attributes={"name": n.name, "type": n.driver}))
    return web.Response(status=204)


async def connect(request: web.Request) -> web.Response:
    container, endpoint_config = wire.parse_connect(await json_body(request))
    n = await asyncio.to_thread(_service(request).find, request.match_info["id"])
    ep = wire_containers.parse_endpoint_config(n.name, endpoint_config)
    await services(request).containers.networking.connect(container, ep)
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    container, _force = wire.parse_disconnect(await json_body(request))
    n = await asyncio.to_thread(_service(request).find, request.match_info["id"])
    await services(request).containers.networking.disconnect(container, n.name)
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"), frozenset({"label", "label!", "until"}))
    svc = _service(request)
    until_ns = parse_until(filters["until"][0]) if filters.get("until") else None
    deleted = []
    for n in await asyncio.to_thread(svc.networks):
        if n.name in PREDEFINED or svc.store.endpoints(network_id=n.id):
            continue
        if "label" in filters and not label_matches(dict(n.labels), filters["label"]):
            continue
        if "label!" in filters and label_matches(dict(n.labels), filters["label!"]):
            continue
        if until_ns is not None and _created_ns(n.created) >= until_ns:
            continue
        await asyncio.to_thread(svc.remove_network, n.id)
        services(request).events.publish(Event(type="network", action="destroy", actor_id=n.id,
                                               attributes={"name": n.name, "type": n.driver}))
        deleted.append(n.name)
    return json_response({"NetworksDeleted": deleted})


def add_routes(add: Any) -> None:
    add("GET", "/networks", list_)
    add("POST", "/networks/create", create)
    add("POST", "/networks/prune", prune)
    add("GET", "/networks/{id}", inspect)
    add("DELETE", "/networks/{id}", remove)
    add("POST", "/networks/{id}/connect", connect)
    add("POST", "/networks/{id}/disconnect", disconnect)


def _created_ns(created: str) -> int:
    try:
        return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        return 0
