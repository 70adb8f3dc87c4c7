"""daemon/connections: the header deadline, the per-client cap and the bounded accept-error log, on a
real aiohttp server over loopback TCP and a unix socket (no root needed)."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import resource
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from servin.daemon.config import ConfigError, resolve
from servin.daemon.connections import (
    AcceptErrors,
    Clients,
    ConnectionLimits,
    GuardedRunner,
    raise_open_files_limit,
)
from tests.unit.test_daemon_config import daemon_json, parse

PING = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"


async def _ping(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def _upload(request: web.Request) -> web.Response:
    return web.Response(text=str(len(await request.read())))


class Served:
    def __init__(self, runner: GuardedRunner, port: int, path: Path) -> None:
        self.runner, self.port, self.path = runner, port, path

    async def tcp(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def serve(tmp_path: Path, limits: ConnectionLimits) -> Served:
    app = web.Application()
    app.router.add_get("/_ping", _ping)
    app.router.add_post("/upload", _upload)
    runner = GuardedRunner(app, limits, shutdown_timeout=0.1)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    path = tmp_path / "s.sock"
    await web.UnixSite(runner, str(path)).start()
    return Served(runner, tcp.port, path)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    s = await serve(tmp_path, ConnectionLimits(read_header_timeout=0.5, max_per_client=3))
    yield s
    await s.runner.cleanup()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    return await asyncio.wait_for(reader.read(), seconds)


async def test_a_client_sending_a_header_line_every_so_often_is_cut_off(served: Served) -> None:
    reader, writer = await served.tcp()
    writer.write(b"GET /_ping HTTP/1.1\r\n")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(20):  # a header line every 0.1 s, forever
        if reader.at_eof() or writer.is_closing():
            break
        writer.write(b"X-Slow-%d: y\r\n" % i)
        await asyncio.sleep(0.1)
    assert await closed_within(reader, 2) == b""
    assert loop.time() - t0 < 1.5
    writer.close()


async def test_a_connection_sending_nothing_is_cut_off_too(served: Served) -> None:
    reader, writer = await served.tcp()
    assert await closed_within(reader, 2) == b""
    writer.close()


async def test_kept_alive_connections_and_slow_bodies_are_not_cut_off(served: Served) -> None:
    reader, writer = await served.tcp()
    for _ in range(2):
        writer.write(PING)
        assert (await reader.readuntil(b"\r\n\r\nOK")).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.8)  # idle past the header deadline: keep-alive is not a slow request
    # a body that takes longer than the header deadline: its headers came in time
    writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
    await asyncio.sleep(0.8)
    writer.write(b"cd")
    assert (await reader.readuntil(b"\r\n\r\n4"))
    writer.close()


async def test_the_cap_refuses_the_connection_over_it_with_a_503_and_logs_once(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    held = [await served.tcp() for _ in range(3)]
    for _r, w in held:
        w.write(b"GET /_ping HTTP/1.1\r\nHost: x\r\n")  # in progress, headers not done
    caplog.set_level(logging.WARNING, "servin")
    for _ in range(3):
        reader, writer = await served.tcp()
        writer.write(PING)
        answer = await closed_within(reader, 3)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert json.loads(body)["message"].startswith("too many connections from 127.0.0.1: 3 open")
        writer.close()
    assert len([r for r in caplog.records if "refusing connections from 127.0.0.1" in r.getMessage()]) == 1
    assert served.runner.clients.open("127.0.0.1") == 3
    for _r, w in held:  # a closed connection frees its place
        w.close()
    await asyncio.sleep(0.1)
    assert served.runner.clients.open("127.0.0.1") == 0
    reader, writer = await served.tcp()
    writer.write(PING)
    assert (await reader.readuntil(b"\r\n\r\nOK")).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_root_on_the_unix_socket_is_not_capped_but_has_the_header_deadline(served: Served) -> None:
    n = 5 if os.geteuid() == 0 else 3  # another user is capped by UID
    conns = [await asyncio.open_unix_connection(str(served.path)) for _ in range(n)]
    for reader, writer in conns:
        writer.write(PING)
        assert (await reader.readuntil(b"\r\n\r\nOK")).startswith(b"HTTP/1.1 200")
    reader, writer = conns[0]
    writer.write(b"GET /_ping HTTP/1.1\r\n")
    assert (await closed_within(reader, 2)) == b""
    for _r, w in conns:
        w.close()


def test_clients_log_a_refused_client_once_per_interval_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    clients = Clients(2, clock=lambda: now[0], interval=60)
    caplog.set_level(logging.WARNING, "servin")
    assert clients.admit("10.0.0.1") and clients.admit("10.0.0.1")
    assert clients.admit("10.0.0.2")
    assert not any(clients.admit("10.0.0.1") for _ in range(1000))
    now[0] = 61
    assert not clients.admit("10.0.0.1")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "(1 refused since the last report)" in lines[0] and "(1000 refused since the last report)" in lines[1]
    clients.release("10.0.0.1")
    assert clients.admit("10.0.0.1")
    assert Clients(0).admit("x")  # 0: no cap


def test_accept_errors_are_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    handler = AcceptErrors(clock=lambda: now[0], interval=60)
    loop = asyncio.new_event_loop()
    try:
        caplog.set_level(logging.DEBUG)
        for i in range(600):  # ten minutes of asyncio retrying every second
            now[0] = float(i)
            handler(loop, {"message": "socket.accept() out of system resource",
                           "exception": OSError(errno.EMFILE, "Too many open files")})
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 10 and "failed 60 time(s)" in lines[1]
        assert all(r.exc_info is None for r in caplog.records)
        handler(loop, {"message": "something else", "exception": ValueError("x")})  # asyncio logs the rest
        assert caplog.records[-1].getMessage() == "something else"
    finally:
        loop.close()


def test_the_open_files_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
        assert raise_open_files_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_settings_from_flags_and_daemon_json(tmp_path: Path) -> None:
    cfg = resolve(parse([], daemon_json(tmp_path, {})))
    assert (cfg.read_header_timeout, cfg.max_connections_per_client) == (30.0, 512)
    cfg = resolve(parse(["--read-header-timeout", "2.5", "--max-connections-per-client", "0"], None))
    assert (cfg.read_header_timeout, cfg.max_connections_per_client) == (2.5, 0)
    cfg = resolve(parse([], daemon_json(tmp_path, {"read-header-timeout": 5, "max-connections-per-client": 64})))
    assert (cfg.read_header_timeout, cfg.max_connections_per_client) == (5.0, 64)
    with pytest.raises(ConfigError, match="read-header-timeout must be a number of seconds, 0 or more: nan"):
        resolve(parse(["--read-header-timeout", "nan"], None))
    for bad in ({"read-header-timeout": "30s"}, {"read-header-timeout": -1}, {"max-connections-per-client": 1.5},
                {"max-connections-per-client": True}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            resolve(parse([], daemon_json(tmp_path, bad)))
