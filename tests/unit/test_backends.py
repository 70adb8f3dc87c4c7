"""The networks, volumes and system backends (core/networks.py, core/volumes.py, core/system.py)
over fakes: list filters, prune policy and the events they publish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from servin import errors
from servin.core.events import Event, EventBus
from servin.core.model import EndpointConfig
from servin.core.networks import Networks, NetworkSpec
from servin.core.system import EventSubscription, event_matches
from servin.core.volumes import Volumes, VolumeSpec, VolumeStore
from servin.network.store import EndpointRecord, NetworkRecord

pytestmark = pytest.mark.unit

OLD = "2020-01-01T00:00:00Z"
NEW = "2030-01-01T00:00:00Z"


class FakeProvider:
    def __init__(self) -> None:
        self.nets = [NetworkRecord(id="b" * 64, name="bridge", created=OLD),
                     NetworkRecord(id="h" * 64, name="host", driver="host", created=OLD)]
        self.eps: list[EndpointRecord] = []

    def networks(self) -> list[NetworkRecord]:
        return list(self.nets)

    def find(self, name_or_id: str) -> NetworkRecord:
        for n in self.nets:
            if name_or_id in (n.id, n.name) or n.id.startswith(name_or_id):
                return n
        raise errors.NotFound(f"network {name_or_id} not found")

    def create_network(self, name: str, *, driver: str = "bridge", subnet: str | None = None,
                       gateway: str | None = None, ip_range: str | None = None, internal: bool = False,
                       labels: Mapping[str, str] | None = None, options: Mapping[str, str] | None = None,
                       aux_addresses: Mapping[str, str] | None = None, ipam_options: Mapping[str, str] | None = None,
                       attachable: bool = False, **ipv6: object) -> NetworkRecord:
        n = NetworkRecord(id=f"{len(self.nets):064d}", name=name, labels=dict(labels or {}), created=NEW)
        self.nets.append(n)
        return n

    def remove_network(self, name_or_id: str) -> None:
        n = self.find(name_or_id)
        if n.name in ("bridge", "host", "none"):
            raise errors.InvalidArgument(f"{n.name} is a pre-defined network and cannot be removed")
        self.nets.remove(n)

    def endpoints_all(self) -> list[EndpointRecord]:
        return list(self.eps)


class FakeAttachments:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []

    async def connect(self, ref: str, ep: EndpointConfig) -> None:
        self.calls.append(("connect", ref, ep))

    async def disconnect(self, ref: str, network: str) -> None:
        self.calls.append(("disconnect", ref, network))


def networks(provider: FakeProvider | None = None) -> tuple[Networks, FakeAttachments, EventBus]:
    attachments, bus = FakeAttachments(), EventBus()
    return Networks(service=provider or FakeProvider(), attachments=attachments,
                    container_name=lambda cid: f"name-of-{cid}", events=bus), attachments, bus


async def test_network_list_filters_and_create_event() -> None:
    nets, _, bus = networks()
    app = await nets.create(NetworkSpec(name="app", labels={"tier": "web"}))
    assert [(e.type, e.action, e.actor_id, e.attributes) for e in bus.history()] == [
        ("network", "create", app.id, {"name": "app", "type": "bridge"})]
    assert [n.name for n in await nets.list({"type": ["custom"]})] == ["app"]
    assert [n.name for n in await nets.list({"type": ["builtin"]})] == ["bridge", "host"]
    assert [n.name for n in await nets.list({"name": ["ap"], "label": ["tier=web"]})] == ["app"]
    assert [n.name for n in await nets.list({"dangling": ["true"]})] == ["app"]
    assert await nets.list({"name": []}) == []


async def test_network_remove_answers_403_and_publishes_destroy() -> None:
    nets, _, bus = networks()
    with pytest.raises(errors.Forbidden, match="pre-defined"):
        await nets.remove("bridge")
    app = await nets.create(NetworkSpec(name="app"))
    await nets.remove("app")
    assert [(e.action, e.actor_id) for e in bus.history()] == [("create", app.id), ("destroy", app.id)]


async def test_network_prune_keeps_predefined_used_labelled_and_recent_networks() -> None:
    provider = FakeProvider()
    nets, _, bus = networks(provider)
    used = await nets.create(NetworkSpec(name="used"))
    await nets.create(NetworkSpec(name="kept", labels={"keep": "1"}))
    await nets.create(NetworkSpec(name="gone"))
    provider.eps.append(EndpointRecord(id="e", container_id="c" * 64, network_id=used.id, ifname="eth0",
                                     host_ifname="veth0"))
    report = await nets.prune({"label!": ["keep"]})
    assert report.deleted == ("gone",)
    assert [e.attributes["name"] for e in bus.history() if e.action == "destroy"] == ["gone"]
    assert (await nets.prune({"until": ["2025-01-01T00:00:00Z"]})).deleted == ()  # created in 2030
    detail = await nets.inspect("used")
    assert [(m.endpoint.id, m.container_name) for m in detail.members] == [("e", "name-of-" + "c" * 64)]


async def test_connect_decodes_the_endpoint_for_the_network_found_first() -> None:
    nets, attachments, _ = networks()
    decoded = []

    def endpoint(name: str) -> EndpointConfig:
        decoded.append(name)
        return EndpointConfig(network=name)

    with pytest.raises(errors.NotFound):
        await nets.connect("nosuch", "web", endpoint)
    assert decoded == []
    await nets.connect("b", "web", endpoint)
    await nets.disconnect("bridge", "web")
    assert attachments.calls == [("connect", "web", EndpointConfig(network="bridge")),
                                 ("disconnect", "web", "bridge")]


async def test_without_networking_every_call_is_not_implemented() -> None:
    nets = Networks(service=None, attachments=FakeAttachments(), container_name=str, events=EventBus())
    with pytest.raises(errors.NotImplementedYet, match="--bridge none"):
        await nets.list({})
    with pytest.raises(errors.NotImplementedYet):
        await nets.prune({"until": ["not a time"]})  # before the filter is read, as before


def volumes(tmp_path: Path, users: dict[str, list[str]]) -> tuple[Volumes, VolumeStore, EventBus]:
    store, bus = VolumeStore(tmp_path / "volumes"), EventBus()
    return Volumes(store=store, users=lambda name: users.get(name, []), events=bus,
                   now=lambda: "2026-01-01T00:00:00.000000000Z"), store, bus


async def test_volume_create_event_once_and_filters(tmp_path: Path) -> None:
    vols, _, bus = volumes(tmp_path, {"used": ["c1"]})
    v = await vols.create(VolumeSpec(name="used", labels={"a": "1"}))
    assert v.created == "2026-01-01T00:00:00.000000000Z"
    await vols.create(VolumeSpec(name="used"))  # exists: no second event
    await vols.create(VolumeSpec(name="free"))
    assert [(e.action, e.actor_id, e.attributes) for e in bus.history()] == [
        ("create", "used", {"driver": "local"}), ("create", "free", {"driver": "local"})]
    assert [v.name for v in await vols.list({"dangling": ["1"]})] == ["free"]
    assert [v.name for v in await vols.list({"label": ["a=1"], "driver": ["local"]})] == ["used"]


async def test_volume_remove_and_prune(tmp_path: Path) -> None:
    vols, store, bus = volumes(tmp_path, {"used": ["c1"]})
    for name in ("used", "free", "kept"):
        await vols.create(VolumeSpec(name=name, labels={"keep": "1"} if name == "kept" else {}))
    (store.data_dir("free") / "f").write_bytes(b"12345")
    with pytest.raises(errors.Conflict, match=r"volume is in use - \[c1\]"):
        await vols.remove("used")
    await vols.remove("nosuch", force=True)  # no error, and its destroy event all the same
    assert (await vols.prune({"label!": ["keep"]})).deleted == ()  # anonymous volumes only (API 1.42)
    report = await vols.prune({"label!": ["keep"], "all": ["true"]})  # named ones too (below 1.42: always)
    assert (report.deleted, report.reclaimed) == (("free",), 5)
    assert [(e.action, e.actor_id) for e in bus.history() if e.action == "destroy"] == [
        ("destroy", "nosuch"), ("destroy", "free")]


def test_event_filters() -> None:
    run = Event(type="container", action="start", actor_id="abc123", attributes={"image": "busybox", "name": "web"})
    vol = Event(type="volume", action="create", actor_id="data", attributes={"driver": "local"})
    assert event_matches(run, {"image": ["busybox"]}) and not event_matches(vol, {"image": ["busybox"]})
    assert event_matches(run, {"container": ["abc"]}) and event_matches(run, {"container": ["web"]})
    assert event_matches(vol, {"type": ["volume"], "event": ["create"], "volume": ["data"]})
    assert not event_matches(run, {"label": ["name=db"]})


async def test_subscription_replays_since_and_ends_at_until() -> None:
    bus = EventBus()
    now = time.time()
    bus.publish(Event(type="volume", action="create", actor_id="old", time_nano=int((now - 100) * 1e9)))
    bus.publish(Event(type="volume", action="create", actor_id="recent", time_nano=int((now - 1) * 1e9)))
    bus.publish(Event(type="network", action="create", actor_id="net", time_nano=int((now - 1) * 1e9)))
    sub = EventSubscription(bus, {"type": ["volume"]}, since=now - 10, until=now + 0.2)
    try:
        got = [ev.actor_id async for ev in _with_live(bus, sub)]
    finally:
        sub.close()
    assert got == ["recent", "live"]


async def _with_live(bus: EventBus, sub: EventSubscription):  # type: ignore[no-untyped-def]
    it = aiter(sub)
    yield await anext(it)  # the replay comes first
    bus.publish(Event(type="volume", action="create", actor_id="live"))
    async for ev in it:  # then the live events until `until`
        yield ev


async def test_a_closed_subscription_gets_nothing_more() -> None:
    bus = EventBus()
    sub = EventSubscription(bus, {}, since=None, until=None)
    sub.close()
    bus.publish(Event(type="volume", action="create", actor_id="x"))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(anext(aiter(sub)), 0.05)
