"""Legacy links (`--link target:alias` on the default bridge), pure: the variables and the
/etc/hosts lines dockerd gives the linking container, from the targets' endpoints there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from servin.core.model import Container
from servin.core.resolution import HostsEntry

Linked = tuple[str, Container, Any]  # (alias, the running target, its endpoint on the default bridge)


def link_hosts(linked: Sequence[Linked]) -> list[HostsEntry]:
    """dockerd's hosts lines: "alias hostname name" (no name when the alias is it) on the target's
    IPv4 and IPv6 addresses."""
    out = []
    for alias, t, ep in linked:
        names = f"{alias} {t.resolved_hostname}" + (f" {t.name}" if alias != t.name else "")
        out += [(ip, names) for ip in (ep.ip, ep.ip6) if ip]
    return out


def link_env(c: Container, linked: Sequence[Linked]) -> list[str]:
    """dockerd's link variables: ALIAS_NAME, ALIAS_ENV_*, ALIAS_PORT[_N_PROTO][_ADDR|_PORT|_PROTO]."""
    env: list[str] = []
    for alias, target, ep in linked:
        ip = ep.ip
        prefix = alias.upper().replace("-", "_")
        env.append(f"{prefix}_NAME=/{c.name}/{alias}")
        for var in target.resolved_env:
            key, sep, value = var.partition("=")
            if sep and key not in ("HOME", "PATH"):
                env.append(f"{prefix}_ENV_{key}={value}")
        ports = sorted({p if "/" in p else f"{p}/tcp" for p in target.config.exposed_ports}
                       | {p.port_spec for p in target.host_config.port_bindings},
                       key=lambda p: (int(p.split("/")[0]) if p.split("/")[0].isdigit() else 0, p))
        for i, port in enumerate(ports):
            num, proto = port.split("/")
            if i == 0:
                env.append(f"{prefix}_PORT={proto}://{ip}:{num}")
            key = f"{prefix}_PORT_{num}_{proto.upper()}"
            env += [f"{key}={proto}://{ip}:{num}", f"{key}_ADDR={ip}", f"{key}_PORT={num}", f"{key}_PROTO={proto}"]
    return env
