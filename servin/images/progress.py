"""Typed progress of the long image operations (pull, push, load), as they happen; the API
renders them as Docker's JSON progress lines (api/wire/progress.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """A message (``Pulling from library/busybox``), about the layer or tag ``id`` when set."""

    text: str
    id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerProgress:
    """One layer's state: ``action`` (Downloading, Extracting, Pushing, Loading layer, Pull
    complete...) with ``current`` of ``total`` bytes while counting (0 when unknown)."""

    id: str
    action: str
    current: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PushedManifest:
    """The manifest a push wrote for ``tag``: its digest and size (the ``aux`` of dockerd)."""

    tag: str
    digest: str
    size: int


ProgressEvent = Status | LayerProgress | PushedManifest
ProgressSink = Callable[[ProgressEvent], None]
