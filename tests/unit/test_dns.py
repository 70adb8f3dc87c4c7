"""The embedded DNS server's answers, against a view the test makes (no root, loopback only)."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

import pytest
from dnslib import RCODE, DNSRecord

from servin.network.dns import DnsServer, View

pytestmark = pytest.mark.unit

VIEW = View(names={"web": ("10.9.0.2",), "www": ("10.9.0.2",), "pool": ("10.9.0.3", "10.9.0.4")},
            reverse={"10.9.0.2": "web.appnet"}, upstreams=())


def ask(server: DnsServer, name: str, qtype: str = "A", client: str = "10.9.0.5") -> DNSRecord:
    data = DNSRecord.question(name, qtype).pack()
    reply = asyncio.run(server.answer(data, client, tcp=False))
    assert reply is not None
    return DNSRecord.parse(reply)


def views(client: str) -> View | None:
    return VIEW if client.startswith("10.9.") else None


def test_known_names_answer_with_their_addresses() -> None:
    server = DnsServer(views)
    r = ask(server, "web")
    assert r.header.rcode == RCODE.NOERROR and [str(a.rdata) for a in r.rr] == ["10.9.0.2"]
    assert r.rr[0].ttl == 600
    assert sorted(str(a.rdata) for a in ask(server, "POOL.").rr) == ["10.9.0.3", "10.9.0.4"]
    orders = {tuple(str(a.rdata) for a in ask(server, "pool").rr) for _ in range(40)}
    assert len(orders) == 2  # round robin: both orders come up
    aaaa = ask(server, "web", "AAAA")  # known, but no IPv6: an empty answer, not NXDOMAIN
    assert aaaa.header.rcode == RCODE.NOERROR and aaaa.rr == []
    ptr = ask(server, "2.0.9.10.in-addr.arpa", "PTR")
    assert [str(a.rdata) for a in ptr.rr] == ["web.appnet."]


def test_strangers_are_refused_and_unknown_names_fail_without_upstreams() -> None:
    server = DnsServer(views)
    assert ask(server, "web", client="192.168.1.1").header.rcode == RCODE.REFUSED
    assert ask(server, "example.com").header.rcode == RCODE.SERVFAIL
    assert asyncio.run(server.answer(b"\x00garbage", "10.9.0.5", tcp=False)) is None


def test_other_names_are_forwarded_over_udp_and_tcp() -> None:
    async def scenario() -> tuple[DNSRecord, DNSRecord, DNSRecord]:
        upstream = DnsServer(lambda ip: View(names={"example.com": ("192.0.2.1",)}))
        await upstream.start("127.0.0.1")
        assert upstream.ports is not None
        # forward to the upstream: port 53 is fixed in _forward, so route through a local relay port
        server = DnsServer(lambda ip: View(upstreams=("127.0.0.1",)))
        import servin.network.dns as dns_mod

        real = dns_mod._forward

        async def to_upstream(addr: str, data: bytes, *, tcp: bool) -> bytes:
            loop = asyncio.get_running_loop()
            if tcp:
                reader, writer = await asyncio.open_connection(addr, upstream.ports[1])
                writer.write(struct.pack("!H", len(data)) + data)
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                body = await reader.readexactly(size)
                writer.close()
                return body
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                await loop.sock_connect(s, (addr, upstream.ports[0]))
                await loop.sock_sendall(s, data)
                return await loop.sock_recv(s, 65535)

        dns_mod._forward = to_upstream
        try:
            q = DNSRecord.question("example.com")
            udp = DNSRecord.parse(await server.answer(q.pack(), "10.0.0.9", tcp=False))
            tcp = DNSRecord.parse(await server.answer(q.pack(), "10.0.0.9", tcp=True))
            # and the server's own TCP listener frames answers with their length
            await server.start("127.0.0.1")
            reader, writer = await asyncio.open_connection("127.0.0.1", server.ports[1])
            data = DNSRecord.question("example.com").pack()
            writer.write(struct.pack("!H", len(data)) + data)
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            framed = DNSRecord.parse(await reader.readexactly(size))
            writer.close()
        finally:
            dns_mod._forward = real
            await server.close()
            await upstream.close()
        return udp, tcp, framed

    udp, tcp, framed = asyncio.run(scenario())
    for r in (udp, tcp, framed):
        assert [str(a.rdata) for a in r.rr] == ["192.0.2.1"]
    assert udp.header.id == tcp.header.id  # the client's query id comes back


def test_forwarding_to_a_dead_upstream_fails_in_time() -> None:
    server = DnsServer(lambda ip: View(upstreams=("127.255.255.254",)), timeout=0.5)  # nothing listens there
    r = ask(server, "example.com")
    assert r.header.rcode == RCODE.SERVFAIL


def test_a_gateway_listener_answers_on_its_address_and_device_only() -> None:
    """The IPv6 gateway listener: bound to the address and the device it is given (here ::1 on lo),
    answering as the loopback one; reopened only when either changes; closed with the network."""
    async def scenario() -> None:
        server = DnsServer(lambda ip: VIEW if ip == "::1" else None)
        await server.start("127.0.0.1")
        try:
            try:
                udp, tcp = await asyncio.to_thread(server.open_gateway, "net1", device="lo", address="::1")
            except PermissionError:
                pytest.skip("SO_BINDTODEVICE needs CAP_NET_RAW")
            assert await asyncio.to_thread(server.open_gateway, "net1", device="lo", address="::1") == (udp, tcp)
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                await loop.sock_connect(s, ("::1", udp))
                await loop.sock_sendall(s, DNSRecord.question("web").pack())
                reply = DNSRecord.parse(await asyncio.wait_for(loop.sock_recv(s, 65535), 5))
            assert [str(a.rdata) for a in reply.rr] == ["10.9.0.2"]
            reader, writer = await asyncio.open_connection("::1", tcp)
            q = DNSRecord.question("www").pack()
            writer.write(struct.pack("!H", len(q)) + q)
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            assert [str(a.rdata) for a in DNSRecord.parse(await reader.readexactly(size)).rr] == ["10.9.0.2"]
            writer.close()
            server.close_gateway("net1")
            await asyncio.sleep(0.1)
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                assert s.connect_ex(("::1", tcp)) != 0  # gone with the network
        finally:
            await server.close()

    asyncio.run(scenario())


def test_a_gateway_listener_that_fails_to_start_closes_both_sockets_and_says_so(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import servin.network.dns as dns_mod

    async def refused(*args: object, **kwargs: object) -> None:
        raise OSError("no TCP for you")

    async def scenario() -> dns_mod._Listener:
        server = DnsServer(views)
        listener = dns_mod._Listener(*dns_mod._sockets("127.0.0.1"))
        monkeypatch.setattr(dns_mod.asyncio, "start_server", refused)
        await server._replace(None, listener)  # the task open_gateway spawns: it must not raise
        return listener

    with caplog.at_level(logging.ERROR, logger="servin.network.dns"):
        listener = asyncio.run(scenario())
    assert listener.udp_transport is not None and listener.udp_transport.is_closing()
    assert listener.udp.fileno() == -1 and listener.tcp.fileno() == -1
    assert "serving on 127.0.0.1 failed" in caplog.text and "no TCP for you" in caplog.text
