"""The daemon's own TCP ports: no container publishes onto them, and a listener a running
container's published port already holds is refused."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from servin.daemon import wiring
from servin.daemon.config import DaemonConfig
from servin.daemon.main import StartupError, _hosts_clear_of_containers
from servin.daemon.listeners import clear_of_containers, reserved_ports, tcp_address
from servin.errors import Conflict, Unavailable
from servin.network.portmap import PortAllocator, PortRequest, ReservedPort, overlaps
from servin.network.service import NetworkService
from servin.network.store import EndpointRecord, PortBinding


@pytest.mark.parametrize("host, tls, want", [
    ("tcp://0.0.0.0:2375", False, ("", 2375)),
    ("tcp://127.0.0.1:12345", False, ("127.0.0.1", 12345)),
    ("tcp://localhost:2375", False, ("127.0.0.1", 2375)),
    ("tcp://:2375", False, ("127.0.0.1", 2375)),
    ("tcp://10.1.2.3:2375", False, ("10.1.2.3", 2375)),
    ("tcp://127.0.0.1", False, ("127.0.0.1", 2375)),  # no port: 2375 plain, 2376 with TLS
    ("tcp://127.0.0.1", True, ("127.0.0.1", 2376)),
    ("tcp://0.0.0.0", True, ("", 2376)),
    ("tcp://[::1]:2375", False, ("127.0.0.1", 2375)),
    ("tcp://[::]:2375", False, ("", 2375)),
    ("tcp://[::]", False, ("", 2375)),
    ("tcp://docker.example:2375", False, ("", 2375)),  # a name: assumed every address
    ("unix:///run/servin.sock", False, None),
    ("fd://", False, None),
])
def test_listener_addresses(host: str, tls: bool, want: tuple[str, int] | None) -> None:
    assert tcp_address(host, tls=tls) == want


def test_address_matching() -> None:
    assert overlaps("", "127.0.0.1") and overlaps("0.0.0.0", "127.0.0.1") and overlaps("127.0.0.1", "0.0.0.0")
    assert overlaps("127.0.0.1", "127.0.0.1")
    assert not overlaps("127.0.0.1", "10.0.0.1")


def allocator(*hosts: str) -> PortAllocator:
    return PortAllocator(ephemeral=(50000, 50002), rng=random.Random(1), reserved=reserved_ports(hosts))


def test_a_listener_on_every_address_reserves_the_port_on_each() -> None:
    ports = allocator("unix:///x.sock", "tcp://0.0.0.0:2375")
    for ip in ("", "0.0.0.0", "127.0.0.1", "10.0.0.5"):
        with pytest.raises(Conflict) as e:
            ports.allocate(PortRequest(container_port=80, host_ip=ip, host_port=2375))
        assert e.value.message == (f"Bind for {ip or '0.0.0.0'}:2375 failed: port is already allocated: "
                                   "the daemon listens on tcp://0.0.0.0:2375")
    assert ports.allocate(PortRequest(container_port=80, host_port=2376)) == 2376
    assert ports.allocate(PortRequest(container_port=80, proto="udp", host_port=2375)) == 2375  # TCP only


def test_a_loopback_listener_reserves_loopback_and_every_address() -> None:
    ports = allocator("tcp://127.0.0.1:12345")
    for ip in ("", "0.0.0.0", "127.0.0.1"):
        with pytest.raises(Conflict, match="127.0.0.1:12345"):
            ports.allocate(PortRequest(container_port=80, host_ip=ip, host_port=12345))
    assert ports.allocate(PortRequest(container_port=80, host_ip="10.0.0.5", host_port=12345)) == 12345


def test_ranges_and_ephemeral_picks_skip_reserved_ports() -> None:
    ports = allocator("tcp://0.0.0.0:50000", "tcp://127.0.0.1:50001")
    assert ports.allocate(PortRequest(container_port=80)) == 50002  # the only free one of 50000-50002
    with pytest.raises(Unavailable) as e:
        ports.allocate(PortRequest(container_port=81))
    assert "the daemon listens on tcp://0.0.0.0:50000" in e.value.message
    assert "the daemon listens on tcp://127.0.0.1:50001" in e.value.message
    assert ports.allocate(PortRequest(container_port=80, host_range=(50000, 50001), host_ip="10.0.0.5")) == 50001
    with pytest.raises(Unavailable, match=r"all ports are allocated in 50000-50000/tcp \(the daemon listens"):
        ports.allocate(PortRequest(container_port=80, host_range=(50000, 50000)))


def test_restored_bindings_are_kept_even_on_a_reserved_port() -> None:
    ports = allocator("tcp://0.0.0.0:2375")
    ports.claim("tcp", "", 2375)  # a running container's record, read back at start
    assert ports.used[("tcp", 2375)] == {""}


def publishing_service(tmp_path: Path, *bindings: tuple[str, str, int]) -> NetworkService:
    svc = NetworkService(root=tmp_path / "net", exec_root=tmp_path / "run")
    for i, (proto, ip, port) in enumerate(bindings):
        svc.store.put_endpoint(EndpointRecord(
            id=f"e{i}", container_id=f"c{i}" * 8, network_id="n", ifname="eth0", host_ifname=f"veth{i}",
            ports=(PortBinding(container_port=80, proto=proto, host_ip=ip, host_port=port),)))
    return svc


def test_a_listener_a_container_publishes_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    svc = publishing_service(tmp_path, ("tcp", "", 40001), ("tcp", "127.0.0.1", 40002), ("udp", "", 40003),
                             ("tcp", "10.0.0.5", 40004))
    assert svc.publishers("127.0.0.1", 40001) == ["c0" * 8]
    hosts = ["unix:///x.sock", "tcp://127.0.0.1:40001", "tcp://0.0.0.0:40002", "tcp://127.0.0.1:40003",
             "tcp://127.0.0.1:40004", "tcp://0.0.0.0:40004"]
    with caplog.at_level(logging.ERROR, logger="servin"):
        kept = clear_of_containers(hosts, svc.publishers, lambda cid: "web-" + cid[:2])
    assert kept == ["unix:///x.sock", "tcp://127.0.0.1:40003", "tcp://127.0.0.1:40004"]
    assert [r.getMessage() for r in caplog.records] == [
        "not listening on tcp://127.0.0.1:40001: port 40001 is published by container web-c0",
        "not listening on tcp://0.0.0.0:40002: port 40002 is published by container web-c1",
        "not listening on tcp://0.0.0.0:40004: port 40004 is published by container web-c3",
    ]


def test_reserved_ports_name_their_listener() -> None:
    assert reserved_ports(["unix:///a", "tcp://127.0.0.1:9"]) == (
        ReservedPort(host_ip="127.0.0.1", port=9, reason="the daemon listens on tcp://127.0.0.1:9"),)


def test_the_daemon_refuses_to_start_when_no_listener_is_left(tmp_path: Path) -> None:
    svc = publishing_service(tmp_path, ("tcp", "", 40001))
    containers = SimpleNamespace(store=SimpleNamespace(get=lambda cid: SimpleNamespace(name="web")))
    engine = cast(wiring.Engine, SimpleNamespace(network=svc, containers=containers))
    both = DaemonConfig(hosts=("unix:///x.sock", "tcp://127.0.0.1:40001"))
    assert _hosts_clear_of_containers(both, engine) == ["unix:///x.sock"]
    only = DaemonConfig(hosts=("tcp://127.0.0.1:40001",))
    with pytest.raises(StartupError, match="no listener left: running containers publish tcp://127.0.0.1:40001"):
        _hosts_clear_of_containers(only, engine)
