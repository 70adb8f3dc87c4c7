"""Published ports: Docker's PortBindings parsed once at the edge, shown back by inspect, claimed by
the network layer, and kept in container records (records that hold Docker's map still load)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from servin.api.wire.ports import parse_port_bindings, port_bindings_json
from servin.core.model import Container, ContainerConfig, HostConfig, State
from servin.core.store import RECORD, ContainerStore
from servin.errors import InvalidArgument
from servin.network.portmap import PortRequest, PublishedPort, requests

pytestmark = pytest.mark.unit

BINDINGS = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": ""}],
            "53/udp": [{"HostIp": "", "HostPort": "7000-7005"}], "443/tcp": [{"HostIp": "", "HostPort": "9-9"}]}


def test_bindings_are_typed_and_shown_back_as_given() -> None:
    ports = parse_port_bindings(BINDINGS)
    assert ports == (
        PublishedPort(container_port=80, host_ip="0.0.0.0", host_port=8080),
        PublishedPort(container_port=80, host_ip="127.0.0.1"),
        PublishedPort(container_port=53, protocol="udp", host_port=7000, host_port_end=7005),
        PublishedPort(container_port=443, host_port=9, host_port_end=9),
    )
    assert port_bindings_json(ports) == BINDINGS
    assert parse_port_bindings({"8080": None}) == (PublishedPort(container_port=8080),)
    assert port_bindings_json(parse_port_bindings({"80/tcp": [None]})) == {"80/tcp": [{"HostIp": "",
                                                                                         "HostPort": ""}]}


def test_the_network_layer_claims_by_port_with_every_address_as_empty() -> None:
    # "" is every address of both families; 0.0.0.0 IPv4's only (as dockerd), so it stays as given
    assert requests(parse_port_bindings(BINDINGS)) == [
        PortRequest(container_port=443, host_port=9),
        PortRequest(container_port=53, proto="udp", host_range=(7000, 7005)),
        PortRequest(container_port=80, host_ip="0.0.0.0", host_port=8080),
        PortRequest(container_port=80, host_ip="127.0.0.1"),
    ]


@pytest.mark.parametrize("bindings,message", [
    ({"http/tcp": []}, "invalid container port: 'http'"),
    ({"80/tcp": [{"HostPort": "99999"}]}, "invalid host port: 99999"),
    ({"80/tcp": [{"HostPort": "9000-8000"}]}, "invalid host port range: 9000-8000"),
])
def test_bad_bindings_are_refused(bindings: dict, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_port_bindings(bindings)
    assert exc.value.message == message


def _record(tmp_path: Path, port_bindings: object) -> Path:
    c = Container(id="a" * 64, name="web", created="2024-01-01T00:00:00Z", image_id="sha256:" + "b" * 64,
                  config=ContainerConfig(image="busybox"), host_config=HostConfig(), state=State(), path="sh",
                  args=(), resolved_env=(), resolved_user="", resolved_workdir="/", resolved_hostname="web")
    record = dataclasses.asdict(c)
    record["host_config"]["port_bindings"] = port_bindings
    (tmp_path / c.id).mkdir()
    (tmp_path / c.id / RECORD).write_text(json.dumps(record))
    return tmp_path


def test_records_keep_typed_bindings(tmp_path: Path) -> None:
    ports = parse_port_bindings(BINDINGS)
    record = [dataclasses.asdict(p) for p in ports]
    c = ContainerStore(_record(tmp_path, record)).get("a" * 64)
    assert c is not None and c.host_config.port_bindings == ports


def test_records_with_dockers_map_still_load(tmp_path: Path) -> None:
    old = {**BINDINGS, "x/tcp": [{"HostIp": "", "HostPort": ""}]}  # create took anything then
    c = ContainerStore(_record(tmp_path, old)).get("a" * 64)
    assert c is not None and c.host_config.port_bindings == parse_port_bindings(BINDINGS)
    (tmp_path / "empty").mkdir()
    got = ContainerStore(_record(tmp_path / "empty", {})).get("a" * 64)
    assert got is not None and got.host_config.port_bindings == ()
