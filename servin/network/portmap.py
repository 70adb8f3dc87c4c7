"""Published ports: the ports a container asks to publish, `-p` specs, and the host-port allocator. Pure.

The allocator's state is derived from the persisted endpoints (`EndpointRecord.ports`), so after
a crash it is rebuilt and no host port is handed out twice. As dockerd's allocator, the families are
apart: 0.0.0.0 takes every IPv4 address and conflicts with each of them, :: every IPv6 one; 0.0.0.0
and :: of one port do not conflict ("" in records of older versions: every address of both).
Reserved ports (the daemon's own TCP listeners) are never handed out: a fixed binding on one is
refused, a range or ephemeral pick skips it.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from servin.errors import Conflict, InvalidArgument, Unavailable

EPHEMERAL = (49153, 60999)  # Docker's default when /proc's ip_local_port_range is not read
PROTOS = ("tcp", "udp", "sctp")


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedPort:
    """A container port to publish, as the container asks for it (a HostConfig.PortBindings entry):
    on `host_ip` as given ("" or "0.0.0.0": every address), at `host_port`, or at one free port of
    `host_port`-`host_port_end`, or at any free port (0)."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0  # 0: any free port
    host_port_end: int = 0  # the last port of a range "8000-8010" (0: no range)

    @property
    def port_spec(self) -> str:
        """The container port as Docker names it, "80/tcp"."""
        return f"{self.container_port}/{self.protocol}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservedPort:
    """A TCP port on `host_ip` ("" = every address) that no binding may take, and why."""

    host_ip: str
    port: int
    reason: str  # "the daemon listens on tcp://127.0.0.1:2375"


ANY_ADDRESS = ("0.0.0.0", "::")  # every address of one family


def overlaps(a: str, b: str) -> bool:
    """Whether two host addresses share a socket address: "" is every address of both families,
    0.0.0.0 every IPv4 one and :: every IPv6 one (they meet each address of their family)."""
    if a == "" or b == "":
        return True
    if (":" in a) != (":" in b):
        return False
    return a in ANY_ADDRESS or b in ANY_ADDRESS or a == b


def join_host_port(ip: str, port: int) -> str:
    """Go's `ip:port` as dockerd's messages print it (no brackets: ":::8080")."""
    return f"{ip or '0.0.0.0'}:{port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PortRequest:
    container_port: int
    proto: str = "tcp"
    host_ip: str = ""  # "" = all addresses of both families (0.0.0.0: IPv4's, ::: IPv6's)
    host_port: int = 0  # 0 = any from `host_range` (or the ephemeral range)
    host_range: tuple[int, int] | None = None  # "8000-8010:80": one free port of the range


def parse_port(s: str, what: str) -> int:
    try:
        n = int(s)
    except ValueError:
        raise InvalidArgument(f"invalid {what} port: {s!r}") from None
    if not 0 < n < 65536:
        raise InvalidArgument(f"invalid {what} port: {s}")
    return n


def parse_port_range(s: str, what: str) -> tuple[int, int]:
    """"8080" or "8000-8010": the first and last port."""
    lo, sep, hi = s.partition("-")
    a = parse_port(lo, what)
    b = parse_port(hi, what) if sep else a
    if b < a:
        raise InvalidArgument(f"invalid {what} port range: {s}")
    return a, b


