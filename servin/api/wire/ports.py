"""Docker's HostConfig.PortBindings ⇄ the ports a container publishes.

{"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": null}: each entry one binding; a port
with none (null, []) is published on any free host port. Inspect shows them back in this shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from servin.network.portmap import PublishedPort, published_port


def parse_port_bindings(raw: Any) -> tuple[PublishedPort, ...]:
    """HostConfig.PortBindings of a body its schema has type-checked (InvalidArgument for a port
    that is not one, or a host port range that is not one)."""
    out = []
    for port, entries in (raw or {}).items():
        for e in entries or [{}]:
            e = e or {}
            out.append(published_port(str(port), host_ip=str(e.get("HostIp") or ""),
                                      host_port=str(e.get("HostPort") or "")))
    return tuple(out)


def _host_port(p: PublishedPort) -> str:
    if not p.host_port:
        return ""
    return f"{p.host_port}-{p.host_port_end}" if p.host_port_end else str(p.host_port)


def port_bindings_json(ports: Iterable[PublishedPort]) -> dict[str, list[dict[str, str]]]:
    """HostConfig.PortBindings as inspect shows it: by container port, in the order asked."""
    out: dict[str, list[dict[str, str]]] = {}
    for p in ports:
        out.setdefault(p.port_spec, []).append({"HostIp": p.host_ip, "HostPort": _host_port(p)})
    return out


def binding_ips(host_ip: str, ep: Any) -> list[str]:
    """The addresses a published port shows (inspect's HostIp, ps's IP) for an endpoint record:
    as given, or 0.0.0.0 and, when the endpoint has IPv6, :: (dockerd publishes on both)."""
    if host_ip:
        return [host_ip]
    return [ip for ip, has in (("0.0.0.0", ep.ip), ("::", ep.ip6)) if has]
