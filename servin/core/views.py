"""What the API reads of containers (moby's monitorBackend and the read half of its container
router): lists with Docker's filters, inspect details, logs, stats samples and top. Nothing here
changes a container; the verbs that do are ContainerService's."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from servin import errors
from servin.core import lifecycle, query
from servin.core.containers import ContainerService
from servin.core.creation import ManifestLookup
from servin.core.logs import LogQuery, read_log, render_log
from servin.core.model import Container, LogLine
from servin.core.spec import with_default_ulimits
from servin.core.volumes import tree_size
from servin.images.model import Image
from servin.runtime.api import ResourceStats

__all__ = ["ContainerDetail", "ContainerListing", "ContainerViews", "ResourceStats"]

# (NetworkRecord, EndpointRecord or None) of each network a container is attached to
NetworkAttachments = list[tuple[Any, Any]]


class ImageIds(Protocol):
    @property
    def manifests(self) -> ManifestLookup: ...
    def get(self, ref_or_id: str) -> Image: ...


class ExecIds(Protocol):
    def ids_of(self, container_id: str) -> list[str]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerListing:
    container: Container
    networks: NetworkAttachments


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerDetail:
    container: Container
    bundle_dir: Path
    log_path: Path
    exec_ids: list[str]
    networks: NetworkAttachments
    sandbox_key: str


class ContainerViews:
    def __init__(self, *, containers: ContainerService, images: ImageIds, execs: ExecIds) -> None:
        self._containers = containers
        self._images = images
        self._execs = execs

    def list(self, filters: Mapping[str, Sequence[str]], *, all_: bool, limit: int) -> builtins.list[ContainerListing]:
        """`docker ps`: running ones unless all_, a limit or a status filter says otherwise; newest first."""
        cs = self._containers.list()
        if not all_ and limit <= 0 and not filters.get("status") and not filters.get("exited"):
            cs = [c for c in cs if c.state.running]
        cs = query.select(cs, {k: list(v) for k, v in filters.items()}, image_ids_of=self._image_ids_of)
        if limit > 0:
            cs = cs[:limit]
        info = self._containers.networking.info
        return [ContainerListing(container=self._with_image_manifest(c), networks=info(c.id)) for c in cs]

    def _with_image_manifest(self, c: Container) -> Container:
        """A container recorded before image manifests were kept: its image's, recorded now, while the image
        is there (after, it stays unknown)."""
        if c.image_manifest is not None or not c.image_id:
            return c
        try:
            found = self._images.manifests.of(self._images.get(c.image_id)).container_descriptor()
        except errors.NotFound:
            return c
        self._containers.amend(c.id, lambda cur: cur if cur.image_manifest else replace(cur, image_manifest=found))
        return replace(c, image_manifest=found)

    def _image_ids_of(self, ref: str) -> set[str]:
        try:
            return {self._images.get(ref).id}
        except errors.NotFound:
            return set()

    def inspect(self, ref: str) -> ContainerDetail:
        c = self._with_image_manifest(self._containers.get(ref))
        # as dockerd's getInspectData: HostConfig.Ulimits with the daemon's defaults merged in
        ulimits = with_default_ulimits(c.host_config.ulimits, self._containers.default_ulimits)
        c = replace(c, host_config=replace(c.host_config, ulimits=ulimits))
        net = self._containers.networking
        return ContainerDetail(container=c, bundle_dir=self._containers.store.dir(c.id),
                               log_path=self._containers.log_path(c.id), exec_ids=self._execs.ids_of(c.id),
                               networks=net.info(c.id), sandbox_key=net.sandbox_key(c.id))

    def sizes(self, c: Container) -> tuple[int, int]:
        """`--size`: SizeRw, the bytes of its writable layer, and SizeRootFs, those plus its image's (a walk
        of the layer: call it off the loop)."""
        size_rw = tree_size(self._containers.store.dir(c.id) / "upper")
        try:
            image_size = int(self._images.get(c.image_id).size)
        except errors.NotFound:
            image_size = 0
        return size_rw, size_rw + image_size

    def logs(self, ref: str, query: LogQuery) -> tuple[Container, AsyncIterator[builtins.list[LogLine]]]:
        c = self._readable_log(ref)
        return c, read_log(self._containers.log_path(c.id), query, self._still_running(c.id))

    def rendered_logs(self, ref: str, query: LogQuery, *, timestamps: bool) -> tuple[Container, AsyncIterator[bytes]]:
        """The body of `docker logs` for queries `renders_natively` takes (no since/until/tail)."""
        c = self._readable_log(ref)
        return c, render_log(self._containers.log_path(c.id), query, self._still_running(c.id), tty=c.config.tty,
                             timestamps=timestamps)

    def _readable_log(self, ref: str) -> Container:
        c = self._containers.get(ref)
        if c.host_config.log_type == "none":
            raise errors.InvalidArgument('configured logging driver does not support reading')
        return c

    def _still_running(self, cid: str) -> Callable[[], bool]:
        def still_running() -> bool:
            cur = self._containers.store.get(cid)
            return cur is not None and cur.state.running

        return still_running

    def stats_sample(self, ref: str) -> tuple[Container, ResourceStats | None]:
        """One reading of the container's cgroup (None when it is not running)."""
        c = self._containers.get(ref)
        if not c.state.alive:
            return c, None
        return c, self._containers.runtime.stats(c.id)

    async def network_stats(self, cid: str) -> dict[str, dict[str, int]] | None:
        """Interface counters of a running container with its own network (None: no endpoints)."""
        return await asyncio.to_thread(self._containers.networking.stats, cid)

    async def top(self, ref: str, ps_args: str) -> tuple[builtins.list[str], builtins.list[builtins.list[str]]]:
        c = self._containers.get(ref)
        lifecycle.require_alive(c)
        return await self._containers.runtime.top(c.id, ps_args)
