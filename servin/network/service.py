"""NetworkService: networks, endpoints and published ports, from records to kernel state.

The engine calls (all blocking: through asyncio.to_thread):
    restore(running)                at daemon start (also after kill -9): rebuild IPAM and ports from
                                    the endpoint records, drop endpoints and netns files of
                                    containers no longer running, re-create bridges and the whole
                                    iptables ruleset
    create_network(...) / remove_network(id) / networks()
    connect(cid, nid, ...)          before start (or live): the netns file exists afterwards;
                                    returns an Attachment (netns path, address, gateway, MAC, ports)
    disconnect(cid, nid) / release(cid)   release: all endpoints and the netns file (stop, remove)
    set_gateway(cid, nid)           after a live connect or disconnect: the default route and the
                                    published ports go to the container's endpoint on that network
    interface_counters(cid, pid)    stats: the counters of the container's interfaces
    shutdown()                      remove every device, rule and netns file (tests, uninstall)

IPv6 (networks with enable_ipv6, and the default bridge with `bridge_ipv6`): a second IPAM of the
IPv6 pools (dockerd's ULA /48 of the engine ID unless daemon.json names IPv6 pools), the IPv6
gateway on the bridge and an IPv6 address on each endpoint, ip6tables rules as the IPv4 ones
(`servin.network.firewall`), and IPv6 forwarding on while such a network exists.

Published ports (host ports, DNAT rules, the daemon's userland proxy for [::1] and for a family the
container has no address of) are `servin.network.publishing`'s.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from pathlib import Path

from servin.network.names import check_network_name
from servin.errors import Conflict, InvalidArgument, NotFound
from servin.kernel import netns, procfs
from servin.kernel.netfilter import Netfilter
from servin.kernel.netlink import ContainerSide, Netlink, mac_from_ip
from servin.network import rules as R
from servin.network.dns import EmbeddedDns, dns_rules_of
from servin.network.firewall import DualStackFirewall, FamilyRules, ip6tables, rules_for
from servin.network.ipam import (DEFAULT_BRIDGE_SUBNET, DEFAULT_POOLS, IPAddress, IPNetwork, Ipam, Pool,
                                 check_ipv6_subnet, default_gateway, ula_pool)
from servin.network.portmap import PortAllocator, PortRequest, ReservedPort
from servin.network.proxy import UserlandProxy
from servin.network.publishing import Publisher, publishers
from servin.network.store import EndpointRecord, NetworkRecord, NetworkStore


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    network: NetworkRecord
    endpoint: EndpointRecord
    netns_path: Path | None  # None: the host's namespace (driver host)
    prefixlen: int | None = None
    gateway: str | None = None
    prefixlen6: int | None = None
    gateway6: str | None = None


class NetworkService:
    def __init__(self, *, root: Path, exec_root: Path, netlink: Netlink | None = None,
                 netfilter: Netfilter | None = None, pools: Sequence[Pool] = DEFAULT_POOLS,
                 bridge_name: str = "servin0", bridge_subnet: ipaddress.IPv4Interface | None = None,
                 icc: bool = True, ports: PortAllocator | None = None, bridge_mtu: int | None = None,
                 reserved: Iterable[ReservedPort] = (), netfilter6: Netfilter | None = None, engine_id: str = "",
                 bridge_ipv6: bool = False, bridge_subnet6: ipaddress.IPv6Network | None = None,
                 proxy: UserlandProxy | None = None, host_ipv6: bool | None = None) -> None:
        """`reserved`: TCP ports no container may publish onto (the daemon's own listeners);
        `bridge_ipv6`: the default bridge has IPv6 (daemon --ipv6), in `bridge_subnet6`
        (--fixed-cidr-v6) or else a subnet of the IPv6 pools; `host_ipv6`: the host can listen on
        IPv6 (probed when None), so ports published on no address take :: too."""
        self.store = NetworkStore(root)
        self.netns_dir = exec_root / "netns"
        self.netlink = netlink or Netlink()
        self.firewall = DualStackFirewall(netfilter or Netfilter(), netfilter6 or ip6tables())
        self.ipam = Ipam(pools)
        self.ipam6 = Ipam(pools if any(p.base.version == 6 for p in pools) else (ula_pool(engine_id),), version=6)
        self.bridge_ipv6 = bridge_ipv6
        self.bridge_subnet6 = bridge_subnet6
        self.ports = ports or PortAllocator(reserved=reserved)
        self.publisher = Publisher(store=self.store, firewall=self.firewall, ports=self.ports, proxy=proxy,
                                   ipv6=ipv6_listenable() if host_ipv6 is None else host_ipv6)
        self.bridge_name = bridge_name
        self.bridge_subnet = bridge_subnet or ipaddress.IPv4Interface(f"{default_gateway(DEFAULT_BRIDGE_SUBNET)}/16")
        self.icc = icc
        self.bridge_mtu = bridge_mtu  # the default bridge's (daemon --mtu); user networks take a driver option
        self.dns: EmbeddedDns | None = None  # the embedded DNS server (its listeners), set before restore

    # -- paths and names ---------------------------------------------------------------------

    def netns_path(self, container_id: str) -> Path:
        return self.netns_dir / container_id

    # -- start / restore ---------------------------------------------------------------------

    def restore(self, running: Iterable[str]) -> None:
        alive = set(running)
        nets = {n.id: n for n in self.store.networks()}
        for n in nets.values():
            self._add_to_ipam(n)
        for ep in self.publisher.dedupe(self.store.endpoints()):
            if ep.container_id not in alive or ep.network_id not in nets:
                self.netlink.delete_link(ep.host_ifname)
                self.store.delete_endpoint(ep.container_id, ep.network_id)
                continue
            if ep.ip:
                self.ipam.claim(ep.network_id, ipaddress.IPv4Address(ep.ip))
            if ep.ip6:
                self.ipam6.claim(ep.network_id, ipaddress.IPv6Address(ep.ip6))
            if ep.ports and (claimed := self.publisher.claim(ep)) != ep:
                self.store.put_endpoint(claimed)
        netns.cleanup(self.netns_dir, alive)
        for name, driver in (("bridge", "bridge"), ("host", "host"), ("none", "null")):
            if not any(n.name == name for n in nets.values()):
                is_bridge = driver == "bridge"
                self._create(name=name, driver=driver, subnet=self.bridge_subnet.network if is_bridge else None,
                             gateway=self.bridge_subnet.ip if is_bridge else None,
                             bridge=self.bridge_name if is_bridge else None,
                             options={MTU_OPTION: str(self.bridge_mtu)} if is_bridge and self.bridge_mtu else {},
                             **(self._default_bridge_ipv6() if is_bridge else {}))
            elif name == "bridge":
                self._follow_ipv6_config(next(n for n in nets.values() if n.name == name))
        self.netlink.sysctl("net.ipv4.ip_forward", "1")
        all_rules = FamilyRules()
        for n in self.store.networks():
            if n.driver == "bridge":
                ensure_bridge(self.netlink, n)
                all_rules += network_rules(n, icc=self.icc, dns=self.dns)
        own = {n.bridge for n in self.store.networks() if n.bridge}
        self.firewall.setup(all_rules + self.publisher.all_rules(), own=own)
        self.publisher.serve_all()

    def _default_bridge_ipv6(self) -> dict[str, Any]:
        """The IPv6 part of a new default bridge network's record (daemon --ipv6, --fixed-cidr-v6)."""
        if not self.bridge_ipv6:
            return {}
        subnet6 = self.bridge_subnet6 or self.ipam6.next_subnet(avoid=self.netlink.routed_networks(socket.AF_INET6))
        return {"enable_ipv6": True, "subnet6": subnet6, "gateway6": default_gateway(subnet6)}

    def _follow_ipv6_config(self, n: NetworkRecord) -> None:
        """The default bridge follows the daemon's IPv6 settings at each start, as dockerd recreates it."""
        if n.enable_ipv6 == self.bridge_ipv6 and (self.bridge_subnet6 is None or n.subnet6 == str(self.bridge_subnet6)):
            return
        if n.bridge and n.subnet6 and n.gateway6:  # the old IPv6 gateway leaves the bridge
            self.netlink.delete_address(n.bridge, ipaddress.IPv6Interface(f"{n.gateway6}/{n.subnet6.split('/')[1]}"))
        self.ipam6.remove_network(n.id)
        v6 = self._default_bridge_ipv6()
        rec = replace(n, enable_ipv6=bool(v6), subnet6=str(v6["subnet6"]) if v6 else None,
                      gateway6=str(v6["gateway6"]) if v6 else None, ip_range6=None)
        self.store.put_network(rec)
        self._add_to_ipam(rec)

    def publishers(self, host_ip: str, port: int, proto: str = "tcp") -> list[str]:
        """The containers (ids) whose published ports take `host_ip`:`port` ("" = every address)."""
        return publishers(self.store.endpoints(), host_ip, port, proto)

    def shutdown(self) -> None:
        """Remove everything this service made in the kernel (records of networks stay)."""
        for ep in self.store.endpoints():
            self.netlink.delete_link(ep.host_ifname)
            self._release_endpoint(ep)
        for n in self.store.networks():
            if n.bridge:
                self.netlink.delete_link(n.bridge)
        netns.cleanup(self.netns_dir, ())
        self.firewall.teardown()
        self.publisher.close()

    # -- networks ------------------------------------------------------------------------------

    def networks(self) -> list[NetworkRecord]:
        return self.store.networks()

    def find(self, name_or_id: str) -> NetworkRecord:
        nets = self.store.networks()
        for n in nets:
            if name_or_id in (n.id, n.name):
                return n
        matches = [n for n in nets if n.id.startswith(name_or_id)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"network {name_or_id} not found")

    def create_network(self, name: str, *, driver: str = "bridge", subnet: str | None = None,
                       gateway: str | None = None, ip_range: str | None = None, internal: bool = False,
                       labels: Mapping[str, str] | None = None, options: Mapping[str, str] | None = None,
                       aux_addresses: Mapping[str, str] | None = None, ipam_options: Mapping[str, str] | None = None,
                       attachable: bool = False, enable_ipv4: bool = True, enable_ipv6: bool = False,
                       subnet6: str | None = None, gateway6: str | None = None,
                       ip_range6: str | None = None) -> NetworkRecord:
        """A bridge network: IPv4 (unless `enable_ipv4` is False), IPv6 with `enable_ipv6`; a
        family's subnet from the pools when none is given."""
        check_network_name(name)
        if any(n.name == name for n in self.store.networks()):
            raise Conflict(f"network with name {name} already exists")
        if driver != "bridge":
            raise InvalidArgument(f"only one instance of \"{driver}\" network is allowed")
        if not enable_ipv4 and not enable_ipv6:
            raise InvalidArgument("IPv4 or IPv6 must be enabled")
        if enable_ipv6 and not self.firewall.ipv6:
            raise InvalidArgument("IPv6 networks are not available: ip6tables does not work on this host")
        net, gw = pick_subnet(self.ipam, subnet, gateway, ip_range, self.netlink.routed_networks) \
            if enable_ipv4 else (None, None)
        net6, gw6 = pick_subnet(self.ipam6, subnet6, gateway6, ip_range6,
                                lambda: self.netlink.routed_networks(socket.AF_INET6)) if enable_ipv6 else (None, None)
        aux = {str(k): str(_parse(ipaddress.ip_address, v, "invalid auxiliary address"))
               for k, v in (aux_addresses or {}).items()}
        mtu = (options or {}).get(MTU_OPTION)
        if mtu is not None and not (str(mtu).isdigit() and 68 <= int(mtu) <= 65535):
            raise InvalidArgument(f"invalid MTU number: {mtu}")
        nid = secrets.token_hex(32)
        bridge = (options or {}).get(BRIDGE_NAME_OPTION) or f"br-{nid[:12]}"
        check_bridge_name(bridge, [n.bridge for n in self.store.networks()])
        if bridge in self.netlink.link_names():  # a host interface: never adopted, so never deleted
            raise Conflict(f"cannot create network with bridge name {bridge}: an interface of that name "
                           "already exists on the host")
        rec = self._create(name=name, driver="bridge", subnet=net, gateway=gw, ip_range=ip_range,
                           internal=internal, labels=labels, options=options, bridge=bridge, nid=nid,
                           aux_addresses=aux, ipam_options=ipam_options, attachable=attachable,
                           enable_ipv4=enable_ipv4, enable_ipv6=enable_ipv6, subnet6=net6, gateway6=gw6,
                           ip_range6=ip_range6)
        try:
            ensure_bridge(self.netlink, rec)
            self.firewall.add(network_rules(rec, icc=self.icc, dns=self.dns))  # opens its IPv6 DNS listener
        except BaseException:  # no record of a network the kernel refused: restore() would trip on it
            if self.dns is not None:
                self.dns.close_gateway(rec.id)
            self.netlink.delete_link(bridge)  # ours: checked absent above
            self.ipam.remove_network(rec.id)
            self.ipam6.remove_network(rec.id)
            self.store.delete_network(rec.id)
            raise
        return rec

    def _create(self, *, name: str, driver: str, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network | None,
                gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None, bridge: str | None,
                options: Mapping[str, str] | None,
                ip_range: str | None = None, internal: bool = False, labels: Mapping[str, str] | None = None,
                nid: str | None = None, aux_addresses: Mapping[str, str] | None = None,
                ipam_options: Mapping[str, str] | None = None, attachable: bool = False, enable_ipv4: bool = True,
                enable_ipv6: bool = False, subnet6: object = None, gateway6: object = None,
                ip_range6: str | None = None) -> NetworkRecord:
        rec = NetworkRecord(
            id=nid or secrets.token_hex(32), name=name, driver=driver,
            subnet=str(subnet) if subnet else None, gateway=str(gateway) if gateway else None,
            ip_range=ip_range, internal=internal, labels=dict(labels or {}), options=dict(options or {}),
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(), bridge=bridge,
            aux_addresses=dict(aux_addresses or {}), attachable=attachable,
            ipam_options=dict(ipam_options) if ipam_options is not None else None,
            enable_ipv4=enable_ipv4, enable_ipv6=enable_ipv6, subnet6=str(subnet6) if subnet6 else None,
            gateway6=str(gateway6) if gateway6 else None, ip_range6=ip_range6)
        self._add_to_ipam(rec)
        self.store.put_network(rec)
        return rec

    def _add_to_ipam(self, n: NetworkRecord) -> None:
        """The network's subnets and auxiliary addresses (never handed out) into the IPAMs; a
        refused one leaves neither IPAM holding the network."""
        try:
            if n.subnet:
                self.ipam.add_network(n.id, ipaddress.IPv4Network(n.subnet), n.gateway_ip,
                                      ipaddress.IPv4Network(n.ip_range) if n.ip_range else None)
            if n.subnet6:
                self.ipam6.add_network(n.id, ipaddress.IPv6Network(n.subnet6), n.gateway6_ip,
                                       ipaddress.IPv6Network(n.ip_range6) if n.ip_range6 else None)
            for addr in n.aux_addresses.values():
                ip = ipaddress.ip_address(addr)
                (self.ipam if ip.version == 4 else self.ipam6).claim(n.id, ip)
        except BaseException:
            self.ipam.remove_network(n.id)
            self.ipam6.remove_network(n.id)
            raise

    def remove_network(self, name_or_id: str) -> None:
        rec = self.find(name_or_id)
        if rec.name in ("bridge", "host", "none"):
            raise InvalidArgument(f"{rec.name} is a pre-defined network and cannot be removed")
        if self.store.endpoints(network_id=rec.id):
            raise Conflict(f"error while removing network: network {rec.name} id {rec.id} has active endpoints")
        self.firewall.delete(network_rules(rec, icc=self.icc, dns=self.dns))
        if self.dns is not None:
            self.dns.close_gateway(rec.id)
        if rec.bridge:
            self.netlink.delete_link(rec.bridge)
        self.ipam.remove_network(rec.id)
        self.ipam6.remove_network(rec.id)
        self.store.delete_network(rec.id)

    # -- endpoints -----------------------------------------------------------------------------

    def connect(self, container_id: str, name_or_id: str, *, aliases: Sequence[str] = (),
                ip: str | None = None, mac: str | None = None, ports: Sequence[PortRequest] = (),
                ip6: str | None = None) -> Attachment:
        """`ip`, `ip6`: fixed addresses (--ip, --ip6); `ports` are published on this endpoint."""
        n = self.find(name_or_id)
        if n.driver == "host":
            return Attachment(network=n, netns_path=None, endpoint=EndpointRecord(
                id="", container_id=container_id, network_id=n.id, ifname="", host_ifname=""))
        try:
            self.store.get_endpoint(container_id, n.id)
            raise Conflict(f"endpoint with name {container_id} already exists in network {n.name}")
        except NotFound:
            pass
        path = self.netns_path(container_id)
        sock = None if path.exists() else netns.create(path)
        if n.driver == "null":
            if sock is not None:
                sock.close()
            return Attachment(network=n, netns_path=path, endpoint=EndpointRecord(
                id="", container_id=container_id, network_id=n.id, ifname="", host_ifname=""))
        if sock is None:
            sock = netns.open_netlink(path)
        addr = addr6 = None
        ep: EndpointRecord | None = None
        try:
            if ip6 and not n.enable_ipv6:
                raise InvalidArgument(f"invalid endpoint settings: user specified IP address {ip6} is not "
                                      f"allowed: network {n.name} does not have IPv6 enabled")
            if ip and not n.subnet:
                raise InvalidArgument(f"invalid endpoint settings: user specified IP address {ip} is not "
                                      f"allowed: network {n.name} does not have IPv4 enabled")
            addr = self.ipam.allocate(n.id, ipaddress.IPv4Address(ip) if ip else None) if n.subnet else None
            addr6 = self.ipam6.allocate(n.id, ipaddress.IPv6Address(ip6) if ip6 else None) if n.subnet6 else None
            ifname = next_ifname([e.ifname for e in self.store.endpoints(container_id=container_id)])
            draft = EndpointRecord(id=secrets.token_hex(32), container_id=container_id, network_id=n.id,
                                   ifname=ifname, host_ifname="veth" + secrets.token_hex(4),
                                   ip=str(addr) if addr else None, ip6=str(addr6) if addr6 else None,
                                   mac=mac or (mac_from_ip(addr) if addr else mac_from_id(secrets.token_hex(8))),  # type: ignore[arg-type]
                                   aliases=tuple(aliases))
            ep = replace(draft, ports=self.publisher.allocate(ports, draft))
            self.store.put_endpoint(ep)  # first: a crash from here on is cleaned by restore
            net = ipaddress.IPv4Network(n.subnet) if n.subnet else None
            net6 = ipaddress.IPv6Network(n.subnet6) if n.subnet6 else None
            side = ContainerSide(ifname=ifname,
                                 address=ipaddress.IPv4Interface(f"{addr}/{net.prefixlen}") if net else None,
                                 mac=ep.mac or "", gateway=None if n.internal else n.gateway_ip, mtu=network_mtu(n),
                                 address6=ipaddress.IPv6Interface(f"{addr6}/{net6.prefixlen}") if net6 else None,
                                 gateway6=None if n.internal else n.gateway6_ip)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                self.netlink.create_veth(host_ifname=ep.host_ifname, bridge=n.bridge or "", netns_fd=fd,
                                         netns_socket=sock, side=side)
            finally:
                os.close(fd)
            self.publisher.start(n, ep)
        except BaseException:
            if ep is not None:
                self.netlink.delete_link(ep.host_ifname)
                self._release_endpoint(ep)
            else:
                if addr is not None:
                    self.ipam.release(n.id, addr)
                if addr6 is not None:
                    self.ipam6.release(n.id, addr6)
            raise
        finally:
            sock.close()
        return Attachment(network=n, endpoint=ep, netns_path=path, prefixlen=net.prefixlen if net else None,
                          gateway=None if n.internal else n.gateway,
                          prefixlen6=net6.prefixlen if net6 else None, gateway6=None if n.internal else n.gateway6)

    def _release_endpoint(self, ep: EndpointRecord) -> None:
        try:
            self.publisher.stop(self.store.get_network(ep.network_id), ep)
        except NotFound:
            pass
        if ep.ip:
            self.ipam.release(ep.network_id, ipaddress.IPv4Address(ep.ip))
        if ep.ip6:
            self.ipam6.release(ep.network_id, ipaddress.IPv6Address(ep.ip6))
        self.publisher.release(ep.ports)
        self.store.delete_endpoint(ep.container_id, ep.network_id)

    def disconnect(self, container_id: str, name_or_id: str) -> None:
        n = self.find(name_or_id)
        ep = self.store.get_endpoint(container_id, n.id)
        self.netlink.delete_link(ep.host_ifname)  # the peer inside goes with it
        self._release_endpoint(ep)

    def release(self, container_id: str) -> None:
        """Every endpoint of the container and its netns file (container stopped or removed)."""
        for ep in self.store.endpoints(container_id=container_id):
            # no link deletion: once the file is unmounted the dead container's namespace goes,
            # and the kernel removes the veth pair with it (a synchronous delete cost ~20 ms)
            self._release_endpoint(ep)
        netns.delete(self.netns_path(container_id))

    def endpoints(self, container_id: str) -> list[EndpointRecord]:
        return self.store.endpoints(container_id=container_id)

    def endpoints_all(self) -> list[EndpointRecord]:
        return self.store.endpoints()

    def set_gateway(self, container_id: str, name_or_id: str) -> None:
        """The container's gateway endpoint is the one on the network: its published ports move
        there and its IPv4 default route goes through it (none when the network is internal)."""
        n = self.find(name_or_id)
        ep = self.store.get_endpoint(container_id, n.id)
        self.publisher.move(container_id, n.id)
        if n.internal or not n.gateway or not ep.ifname:
            return
        self.netlink.set_default_route(netns.open_netlink(self.netns_path(container_id)), ep.ifname,
                                       ipaddress.IPv4Address(n.gateway))

    def set_sysctls(self, container_id: str, sysctls: Sequence[tuple[str, str]]) -> None:
        """`net.…` sysctls (name, value) in the container's network namespace (an endpoint's)."""
        netns.write_sysctls(self.netns_path(container_id), sysctls)

    def interface_counters(self, container_id: str, pid: int) -> dict[str, dict[str, int]] | None:
        """The counters of a container's interfaces (Docker's names, loopback left out), read in the
        namespace of its process `pid`; None when it has no endpoints or the process is gone."""
        if not self.endpoints(container_id):
            return None
        try:
            return procfs.net_dev(pid)
        except OSError:
            return None


_T = TypeVar("_T")


def _parse(kind: Callable[..., _T], value: str, what: str, **kw: bool) -> _T:
    try:
        return kind(value, **kw)
    except ValueError:
        raise InvalidArgument(f"{what}: {value}") from None


def ensure_bridge(netlink: Netlink, n: NetworkRecord) -> None:
    """The network's bridge with its gateway addresses, route_localnet (127.0.0.1 published ports)
    and, with IPv6, forwarding on."""
    assert n.bridge and (n.gateway or n.gateway6)
    address = ipaddress.IPv4Interface(f"{n.gateway}/{n.subnet.split('/')[1]}") if n.gateway and n.subnet else None
    address6 = ipaddress.IPv6Interface(f"{n.gateway6}/{n.subnet6.split('/')[1]}") \
        if n.gateway6 and n.subnet6 else None
    mac = mac_from_ip(address.ip) if address is not None else mac_from_id(n.id)
    netlink.ensure_bridge(n.bridge, address, mac=mac, mtu=network_mtu(n), address6=address6)
    netlink.sysctl(f"net.ipv4.conf.{n.bridge}.route_localnet", "1")
    if address6 is not None:  # as dockerd: routing between the bridge and the rest needs it on
        netlink.sysctl("net.ipv6.conf.all.forwarding", "1")


def network_rules(n: NetworkRecord, *, icc: bool, dns: EmbeddedDns | None) -> FamilyRules:
    """The rules of a bridge network in both families: `icc` is the daemon's (--icc, for the
    default bridge), `dns` the embedded DNS server (user-defined networks: `dns.dns_rules_of`)."""
    if n.driver != "bridge" or not n.bridge or not (n.subnet or n.subnet6):
        return FamilyRules()
    icc = (n.options.get("com.docker.network.bridge.enable_icc", "true") != "false") and (icc or n.name != "bridge")
    masquerade = n.options.get("com.docker.network.bridge.enable_ip_masquerade", "true") != "false"
    out = FamilyRules()
    for subnet, v6 in ((n.subnet, False), (n.subnet6, True)):
        if subnet:
            out += rules_for(R.network_rules(bridge=n.bridge, subnet=subnet, internal=n.internal, icc=icc,
                                             masquerade=masquerade), ipv6=v6)
    out += dns_rules_of(n, dns)  # the embedded DNS's (none on the default bridge)
    return out


MTU_OPTION = "com.docker.network.driver.mtu"


def network_mtu(n: NetworkRecord) -> int:
    """The network's MTU (driver option com.docker.network.driver.mtu, as dockerd), 1500 by default."""
    value = str(n.options.get(MTU_OPTION, "") or "")
    return int(value) if value.isdigit() else 1500


BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def check_bridge_name(bridge: str, taken: list[str | None]) -> None:
    """A bridge name the kernel takes as an interface name (dev_valid_name: 1-15 bytes, not "." or
    "..", no "/", ":" or whitespace) and that no other network uses."""
    raw = bridge.encode(errors="surrogateescape")
    if (not 0 < len(raw) < 16 or bridge in (".", "..") or any(c in bridge for c in "/:") or
            any(c.isspace() for c in bridge)):
        raise InvalidArgument(f"invalid {BRIDGE_NAME_OPTION} {bridge!r}: an interface name of 1 to 15 "
                              "characters without '/', ':' or spaces")
    if bridge in taken:
        raise Conflict(f"bridge name {bridge} is already in use by another network")


def pick_subnet(ipam: Ipam, subnet: str | None, gateway: str | None, ip_range: str | None,
                routed: Callable[[], Sequence[IPNetwork]]) -> tuple[IPNetwork, IPAddress]:
    """A new network's subnet and gateway of the IPAM's family: as given (checked free), or the
    first pool subnet no network and no host route (`routed`) covers, as dockerd."""
    version = ipam.version
    if subnet:
        net = _parse(ipaddress.ip_network, subnet, "invalid CIDR address", strict=False)
        if net.version != version:
            raise InvalidArgument(f"invalid subnet {subnet}: not an IPv{version} subnet")
        if isinstance(net, ipaddress.IPv6Network):
            check_ipv6_subnet(net)
        ipam.check_free(net)
    else:
        net = ipam.next_subnet(avoid=routed())
    gw = _parse(ipaddress.ip_address, gateway, "invalid gateway address") if gateway else default_gateway(net)
    if gw.version != version:
        raise InvalidArgument(f"invalid gateway {gateway}: parent subnet is an IPv{version} block")
    if ip_range and _parse(ipaddress.ip_network, ip_range, "invalid CIDR address").version != version:
        raise InvalidArgument(f"invalid ip-range {ip_range}: parent subnet is an IPv{version} block")
    return net, gw


def ipv6_listenable() -> bool:
    """Whether the host can listen on IPv6 (dockerd's netutils.IsV6Listenable)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def next_ifname(taken: Sequence[str]) -> str:
    """The next interface in the container: one after the highest it has, as dockerd counts up (a
    disconnect frees a name in the middle, which a count of the endpoints would hand out twice)."""
    numbers = [int(n[3:]) for n in taken if n.startswith("eth") and n[3:].isdigit()]
    return f"eth{max(numbers) + 1 if numbers else 0}"


def mac_from_id(seed: str) -> str:
    """A locally administered MAC for an interface with no IPv4 address to derive it from."""
    raw = bytes.fromhex(seed[:8].ljust(8, "0"))
    return "02:42:" + ":".join(f"{b:02x}" for b in raw)
