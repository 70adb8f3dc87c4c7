"""The embedded DNS server of user-defined networks.

Containers on a user-defined network get `nameserver <the network's gateway>` in resolv.conf
(its IPv4 gateway; the IPv6 one on an IPv6-only network). A DNAT rule on the bridge
(`rules.dns_rules`) sends what they ask the gateway on port 53 to this server in the daemon: no
socket or rule inside the containers, nothing added to their start.
- IPv4: one listener on 127.0.0.1 (UDP and TCP, random ports) for every network, reached through
  `route_localnet` on the bridges.
- IPv6 has no `route_localnet` (a packet from a bridge is never delivered to ::1): each network
  with IPv6 gets its own listener on its IPv6 gateway address, random ports, bound to its bridge
  (SO_BINDTODEVICE: nothing from any other interface reaches it), opened when the network's
  rules are made (`dns_rules_of`) and closed by `close_gateway` when the network goes.
The client's source address says who asks;
`view(client_ip)` answers with the names that container may see: container names, aliases and
short IDs on the user-defined networks it shares with them (never other networks', never the
default bridge's). Everything else goes to the container's `--dns` servers or the host's (not on
internal networks). Answers carry TTL 600 as dockerd's: A records of a name's IPv4 addresses,
AAAA of its IPv6 ones (networks with IPv6; an empty answer without), PTR for both.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import struct
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A, DNSError, DNSRecord

from servin.network import rules as R
from servin.network.firewall import FamilyRules, rules_for
from servin.network.store import NetworkRecord

log = logging.getLogger(__name__)

TTL = 600
FORWARD_TIMEOUT = 3.0
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # for IPv6 sockets too (inet6_bind honours it)


@dataclass(frozen=True, slots=True)
class View:
    """What one container's resolver knows."""

    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # lower-case name -> IPv4s and IPv6s
    reverse: Mapping[str, str] = field(default_factory=dict)  # address -> name
    upstreams: tuple[str, ...] = ()  # empty: nothing is forwarded (internal networks)


ViewFn = Callable[[str], "View | None"]


class EmbeddedDns(Protocol):
    """The DNS server as the network service sees it: the IPv4 listener's ports, and the
    listeners on IPv6 gateways it opens and closes."""

    ports: tuple[int, int] | None

    def open_gateway(self, key: str, *, device: str, address: str) -> tuple[int, int]: ...
    def close_gateway(self, key: str) -> None: ...


def dns_rules_of(n: NetworkRecord, dns: EmbeddedDns | None) -> FamilyRules:
    """The rules that take a user-defined network's DNS questions to the server: from its IPv4
    gateway to the loopback listener, from its IPv6 gateway to that gateway's own listener, opened
    here the first time (a network's rules are made only while its bridge exists)."""
    out = FamilyRules()
    if dns is None or not n.bridge or n.name == "bridge":  # the default bridge has none, as dockerd's
        return out
    if n.gateway and dns.ports is not None:
        out += rules_for(R.dns_rules(bridge=n.bridge, gateway=n.gateway, udp_port=dns.ports[0],
                                     tcp_port=dns.ports[1]), ipv6=False)
    if n.gateway6:
        udp, tcp = dns.open_gateway(n.id, device=n.bridge, address=n.gateway6)
        out += rules_for(R.dns_rules(bridge=n.bridge, gateway=n.gateway6, udp_port=udp, tcp_port=tcp), ipv6=True)
    return out


class _Listener:
    """One UDP and one TCP socket the server answers on (their transports once the loop has them)."""

    def __init__(self, udp: socket.socket, tcp: socket.socket) -> None:
        self.udp, self.tcp = udp, tcp
        self.address: str = udp.getsockname()[0]
        self.ports: tuple[int, int] = (udp.getsockname()[1], tcp.getsockname()[1])
        self.udp_transport: asyncio.DatagramTransport | None = None
        self.tcp_server: asyncio.base_events.Server | None = None
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        if self.udp_transport is not None:
            self.udp_transport.close()
        else:
            self.udp.close()
        if self.tcp_server is not None:
            self.tcp_server.close()
            await self.tcp_server.wait_closed()
        else:
            self.tcp.close()


