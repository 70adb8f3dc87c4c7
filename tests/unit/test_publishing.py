"""Published ports by family: the allocator's conflicts (dockerd's wording), the bindings and
routes of an endpoint, the ip6tables jumps, the move to a new gateway endpoint, and the userland
proxy copying TCP and UDP over real loopback sockets (no root needed)."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from servin.errors import Conflict
from servin.kernel.netfilter import Rule
from servin.network import rules as R
from servin.network.firewall import DualStackFirewall
from servin.network.portmap import PortAllocator, PortRequest
from servin.network.proxy import ProxiedPort, UserlandProxy
from servin.network.publishing import Publisher, publishers
from servin.network.service import ipv6_listenable
from servin.network.store import EndpointRecord, NetworkRecord, NetworkStore, PortBinding

pytestmark = pytest.mark.unit

needs_ipv6 = pytest.mark.skipif(not ipv6_listenable(), reason="the host cannot listen on IPv6")


def test_any_address_of_each_family_is_apart_and_empty_is_both() -> None:
    ports = PortAllocator(ephemeral=(50000, 50002), rng=random.Random(1))
    ports.claim("tcp", "0.0.0.0", 8080)
    ports.claim("tcp", "::", 8080)  # another container's [::]: no conflict, as dockerd's
    with pytest.raises(Conflict) as e:
        ports.allocate(PortRequest(container_port=80, host_port=8080), ["0.0.0.0", "::"])
    assert e.value.message == "Bind for 0.0.0.0:8080 failed: port is already allocated"
    ports.release("tcp", "0.0.0.0", 8080)
    with pytest.raises(Conflict) as e:  # dockerd names the address holding it, Go's way
        ports.allocate(PortRequest(container_port=80, host_port=8080), ["0.0.0.0", "::"])
    assert e.value.message == "Bind for :::8080 failed: port is already allocated"
    with pytest.raises(Conflict, match="Bind for :::8080 failed"):
        ports.claim("tcp", "::1", 8080)
    assert ports.allocate(PortRequest(container_port=80, host_ip="127.0.0.1", host_port=8080)) == 8080
    with pytest.raises(Conflict, match="Bind for 127.0.0.1:8080 failed"):
        ports.claim("tcp", "0.0.0.0", 8080)
    # an ephemeral pick takes one port free on both families
    ports.claim("tcp", "::", 50000)
    got = ports.allocate(PortRequest(container_port=80), ["0.0.0.0", "::"])
    assert got != 50000 and {"0.0.0.0", "::"} <= ports.used[("tcp", got)]


class RecordingNetfilter:
    def __init__(self) -> None:
        self.rules: list[Rule] = []

    def add(self, rules: Sequence[Rule]) -> None:
        self.rules += rules

    def delete(self, rules: Sequence[Rule]) -> None:
        self.rules = [r for r in self.rules if r not in rules]


class RecordingProxy(UserlandProxy):
    def __init__(self) -> None:
        super().__init__()
        self.started: dict[tuple[str, str, int], ProxiedPort] = {}

    def start(self, port: ProxiedPort) -> None:
        self.started[port.key] = port

    def stop(self, proto: str, host_ip: str, host_port: int) -> None:
        self.started.pop((proto, host_ip, host_port), None)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Publisher, NetworkStore, RecordingNetfilter, RecordingNetfilter,
                                           RecordingProxy]]:
    store = NetworkStore(tmp_path)
    v4, v6 = RecordingNetfilter(), RecordingNetfilter()
    proxy = RecordingProxy()
    firewall = DualStackFirewall(v4, v6)  # type: ignore[arg-type]
    yield Publisher(store=store, firewall=firewall, ports=PortAllocator(), proxy=proxy, ipv6=True), store, v4, v6, proxy


def network(nid: str, bridge: str) -> NetworkRecord:
    return NetworkRecord(id=nid, name=nid, driver="bridge", subnet=None, gateway=None, ip_range=None,
                         internal=False, labels={}, options={}, created="", bridge=bridge)


def endpoint(nid: str, ip: str | None, ip6: str | None = None) -> EndpointRecord:
    return EndpointRecord(id=f"ep-{nid}", container_id="c1", network_id=nid, ifname="eth0", host_ifname="v",
                          ip=ip, ip6=ip6)


def test_an_ipv4_only_endpoint_takes_both_families_ipv6_by_the_proxy(world) -> None:  # type: ignore[no-untyped-def]
    pub, store, v4, v6, proxy = world
    n = network("n1", "br-1")
    store.put_network(n)
    ep = endpoint("n1", "10.0.0.2")
    ep = EndpointRecord(**{**ep.to_json(), "ports": pub.allocate([PortRequest(container_port=80, host_port=8080),
                                                                   PortRequest(container_port=81, host_ip="0.0.0.0",
                                                                               host_port=8081)], ep)})
    assert [(b.host_ip, b.host_port) for b in ep.ports] == [("0.0.0.0", 8080), ("::", 8080), ("0.0.0.0", 8081)]
    store.put_endpoint(ep)
    pub.start(n, ep)
    assert [r.spec for r in v4.rules if "DNAT" in r.spec] == [
        "! -i br-1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80",
        "! -i br-1 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.0.0.2:81"]
    assert v6.rules == []  # ip6tables untouched: docker-proxy's way, host IPv6 to the container's IPv4
    assert list(proxy.started.values()) == [ProxiedPort(proto="tcp", host_ip="::", host_port=8080,
                                                        target_ip="10.0.0.2", target_port=80)]
    assert publishers(store.endpoints(), "::", 8080) == ["c1"] and publishers(store.endpoints(), "::", 8081) == []
    pub.stop(n, ep)
    assert v4.rules == [] and proxy.started == {}


def test_the_bindings_move_to_the_new_gateway_endpoint_and_back(world) -> None:  # type: ignore[no-untyped-def]
    pub, store, v4, v6, proxy = world
    old_n, new_n = network("old", "br-old"), network("new", "br-new")
    store.put_network(old_n)
    store.put_network(new_n)
    old = endpoint("old", "10.0.0.2")
    old = EndpointRecord(**{**old.to_json(), "ports": pub.allocate([PortRequest(container_port=80)], old)})
    port = old.ports[0].host_port
    store.put_endpoint(old)
    store.put_endpoint(endpoint("new", "10.1.0.2", "fd00:1::2"))
    pub.start(old_n, old)
    pub.move("c1", "new")
    assert [r.spec.split()[-1] for r in v4.rules if "DNAT" in r.spec] == ["10.1.0.2:80"]
    assert [r.spec.split()[-1] for r in v6.rules if "DNAT" in r.spec] == ["[fd00:1::2]:80"]
    assert [p.target_ip for p in proxy.started.values()] == ["fd00:1::2"]  # the proxy serves [::1] only
    assert store.get_endpoint("c1", "old").ports == ()
    assert [(b.host_ip, b.host_port) for b in store.get_endpoint("c1", "new").ports] == [("0.0.0.0", port),
                                                                                         ("::", port)]
    pub.move("c1", "old")
    assert [r.spec.split()[-1] for r in v4.rules if "DNAT" in r.spec] == ["10.0.0.2:80"]
    assert [r for r in v6.rules if "DNAT" in r.spec] == [] and [p.target_ip for p in proxy.started.values()] == [
        "10.0.0.2"]


def test_records_of_older_versions_get_a_binding_per_family(world) -> None:  # type: ignore[no-untyped-def]
    pub = world[0]
    old = EndpointRecord(id="e", container_id="c1", network_id="n", ifname="eth0", host_ifname="v", ip="10.0.0.2",
                         ports=(PortBinding(container_port=80, proto="tcp", host_ip="", host_port=8080),))
    assert [b.host_ip for b in pub.claim(old).ports] == ["0.0.0.0"]  # as it was served: IPv4 only
    with pytest.raises(Conflict):
        pub.ports.claim("tcp", "0.0.0.0", 8080)


def test_ip6tables_output_jump_skips_the_ipv6_loopback() -> None:
    assert [j.line("-I") for j in R.JUMPS6] == [
        "-I PREROUTING -m addrtype --dst-type LOCAL -j SERVIN",
        "-I OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j SERVIN",
        "-I POSTROUTING -j SERVIN-POSTROUTING",
        "-I FORWARD -j SERVIN-FORWARD",
        "-I INPUT -j SERVIN-INPUT",
    ]
    assert [j.line("-D") for j in R.STALE_JUMPS6] == ["-D OUTPUT -m addrtype --dst-type LOCAL -j SERVIN"]


# -- the proxy over real sockets ----------------------------------------------------------------

def _free(family: socket.AddressFamily, kind: socket.SocketKind, host: str) -> int:
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tcp_upper_server() -> tuple[socket.socket, int]:
    """127.0.0.1: answers each connection with what it read, upper-cased, after the client's EOF."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


