"""The classic builder's cache (moby's image/cache): a step is cached when a child of the step's
parent image was made by the same run config. Configs are compared as dockerd's ``compare`` does:
Cmd (the instruction, with the build args of a RUN and the source checksums of a COPY/ADD), Env,
Labels, Entrypoint, ExposedPorts, Volumes, User and the attach flags; the newest match wins. Once
a step misses, every later step of the stage misses too.

With --cache-from (dockerd's ImageCache), a local match counts only when it is in a source image's
chain; otherwise a source image whose history starts as the parent's and continues with this step's
command is used: the step's image is restored from it (its layers are the source's), so an image
pulled without its parents still serves as the cache.
"""

from __future__ import annotations

from typing import Any, Protocol

from servin.images.model import Image, parse_rfc3339


class CacheImages(Protocol):
    def get(self, ref_or_id: str) -> Image: ...

    def children(self, image_id: str) -> list[Image]: ...

    def create_child(self, cfg: dict[str, Any], parent: str) -> Image: ...

    def set_parent(self, image_id: str, parent: str) -> None: ...


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
        if set(a.get(key) or {}) != set(b.get(key) or {}):
            return False
    return True


def _created(img: Image) -> float:
    t = parse_rfc3339(img.created)
    return t.timestamp() if t else 0.0


def _history(img: Image | None) -> list[dict[str, Any]]:
    return [h for h in (img.config.get("history") or []) if isinstance(h, dict)] if img is not None else []


def valid_parent(target: Image, parent: Image | None) -> bool:
    """dockerd's isValidParent: ``target``'s history and layers start with ``parent``'s."""
    history, parent_history = _history(target), _history(parent)
    if not history:
        return False
    if parent is None or (not parent_history and not parent.diff_ids):
        return True
    if len(parent_history) >= len(history) or len(parent.diff_ids) > len(target.diff_ids):
        return False
    return history[:len(parent_history)] == parent_history and \
        target.diff_ids[:len(parent.diff_ids)] == parent.diff_ids


def _layer_at(target: Image, index: int) -> str | None:
    """The layer history entry ``index`` of ``target`` made (None for an empty_layer step)."""
    n = 0
    for i, h in enumerate(_history(target)):
        if i == index:
            return None if h.get("empty_layer") else target.diff_ids[n]
        if not h.get("empty_layer"):
            n += 1
    return None


def restored_config(parent: Image | None, target: Image, run_config: dict[str, Any]) -> dict[str, Any]:
    """dockerd's restoreCachedImage: the parent's history and layers plus ``target``'s next step."""
    n = len(_history(parent))
    history = [*_history(parent), _history(target)[n]]
    diff_ids = list(parent.diff_ids) if parent is not None else []
    if (layer := _layer_at(target, n)) is not None:
        diff_ids.append(layer)
    cfg: dict[str, Any] = {"architecture": target.architecture, "config": run_config,
                           "created": history[-1].get("created", ""), "docker_version": target.docker_version,
                           "history": history, "os": target.os or "linux",
                           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    if target.author:
        cfg["author"] = target.author
    return cfg


class CacheProbe:
    """One build's cache lookups (dockerd's imageProber); ``reset`` at each stage."""

    def __init__(self, *, images: CacheImages, enabled: bool) -> None:
        self._images = images
        self._enabled = enabled
        self.sources: list[Image] = []  # --cache-from
        self.busted = False

    def reset(self) -> None:
        self.busted = False

    def probe(self, parent: str, config: dict[str, Any], image_config: dict[str, Any]) -> str | None:
        """The ID of an image made from ``parent`` by ``config`` (``image_config``: the run config the
        step's image gets), or None (and every later probe of the stage misses)."""
        if not self._enabled or self.busted:
            return None
        matches = [img for img in self._images.children(parent) if same_config(img.container_config, config)]
        local = max(matches, key=_created, default=None)
        found: str | None
        if not self.sources:
            found = local.id if local is not None else None
        elif local is not None and any(self._in_chain(local.id, s) for s in self.sources):
            found = local.id
        else:
            found = self._from_sources(parent, config, image_config)
        if found is None:
            self.busted = True
        return found

    def _in_chain(self, image_id: str, source: Image) -> bool:
        cur: str = source.id
        for _ in range(1000):
            if cur == image_id:
                return True
            if not cur:
                return False
            cur = self._images.get(cur).parent
        return False

    def _from_sources(self, parent_id: str, config: dict[str, Any], image_config: dict[str, Any]) -> str | None:
        parent = self._images.get(parent_id) if parent_id else None
        n = len(_history(parent))
        command = " ".join(config.get("Cmd") or [])
        for target in self.sources:
            history = _history(target)
            if not valid_parent(target, parent) or n >= len(history) or history[n].get("created_by") != command:
                continue
            if len(history) - 1 == n:
                if parent is not None:
                    self._images.set_parent(target.id, parent.id)
                return target.id
            restored = self._images.create_child(restored_config(parent, target, image_config), parent_id)
            self.sources = [target]  # as dockerd: stay on this source
            return restored.id
        return None
