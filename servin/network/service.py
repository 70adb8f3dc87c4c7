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
    interface_counters(cid, pid)    stats: the counters of the container's interfaces
    shutdown()                      remove every device, rule and netns file (tests, uninstall)
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from pathlib import Path

from servin.network.names import check_network_name
from servin.errors import Conflict, InvalidArgument, NotFound, SystemError_
from servin.kernel import netns, procfs
from servin.kernel.netfilter import Netfilter, Rule
from servin.kernel.netlink import ContainerSide, Netlink, mac_from_ip
from servin.network import rules as R
from servin.network.ipam import DEFAULT_BRIDGE_SUBNET, DEFAULT_POOLS, Ipam, Pool, default_gateway
from servin.network.portmap import PortAllocator, PortRequest, ReservedPort, overlaps
from servin.network.store import EndpointRecord, NetworkRecord, NetworkStore, PortBinding


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    network: NetworkRecord
    endpoint: EndpointRecord
    netns_path: Path | None  # None: the host's namespace (driver host)
    prefixlen: int | None = None
    gateway: str | None = None


class NetworkService:
    def __init__(self, *, root: Path, exec_root: Path, netlink: Netlink | None = None,
                 netfilter: Netfilter | None = None, pools: Sequence[Pool] = DEFAULT_POOLS,
                 bridge_name: str = "servin0", bridge_subnet: ipaddress.IPv4Interface | None = None,
                 icc: bool = True, ports: PortAllocator | None = None, bridge_mtu: int | None = None,
                 reserved: Iterable[ReservedPort] = ()) -> None:
        """`reserved`: TCP ports no container may publish onto (the daemon's own listeners)."""
        self.store = NetworkStore(root)
        self.netns_dir = exec_root / "netns"
        self.netlink = netlink or Netlink()
        self.netfilter = netfilter or Netfilter()
        self.ipam = Ipam(pools)
        self.ports = ports or PortAllocator(reserved=reserved)
        self.bridge_name = bridge_name
        self.bridge_subnet = bridge_subnet or ipaddress.IPv4Interface(f"{default_gateway(DEFAULT_BRIDGE_SUBNET)}/16")
        self.icc = icc
        self.bridge_mtu = bridge_mtu  # the default bridge's (daemon --mtu); user networks take a driver option
        self.dns_ports: tuple[int, int] | None = None  # (udp, tcp) of the embedded DNS server, set before restore

    # -- paths and names ---------------------------------------------------------------------

    def netns_path(self, container_id: str) -> Path:
        return self.netns_dir / container_id

    # -- start / restore ---------------------------------------------------------------------

    def restore(self, running: Iterable[str]) -> None:
        alive = set(running)
        nets = {n.id: n for n in self.store.networks()}
        for n in nets.values():
            if n.subnet:
                self._add_to_ipam(n)
        for ep in self.store.endpoints():
            if ep.container_id not in alive or ep.network_id not in nets:
                self.netlink.delete_link(ep.host_ifname)
                self.store.delete_endpoint(ep.container_id, ep.network_id)
                continue
            if ep.ip:
                self.ipam.claim(ep.network_id, ipaddress.IPv4Address(ep.ip))
            for p in ep.ports:
                self.ports.claim(p.proto, p.host_ip, p.host_port)
        netns.cleanup(self.netns_dir, alive)
        for name, driver in (("bridge", "bridge"), ("host", "host"), ("none", "null")):
            if not any(n.name == name for n in nets.values()):
                is_bridge = driver == "bridge"
                self._create(name=name, driver=driver, subnet=self.bridge_subnet.network if is_bridge else None,
                             gateway=self.bridge_subnet.ip if is_bridge else None,
                             bridge=self.bridge_name if is_bridge else None,
                             options={MTU_OPTION: str(self.bridge_mtu)} if is_bridge and self.bridge_mtu else {})
        self.netlink.sysctl("net.ipv4.ip_forward", "1")
        all_rules: list[Rule] = []
        for n in self.store.networks():
            if n.driver == "bridge":
                self._ensure_bridge(n)
                all_rules += self._network_rules(n)
        for ep in self.store.endpoints():
            all_rules += self._endpoint_rules(self.store.get_network(ep.network_id), ep)
        own = {n.bridge for n in self.store.networks() if n.bridge}
        self.netfilter.setup(R.CHAINS, R.JUMPS, [*R.BASE, *all_rules], own=own)

    def publishers(self, host_ip: str, port: int, proto: str = "tcp") -> list[str]:
        """The containers (ids) whose published ports take `host_ip`:`port` ("" = every address)."""
        return sorted({ep.container_id for ep in self.store.endpoints() for b in ep.ports
                       if b.proto == proto and b.host_port == port and overlaps(b.host_ip, host_ip)})

    def shutdown(self) -> None:
        """Remove everything this service made in the kernel (records of networks stay)."""
        for ep in self.store.endpoints():
            self.netlink.delete_link(ep.host_ifname)
            self._release_endpoint(ep)
        for n in self.store.networks():
            if n.bridge:
                self.netlink.delete_link(n.bridge)
        netns.cleanup(self.netns_dir, ())
        self.netfilter.teardown(R.CHAINS, R.JUMPS)

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
                       attachable: bool = False) -> NetworkRecord:
        check_network_name(name)
        if any(n.name == name for n in self.store.networks()):
            raise Conflict(f"network with name {name} already exists")
        if driver != "bridge":
            raise InvalidArgument(f"only one instance of \"{driver}\" network is allowed")
        net = _parse(ipaddress.IPv4Network, subnet, "invalid CIDR address", strict=False) if subnet else None
        if net is not None:
            self.ipam.check_free(net)
        else:  # as dockerd: a default pool that no host route covers
            net = self.ipam.next_subnet(avoid=self.netlink.routed_networks())
        gw = _parse(ipaddress.IPv4Address, gateway, "invalid gateway address") if gateway else default_gateway(net)
        if ip_range:
            _parse(ipaddress.IPv4Network, ip_range, "invalid CIDR address")
        aux = {str(k): str(_parse(ipaddress.IPv4Address, v, "invalid auxiliary address"))
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
                           aux_addresses=aux, ipam_options=ipam_options, attachable=attachable)
        try:
            self._ensure_bridge(rec)
        except BaseException:  # no record of a network the kernel refused: restore() would trip on it
            self.netlink.delete_link(bridge)  # ours: checked absent above
            self.ipam.remove_network(rec.id)
            self.store.delete_network(rec.id)
            raise
        self.netfilter.add(self._network_rules(rec))
        return rec

    def _create(self, *, name: str, driver: str, subnet: ipaddress.IPv4Network | None,
                gateway: ipaddress.IPv4Address | None, bridge: str | None, options: Mapping[str, str] | None,
                ip_range: str | None = None, internal: bool = False, labels: Mapping[str, str] | None = None,
                nid: str | None = None, aux_addresses: Mapping[str, str] | None = None,
                ipam_options: Mapping[str, str] | None = None, attachable: bool = False) -> NetworkRecord:
        rec = NetworkRecord(
            id=nid or secrets.token_hex(32), name=name, driver=driver,
            subnet=str(subnet) if subnet else None, gateway=str(gateway) if gateway else None,
            ip_range=ip_range, internal=internal, labels=dict(labels or {}), options=dict(options or {}),
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(), bridge=bridge,
            aux_addresses=dict(aux_addresses or {}), attachable=attachable,
            ipam_options=dict(ipam_options) if ipam_options is not None else None)
        if subnet is not None:
            self._add_to_ipam(rec)
        self.store.put_network(rec)
        return rec

    def _add_to_ipam(self, n: NetworkRecord) -> None:
        self.ipam.add_network(n.id, n.subnet_net, n.gateway_ip,  # type: ignore[arg-type]
                              ipaddress.IPv4Network(n.ip_range) if n.ip_range else None)
        for addr in n.aux_addresses.values():  # the auxiliary addresses are never handed out
            self.ipam.claim(n.id, ipaddress.IPv4Address(addr))

    def remove_network(self, name_or_id: str) -> None:
        rec = self.find(name_or_id)
        if rec.name in ("bridge", "host", "none"):
            raise InvalidArgument(f"{rec.name} is a pre-defined network and cannot be removed")
        if self.store.endpoints(network_id=rec.id):
            raise Conflict(f"error while removing network: network {rec.name} id {rec.id} has active endpoints")
        self.netfilter.delete(self._network_rules(rec))
        if rec.bridge:
            self.netlink.delete_link(rec.bridge)
        self.ipam.remove_network(rec.id)
        self.store.delete_network(rec.id)

    def _ensure_bridge(self, n: NetworkRecord) -> None:
        assert n.bridge and n.subnet and n.gateway
        prefix = ipaddress.IPv4Network(n.subnet).prefixlen
        self.netlink.ensure_bridge(n.bridge, ipaddress.IPv4Interface(f"{n.gateway}/{prefix}"),
                                   mac=mac_from_ip(ipaddress.IPv4Address(n.gateway)), mtu=network_mtu(n))
        self.netlink.sysctl(f"net.ipv4.conf.{n.bridge}.route_localnet", "1")

    def _network_rules(self, n: NetworkRecord) -> list[Rule]:
        if n.driver != "bridge" or not n.bridge or not n.subnet:
            return []
        icc = (n.options.get("com.docker.network.bridge.enable_icc", "true") != "false") and (
            self.icc or n.name != "bridge")
        masquerade = n.options.get("com.docker.network.bridge.enable_ip_masquerade", "true") != "false"
        rules = R.network_rules(bridge=n.bridge, subnet=n.subnet, internal=n.internal, icc=icc, masquerade=masquerade)
        if n.name != "bridge" and self.dns_ports is not None and n.gateway:  # no embedded DNS on the default
            rules += R.dns_rules(bridge=n.bridge, gateway=n.gateway, udp_port=self.dns_ports[0],
                                 tcp_port=self.dns_ports[1])
        return rules

    def _endpoint_rules(self, n: NetworkRecord, ep: EndpointRecord) -> list[Rule]:
        if not n.bridge or not ep.ip:
            return []
        out: list[Rule] = []
        for p in ep.ports:
            out += R.port_rules(bridge=n.bridge, container_ip=ep.ip, proto=p.proto, container_port=p.container_port,
                                host_ip=p.host_ip, host_port=p.host_port)
        return out

    # -- endpoints -----------------------------------------------------------------------------

    def connect(self, container_id: str, name_or_id: str, *, aliases: Sequence[str] = (),
                ip: str | None = None, mac: str | None = None, ports: Sequence[PortRequest] = ()) -> Attachment:
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
        addr = self.ipam.allocate(n.id, ipaddress.IPv4Address(ip) if ip else None)
        bindings: list[PortBinding] = []
        ep: EndpointRecord | None = None
        try:
            for req in ports:
                hp = self.ports.allocate(req)
                bindings.append(PortBinding(container_port=req.container_port, proto=req.proto,
                                            host_ip=req.host_ip, host_port=hp))
            ifname = f"eth{len(self.store.endpoints(container_id=container_id))}"
            ep = EndpointRecord(id=secrets.token_hex(32), container_id=container_id, network_id=n.id,
                                ifname=ifname, host_ifname="veth" + secrets.token_hex(4), ip=str(addr),
                                mac=mac or mac_from_ip(addr), aliases=tuple(aliases), ports=tuple(bindings))
            self.store.put_endpoint(ep)  # first: a crash from here on is cleaned by restore
            net = ipaddress.IPv4Network(n.subnet)
            side = ContainerSide(ifname=ifname, address=ipaddress.IPv4Interface(f"{addr}/{net.prefixlen}"),
                                 mac=ep.mac or "", gateway=None if n.internal else n.gateway_ip, mtu=network_mtu(n))
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                self.netlink.create_veth(host_ifname=ep.host_ifname, bridge=n.bridge or "", netns_fd=fd,
                                         netns_socket=sock, side=side)
            finally:
                os.close(fd)
            self.netfilter.add(self._endpoint_rules(n, ep))
        except BaseException:
            if ep is not None:
                self.netlink.delete_link(ep.host_ifname)
                self._release_endpoint(ep)
            else:
                self.ipam.release(n.id, addr)
                for b in bindings:
                    self.ports.release(b.proto, b.host_ip, b.host_port)
            raise
        finally:
            sock.close()
        return Attachment(network=n, endpoint=ep, netns_path=path, prefixlen=net.prefixlen,
                          gateway=None if n.internal else n.gateway)

    def _release_endpoint(self, ep: EndpointRecord) -> None:
        try:
            n = self.store.get_network(ep.network_id)
            self.netfilter.delete(self._endpoint_rules(n, ep))
        except NotFound:
            pass
        if ep.ip:
            self.ipam.release(ep.network_id, ipaddress.IPv4Address(ep.ip))
        for p in ep.ports:
            self.ports.release(p.proto, p.host_ip, p.host_port)
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

    def set_default_route(self, container_id: str, name_or_id: str) -> None:
        """The container's IPv4 default route through its endpoint on the network (none when the
        network is internal)."""
        n = self.find(name_or_id)
        ep = self.store.get_endpoint(container_id, n.id)
        if n.internal or not n.gateway or not ep.ifname:
            return
        self.netlink.set_default_route(netns.open_netlink(self.netns_path(container_id)), ep.ifname,
                                       ipaddress.IPv4Address(n.gateway))

    def set_interface_sysctls(self, container_id: str, ifname: str, sysctls: Sequence[tuple[str, str]]) -> None:
        """An endpoint's sysctls (`net.X.Y.IFNAME.Z`, value) on its interface `ifname`, in the
        container's namespace."""
        named = [(name.replace(".IFNAME.", f".{ifname}.", 1), value) for name, value in sysctls]
        try:
            netns.write_sysctls(self.netns_path(container_id), named)
        except OSError as exc:
            raise SystemError_(exc.strerror or str(exc)) from None

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
