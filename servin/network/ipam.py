"""IPAM: subnets for networks from address pools, addresses for endpoints within a subnet. Pure.

There is no allocation state of its own: an `Ipam` is built from what is persisted (the networks'
subnets and the endpoints' addresses) and updated as records are written, so after a crash it
is rebuilt from the same records and nothing is handed out twice.

Pools are Docker's `default-address-pools`: a base network cut into subnets of `size` bits.
The default `bridge` network takes 172.17.0.0/16 (or `--bip`); new networks get the first
subnet of the pools that overlaps no network in use (nor any extra range the caller names, such
as the host's own routes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from servin.errors import Conflict, InvalidArgument, Unavailable

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address


@dataclass(frozen=True, slots=True)
class Pool:
    base: IPv4Network
    size: int  # prefix length of each subnet cut from base

    def __post_init__(self) -> None:
        if self.size < self.base.prefixlen or self.size > 30:
            raise InvalidArgument(f"invalid pool size {self.size} for {self.base}")


DEFAULT_BRIDGE_SUBNET = IPv4Network("172.17.0.0/16")
DEFAULT_POOLS: tuple[Pool, ...] = (
    Pool(IPv4Network("172.17.0.0/16"), 16),
    Pool(IPv4Network("172.18.0.0/15"), 16),
    Pool(IPv4Network("172.20.0.0/14"), 16),
    Pool(IPv4Network("172.24.0.0/14"), 16),
    Pool(IPv4Network("172.28.0.0/14"), 16),
    Pool(IPv4Network("192.168.0.0/16"), 20),
)


def parse_pools(entries: Iterable[Mapping[str, object]]) -> tuple[Pool, ...]:
    """daemon.json `default-address-pools`: [{"base": "172.80.0.0/16", "size": 24}, …]."""
    pools = []
    for e in entries:
        try:
            base = IPv4Network(str(e["base"]))
            size = int(str(e["size"]))
        except (KeyError, ValueError) as exc:
            raise InvalidArgument(f"invalid default-address-pools entry {dict(e)!r}") from exc
        pools.append(Pool(base, size))
    return tuple(pools)


@dataclass(slots=True)
class SubnetState:
    subnet: IPv4Network
    gateway: IPv4Address | None
    ip_range: IPv4Network | None = None
    used: set[IPv4Address] = field(default_factory=set)

    def reserved(self, ip: IPv4Address) -> bool:
        if self.subnet.prefixlen >= 31:
            return ip == self.gateway
        return ip in (self.subnet.network_address, self.subnet.broadcast_address) or ip == self.gateway


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    """Docker's: the first host address."""
    return subnet.network_address + 1


class Ipam:
    def __init__(self, pools: Iterable[Pool] = DEFAULT_POOLS) -> None:
        self.pools = tuple(pools)
        self.networks: dict[str, SubnetState] = {}

    # -- subnets ---------------------------------------------------------------------------

    def add_network(self, network_id: str, subnet: IPv4Network, gateway: IPv4Address | None,
                    ip_range: IPv4Network | None = None) -> None:
        """Record a network's subnet (a new one, or one loaded from the store)."""
        if gateway is not None and gateway not in subnet:
            raise InvalidArgument(f"gateway {gateway} is not in subnet {subnet}")
        if ip_range is not None and not ip_range.subnet_of(subnet):
            raise InvalidArgument(f"ip-range {ip_range} is not in subnet {subnet}")
        self.networks[network_id] = SubnetState(subnet, gateway, ip_range)

    def remove_network(self, network_id: str) -> None:
        self.networks.pop(network_id, None)

    def overlapping(self, subnet: IPv4Network) -> str | None:
        for nid, st in self.networks.items():
            if st.subnet.overlaps(subnet):
                return nid
        return None

    def check_free(self, subnet: IPv4Network) -> None:
        other = self.overlapping(subnet)
        if other is not None:
            raise Conflict(f"Pool overlaps with other one on this address space ({subnet})")

    def next_subnet(self, avoid: Iterable[IPv4Network] = ()) -> IPv4Network:
        """The first pool subnet overlapping no network in use and nothing in `avoid`."""
        taken = [st.subnet for st in self.networks.values()] + list(avoid)
        for pool in self.pools:
            for candidate in pool.base.subnets(new_prefix=pool.size):
                if not any(candidate.overlaps(t) for t in taken):
                    return candidate
        raise Unavailable("could not find an available, non-overlapping IPv4 address pool "
                          "among the defaults to assign to the network")

    # -- addresses -------------------------------------------------------------------------

    def _state(self, network_id: str) -> SubnetState:
        try:
            return self.networks[network_id]
        except KeyError:
            raise InvalidArgument(f"network {network_id} has no address space") from None

    def claim(self, network_id: str, ip: IPv4Address) -> None:
        """Mark an address used (an endpoint loaded from the store, or a fixed --ip)."""
        st = self._state(network_id)
        if ip not in st.subnet:
            raise InvalidArgument(f"no available IPv4 address: {ip} is not in {st.subnet}")
        if st.reserved(ip):
            raise InvalidArgument(f"address {ip} is reserved in {st.subnet}")
        if ip in st.used:
            raise Conflict(f"Address already in use: {ip}")
        st.used.add(ip)

    def allocate(self, network_id: str, fixed: IPv4Address | None = None) -> IPv4Address:
        """An address for a new endpoint: `fixed` (--ip) if free, else the lowest free one of the
        ip-range (or of the subnet), never the network, broadcast or gateway address."""
        st = self._state(network_id)
        if fixed is not None:
            self.claim(network_id, fixed)
            return fixed
        space = st.ip_range or st.subnet
        for ip in space.hosts() if space.prefixlen < 31 else space:
            if ip not in st.used and not st.reserved(ip):
                st.used.add(ip)
                return ip
        raise Unavailable(f"no available IPv4 addresses on network {network_id} ({space})")

    def release(self, network_id: str, ip: IPv4Address) -> None:
        st = self.networks.get(network_id)
        if st is not None:
            st.used.discard(ip)