@needs_ipv6
def test_proxy_copies_tcp_from_the_ipv6_loopback_to_an_ipv4_address() -> None:
    srv, target = _tcp_upper_server()
    proxy = UserlandProxy()
    port = _free(socket.AF_INET6, socket.SOCK_STREAM, "::1")
    try:
        proxy.start(ProxiedPort(proto="tcp", host_ip="::1", host_port=port, target_ip="127.0.0.1",
                                target_port=target))
        big = bytes(range(256)) * 4096  # 1 MiB, both ways, with the half-close passed on
        with socket.create_connection(("::1", port), timeout=10) as c:
            c.sendall(big)
            c.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := c.recv(65536):
                got += chunk
        assert got == big.upper()
        with pytest.raises(Conflict) as e:  # the host address is taken: refused at once
            UserlandProxy().start(ProxiedPort(proto="tcp", host_ip="::1", host_port=port, target_ip="127.0.0.1",
                                              target_port=target))
        assert e.value.message == f"failed to bind host port [::1]:{port}/tcp: address already in use"
        proxy.stop("tcp", "::1", port)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("::1", port), timeout=5)
    finally:
        proxy.close()
        srv.close()


@needs_ipv6
def test_proxy_copies_udp_both_ways_per_client() -> None:
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                data, addr = echo.recvfrom(65536)
            except OSError:
                return
            echo.sendto(data[::-1], addr)

    threading.Thread(target=serve, daemon=True).start()
    proxy = UserlandProxy()
    port = _free(socket.AF_INET6, socket.SOCK_DGRAM, "::1")
    try:
        proxy.start(ProxiedPort(proto="udp", host_ip="::1", host_port=port, target_ip="127.0.0.1",
                                target_port=echo.getsockname()[1]))
        clients = [socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(2)]
        for i, c in enumerate(clients):
            c.settimeout(5)
            c.sendto(f"ping-{i}".encode(), ("::1", port))
        assert [c.recvfrom(100)[0] for c in clients] == [b"0-gnip", b"1-gnip"]
        for c in clients:
            c.close()
        assert [p.host_port for p in proxy.ports()] == [port]
    finally:
        proxy.close()
        echo.close()
    assert proxy.ports() == []


