"""The userland proxy: the published ports a DNAT rule cannot serve, copied by the daemon.

DNAT serves a published port in the kernel (`servin.network.rules`), also while the daemon is
down. Two paths it cannot take are served here, as dockerd's docker-proxy serves them: the IPv6
loopback (IPv6 has no route_localnet, so a DNAT from ::1 could not leave lo) and a host address of
a family the container has no address of (host IPv6 to a container's IPv4, host IPv4 to an
IPv6-only container). The proxy listens on the binding's host address and connects to the
container's: TCP connections are copied both ways (half-closes passed on), UDP datagrams go out
from one socket per client and the answers back, a client's flow forgotten after 90 s of silence
(docker-proxy's timeout). These paths are down while the daemon is.

docker-proxy is a process of its own; this proxy shares the daemon's file descriptors, so a flood
of connections or of UDP source ports must not take them all: a listener holds at most
`MAX_TCP_CONNECTIONS` connections (a new one beyond is closed at once) and `MAX_UDP_FLOWS` flows
(a new client evicts the one silent longest).

The proxy runs its own asyncio loop in one thread, so `start` and `stop` are blocking calls from
any thread (the network service runs in the engine's worker threads); `start` binds the host
address before it returns, so a port taken on the host is refused at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Coroutine
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from servin.errors import Conflict

log = logging.getLogger(__name__)

UDP_IDLE = 90.0  # seconds a UDP client's flow lives without a datagram (docker-proxy's)
CONNECT_TIMEOUT = 10.0
CHUNK = 65536
# per listener; each takes the daemon's file descriptors (its limit: 1048576 as a systemd service,
# often 1024 by hand), so a flood on one port leaves the API and the other ports room
MAX_TCP_CONNECTIONS = 256  # concurrent connections (2 fds each); one beyond is closed at once
MAX_UDP_FLOWS = 256  # client addresses with a flow (1 fd each); a new one evicts the least recently used

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxiedPort:
    """`host_ip`:`host_port` copied to `target_ip`:`target_port` (either family to either)."""

    proto: str  # tcp | udp
    host_ip: str
    host_port: int
    target_ip: str
    target_port: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.proto, self.host_ip, self.host_port)


@dataclass(slots=True)
class _Listener:
    port: ProxiedPort
    close: Any  # () -> None, on the loop
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class UserlandProxy:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._listeners: dict[tuple[str, str, int], _Listener] = {}

    def start(self, port: ProxiedPort) -> None:
        """Listen on the host address and serve it (Conflict when the host has it taken)."""
        if port.key in self._listeners:
            return
        sock = _bind(port)
        try:
            self._listeners[port.key] = self._run(self._serve(port, sock))
        except BaseException:
            sock.close()
            raise

    def stop(self, proto: str, host_ip: str, host_port: int) -> None:
        """Stop listening and close the connections and flows in progress."""
        listener = self._listeners.pop((proto, host_ip, host_port), None)
        if listener is not None:
            self._run(self._close(listener))

    def ports(self) -> list[ProxiedPort]:
        return [li.port for li in self._listeners.values()]

    def close(self) -> None:
        """Stop everything and the loop's thread."""
        for key in list(self._listeners):
            self.stop(*key)
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()

    # -- the loop ------------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="servin-proxy", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    async def _serve(self, port: ProxiedPort, sock: socket.socket) -> _Listener:
        loop = asyncio.get_running_loop()
        if port.proto == "udp":
            transport, _ = await loop.create_datagram_endpoint(lambda: _UdpListener(port), sock=sock)
            return _Listener(port=port, close=transport.close)
        listener = _Listener(port=port, close=None)

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if len(listener.tasks) >= MAX_TCP_CONNECTIONS:
                log.warning("proxy %s: %d connections already, one more refused", port, MAX_TCP_CONNECTIONS)
                writer.close()
                return
            task = asyncio.current_task()
            assert task is not None
            listener.tasks.add(task)
            try:
                await _relay(port, reader, writer)
            finally:
                listener.tasks.discard(task)

        server = await asyncio.start_server(accepted, sock=sock)
        listener.close = server.close
        return listener

    @staticmethod
    async def _close(listener: _Listener) -> None:
        listener.close()
        for task in list(listener.tasks):
            task.cancel()
        await asyncio.gather(*listener.tasks, return_exceptions=True)


def _bind(port: ProxiedPort) -> socket.socket:
    family = socket.AF_INET6 if ":" in port.host_ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM if port.proto == "udp" else socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:  # [::] is IPv6's only: 0.0.0.0 of the port may be another's
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if port.proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((port.host_ip, port.host_port))
        if port.proto == "tcp":
            sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        where = f"[{port.host_ip}]" if family == socket.AF_INET6 else port.host_ip
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc)).lower()
        raise Conflict(f"failed to bind host port {where}:{port.host_port}/{port.proto}: {reason}") from None
    return sock


async def _relay(port: ProxiedPort, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One TCP connection: to the container, then copied both ways until both sides are done."""
    try:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(port.target_ip, port.target_port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            log.debug("proxy %s: connecting to the container: %s", port, exc)
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer, writer), _pipe(up_reader, writer, up_writer))
        finally:
            up_writer.close()
    finally:
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, back: asyncio.StreamWriter) -> None:
    """Copy until end of file, then half-close; an error closes both directions."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()
        back.close()


class _UdpListener(asyncio.DatagramProtocol):
    """The host side of a UDP port: a flow (its own socket to the container) per client address."""

    def __init__(self, port: ProxiedPort) -> None:
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: OrderedDict[Any, _UdpFlow] = OrderedDict()  # least recently used first
        self.opening: set[asyncio.Task[None]] = set()  # the flows' open() in progress (kept referenced)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            while len(self.flows) >= MAX_UDP_FLOWS:
                next(iter(self.flows.values())).close()
            flow = self.flows[addr] = _UdpFlow(self, addr)
            task = asyncio.get_running_loop().create_task(flow.open())
            self.opening.add(task)
            task.add_done_callback(self.opening.discard)
        else:
            self.flows.move_to_end(addr)
        flow.send(data)

    def error_received(self, exc: Exception) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        for flow in list(self.flows.values()):
            flow.close()
        for task in list(self.opening):
            task.cancel()


class _UdpFlow(asyncio.DatagramProtocol):
    def __init__(self, listener: _UdpListener, client: Any) -> None:
        self.listener = listener
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    async def open(self) -> None:
        p = self.listener.port
        try:
            await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, remote_addr=(p.target_ip,
                                                                                                 p.target_port))
        except OSError as exc:
            log.debug("proxy %s: %s", p, exc)
            self.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = datagrams = cast(asyncio.DatagramTransport, transport)
        if self.closed:
            transport.close()
            return
        for data in self.pending:
            datagrams.sendto(data)
        self.pending.clear()

    def send(self, data: bytes) -> None:
        self._touch()
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.pending) < 64:
            self.pending.append(data)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._touch()
        if self.listener.flows.get(self.client) is self:
            self.listener.flows.move_to_end(self.client)
        if self.listener.transport is not None:
            self.listener.transport.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        pass  # the container's port unreachable: the client's next datagram tries again

    def _touch(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(UDP_IDLE, self.close)

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()
        if self.listener.flows.get(self.client) is self:
            del self.listener.flows[self.client]
