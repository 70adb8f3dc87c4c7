"""A container's filesystem: /containers/{id}/archive (docker cp), /export, /changes, POST /commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from servin import errors
from servin.api.context import flag, json_body, services
from servin.api.errors import json_response
from servin.api.wire import archive as wire
from servin.api.wire import containers as wire_containers
from servin.api.wire import updates as wire_updates
from servin.core.filesystem import ContainerFilesystem

log = logging.getLogger(__name__)


def _fs(request: web.Request) -> ContainerFilesystem:
    return services(request).filesystem


def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise errors.InvalidArgument("bad parameter: pathcannot be empty")  # dockerd's wording
    return path


async def _send(request: web.Request, resp: web.StreamResponse, stream: Any) -> web.StreamResponse:
    """Copy a helper's tar to the client. Once the headers are out an error can only cut the
    body short, which the client sees as a broken archive (as with dockerd)."""
    try:
        await resp.prepare(request)
        async for chunk in stream:
            await resp.write(chunk)
    except (ConnectionResetError, BrokenPipeError):
        raise
    except Exception as exc:
        log.error("%s %s: stream failed: %s", request.method, request.path, exc)
        if request.transport is not None:
            request.transport.close()
        return resp
    finally:
        await stream.close()
    await resp.write_eof()
    return resp


async def head_archive(request: web.Request) -> web.Response:
    st = await _fs(request).stat_path(request.match_info["id"], _path(request))
    return web.Response(status=200, headers={wire.PATH_STAT_HEADER: wire.path_stat_header(st)})


async def get_archive(request: web.Request) -> web.StreamResponse:
    st, stream = await _fs(request).archive_path(request.match_info["id"], _path(request))
    resp = web.StreamResponse(status=200, headers={wire.PATH_STAT_HEADER: wire.path_stat_header(st),
                                                   "Content-Type": "application/x-tar"})
    return await _send(request, resp, stream)


async def put_archive(request: web.Request) -> web.Response:
    await _fs(request).extract_to_dir(
        request.match_info["id"], _path(request), request.content.iter_chunked(1 << 16),
        no_overwrite_dir_non_dir=flag(request, "noOverwriteDirNonDir"), copy_uid_gid=flag(request, "copyUIDGID"))
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    stream = await _fs(request).export(request.match_info["id"])
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
    return await _send(request, resp, stream)


async def changes(request: web.Request) -> web.Response:
    return json_response(wire.changes(await _fs(request).changes(request.match_info["id"])))


async def commit(request: web.Request) -> web.Response:
    q = request.query
    s = services(request)
    c = s.containers.get(q.get("container", ""))
    config = wire_updates.parse_commit(await json_body(request))
    container_config = wire_containers.config_json(c)
    container_config["Env"] = [e for e in container_config.get("Env") or [] if not e.startswith("HOSTNAME=")]
    image = await _fs(request).commit(
        c.id, container_config=container_config, config=config, changes=list(q.getall("changes", [])),
        repo=q.get("repo", ""), tag=q.get("tag", ""), comment=q.get("comment", ""), author=q.get("author", ""),
        pause=flag(request, "pause", default=True))
    return json_response({"Id": image.id}, status=201)


def add_routes(add: Callable[[str, str, Any], None]) -> None:
    add("HEAD", "/containers/{id}/archive", head_archive)
    add("GET", "/containers/{id}/archive", get_archive)
    add("PUT", "/containers/{id}/archive", put_archive)
    add("GET", "/containers/{id}/export", export)
    add("GET", "/containers/{id}/changes", changes)
    add("POST", "/commit", commit)
