"""Network and endpoint records, one atomic JSON file each (see servin/atomicfile.py).

    <root>/networks/<network-id>.json
    <root>/endpoints/<container-id>.<network-id>.json

Endpoints are the source of truth for address and host-port allocation: after a crash the IPAM
and the port allocator are rebuilt from them (see `NetworkService.restore`).
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from servin import atomicfile
from servin.errors import NotFound

DRIVERS = ("bridge", "host", "null")


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkRecord:
    id: str
    name: str
    driver: str = "bridge"
    subnet: str | None = None  # "172.18.0.0/16"; None for host/null
    gateway: str | None = None
    ip_range: str | None = None
    internal: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    created: str = ""  # RFC 3339
    bridge: str | None = None  # the Linux bridge's name
    aux_addresses: Mapping[str, str] = field(default_factory=dict)  # IPAM AuxiliaryAddresses: never handed out
    ipam_options: Mapping[str, str] | None = None  # as given (inspect echoes null when none were)
    attachable: bool = False  # echoed (meaningful to swarm only)
    enable_ipv4: bool = True  # False: an IPv6-only network (subnet and gateway stay None)
    enable_ipv6: bool = False
    subnet6: str | None = None  # "fd00:1::/64" when enable_ipv6
    gateway6: str | None = None
    ip_range6: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"], d["options"], d["aux_addresses"] = dict(self.labels), dict(self.options), dict(self.aux_addresses)
        d["ipam_options"] = dict(self.ipam_options) if self.ipam_options is not None else None
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NetworkRecord:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    @property
    def subnet_net(self) -> ipaddress.IPv4Network | None:
        return ipaddress.IPv4Network(self.subnet) if self.subnet else None

    @property
    def gateway_ip(self) -> ipaddress.IPv4Address | None:
        return ipaddress.IPv4Address(self.gateway) if self.gateway else None

    @property
    def subnet6_net(self) -> ipaddress.IPv6Network | None:
        return ipaddress.IPv6Network(self.subnet6) if self.subnet6 else None

    @property
    def gateway6_ip(self) -> ipaddress.IPv6Address | None:
        return ipaddress.IPv6Address(self.gateway6) if self.gateway6 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class PortBinding:
    """One published port: container port/proto on host_ip:host_port."""

    container_port: int
    proto: str  # tcp | udp
    host_ip: str  # "" = all addresses (0.0.0.0, and :: when the endpoint has IPv6); "::" = all IPv6 ones
    host_port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRecord:
    id: str
    container_id: str
    network_id: str
    ifname: str  # inside the container: eth0, eth1, …
    host_ifname: str  # veth<8 hex>
    ip: str | None = None
    ip6: str | None = None  # its IPv6 address on a network with IPv6
    mac: str | None = None
    aliases: tuple[str, ...] = ()
    ports: tuple[PortBinding, ...] = ()
    # counts the moves of the container's published ports: the one endpoint to keep them when a
    # daemon killed in a move left them on two (`Publisher.move` writes the new holder first)
    ports_generation: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        d["ports"] = [asdict(p) for p in self.ports]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> EndpointRecord:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["aliases"] = tuple(known.get("aliases") or ())
        known["ports"] = tuple(PortBinding(**p) for p in known.get("ports") or ())
        return cls(**known)


class NetworkStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.networks_dir = root / "networks"
        self.endpoints_dir = root / "endpoints"
        for d in (self.networks_dir, self.endpoints_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        # only this process writes the records: a listing read after the last write is still good
        self._gen = {"networks": 0, "endpoints": 0}
        self._gen_lock = threading.Lock()
        self._cache: dict[str, tuple[int, list[Any]]] = {}

    # networks
    def put_network(self, rec: NetworkRecord) -> None:
        atomicfile.write_json(self.networks_dir / f"{rec.id}.json", rec.to_json())
        self._bump("networks")

    def get_network(self, network_id: str) -> NetworkRecord:
        try:
            return NetworkRecord.from_json(atomicfile.read_json(self.networks_dir / f"{network_id}.json"))
        except FileNotFoundError:
            raise NotFound(f"network {network_id} not found") from None

    def delete_network(self, network_id: str) -> None:
        _unlink(self.networks_dir / f"{network_id}.json")
        self._bump("networks")

    def _bump(self, kind: str) -> None:
        with self._gen_lock:
            self._gen[kind] += 1

    def _listing(self, kind: str, load: Callable[[], list[Any]]) -> list[Any]:
        """The records of `kind` (read from disk again only after a write; the list is shared: do not
        change it)."""
        gen, cached = self._gen[kind], self._cache.get(kind)
        if cached is not None and cached[0] == gen:
            return cached[1]
        records = load()
        self._cache[kind] = (gen, records)
        return records

    def networks(self) -> list[NetworkRecord]:
        return list(self._listing("networks", lambda: [NetworkRecord.from_json(d)
                                                       for d in _load_all(self.networks_dir)]))

    # endpoints
    def _ep_path(self, container_id: str, network_id: str) -> Path:
        return self.endpoints_dir / f"{container_id}.{network_id}.json"

    def put_endpoint(self, rec: EndpointRecord) -> None:
        atomicfile.write_json(self._ep_path(rec.container_id, rec.network_id), rec.to_json())
        self._bump("endpoints")

    def get_endpoint(self, container_id: str, network_id: str) -> EndpointRecord:
        try:
            return EndpointRecord.from_json(atomicfile.read_json(self._ep_path(container_id, network_id)))
        except FileNotFoundError:
            raise NotFound(f"container {container_id} is not connected to network {network_id}") from None

    def delete_endpoint(self, container_id: str, network_id: str) -> None:
        _unlink(self._ep_path(container_id, network_id))
        self._bump("endpoints")

    def endpoints(self, *, container_id: str | None = None, network_id: str | None = None) -> list[EndpointRecord]:
        eps = self._listing("endpoints", lambda: [EndpointRecord.from_json(d) for d in _load_all(self.endpoints_dir)])
        return [e for e in eps if (container_id is None or e.container_id == container_id)
                and (network_id is None or e.network_id == network_id)]


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _load_all(directory: Path) -> list[Any]:
    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json") and not name.startswith("."):
            try:
                out.append(atomicfile.read_json(directory / name))
            except (FileNotFoundError, ValueError):
                continue  # a torn temp file cannot be here (rename is atomic); skip anything unreadable
    return out
