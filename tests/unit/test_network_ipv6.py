"""IPv6 without root: the IPv6 IPAM and dockerd's ULA pool, ip6tables rule text, AAAA and ip6.arpa
answers, the network create body, published-port display, and the daemon's ipv6 settings."""

from __future__ import annotations

import asyncio
import ipaddress
from types import SimpleNamespace

import pytest
from dnslib import RCODE, DNSRecord

from servin import errors
from servin.api.wire.networks import network, parse_create
from servin.api.wire.ports import binding_ips
from servin.daemon.config import ConfigError, resolve
from servin.network import rules as R
from servin.network.dns import DnsServer, View
from servin.network.firewall import FamilyRules, rules_for
from servin.network.ipam import DEFAULT_POOLS, Ipam, Pool, parse_fixed_cidr_v6, parse_pools, ula_pool
from servin.network.portmap import parse_publish
from servin.network.publishing import Route, route
from servin.network.store import EndpointRecord, NetworkRecord, PortBinding
from tests.unit.test_daemon_config import daemon_json, parse

N6 = ipaddress.IPv6Network
A6 = ipaddress.IPv6Address


def test_ula_pool_is_dockerds() -> None:
    # moby daemon_test.go TestDeriveULABaseNetwork
    assert ula_pool("") == Pool(N6("fd42:98fc:1c14::/48"), 64)
    assert ula_pool("499d4bc0-b0b3-416f-b1ee-cf6486315593") == Pool(N6("fd62:fb69:18af::/48"), 64)


def test_ipv6_ipam_subnets_addresses_range_and_gateway() -> None:
    ipam = Ipam([*DEFAULT_POOLS, ula_pool("")], version=6)
    assert ipam.pools == (ula_pool(""),)  # one family per IPAM
    assert ipam.next_subnet() == N6("fd42:98fc:1c14::/64")
    ipam.add_network("a", ipam.next_subnet(), A6("fd42:98fc:1c14::1"))
    assert ipam.next_subnet(avoid=[N6("fd42:98fc:1c14:1::/64"), ipaddress.IPv4Network("10.0.0.0/8")]) == \
        N6("fd42:98fc:1c14:2::/64")
    assert [ipam.allocate("a") for _ in range(2)] == [A6("fd42:98fc:1c14::2"), A6("fd42:98fc:1c14::3")]
    with pytest.raises(errors.InvalidArgument):
        ipam.allocate("a", A6("fd42:98fc:1c14::"))  # the subnet-router anycast address
    with pytest.raises(errors.Conflict):
        ipam.check_free(N6("fd42:98fc:1c14::/56"))
    # as docker-py's tests: a range holding the gateway; the gateway is skipped, a fixed address is taken
    ipam.add_network("r", N6("fd00:389::/64"), A6("fd00:389::ffff"), N6("fd00:389::ff00/120"))
    assert ipam.allocate("r", A6("fd00:389::f00d")) == A6("fd00:389::f00d")
    got = {ipam.allocate("r") for _ in range(254)}
    assert A6("fd00:389::ffff") not in got and len(got) == 254
    with pytest.raises(errors.Unavailable):
        ipam.allocate("r")
    ipam.release("a", A6("fd42:98fc:1c14::2"))
    assert ipam.allocate("a") == A6("fd42:98fc:1c14::2")
    assert parse_pools([{"base": "fd00:1::/48", "size": 64}]) == (Pool(N6("fd00:1::/48"), 64),)
    with pytest.raises(errors.Unavailable, match="IPv6 address pool"):
        Ipam([Pool(N6("fd00:9::/63"), 64)], version=6).next_subnet(avoid=[N6("fd00:9::/63")])


def test_fixed_cidr_v6_is_checked_as_dockerd() -> None:
    assert parse_fixed_cidr_v6("fd00:1::5/64") == N6("fd00:1::/64")
    for bad, says in (("10.0.0.0/8", "not a valid IPv6 subnet"), ("ff02::/16", "multicast subnet"),
                      ("fe80::/48", "clashes with the Link-Local prefix"), ("nope", "not a valid IPv6 subnet")):
        with pytest.raises(errors.InvalidArgument, match=says):
            parse_fixed_cidr_v6(bad)


