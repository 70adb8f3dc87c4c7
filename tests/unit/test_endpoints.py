"""Which networks a container asks for at create, checked with dockerd's messages."""

from __future__ import annotations

import pytest

from servin import errors
from servin.core.endpoints import check_connect, dns_aliases, initial_networks
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
    ("appnet", {"a": EndpointConfig(network="a"), "b": EndpointConfig(network="b")}, {},
     "Container cannot be connected to network endpoints: a, b"),
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
