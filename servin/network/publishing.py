"""Published ports: the host ports a container's gateway endpoint takes, the DNAT rules that
serve them and the userland proxy for what DNAT cannot serve.

A request's host address picks the families, as dockerd's: "" both (IPv6 where the host can
listen on it), 0.0.0.0 or an IPv4 address IPv4 only, :: or an IPv6 address IPv6 only. Each family
is one `PortBinding` (what inspect, `docker port` and `docker ps` show), both with one host port.
A binding reaches the endpoint's address of its own family by DNAT (iptables or ip6tables), and
goes through the daemon's proxy (`servin.network.proxy`) when
  - the endpoint has no address of that family (host IPv6 to the container's IPv4, as docker-proxy
    does; host IPv4 to an IPv6-only container's IPv6), or
  - it takes the IPv6 loopback (:: or ::1): the proxy listens on the host address and gets only
    what the DNAT leaves to it, ::1 (ip6tables' OUTPUT jump skips it).

The bindings live on one endpoint record, the container's gateway endpoint (the first of its
networks in `core.endpoints.gateway_order`); when a live connect or disconnect changes that,
`move` takes them, with their host ports, to the new one (dockerd 28+ moves them too).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from servin.errors import Conflict
from servin.network import rules as R
from servin.network.firewall import DualStackFirewall, FamilyRules, rules_for
from servin.network.portmap import ANY_ADDRESS, PortAllocator, PortRequest, overlaps
from servin.network.proxy import ProxiedPort, UserlandProxy
from servin.network.store import EndpointRecord, NetworkRecord, NetworkStore, PortBinding

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where one binding goes: the container address, by DNAT, by the proxy, or both."""

    target: str
    dnat: bool
    proxy: bool


def route(binding: PortBinding, ep: EndpointRecord) -> Route | None:
    """How `binding` reaches the endpoint (None: the endpoint has no address at all)."""
    v6 = ":" in binding.host_ip
    same = ep.ip6 if v6 else ep.ip
    target = same or (ep.ip if v6 else ep.ip6)
    if not target:
        return None
    if not same:
        return Route(target=target, dnat=False, proxy=True)
    loopback6 = v6 and binding.host_ip in ("::", "::1")
    return Route(target=target, dnat=binding.host_ip != "::1", proxy=loopback6)


