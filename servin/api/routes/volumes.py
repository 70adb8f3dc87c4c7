"""/volumes handlers."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from servin.api.context import flag, json_body, services
from servin.api.errors import json_response
from servin.api.wire import volumes as wire
from servin.api.wire.filters import parse_filters
from servin.core.containers import now_rfc3339
from servin.core.events import Event
from servin.core.query import label_matches

LIST_FILTERS = frozenset({"dangling", "driver", "label", "name"})
PRUNE_FILTERS = frozenset({"label", "label!"})


def _store(request: web.Request) -> Any:
    return services(request).containers.volumes


async def create(request: web.Request) -> web.Response:
    req = wire.parse_create(await json_body(request))
    vol, created = await asyncio.to_thread(_store(request).create, req.pop("name"), **req, created=now_rfc3339())
    if created:
        services(request).events.publish(Event(type="volume", action="create", actor_id=vol.name,
                                               attributes={"driver": vol.driver}))
    return json_response(wire.volume(vol), status=201)


async def list_(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"), LIST_FILTERS)
    engine = services(request).containers
    vols = _store(request).list()
    if "name" in filters:
        vols = [v for v in vols if any(n in v.name for n in filters["name"])]
    if "driver" in filters:
        vols = [v for v in vols if v.driver in filters["driver"]]
    if "label" in filters:
        vols = [v for v in vols if label_matches(v.labels, filters["label"])]
    if "dangling" in filters:
        want = filters["dangling"][0].lower() in ("1", "true")
        vols = [v for v in vols if (not engine.volume_users(v.name)) == want]
    return json_response({"Volumes": [wire.volume(v) for v in vols], "Warnings": []})


async def inspect(request: web.Request) -> web.Response:
    return json_response(wire.volume(_store(request).get(request.match_info["name"])))


async def remove(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    s = services(request)
    users = s.containers.volume_users(name)
    await asyncio.to_thread(_store(request).remove, name, users=users, force=flag(request, "force"))
    s.events.publish(Event(type="volume", action="destroy", actor_id=name, attributes={"driver": "local"}))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    """API 1.41 prunes every unused local volume, named ones too."""
    filters = parse_filters(request.query.get("filters"), PRUNE_FILTERS)
    s = services(request)
    deleted, reclaimed = [], 0
    for v in _store(request).list():
        if s.containers.volume_users(v.name):
            continue
        if "label" in filters and not label_matches(v.labels, filters["label"]):
            continue
        if "label!" in filters and label_matches(v.labels, filters["label!"]):
            continue
        reclaimed += await asyncio.to_thread(_store(request).size, v.name)
        await asyncio.to_thread(_store(request).remove, v.name, users=[])
        s.events.publish(Event(type="volume", action="destroy", actor_id=v.name, attributes={"driver": v.driver}))
        deleted.append(v.name)
    return json_response({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})


def add_routes(add: Any) -> None:
    add("GET", "/volumes", list_)
    add("POST", "/volumes/create", create)
    add("POST", "/volumes/prune", prune)
    add("GET", "/volumes/{name}", inspect)
    add("DELETE", "/volumes/{name}", remove)
