"""What the API needs from the engine: one Protocol per resource, as moby's
api/server/router/*/backend.go. A handler parses, calls one backend method, renders; list filters,
prune policy and events live behind these. In and out go domain objects: Docker JSON stays in
api/wire. `daemon/wiring.py` builds the implementations (core/networks, core/volumes,
core/system, ...) and hands them over in `api/context.Services`.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from servin.core.containers import AttachTicket, WaitResult
from servin.core.events import Event
from servin.core.host import HostFacts
from servin.core.execs import ExecConfig, ExecRecord
from servin.core.logs import LogQuery
from servin.core.model import Container, ContainerConfig, EndpointConfig, HostConfig, LogLine
from servin.core.networks import EndpointDecoder, NetworkDetail, NetworkPruneReport, NetworkSpec
from servin.core.query import Filters
from servin.core.system import BuildCachePruneReport, DiskUsage, PingFacts, SystemInfo
from servin.core.volumes import Volume, VolumePruneReport, VolumeSpec
from servin.images.model import DeleteItem, HistoryItem, Image
from servin.images.reference import Reference
from servin.network.store import NetworkRecord



class NetworksBackend(Protocol):
    """/networks. Without networking (`--bridge none`) every call is a NotImplementedYet."""

    async def list(self, filters: Filters) -> list[NetworkRecord]: ...

    async def inspect(self, ref: str) -> NetworkDetail: ...

    async def create(self, spec: NetworkSpec) -> NetworkRecord: ...

    async def remove(self, ref: str) -> None: ...

    async def connect(self, ref: str, container: str, endpoint: EndpointDecoder) -> None: ...

    async def disconnect(self, ref: str, container: str) -> None: ...

    async def prune(self, filters: Filters) -> NetworkPruneReport: ...


class VolumesBackend(Protocol):
    """/volumes (the local driver)."""

    async def list(self, filters: Filters) -> list[Volume]: ...

    async def inspect(self, name: str) -> Volume: ...

    async def create(self, spec: VolumeSpec) -> Volume: ...

    async def remove(self, name: str, *, force: bool = False) -> None: ...

    async def prune(self, filters: Filters) -> VolumePruneReport: ...


class EventStream(Protocol):
    """An /events subscription: iterate for the events, close when the client is gone."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    def close(self) -> None: ...


class SystemBackend(Protocol):
    """/_ping, /version, /info, /events, /system/df, /build/prune."""

    def ping(self) -> PingFacts: ...

    def facts(self) -> HostFacts: ...

    async def info(self) -> SystemInfo: ...

    def subscribe(self, filters: Filters, *, since: float | None = None,
                  until: float | None = None) -> EventStream: ...

    async def disk_usage(self) -> DiskUsage: ...

    async def prune_build_cache(self) -> BuildCachePruneReport: ...


# ---- draft: the lead finalises after the merge ---------------------------------------------
# Containers, images and exec are being reshaped (ContainerService, ImageStore, ExecService) while
# this is written. These drafts are what the handlers call today, with each reach-through
# (`containers.store.dir`, `containers.networking.*`, `request.app[EXECS]`, events published by
# image handlers) folded into one method of the backend that should own it; `Services` keeps the
# concrete classes until they are final.

class ContainerStateBackend(Protocol):  # draft: the lead finalises after the merge
    """Create and the lifecycle verbs (moby's stateBackend)."""

    def verify(self, host_config: HostConfig, *, update: bool = False) -> tuple[HostConfig, list[str]]: ...

    async def create(self, config: ContainerConfig, host_config: HostConfig, name: str | None,
                     endpoints: Mapping[str, EndpointConfig] | None = None) -> Container: ...

    async def start(self, ref: str) -> None: ...

    async def stop(self, ref: str, timeout: int | None = None) -> None: ...

    async def restart(self, ref: str, timeout: int | None = None) -> None: ...

    async def kill(self, ref: str, sig: str | int | None = None) -> None: ...

    async def pause(self, ref: str) -> None: ...

    async def unpause(self, ref: str) -> None: ...

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None: ...

    async def remove_link(self, parent: str, alias: str) -> None: ...  # today containers.networking.remove_link

    def rename(self, ref: str, new_name: str) -> None: ...

    async def update(self, ref: str, host_config: HostConfig) -> Container: ...

    def wait_future(self, ref: str, condition: str) -> asyncio.Future[WaitResult]: ...

    async def resize(self, ref: str, height: int, width: int) -> None: ...


