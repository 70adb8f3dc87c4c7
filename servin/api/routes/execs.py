"""/containers/{id}/exec and /exec/{id}/... handlers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from servin import errors
from servin.api import streams
from servin.api.context import json_body, services
from servin.api.errors import json_response
from servin.api.wire.execs import exec_inspect, parse_exec_create, parse_exec_start
from servin.api.backends import ExecsBackend



def _execs(request: web.Request) -> ExecsBackend:
    return services(request).execs


async def create(request: web.Request) -> web.Response:
    config = parse_exec_create(await json_body(request))
    rec = _execs(request).create(request.match_info["id"], config)
    return json_response({"Id": rec.id}, status=201)


async def start(request: web.Request) -> web.StreamResponse:
    detach, tty, console_size = parse_exec_start(await json_body(request))
    execs = _execs(request)
    rec = execs.get(request.match_info["id"])
    if detach:
        rec = await execs.start(rec.id, console_size)
        assert rec.session is not None
        asyncio.ensure_future(_drain(rec.session.reader))  # nobody reads: discard its output
        return web.Response(status=200)
    if rec.started:
        raise errors.Conflict(f"Error: Exec command {rec.id} has already run")
    raw = rec.config.tty if tty is None else tty
    resp, conn = await streams.hijack(request, tty=raw)
    try:
        rec = await execs.start(rec.id, console_size)
    except errors.ServinError as exc:
        # as dockerd: once hijacked, a failed start is text on the stream; inspect has the exit code
        message = (f"OCI runtime exec failed: {exc.message}: unknown" if isinstance(exc, errors.ExecFailed)
                   else exc.message).encode() + b"\r\n"
        with contextlib.suppress(ConnectionError):
            await conn.write(message if raw else streams.frame(streams.STDOUT, message))
        await conn.close()
        return resp
    session = rec.session
    assert session is not None
    try:
        ended = await streams.pump(conn, session.reader, session.writer, stdin=rec.config.attach_stdin, raw=raw,
                                   detach_keys=rec.config.detach_keys)
        if ended == "output":
            await rec.done.wait()  # inspect shows the exit code once the client sees EOF
        elif ended == "stdin":  # detached: the exec runs on, its output is discarded
            asyncio.ensure_future(_drain(session.reader))
    finally:
        await conn.close()
    return resp


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(1 << 16):
        pass


async def inspect(request: web.Request) -> web.Response:
    rec = _execs(request).get(request.match_info["id"])
    c = services(request).containers.get(rec.container_id)
    return json_response(exec_inspect(rec, c))


async def resize(request: web.Request) -> web.Response:
    try:
        h, w = int(request.query.get("h", "0")), int(request.query.get("w", "0"))
    except ValueError:
        raise errors.InvalidArgument("invalid resize parameters") from None
    await _execs(request).resize(request.match_info["id"], h, w)
    return web.Response(status=200)


def add_routes(add: Any) -> None:
    add("POST", "/containers/{id}/exec", create)
    add("POST", "/exec/{id}/start", start)
    add("POST", "/exec/{id}/resize", resize)
    add("GET", "/exec/{id}/json", inspect)
