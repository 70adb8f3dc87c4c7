"""Links, addresses and routes through netlink (pyroute2), and the IPv4 sysctls the bridge needs.

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


def mac_from_ip(ip: ipaddress.IPv4Address) -> str:
    """Docker's MAC for an IPv4 endpoint: 02:42 followed by the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSide:
    """What goes into the container's namespace for one endpoint."""

    ifname: str  # eth0, eth1, …
    address: ipaddress.IPv4Interface  # ip/prefix
    mac: str
    gateway: ipaddress.IPv4Address | None  # the default route (None: no default route)
    mtu: int = 1500


def _ignore(code: int, fn: Callable[[], object]) -> None:
    try:
        fn()
    except NetlinkError as e:
        if e.code != code:
            raise


class Netlink:
    """The host side through `IPRoute()` (the namespace of the calling process)."""

    def __init__(self, *, proc_sys: Path = Path("/proc/sys")) -> None:
        self.proc_sys = proc_sys

    # -- host side ------------------------------------------------------------------------

    def link_names(self) -> list[str]:
        with IPRoute() as ipr:
            return [str(link.get("ifname")) for link in ipr.get_links()]

    def routed_networks(self) -> list[ipaddress.IPv4Network]:
        """Destinations of the host's IPv4 routes (main table, the default route left out): a new
        network's subnet must not overlap them (another bridge, a VPN, the LAN)."""
        out = []
        with IPRoute() as ipr:
            for r in ipr.get_routes(family=socket.AF_INET, table=254):
                dst, plen = r.get_attr("RTA_DST"), r.get("dst_len")
                if dst and plen:
                    out.append(ipaddress.IPv4Network(f"{dst}/{plen}", strict=False))
        return out

    def link_exists(self, name: str) -> bool:
        with IPRoute() as ipr:
            return bool(ipr.link_lookup(ifname=name))

    def ensure_bridge(self, name: str, address: ipaddress.IPv4Interface, *, mac: str, mtu: int = 1500) -> None:
        """The bridge `name` exists, has `address` and `mac` (set explicitly so it does not change
        as ports come and go), and is up. Idempotent."""
        if len(name) > IFNAMSIZ:
            raise ValueError(f"bridge name {name!r} is longer than {IFNAMSIZ} characters")
        with IPRoute() as ipr:
            if not ipr.link_lookup(ifname=name):
                _ignore(errno.EEXIST, lambda: ipr.link("add", ifname=name, kind="bridge", address=mac, mtu=mtu))
            idx = ipr.link_lookup(ifname=name)[0]
            have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=socket.AF_INET)}
            if (str(address.ip), address.network.prefixlen) not in have:
                _ignore(errno.EEXIST, lambda: ipr.addr("add", index=idx, address=str(address.ip),
                                                      prefixlen=address.network.prefixlen))
            ipr.link("set", index=idx, state="up")

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
            ns.addr("add", index=idx, address=str(side.address.ip), prefixlen=side.address.network.prefixlen)
            ns.link("set", index=idx, state="up")
            if side.gateway is not None and side.ifname == "eth0":  # the first network is the default route
                ns.route("add", dst="0.0.0.0/0", gateway=str(side.gateway), oif=idx)

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
