"""What the management API's handlers reach of the engine: the same core services the Docker routes use
(built by daemon/wiring.build_services), seen through the few methods /api/v1 calls."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web

from servin.core.host import HostFacts
from servin.core.logs import LogLine, LogQuery
from servin.core.model import Container
from servin.core.views import ContainerDetail, ContainerListing, ResourceStats
from servin.images.model import DeleteItem, HistoryItem, Image
from servin.images.reference import Reference
from servin.manage.hoststats import HostSampler
from servin.manage.findings import ConnectionCheck
from servin.registry import manifest, progress
from servin.registry.auth import AuthConfig
from servin.registry.service import PullResult


class ContainerVerbs(Protocol):
    """core/containers.ContainerService: a container by ID, short ID or name, and its lifecycle."""

    def get(self, ref: str) -> Container: ...

    async def start(self, ref: str) -> None: ...

    async def stop(self, ref: str, timeout: int | None = None) -> None: ...

    async def restart(self, ref: str, timeout: int | None = None) -> None: ...


class ContainerReads(Protocol):
    """core/views.ContainerViews: lists with Docker's filters, details, logs and cgroup readings."""

    def list(self, filters: Mapping[str, Sequence[str]], *, all_: bool,
             limit: int) -> builtins.list[ContainerListing]: ...

    def inspect(self, ref: str) -> ContainerDetail: ...

    def logs(self, ref: str, query: LogQuery) -> tuple[Container, AsyncIterator[builtins.list[LogLine]]]: ...

    def stats_sample(self, ref: str) -> tuple[Container, ResourceStats | None]: ...

    async def network_stats(self, cid: str) -> dict[str, dict[str, int]] | None: ...


class ImageVerbs(Protocol):
    """images/service.ImageService: an image by ID, short ID or name:tag, Docker's list filters, removal."""

    def get(self, ref_or_id: str) -> Image: ...

    def history(self, ref_or_id: str) -> builtins.list[HistoryItem]: ...

    async def select(self, filters: Mapping[str, Sequence[str]], *, all_: bool) -> builtins.list[Image]: ...

    async def remove(self, ref_or_id: str, *, force: bool, prune: bool) -> builtins.list[DeleteItem]: ...


class Puller(Protocol):
    """registry/service.RegistryService: a pull into the image store (its pull event included)."""

    async def pull(self, ref: Reference, creds: AuthConfig, platform: manifest.Platform | None,
                   out: progress.Output, *, all_tags: bool = False) -> PullResult: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    containers: ContainerVerbs
    views: ContainerReads
    facts: HostFacts  # version facts, the data root, the daemon's start time
    docker_version: str  # the Docker API version the daemon serves
    host: HostSampler  # /proc readings: CPU, memory, network
    host_cpu_ns: Callable[[], int]  # the host's CPU time since boot: stats' system_cpu_usage
    images: ImageVerbs
    registry: Puller
    registry_auth: Callable[[str], AuthConfig]  # the daemon's own credentials for a registry's domain
    connection: ConnectionCheck  # the daemon's self-check: its listeners, data root, cgroups, overlay, shim


ENGINE = web.AppKey("servin.manage.engine", Engine)


def engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


def data_root(facts: HostFacts) -> Path:
    """The data root, or its nearest existing parent (its free space is the same file system's)."""
    path = Path(facts.data_root)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