class ContainerQueryBackend(Protocol):  # draft: the lead finalises after the merge
    """Lookups, list (its filters behind it, as networks and volumes), prune."""

    def get(self, ref: str) -> Container: ...

    def list(self) -> list[Container]: ...  # to become list(filters, all_, limit) with core/query.select inside

    def bundle_dir(self, cid: str) -> Path: ...  # today containers.store.dir (inspect's GraphDriver)

    def log_path(self, cid: str) -> Path: ...

    def network_info(self, cid: str) -> builtins.list[tuple[NetworkRecord, object]]: ...  # today networking.info

    def sandbox_key(self, cid: str) -> str: ...  # today networking.sandbox_key

    async def prune(self, filters: Filters) -> tuple[builtins.list[str], int]: ...


class ContainerMonitorBackend(Protocol):  # draft: the lead finalises after the merge
    """Logs, stats, top (moby's monitorBackend)."""

    def logs(self, ref: str, query: LogQuery) -> tuple[Container, AsyncIterator[list[LogLine]]]: ...

    def rendered_logs(self, ref: str, query: LogQuery, *,
                      timestamps: bool) -> tuple[Container, AsyncIterator[bytes]]: ...

    def stats_sample(self, ref: str) -> tuple[Container, object]: ...

    def network_stats(self, cid: str) -> dict[str, dict[str, int]] | None: ...  # today networking.stats

    async def top(self, ref: str, ps_args: str) -> tuple[list[str], list[list[str]]]: ...


class ContainerAttachBackend(Protocol):  # draft: the lead finalises after the merge
    """Attach: a ticket resolved with the stream once the container runs (the runtime engineer's
    AttachStream replaces the shim the ticket carries today)."""

    def attach_ticket(self, ref: str) -> tuple[Container, AttachTicket]: ...


class ContainersBackend(ContainerStateBackend, ContainerQueryBackend, ContainerMonitorBackend,
                        ContainerAttachBackend, Protocol):  # draft: the lead finalises after the merge
    """/containers (the filesystem verbs, cp/export/changes/commit, are core/filesystem's)."""


class ImagesBackend(Protocol):  # draft: the lead finalises after the merge
    """/images. Today the handlers publish the image events (load, import, tag, untag, delete,
    prune, save) and build the prune selection themselves: both belong behind this."""

    def list(self) -> list[Image]: ...  # to become list(filters, all_) with images/query.select_images inside

    def get(self, ref_or_id: str) -> Image: ...

    def history(self, ref_or_id: str) -> builtins.list[HistoryItem]: ...

    def tag(self, ref_or_id: str, repo: str, tag: str | None = None) -> Image: ...

    def delete(self, ref_or_id: str, *, force: bool, users: Callable[[str], builtins.list[tuple[str, bool]]],
               prune: bool = True) -> builtins.list[DeleteItem]: ...

    def prune(self, *, dangling_only: bool, select: Callable[[Image], bool],
              users: Callable[[str], builtins.list[tuple[str, bool]]]) -> tuple[builtins.list[DeleteItem], int]: ...

    def load_archive(self, path: Path,
                     progress: Callable[[str, int, int], None] | None = None) -> builtins.list[str]: ...

    def import_tarball(self, path: Path, *, repo: str | None, tag: str | None, changes: builtins.list[str],
                       message: str) -> Image: ...

    def save_selection(self, names: Iterable[str]) -> builtins.list[tuple[str, builtins.list[Reference]]]: ...


class ExecsBackend(Protocol):  # draft: the lead finalises after the merge
    """/containers/{id}/exec and /exec/{id} (today reached through `request.app[EXECS]`)."""

    def create(self, ref: str, config: ExecConfig) -> ExecRecord: ...

    def get(self, exec_id: str) -> ExecRecord: ...

    def ids_of(self, container_id: str) -> list[str]: ...

    async def start(self, exec_id: str) -> ExecRecord: ...

    async def resize(self, exec_id: str, height: int, width: int) -> None: ...
