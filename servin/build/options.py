"""What one classic build was asked for (the query of ``POST /build``, typed by api/wire/build.py),
and what the build's step containers run with."""

from __future__ import annotations

from dataclasses import dataclass, field

from servin.limits import CpuMemoryLimits
from servin.registry.auth import AuthConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class StepHost(CpuMemoryLimits):
    """The host settings of every step container (dockerd's hostConfigFromOptions)."""

    shm_size: int = 0  # 0: the engine's default
    network_mode: str = ""  # "" and "default": the default bridge
    extra_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    dockerfile: str = "Dockerfile"  # a path in the context
    remote: str = ""  # a context the daemon fetches (git or http URL) instead of the request body
    tags: tuple[str, ...] = ()
    quiet: bool = False  # q: only the image ID
    no_cache: bool = False
    cache_from: tuple[str, ...] = ()  # images whose chains are cache candidates too
    pull: bool = False  # always pull FROM images
    remove: bool = True  # rm: intermediate containers after a successful step
    force_remove: bool = False  # forcerm: after every step
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    squash: bool = False  # the image's layers above its FROM image's merged into one (experimental)
    platform: str = ""
    host: StepHost = StepHost()
    registry_auth: dict[str, AuthConfig] = field(default_factory=dict)  # X-Registry-Config, by registry


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildResult:
    image_id: str  # sha256:<hex>
    tags: tuple[str, ...]  # familiar names as tagged ("x:latest")
