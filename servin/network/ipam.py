"""IPAM: subnets for networks from address pools, addresses for endpoints within a subnet. Pure.

There is no allocation state of its own: an `Ipam` is built from what is persisted (the networks'
subnets and the endpoints' addresses) and updated as records are written, so after a crash it
is rebuilt from the same records and nothing is handed out twice.

Pools are Docker's `default-address-pools`: a base network cut into subnets of `size` bits.
The default `bridge` network takes 172.17.0.0/16 (or `--bip`); new networks get the first
subnet of the pools that overlaps no network in use (nor any extra range the caller names, such
as the host's own routes).

One `Ipam` holds one address family: the network service keeps one for IPv4 and one for IPv6.
IPv6 pools are dockerd's too: with no IPv6 pool configured, a ULA /48 derived from the engine ID
(`ula_pool`), cut into /64s. In IPv6 the subnet-router anycast address (the network address) and
the gateway are never handed out; there is no broadcast address.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from servin.errors import Conflict, InvalidArgument, Unavailable

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Pool:
    base: IPNetwork
    size: int  # prefix length of each subnet cut from base

    def __post_init__(self) -> None:
        if self.size < self.base.prefixlen or self.size > self.base.max_prefixlen - 2:
            raise InvalidArgument(f"invalid pool size {self.size} for {self.base}")


def ula_pool(engine_id: str) -> Pool:
    """dockerd's default IPv6 pool (deriveULABaseNetwork): fd00::/8 plus the low 40 bits of the
    SHA-256 of the engine ID as the global ID, a /48 cut into /64s."""
    gid = int.from_bytes(hashlib.sha256(engine_id.encode()).digest()[:8], "big") & ((1 << 40) - 1)
    base = ipaddress.IPv6Network((int(ipaddress.IPv6Address("fd00::")) + (gid << 80), 48))
    return Pool(base, 64)


DEFAULT_BRIDGE_SUBNET = IPv4Network("172.17.0.0/16")
DEFAULT_POOLS: tuple[Pool, ...] = (
    Pool(IPv4Network("172.17.0.0/16"), 16),
    Pool(IPv4Network("172.18.0.0/15"), 16),
    Pool(IPv4Network("172.20.0.0/14"), 16),
    Pool(IPv4Network("172.24.0.0/14"), 16),
    Pool(IPv4Network("172.28.0.0/14"), 16),
    Pool(IPv4Network("192.168.0.0/16"), 20),
)


LINK_LOCAL6 = ipaddress.IPv6Network("fe80::/64")


def check_ipv6_subnet(net: ipaddress.IPv6Network) -> None:
    """dockerd's validateIPv6Subnet: no multicast, no overlap with the link-local fe80::/64 but itself."""
    if net.is_multicast:
        raise InvalidArgument(f"multicast subnet '{net}' is not allowed")
    if net != LINK_LOCAL6 and net.overlaps(LINK_LOCAL6):
        raise InvalidArgument(f"'{net}' clashes with the Link-Local prefix 'fe80::/64'")


def parse_fixed_cidr_v6(text: str) -> ipaddress.IPv6Network:
    """daemon `fixed-cidr-v6` (dockerd's ValidateFixedCIDRV6): an IPv6 prefix, host bits allowed."""
    try:
        net = ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid fixed-cidr-v6: '{text}' is not a valid IPv6 subnet") from None
    try:
        check_ipv6_subnet(net)
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid fixed-cidr-v6: {exc.message}") from None
    return net


def parse_pools(entries: Iterable[Mapping[str, object]]) -> tuple[Pool, ...]:
    """daemon.json `default-address-pools`: [{"base": "172.80.0.0/16", "size": 24}, …]."""
    pools = []
    for e in entries:
        try:
            base = ipaddress.ip_network(str(e["base"]))
            size = int(str(e["size"]))
        except (KeyError, ValueError) as exc:
            raise InvalidArgument(f"invalid default-address-pools entry {dict(e)!r}") from exc
        pools.append(Pool(base, size))
    return tuple(pools)


