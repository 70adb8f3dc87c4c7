"""Which networks a container asks for, checked the way dockerd checks them (pure).

A container's network mode names its first network (`default`/`bridge`, a user-defined network,
`none`, `host`) or another container's namespace (`container:<name|id>`); `docker network connect`
adds more. What was asked is kept in `Container.networks` (so a stopped container keeps its
networks, and connects at its next start); the live endpoints are the network service's.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from servin import errors
from servin.core.model import ContainerConfig, EndpointConfig, HostConfig

PREDEFINED = ("bridge", "host", "none")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def primary_network(mode: str) -> str | None:
    """The network a network mode names; None for `container:<id>`."""
    if mode in ("", "default", "bridge"):
        return "bridge"
    if mode.startswith("container:"):
        return None
    return mode


def joined_container(mode: str) -> str | None:
    """`container:<ref>` → ref."""
    return mode.split(":", 1)[1] if mode.startswith("container:") else None


def initial_networks(config: ContainerConfig, hc: HostConfig, endpoints: Mapping[str, EndpointConfig],
                     network_name: Callable[[str], str]) -> tuple[EndpointConfig, ...]:
    """The container's networks at create; raises InvalidArgument with dockerd's messages.

    `network_name` turns a name or ID into the network's name (and returns it unchanged when no
    such network exists: an unknown network is the start's 404, as in dockerd).
    """
    mode = hc.network_mode
    if joined_container(mode) is not None:
        if hc.port_bindings or hc.publish_all_ports:
            raise errors.InvalidArgument("conflicting options: port publishing and the container type network mode")
        if config.hostname:
            raise errors.InvalidArgument("conflicting options: hostname and the network mode")
        if config.mac_address:
            raise errors.InvalidArgument("conflicting options: mac-address and the network mode")
        if hc.dns or hc.dns_search or hc.dns_options:
            raise errors.InvalidArgument("conflicting options: dns and the network mode")
        if hc.extra_hosts:
            raise errors.InvalidArgument("conflicting options: custom host-to-IP mapping and the network mode")
        return ()
    primary = network_name(primary_network(mode) or "bridge")
    # one entry (all the API allowed below 1.44) is the main network's, whatever its key
    main_keys = [k for k in endpoints if k in (mode, primary) or network_name(k) == primary] or list(endpoints)[:1]
    asked = endpoints[main_keys[0]] if main_keys else None
    ep = replace(asked or EndpointConfig(network=primary), network=primary,
                 mac_address=config.mac_address or (asked.mac_address if asked else ""))
    check_endpoint(ep)
    networks = [ep]
    for key, other in endpoints.items():  # more networks at create (API 1.44)
        if key in main_keys:
            continue
        extra = replace(other, network=network_name(key))
        check_connect(hc, extra.network)
        check_endpoint(extra)
        if any(e.network == extra.network for e in networks):
            raise errors.InvalidArgument(f"network {extra.network} is given twice in EndpointsConfig")
        networks.append(extra)
    return tuple(networks)


def gateway_order(networks: Sequence[EndpointConfig], internal: Callable[[str], bool]) -> list[EndpointConfig]:
    """The endpoints in the order they are attached: the default gateway's first (it gets eth0,
    the default route and the published ports). dockerd's Endpoint.Less: the highest GwPriority,
    then a network that is not internal, then the network name that sorts first."""
    return sorted(networks, key=lambda e: (-e.gw_priority, internal(e.network), e.network))


SYSCTLS_OPTION = "com.docker.network.endpoint.sysctls"


def _sysctl_items(ep: EndpointConfig) -> list[str]:
    text = ep.driver_opts.get(SYSCTLS_OPTION)
    return text.split(",") if text is not None else []


_SYSCTL_PART = re.compile(r"[A-Za-z0-9_-]+")  # a name component: never "/" (the name is a path in /proc/sys)


def check_sysctls(ep: EndpointConfig) -> None:
    """The endpoint's sysctls name an interface as IFNAME (dockerd's validateEndpointSettings)."""
    bad = []
    for item in _sysctl_items(ep):
        parts = item.partition("=")[0].split(".")
        if len(parts) != 5 or parts[0] != "net" or parts[1] not in ("ipv4", "ipv6", "mpls") \
                or parts[3] not in ("IFNAME", "ifname") or not all(_SYSCTL_PART.fullmatch(p) for p in parts):
            bad.append(f"unrecognised network interface sysctl '{item}'; represent 'net.X.Y.ethN.Z=V' as "
                       "'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'")
    if bad:
        raise errors.InvalidArgument("invalid endpoint settings:\n" + "\n".join(bad))


def endpoint_sysctls(ep: EndpointConfig) -> list[tuple[str, str]]:
    """(name with IFNAME for the interface, value) of each sysctl the endpoint asks for, in order
    (at its start; dockerd's error for one without a value)."""
    out = []
    for item in _sysctl_items(ep):
        name, sep, value = item.partition("=")
        if not sep:
            raise errors.SystemError_(f"expected sysctl '{item}' to have format name=value")
        parts = name.split(".")
        if len(parts) != 5:
            raise errors.SystemError_(f"expected sysctl '{item}' to have format net.X.Y.IFNAME.Z")
        out.append((".".join([*parts[:3], "IFNAME", parts[4]]), value))
    return out


def check_endpoint(ep: EndpointConfig) -> None:
    """dockerd refuses fixed addresses and aliases on the pre-defined networks."""
    check_sysctls(ep)
    if ep.mac_address and not _MAC_RE.match(ep.mac_address):
        raise errors.InvalidArgument(f"invalid MAC address: {ep.mac_address}")
    if ep.ipv4_address:
        try:
            ipaddress.IPv4Address(ep.ipv4_address)
        except ValueError:
            raise errors.InvalidArgument(f"invalid IPv4 address: {ep.ipv4_address}") from None
    if ep.ipv6_address:
        try:
            ip6 = ipaddress.IPv6Address(ep.ipv6_address)
        except ValueError:
            ip6 = None
        if ip6 is None or ip6.is_unspecified or ip6.ipv4_mapped is not None or ip6.scope_id:
            raise errors.InvalidArgument(f"invalid IPv6 address: {ep.ipv6_address}")
    if ep.network in PREDEFINED:
        if ep.ipv4_address or ep.ipv6_address:
            raise errors.InvalidArgument("user specified IP address is supported on user defined networks only")
        if ep.aliases:
            raise errors.InvalidArgument("network-scoped alias is supported only for containers in user defined "
                                         "networks")
    if ep.network in ("host", "none") and ep.mac_address:
        raise errors.InvalidArgument("conflicting options: mac-address and the network mode")


def dns_aliases(ep: EndpointConfig, short_id: str) -> tuple[str, ...]:
    """The endpoint's aliases as dockerd records them: on user-defined networks the short ID is one."""
    if ep.network in PREDEFINED or short_id in ep.aliases:
        return ep.aliases
    return (*ep.aliases, short_id)


def check_connect(hc: HostConfig, network: str) -> None:
    """`docker network connect` rules for the container's mode."""
    mode = hc.network_mode
    if joined_container(mode) is not None:
        raise errors.InvalidArgument("container sharing network namespace with another container or host cannot "
                                     "be connected to any other network")
    if mode == "host" or network == "host":
        raise errors.InvalidArgument("container cannot be disconnected from host network or connected to host "
                                     "network")
    if mode == "none" or network == "none":
        raise errors.InvalidArgument("container cannot be connected to multiple networks with one of the networks "
                                     "in private (none) mode")
