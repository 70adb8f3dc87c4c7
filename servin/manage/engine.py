"""What the management API's handlers reach of the engine: the same core services the Docker routes use
(built by daemon/wiring.build_services), seen through the few methods /api/v1 calls."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web

from servin.core.host import HostFacts
from servin.core.logs import LogLine, LogQuery
from servin.core.model import Container
from servin.core.views import ContainerDetail, ContainerListing, ResourceStats
from servin.manage.hoststats import HostSampler


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    containers: ContainerVerbs
    views: ContainerReads
    facts: HostFacts  # version facts, the data root, the daemon's start time
    docker_version: str  # the Docker API version the daemon serves
    host: HostSampler  # /proc readings: CPU, memory, network


ENGINE = web.AppKey("servin.manage.engine", Engine)


def engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


def data_root(facts: HostFacts) -> Path:
    """The data root, or its nearest existing parent (its free space is the same file system's)."""
    path = Path(facts.data_root)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
