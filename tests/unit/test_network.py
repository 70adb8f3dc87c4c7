"""IPAM, network records, -p parsing and the port allocator, and the iptables rule text (golden)."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest

from servin.errors import Conflict, InvalidArgument, NotFound, Unavailable
from servin.kernel.netfilter import Rule, restore_text
from servin.kernel.netlink import mac_from_ip
from servin.network import rules as R
from servin.network.ipam import DEFAULT_POOLS, Ipam, Pool, parse_pools
from servin.api.wire.ports import parse_port_bindings
from servin.network.portmap import PortAllocator, PortRequest, parse_publish, publish_all, requests
from servin.network.store import EndpointRecord, NetworkRecord, NetworkStore, PortBinding

N = ipaddress.IPv4Network
A = ipaddress.IPv4Address


def test_subnets_from_pools_without_overlap() -> None:
    ipam = Ipam(DEFAULT_POOLS)
    ipam.add_network("bridge", N("172.17.0.0/16"), A("172.17.0.1"))
    assert ipam.next_subnet() == N("172.18.0.0/16")
    ipam.add_network("n1", ipam.next_subnet(), None)
    assert ipam.next_subnet(avoid=[N("172.19.5.0/24")]) == N("172.20.0.0/16")
    with pytest.raises(Conflict):
        ipam.check_free(N("172.18.3.0/24"))
    small = Ipam([Pool(N("10.10.0.0/23"), 24)])
    small.add_network("a", small.next_subnet(), None)
    small.add_network("b", small.next_subnet(), None)
    with pytest.raises(Unavailable):
        small.next_subnet()
    assert parse_pools([{"base": "172.80.0.0/16", "size": 24}]) == (Pool(N("172.80.0.0/16"), 24),)
    with pytest.raises(InvalidArgument):
        parse_pools([{"base": "nope", "size": 24}])


def test_addresses_gateway_fixed_range_release() -> None:
    ipam = Ipam()
    ipam.add_network("n", N("10.1.0.0/29"), A("10.1.0.1"))
    assert [ipam.allocate("n") for _ in range(3)] == [A("10.1.0.2"), A("10.1.0.3"), A("10.1.0.4")]
    assert ipam.allocate("n", A("10.1.0.6")) == A("10.1.0.6")
    with pytest.raises(Conflict):
        ipam.allocate("n", A("10.1.0.6"))
    with pytest.raises(InvalidArgument):
        ipam.allocate("n", A("10.1.0.1"))  # the gateway
    with pytest.raises(InvalidArgument):
        ipam.allocate("n", A("10.2.0.9"))
    assert ipam.allocate("n") == A("10.1.0.5")
    with pytest.raises(Unavailable):
        ipam.allocate("n")  # .7 is the broadcast address
    ipam.release("n", A("10.1.0.3"))
    assert ipam.allocate("n") == A("10.1.0.3")
    ipam.add_network("r", N("10.5.0.0/16"), A("10.5.0.1"), N("10.5.7.0/24"))
    assert ipam.allocate("r") == A("10.5.7.1")
    with pytest.raises(InvalidArgument):
        ipam.add_network("bad", N("10.6.0.0/16"), A("10.7.0.1"))


def test_ipam_rebuilt_from_records_never_double_allocates(tmp_path: Path) -> None:
    store = NetworkStore(tmp_path)
    net = NetworkRecord(id="n1", name="front", subnet="172.18.0.0/16", gateway="172.18.0.1",
                        labels={"a": "b"}, options={"o": "1"}, created="2024-01-01T00:00:00Z", bridge="br-n1")
    store.put_network(net)
    for cid, ip, hp in (("c1", "172.18.0.2", 8080), ("c2", "172.18.0.4", 8081)):
        store.put_endpoint(EndpointRecord(id=cid * 2, container_id=cid, network_id="n1", ifname="eth0",
                                          host_ifname="veth0000", ip=ip, mac=mac_from_ip(A(ip)),
                                          aliases=("web",),
                                          ports=(PortBinding(container_port=80, proto="tcp", host_ip="",
                                                             host_port=hp),)))
    # a "restarted daemon"
    ipam, ports = Ipam(), PortAllocator()
    for n in store.networks():
        ipam.add_network(n.id, n.subnet_net, n.gateway_ip)  # type: ignore[arg-type]
    for ep in store.endpoints():
        ipam.claim(ep.network_id, A(ep.ip))  # type: ignore[arg-type]
        for p in ep.ports:
            ports.claim(p.proto, p.host_ip, p.host_port)
    assert ipam.allocate("n1") == A("172.18.0.3")
    assert ipam.allocate("n1") == A("172.18.0.5")
    with pytest.raises(Conflict):
        ports.allocate(PortRequest(container_port=80, host_port=8080))
    assert store.get_network("n1") == net
    ep = store.get_endpoint("c1", "n1")
    assert ep.aliases == ("web",) and ep.ports[0].host_port == 8080 and ep.mac == "02:42:ac:12:00:02"
    assert [e.container_id for e in store.endpoints(network_id="n1")] == ["c1", "c2"]
    store.delete_endpoint("c1", "n1")
    with pytest.raises(NotFound):
        store.get_endpoint("c1", "n1")
    store.delete_network("n1")
    with pytest.raises(NotFound):
        store.get_network("n1")
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_parse_publish() -> None:
    assert parse_publish("80") == [PortRequest(container_port=80)]
    assert parse_publish("8080:80") == [PortRequest(container_port=80, host_port=8080)]
    assert parse_publish("127.0.0.1:8080:80/udp") == [
        PortRequest(container_port=80, proto="udp", host_ip="127.0.0.1", host_port=8080)]
    assert parse_publish("127.0.0.1::80") == [PortRequest(container_port=80, host_ip="127.0.0.1")]
    assert parse_publish("8000-8001:80-81") == [PortRequest(container_port=80, host_port=8000),
                                                PortRequest(container_port=81, host_port=8001)]
    assert parse_publish("8000-8010:80") == [PortRequest(container_port=80, host_range=(8000, 8010))]
    for bad in ("80/icmp", "x:80", "8000-8001:80-82", "1.2.3:80:80", "70000", "a:b:c:d"):
        with pytest.raises(InvalidArgument):
            parse_publish(bad)
    assert requests(parse_port_bindings({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                         "53/udp": [{"HostPort": ""}], "90/tcp": [{"HostPort": "7000-7005"}]})) == [
        PortRequest(container_port=53, proto="udp"),
        PortRequest(container_port=80, host_ip="0.0.0.0", host_port=8080),  # IPv4 only, as dockerd
        PortRequest(container_port=90, host_range=(7000, 7005)),
    ]
    assert publish_all(["443/tcp", "53/udp"]) == [PortRequest(container_port=443),
                                                  PortRequest(container_port=53, proto="udp")]


def test_port_allocator() -> None:
    ports = PortAllocator(ephemeral=(50000, 50002), rng=random.Random(1))
    got = {ports.allocate(PortRequest(container_port=80)) for _ in range(3)}
    assert got == {50000, 50001, 50002}
    with pytest.raises(Unavailable):
        ports.allocate(PortRequest(container_port=80))
    assert ports.allocate(PortRequest(container_port=80, proto="udp")) in got  # other protocol
    ports.claim("tcp", "127.0.0.1", 8080)
    ports.claim("tcp", "10.0.0.1", 8080)  # another address: fine
    with pytest.raises(Conflict):
        ports.claim("tcp", "", 8080)  # all addresses conflicts with any
    ports.release("tcp", "127.0.0.1", 8080)
    ports.release("tcp", "10.0.0.1", 8080)
    ports.claim("tcp", "", 8080)
    with pytest.raises(Conflict):
        ports.claim("tcp", "127.0.0.1", 8080)
    assert ports.allocate(PortRequest(container_port=80, host_range=(8080, 8082))) == 8081
    busy = PortAllocator(is_free=lambda proto, ip, port: port != 9000)
    with pytest.raises(Conflict):
        busy.allocate(PortRequest(container_port=80, host_port=9000))


def test_rules_golden() -> None:
    net = R.network_rules(bridge="servin0", subnet="172.17.0.0/16")
    port = R.port_rules(bridge="servin0", container_ip="172.17.0.2", proto="tcp", container_port=80,
                        host_ip="", host_port=8080)
    local = R.port_rules(bridge="servin0", container_ip="172.17.0.3", proto="udp", container_port=53,
                         host_ip="127.0.0.1", host_port=5353)
    assert restore_text([*R.BASE, *net, *port, *local], declare=R.CHAINS) == """\
