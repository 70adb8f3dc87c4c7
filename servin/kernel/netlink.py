"""Links, addresses and routes through netlink (pyroute2), and the sysctls the bridge needs.

IPv6 addresses are added with IFA_F_NODAD (usable at once, as dockerd's: the IPAM already made
them unique on the bridge).

`Netlink` works on the daemon's own network namespace (IPRoute) for the host side, and on a
container's namespace through a netlink socket created inside it by the netns helper
(`servin.kernel.netns`), so the daemon never enters a namespace. Blocking: call via to_thread.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from servin import errors

IFNAMSIZ = 15
IFA_F_NODAD = 0x02


def mac_from_ip(ip: ipaddress.IPv4Address) -> str:
    """Docker's MAC for an IPv4 endpoint: 02:42 followed by the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSide:
    """What goes into the container's namespace for one endpoint."""

    ifname: str  # eth0, eth1, …
    address: ipaddress.IPv4Interface | None  # ip/prefix (None: an IPv6-only network)
    mac: str
    gateway: ipaddress.IPv4Address | None  # the default route (None: no default route)
    mtu: int = 1500
    address6: ipaddress.IPv6Interface | None = None  # on a network with IPv6
    gateway6: ipaddress.IPv6Address | None = None  # the default IPv6 route


def _ignore(code: int, fn: Callable[[], object]) -> None:
    try:
        fn()
    except NetlinkError as e:
        if e.code != code:
            raise


