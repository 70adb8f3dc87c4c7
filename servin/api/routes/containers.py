"""/containers/... handlers: parse, call the engine once, render."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from servin import errors
from servin.api import streams
from servin.api.errors import json_response
from servin.api.context import flag, json_body, services
from servin.api.wire import containers as wire
from servin.api.wire import create_warnings
from servin.api.wire import stats as wire_stats
from servin.api.wire import updates as wire_updates
from servin.api.wire.filters import parse_filters
from servin.core.attach import AttachStream, AttachTicket
from servin.core.lifecycle import now_rfc3339
from servin.core.logs import LogQuery, frame, renders_natively
from servin.core.model import Container, LogLine

LIST_FILTERS = frozenset({"id", "name", "label", "status", "ancestor", "exited", "before", "since",
                          "network", "volume", "health", "publish", "expose", "isolation", "is-task"})


async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    config, host, endpoints = wire.parse_create_request(body)
    engine = services(request).containers
    host, warnings = engine.verify(host)  # dockerd's checks, before the image is looked up
    c = await engine.create(config, host, request.query.get("name"), endpoints=endpoints)
    return json_response(wire.created(c.id, [*warnings, *create_warnings.of(body)]), status=201)


async def list_(request: web.Request) -> web.Response:
    s = services(request)
    filters = parse_filters(request.query.get("filters"), LIST_FILTERS)
    show_all = flag(request, "all")
    try:
        limit = int(request.query.get("limit") or -1)
    except ValueError:
        raise errors.InvalidArgument(f"invalid limit: {request.query['limit']}") from None
    listed = s.container_views.list(filters, all_=show_all, limit=limit)
    sizes = await _sizes(request, [item.container for item in listed])
    now = time.time_ns()
    return json_response([wire.summary(item.container, now, item.networks, sizes=size)
                          for item, size in zip(listed, sizes, strict=True)])


async def _sizes(request: web.Request, containers: list[Container]) -> list[tuple[int, int] | None]:
    """SizeRw and SizeRootFs of each container when the query asks `size` (a walk of each writable layer)."""
    if not flag(request, "size"):
        return [None] * len(containers)
    views = services(request).container_views
    return await asyncio.to_thread(lambda: [views.sizes(c) for c in containers])


async def inspect(request: web.Request) -> web.Response:
    d = services(request).container_views.inspect(request.match_info["id"])
    [sizes] = await _sizes(request, [d.container])
    return json_response(wire.inspect(d.container, bundle=str(d.bundle_dir), log_path=str(d.log_path),
                                      exec_ids=d.exec_ids, networks=d.networks, sandbox_key=d.sandbox_key,
                                      sizes=sizes))


async def start(request: web.Request) -> web.Response:
    await services(request).containers.start(request.match_info["id"])
    return web.Response(status=204)


def _timeout(request: web.Request) -> int | None:
    t = request.query.get("t")
    if t is None or t == "":
        return None
    try:
        return int(t)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for t: {t}") from None


async def stop(request: web.Request) -> web.Response:
    await services(request).containers.stop(request.match_info["id"], _timeout(request),
                                            request.query.get("signal"))
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    await services(request).containers.restart(request.match_info["id"], _timeout(request),
                                               request.query.get("signal"))
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    await services(request).containers.kill(request.match_info["id"], request.query.get("signal"))
    return web.Response(status=204)


async def remove_link(request: web.Request) -> web.Response:
    if not flag(request, "link"):
        raise errors.NotFound(f"No such container: {request.match_info['parent']}/{request.match_info['alias']}")
    await services(request).containers.remove_link(request.match_info["parent"], request.match_info["alias"])
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    await services(request).containers.remove(request.match_info["id"], force=flag(request, "force"),
                                              volumes=flag(request, "v"))
    return web.Response(status=204)


async def wait(request: web.Request) -> web.StreamResponse:
    fut = services(request).containers.wait_future(request.match_info["id"],
                                                   request.query.get("condition", ""))
    resp = await streams.open_stream(request, "application/json")
    result = await fut
    body: dict[str, Any] = {"Error": {"Message": result.error} if result.error else None,
                            "StatusCode": result.status_code}
    await resp.write(json.dumps(body).encode() + b"\n")
    await resp.write_eof()
    return resp


async def resize(request: web.Request) -> web.Response:
    try:
        h, w = int(request.query.get("h", "0")), int(request.query.get("w", "0"))
    except ValueError:
        raise errors.InvalidArgument("invalid resize parameters") from None
    await services(request).containers.resize(request.match_info["id"], h, w)
    return web.Response(status=200)


def _since(value: str | None, name: str) -> int:
    if not value:
        return 0
    try:
        return int(float(value) * 1_000_000_000)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for {name}: {value}") from None


async def logs(request: web.Request) -> web.StreamResponse:
    stdout, stderr = flag(request, "stdout"), flag(request, "stderr")
    if not (stdout or stderr):
        raise errors.InvalidArgument("Bad parameters: you must choose at least one stream")
    tail_raw = request.query.get("tail", "all")
    tail = None if tail_raw in ("", "all") else int(tail_raw) if tail_raw.lstrip("-").isdigit() else None
    if tail is not None and tail < 0:
        tail = None
    q = LogQuery(stdout=stdout, stderr=stderr, follow=flag(request, "follow"), tail=tail,
                 since_ns=_since(request.query.get("since"), "since"),
                 until_ns=_since(request.query.get("until"), "until"))
    timestamps = flag(request, "timestamps")
    views = services(request).container_views
    body: AsyncIterator[bytes]
    if renders_natively(q):  # the common case, rendered in C from the file's bytes
        c, body = views.rendered_logs(request.match_info["id"], q, timestamps=timestamps)
    else:  # since/until/tail: the Python reader's lines
        c, lines = views.logs(request.match_info["id"], q)
        body = (frame(batch, tty=c.config.tty, timestamps=timestamps) async for batch in lines)
    resp = await streams.open_stream(request, streams.stream_media_type(c.config.tty))
    async for chunk in body:
        await resp.write(chunk)
    await resp.write_eof()
    return resp


async def _attach_streams(request: web.Request, c: Container, ticket: AttachTicket,
                          send_log: Callable[[LogLine], Awaitable[None]]) -> AttachStream | None:
    """The common part of both attaches: the log first (`logs`), then, with `stream`, the
    container's stdio once it runs, or None when there is none."""
    engine = services(request).containers
    want_in, want_out, want_err = flag(request, "stdin"), flag(request, "stdout"), flag(request, "stderr")
    if flag(request, "logs"):
        _, lines = services(request).container_views.logs(c.id, LogQuery(stdout=want_out, stderr=want_err))
        async for batch in lines:
            for line in batch:
                await send_log(line)
    if not flag(request, "stream"):
        return None
    return await engine.open_attach(ticket, stdin=want_in, stdout=want_out, stderr=want_err)


