"""POST /build (the classic builder) and the BuildKit endpoints, answered with the way to use it.

The context streams from the request body into the builder; its messages stream back as dockerd's
JSON lines. As dockerd, an error before the first line is an HTTP error, after it an error line
(with the exit code of a failed RUN in errorDetail). With ``q`` the lines are held back: the image
ID alone is sent (the aux line too, which ``--iidfile`` reads), or on failure what was held and the
error. A client that goes away cancels the build: its step containers are removed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from servin import errors
from servin.api import streams
from servin.api.context import services
from servin.api.wire import build as wire
from servin.api.wire.progress import dumps
from servin.build.executor import StepFailed
from servin.build.steps import BuildMessage, ImageBuilt

CLIENT_CHECK = 1.0  # seconds between looks at the connection while a step is silent


class _Reply:
    def __init__(self, request: web.Request, *, quiet: bool) -> None:
        self.request = request
        self.quiet = quiet
        self.resp: web.StreamResponse | None = None
        self.held: list[dict[str, Any]] = []

    async def write(self, line: dict[str, Any] | Any) -> None:
        if self.resp is None:
            self.resp = await streams.open_stream(self.request, "application/json")
        await self.resp.write(dumps(dict(line)))

    async def message(self, msg: BuildMessage) -> None:
        line = wire.render(msg)
        if self.quiet and not isinstance(msg, ImageBuilt):
            self.held.append(line)
        else:
            await self.write(line)

    def client_gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()


async def build(request: web.Request) -> web.StreamResponse:
    builder = services(request).builder
    if builder is None:
        raise errors.NotImplementedYet("building images is not implemented in Servin yet")
    options = wire.parse_options(request.query, registry_header=request.headers.get("X-Registry-Config"),
                                 experimental=services(request).system.facts().experimental)
    queue: asyncio.Queue[BuildMessage] = asyncio.Queue()

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(1 << 20):
            yield chunk

    reply = _Reply(request, quiet=options.quiet)
    task = asyncio.ensure_future(builder.build(options, body(), queue.put_nowait))
    try:
        while not task.done() or not queue.empty():
            if not queue.empty():
                await reply.message(queue.get_nowait())
                continue
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, task}, timeout=CLIENT_CHECK, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await reply.message(getter.result())
                continue
            getter.cancel()
            if not done and reply.client_gone():
                raise ConnectionResetError("the client went away")
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    exc = task.exception()
    if isinstance(exc, (aiohttp.ClientError, ConnectionError)) and reply.client_gone():
        raise ConnectionResetError("the client went away while it sent the context")
    if exc is None:
        if options.quiet:
            await reply.write(wire.quiet_result(task.result().image_id))
    else:
        if not isinstance(exc, errors.ServinError):
            raise exc
        for line in reply.held:
            await reply.write(line)
        if reply.resp is None:
            raise exc
        await reply.write(wire.error(exc.message, exc.code if isinstance(exc, StepFailed) else None))
    assert reply.resp is not None
    await reply.resp.write_eof()
    return reply.resp


async def buildkit(request: web.Request) -> web.Response:
    """/session and /grpc: the BuildKit client's endpoints."""
    raise errors.InvalidArgument(wire.BUILDKIT_REFUSAL)


def add_routes(add: Any) -> None:
    add("POST", "/build", build)
    add("POST", "/session", buildkit)
    add("POST", "/grpc", buildkit)
