"""The classic builder's cache as ``docker system df`` and ``docker builder prune`` see it: the
untagged images builds made for their steps (what the cache lookup and --cache-from reuse) and the
builder's work directories, as dockerd's BuildCache records.

A step image is *in use* when a container uses it, *shared* when it is an ancestor of a tagged
image or of a build's result. Pruning (dockerd's /build/prune over BuildKit's rules) removes the
records that are not in use and, without ``all``, not shared; then ``until`` keeps those used more
recently, the filters select, and ``keep_storage`` stops once the cache is that small. Images go
through the image store's own delete (its conflict rules and ``delete`` events), children first.
"""

from __future__ import annotations

import asyncio
import builtins
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from servin import safefs
from servin.build.ledger import BuildLedger
from servin.core.volumes import tree_size
from servin.errors import Conflict, InvalidArgument, NotFound
from servin.images.layer_store import LayerStore, chain_ids
from servin.images.model import DeleteItem, Image
from servin.images.query import label_matches

FILTERS = ("id", "parent", "type", "description", "inuse", "shared", "private")
_NOP = "/bin/sh -c #(nop) "


class CacheImages(Protocol):
    """What the build cache needs of the image service (images/service.ImageService)."""

    def list(self) -> builtins.list[Image]: ...

    @property
    def layers(self) -> LayerStore: ...

    async def remove(self, ref_or_id: str, *, force: bool, prune: bool) -> builtins.list[DeleteItem]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheRecord:
    id: str  # a step image's ID without "sha256:", or a build's ID (its work directory)
    parent: str = ""  # the record of the parent image, if it is one
    type: str = "regular"
    description: str
    in_use: bool
    shared: bool
    size: int
    created_at: float  # unix seconds
    last_used_at: float | None
    usage_count: int
    image_id: str = ""  # "" for a work directory
    labels: Mapping[str, str] = field(default_factory=dict)  # the step image's (none for a work directory)


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneOptions:
    all: bool = False
    keep_storage: int = 0  # bytes of cache never pruned (reserved-space, keep-storage); 0: none
    max_used_space: int = 0  # bytes: prune until the cache is no larger (1.48); 0: no cap
    min_free_space: int = 0  # bytes: prune until the data root's file system has this free (1.48); 0: none
    keep_duration: float = 0.0  # seconds ("until"): records used more recently stay
    filters: Mapping[str, str] = field(default_factory=dict)  # FILTERS: "" means "is true / is set"
    labels: tuple[str, ...] = ()  # label=KEY[=VALUE]: every one on the step image (`docker system prune --filter`)
    labels_not: tuple[str, ...] = ()  # label!=KEY[=VALUE]: none of them


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneReport:
    deleted: tuple[str, ...] = ()
    reclaimed: int = 0


def describe(img: Image) -> str:
    """The step's instruction, from the image's last history entry."""
    history = [h for h in img.config.get("history") or [] if isinstance(h, dict)]
    created_by = str(history[-1].get("created_by", "")) if history else ""
    if created_by.startswith(_NOP):
        return created_by[len(_NOP):].strip()
    return f"RUN {created_by}" if created_by else ""


def _matches(record: CacheRecord, key: str, value: str) -> bool:
    fields = {"id": record.id, "parent": record.parent, "type": record.type, "description": record.description,
              "inuse": str(record.in_use).lower(), "shared": str(record.shared).lower(),
              "private": str(not record.shared).lower()}
    got = fields[key]
    if value == "":
        return got not in ("", "false")
    if key == "id":  # BuildKit's "id~=" (a regular expression)
        try:
            return re.search(value, got) is not None
        except re.error as e:
            raise InvalidArgument(f"invalid filter id={value!r}: {e}") from None
    return got == value