class Publisher:
    def __init__(self, *, store: NetworkStore, firewall: DualStackFirewall, ports: PortAllocator,
                 proxy: UserlandProxy | None = None, ipv6: bool = True) -> None:
        """`ipv6`: the host can listen on IPv6, so a binding with no host address takes :: too."""
        self.store = store
        self.firewall = firewall
        self.ports = ports
        self.proxy = proxy or UserlandProxy()
        self.ipv6 = ipv6

    def allocate(self, requests: Sequence[PortRequest], ep: EndpointRecord) -> tuple[PortBinding, ...]:
        """Host ports for the endpoint's bindings (each family of a request on one port)."""
        out: list[PortBinding] = []
        try:
            for req in requests:
                ips = [req.host_ip] if req.host_ip else [
                    *(["0.0.0.0"] if ep.ip else []), *(["::"] if self.ipv6 and (ep.ip or ep.ip6) else [])]
                if not ips:
                    continue
                port = self.ports.allocate(req, ips)
                out += [PortBinding(container_port=req.container_port, proto=req.proto, host_ip=ip,
                                    host_port=port) for ip in ips]
        except BaseException:
            self.release(out)
            raise
        return tuple(out)

    def release(self, bindings: Iterable[PortBinding]) -> None:
        for b in bindings:
            self.ports.release(b.proto, b.host_ip, b.host_port)

    def claim(self, ep: EndpointRecord) -> EndpointRecord:
        """At daemon start: the endpoint's host ports taken again (records of older versions, with
        "" for both families, get one binding per family); a binding that clashes is dropped."""
        kept: list[PortBinding] = []
        for b in _per_family(ep):
            try:
                self.ports.claim(b.proto, b.host_ip, b.host_port)
                kept.append(b)
            except Conflict as exc:
                log.warning("container %s: published port dropped: %s", ep.container_id[:12], exc.message)
        return replace(ep, ports=tuple(kept))

    def rules(self, n: NetworkRecord, ep: EndpointRecord) -> FamilyRules:
        """The DNAT and forward rules of the endpoint's bindings."""
        out = FamilyRules()
        if not n.bridge:
            return out
        for b in ep.ports:
            r = route(b, ep)
            if r is not None and r.dnat:
                out += rules_for(R.port_rules(bridge=n.bridge, container_ip=r.target, proto=b.proto,
                                              container_port=b.container_port,
                                              host_ip="" if b.host_ip in ANY_ADDRESS else b.host_ip,
                                              host_port=b.host_port), ipv6=":" in r.target)
        return out

    def all_rules(self) -> FamilyRules:
        """The rules of every endpoint's bindings (daemon start)."""
        out = FamilyRules()
        for ep in self.store.endpoints():
            out += self.rules(self.store.get_network(ep.network_id), ep)
        return out

    def serve_all(self) -> None:
        """The proxied paths of every endpoint's bindings (daemon start: the containers still running)."""
        for ep in self.store.endpoints():
            try:
                self.start_proxies(self.store.get_network(ep.network_id), ep)
            except Conflict as exc:
                log.warning("container %s: a published port is not served: %s", ep.container_id[:12], exc.message)

    def proxied(self, n: NetworkRecord, ep: EndpointRecord) -> list[ProxiedPort]:
        if not n.bridge:
            return []
        return [ProxiedPort(proto=b.proto, host_ip=b.host_ip, host_port=b.host_port, target_ip=r.target,
                            target_port=b.container_port)
                for b in ep.ports if (r := route(b, ep)) is not None and r.proxy]

    def start(self, n: NetworkRecord, ep: EndpointRecord) -> None:
        """The endpoint's rules and proxies (none of them left when one fails)."""
        rules = self.rules(n, ep)
        self.firewall.add(rules)
        try:
            self.start_proxies(n, ep)
        except BaseException:
            self.firewall.delete(rules)
            raise

    def start_proxies(self, n: NetworkRecord, ep: EndpointRecord) -> None:
        started: list[ProxiedPort] = []
        try:
            for p in self.proxied(n, ep):
                self.proxy.start(p)
                started.append(p)
        except BaseException:
            for p in started:
                self.proxy.stop(*p.key)
            raise

    def stop(self, n: NetworkRecord, ep: EndpointRecord) -> None:
        """The endpoint's rules and proxies off (its host ports stay taken)."""
        for p in self.proxied(n, ep):
            self.proxy.stop(*p.key)
        self.firewall.delete(self.rules(n, ep))

    def move(self, container_id: str, network_id: str) -> None:
        """The container's bindings, with their host ports, onto its endpoint on `network_id` (its
        new gateway endpoint): rules and proxies of the old endpoint off, the new one's on."""
        eps = self.store.endpoints(container_id=container_id)
        holder = next((e for e in eps if e.ports), None)
        target = next((e for e in eps if e.network_id == network_id), None)
        if holder is None or target is None or holder.id == target.id:
            return
        old_n, new_n = self.store.get_network(holder.network_id), self.store.get_network(network_id)
        moved = replace(target, ports=holder.ports, ports_generation=holder.ports_generation + 1)
        self.stop(old_n, holder)
        try:
            self.start(new_n, moved)
        except BaseException:
            self.start(old_n, holder)
            raise
        # the new holder first: a kill between the writes leaves the ports on both, and
        # `dedupe` keeps them on the newer generation (the new one) at restore
        self.store.put_endpoint(moved)
        self.store.put_endpoint(replace(holder, ports=()))

    def dedupe(self, endpoints: Iterable[EndpointRecord]) -> list[EndpointRecord]:
        """At daemon start: a container's published ports on one endpoint only, the one a move
        (killed between its two writes) gave them last; the others' records cleared."""
        holders: dict[str, EndpointRecord] = {}
        out: list[EndpointRecord] = []
        for ep in sorted(endpoints, key=lambda e: -e.ports_generation):
            if ep.ports and ep.container_id in holders:
                log.warning("container %s: published ports found on two endpoints after a crash, kept on %s",
                            ep.container_id[:12], holders[ep.container_id].network_id[:12])
                ep = replace(ep, ports=())
                self.store.put_endpoint(ep)
            elif ep.ports:
                holders[ep.container_id] = ep
            out.append(ep)
        return out

    def close(self) -> None:
        self.proxy.close()


def publishers(endpoints: Iterable[EndpointRecord], host_ip: str, port: int, proto: str = "tcp") -> list[str]:
    """The containers (ids) whose published ports take `host_ip`:`port` ("" = every address)."""
    return sorted({ep.container_id for ep in endpoints for b in ep.ports
                   if b.proto == proto and b.host_port == port and overlaps(b.host_ip, host_ip)})


def _per_family(ep: EndpointRecord) -> list[PortBinding]:
    """The bindings with "" (older records: every address) as one per family the endpoint had."""
    out: list[PortBinding] = []
    for b in ep.ports:
        if b.host_ip:
            out.append(b)
        else:
            out += [replace(b, host_ip=ip) for ip, has in (("0.0.0.0", ep.ip), ("::", ep.ip6)) if has]
    return out
