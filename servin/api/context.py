"""What handlers reach through the aiohttp app (typed AppKeys, set by daemon/wiring)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from servin import errors
from servin.api.backends import (
    ContainersBackend,
    ContainerViewsBackend,
    ExecsBackend,
    ImagesBackend,
    NetworksBackend,
    SystemBackend,
    VolumesBackend,
)
from servin.core.filesystem import ContainerFilesystem
from servin.core.host import HostFacts
from servin.registry.service import RegistryService


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """The engine's backends (api/backends.py), built by daemon/wiring.build_services."""

    containers: ContainersBackend
    container_views: ContainerViewsBackend
    images: ImagesBackend
    networks: NetworksBackend
    volumes: VolumesBackend
    system: SystemBackend
    execs: ExecsBackend
    filesystem: ContainerFilesystem  # cp, export, changes, commit
    registry: RegistryService  # pull, push, login, search, distribution inspect
    info: HostFacts  # the stats handler's ncpu and memory (system.facts() for the rest)
    host_cpu_ns: Callable[[], int]  # the host's CPU time since boot: stats' system_cpu_usage
    tmp_dir: Path


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    return v.strip().lower() not in ("", "0", "false", "no")


async def json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid JSON: {exc}") from None
