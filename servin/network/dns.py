"""The embedded DNS server of user-defined networks.

Containers on a user-defined network get `nameserver <the network's gateway>` in resolv.conf.
A DNAT rule on the bridge (`rules.dns_rules`) sends what they ask the gateway on port 53 to this
server, which listens on 127.0.0.1 (UDP and TCP, random ports) in the daemon: no socket or rule
inside the containers, nothing added to their start. The client's source address says who asks;
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A, DNSError, DNSRecord

log = logging.getLogger(__name__)

TTL = 600
FORWARD_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class View:
    """What one container's resolver knows."""

    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # lower-case name -> IPv4s and IPv6s
    reverse: Mapping[str, str] = field(default_factory=dict)  # address -> name
    upstreams: tuple[str, ...] = ()  # empty: nothing is forwarded (internal networks)


ViewFn = Callable[[str], "View | None"]


class DnsServer:
    def __init__(self, view: ViewFn, *, timeout: float = FORWARD_TIMEOUT) -> None:
        self._view = view
        self._timeout = timeout
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self.ports: tuple[int, int] | None = None  # (udp, tcp) once started
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1") -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        server = self

        class _Udp(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                task = asyncio.ensure_future(server._answer_udp(data, addr))
                server._tasks.add(task)
                task.add_done_callback(server._tasks.discard)

        transport, _ = await loop.create_datagram_endpoint(_Udp, local_addr=(host, 0))
        self._udp = transport
        self._tcp = await asyncio.start_server(self._serve_tcp, host, 0)
        udp_port = transport.get_extra_info("sockname")[1]
        tcp_port = self._tcp.sockets[0].getsockname()[1]
        self.ports = (udp_port, tcp_port)
        return self.ports

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def _answer_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.answer(data, addr[0], tcp=False)
        if reply is not None and self._udp is not None:
            self._udp.sendto(reply, addr)

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
