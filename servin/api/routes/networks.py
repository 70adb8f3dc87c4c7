"""/networks handlers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from servin.api.backends import NetworksBackend
from servin.api.context import json_body, services
from servin.api.errors import json_response
from servin.api.wire import networks as wire
from servin.api.wire.netsettings import parse_endpoint_config
from servin.api.wire.filters import parse_filters
from servin.core.model import EndpointConfig

LIST_FILTERS = frozenset({"driver", "id", "label", "name", "scope", "type", "dangling"})
PRUNE_FILTERS = frozenset({"label", "label!", "until"})


def _networks(request: web.Request) -> NetworksBackend:
    return services(request).networks


async def list_(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"), LIST_FILTERS)
    return json_response([wire.network_summary(n) for n in await _networks(request).list(filters)])


async def inspect(request: web.Request) -> web.Response:
    detail = await _networks(request).inspect(request.match_info["id"])
    return json_response(wire.network_inspect(detail.network, detail.members))


async def create(request: web.Request) -> web.Response:
    n = await _networks(request).create(wire.network_spec(await json_body(request)))
    return json_response({"Id": n.id, "Warning": ""}, status=201)


async def remove(request: web.Request) -> web.Response:
    await _networks(request).remove(request.match_info["id"])
    return web.Response(status=204)


async def connect(request: web.Request) -> web.Response:
    container, endpoint_config = wire.parse_connect(await json_body(request))

    def endpoint(network: str) -> EndpointConfig:
        return parse_endpoint_config(network, endpoint_config)

    await _networks(request).connect(request.match_info["id"], container, endpoint)
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    container, _force = wire.parse_disconnect(await json_body(request))
    await _networks(request).disconnect(request.match_info["id"], container)
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"), PRUNE_FILTERS)
    return json_response(wire.prune_report(await _networks(request).prune(filters)))


def add_routes(add: Any) -> None:
    add("GET", "/networks", list_)
    add("GET", "/networks/", list_)  # dockerd's router lists here too
    add("POST", "/networks/create", create)
    add("POST", "/networks/prune", prune)
    add("GET", "/networks/{id}", inspect)
    add("DELETE", "/networks/{id}", remove)
    add("POST", "/networks/{id}/connect", connect)
    add("POST", "/networks/{id}/disconnect", disconnect)
