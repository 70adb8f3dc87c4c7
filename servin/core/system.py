"""The engine as a whole, as /_ping, /version, /info, /events and /system/df see it: host facts,
counts, the event stream with its filters and replay, and disk usage."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from servin.errors import NotFound
from servin.core.buildcache import BuildCache, CacheRecord, PruneOptions, PruneReport
from servin.core.events import Event, EventBus
from servin.core.host import HostFacts
from servin.core.creation import ManifestLookup
from servin.core.model import Container
from servin.core.query import Filters, label_matches
from servin.core.volumes import Volume, VolumeStore, tree_size
from servin.images.manifests import ImageManifests
from servin.images.model import Image
from servin.registry.service import RegistrySettings



class ContainerCounts(Protocol):
    """What the system view reads of the containers (core/containers.ContainerService)."""

    def list(self) -> list[Container]: ...

    def counts(self) -> dict[str, int]: ...  # running, paused, stopped

    def volume_users(self, name: str) -> builtins.list[str]: ...


class ImageList(Protocol):
    @property
    def manifests(self) -> ManifestLookup: ...
    def list(self) -> list[Image]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PingFacts:
    builder_version: str = "1"  # the classic builder's API (no BuildKit)
    swarm: str = "inactive"


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemInfo:
    facts: HostFacts
    containers: Mapping[str, int]  # running, paused, stopped
    images: int
    registry: RegistrySettings | None = None  # insecure registries and mirrors (None: no registry service)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageUsage:
    image: Image
    containers: int  # how many containers use it
    oci: ImageManifests  # its OCI target and manifests (the Descriptor)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerUsage:
    container: Container
    size_rw: int  # its writable layer
    size_root_fs: int  # and its image


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeUsage:
    volume: Volume
    size: int
    ref_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskUsage:
    read_ns: int  # when the containers were read (their "Up ..." is as of then)
    layers_size: int
    images: tuple[ImageUsage, ...] = ()
    containers: tuple[ContainerUsage, ...] = ()
    volumes: tuple[VolumeUsage, ...] = ()
    build_cache: tuple[CacheRecord, ...] = ()



def event_matches(ev: Event, filters: Filters) -> bool:
    """Docker's event filters: type, event (action), container/image/volume/network (ID, ID prefix
    or name; an image filter also selects the containers of that image), label."""
    if "type" in filters and ev.type not in filters["type"]:
        return False
    if "event" in filters and ev.action not in filters["event"]:
        return False
    for kind in ("container", "image", "volume", "network"):
        if kind in filters:
            if ev.type != kind and not (kind == "image" and ev.type == "container"):
                return False
            ref = ev.attributes.get("image", "") if (kind == "image" and ev.type == "container") else ev.actor_id
            name = ev.attributes.get("name", "")
            if not any(v in (ref, name) or ref.startswith(v) for v in filters[kind]):
                return False
    if "label" in filters and not label_matches(ev.attributes, filters["label"]):
        return False
    return True


class EventSubscription:
    """The events the filters select: with `since` first those the bus still holds from then (up
    to `until`), then live ones, queued from the moment of subscribing; with `until` the stream
    ends at that time. Times are unix seconds. `close()` ends the subscription."""

    def __init__(self, bus: EventBus, filters: Filters, *, since: float | None, until: float | None) -> None:
        self._bus = bus
        self._filters = filters
        self._since, self._until = since, until
        self._queue = bus.subscribe()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        since, until = self._since, self._until
        if since is not None:
            for ev in self._bus.history():
                if ev.time_nano >= since * 1e9 and (until is None or ev.time_nano <= until * 1e9):
                    if event_matches(ev, self._filters):
                        yield ev
        while True:
            timeout = None if until is None else until - time.time()
            if timeout is not None and timeout <= 0:
                return
            try:
                ev = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                return
            if event_matches(ev, self._filters):
                yield ev

    def close(self) -> None:
        self._bus.unsubscribe(self._queue)


class System:
    """`writable_layer(id)`: a container's upper directory, whose size `docker system df` shows."""

    def __init__(self, *, facts: HostFacts, containers: ContainerCounts, images: ImageList,
                 volumes: VolumeStore, writable_layer: Callable[[str], Path], events: EventBus,
                 registry: Callable[[], RegistrySettings] | None = None,
                 build_cache: BuildCache | None = None) -> None:
        self._facts = facts
        self._registry = registry
        self._containers = containers
        self._images = images
        self._volumes = volumes
        self._writable_layer = writable_layer
        self._events = events
        self._build_cache = build_cache

    def ping(self) -> PingFacts:
        return PingFacts()

    def facts(self) -> HostFacts:
        return self._facts

    def reloaded(self, facts: HostFacts) -> None:
        """The daemon's configuration was reloaded (SIGHUP): what /info says of it changes."""
        self._facts = facts

    async def info(self) -> SystemInfo:
        counts = self._containers.counts()
        n_images = len(await asyncio.to_thread(self._images.list))
        return SystemInfo(facts=self._facts, containers=counts, images=n_images,
                          registry=self._registry() if self._registry is not None else None)

    def subscribe(self, filters: Filters, *, since: float | None = None,
                  until: float | None = None) -> EventSubscription:
        return EventSubscription(self._events, filters, since=since, until=until)

    async def disk_usage(self) -> DiskUsage:
        """Images (a layer shared by several counted once, each layer an even share of its
        image), containers with their writable layer, volumes with their size and users."""
        containers = self._containers.list()
        oci = await asyncio.to_thread(self._listed_manifests)
        images = [img for img, _ in oci]
        users: dict[str, int] = {}
        for c in containers:
            users[c.image_id] = users.get(c.image_id, 0) + 1
        image_size = {i.id: i.size for i in images}
        layer_sizes: dict[str, int] = {}
        for img in images:
            per_layer = img.size // max(len(img.diff_ids), 1)
            for diff_id in img.diff_ids:
                layer_sizes.setdefault(diff_id, per_layer)
        now = time.time_ns()
        c_usage = []
        for c in containers:
            size_rw = await asyncio.to_thread(tree_size, self._writable_layer(c.id))
            c_usage.append(ContainerUsage(container=c, size_rw=size_rw,
                                          size_root_fs=size_rw + image_size.get(c.image_id, 0)))
        v_usage = []
        for v in self._volumes.list():
            size = await asyncio.to_thread(self._volumes.size, v.name)
            v_usage.append(VolumeUsage(volume=v, size=size, ref_count=len(self._containers.volume_users(v.name))))
        records = await self._build_cache.usage() if self._build_cache is not None else []
        return DiskUsage(read_ns=now, layers_size=sum(layer_sizes.values()),
                         images=tuple(ImageUsage(image=i, containers=users.get(i.id, 0), oci=m) for i, m in oci),
                         containers=tuple(c_usage), volumes=tuple(v_usage), build_cache=tuple(records))

    def _listed_manifests(self) -> builtins.list[tuple[Image, ImageManifests]]:
        """Each image with its manifests (one removed meanwhile left out)."""
        out = []
        for img in self._images.list():
            with contextlib.suppress(NotFound):
                out.append((img, self._images.manifests.of(img)))
        return out

    async def prune_build_cache(self, options: PruneOptions | None = None) -> PruneReport:
        """`docker builder prune` (and `docker system prune`): the build cache (core/buildcache.py)."""
        if self._build_cache is None:
            return PruneReport()
        return await self._build_cache.prune(options or PruneOptions())
