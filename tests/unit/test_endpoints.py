"""Which networks a container asks for at create, checked with dockerd's messages."""

from __future__ import annotations

import pytest

from servin import errors
from servin.core.endpoints import check_connect, dns_aliases, endpoint_sysctls, gateway_order, initial_networks
from servin.core.model import ContainerConfig, EndpointConfig, HostConfig
from servin.network.portmap import PublishedPort

pytestmark = pytest.mark.unit


def nets(mode: str = "default", endpoints: dict[str, EndpointConfig] | None = None, **cfg: object) -> tuple:
    hc_keys = {"port_bindings", "publish_all_ports", "dns", "extra_hosts"}
    hc = HostConfig(network_mode=mode, **{k: v for k, v in cfg.items() if k in hc_keys})
    config = ContainerConfig(image="busybox", **{k: v for k, v in cfg.items() if k not in hc_keys})
    return initial_networks(config, hc, endpoints or {}, lambda n: {"abc123": "appnet"}.get(n, n))


def test_the_network_mode_names_the_first_network() -> None:
    assert nets() == (EndpointConfig(network="bridge"),)
    assert nets("none") == (EndpointConfig(network="none"),)
    assert nets("abc123") == (EndpointConfig(network="appnet"),)  # an ID becomes the name
    ep = EndpointConfig(network="appnet", aliases=("db",), ipv4_address="10.1.0.9")
    assert nets("appnet", {"appnet": ep}, mac_address="02:42:00:00:00:01") == (
        EndpointConfig(network="appnet", aliases=("db",), ipv4_address="10.1.0.9", mac_address="02:42:00:00:00:01"),)
    assert nets("container:web") == ()


@pytest.mark.parametrize("mode,endpoints,cfg,message", [
    ("default", {"bridge": EndpointConfig(network="bridge", ipv4_address="172.17.0.9")}, {},
     "user specified IP address is supported on user defined networks only"),
    ("bridge", {"bridge": EndpointConfig(network="bridge", aliases=("x",))}, {},
     "network-scoped alias is supported only for containers in user defined networks"),
    ("container:web", {}, {"port_bindings": (PublishedPort(container_port=80),)},
     "conflicting options: port publishing and the container type network mode"),
    ("container:web", {}, {"hostname": "h"}, "conflicting options: hostname and the network mode"),
    # several networks: below API 1.44 the version table refuses them (tests/api/test_network_endpoints.py)
    ("none", {"none": EndpointConfig(network="none"), "b": EndpointConfig(network="b")}, {},
     "container cannot be connected to multiple networks with one of the networks in private (none) mode"),
    ("appnet", {"appnet": EndpointConfig(network="appnet", driver_opts={
        "com.docker.network.endpoint.sysctls": "net.ipv4.conf.eth0.log_martians=1"})}, {},
     "invalid endpoint settings:\nunrecognised network interface sysctl 'net.ipv4.conf.eth0.log_martians=1'; "
     "represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"),
    ("appnet", {}, {"mac_address": "zz:zz"}, "invalid MAC address: zz:zz"),
    ("appnet", {"appnet": EndpointConfig(network="appnet", ipv4_address="10.1.0.300")}, {},
     "invalid IPv4 address: 10.1.0.300"),
])
def test_bad_requests_get_dockerds_messages(mode: str, endpoints: dict, cfg: dict, message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        nets(mode, endpoints, **cfg)
    assert exc.value.message == message


def test_short_id_is_an_alias_on_user_networks_only() -> None:
    assert dns_aliases(EndpointConfig(network="appnet", aliases=("db",)), "0123456789ab") == ("db", "0123456789ab")
    assert dns_aliases(EndpointConfig(network="bridge"), "0123456789ab") == ()


def test_connect_rules_for_shared_namespaces() -> None:
    with pytest.raises(errors.InvalidArgument, match="sharing network namespace"):
        check_connect(HostConfig(network_mode="container:x"), "appnet")
    with pytest.raises(errors.InvalidArgument, match="host network"):
        check_connect(HostConfig(network_mode="host"), "appnet")
    with pytest.raises(errors.InvalidArgument, match=r"private \(none\) mode"):
        check_connect(HostConfig(network_mode="none"), "appnet")
    check_connect(HostConfig(network_mode="bridge"), "appnet")


def test_several_networks_at_create_the_main_one_first() -> None:
    got = nets("b", {"a": EndpointConfig(network="a", aliases=("x",)), "b": EndpointConfig(network="b"),
                     "abc123": EndpointConfig(network="abc123", gw_priority=3)})
    assert got == (EndpointConfig(network="b"), EndpointConfig(network="a", aliases=("x",)),
                   EndpointConfig(network="appnet", gw_priority=3))
    # one entry is the main network's, whatever its key (all the API had below 1.44)
    assert nets("b", {"a": EndpointConfig(network="a", aliases=("x",))}) == (
        EndpointConfig(network="b", aliases=("x",)),)


def test_the_gateway_endpoint_is_attached_first() -> None:
    eps = [EndpointConfig(network=n, gw_priority=p) for n, p in (("b", 0), ("a", 0), ("c", 0), ("z", 0))]
    internal = {"a"}.__contains__
    assert [e.network for e in gateway_order(eps, internal)] == ["b", "c", "z", "a"]
    eps.append(EndpointConfig(network="y", gw_priority=5))
    assert [e.network for e in gateway_order(eps, internal)] == ["y", "b", "c", "z", "a"]


def test_endpoint_sysctls_name_the_interface_as_ifname() -> None:
    ep = EndpointConfig(network="a", driver_opts={
        "com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.log_martians=1,net.ipv6.conf.ifname.mtu=1400"})
    assert endpoint_sysctls(ep) == [("net.ipv4.conf.IFNAME.log_martians", "1"), ("net.ipv6.conf.IFNAME.mtu", "1400")]
    with pytest.raises(errors.SystemError_, match="expected sysctl 'net.ipv4.conf.IFNAME.x' to have format name=value"):
        endpoint_sysctls(EndpointConfig(network="a", driver_opts={
            "com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.x"}))


def test_an_endpoint_sysctl_name_is_never_a_path() -> None:
    from servin.core.endpoints import SYSCTLS_OPTION, check_sysctls

    for name in ("net.ipv4./etc/cron.IFNAME.x=1", "net.ipv4.conf.IFNAME.a/b=1", "sys.ipv4.conf.IFNAME.x=1"):
        ep = EndpointConfig(network="n", driver_opts={SYSCTLS_OPTION: name})
        with pytest.raises(errors.InvalidArgument, match="unrecognised network interface sysctl"):
            check_sysctls(ep)
    check_sysctls(EndpointConfig(network="n", driver_opts={SYSCTLS_OPTION: "net.ipv4.conf.IFNAME.log_martians=1"}))