*filter
:SERVIN-FORWARD - [0:0]
:SERVIN-ISOLATION - [0:0]
:SERVIN-ISOLATION-2 - [0:0]
:SERVIN-INPUT - [0:0]
-A SERVIN-FORWARD -j SERVIN-ISOLATION
-A SERVIN-ISOLATION -i servin0 ! -o servin0 -j SERVIN-ISOLATION-2
-A SERVIN-ISOLATION-2 -o servin0 -j DROP
-A SERVIN-FORWARD -o servin0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A SERVIN-FORWARD -i servin0 ! -o servin0 -j ACCEPT
-A SERVIN-FORWARD -i servin0 -o servin0 -j ACCEPT
-A SERVIN-FORWARD -d 172.17.0.2/32 ! -i servin0 -o servin0 -p tcp -m tcp --dport 80 -j ACCEPT
-A SERVIN-FORWARD -d 172.17.0.3/32 ! -i servin0 -o servin0 -p udp -m udp --dport 53 -j ACCEPT
COMMIT
*nat
:SERVIN - [0:0]
:SERVIN-POSTROUTING - [0:0]
-A SERVIN-POSTROUTING -s 172.17.0.0/16 ! -o servin0 -j MASQUERADE
-A SERVIN-POSTROUTING -o servin0 -m addrtype --src-type LOCAL -j MASQUERADE
-A SERVIN ! -i servin0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
-A SERVIN -d 127.0.0.1/32 ! -i servin0 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.17.0.3:53
COMMIT
"""
    assert [r.line() for r in R.network_rules(bridge="br-x", subnet="10.0.0.0/24", internal=True, icc=False)] == [
        "-A SERVIN-ISOLATION -i br-x ! -o br-x -j DROP",
        "-A SERVIN-ISOLATION ! -i br-x -o br-x -j DROP",
        "-A SERVIN-FORWARD -i br-x -o br-x -j DROP",
    ]
    assert [j.line("-I") for j in R.JUMPS] == [
        "-I PREROUTING -m addrtype --dst-type LOCAL -j SERVIN",
        "-I OUTPUT -m addrtype --dst-type LOCAL -j SERVIN",
        "-I POSTROUTING -j SERVIN-POSTROUTING",
        "-I FORWARD -j SERVIN-FORWARD",
        "-I INPUT -j SERVIN-INPUT",
    ]
    assert [r.line() for r in R.dns_rules(bridge="br-x", gateway="10.0.0.1", udp_port=5000, tcp_port=5001)] == [
        "-A SERVIN -d 10.0.0.1/32 -i br-x -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.1:5000",
        "-A SERVIN-INPUT -d 127.0.0.1/32 -i br-x -p udp -m udp --dport 5000 -j ACCEPT",
        "-A SERVIN -d 10.0.0.1/32 -i br-x -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.1:5001",
        "-A SERVIN-INPUT -d 127.0.0.1/32 -i br-x -p tcp -m tcp --dport 5001 -j ACCEPT",
    ]
    # IPv6 (ip6tables): to the listener on the gateway address itself
    assert [r.line() for r in R.dns_rules(bridge="br-x", gateway="fd00:1::1", udp_port=5000, tcp_port=5001)] == [
        "-A SERVIN -d fd00:1::1/128 -i br-x -p udp -m udp --dport 53 -j DNAT --to-destination [fd00:1::1]:5000",
        "-A SERVIN-INPUT -d fd00:1::1/128 -i br-x -p udp -m udp --dport 5000 -j ACCEPT",
        "-A SERVIN -d fd00:1::1/128 -i br-x -p tcp -m tcp --dport 53 -j DNAT --to-destination [fd00:1::1]:5001",
        "-A SERVIN-INPUT -d fd00:1::1/128 -i br-x -p tcp -m tcp --dport 5001 -j ACCEPT",
    ]
    assert restore_text([Rule("nat", "SERVIN", "-j RETURN")], "-D") == "*nat\n-D SERVIN -j RETURN\nCOMMIT\n"


def test_mac_from_ip() -> None:
    assert mac_from_ip(A("172.17.0.2")) == "02:42:ac:11:00:02"


def test_net_dev_reads_counters_without_loopback(tmp_path: Path) -> None:
    from servin.kernel.procfs import net_dev

    (tmp_path / "42" / "net").mkdir(parents=True)
    (tmp_path / "42" / "net" / "dev").write_text(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
        "carrier compressed\n"
        "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0 "
        "      0          0\n"
        "  eth0:    2048      20    1    2    0     0          0         0     1024      10    3    4    0     0 "
        "      0          0\n")
    assert net_dev(42, tmp_path) == {"eth0": {"rx_bytes": 2048, "rx_packets": 20, "rx_errors": 1, "rx_dropped": 2,
                                              "tx_bytes": 1024, "tx_packets": 10, "tx_errors": 3, "tx_dropped": 4}}


def test_masquerade_can_be_turned_off_per_network() -> None:
    on = [r.spec for r in R.network_rules(bridge="br-x", subnet="10.9.0.0/24")]
    off = [r.spec for r in R.network_rules(bridge="br-x", subnet="10.9.0.0/24", masquerade=False)]
    assert "-s 10.9.0.0/24 ! -o br-x -j MASQUERADE" in on
    assert "-s 10.9.0.0/24 ! -o br-x -j MASQUERADE" not in off and len(off) == len(on) - 1
