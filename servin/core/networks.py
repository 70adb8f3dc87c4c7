"""The engine's networks as the API sees them: list filters, create and remove with their events,
a container's connect and disconnect, inspect with the attached containers, prune.

Below it, `network/service.NetworkService` owns bridges, addresses and records; a container's own
side (its record, its lock, the events of connect and disconnect) is `core/networking.py`'s. With
no NetworkService (`--bridge none`) every call answers as dockerd without networking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from servin import errors
from servin.core.endpoints import PREDEFINED
from servin.core.events import Event, EventBus
from servin.core.model import EndpointConfig
from servin.core.query import Filters, label_matches, parse_until, prune_labels_allow, rfc3339_ns
from servin.network.store import EndpointRecord, NetworkRecord

# The EndpointSettings of a connect, decoded for the network of the given name (found first, as
# dockerd looks the network up before it reads the settings).
EndpointDecoder = Callable[[str], EndpointConfig]


class NetworkProvider(Protocol):
    """The networks and endpoints below (network/service.NetworkService; blocking calls)."""

    def networks(self) -> list[NetworkRecord]: ...

    def find(self, name_or_id: str) -> NetworkRecord: ...

    def create_network(self, name: str, *, driver: str = "bridge", subnet: str | None = None,
                       gateway: str | None = None, ip_range: str | None = None, internal: bool = False,
                       labels: Mapping[str, str] | None = None, options: Mapping[str, str] | None = None,
                       aux_addresses: Mapping[str, str] | None = None, ipam_options: Mapping[str, str] | None = None,
                       attachable: bool = False, enable_ipv4: bool = True, enable_ipv6: bool = False,
                       subnet6: str | None = None, gateway6: str | None = None,
                       ip_range6: str | None = None) -> NetworkRecord: ...

    def remove_network(self, name_or_id: str) -> None: ...

    def endpoints_all(self) -> list[EndpointRecord]: ...


class ContainerAttachments(Protocol):
    """A container's live connect and disconnect (core/networking.ContainerNetworking)."""

    async def connect(self, ref: str, ep: EndpointConfig) -> None: ...

    async def disconnect(self, ref: str, network: str) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSpec:
    """A network to create (driver bridge: the only one that can be created)."""

    name: str
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    aux_addresses: Mapping[str, str] = field(default_factory=dict)
    ipam_options: Mapping[str, str] | None = None
    internal: bool = False
    attachable: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    enable_ipv4: bool = True
    enable_ipv6: bool = False
    subnet6: str | None = None  # IPv6 subnet, gateway and range (with enable_ipv6)
    gateway6: str | None = None
    ip_range6: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkMember:
    endpoint: EndpointRecord
    container_name: str  # "" when the container is gone


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkDetail:
    network: NetworkRecord
    members: tuple[NetworkMember, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkPruneReport:
    deleted: tuple[str, ...] = ()  # names


class Networks:
    def __init__(self, *, service: NetworkProvider | None, attachments: ContainerAttachments,
                 container_name: Callable[[str], str], events: EventBus) -> None:
        self._service_or_none = service
        self._attachments = attachments
        self._container_name = container_name  # a container's name by ID ("" when gone)
        self._events = events

    def _service(self) -> NetworkProvider:
        if self._service_or_none is None:
            raise errors.NotImplementedYet("networking is off in this daemon (--bridge none)")
        return self._service_or_none

    def _publish(self, action: str, n: NetworkRecord) -> None:
        self._events.publish(Event(type="network", action=action, actor_id=n.id,
                                   attributes={"name": n.name, "type": n.driver}))

    async def list(self, filters: Filters) -> list[NetworkRecord]:
        """`docker network ls`: driver, id (prefix), label, name (substring), scope, type, dangling."""
        svc = self._service()
        nets = await asyncio.to_thread(svc.networks)
        if "name" in filters:
            nets = [n for n in nets if any(v in n.name for v in filters["name"])]
        if "id" in filters:
            nets = [n for n in nets if any(n.id.startswith(v) for v in filters["id"])]
        if "driver" in filters:
            nets = [n for n in nets if n.driver in filters["driver"]]
        if "label" in filters:
            nets = [n for n in nets if label_matches(n.labels, filters["label"])]
        if "type" in filters:
            want = set(filters["type"])
            nets = [n for n in nets if ("builtin" if n.name in PREDEFINED else "custom") in want]
        if "dangling" in filters:
            dangling = filters["dangling"][0].lower() in ("1", "true")
            nets = [n for n in nets if n.name not in PREDEFINED
                    and (not _endpoints(svc, n)) == dangling]
        return nets

    async def inspect(self, ref: str) -> NetworkDetail:
        svc = self._service()
        n = await asyncio.to_thread(svc.find, ref)
        members = tuple(NetworkMember(endpoint=ep, container_name=self._container_name(ep.container_id))
                        for ep in _endpoints(svc, n))
        return NetworkDetail(network=n, members=members)

    async def create(self, spec: NetworkSpec) -> NetworkRecord:
        svc = self._service()
        n = await asyncio.to_thread(
            svc.create_network, spec.name, subnet=spec.subnet, gateway=spec.gateway, ip_range=spec.ip_range,
            aux_addresses=spec.aux_addresses, ipam_options=spec.ipam_options, internal=spec.internal,
            attachable=spec.attachable, labels=spec.labels, options=spec.options, enable_ipv4=spec.enable_ipv4,
            enable_ipv6=spec.enable_ipv6, subnet6=spec.subnet6, gateway6=spec.gateway6, ip_range6=spec.ip_range6)
        self._publish("create", n)
        return n

    async def remove(self, ref: str) -> None:
        svc = self._service()
        n = await asyncio.to_thread(svc.find, ref)
        try:
            await asyncio.to_thread(svc.remove_network, n.id)
        except (errors.InvalidArgument, errors.Conflict) as exc:  # pre-defined or in use: dockerd's 403
            raise errors.Forbidden(exc.message) from None
        self._publish("destroy", n)

    async def connect(self, ref: str, container: str, endpoint: EndpointDecoder) -> None:
        """`docker network connect` (the connect event is the container networking's)."""
        n = await asyncio.to_thread(self._service().find, ref)
        await self._attachments.connect(container, endpoint(n.name))

    async def disconnect(self, ref: str, container: str) -> None:
        n = await asyncio.to_thread(self._service().find, ref)
        await self._attachments.disconnect(container, n.name)

    async def prune(self, filters: Filters) -> NetworkPruneReport:
        """Every user-defined network without endpoints that label, label! and until select."""
        svc = self._service()
        until_ns = parse_until(filters["until"][0]) if filters.get("until") else None
        deleted = []
        for n in await asyncio.to_thread(svc.networks):
            if n.name in PREDEFINED or _endpoints(svc, n):
                continue
            if not prune_labels_allow(n.labels, filters):
                continue
            if until_ns is not None and rfc3339_ns(n.created) >= until_ns:
                continue
            await asyncio.to_thread(svc.remove_network, n.id)
            self._publish("destroy", n)
            deleted.append(n.name)
        return NetworkPruneReport(deleted=tuple(deleted))


def _endpoints(svc: NetworkProvider, n: NetworkRecord) -> list[EndpointRecord]:
    return [ep for ep in svc.endpoints_all() if ep.network_id == n.id]
