"""A network create the firewall or the IPv6 DNS listener refuses leaves nothing: no record, no
subnet taken, no bridge, no DNS listener on its gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from servin.errors import SystemError_
from servin.network.firewall import FamilyRules
from servin.network.portmap import PortAllocator
from servin.network.service import NetworkService


class FakeNetlink:
    def __init__(self) -> None:
        self.links: set[str] = set()

    def routed_networks(self, *args: Any) -> list[Any]:
        return []

    def link_names(self) -> list[str]:
        return sorted(self.links)

    def ensure_bridge(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.links.add(name)

    def delete_link(self, name: str) -> None:
        self.links.discard(name)

    def sysctl(self, *args: Any) -> None:
        pass


class FakeDns:
    ports = (5353, 5354)

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.open: set[str] = set()

    def open_gateway(self, key: str, *, device: str, address: str) -> tuple[int, int]:
        if self.fail:
            raise OSError("address not available")
        self.open.add(key)
        return (40000, 40001)

    def close_gateway(self, key: str) -> None:
        self.open.discard(key)


class RefusingFirewall:
    ipv6 = True

    def add(self, rules: FamilyRules) -> None:
        raise SystemError_("ip6tables: refused")


@pytest.mark.parametrize("failing", ["dns", "firewall"])
def test_a_refused_create_leaves_no_network(tmp_path: Path, failing: str) -> None:
    netlink = FakeNetlink()
    svc = NetworkService(root=tmp_path / "net", exec_root=tmp_path / "run", netlink=netlink,  # type: ignore[arg-type]
                         ports=PortAllocator(), host_ipv6=True)
    dns = FakeDns(fail=failing == "dns")
    svc.dns = dns
    svc.firewall = RefusingFirewall() if failing == "firewall" else _Accepting()  # type: ignore[assignment]
    with pytest.raises((OSError, SystemError_)):
        svc.create_network("app", enable_ipv6=True, subnet="10.77.0.0/24", subnet6="fd00:77::/64")
    assert [n.name for n in svc.store.networks()] == [] and netlink.links == set() and dns.open == set()
    dns.fail = False
    svc.firewall = _Accepting()  # type: ignore[assignment]
    rec = svc.create_network("app", enable_ipv6=True, subnet="10.77.0.0/24", subnet6="fd00:77::/64")
    assert rec.subnet == "10.77.0.0/24" and rec.subnet6 == "fd00:77::/64"  # the subnets were given back
    assert dns.open == {rec.id}


class _Accepting:
    ipv6 = True

    def add(self, rules: FamilyRules) -> None:
        pass
