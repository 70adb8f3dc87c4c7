"""The aiohttp application: versioned routes, Docker's headers, one error table."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from servin import errors
from servin.api.context import JSON_BODY_LIMIT, SERVICES, Services
from servin.api.errors import INTERNAL_ERROR_HOOK, body_for, error_response, exception_response
from servin.api.routes import archive, build, containers, execs, images, networks, system, volumes
from servin.api.wire import versions
from servin.api.wire.system import ENGINE_VERSION, MIN_API_VERSION

log = logging.getLogger(__name__)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The answer to an unexpected exception: never its Python text (a path, a RecursionError...).
INTERNAL_ERROR = "internal server error: see the daemon's log"


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


VERSION_PREFIX = "/v{version}"


@web.middleware
async def version_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The /vX.Y prefix's version (none: the newest), checked after the gate (an unauthenticated client
    learns nothing), then the one place the request's version is set for the wire layer
    (wire/versions.py): a route newer than it is refused, query parameters it did not know dropped."""
    version = request.match_info.get("version")
    if version is not None:
        if _vtuple(version) < _vtuple(MIN_API_VERSION):
            raise errors.InvalidArgument(
                f"client version {version} is too old. Minimum supported API version is "
                f"{MIN_API_VERSION}, please upgrade your client to a newer version")
        if _vtuple(version)[:2] > versions.MAX_VERSION:
            raise errors.InvalidArgument(f"client version {version} is too new. Maximum supported API version "
                                         f"is {versions.text(versions.MAX_VERSION)}")
    # "1.4" is 1.4 (too old, refused above); a bare "1" or "1.41.2" is served as its major.minor
    parts = [int(p) for p in (version or "").split(".")[:2] if p.isdigit()]
    token = versions.use((parts[0], parts[1] if len(parts) > 1 else 0) if parts else versions.MAX_VERSION)
    try:
        resource = request.match_info.route.resource
        route = resource.canonical.removeprefix(VERSION_PREFIX) if resource is not None else request.path
        versions.check_route(request.method, route)
        if versions.shapes_query(route):
            given = list(request.query.items())
            known = versions.query_at_version(route, given)
            if known != given:
                request = request.clone(rel_url=request.rel_url.with_query(known))
        return await handler(request)
    finally:
        versions.reset(token)


@web.middleware
async def docker_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as its status, code and body (api/errors.py), never a traceback."""
    try:
        resp = await handler(request)
    except errors.ServinError as exc:
        resp = exception_response(exc, body_for(request))
        if resp.status == 500:
            _internal_error(request, exc.message)
    except web.HTTPNotFound:
        resp = error_response(404, "page not found", body=body_for(request))
    except web.HTTPMethodNotAllowed:
        resp = error_response(405, "method not allowed", body=body_for(request))
    except web.HTTPException as exc:
        resp = error_response(exc.status, exc.reason or "error", body=body_for(request))
    except (ConnectionResetError, BrokenPipeError):
        # the client went away mid-stream (e.g. ^C on `docker logs -f`): nothing to answer
        log.debug("%s %s: client disconnected", request.method, request.path)
        return web.Response(status=204)
    except Exception as exc:  # a bug: the daemon's log has the traceback, the client a generic 500
        log.exception("%s %s failed", request.method, request.path)
        resp = error_response(500, INTERNAL_ERROR, body=body_for(request))
        _internal_error(request, f"{type(exc).__name__}: {exc}"[:500])
    return resp


def _internal_error(request: web.Request, message: str) -> None:
    hook = request.app.get(INTERNAL_ERROR_HOOK)
    if hook is not None:
        hook(request.method, request.path, message)


async def _docker_headers(request: web.Request, resp: web.StreamResponse) -> None:
    resp.headers["Api-Version"] = versions.text(versions.MAX_VERSION)
    resp.headers["Server"] = f"Docker/{ENGINE_VERSION} (linux)"
    resp.headers["Ostype"] = "linux"
    resp.headers["Docker-Experimental"] = str(request.app[SERVICES].system.facts().experimental).lower()


def build_app(services: Services, *, gate: Middleware | None = None) -> web.Application:
    """Docker's routes; `gate` (access.gate) stands in front of every route, inside the middleware that
    renders its errors."""
    middlewares: list[Middleware] = [docker_middleware, *([gate] if gate else []), version_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=JSON_BODY_LIMIT)
    app[SERVICES] = services
    app.on_response_prepare.append(_docker_headers)

    def add(method: str, path: str, handler: Handler) -> None:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, r"/v{version:[0-9]+(?:\.[0-9]+)*}" + path, handler)

    system.add_routes(add)
    containers.add_routes(add)
    images.add_routes(add)
    volumes.add_routes(add)
    execs.add_routes(add)
    networks.add_routes(add)
    archive.add_routes(add)
    build.add_routes(add)
    return app