def _add_address(ipr: IPRoute, idx: int, addr: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
    flags = {"flags": IFA_F_NODAD} if addr.version == 6 else {}
    _ignore(errno.EEXIST, lambda: ipr.addr("add", index=idx, address=str(addr.ip), prefixlen=addr.network.prefixlen,
                                           **flags))


class Netlink:
    """The host side through `IPRoute()` (the namespace of the calling process)."""

    def __init__(self, *, proc_sys: Path = Path("/proc/sys")) -> None:
        self.proc_sys = proc_sys

    # -- host side ------------------------------------------------------------------------

    def link_names(self) -> list[str]:
        with IPRoute() as ipr:
            return [str(link.get("ifname")) for link in ipr.get_links()]

    def routed_networks(self, family: int = socket.AF_INET) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Destinations of the host's routes of `family` (main table, the default route left out):
        a new network's subnet must not overlap them (another bridge, a VPN, the LAN)."""
        out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        with IPRoute() as ipr:
            for r in ipr.get_routes(family=family, table=254):
                dst, plen = r.get_attr("RTA_DST"), r.get("dst_len")
                if dst and plen:
                    out.append(ipaddress.ip_network(f"{dst}/{plen}", strict=False))
        return out

    def link_exists(self, name: str) -> bool:
        with IPRoute() as ipr:
            return bool(ipr.link_lookup(ifname=name))

    def ensure_bridge(self, name: str, address: ipaddress.IPv4Interface | None, *, mac: str, mtu: int = 1500,
                      address6: ipaddress.IPv6Interface | None = None) -> None:
        """The bridge `name` exists, has `address` (and `address6`) and `mac` (set explicitly so it
        does not change as ports come and go), and is up. Idempotent."""
        if len(name) > IFNAMSIZ:
            raise ValueError(f"bridge name {name!r} is longer than {IFNAMSIZ} characters")
        with IPRoute() as ipr:
            if not ipr.link_lookup(ifname=name):
                _ignore(errno.EEXIST, lambda: ipr.link("add", ifname=name, kind="bridge", address=mac, mtu=mtu))
            idx = ipr.link_lookup(ifname=name)[0]
            if address6 is not None:
                self.sysctl(f"net.ipv6.conf.{name}.disable_ipv6", "0")
            for addr, family in ((address, socket.AF_INET), (address6, socket.AF_INET6)):
                if addr is None:
                    continue
                have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=family)}
                if (str(addr.ip), addr.network.prefixlen) not in have:
                    _add_address(ipr, idx, addr)
            ipr.link("set", index=idx, state="up")

    def delete_address(self, name: str, address: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
        """Remove `address` from the link `name` (gone already: nothing to do)."""
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if found:
                _ignore(errno.EADDRNOTAVAIL, lambda: ipr.addr("del", index=found[0], address=str(address.ip),
                                                             prefixlen=address.network.prefixlen))

    def delete_link(self, name: str) -> bool:
        """Delete a link (a bridge, or a veth with its peer). False when it did not exist."""
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                return False
            _ignore(errno.ENODEV, lambda: ipr.link("del", index=found[0]))
            return True

    def create_veth(self, *, host_ifname: str, bridge: str, netns_fd: int, netns_socket: socket.socket,
                    side: ContainerSide) -> None:
        """A veth pair: `host_ifname` on `bridge` and up; its peer moved into the namespace (open
        fd of the namespace file) as side.ifname with side.mac, configured through
        `netns_socket` (a netlink socket inside that namespace; consumed)."""
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=bridge)
            if not found:  # deleted behind the daemon's back (ip link del): dockerd's words for it
                raise errors.SystemError_(f"adding interface {host_ifname} to bridge {bridge} failed: could not "
                                          f"find bridge {bridge}: route ip+net: no such network interface")
            bridge_idx = found[0]
            # one request: the pair, the host side on the bridge and up, the peer already named,
            # addressed (MAC) and inside the namespace (each extra link request costs ~3 ms)
            ipr.link("add", ifname=host_ifname, kind="veth", master=bridge_idx, mtu=side.mtu, state="up",
                     peer={"ifname": side.ifname, "address": side.mac, "mtu": side.mtu, "net_ns_fd": netns_fd})
            try:
                self._configure_inside(netns_socket, side.ifname, side)
            except BaseException:
                _ignore(errno.ENODEV, lambda: ipr.link("del", ifname=host_ifname))
                raise

    @staticmethod
    def _configure_inside(sock: socket.socket, peer_tmp: str, side: ContainerSide) -> None:
        with IPRoute(fileno=sock.detach()) as ns:
            lo = ns.link_lookup(ifname="lo")
            if lo:
                ns.link("set", index=lo[0], state="up")
            idx = ns.link_lookup(ifname=peer_tmp)[0]
            if peer_tmp != side.ifname:
                ns.link("set", index=idx, ifname=side.ifname)
            for addr in (side.address, side.address6):
                if addr is not None:
                    _add_address(ns, idx, addr)
            ns.link("set", index=idx, state="up")
            if side.ifname == "eth0":  # the first network is the default route
                if side.gateway is not None:
                    ns.route("add", dst="0.0.0.0/0", gateway=str(side.gateway), oif=idx)
                if side.gateway6 is not None:
                    ns.route("add", dst="::/0", gateway=str(side.gateway6), oif=idx, family=socket.AF_INET6)

    @staticmethod
    def set_default_route(sock: socket.socket, ifname: str, gateway: ipaddress.IPv4Address) -> None:
        """The namespace's IPv4 default route via `gateway` on `ifname` (replacing the one it had);
        the netlink socket is consumed."""
        with IPRoute(fileno=sock.detach()) as ns:
            found = ns.link_lookup(ifname=ifname)
            if found:
                ns.route("replace", dst="0.0.0.0/0", gateway=str(gateway), oif=found[0])

    @staticmethod
    def remove_inside(sock: socket.socket, ifname: str) -> None:
        """Delete `ifname` (and so its host peer) inside a namespace (disconnect of a running
        container); the netlink socket is consumed."""
        with IPRoute(fileno=sock.detach()) as ns:
            found = ns.link_lookup(ifname=ifname)
            if found:
                _ignore(errno.ENODEV, lambda: ns.link("del", index=found[0]))

    # -- sysctls --------------------------------------------------------------------------

    def sysctl(self, key: str, value: str) -> None:
        """Write net.ipv4.ip_forward style keys under /proc/sys (of the caller's namespace)."""
        path = self.proc_sys / key.replace(".", "/")
        if path.read_text().strip() != value:
            path.write_text(value + "\n")

    def read_sysctl(self, key: str) -> str:
        return (self.proc_sys / key.replace(".", "/")).read_text().strip()
