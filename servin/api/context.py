"""What handlers reach through the aiohttp app (typed AppKeys, set by daemon/wiring)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from servin import errors
from servin.api.errors import PayloadTooLarge
from servin.api.backends import (
    BuildBackend,
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
    builder: BuildBackend | None = None  # POST /build (None: answered as not implemented)


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    return v.strip().lower() not in ("", "0", "false", "no")


# The most a JSON body may hold (a container create is a few kilobytes; dockerd sets no limit, but
# a body is held in memory whole, so a 300 MB one would cost the daemon gigabytes). Tar uploads
# (image load and import, archive upload) stream to disk through request.content and have no cap.
JSON_BODY_LIMIT = 8 << 20


def check_json_content_type(request: web.Request) -> None:
    """dockerd's CheckForJSON: a body must say it is application/json, which a browser's text/plain
    or form post cannot without a CORS preflight. A request without a body passes whatever its
    Content-Type (dockerd refuses a typed empty body; it carries nothing to act on)."""
    if not request.can_read_body:
        return
    ct = request.headers.get("Content-Type", "")
    if _media_type(ct) != "application/json":
        raise errors.InvalidArgument(f"Content-Type specified ({ct}) must be 'application/json'")


def _media_type(ct: str) -> str:
    """The media type of a Content-Type value, lower-cased; "" when it is malformed (Go's mime.ParseMediaType)."""
    media, _, _params = ct.partition(";")
    media = media.strip().lower()
    kind, slash, sub = media.partition("/")
    if not slash or not kind or not sub or any(c in media for c in ' \t"()<>@,:[]?=\\'):
        return ""
    return media


async def json_body(request: web.Request) -> Any:
    """The request's JSON body (None when empty), read up to JSON_BODY_LIMIT and never past it."""
    check_json_content_type(request)
    limit = JSON_BODY_LIMIT
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(_too_large(request.content_length))
    raw = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(_too_large(None))
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid JSON: {exc}") from None


def _too_large(length: int | None) -> str:
    size = f" ({length} bytes)" if length is not None else ""
    return f"request body too large{size}: a JSON body is limited to {JSON_BODY_LIMIT >> 20} MiB"
