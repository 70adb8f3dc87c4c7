"""Streaming responses: hijacked attach connections, JSON progress, stdcopy streams to clients.

Docker's 8-byte framing itself is `servin/stdcopy.py`'s; its names are re-exported here for the
handlers that frame what they send."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from servin import errors, stdcopy
from servin.api.wire import versions
# re-exported for the handlers that frame what they send (attach's log replay, exec's errors)
from servin.stdcopy import STDERR as STDERR, STDOUT as STDOUT, frame as frame

CTRL_PUNCT = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(spec: str) -> bytes:
    """Docker's detach-keys syntax: "ctrl-p,ctrl-q" (the default), letters, "ctrl-@" ... "ctrl-_"."""
    if not spec:
        return b"\x10\x11"
    out = bytearray()
    for key in spec.split(","):
        key = key.strip().lower()
        if len(key) == 1:
            out.append(ord(key))
        elif key.startswith("ctrl-") and len(key) == 6:
            ch = key[5]
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in CTRL_PUNCT:
                out.append(CTRL_PUNCT[ch])
            else:
                raise errors.InvalidArgument(f"Invalid detach keys ({spec}) provided")
        else:
            raise errors.InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in a client's stdin, holding back a partial match."""

    def __init__(self, spec: str) -> None:
        self.keys = parse_detach_keys(spec)
        self._held = b""

    def feed(self, chunk: bytes) -> tuple[bytes, bool]:
        data = self._held + chunk
        at = data.find(self.keys)
        if at >= 0:
            self._held = b""
            return data[:at], True
        for n in range(min(len(self.keys) - 1, len(data)), 0, -1):
            if self.keys.startswith(data[-n:]):
                self._held = data[-n:]
                return data[:-n], False
        self._held = b""
        return data, False


async def unframe(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The payloads of a stdcopy stream, in order (a Tty client gets them bare)."""
    async for f in stdcopy.frames(reader):
        yield f.payload


def accepted(request: web.Request, offered: tuple[str, ...]) -> str | None:
    """The media type of `offered` the Accept header prefers (highest q, then the header's order; no
    wildcards, as dockerd's MatchAcceptStrict), or None."""
    best: tuple[float, int, str] | None = None
    for i, item in enumerate(request.headers.get("Accept", "").split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        if media.lower() not in offered:
            continue
        q = 1.0
        for param in params:
            name, _, val = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q, i, media.lower())
    return best[2] if best else None


async def open_stream(request: web.Request, content_type: str) -> web.StreamResponse:
    """A 200 streaming response whose headers go out at once (clients wait on them)."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": content_type})
    await resp.prepare(request)
    return resp


async def write_json_line(resp: web.StreamResponse, obj: Any) -> None:
    await resp.write(json.dumps(obj).encode() + b"\r\n")


class _HijackProtocol(asyncio.Protocol):
    """Takes over a connection from aiohttp after a 101 answer.

    Bytes from the client go to `reader`; the client's half-close (EOF) ends `reader`
    without closing our side, so output keeps flowing.
    """

    def __init__(self, inner: asyncio.BaseProtocol, reader: asyncio.StreamReader) -> None:
        self._inner = inner
        self._reader = reader
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._reader.feed_data(data)

    def eof_received(self) -> bool:
        self._reader.feed_eof()
        return True  # keep the write side open

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._reader.at_eof():
            self._reader.feed_eof()
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def _wake(self) -> None:
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()

    async def drain(self) -> None:
        if self._paused and not self.closed.done():
            w = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(w)
            await w


class Hijacked:
    """A raw bidirectional connection to a docker client (attach, exec start).

    Upgraded (101) connections carry stdin from the client; a plain 200 answer (a client
    that did not ask to upgrade) is a one-way chunked body with an empty stdin.
    """

    def __init__(self, request: web.Request, resp: web.StreamResponse, upgraded: bool) -> None:
        self._resp = resp
        self.reader = asyncio.StreamReader()
        transport = request.transport
        assert transport is not None
        self._transport: asyncio.Transport = transport
        self._protocol: _HijackProtocol | None = None
        if not upgraded:
            self.reader.feed_eof()
            return
        inner = self._transport.get_protocol()
        tail = getattr(inner, "_message_tail", b"")
        if tail:
            self.reader.feed_data(tail)
            inner._message_tail = b""  # type: ignore[attr-defined]
        self._protocol = _HijackProtocol(inner, self.reader)
        self._transport.set_protocol(self._protocol)

    async def write(self, data: bytes) -> None:
        if self._protocol is None:
            await self._resp.write(data)
            return
        if self._transport.is_closing():
            raise ConnectionResetError("client went away")
        self._transport.write(data)
        await self._protocol.drain()

    async def wait_closed(self) -> None:
        if self._protocol is not None:
            await self._protocol.closed
        else:
            await asyncio.Future()  # a one-way body has no client close to wait for

    async def close(self) -> None:
        if self._protocol is None:
            await self._resp.write_eof()
        else:
            self._transport.close()


RAW_STREAM = "application/vnd.docker.raw-stream"


def stream_media_type(tty: bool) -> str:
    """A container's output stream: raw with a TTY, else multiplexed (said so from API 1.42 on)."""
    return RAW_STREAM if tty else versions.value("multiplexed stream media type")


async def hijack(request: web.Request, *, tty: bool) -> tuple[web.StreamResponse, Hijacked]:
    """Answer 101 UPGRADED (or 200, always said raw, when the client did not ask to upgrade) and take
    the socket."""
    upgraded = request.headers.get("Upgrade", "").lower() == "tcp"
    headers = {"Content-Type": stream_media_type(tty) if upgraded else RAW_STREAM}
    if upgraded:
        headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
        resp = web.StreamResponse(status=101, reason="UPGRADED", headers=headers)
    else:
        resp = web.StreamResponse(status=200, headers=headers)
    await resp.prepare(request)
    return resp, Hijacked(request, resp, upgraded)


async def pump(conn: Hijacked, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, stdin: bool,
               raw: bool, detach_keys: str = "", eof_ends_session: bool = False) -> str:
    """Supervisor output (stdcopy frames; unframed for a Tty client when `raw`) → client, client
    stdin → supervisor, until one side ends. Returns "output" (the process's streams ended),
    "stdin" (the client detached, or its EOF ends the session) or "client" (it went away).

    The client's EOF is passed on as our half-close, which closes a StdinOnce process's stdin;
    with `eof_ends_session` (a Tty container, as in dockerd) it only ends this session."""

    async def to_client() -> None:
        if raw:
            async for payload in unframe(reader):
                await conn.write(payload)
            return
        while chunk := await reader.read(1 << 16):
            await conn.write(chunk)

    async def from_client() -> None:
        if stdin:
            scanner = DetachScanner(detach_keys)
            while chunk := await conn.reader.read(1 << 16):
                data, detached = scanner.feed(chunk)
                if data:
                    writer.write(data)
                    await writer.drain()
                if detached:
                    return
            if eof_ends_session:
                return
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()
        await asyncio.Future()  # stdin done; the output side decides the end

    out_task = asyncio.ensure_future(to_client())
    in_task = asyncio.ensure_future(from_client())
    closed = asyncio.ensure_future(conn.wait_closed())
    try:
        await asyncio.wait({out_task, closed, in_task}, return_when=asyncio.FIRST_COMPLETED)
        return "output" if out_task.done() else "stdin" if in_task.done() else "client"
    finally:
        for t in (in_task, closed, out_task):
            t.cancel()
        if out_task.done() and not out_task.cancelled():
            out_task.exception()  # a client that went away is not an error
