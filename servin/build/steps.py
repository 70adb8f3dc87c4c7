"""What the builder needs from the rest of the engine, as small Protocols: the step containers
(core/buildsteps.py runs them on the ContainerService), the image store (images/service.ImageService
is one), and where its messages go (api/wire/build.py renders them as dockerd's JSON lines).

Configs are Docker's container.Config shape (``{"Cmd": [...], "Env": [...], ...}``): it is what the
image store keeps as an image's ``config`` and ``container_config``, and what dockerd's cache compares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from servin.build.options import StepHost
from servin.images.model import Image
from servin.images.progress import ProgressEvent
from servin.registry.auth import AuthConfig

# The label of every step container: the build it belongs to. A daemon killed mid-build removes
# the containers that carry it at its next start.
BUILD_LABEL = "com.servin.build.intermediate"


@dataclass(frozen=True, slots=True)
class StreamText:
    """Text of the build's output: dockerd's ``{"stream": ...}``."""

    text: str


@dataclass(frozen=True, slots=True)
class ImageBuilt:
    """The image a stage made: dockerd's ``{"aux": {"ID": ...}}`` (``id``: the line's "id", which
    dockerd sets to "moby.image.id" for the squashed image)."""

    image_id: str
    id: str = ""


BuildMessage = StreamText | ImageBuilt | ProgressEvent
BuildSink = Callable[[BuildMessage], None]  # called on the event loop, never blocks
# pull FROM's image: (reference, platform, the X-Registry-Config credentials by registry, sink)
Puller = Callable[[str, str, Mapping[str, AuthConfig], BuildSink], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRun:
    """A container to run one RUN step in."""

    image_id: str
    config: dict[str, Any]  # Docker's container.Config of the step container
    host: StepHost
    build_id: str  # the value of BUILD_LABEL


class StepContainers(Protocol):
    async def create(self, run: StepRun) -> tuple[str, list[str]]:
        """A created container for the step: its ID and the engine's warnings (a limit the host
        cannot apply); the engine's errors as they are."""
        ...

    async def run(self, container_id: str, output: Callable[[int, bytes], None]) -> int:
        """Start it, hand its output to ``output(stream, data)`` (1 stdout, 2 stderr) until it exits;
        its exit code. Cancelled (the client went away): the container is killed."""
        ...

    async def commit(self, container_id: str, *, parent: str, config: dict[str, Any],
                     container_config: dict[str, Any], author: str) -> str:
        """An image of the container's changes on ``parent``; its ID."""
        ...

    async def remove(self, container_id: str) -> None:
        """Remove it, its anonymous volumes too (a gone container is no error)."""
        ...


class BuildImages(Protocol):
    """The image store, as the builder uses it (blocking: called through asyncio.to_thread)."""

    def get(self, ref_or_id: str) -> Image: ...

    def exists(self, ref_or_id: str) -> bool: ...

    def children(self, image_id: str) -> list[Image]: ...

    def layer_dirs(self, ref_or_id: str) -> list[Path]: ...

    def commit_layer(self, parent_id: str, layer_tar: Path | None, *, config: dict[str, Any],
                     container_config: dict[str, Any], container_id: str, comment: str = "", author: str = "",
                     repo: str | None = None, tag: str | None = None) -> Image: ...

    def create_child(self, cfg: dict[str, Any], parent: str) -> Image: ...

    def set_parent(self, image_id: str, parent: str) -> None: ...

    def squash(self, image_id: str, parent_id: str) -> Image: ...

    async def tag_image(self, ref_or_id: str, repo: str, tag: str) -> Image: ...