class DnsServer:
    def __init__(self, view: ViewFn, *, timeout: float = FORWARD_TIMEOUT) -> None:
        self._view = view
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: _Listener | None = None
        self._gateways: dict[str, tuple[str, str, _Listener]] = {}  # key -> (device, address, listener)
        self._lock = threading.Lock()  # _gateways: opened and closed from the network service's threads
        self.ports: tuple[int, int] | None = None  # (udp, tcp) once started
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1") -> tuple[int, int]:
        """The listener on `host` (the IPv4 one); afterwards gateways may be opened from any thread."""
        self._loop = asyncio.get_running_loop()
        self._main = _Listener(*_sockets(host))
        await self._serve(self._main)
        self.ports = self._main.ports
        return self.ports

    def open_gateway(self, key: str, *, device: str, address: str) -> tuple[int, int]:
        """A listener on `address` (an IPv6 gateway) that only packets arriving on `device` reach;
        its (udp, tcp) ports. Called from a worker thread (or the loop's); again with the same
        device and address it keeps the one it has."""
        if self._loop is None:
            raise RuntimeError("the DNS server is not started")
        with self._lock:
            known = self._gateways.get(key)
            if known is not None and known[:2] == (device, address):
                return known[2].ports
            listener = _Listener(*_sockets(address, device=device))
            self._gateways[key] = (device, address, listener)
        old = known[2] if known is not None else None
        self._loop.call_soon_threadsafe(self._spawn, self._replace(old, listener))
        return listener.ports

    def gateway_ports(self, key: str) -> tuple[int, int] | None:
        with self._lock:
            known = self._gateways.get(key)
        return known[2].ports if known is not None else None

    def close_gateway(self, key: str) -> None:
        with self._lock:
            known = self._gateways.pop(key, None)
        if known is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._spawn, known[2].close())

    async def close(self) -> None:
        with self._lock:
            gateways = [g[2] for g in self._gateways.values()]
            self._gateways.clear()
        for listener in [*([self._main] if self._main is not None else []), *gateways]:
            await listener.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self, old: _Listener | None, new: _Listener) -> None:
        """A gateway's listener (a task no one awaits: a failure is logged here)."""
        if old is not None:
            await old.close()
        try:
            await self._serve(new)
        except Exception as exc:
            log.error("embedded DNS: serving on %s failed, names are not answered there: %s", new.address, exc)

    async def _serve(self, listener: _Listener) -> None:
        """Answer on the listener's sockets (bound already: what arrives meanwhile waits in them)."""
        if listener.closed:
            return
        loop = asyncio.get_running_loop()
        server = self

        class _Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                server._spawn(server._answer_udp(self.transport, data, addr))

        try:
            listener.udp_transport, _ = await loop.create_datagram_endpoint(_Udp, sock=listener.udp)
            listener.tcp_server = await asyncio.start_server(self._serve_tcp, sock=listener.tcp)
        except BaseException as exc:
            closed = listener.closed
            await listener.close()  # both: the UDP transport (or socket) and the TCP socket
            if closed and isinstance(exc, (OSError, ValueError)):
                return  # closed while being set up
            raise
        if listener.closed:  # closed while being set up
            await listener.close()

    async def _answer_udp(self, transport: asyncio.DatagramTransport, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.answer(data, addr[0], tcp=False)
        if reply is not None and not transport.is_closing():
            transport.sendto(reply, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = writer.get_extra_info("peername")[0]
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), 10)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                reply = await self.answer(data, client, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, data: bytes, client_ip: str, *, tcp: bool) -> bytes | None:
        """The reply to one query from `client_ip` (None: drop it)."""
        try:
            query = DNSRecord.parse(data)
        except (DNSError, IndexError, ValueError):
            return None
        if query.header.qr or not query.questions:
            return None
        view = await asyncio.to_thread(self._view, client_ip)
        if view is None:
            return _reply(query, RCODE.REFUSED)
        q = query.questions[0]
        name = str(q.qname).rstrip(".").lower()
        if q.qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY) and name in view.names:
            reply = query.reply()
            # several containers under one alias: shuffled, as dockerd spreads them
            for ip in random.sample(view.names[name], len(view.names[name])):
                v6 = ":" in ip
                if q.qtype == QTYPE.ANY or (q.qtype == QTYPE.AAAA) == v6:
                    reply.add_answer(RR(q.qname, QTYPE.AAAA if v6 else QTYPE.A,
                                        rdata=AAAA(ip) if v6 else A(ip), ttl=TTL))
            return reply.pack()
        if q.qtype == QTYPE.PTR and (addr := _reverse_name(name)) is not None:
            if addr in view.reverse:
                reply = query.reply()
                reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(view.reverse[addr] + "."), ttl=TTL))
                return reply.pack()
        if not view.upstreams:
            return _reply(query, RCODE.SERVFAIL)
        for server in view.upstreams:
            try:
                return await asyncio.wait_for(_forward(server, data, tcp=tcp), self._timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                log.debug("dns: forwarding %s to %s: %s", name, server, exc)
        return _reply(query, RCODE.SERVFAIL)


def _sockets(host: str, *, device: str | None = None) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on `host`, random ports; bound to `device` if given (and
    then to the address even before the kernel has it ready: IP_FREEBIND)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    out: list[socket.socket] = []
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(family, kind)
            out.append(s)
            if device is not None:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
                s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            if kind == socket.SOCK_STREAM:
                s.listen(128)
            s.setblocking(False)
    except BaseException:
        for s in out:
            s.close()
        raise
    return out[0], out[1]


def _reverse_name(name: str) -> str | None:
    """The address a PTR question asks about ("4.3.2.1.in-addr.arpa", or the 32 nibbles of ip6.arpa)."""
    try:
        if name.endswith(".in-addr.arpa"):
            return str(ipaddress.IPv4Address(".".join(reversed(name[: -len(".in-addr.arpa")].split(".")))))
        if name.endswith(".ip6.arpa"):
            nibbles = "".join(reversed(name[: -len(".ip6.arpa")].split(".")))
            return str(ipaddress.IPv6Address(int(nibbles, 16))) if len(nibbles) == 32 else None
    except ValueError:
        return None
    return None


def _reply(query: DNSRecord, rcode: int) -> bytes:
    reply = query.reply()
    reply.header.rcode = rcode
    return reply.pack()


async def _forward(server: str, data: bytes, *, tcp: bool) -> bytes:
    family = socket.AF_INET6 if ipaddress.ip_address(server).version == 6 else socket.AF_INET
    if tcp:
        reader, writer = await asyncio.open_connection(server, 53, family=family)
        try:
            writer.write(struct.pack("!H", len(data)) + data)
            await writer.drain()
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            return await reader.readexactly(size)
        finally:
            writer.close()
    loop = asyncio.get_running_loop()
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_connect(s, (server, 53))
        await loop.sock_sendall(s, data)
        return await loop.sock_recv(s, 65535)