def test_daemon_ipv6_settings(tmp_path) -> None:
    cfg = resolve(parse(["--ipv6", "--fixed-cidr-v6", "fd00:7::/64"], daemon_json(tmp_path, {})))
    assert cfg.ipv6 is True and cfg.fixed_cidr_v6 == "fd00:7::/64"
    cfg = resolve(parse([], daemon_json(tmp_path, {"ipv6": True, "fixed-cidr-v6": "fd00:8::1/64"})))
    assert cfg.ipv6 is True and cfg.fixed_cidr_v6 == "fd00:8::/64"
    assert resolve(parse(["--ipv6=false"], daemon_json(tmp_path, {}))).ipv6 is False
    with pytest.raises(ConfigError, match="fixed-cidr-v6 needs ipv6"):
        resolve(parse(["--fixed-cidr-v6", "fd00:7::/64"], daemon_json(tmp_path, {})))
    with pytest.raises(ConfigError, match="invalid fixed-cidr-v6"):
        resolve(parse(["--ipv6", "--fixed-cidr-v6", "ff00::/8"], daemon_json(tmp_path, {})))


def test_ip6tables_rules_golden() -> None:
    net = R.network_rules(bridge="br-6", subnet="fd00:1::/64")
    assert "-s fd00:1::/64 ! -o br-6 -j MASQUERADE" in [r.spec for r in net]
    port = R.port_rules(bridge="br-6", container_ip="fd00:1::2", proto="tcp", container_port=80, host_ip="",
                        host_port=8080)
    assert [r.line() for r in port] == [
        "-A SERVIN ! -i br-6 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:1::2]:80",
        "-A SERVIN-FORWARD -d fd00:1::2/128 ! -i br-6 -o br-6 -p tcp -m tcp --dport 80 -j ACCEPT",
    ]
    on = R.port_rules(bridge="br-6", container_ip="fd00:1::2", proto="udp", container_port=53, host_ip="fd00:9::1",
                      host_port=53)
    assert on[0].spec.startswith("-d fd00:9::1/128 ! -i br-6 -p udp")
    everywhere = R.port_rules(bridge="br-6", container_ip="fd00:1::2", proto="tcp", container_port=80,
                              host_ip="::", host_port=8080)
    assert everywhere == port
    both = rules_for(net, ipv6=True) + rules_for(port, ipv6=False)
    assert both == FamilyRules(port, net)


def test_bindings_take_the_families_dockerd_does() -> None:
    # each binding goes to the endpoint's address of its family by DNAT; through the userland proxy
    # for the IPv6 loopback and for a family the endpoint has no address of (as docker-proxy)
    def ep(ip: str | None, ip6: str | None) -> EndpointRecord:
        return EndpointRecord(id="e", container_id="c", network_id="n", ifname="eth0", host_ifname="v", ip=ip,
                              ip6=ip6)

    def via(host_ip: str, e: EndpointRecord) -> Route | None:
        return route(PortBinding(container_port=80, proto="tcp", host_ip=host_ip, host_port=8080), e)

    dual, v4, v6 = ep("10.0.0.2", "fd00::2"), ep("10.0.0.2", None), ep(None, "fd00::2")
    assert via("0.0.0.0", dual) == Route(target="10.0.0.2", dnat=True, proxy=False)
    assert via("127.0.0.1", dual) == Route(target="10.0.0.2", dnat=True, proxy=False)  # route_localnet
    assert via("::", dual) == Route(target="fd00::2", dnat=True, proxy=True)  # the proxy gets ::1 only
    assert via("::1", dual) == Route(target="fd00::2", dnat=False, proxy=True)
    assert via("fd00:9::1", dual) == Route(target="fd00::2", dnat=True, proxy=False)
    assert via("::", v4) == Route(target="10.0.0.2", dnat=False, proxy=True)
    assert via("0.0.0.0", v6) == Route(target="fd00::2", dnat=False, proxy=True)
    assert via("::", ep(None, None)) is None
    dual, v4only = SimpleNamespace(ip="10.0.0.2", ip6="fd00::2"), SimpleNamespace(ip="10.0.0.2", ip6=None)
    assert binding_ips("", dual) == ["0.0.0.0", "::"] and binding_ips("", v4only) == ["0.0.0.0"]
    assert binding_ips("::", dual) == ["::"]
    assert [(r.host_ip, r.host_port) for r in parse_publish("[::]:8080:80")] == [("::", 8080)]
    assert parse_publish("[fd00::1]:53:53/udp")[0].host_ip == "fd00::1"
    for bad in ("[::1]80:80", "[zz::]:80:80", "[::]:80"):
        with pytest.raises(errors.InvalidArgument):
            parse_publish(bad)