def parse_publish(spec: str) -> list[PortRequest]:
    """`-p [ip:][host[-host]:]container[-container][/proto]`, as the docker CLI reads it."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOS:
        raise InvalidArgument(f"invalid proto: {proto}")
    host_ip = ""
    if rest.startswith("["):  # [::]:8080:80, an IPv6 host address
        bracketed, sep, rest = rest[1:].partition("]:")
        try:
            host_ip = str(ipaddress.IPv6Address(bracketed))
        except ValueError:
            raise InvalidArgument(f"invalid IP address: {bracketed}") from None
        if not sep or rest.count(":") != 1:
            raise InvalidArgument(f"invalid port format: {spec}")
    parts = rest.split(":")
    if len(parts) == 1:
        host, cont = "", parts[0]
    elif len(parts) == 2:
        host, cont = parts
    elif len(parts) == 3:
        host_ip, host, cont = parts
    else:
        raise InvalidArgument(f"invalid port format: {spec}")
    if host_ip and ":" not in host_ip:
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address: {host_ip}") from None
    c_lo, c_hi = parse_port_range(cont, "container")
    if not host:
        return [PortRequest(container_port=p, proto=proto, host_ip=host_ip) for p in range(c_lo, c_hi + 1)]
    h_lo, h_hi = parse_port_range(host, "host")
    if c_hi - c_lo == h_hi - h_lo:
        return [PortRequest(container_port=c_lo + i, proto=proto, host_ip=host_ip, host_port=h_lo + i)
                for i in range(c_hi - c_lo + 1)]
    if c_lo == c_hi:
        return [PortRequest(container_port=c_lo, proto=proto, host_ip=host_ip, host_range=(h_lo, h_hi))]
    raise InvalidArgument(f"invalid ranges specified for container and host ports: {spec}")


def published_port(port: str, *, host_ip: str = "", host_port: str = "") -> PublishedPort:
    """One binding from its text: `port` "80/tcp" (or "80": tcp), `host_port` "", "8080" or a
    range "8000-8010" (spaces around it ignored); `host_ip` is kept as given."""
    number, _, protocol = port.partition("/")
    container_port = parse_port(number, "container")
    host_port = host_port.strip()
    if not host_port:
        return PublishedPort(container_port=container_port, protocol=protocol or "tcp", host_ip=host_ip)
    lo, hi = parse_port_range(host_port, "host")
    return PublishedPort(container_port=container_port, protocol=protocol or "tcp", host_ip=host_ip, host_port=lo,
                         host_port_end=hi if "-" in host_port else 0)


def requests(published: Iterable[PublishedPort]) -> list[PortRequest]:
    """What to claim on the host for a container's bindings, by container port ("80/tcp") and in
    the order given for each ("0.0.0.0" is IPv4's every address only, as in dockerd)."""
    out: list[PortRequest] = []
    for p in sorted(published, key=lambda p: p.port_spec):
        ip = p.host_ip.strip()
        if p.host_port_end and p.host_port_end != p.host_port:
            out.append(PortRequest(container_port=p.container_port, proto=p.protocol, host_ip=ip,
                                   host_range=(p.host_port, p.host_port_end)))
        else:
            out.append(PortRequest(container_port=p.container_port, proto=p.protocol, host_ip=ip,
                                   host_port=p.host_port))
    return out


def publish_all(exposed: Iterable[str]) -> list[PortRequest]:
    """`-P`: every exposed port ("80/tcp") on a random host port."""
    out = []
    for key in sorted(exposed):
        port_s, _, proto = key.partition("/")
        out.append(PortRequest(container_port=parse_port(port_s, "container"), proto=proto or "tcp"))
    return out


class PortAllocator:
    """Host ports in use, per protocol and address. `is_free` (optional) may veto a port that
    something else on the host already uses (e.g. by trying to bind it); `reserved` TCP ports are
    never handed out (records restored by `claim` are not checked against them)."""

    def __init__(self, ephemeral: tuple[int, int] = EPHEMERAL,
                 is_free: Callable[[str, str, int], bool] | None = None,
                 rng: random.Random | None = None, reserved: Iterable[ReservedPort] = ()) -> None:
        self.ephemeral = ephemeral
        self.is_free = is_free
        self.rng = rng or random.Random()
        self.used: dict[tuple[str, int], set[str]] = {}  # (proto, port) -> host ips ("" = all)
        self.reserved = tuple(reserved)

    def reservation(self, proto: str, ip: str, port: int) -> ReservedPort | None:
        """The reservation a binding on `ip`:`port` would take, if any (TCP only)."""
        if proto != "tcp":
            return None
        return next((r for r in self.reserved if r.port == port and overlaps(r.host_ip, ip)), None)

    def _holder(self, proto: str, ip: str, port: int) -> str | None:
        """The address already holding a port `ip`:`port` would meet (None: free)."""
        for held in self.used.get((proto, port), ()):
            if overlaps(ip, held):
                return held or "0.0.0.0"
        return None

    def claim(self, proto: str, ip: str, port: int) -> None:
        """Mark a port used (a binding loaded from the store, or a fixed -p host port)."""
        held = self._holder(proto, ip, port)
        if held is not None:
            raise Conflict(f"Bind for {join_host_port(held, port)} failed: port is already allocated")
        self.used.setdefault((proto, port), set()).add(ip)

    def _usable(self, proto: str, ips: Sequence[str], port: int) -> bool:
        return all(self._holder(proto, ip, port) is None and self.reservation(proto, ip, port) is None
                   and (self.is_free is None or self.is_free(proto, ip, port)) for ip in ips)

    def allocate(self, req: PortRequest, host_ips: Sequence[str] | None = None) -> int:
        """One host port for `req`, free on each of `host_ips` (default: the request's address), as
        dockerd gives a binding's IPv4 and IPv6 addresses the same port; claimed on each."""
        ips = list(host_ips) if host_ips is not None else [req.host_ip]
        if req.host_port:
            for ip in ips:
                held = self.reservation(req.proto, ip, req.host_port)
                if held is not None:
                    raise Conflict(f"Bind for {join_host_port(ip, req.host_port)} failed: "
                                   f"port is already allocated: {held.reason}")
            for ip in ips:
                if (holder := self._holder(req.proto, ip, req.host_port)) is not None:
                    raise Conflict(f"Bind for {join_host_port(holder, req.host_port)} failed: "
                                   "port is already allocated")
            for ip in ips:
                if self.is_free is not None and not self.is_free(req.proto, ip, req.host_port):
                    raise Conflict(f"Bind for {join_host_port(ip, req.host_port)} failed: "
                                   "port is already in use on the host")
            self._claim_all(req.proto, ips, req.host_port)
            return req.host_port
        lo, hi = req.host_range or self.ephemeral
        span = hi - lo + 1
        start = self.rng.randrange(span) if req.host_range is None else 0
        for i in range(span):
            port = lo + (start + i) % span
            if self._usable(req.proto, ips, port):
                self._claim_all(req.proto, ips, port)
                return port
        reasons: dict[str, None] = {}  # once each, in order
        for p in range(lo, hi + 1):
            for ip in ips:
                if (r := self.reservation(req.proto, ip, p)) is not None:
                    reasons[r.reason] = None
        reason = f" ({'; '.join(reasons)})" if reasons else ""
        raise Unavailable(f"all ports are allocated in {lo}-{hi}/{req.proto}{reason}")

    def _claim_all(self, proto: str, ips: Sequence[str], port: int) -> None:
        for ip in ips:
            self.used.setdefault((proto, port), set()).add(ip)

    def release(self, proto: str, ip: str, port: int) -> None:
        ips = self.used.get((proto, port))
        if ips is not None:
            ips.discard(ip)
            if not ips:
                del self.used[(proto, port)]
