"""/volumes handlers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from servin.api.backends import VolumesBackend
from servin.api.context import flag, json_body, services
from servin.api.errors import json_response
from servin.api.wire import versions
from servin.api.wire import volumes as wire
from servin.api.wire.filters import parse_filters

LIST_FILTERS = frozenset({"dangling", "driver", "label", "name"})
PRUNE_FILTERS = frozenset({"label", "label!", "all"})


def _volumes(request: web.Request) -> VolumesBackend:
    return services(request).volumes


async def create(request: web.Request) -> web.Response:
    vol = await _volumes(request).create(wire.parse_create(await json_body(request)))
    return json_response(wire.volume(vol), status=201)


async def list_(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"), LIST_FILTERS)
    vols = await _volumes(request).list(filters)
    return json_response({"Volumes": [wire.volume(v) for v in vols], "Warnings": []})


async def inspect(request: web.Request) -> web.Response:
    return json_response(wire.volume(await _volumes(request).inspect(request.match_info["name"])))


async def remove(request: web.Request) -> web.Response:
    await _volumes(request).remove(request.match_info["name"], force=flag(request, "force"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    raw = versions.filters_at_version("/volumes/prune", request.query.get("filters"))  # all=true below 1.42
    filters = parse_filters(raw, PRUNE_FILTERS)
    return json_response(wire.prune_report(await _volumes(request).prune(filters)))


def add_routes(add: Any) -> None:
    add("GET", "/volumes", list_)
    add("POST", "/volumes/create", create)
    add("POST", "/volumes/prune", prune)
    add("GET", "/volumes/{name}", inspect)
    add("DELETE", "/volumes/{name}", remove)