def test_aaaa_and_ip6_arpa_answers() -> None:
    view = View(names={"web": ("10.9.0.2", "fd00:1::2")}, reverse={"10.9.0.2": "web.n", "fd00:1::2": "web.n"})
    server = DnsServer(lambda client: view)

    def ask(name: str, qtype: str) -> DNSRecord:
        reply = asyncio.run(server.answer(DNSRecord.question(name, qtype).pack(), "fd00:1::3", tcp=False))
        assert reply is not None
        return DNSRecord.parse(reply)

    assert [str(a.rdata) for a in ask("web", "AAAA").rr] == ["fd00:1::2"]
    assert [str(a.rdata) for a in ask("web", "A").rr] == ["10.9.0.2"]
    ptr = ask(ipaddress.IPv6Address("fd00:1::2").reverse_pointer, "PTR")
    assert [str(a.rdata) for a in ptr.rr] == ["web.n."]
    bad = ask("x.ip6.arpa", "PTR")
    assert bad.header.rcode == RCODE.SERVFAIL and bad.rr == []


def test_network_create_body_with_ipv6() -> None:
    req = parse_create({"Name": "v6", "EnableIPv6": True, "IPAM": {"Config": [
        {"Subnet": "10.9.0.0/24"}, {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::fe", "IPRange": "fd00:1::/80",
                                    "AuxiliaryAddresses": {"r": "fd00:1::9"}}]}})
    assert (req["enable_ipv4"], req["enable_ipv6"], req["subnet"]) == (True, True, "10.9.0.0/24")
    assert (req["subnet6"], req["gateway6"], req["ip_range6"]) == ("fd00:1::/64", "fd00:1::fe", "fd00:1::/80")
    assert req["aux_addresses"] == {"r": "fd00:1::9"}
    only6 = parse_create({"Name": "v6", "EnableIPv4": False, "EnableIPv6": True})
    assert only6["enable_ipv4"] is False and only6["subnet"] is None
    opt = parse_create({"Name": "v6", "Options": {"com.docker.network.enable_ipv6": "true"}})
    assert opt["enable_ipv6"] is True and opt["options"] == {"com.docker.network.enable_ipv6": "true"}
    assert parse_create({"Name": "v6", "EnableIPv6": False,
                         "Options": {"com.docker.network.enable_ipv6": "true"}})["options"] == {}
    with pytest.raises(errors.InvalidArgument, match="needs EnableIPv6"):
        parse_create({"Name": "v6", "IPAM": {"Config": [{"Subnet": "fd00:1::/64"}]}})
    with pytest.raises(errors.InvalidArgument, match="not a valid bool"):
        parse_create({"Name": "v6", "Options": {"com.docker.network.enable_ipv6": "maybe"}})


def test_network_inspect_shows_both_families() -> None:
    n = NetworkRecord(id="n" * 64, name="v6", subnet="10.9.0.0/24", gateway="10.9.0.1", enable_ipv6=True,
                      subnet6="fd00:1::/64", gateway6="fd00:1::1", aux_addresses={"a": "10.9.0.9", "b": "fd00:1::9"},
                      bridge="br-n")
    shown = network(n)
    assert shown["EnableIPv4"] is True and shown["EnableIPv6"] is True
    assert shown["IPAM"]["Config"] == [
        {"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1", "AuxiliaryAddresses": {"a": "10.9.0.9"}},
        {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1", "AuxiliaryAddresses": {"b": "fd00:1::9"}},
    ]
