"""Docker JSON of a container's networks: the EndpointSettings it asks for (create's
NetworkingConfig, a connect's EndpointConfig) and the NetworkSettings inspect and list show.

The answers are built in the newest shape (Aliases as submitted, DNSNames, GwPriority); the
version table (versions.py) takes away what an older version did not show.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from servin import errors
from servin.api.wire import ports as wire_ports
from servin.core import endpoints
from servin.core.model import Container, EndpointConfig


def parse_endpoint_config(network: str, cfg: Any) -> EndpointConfig:
    """One EndpointSettings (NetworkingConfig.EndpointsConfig[...] or a connect body's EndpointConfig),
    from a body its parser has type-checked."""
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise errors.InvalidArgument("invalid EndpointConfig: must be an object")
    ipam = cfg.get("IPAMConfig") or {}
    aliases, links = cfg.get("Aliases") or (), cfg.get("Links") or ()
    driver_opts = cfg.get("DriverOpts") or {}
    if not isinstance(ipam, dict) or not isinstance(aliases, list | tuple) or not isinstance(links, list | tuple) \
            or not isinstance(driver_opts, dict):
        raise errors.InvalidArgument("invalid EndpointConfig")
    return EndpointConfig(network=network, aliases=tuple(str(a) for a in aliases if a),
                          ipv4_address=str(ipam.get("IPv4Address") or ""),
                          ipv6_address=str(ipam.get("IPv6Address") or ""),
                          mac_address=str(cfg.get("MacAddress") or ""), links=tuple(str(x) for x in links),
                          link_local_ips=tuple(str(x) for x in ipam.get("LinkLocalIPs") or ()),
                          driver_opts={str(k): str(v) for k, v in driver_opts.items()},
                          gw_priority=int(cfg.get("GwPriority") or 0))


def parse_endpoints(body: Any) -> dict[str, EndpointConfig]:
    """NetworkingConfig.EndpointsConfig of a (decoded) create body, by network name or ID."""
    nc = (body or {}).get("NetworkingConfig") or {}
    eps = nc.get("EndpointsConfig") if isinstance(nc, dict) else None
    if not eps:
        return {}
    if not isinstance(eps, dict):
        raise errors.InvalidArgument("invalid NetworkingConfig.EndpointsConfig: must be a map")
    return {str(name): parse_endpoint_config(str(name), cfg) for name, cfg in eps.items()}


def main_mac_address(c: Container) -> str:
    """The MAC asked for the network mode's network (bridge or user-defined): inspect's
    container-wide Config.MacAddress of the versions that had one."""
    mode = c.host_config.network_mode
    if mode in ("host", "none") or endpoints.joined_container(mode) is not None:
        return ""
    main = endpoints.primary_network(mode)
    return next((e.mac_address for e in c.networks if e.network == main), "") or c.config.mac_address


def dns_names(c: Container, network: str, aliases: Sequence[str]) -> list[str] | None:
    """EndpointSettings.DNSNames: on a user-defined network the container's name, its aliases, its
    short ID and hostname (deduplicated, as dockerd's buildEndpointDNSNames); None elsewhere."""
    if network in endpoints.PREDEFINED:
        return None
    return list(dict.fromkeys(n for n in (c.name, *aliases, c.short_id, c.resolved_hostname) if n))


def ports_map(c: Container, networks: Sequence[Any]) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed port (None when not published) and the bindings."""
    ports: dict[str, Any] = {}
    if not any(ep is not None and (ep.ip or ep.ip6) for _net, ep in networks):
        return ports
    for key in c.config.exposed_ports:
        ports[key if "/" in key else f"{key}/tcp"] = None
    for p in c.host_config.port_bindings:
        ports.setdefault(p.port_spec, None)
    for _net, ep in networks:
        for p in ep.ports if ep is not None else ():
            key = f"{p.container_port}/{p.proto}"
            if ports.get(key) is None:
                ports[key] = []
            ports[key] += [{"HostIp": ip, "HostPort": str(p.host_port)} for ip in wire_ports.binding_ips(p.host_ip, ep)]
    return ports


def network_settings(c: Container, networks: Sequence[Any] = (), sandbox_key: str = "") -> dict[str, Any]:
    """`networks`: (NetworkRecord, EndpointRecord or None) for each network the container is attached
    to; None while it is not running (Docker keeps the entry with its operational data cleared)."""
    out: dict[str, Any] = {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": ports_map(c, networks), "SandboxKey": sandbox_key,
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "MacAddress": "", "Networks": {},
    }
    if sandbox_key:
        out["SandboxID"] = hashlib.sha256(sandbox_key.encode()).hexdigest()
    asked = {e.network: e for e in c.networks}
    for net, ep in networks:
        cfg = asked.get(net.name)
        live = ep is not None and bool(ep.ip or ep.ip6)
        aliases = list(cfg.aliases) if cfg else []  # as submitted (older versions: see versions.py)
        ipam_config: dict[str, Any] = {}
        if cfg and cfg.ipv4_address:
            ipam_config["IPv4Address"] = cfg.ipv4_address
        if cfg and cfg.ipv6_address:
            ipam_config["IPv6Address"] = cfg.ipv6_address
        if cfg and cfg.link_local_ips:
            ipam_config["LinkLocalIPs"] = list(cfg.link_local_ips)
        entry = {
            "IPAMConfig": ipam_config or None,
            "Links": list(cfg.links) if cfg and cfg.links else None, "Aliases": aliases or None,
            "DriverOpts": dict(cfg.driver_opts) if cfg and cfg.driver_opts else None,
            "GwPriority": cfg.gw_priority if cfg else 0,
            "NetworkID": net.id, "EndpointID": ep.id if ep is not None else "",
            "Gateway": (net.gateway or "") if live else "",
            "IPAddress": (ep.ip or "") if live else "",
            "IPPrefixLen": int(net.subnet.split("/")[1]) if live and net.subnet and ep.ip else 0,
            "IPv6Gateway": (net.gateway6 or "") if live and ep.ip6 else "",
            "GlobalIPv6Address": (ep.ip6 or "") if live else "",
            "GlobalIPv6PrefixLen": int(net.subnet6.split("/")[1]) if live and net.subnet6 and ep.ip6 else 0,
            "MacAddress": (ep.mac or "") if live else (cfg.mac_address if cfg else ""),
            "DNSNames": dns_names(c, net.name, aliases),
        }
        out["Networks"][net.name] = entry
        if net.name == "bridge":  # the top-level fields describe the default bridge only, as in Docker
            out.update({k: entry[k] for k in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress",
                                              "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen")})
            out["Bridge"] = (net.bridge or "") if live else ""
    return out
