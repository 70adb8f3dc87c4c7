"""The daemon's own TCP ports: which addresses its `tcp://` listeners take, reserved against
containers' published ports, and the listeners a running container's published port already holds."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from servin import errors
from servin.daemon import config
from servin.network.portmap import ReservedPort

log = logging.getLogger("servin")


def tcp_address(host: str, *, tls: bool = False) -> tuple[str, int] | None:
    """The IPv4 address ("" = every address) and port a `tcp://HOST[:PORT]` listener takes; None
    for other schemes or a bad port. The host is completed as config.resolve does (no port: 2376 with
    TLS, 2375 without; no host: 127.0.0.1). `localhost` and `::1` are 127.0.0.1, `::` is every
    address, and so is a name that is no address (assumed the widest, so no container can take the
    port under it)."""
    if not host.startswith("tcp://"):
        return None
    try:
        h, port = config.tcp_address(config.with_port(host, tls))
    except (config.ConfigError, ValueError):
        return None  # not a listener address at all: config validation refuses it
    if h in ("localhost", "::1"):
        return "127.0.0.1", port
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return "", port
    if ip.version == 6 or ip.is_unspecified:
        return "", port  # an IPv6 listener on :: takes IPv4 too; any other IPv6 address: the widest
    return str(ip), port


def reserved_ports(hosts: Iterable[str], *, tls: bool = False) -> tuple[ReservedPort, ...]:
    """The TCP ports the daemon's listeners reserve against published ports."""
    out: list[ReservedPort] = []
    for h in hosts:
        addr = tcp_address(h, tls=tls)
        if addr is not None:
            out.append(ReservedPort(host_ip=addr[0], port=addr[1], reason=f"the daemon listens on {h}"))
    return tuple(out)


def clear_of_containers(hosts: Iterable[str], publishers: Callable[[str, int], list[str]],
                        name_of: Callable[[str], str], *, tls: bool = False) -> list[str]:
    """The listeners to open: a TCP listener whose address and port a running container publishes
    is refused with an error naming the container, the others are kept."""
    keep: list[str] = []
    for h in hosts:
        addr = tcp_address(h, tls=tls)
        holders = publishers(*addr) if addr is not None else []
        if holders:
            names = ", ".join(name_of(c) for c in holders)
            log.error("not listening on %s: port %d is published by container %s", h, addr[1] if addr else 0, names)
            continue
        keep.append(h)
    return keep


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def management_only(hosts: Iterable[str], *, tls: bool = False) -> Any:
    """A middleware that answers only the management API (/api/) on the dedicated `management-hosts`
    listeners; Docker's paths there are 404."""
    unix = {h[len("unix://"):] for h in hosts if h.startswith("unix://")}
    tcp = [a for a in (tcp_address(h, tls=tls) for h in hosts) if a is not None]

    def dedicated(request: web.Request) -> bool:
        sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
        if isinstance(sockname, str):
            return sockname in unix
        if not isinstance(sockname, tuple):
            return False
        ip, port = sockname[0], sockname[1]
        return any(port == p and (not a or a == ip) for a, p in tcp)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/") and dedicated(request):
            raise errors.NotFound(f"page not found: {request.path} (this listener serves the management API, "
                                  "/api/v1, only)")
        return await handler(request)

    return middleware
