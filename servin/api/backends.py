"""What the API needs from the engine: one Protocol per resource, as moby's
api/server/router/*/backend.go. A handler parses, calls one backend method, renders; list filters,
prune policy and events live behind these. In and out go domain objects: Docker JSON stays in
api/wire. `daemon/wiring.py` builds the implementations (core/networks, core/volumes,
core/system, ...) and hands them over in `api/context.Services`.
"""

from __future__ import annotations

import asyncio
import builtins
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from servin.build.options import BuildOptions, BuildResult
from servin.build.steps import BuildSink
from servin.core.containers import AttachStream, AttachTicket, WaitResult
from servin.core.events import Event
from servin.core.host import HostFacts
from servin.core.execs import ExecConfig, ExecRecord
from servin.core.logs import LogQuery
from servin.core.model import Container, ContainerConfig, EndpointConfig, HostConfig, LogLine
from servin.core.networks import EndpointDecoder, NetworkDetail, NetworkPruneReport, NetworkSpec
from servin.core.query import Filters
from servin.core.buildcache import PruneOptions, PruneReport
from servin.core.system import DiskUsage, PingFacts, SystemInfo
from servin.core.views import ContainerDetail, ContainerListing, ResourceStats
from servin.core.volumes import Volume, VolumePruneReport, VolumeSpec
from servin.images.manifests import ManifestStore
from servin.images.model import DeleteItem, HistoryItem, Image
from servin.images.progress import ProgressSink
from servin.images.query import PrunePolicy
from servin.images.service import SaveSelection
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

    async def prune_build_cache(self, options: PruneOptions | None = None) -> PruneReport: ...


# ---- containers, images, exec -------------------------------------------------------------

class ContainersBackend(Protocol):
    """/containers: create and the verbs that change a container (moby's stateBackend), attach,
    prune. core/containers.ContainerService; the filesystem verbs (cp, export, changes, commit) are
    core/filesystem's."""

    def get(self, ref: str) -> Container: ...

    def verify(self, host_config: HostConfig, *, update: bool = False) -> tuple[HostConfig, list[str]]: ...

    async def create(self, config: ContainerConfig, host_config: HostConfig, name: str | None,
                     endpoints: Mapping[str, EndpointConfig] | None = None) -> Container: ...

    async def start(self, ref: str) -> None: ...

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None: ...

    async def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None: ...

    async def kill(self, ref: str, sig: str | int | None = None) -> None: ...

    async def pause(self, ref: str) -> None: ...

    async def unpause(self, ref: str) -> None: ...

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None: ...

    async def remove_link(self, parent: str, alias: str) -> None: ...

    async def rename(self, ref: str, new_name: str) -> None: ...

    async def update(self, ref: str, host_config: HostConfig) -> Container: ...

    def wait_future(self, ref: str, condition: str) -> asyncio.Future[WaitResult]: ...

    async def resize(self, ref: str, height: int, width: int) -> None: ...

    def attach_ticket(self, ref: str) -> tuple[Container, AttachTicket]: ...

    async def open_attach(self, ticket: AttachTicket, *, stdin: bool, stdout: bool,
                          stderr: bool) -> AttachStream | None: ...

    async def prune(self, filters: dict[str, list[str]]) -> tuple[list[str], int]: ...


class ContainerViewsBackend(Protocol):
    """What the API reads of containers (moby's monitorBackend): core/views.ContainerViews."""

    def list(self, filters: Mapping[str, Sequence[str]], *, all_: bool,
             limit: int) -> builtins.list[ContainerListing]: ...

    def inspect(self, ref: str) -> ContainerDetail: ...

    def sizes(self, c: Container) -> tuple[int, int]: ...

    def logs(self, ref: str, query: LogQuery) -> tuple[Container, AsyncIterator[builtins.list[LogLine]]]: ...

    def rendered_logs(self, ref: str, query: LogQuery, *,
                      timestamps: bool) -> tuple[Container, AsyncIterator[bytes]]: ...

    def stats_sample(self, ref: str) -> tuple[Container, ResourceStats | None]: ...

    async def network_stats(self, cid: str) -> dict[str, dict[str, int]] | None: ...

    async def top(self, ref: str, ps_args: str) -> tuple[builtins.list[str], builtins.list[builtins.list[str]]]: ...


class ImagesBackend(Protocol):
    """/images: images/service.ImageService. Filters, prune policy and the image events are behind it."""

    manifests: ManifestStore  # each image's OCI target and manifests (Descriptor, Manifests)

    def get(self, ref_or_id: str) -> Image: ...

    def history(self, ref_or_id: str) -> builtins.list[HistoryItem]: ...

    async def select(self, filters: Mapping[str, Sequence[str]], *, all_: bool) -> builtins.list[Image]: ...

    def shared_sizes(self) -> dict[str, int]: ...

    async def tag_image(self, ref_or_id: str, repo: str, tag: str) -> Image: ...

    async def remove(self, ref_or_id: str, *, force: bool, prune: bool) -> builtins.list[DeleteItem]: ...

    async def prune_images(self, policy: PrunePolicy) -> tuple[builtins.list[DeleteItem], int]: ...

    async def load(self, path: Path, progress: ProgressSink | None = None) -> builtins.list[str]: ...

    async def import_image(self, path: Path, *, repo: str | None, tag: str | None, changes: builtins.list[str],
                           message: str) -> Image: ...

    async def save_plan(self, names: builtins.list[str]) -> SaveSelection: ...

    async def save(self, selection: SaveSelection, out: io.RawIOBase) -> None: ...


class ExecsBackend(Protocol):
    """/containers/{id}/exec and /exec/{id}: core/execs.ExecService."""

    def create(self, ref: str, config: ExecConfig) -> ExecRecord: ...

    def get(self, exec_id: str) -> ExecRecord: ...

    async def start(self, exec_id: str, console_size: tuple[int, int] | None = None) -> ExecRecord: ...

    async def resize(self, exec_id: str, height: int, width: int) -> None: ...


class BuildBackend(Protocol):
    """POST /build: build/builder.Builder. The context's chunks in, the messages to ``sink`` as they come."""

    async def build(self, options: BuildOptions, body: AsyncIterator[bytes], sink: BuildSink) -> BuildResult: ...
