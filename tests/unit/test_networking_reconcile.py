"""After a crash, a running container's networks are the ones it has endpoints on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from servin.core import resolution
from servin.core.events import EventBus
from servin.core.lifecycle import Records
from servin.core.model import Container, ContainerConfig, EndpointConfig, HostConfig, State, Status
from servin.core.networking import ContainerNetworking
from servin.core.store import ContainerStore
from servin.network.store import EndpointRecord, NetworkRecord

pytestmark = pytest.mark.unit

NETS = {"n-bridge": NetworkRecord(id="n-bridge", name="bridge"), "n-app": NetworkRecord(id="n-app", name="app"),
        "n-side": NetworkRecord(id="n-side", name="side")}


def service(endpoints: list[EndpointRecord]) -> SimpleNamespace:
    store = SimpleNamespace(get_network=lambda nid: NETS[nid])
    return SimpleNamespace(store=store, endpoints=lambda cid: [e for e in endpoints if e.container_id == cid],
                           find=lambda name: SimpleNamespace(name=name, internal=False, gateway="10.0.0.1",
                                                             gateway6=None))


def running(cid: str, networks: tuple[EndpointConfig, ...]) -> Container:
    return Container(id=cid, name="box", created="2026-01-01T00:00:00Z", image_id="sha256:" + "a" * 64,
                     config=ContainerConfig(image="busybox"), host_config=HostConfig(network_mode="app"),
                     state=State(status=Status.RUNNING, pid=1), path="sh", args=(), resolved_env=(),
                     resolved_user="", resolved_workdir="/", resolved_hostname="box", networks=networks)


def endpoint(cid: str, nid: str, *aliases: str) -> EndpointRecord:
    return EndpointRecord(id="e" + nid, container_id=cid, network_id=nid, ifname="eth0", host_ifname="veth0",
                          ip="10.0.0.2", aliases=aliases)


def test_a_connect_cut_short_is_kept_and_a_disconnect_cut_short_is_finished(tmp_path: Path) -> None:
    cid = "c" * 64
    store = ContainerStore(tmp_path)
    c = running(cid, (EndpointConfig(network="app"), EndpointConfig(network="side")))
    store.save(c).result()  # on disk before the files beside it are written
    # the kernel has app and bridge: "side" was being disconnected, "bridge" being connected
    net = service([endpoint(cid, "n-app"), endpoint(cid, "n-bridge", "db", cid[:12])])
    nw = ContainerNetworking(network=net, store=store, amend=Records(store).amend, lookup=lambda ref: store.get(ref),  # type: ignore[arg-type]
                             lock_of=lambda cid: None, events=EventBus(), host_resolv_conf=tmp_path / "r")  # type: ignore[arg-type,return-value]
    fixed = nw.reconcile(c)
    assert fixed.networks == (EndpointConfig(network="app"), EndpointConfig(network="bridge", aliases=("db",)))
    assert store.get(cid) == fixed  # saved
    assert nw.reconcile(fixed) is fixed  # consistent: nothing to do


def test_a_running_containers_hosts_and_resolv_conf_are_written_again_from_its_endpoints(tmp_path: Path) -> None:
    cid = "d" * 64
    store = ContainerStore(tmp_path)
    c = running(cid, (EndpointConfig(network="app"), EndpointConfig(network="side")))
    store.save(c).result()  # on disk before the files beside it are written
    eps = [replace(endpoint(cid, "n-app"), ip="10.0.0.2"),
           replace(endpoint(cid, "n-side"), ifname="eth1", ip="10.9.0.2")]
    gateways = {"app": "10.0.0.1", "side": "10.9.0.1"}
    net = service(eps)
    net.find = lambda name: SimpleNamespace(name=name, internal=False, gateway=gateways[name], gateway6=None)
    (tmp_path / "r").write_text("nameserver 8.8.8.8\n")
    nw = ContainerNetworking(network=net, store=store, amend=Records(store).amend, lookup=lambda ref: store.get(ref),  # type: ignore[arg-type]
                             lock_of=lambda cid: None, events=EventBus(), host_resolv_conf=tmp_path / "r")  # type: ignore[arg-type,return-value]
    hosts, resolv = store.dir(cid) / "hosts", store.dir(cid) / "resolv.conf"
    hosts.write_text("")  # a kill cut the in-place write short
    resolv.write_text("nameserver 8.8.8.8\n")  # stale: the daemon died before the connect's files
    assert nw.reconcile(c) is c
    assert hosts.read_text().endswith("::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\n"
                                      "ff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
                                      "10.0.0.2\tbox\n10.9.0.2\tbox\n")
    assert "nameserver 10.0.0.1" in resolv.read_text()
    # the lines of an endpoint gone (a disconnect cut short) go, a user's line stays, a new one comes
    hosts.write_text("127.0.0.1\tlocalhost\n10.0.0.2\tbox\n10.5.0.2\tbox\n1.2.3.4\tmine\n")
    nw.reconcile(c)
    assert hosts.read_text() == "127.0.0.1\tlocalhost\n10.0.0.2\tbox\n1.2.3.4\tmine\n10.9.0.2\tbox\n"


def test_the_in_place_write_puts_the_text_first_and_cuts_the_tail_after(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("a much longer old text\n")
    inode = path.stat().st_ino
    resolution._write(path, "new\n")
    assert path.read_text() == "new\n" and path.stat().st_ino == inode  # the same file: bind mounts see it