class _Killed(BaseException):
    pass


def test_a_daemon_killed_in_a_move_keeps_the_ports_on_the_new_gateway_endpoint(world) -> None:  # type: ignore[no-untyped-def]
    pub, store, _v4, _v6, _proxy = world
    old_n, new_n = network("old", "br-old"), network("new", "br-new")
    store.put_network(old_n)
    store.put_network(new_n)
    old = endpoint("old", "10.0.0.2")
    old = EndpointRecord(**{**old.to_json(), "ports": pub.allocate([PortRequest(container_port=80)], old)})
    store.put_endpoint(old)
    store.put_endpoint(endpoint("new", "10.1.0.2"))
    pub.start(old_n, old)
    writes = store.put_endpoint

    def killed_after_one_write(rec: EndpointRecord) -> None:
        writes(rec)
        raise _Killed

    store.put_endpoint = killed_after_one_write
    with pytest.raises(_Killed):
        pub.move("c1", "new")
    store.put_endpoint = writes
    restored = Publisher(store=store, firewall=pub.firewall, ports=PortAllocator(), proxy=RecordingProxy())
    eps = {e.network_id: restored.claim(e) for e in restored.dedupe(store.endpoints())}
    assert eps["new"].ports == old.ports and eps["old"].ports == ()
    assert store.get_endpoint("c1", "old").ports == () and store.get_endpoint("c1", "new").ports == old.ports
    restored.move("c1", "old")  # and back: the newer generation again
    assert store.get_endpoint("c1", "old").ports == old.ports and store.get_endpoint("c1", "new").ports == ()
