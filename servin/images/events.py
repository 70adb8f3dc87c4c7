"""What the image service tells the engine's event bus (``type=image`` events), typed here so
the images layer needs nothing of the core: the composition root connects a publisher."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageEvent:
    """``action`` (tag, untag, delete, load, import, pull, push, save, prune) by ``actor_id``."""

    action: str
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)


ImageEventPublisher = Callable[[ImageEvent], None]


def discard(event: ImageEvent) -> None:
    """The publisher of a service nobody listens to (tools, tests)."""


def named(action: str, image_id: str, name: str = "") -> ImageEvent:
    """An event about one image, named ``name`` (or its id), as dockerd's LogImageEvent."""
    return ImageEvent(action=action, actor_id=image_id, attributes={"name": name or image_id})
