"""Docker JSON for networks."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from servin import errors
from servin.api.wire import request_body, versions
from servin.api.wire.schemas import NETWORK_CONNECT, NETWORK_CREATE_REQUEST, NETWORK_DISCONNECT
from servin.core import names
from servin.core.networks import NetworkMember, NetworkPruneReport, NetworkSpec
from servin.network.store import NetworkRecord


@versions.answer("NetworkInspect")
def network_inspect(n: NetworkRecord, members: Sequence[NetworkMember] = ()) -> dict[str, Any]:
    """`GET /networks/{id}`: with the attached containers and the use of its subnets (Status)."""
    return {**network(n, members), "Status": {"IPAM": {"Subnets": _subnet_status(n, members)}}}


@versions.answer("NetworkSummary")
def network_summary(n: NetworkRecord) -> dict[str, Any]:
    """A `GET /networks` row (old versions show an empty Containers)."""
    return network(n)


UINT64_MAX = (1 << 64) - 1  # dockerd's counts saturate (Uint64Sat): a /64 has more addresses than that


def _subnet_status(n: NetworkRecord, members: Sequence[NetworkMember]) -> dict[str, Any]:
    """dockerd's IPAM status of each subnet (defaultipam's allocationStatus): the addresses taken (the
    first one, the IPv4 broadcast, the gateway, the auxiliary addresses and the endpoints'), and how many
    of the IP range (the subnet without one) are left to hand out."""
    out = {}
    for cidr, ip_range, gateway, ips in ((n.subnet, n.ip_range, n.gateway, [m.endpoint.ip for m in members]),
                                         (n.subnet6, n.ip_range6, n.gateway6, [m.endpoint.ip6 for m in members])):
        if not cidr:
            continue
        subnet = ipaddress.ip_network(cidr)
        aux = [a for a in n.aux_addresses.values() if (":" in a) == (subnet.version == 6)]
        taken = {ipaddress.ip_address(str(a).partition("/")[0]) for a in (gateway, *aux, *ips) if a}
        if subnet.version == 6 or subnet.prefixlen < 31:  # the IPv4 network or IPv6 subnet-router address
            taken.add(subnet.network_address)
        if subnet.version == 4 and subnet.prefixlen < 31:
            taken.add(subnet.broadcast_address)
        pool = ipaddress.ip_network(ip_range) if ip_range else subnet
        free = pool.num_addresses - sum(1 for a in taken if a in pool)
        out[str(subnet)] = {"IPsInUse": min(len(taken), UINT64_MAX), "DynamicIPsAvailable": min(free, UINT64_MAX)}
    return out


def network(n: NetworkRecord, members: Sequence[NetworkMember] = ()) -> dict[str, Any]:
    """`members`: the attached containers, for inspect's Containers."""
    config: list[dict[str, Any]] = []
    for subnet, gateway, ip_range in ((n.subnet, n.gateway, n.ip_range), (n.subnet6, n.gateway6, n.ip_range6)):
        if not subnet:
            continue
        version = ipaddress.ip_network(subnet).version
        entry: dict[str, Any] = {"Subnet": subnet}
        if gateway:
            entry["Gateway"] = gateway
        if ip_range:
            entry["IPRange"] = ip_range
        aux = {k: v for k, v in n.aux_addresses.items() if ipaddress.ip_address(v).version == version}
        if aux:
            entry["AuxiliaryAddresses"] = aux
        config.append(entry)
    prefix = ipaddress.ip_network(n.subnet).prefixlen if n.subnet else 0
    prefix6 = ipaddress.ip_network(n.subnet6).prefixlen if n.subnet6 else 0
    containers = {}
    for m in members:
        ep = m.endpoint
        containers[ep.container_id] = {
            "Name": m.container_name, "EndpointID": ep.id, "MacAddress": ep.mac or "",
            "IPv4Address": f"{ep.ip}/{prefix}" if ep.ip else "",
            "IPv6Address": f"{ep.ip6}/{prefix6}" if ep.ip6 else "",
        }
    options = dict(n.options)
    if n.name == "bridge" and n.bridge:
        options.setdefault("com.docker.network.bridge.name", n.bridge)
        options.setdefault("com.docker.network.bridge.default_bridge", "true")
    return {
        "Name": n.name,
        "Id": n.id,
        "Created": n.created or "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": n.enable_ipv4,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": None if n.ipam_options is None else dict(n.ipam_options),
                 "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": options,
        "Labels": dict(n.labels),
    }


@request_body(NETWORK_CREATE_REQUEST)
def parse_create(body: Any) -> dict[str, Any]:
    """A network create body → NetworkService.create_network's arguments (name included)."""
    body = body or {}
    names.check_network_name(body.get("Name") or "")
    driver = body.get("Driver") or "bridge"
    if driver in ("host", "null", "none"):
        raise errors.Forbidden(f"only one instance of \"{driver}\" network is allowed")
    if driver != "bridge":
        raise errors.NotFound(f'plugin "{driver}" not found')
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise errors.InvalidArgument("invalid IPAM: must be an object")
    if (ipam.get("Driver") or "default") != "default":
        raise errors.NotFound(f'plugin "{ipam["Driver"]}" not found')
    pools = ipam.get("Config") or []
    if not isinstance(pools, list) or not all(isinstance(p, dict) for p in pools):
        raise errors.InvalidArgument("invalid IPAM.Config: must be a list of objects")
    # Not implemented, so refused by name rather than dropped: swarm scopes, ingress and config-only
    # networks (swarm)
    if (body.get("Scope") or "local") != "local":
        raise errors.NotImplementedYet(f"network scope {body['Scope']!r} is not supported by Servin (swarm)")
    for key in ("Ingress", "ConfigOnly", "ConfigFrom"):
        if body.get(key):
            raise errors.NotImplementedYet(f"{key} networks are not supported by Servin (swarm)")
    options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
    enable_ipv4 = _enable(body, options, "EnableIPv4", "com.docker.network.enable_ipv4", True)
    enable_ipv6 = _enable(body, options, "EnableIPv6", "com.docker.network.enable_ipv6", False)
    v4 = [p for p in pools if ":" not in str(p.get("Subnet") or "")]
    v6 = [p for p in pools if ":" in str(p.get("Subnet") or "")]
    if len(v4) > 1 or len(v6) > 1:
        raise errors.Forbidden("bridge driver doesn't support multiple subnets")  # dockerd's bridge driver
    if v6 and not enable_ipv6:  # dockerd ignores it; refused here rather than dropped
        raise errors.InvalidArgument(f"invalid network config: IPv6 subnet {v6[0]['Subnet']} needs EnableIPv6 "
                                     "(docker network create --ipv6)")
    if v4 and not enable_ipv4:
        raise errors.InvalidArgument(f"invalid network config: IPv4 subnet {v4[0].get('Subnet')} given with "
                                     "EnableIPv4 false")
    first, first6 = (v4[0] if v4 else {}), (v6[0] if v6 else {})
    return {
        "name": str(body["Name"]), "subnet": first.get("Subnet") or None, "gateway": first.get("Gateway") or None,
        "ip_range": first.get("IPRange") or None,
        "enable_ipv4": enable_ipv4, "enable_ipv6": enable_ipv6, "subnet6": first6.get("Subnet") or None,
        "gateway6": first6.get("Gateway") or None, "ip_range6": first6.get("IPRange") or None,
        "aux_addresses": {str(k): str(v) for p in (first, first6)
                          for k, v in (p.get("AuxiliaryAddresses") or {}).items()},
        "ipam_options": {str(k): str(v) for k, v in ipam["Options"].items()} if ipam.get("Options") is not None
        else None,
        "internal": bool(body.get("Internal")), "attachable": bool(body.get("Attachable")),
        "labels": {str(k): str(v) for k, v in (body.get("Labels") or {}).items()},
        "options": options,
    }


def _enable(body: dict[str, Any], options: dict[str, str], field: str, option: str, default: bool) -> bool:
    """EnableIPv4 / EnableIPv6 of a create body, else the driver option of that name, as dockerd
    (the option is dropped when the field decides)."""
    if body.get(field) is not None:
        options.pop(option, None)
        return bool(body[field])
    if option in options:
        value = options[option].lower()
        if value not in ("1", "t", "true", "0", "f", "false"):
            raise errors.InvalidArgument(f'driver-opt "{option}" is not a valid bool')
        return value in ("1", "t", "true")
    return default


def network_spec(body: Any) -> NetworkSpec:
    """A network create body → the network to create."""
    return NetworkSpec(**parse_create(body))


def prune_report(r: NetworkPruneReport) -> dict[str, Any]:
    return {"NetworksDeleted": list(r.deleted)}


def _container(body: dict[str, Any]) -> str:
    ref = body.get("Container") or ""
    if not ref:  # dockerd's GetContainer("") (daemon/errors.go invalidIdentifier)
        raise errors.InvalidArgument('invalid name or ID supplied: ""')
    return ref


@request_body(NETWORK_CONNECT)
def parse_connect(body: Any) -> tuple[str, dict[str, Any] | None]:
    """POST /networks/{id}/connect (network.ConnectOptions): the container and its EndpointConfig."""
    body = body or {}
    return _container(body), body.get("EndpointConfig")


@request_body(NETWORK_DISCONNECT)
def parse_disconnect(body: Any) -> tuple[str, bool]:
    """POST /networks/{id}/disconnect (network.DisconnectOptions): the container and Force."""
    body = body or {}
    return _container(body), bool(body.get("Force"))
