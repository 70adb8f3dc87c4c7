"""The listeners under abuse: a deadline for each request's headers (slowloris), a cap on the
connections one client holds open, a bounded log when accept() runs out of descriptors, and the
open-files limit raised to its hard limit at start."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import logging
import resource
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("servin")

# An idle keep-alive connection is closed after this long (aiohttp's default is an hour; dockerd has
# none). Clients reconnect on their next request.
KEEPALIVE_TIMEOUT = 120.0
# A refused connection gets this long to send its request and read the 503 before it is closed.
REFUSAL_GRACE = 2.0
# Refusals of one client, and accept() failures, are logged at most once per interval, with a count.
LOG_INTERVAL = 60.0
_ACCEPT_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    read_header_timeout: float  # seconds a request's headers may take to arrive; 0: no limit
    max_per_client: int  # open connections per client (a TCP address; a non-root UID on a unix socket); 0: no cap


class Every:
    """A log line's throttle: tick() counts an occurrence and returns how many there were since the
    last line when one is due (the first at once, then at most one per interval), else 0."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None
        self._count = 0

    def tick(self) -> int:
        self._count += 1
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            return 0
        count, self._last, self._count = self._count, now, 0
        return count


class Clients:
    """The open connections of each client, the cap on them, and a log of refusals that says once
    per interval per client how many were refused."""

    def __init__(self, max_per_client: int, *, clock: Callable[[], float] = time.monotonic,
                 interval: float = LOG_INTERVAL) -> None:
        self.max_per_client = max_per_client
        self._clock = clock
        self._interval = interval
        self._open: dict[str, int] = {}
        self._refused: dict[str, Every] = {}

    def open(self, client: str) -> int:
        return self._open.get(client, 0)

    def admit(self, client: str) -> bool:
        """Count a new connection from `client`, or refuse it (False) when it has the most it may."""
        n = self._open.get(client, 0)
        if self.max_per_client and n >= self.max_per_client:
            self._log_refusal(client)
            return False
        self._open[client] = n + 1
        return True

    def release(self, client: str) -> None:
        n = self._open.get(client, 0) - 1
        if n > 0:
            self._open[client] = n
        else:
            self._open.pop(client, None)

    def message(self, client: str) -> str:
        return (f"too many connections from {client}: {self.open(client)} open, the most one client may hold "
                f"(max-connections-per-client)")

    def _log_refusal(self, client: str) -> None:
        every = self._refused.get(client)
        if every is None:
            if len(self._refused) > 1024:  # clients at the cap are few: each holds max_per_client descriptors
                self._refused.clear()
            every = self._refused[client] = Every(self._interval, self._clock)
        count = every.tick()
        if count:
            log.warning("refusing connections from %s: %d open, max-connections-per-client is %d "
                        "(%d refused since the last report)", client, self.open(client), self.max_per_client, count)


def client_of(transport: asyncio.BaseTransport) -> str | None:
    """Whom a connection is counted against: a TCP peer's address (an IPv4-mapped IPv6 address as
    IPv4), "uid N" for a unix socket peer; None (no cap) for root on a unix socket, who can do
    anything to the daemon anyway, and for a peer that cannot be told."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    if sock.family == socket.AF_UNIX:
        try:
            _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                  struct.calcsize("3i")))
        except OSError:
            return None
        return None if uid == 0 else f"uid {uid}"
    peer = transport.get_extra_info("peername")
    if not peer:
        return None
    try:
        ip = ipaddress.ip_address(peer[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


class _Refusal(asyncio.Protocol):
    """A connection over the cap: its first bytes are answered with a 503 in Docker's body and the
    connection is closed; what the client sends is read to its end, so the close is not a reset that
    could beat the answer. Closed after REFUSAL_GRACE whatever the client does."""

    def __init__(self, message: str) -> None:
        body = json.dumps({"message": message}).encode() + b"\n"
        self._answer = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_GRACE, transport.close)

    def data_received(self, data: bytes) -> None:
        t = self._transport
        if not self._answer or not isinstance(t, asyncio.WriteTransport) or t.is_closing():
            return
        t.write(self._answer)
        self._answer = b""
        if t.can_write_eof():
            t.write_eof()

    def eof_received(self) -> bool:
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


class _GuardedHandler(RequestHandler):
    """aiohttp's connection handler with the limits: a connection over its client's cap is handed
    to a _Refusal; a request whose headers have not all arrived `read_header_timeout` seconds after
    the connection was accepted, or after its first byte on a kept-alive connection, is cut off."""

    def __init__(self, manager: web.Server, clients: Clients, limits: ConnectionLimits, slow: Every,
                 **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._clients = clients
        self._slow = slow
        self._header_timeout = limits.read_header_timeout
        self._client: str | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._answered = 0  # requests answered; aiohttp's _request_count counts those whose headers arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        client = client_of(transport)
        if client is not None and not self._clients.admit(client):
            refusal = _Refusal(self._clients.message(client))
            transport.set_protocol(refusal)
            refusal.connection_made(transport)
            return
        self._client = client
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        if self._client is not None:
            self._clients.release(self._client)
            self._client = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._request_count == self._answered:  # nothing parsed waits for an answer: a request begins
            self._arm()
        super().data_received(data)
        if self._request_count > self._answered:  # its headers are in
            self._disarm()

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._answered += 1

    def _arm(self) -> None:
        if self._header_timeout > 0 and self._header_timer is None:
            self._header_timer = asyncio.get_running_loop().call_later(self._header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        count = self._slow.tick()
        if count:
            log.info("closed %d connection(s) whose request headers took longer than %ss (read-header-timeout), "
                     "the last from %s", count, self._header_timeout, self._client or "a local client")
        self.force_close()


class _GuardedServer(web.Server):
    """The app's aiohttp server, making _GuardedHandlers."""

    def __init__(self, app_server: web.Server, clients: Clients, limits: ConnectionLimits) -> None:
        # the app server's handler settings (debug, access log, keep-alive) live in its _kwargs
        super().__init__(app_server.request_handler, request_factory=app_server.request_factory,
                         handler_cancellation=app_server.handler_cancellation, **app_server._kwargs)
        self._clients = clients
        self._limits = limits
        self._slow = Every(LOG_INTERVAL)

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, self._clients, self._limits, self._slow, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose every listener applies `limits`; one count of clients across listeners."""

    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, handle_signals=False, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT, **kwargs)
        self.limits = limits
        self.clients = Clients(limits.max_per_client)

    async def _make_server(self) -> web.Server:
        return _GuardedServer(await super()._make_server(), self.clients, self.limits)


class AcceptErrors:
    """The event loop's exception handler: accept() failing for want of descriptors (asyncio retries
    every second, and logs each time with a traceback) is logged once per interval with a count;
    anything else is logged as asyncio does."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, interval: float = LOG_INTERVAL) -> None:
        self._every = Every(interval, clock)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not (isinstance(exc, OSError) and exc.errno in _ACCEPT_ERRNOS and "accept" in context.get("message", "")):
            loop.default_exception_handler(context)
            return
        count = self._every.tick()
        if count:
            log.error("accepting connections failed %d time(s) in the last %ds: %s (open files limit %d); "
                      "new connections wait until descriptors are free", count, self._every.interval,
                      exc.strerror, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def raise_open_files_limit() -> int:
    """The soft RLIMIT_NOFILE raised to the hard one, as dockerd's unit does with LimitNOFILE (and
    Go's runtime for every program); returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, hard, exc)
    return soft