class BuildCache:
    def __init__(self, *, images: CacheImages, ledger: BuildLedger, work_root: Path,
                 users: Callable[[str], list[tuple[str, bool]]], active: Callable[[], Iterable[str]]) -> None:
        self._images = images
        self._ledger = ledger
        self._work_root = work_root
        self._users = users
        self._active = active

    def records(self) -> list[CacheRecord]:
        """Blocking: the step images and work directories, oldest first."""
        return sorted([*self._image_records(), *self._work_records()], key=lambda r: (r.created_at, r.id))

    def _image_records(self) -> list[CacheRecord]:
        steps, results = self._ledger.snapshot()
        images = {i.id: i for i in self._images.list()}
        gone = [i for i in (*steps, *results) if i not in images]
        if gone:
            self._ledger.forget(gone)
        shared: set[str] = set()
        for img in images.values():
            if img.repo_tags or img.repo_digests or img.id in results:
                cur = img.parent
                while cur and cur in images and cur not in shared:
                    shared.add(cur)
                    cur = images[cur].parent
        chosen = {i: images[i] for i in steps if i in images and i not in results
                  and not images[i].repo_tags and not images[i].repo_digests}
        out = []
        for image_id, img in chosen.items():
            use = steps[image_id]
            parent = images.get(img.parent)
            own = img.diff_ids[len(parent.diff_ids):] if parent is not None else img.diff_ids
            out.append(CacheRecord(
                id=image_id.removeprefix("sha256:"), description=describe(img),
                parent=img.parent.removeprefix("sha256:") if img.parent in chosen else "",
                in_use=bool(self._users(image_id)), shared=image_id in shared,
                size=sum(self._images.layers.size(d) for d in own), created_at=use.created,
                last_used_at=use.last_used, usage_count=use.usage, image_id=image_id,
                labels=img.labels))
        return out

    def _work_records(self) -> list[CacheRecord]:
        if not self._work_root.is_dir():
            return []
        active = set(self._active())
        out = []
        for d in self._work_root.iterdir():
            if not d.is_dir():
                continue
            try:
                mtime = d.stat().st_mtime
            except FileNotFoundError:
                continue
            out.append(CacheRecord(id=d.name, description="local source for context", in_use=d.name in active,
                                   shared=False, size=tree_size(d), created_at=mtime, last_used_at=mtime,
                                   usage_count=1))
        return out

    async def usage(self) -> list[CacheRecord]:
        return await asyncio.to_thread(self.records)

    async def prune(self, options: PruneOptions) -> PruneReport:
        for key in options.filters:
            if key not in FILTERS:
                raise InvalidArgument(f"invalid filter '{key}'")
        records = await self.usage()
        now = time.time()
        total = sum(r.size for r in records)
        chosen = [r for r in records if not r.in_use and (options.all or not r.shared)
                  and not (options.keep_duration and (r.last_used_at or r.created_at) > now - options.keep_duration)
                  and all(_matches(r, k, v) for k, v in options.filters.items())
                  and label_matches(r.labels, options.labels)
                  and not any(label_matches(r.labels, [w]) for w in options.labels_not)]
        chosen.sort(key=lambda r: (r.last_used_at or r.created_at, r.id))  # least recently used first
        if options.keep_storage or options.max_used_space or options.min_free_space:
            chosen = self._within_space(chosen, total, options)
        deleted, reclaimed = await self._remove_images([r for r in chosen if r.image_id])
        for r in chosen:
            if not r.image_id and r.id not in set(self._active()):
                reclaimed += r.size
                deleted.append(r.id)
                await asyncio.to_thread(safefs.remove_tree, self._work_root / r.id, ignore_errors=True)
        return PruneReport(deleted=tuple(deleted), reclaimed=reclaimed)

    def _within_space(self, candidates: list[CacheRecord], total: int, o: PruneOptions) -> list[CacheRecord]:
        """The least recently used candidates to prune so that the cache fits under max-used-space and
        min-free-space is free (with neither: all of them), never taking it below reserved-space."""
        free = shutil.disk_usage(self._work_root if self._work_root.exists() else self._work_root.parent).free
        chosen = []
        for r in candidates:
            satisfied = (o.max_used_space or o.min_free_space) and (not o.max_used_space or total <= o.max_used_space) \
                and (not o.min_free_space or free >= o.min_free_space)
            if satisfied or total <= o.keep_storage:
                break
            chosen.append(r)
            total, free = total - r.size, free + r.size
        return chosen

    async def _remove_images(self, chosen: list[CacheRecord]) -> tuple[list[str], int]:
        """Children before parents; an image the store refuses to delete (a child, a container) stays."""
        images = await asyncio.to_thread(self._images.list)
        by_id = {i.id: i for i in images}
        sizes = {chain: self._images.layers.size(d) for i in images
                 for d, chain in zip(i.diff_ids, chain_ids(i.diff_ids), strict=True)}

        def depth(image_id: str) -> int:
            n, cur = 0, by_id[image_id].parent if image_id in by_id else ""
            while cur in by_id and n < 10_000:
                n, cur = n + 1, by_id[cur].parent
            return n

        deleted: list[str] = []
        reclaimed = 0
        for r in sorted(chosen, key=lambda r: depth(r.image_id), reverse=True):
            try:
                items = await self._images.remove(r.image_id, force=False, prune=False)
            except (Conflict, NotFound):
                continue
            deleted.append(r.id)
            reclaimed += sum(sizes.get(i.deleted, 0) for i in items if i.deleted and i.deleted != r.image_id)
        if deleted:
            await asyncio.to_thread(self._ledger.forget, [f"sha256:{i}" for i in deleted])
        return deleted, reclaimed
