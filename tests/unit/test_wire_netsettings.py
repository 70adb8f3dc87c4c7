"""A container's networks in Docker JSON, as each API version shapes them (DNSNames, Aliases,
GwPriority, Config.MacAddress), and the create body's endpoint fields as each version reads them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from servin import errors
from servin.api.wire import containers as wire
from servin.api.wire import networks as wire_networks
from servin.api.wire import versions
from servin.core.model import Container, ContainerConfig, EndpointConfig, HostConfig, State
from servin.core.networks import NetworkMember
from servin.network.store import EndpointRecord, NetworkRecord

pytestmark = pytest.mark.unit

CID = "c0ffee" + "0" * 58
APPNET = NetworkRecord(id="n" * 64, name="appnet", subnet="10.9.0.0/24", gateway="10.9.0.1")
OTHER = NetworkRecord(id="o" * 64, name="other", subnet="10.8.0.0/24", gateway="10.8.0.1", ip_range="10.8.0.128/25")


@pytest.fixture(autouse=True)
def newest_after() -> Iterator[None]:
    token = versions.use(versions.MAX_VERSION)
    yield
    versions.reset(token)


def at(v: versions.Version) -> None:
    versions.use(v)


def container(**kw: Any) -> Container:
    networks = (EndpointConfig(network="appnet", aliases=("db", "box"), mac_address="02:00:00:00:00:09"),
                EndpointConfig(network="other", gw_priority=5))
    return Container(id=CID, name="box", created="2026-01-01T00:00:00Z", image_id="sha256:" + "a" * 64,
                     config=ContainerConfig(image="busybox"), host_config=HostConfig(network_mode="appnet"),
                     state=State(), path="sh", args=(), resolved_env=(), resolved_user="", resolved_workdir="/",
                     resolved_hostname="myhost", networks=kw.get("networks", networks))


def nets(answer: dict[str, Any]) -> dict[str, Any]:
    return answer["NetworkSettings"]["Networks"]


def inspect() -> dict[str, Any]:
    return wire.inspect(container(), bundle="/b", log_path="/l", networks=[(APPNET, None), (OTHER, None)])


def test_dns_names_and_aliases_by_version() -> None:
    at((1, 55))
    got = nets(inspect())
    assert got["appnet"]["Aliases"] == ["db", "box"]  # as submitted
    assert got["appnet"]["DNSNames"] == ["box", "db", "c0ffee000000", "myhost"]
    assert got["other"]["Aliases"] is None and got["other"]["DNSNames"] == ["box", "c0ffee000000", "myhost"]
    at((1, 44))
    got = nets(inspect())
    assert got["appnet"]["Aliases"] == ["db", "box", "c0ffee000000", "myhost"]
    assert got["other"]["Aliases"] == ["c0ffee000000", "myhost"]
    assert got["appnet"]["DNSNames"] == ["box", "db", "c0ffee000000", "myhost"]  # at every version


def test_gw_priority_and_the_container_wide_mac_by_version() -> None:
    at((1, 55))
    answer = inspect()
    assert nets(answer)["other"]["GwPriority"] == 5 and "MacAddress" not in answer["Config"]
    at((1, 51))
    answer = inspect()
    assert answer["Config"]["MacAddress"] == "02:00:00:00:00:09"  # the main network's
    assert nets(answer)["other"]["GwPriority"] == 5
    at((1, 47))
    answer = inspect()
    assert "GwPriority" not in nets(answer)["other"]
    row = wire.summary(container(), 0, networks=[(APPNET, None), (OTHER, None)])
    assert "GwPriority" not in row["NetworkSettings"]["Networks"]["other"]


def body(**kw: Any) -> dict[str, Any]:
    return {"Image": "busybox", **kw}


def endpoints(b: dict[str, Any]) -> tuple[dict[str, EndpointConfig], list[str]]:
    at(versions.current())  # a request of its own: its own warnings
    _, _, eps = wire.parse_create_request(b)
    return eps, versions.warnings()


def test_several_endpoints_need_1_44() -> None:
    two = body(HostConfig={"NetworkMode": "a"}, NetworkingConfig={"EndpointsConfig": {"b": {}, "a": {}}})
    at((1, 43))
    with pytest.raises(errors.InvalidArgument, match="^Container cannot be created with multiple network "
                                                     "endpoints: a, b$"):
        wire.parse_create_request(two)
    at((1, 44))
    assert set(endpoints(two)[0]) == {"a", "b"}


def test_gw_priority_is_read_from_1_48() -> None:
    b = body(NetworkingConfig={"EndpointsConfig": {"a": {"GwPriority": 7}}})
    at((1, 47))
    assert endpoints(b)[0]["a"].gw_priority == 0
    at((1, 48))
    assert endpoints(b)[0]["a"].gw_priority == 7


MAC = "02:42:ac:11:00:99"


def test_container_wide_mac_below_1_44_goes_to_the_main_network() -> None:
    at((1, 41))
    eps, warnings = endpoints(body(MacAddress=MAC))
    assert eps["bridge"].mac_address == MAC and warnings == []
    eps, _ = endpoints(body(MacAddress=MAC, HostConfig={"NetworkMode": "net1"},
                            NetworkingConfig={"EndpointsConfig": {"other": {"Aliases": ["x"]}}}))
    assert eps["other"].mac_address == MAC and eps["other"].aliases == ("x",)  # the one entry
    # an endpoint MAC alone was not read then
    eps, _ = endpoints(body(NetworkingConfig={"EndpointsConfig": {"bridge": {"MacAddress": MAC}}}))
    assert eps["bridge"].mac_address == ""
    for mode in ("host", "none", "container:web"):
        with pytest.raises(errors.InvalidArgument, match="^conflicting options: mac-address and the network mode$"):
            endpoints(body(MacAddress=MAC, HostConfig={"NetworkMode": mode}))


def test_container_wide_mac_is_deprecated_from_1_44_and_gone_from_1_52() -> None:
    at((1, 44))
    eps, warnings = endpoints(body(MacAddress=MAC, HostConfig={"NetworkMode": "net1"},
                                   NetworkingConfig={"EndpointsConfig": {"net1": {}, "net2": {}}}))
    assert eps["net1"].mac_address == MAC and eps["net2"].mac_address == ""
    assert warnings == ["The container-wide MacAddress field is now deprecated. It should be specified in "
                        "EndpointsConfig instead."]
    eps, _ = endpoints(body(MacAddress=MAC.upper(), NetworkingConfig={"EndpointsConfig": {"bridge": {
        "MacAddress": MAC}}}))
    assert eps["bridge"].mac_address == MAC
    with pytest.raises(errors.InvalidArgument, match="^the container-wide MAC address must match the "
                                                     "endpoint-specific MAC address for the main network, or be "
                                                     "left empty$"):
        endpoints(body(MacAddress=MAC, NetworkingConfig={"EndpointsConfig": {"bridge": {
            "MacAddress": "02:42:ac:11:00:01"}}}))
    with pytest.raises(errors.InvalidArgument, match="^unable to migrate container-wide MAC address to a specific "
                                                     "network: HostConfig.NetworkMode must match"):
        endpoints(body(MacAddress=MAC, HostConfig={"NetworkMode": "net1"},
                       NetworkingConfig={"EndpointsConfig": {"net2": {}}}))
    eps, warnings = endpoints(body(MacAddress=MAC, HostConfig={"NetworkMode": "host"}))
    assert eps == {} and len(warnings) == 1  # not migrated: no endpoint of its own
    at((1, 51))
    endpoints(body(MacAddress=MAC))
    at((1, 52))
    with pytest.raises(errors.InvalidArgument, match="^container-wide MAC address no longer supported; use "
                                                     "endpoint-specific MAC address instead$"):
        endpoints(body(MacAddress=MAC))
    eps, warnings = endpoints(body(NetworkingConfig={"EndpointsConfig": {"bridge": {"MacAddress": MAC}}}))
    assert eps["bridge"].mac_address == MAC and warnings == []


SYSCTLS = "com.docker.network.endpoint.sysctls"


def test_interface_sysctls_migrate_up_to_1_47_and_are_refused_from_1_48() -> None:
    b = body(HostConfig={"NetworkMode": "net1", "Sysctls": {"net.ipv4.conf.eth0.log_martians": "1",
                                                            "net.core.somaxconn": "10"}},
             NetworkingConfig={"EndpointsConfig": {"net1": {"DriverOpts": {SYSCTLS: "net.ipv6.conf.IFNAME.mtu=1400"}}}})
    at((1, 47))
    _, host, eps = wire.parse_create_request(b)
    assert eps["net1"].driver_opts == {SYSCTLS: "net.ipv4.conf.IFNAME.log_martians=1,net.ipv6.conf.IFNAME.mtu=1400"}
    assert host.sysctls == {"net.core.somaxconn": "10"}
    assert versions.warnings() == ['Migrated sysctl "net.ipv4.conf.eth0.log_martians" to DriverOpts{'
                                   '"com.docker.network.endpoint.sysctls":"net.ipv4.conf.IFNAME.log_martians=1"}.']
    at((1, 41))
    with pytest.raises(errors.SystemError_, match="^unable to determine network endpoint for sysctl "
                                                  "net.ipv4.conf.eth1.forwarding, use driver option"):
        wire.parse_create_request(body(HostConfig={"Sysctls": {"net.ipv4.conf.eth1.forwarding": "1"}}))
    at((1, 48))
    with pytest.raises(errors.SystemError_, match='^interface specific sysctl setting "net.ipv4.conf.eth0.'
                                                  "log_martians\" must be supplied using driver option "
                                                  "'com.docker.network.endpoint.sysctls'$"):
        wire.parse_create_request(b)
    _, host, _ = wire.parse_create_request(body(HostConfig={"NetworkMode": "host", "Sysctls": {
        "net.ipv4.conf.eth0.log_martians": "1"}}))  # the host's namespace: not an endpoint's
    assert host.sysctls == {"net.ipv4.conf.eth0.log_martians": "1"}


def test_network_answers_by_version() -> None:
    ep = EndpointRecord(id="e" * 64, container_id=CID, network_id=OTHER.id, ifname="eth0", host_ifname="veth0",
                        ip="10.8.0.130")
    at((1, 52))
    got = wire_networks.network_inspect(OTHER, [NetworkMember(endpoint=ep, container_name="box")])
    assert got["Status"] == {"IPAM": {"Subnets": {"10.8.0.0/24": {"IPsInUse": 4, "DynamicIPsAvailable": 126}}}}
    assert got["EnableIPv4"] is True and CID in got["Containers"]
    assert "Containers" not in wire_networks.network_summary(OTHER)
    at((1, 51))
    assert "Status" not in wire_networks.network_inspect(OTHER)
    assert "Containers" not in wire_networks.network_summary(OTHER)
    at((1, 27))
    assert wire_networks.network_summary(OTHER)["Containers"] == {}


def test_network_status_counts_the_ipv6_subnet_too() -> None:
    dual = dataclasses.replace(OTHER, enable_ipv6=True, subnet6="fd00:8::/64", gateway6="fd00:8::1")
    ep = EndpointRecord(id="e" * 64, container_id=CID, network_id=dual.id, ifname="eth0", host_ifname="veth0",
                        ip="10.8.0.130", ip6="fd00:8::2")
    at((1, 52))
    status = wire_networks.network_inspect(dual, [NetworkMember(endpoint=ep, container_name="box")])["Status"]
    # the subnet-router address, the gateway and the endpoint taken, of a /64's 2**64
    assert status["IPAM"]["Subnets"]["fd00:8::/64"] == {"IPsInUse": 3, "DynamicIPsAvailable": (1 << 64) - 3}
    assert status["IPAM"]["Subnets"]["10.8.0.0/24"]["IPsInUse"] == 4
