"""A container's side of networking, between the engine and the NetworkService.

Which networks it asks for is kept on the container (`Container.networks`, checked in
`core/endpoints.py`); here: the namespace it joins at start (its endpoints, or another container's),
legacy links (their text is `core/links.py`'s), live connect and disconnect, what inspect and
stats see. Its /etc/hosts and resolv.conf (kept up to date on connect and disconnect) and the
embedded DNS server's view are `core/resolution.py`'s. With no NetworkService (`--bridge none`)
containers get an empty namespace and the network routes answer as dockerd without networking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from servin import errors
from servin.core import endpoints as endpoints_mod
from servin.core import links
from servin.core.events import Event, EventBus
from servin.core.model import Container, ContainerConfig, EndpointConfig, HostConfig
from servin.core.store import ContainerStore, Saved
from servin.core.resolution import HostsEntry, ResolutionFiles, dns_view, own_entries
from servin.network import portmap
from servin.network.dns import View

log = logging.getLogger(__name__)


class ContainerNetworking:
    def __init__(self, *, network: Any, store: ContainerStore,
                 amend: Callable[[str, Callable[[Container], Container]], Saved],
                 lookup: Callable[[str], Container], lock_of: Callable[[str], asyncio.Lock], events: EventBus,
                 host_resolv_conf: Path) -> None:
        self.network = network  # servin.network.service.NetworkService, or None
        self.store = store  # read only: the records and the containers' directories
        self._amend = amend  # the engine's one way to change a record (lifecycle.Records.amend)
        self._get = lookup  # a container by name, ID or prefix (404 otherwise)
        self._lock_of = lock_of  # the container's lifecycle lock
        self.events = events
        self.files = ResolutionFiles(container_dir=store.dir, host_resolv_conf=host_resolv_conf)

    # ---- create -------------------------------------------------------------------------

    def initial_networks(self, config: ContainerConfig, hc: HostConfig,
                         endpoints: Mapping[str, EndpointConfig] | None) -> tuple[EndpointConfig, ...]:
        """The networks of a new container (dockerd's checks); legacy links must name containers."""
        networks = endpoints_mod.initial_networks(config, hc, endpoints or {}, self.network_name_of)
        if self.network is None and any(e.network not in endpoints_mod.PREDEFINED for e in networks):
            raise errors.NotImplementedYet("user-defined networks need the bridge driver (the daemon runs with "
                                           "--bridge none)")
        for link in hc.links:
            target = link.partition(":")[0]
            try:
                self._get(target)
            except errors.NotFound:
                raise errors.InvalidArgument(f"could not get container for {target}") from None
        if hc.links and networks and networks[0].network not in endpoints_mod.PREDEFINED:
            networks = (replace(networks[0], links=networks[0].links + hc.links), *networks[1:])
        return networks

    def write_files(self, c: Container) -> None:
        """hosts and resolv.conf of a new container (remade at each start once it has an address)."""
        self.files.write_hosts(c, self._extra_hosts(c))
        self.files.write_resolv_conf(c, None)

    # ---- legacy links, hosts and resolv.conf -----------------------------------------------

    def _linked(self, c: Container) -> list[links.Linked]:
        """Legacy links on the default bridge: (alias, the running target, its endpoint there)."""
        if not c.host_config.links or not any(e.network == "bridge" for e in c.networks) or self.network is None:
            return []
        bridge = self.network.find("bridge")
        out = []
        for link in c.host_config.links:
            name, _, alias = link.partition(":")
            target = self._get(name)
            ep = next((e for e in self.network.endpoints(target.id) if e.network_id == bridge.id), None)
            if not target.state.alive or ep is None or not ep.ip:
                raise errors.Conflict(f"Cannot link to a non running container: /{target.name} AS /{c.name}/{alias}")
            out.append((alias, target, ep))
        return out

    def link_env(self, c: Container) -> list[str]:
        """dockerd's link variables (`core/links.py`)."""
        return links.link_env(c, self._linked(c))

    async def remove_link(self, parent: str, alias: str) -> None:
        """`DELETE /containers/<parent>/<alias>?link=1`: forget a legacy link."""
        c = self._get(parent)
        async with self._lock_of(c.id):
            c = self._get(c.id)  # fresh under the lock: its state may have moved meanwhile
            kept = tuple(x for x in c.host_config.links if x.partition(":")[2] != alias)
            if kept == c.host_config.links:
                raise errors.NotFound(f"Could not find container link /{c.name}/{alias}")
            await self._amend(c.id, lambda cur: replace(cur, host_config=replace(cur.host_config, links=kept)))

    def _extra_hosts(self, c: Container) -> list[HostsEntry]:
        """--add-host entries; "host-gateway" is the default bridge's gateway, as in dockerd."""
        out = []
        for entry in c.host_config.extra_hosts:
            name, _, ip = entry.partition(":")
            if ip == "host-gateway":
                gateway = None
                if self.network is not None:
                    try:
                        gateway = self.network.find("bridge").gateway
                    except errors.NotFound:
                        pass
                if gateway is None:
                    raise errors.InvalidArgument("unable to derive the IP value for host-gateway")
                ip = gateway
            out.append((ip, name))
        return out

    def _embedded_dns(self, networks: tuple[EndpointConfig, ...]) -> str | None:
        """Where the container asks names: the gateway of its first user-defined network in gateway
        order (the IPv6 one on an IPv6-only network); None on the default bridge alone."""
        wanted = [e for e in networks if e.network not in ("none", "host", "bridge")]
        for ep in endpoints_mod.gateway_order(wanted, self._internal) if wanted else ():
            try:
                net = self.network.find(ep.network)
            except errors.NotFound:
                continue
            return str(net.gateway or net.gateway6 or "") or None
        return None

    # ---- the namespace at start, connect and disconnect ------------------------------------

    def network_name_of(self, name_or_id: str) -> str:
        """A network's name from its name or ID (unchanged when there is no such network)."""
        if self.network is None:
            return name_or_id
        try:
            return self.network.find(name_or_id).name
        except errors.NotFound:
            return name_or_id

    def _joined_container(self, c: Container) -> Container | None:
        """The running container whose namespace a `container:<ref>` mode joins (409 if not running)."""
        ref = endpoints_mod.joined_container(c.host_config.network_mode)
        if ref is None:
            return None
        other = self._get(ref)
        if other.id == c.id:
            raise errors.InvalidArgument("cannot join own network")
        if not other.state.alive:
            raise errors.Conflict(f"cannot join network of a non running container: {other.id}")
        return other

    async def attach(self, c: Container) -> str | None:
        """The namespace the container joins: its endpoints on each of its networks (the first gets
        eth0 and the published ports), or another container's (`container:<id>`); None for a new
        empty one (none, or no bridge) or the host's. Writes the container's /etc/hosts."""
        other = self._joined_container(c)
        if other is not None:
            await asyncio.to_thread(self.files.copy_from, c, other)
            path = self.network.netns_path(other.id) if self.network is not None else None
            return str(path) if path is not None and path.exists() else f"/proc/{other.state.pid}/ns/net"
        wanted = [e for e in c.networks if e.network not in ("none", "host")]
        if self.network is None or not wanted:
            return None
        ports = _port_requests(c)
        await self.release(c.id)  # a stale endpoint (a crash between connect and exit) goes first
        wanted = endpoints_mod.gateway_order(wanted, self._internal)
        try:
            attached = []
            for i, ep in enumerate(wanted):
                att = await asyncio.to_thread(
                    self.network.connect, c.id, ep.network, aliases=endpoints_mod.dns_aliases(ep, c.short_id),
                    ip=ep.ipv4_address or None, mac=ep.mac_address or None, ports=ports if i == 0 else (),
                    ip6=ep.ipv6_address or None)
                await self._apply_sysctls(c.id, att, ep)
                attached.append(att)
            # as dockerd: its own lines for each address of each endpoint, in the order they joined
            own = own_entries(c, [ip for a in attached for ip in (a.endpoint.ip, a.endpoint.ip6) if ip])
            entries = self._extra_hosts(c) + links.link_hosts(self._linked(c)) + own
            await asyncio.to_thread(self.files.write_hosts, c, entries)
            await asyncio.to_thread(self.files.write_resolv_conf, c, self._embedded_dns(tuple(wanted)))
        except BaseException:
            await self.release(c.id)
            raise
        return str(attached[0].netns_path)

    def _internal(self, network: str) -> bool:
        try:
            return bool(self.network.find(network).internal) if self.network is not None else False
        except errors.NotFound:
            return False  # the start's 404 comes from the connect

    async def _apply_sysctls(self, cid: str, att: Any, ep: EndpointConfig) -> None:
        """The endpoint's sysctls (driver option com.docker.network.endpoint.sysctls), on its interface."""
        sysctls = endpoints_mod.endpoint_sysctls(ep)
        if sysctls and att.endpoint.ifname:
            named = [(name.replace(".IFNAME.", f".{att.endpoint.ifname}.", 1), v) for name, v in sysctls]
            await asyncio.to_thread(self.network.set_sysctls, cid, named)

    async def _route_default(self, c: Container, networks: tuple[EndpointConfig, ...]) -> None:
        """A running container's gateway after a live connect or disconnect: the endpoint
        gateway_order puts first takes the default route and the published ports, as dockerd 28+."""
        wanted = [e for e in networks if e.network not in ("none", "host")]
        if wanted:
            best = endpoints_mod.gateway_order(wanted, self._internal)[0]
            await asyncio.to_thread(self.network.set_gateway, c.id, best.network)

    async def connect(self, ref: str, ep: EndpointConfig) -> None:
        """`docker network connect`: live for a running container (its namespace gets one more
        interface); a stopped one is attached at its next start. Either way it is remembered."""
        c = self._get(ref)
        if self.network is None:
            raise errors.NotImplementedYet("networking is off in this daemon (bridge none)")
        net = await asyncio.to_thread(self.network.find, ep.network)
        endpoints_mod.check_connect(c.host_config, net.name)
        if any(e.network == net.name for e in c.networks):
            raise errors.Forbidden(f"endpoint with name {c.name} already exists in network {net.name}")
        ep = replace(ep, network=net.name)
        endpoints_mod.check_endpoint(ep)
        ip, mac, ip6 = ep.ipv4_address or None, ep.mac_address or None, ep.ipv6_address or None
        async with self._lock_of(c.id):
            c = self._get(c.id)
            if c.state.alive:
                # a container left without endpoints (all disconnected) gets its published ports back here
                ports = () if self.network.endpoints(c.id) else _port_requests(c)
                att = await asyncio.to_thread(self.network.connect, c.id, net.name,
                                              aliases=endpoints_mod.dns_aliases(ep, c.short_id), ip=ip, mac=mac,
                                              ip6=ip6, ports=ports)
                try:
                    await self._apply_sysctls(c.id, att, ep)
                    await self._route_default(c, (*c.networks, ep))
                    await asyncio.to_thread(self._refresh_files, c, (*c.networks, ep), added=att.endpoint)
                except BaseException:
                    await asyncio.to_thread(self.network.disconnect, c.id, net.id)
                    raise
            self._get(c.id)  # again after the await: the container may have been removed meanwhile
            await self._amend(c.id, lambda cur: replace(cur, networks=(*cur.networks, ep)))
        self.events.publish(Event(type="network", action="connect", actor_id=net.id,
                                  attributes={"container": c.id, "name": net.name, "type": net.driver}))

    async def disconnect(self, ref: str, network: str) -> None:
        c = self._get(ref)
        if self.network is None:
            raise errors.NotFound(f"network {network} not found")
        net = await asyncio.to_thread(self.network.find, network)
        if net.name == "host" or c.host_config.network_mode == "host":
            raise errors.InvalidArgument("container cannot be disconnected from host network or connected to host "
                                         "network")
        async with self._lock_of(c.id):
            c = self._get(c.id)
            if not any(e.network == net.name for e in c.networks):
                # dockerd: an unclassified error (500), worded differently for a stopped container
                the = "network" if c.state.alive else "the network"
                raise errors.SystemError_(f"container {c.id} is not connected to {the} {net.name}")
            if c.state.alive:  # the new gateway first: the published ports move off the leaving endpoint
                gone = next((e for e in self.network.endpoints(c.id) if e.network_id == net.id), None)
                rest = tuple(e for e in c.networks if e.network != net.name)
                await self._route_default(c, rest)
                try:
                    await asyncio.to_thread(self.network.disconnect, c.id, net.id)
                except errors.NotFound:
                    pass
                await asyncio.to_thread(self._refresh_files, c, rest, removed=gone)
            self._get(c.id)  # again after the await: the container may have been removed meanwhile
            await self._amend(c.id, lambda cur: replace(cur, networks=tuple(e for e in cur.networks
                                                                            if e.network != net.name)))
        self.events.publish(Event(type="network", action="disconnect", actor_id=net.id,
                                  attributes={"container": c.id, "name": net.name, "type": net.driver}))

    def _refresh_files(self, c: Container, networks: tuple[EndpointConfig, ...], *, added: Any = None,
                       removed: Any = None) -> None:
        """After a live connect (`added` endpoint) or disconnect (`removed`): the endpoint's lines in
        /etc/hosts, and resolv.conf's nameserver (which network's gateway may have changed)."""
        for ep, change in ((added, self.files.add_hosts), (removed, self.files.remove_hosts)):
            if ep is not None:
                change(c, [ip for ip in (ep.ip, ep.ip6) if ip])
        self.files.write_resolv_conf(c, self._embedded_dns(networks))

    def reconcile(self, c: Container) -> Container:
        """At daemon start, for a container still running: its networks are the ones it has
        endpoints on. A `network connect` or `disconnect` the daemon died in the middle of is taken
        as done or undone the way the kernel was left (the endpoint record comes first)."""
        if self.network is None or endpoints_mod.joined_container(c.host_config.network_mode) is not None:
            return c
        live = {}
        for ep in self.network.endpoints(c.id):
            try:
                live[self.network.store.get_network(ep.network_id).name] = ep
            except errors.NotFound:
                continue
        kept = tuple(e for e in c.networks if e.network in live or e.network in ("none", "host"))
        added = tuple(EndpointConfig(network=name, aliases=tuple(a for a in ep.aliases if a != c.short_id))
                      for name, ep in live.items() if not any(e.network == name for e in c.networks))
        if live:
            self._restore_files(c, kept + added, list(live.values()))
        if kept == c.networks and not added:
            return c
        log.warning("container %s: networks %s recorded as its endpoints are after a crash", c.short_id,
                    sorted(live))
        return self._amend(c.id, lambda cur: replace(cur, networks=kept + added)).record or c

    def _restore_files(self, c: Container, networks: tuple[EndpointConfig, ...], eps: list[Any]) -> None:
        """hosts and resolv.conf as the endpoint records say (a kill may have cut a write short, or
        come between a live connect's endpoint and the files)."""
        joined = sorted(eps, key=lambda e: (len(e.ifname), e.ifname))  # eth0, eth1, …: the order they joined
        addresses = [ip for ep in joined for ip in (ep.ip, ep.ip6) if ip]
        entries = self._extra_hosts(c) + links.link_hosts(self._linked(c)) + own_entries(c, addresses)
        try:
            self.files.restore_hosts(c, entries, addresses)
            self.files.write_resolv_conf(c, self._embedded_dns(networks))
        except OSError as exc:
            log.warning("container %s: writing its hosts and resolv.conf: %s", c.short_id, exc)

    async def release(self, cid: str) -> None:
        if self.network is None:
            return
        try:
            await asyncio.to_thread(self.network.release, cid)
        except Exception as exc:
            log.warning("releasing the network of %s: %s", cid[:12], exc)

    # ---- what inspect, stats and the embedded DNS see --------------------------------------

    def info(self, cid: str) -> list[tuple[Any, Any]]:
        """(NetworkRecord, EndpointRecord or None) for each network the container is attached to
        (None: not connected now, the container is not running), for inspect and list."""
        if self.network is None:
            return []
        c = self._get(cid)
        live = {ep.network_id: ep for ep in self.network.endpoints(cid)}
        out = []
        for want in c.networks:
            try:
                net = self.network.find(want.network)
            except errors.NotFound:
                continue
            out.append((net, live.get(net.id)))
        return out

    def dns_view(self, client_ip: str) -> View | None:
        """What the embedded DNS server tells the container at `client_ip` (None: a stranger)."""
        if self.network is None:
            return None
        return dns_view(client_ip, network=self.network, lookup=self.store.get,
                        host_nameservers=self.files.host_nameservers)

    def sandbox_key(self, cid: str) -> str:
        """The container's network namespace file while it has one (NetworkSettings.SandboxKey)."""
        if self.network is None:
            return ""
        path = self.network.netns_path(cid)
        return str(path) if path.exists() else ""

    def stats(self, ref: str) -> dict[str, dict[str, int]] | None:
        """Interface counters of a running container with its own network (None: no endpoints)."""
        c = self._get(ref)
        if not c.state.alive or not c.state.pid or self.network is None:
            return None
        return self.network.interface_counters(c.id, c.state.pid)


def _port_requests(c: Container) -> list[portmap.PortRequest]:
    """The ports the container publishes: its bindings and, with -P, what it exposes besides."""
    hc = c.host_config
    ports = portmap.requests(hc.port_bindings)
    if hc.publish_all_ports:
        bound = {f"{p.container_port}/{p.proto}" for p in ports}
        exposed = {k if "/" in k else f"{k}/tcp" for k in c.config.exposed_ports}
        ports += portmap.publish_all(sorted(exposed - bound))
    return ports
