"""The classic builder's cache (moby's image/cache): a step is cached when a child of the step's
parent image (or, with --cache-from, an image of those chains) was made by the same run config.
Configs are compared as dockerd's ``compare`` does: Cmd (the instruction, with the build args of a
RUN and the source checksums of a COPY/ADD), Env, Labels, Entrypoint, ExposedPorts, Volumes, User and
the attach flags. Once a step misses, every later step of the stage misses too."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from servin.images.model import Image, parse_rfc3339


def same_config(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """dockerd's compare(a, b) of two container configs."""
    if not a or not b or a.get("OpenStdin") or b.get("OpenStdin"):
        return False
    for key in ("AttachStdout", "AttachStderr", "User", "Tty"):
        if (a.get(key) or "") != (b.get(key) or ""):
            return False
    for key in ("Cmd", "Env", "Entrypoint"):
        if list(a.get(key) or []) != list(b.get(key) or []):
            return False
    la, lb = a.get("Labels") or {}, b.get("Labels") or {}
    if len(la) != len(lb) or any(lb.get(k) != v for k, v in la.items()):
        return False
    for key in ("ExposedPorts", "Volumes"):
        sa, sb = set(a.get(key) or {}), set(b.get(key) or {})
        if sa != sb:
            return False
    return True


def _newest(images: Sequence[Image]) -> Image | None:
    def created(img: Image) -> float:
        t = parse_rfc3339(img.created)
        return t.timestamp() if t else 0.0

    return max(images, key=created, default=None)


class CacheProbe:
    """One stage's cache lookups (dockerd's imageProber)."""

    def __init__(self, *, children: Callable[[str], list[Image]], enabled: bool,
                 cache_from: Sequence[Image] = ()) -> None:
        self._children = children
        self._enabled = enabled
        self.cache_from = list(cache_from)  # --cache-from: those images and their parents
        self.busted = False

    def reset(self) -> None:
        """A new stage: the cache is tried again."""
        self.busted = False

    def probe(self, parent: str, config: dict[str, Any]) -> str | None:
        """The ID of an image made from ``parent`` by ``config``, or None (and every later probe misses)."""
        if not self._enabled or self.busted:
            return None
        matches = [img for img in self._children(parent) if same_config(img.container_config, config)]
        found = _newest(matches)
        if found is None and self.cache_from:
            found = self._from_sources(parent, config)
        if found is None:
            self.busted = True
            return None
        return found.id

    def _from_sources(self, parent: str, config: dict[str, Any]) -> Image | None:
        """--cache-from: an image of those chains whose history continues ``parent``'s with this step."""
        for img in self.cache_from:
            if img.parent == parent and same_config(img.container_config, config):
                return img
        return None