@dataclass(slots=True)
class SubnetState:
    subnet: IPNetwork
    gateway: IPAddress | None
    ip_range: IPNetwork | None = None
    used: set[IPAddress] = field(default_factory=set)

    def reserved(self, ip: IPAddress) -> bool:
        if self.subnet.prefixlen >= self.subnet.max_prefixlen - 1:
            return ip == self.gateway
        if self.subnet.version == 6:
            return ip in (self.subnet.network_address, self.gateway)
        return ip in (self.subnet.network_address, self.subnet.broadcast_address) or ip == self.gateway


def default_gateway(subnet: IPNetwork) -> IPAddress:
    """Docker's: the first host address."""
    return subnet.network_address + 1


class Ipam:
    def __init__(self, pools: Iterable[Pool] = DEFAULT_POOLS, *, version: int = 4) -> None:
        self.version = version
        self.pools = tuple(p for p in pools if p.base.version == version)
        self.networks: dict[str, SubnetState] = {}

    # -- subnets ---------------------------------------------------------------------------

    def add_network(self, network_id: str, subnet: IPNetwork, gateway: IPAddress | None,
                    ip_range: IPNetwork | None = None) -> None:
        """Record a network's subnet (a new one, or one loaded from the store)."""
        if gateway is not None and gateway not in subnet:
            raise InvalidArgument(f"gateway {gateway} is not in subnet {subnet}")
        if ip_range is not None and not ip_range.subnet_of(subnet):  # type: ignore[arg-type]
            raise InvalidArgument(f"ip-range {ip_range} is not in subnet {subnet}")
        self.networks[network_id] = SubnetState(subnet, gateway, ip_range)

    def remove_network(self, network_id: str) -> None:
        self.networks.pop(network_id, None)

    def overlapping(self, subnet: IPNetwork) -> str | None:
        for nid, st in self.networks.items():
            if st.subnet.version == subnet.version and st.subnet.overlaps(subnet):
                return nid
        return None

    def check_free(self, subnet: IPNetwork) -> None:
        other = self.overlapping(subnet)
        if other is not None:
            raise Conflict(f"Pool overlaps with other one on this address space ({subnet})")

    def next_subnet(self, avoid: Iterable[IPNetwork] = ()) -> IPNetwork:
        """The first pool subnet overlapping no network in use and nothing in `avoid`."""
        taken = [t for t in [st.subnet for st in self.networks.values()] + list(avoid) if t.version == self.version]
        for pool in self.pools:
            for candidate in pool.base.subnets(new_prefix=pool.size):
                if not any(candidate.overlaps(t) for t in taken):
                    return candidate
        raise Unavailable(f"could not find an available, non-overlapping IPv{self.version} address pool "
                          "among the defaults to assign to the network")

    # -- addresses -------------------------------------------------------------------------

    def _state(self, network_id: str) -> SubnetState:
        try:
            return self.networks[network_id]
        except KeyError:
            raise InvalidArgument(f"network {network_id} has no address space") from None

    def claim(self, network_id: str, ip: IPAddress) -> None:
        """Mark an address used (an endpoint loaded from the store, or a fixed --ip)."""
        st = self._state(network_id)
        if ip not in st.subnet:
            raise InvalidArgument(f"no available IPv{st.subnet.version} address: {ip} is not in {st.subnet}")
        if st.reserved(ip):
            raise InvalidArgument(f"address {ip} is reserved in {st.subnet}")
        if ip in st.used:
            raise Conflict(f"Address already in use: {ip}")
        st.used.add(ip)

    def allocate(self, network_id: str, fixed: IPAddress | None = None) -> IPAddress:
        """An address for a new endpoint: `fixed` (--ip) if free, else the lowest free one of the
        ip-range (or of the subnet), never the network, broadcast or gateway address."""
        st = self._state(network_id)
        if fixed is not None:
            self.claim(network_id, fixed)
            return fixed
        space = st.ip_range or st.subnet
        for ip in space.hosts() if space.prefixlen < space.max_prefixlen - 1 else space:
            if ip not in st.used and not st.reserved(ip):
                st.used.add(ip)
                return ip
        raise Unavailable(f"no available IPv{space.version} addresses on network {network_id} ({space})")

    def release(self, network_id: str, ip: IPAddress) -> None:
        st = self.networks.get(network_id)
        if st is not None:
            st.used.discard(ip)