async def attach(request: web.Request) -> web.StreamResponse:
    c, ticket = services(request).containers.attach_ticket(request.match_info["id"])
    resp, conn = await streams.hijack(request, tty=c.config.tty)

    async def send_log(line: LogLine) -> None:
        kind = streams.STDOUT if line.stream == "stdout" else streams.STDERR
        await conn.write(line.data if c.config.tty else streams.frame(kind, line.data))

    try:
        stream = await _attach_streams(request, c, ticket, send_log)
        if stream is None:
            return resp
        try:
            await streams.pump(conn, stream.reader, stream.writer, stdin=flag(request, "stdin"), raw=c.config.tty,
                               detach_keys=request.query.get("detachKeys", ""), eof_ends_session=c.config.tty)
        finally:
            with contextlib.suppress(Exception):
                stream.writer.close()
    finally:
        ticket.done()
        await conn.close()
    return resp


async def attach_ws(request: web.Request) -> web.WebSocketResponse:
    """The websocket attach: raw output (never multiplexed) as binary messages, messages in as stdin."""
    c, ticket = services(request).containers.attach_ticket(request.match_info["id"])
    ws = web.WebSocketResponse()
    await ws.prepare(request)

    async def send_log(line: LogLine) -> None:
        await ws.send_bytes(line.data)

    try:
        stream = await _attach_streams(request, c, ticket, send_log)
        if stream is None:
            return ws
        reader, writer = stream.reader, stream.writer
        want_in = flag(request, "stdin")

        async def to_client() -> None:
            async for payload in streams.unframe(reader):
                await ws.send_bytes(payload)

        async def from_client() -> None:
            async for msg in ws:
                if want_in and msg.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                    writer.write(msg.data if isinstance(msg.data, bytes) else msg.data.encode())
                    await writer.drain()
            await asyncio.Future()  # the client closed: the output side, or the close, ends it

        tasks = [asyncio.ensure_future(to_client()), asyncio.ensure_future(from_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                writer.close()
    finally:
        ticket.done()
        await ws.close()
    return ws


async def pause(request: web.Request) -> web.Response:
    await services(request).containers.pause(request.match_info["id"])
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    await services(request).containers.unpause(request.match_info["id"])
    return web.Response(status=204)


async def rename(request: web.Request) -> web.Response:
    await services(request).containers.rename(request.match_info["id"], request.query.get("name", ""))
    return web.Response(status=204)


async def update(request: web.Request) -> web.Response:
    engine = services(request).containers
    c = engine.get(request.match_info["id"])
    wanted = wire_updates.parse_update(await json_body(request) or {}, c.host_config)
    host, warnings = engine.verify(wanted, update=True)
    await engine.update(c.id, host)
    return json_response({"Warnings": warnings})


async def top(request: web.Request) -> web.Response:
    titles, rows = await services(request).container_views.top(request.match_info["id"],
                                                          request.query.get("ps_args", ""))
    return json_response({"Titles": titles, "Processes": rows})


async def stats(request: web.Request) -> web.StreamResponse:
    s = services(request)
    views = s.container_views
    ref = request.match_info["id"]
    stream = flag(request, "stream", True)
    one_shot = flag(request, "one-shot")
    c, cur = views.stats_sample(ref)

    def reading() -> tuple[Any, int, str]:
        _, sample = views.stats_sample(c.id)
        return sample, s.host_cpu_ns(), now_rfc3339()

    resp = await streams.open_stream(request, "application/json")
    pre, pre_sys, preread = None, 0, wire_stats.ZERO_TIME
    if not stream and not one_shot and cur is not None:  # fill precpu_stats, as dockerd does
        pre, pre_sys, preread = reading()
        await asyncio.sleep(1)
    while True:
        cur, sys_ns, read = reading()
        body = wire_stats.stats(c, cur, pre, read=read, preread=preread, system_ns=sys_ns, pre_system_ns=pre_sys,
                          ncpu=s.info.ncpu, mem_total=s.info.mem_total,
                          networks=await views.network_stats(c.id) if cur is not None else None)
        await resp.write(json.dumps(body).encode() + b"\n")
        if not stream or cur is None:
            break
        pre, pre_sys, preread = cur, sys_ns, read
        await asyncio.sleep(1)
    await resp.write_eof()
    return resp


PRUNE_FILTERS = frozenset({"until", "label", "label!"})


async def prune(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"), PRUNE_FILTERS)
    removed, reclaimed = await services(request).containers.prune(filters)
    return json_response({"ContainersDeleted": removed, "SpaceReclaimed": reclaimed})


def add_routes(add: Any) -> None:
    add("POST", "/containers/prune", prune)
    add("POST", "/containers/{id}/pause", pause)
    add("POST", "/containers/{id}/unpause", unpause)
    add("POST", "/containers/{id}/rename", rename)
    add("POST", "/containers/{id}/update", update)
    add("GET", "/containers/{id}/top", top)
    add("GET", "/containers/{id}/stats", stats)
    add("POST", "/containers/create", create)
    add("GET", "/containers/json", list_)
    add("GET", "/containers/{id}/json", inspect)
    add("POST", "/containers/{id}/start", start)
    add("POST", "/containers/{id}/stop", stop)
    add("POST", "/containers/{id}/restart", restart)
    add("POST", "/containers/{id}/kill", kill)
    add("POST", "/containers/{id}/wait", wait)
    add("POST", "/containers/{id}/resize", resize)
    add("DELETE", "/containers/{id}", remove)
    add("DELETE", "/containers/{parent}/{alias}", remove_link)
    add("GET", "/containers/{id}/logs", logs)
    add("POST", "/containers/{id}/attach", attach)
    add("GET", "/containers/{id}/attach/ws", attach_ws)
