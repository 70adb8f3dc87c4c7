"""Docker JSON for networks."""

from __future__ import annotations

import ipaddress
from typing import Any


def network(n: Any, endpoints: list[tuple[Any, str]] | None = None) -> dict[str, Any]:
    """`endpoints`: (EndpointRecord, container name) pairs, for inspect's Containers."""
    config = []
    if n.subnet:
        entry = {"Subnet": n.subnet}
        if n.gateway:
            entry["Gateway"] = n.gateway
        if n.ip_range:
            entry["IPRange"] = n.ip_range
        if n.aux_addresses:
            entry["AuxiliaryAddresses"] = dict(n.aux_addresses)
        config.append(entry)
    prefix = ipaddress.ip_network(n.subnet).prefixlen if n.subnet else 0
    containers = {}
    for ep, name in endpoints or []:
        containers[ep.container_id] = {
            "Name": name, "EndpointID": ep.id, "MacAddress": ep.mac or "",
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
