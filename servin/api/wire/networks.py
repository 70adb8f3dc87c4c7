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


def _subnet_status(n: NetworkRecord, members: Sequence[NetworkMember]) -> dict[str, Any]:
    """dockerd's IPAM status of each subnet: the addresses taken (the network and broadcast
    addresses, the gateway, the auxiliary addresses and the endpoints'), and how many of the IP
    range (the subnet without one) are left to hand out."""
    if not n.subnet:
        return {}
    subnet = ipaddress.IPv4Network(n.subnet)
    taken = {ipaddress.IPv4Address(a) for a in (n.gateway, *n.aux_addresses.values(),
                                                 *(m.endpoint.ip for m in members)) if a}
    if subnet.prefixlen < 31:
        taken |= {subnet.network_address, subnet.broadcast_address}
    pool = ipaddress.IPv4Network(n.ip_range) if n.ip_range else subnet
    return {str(subnet): {"IPsInUse": len(taken),
                          "DynamicIPsAvailable": pool.num_addresses - sum(1 for a in taken if a in pool)}}


def network(n: NetworkRecord, members: Sequence[NetworkMember] = ()) -> dict[str, Any]:
    """`members`: the attached containers, for inspect's Containers."""
    config: list[dict[str, Any]] = []
    if n.subnet:
        entry: dict[str, Any] = {"Subnet": n.subnet}
        if n.gateway:
            entry["Gateway"] = n.gateway
        if n.ip_range:
            entry["IPRange"] = n.ip_range
        if n.aux_addresses:
            entry["AuxiliaryAddresses"] = dict(n.aux_addresses)
        config.append(entry)
    prefix = ipaddress.ip_network(n.subnet).prefixlen if n.subnet else 0
    containers = {}
    for m in members:
        ep = m.endpoint
        containers[ep.container_id] = {
            "Name": m.container_name, "EndpointID": ep.id, "MacAddress": ep.mac or "",
            "IPv4Address": f"{ep.ip}/{prefix}" if ep.ip else "", "IPv6Address": "",
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
        "EnableIPv4": True,
        "EnableIPv6": False,
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
    # networks (swarm), and a network without IPv4 (Servin's bridge networks are IPv4)
    if (body.get("Scope") or "local") != "local":
        raise errors.NotImplementedYet(f"network scope {body['Scope']!r} is not supported by Servin (swarm)")
    for key in ("Ingress", "ConfigOnly", "ConfigFrom"):
        if body.get(key):
            raise errors.NotImplementedYet(f"{key} networks are not supported by Servin (swarm)")
    if body.get("EnableIPv4") is False:
        raise errors.NotImplementedYet("networks without IPv4 (EnableIPv4 false) are not supported by Servin")
    if body.get("EnableIPv6") or any(":" in str(p.get("Subnet") or "") for p in pools):
        raise errors.NotImplementedYet("IPv6 networks are not supported by Servin yet")
    if len(pools) > 1:
        raise errors.NotImplementedYet("networks with more than one IPv4 pool are not supported by Servin yet")
    first = pools[0] if pools else {}
    return {
        "name": str(body["Name"]), "subnet": first.get("Subnet") or None, "gateway": first.get("Gateway") or None,
        "ip_range": first.get("IPRange") or None,
        "aux_addresses": {str(k): str(v) for k, v in (first.get("AuxiliaryAddresses") or {}).items()},
        "ipam_options": {str(k): str(v) for k, v in ipam["Options"].items()} if ipam.get("Options") is not None
        else None,
        "internal": bool(body.get("Internal")), "attachable": bool(body.get("Attachable")),
        "labels": {str(k): str(v) for k, v in (body.get("Labels") or {}).items()},
        "options": {str(k): str(v) for k, v in (body.get("Options") or {}).items()},
    }


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
