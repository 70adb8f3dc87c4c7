"""Docker JSON for `GET /system/df`: the legacy lists (types.DiskUsage of 1.41) and the usage blocks of
1.52 (`ImageUsage`, `ContainerUsage`, `VolumeUsage`, `BuildCacheUsage`), for the parts asked with `type`.
Which version sees which is in versions.py."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from servin import errors
from servin.api.wire import buildcache as wire_buildcache
from servin.api.wire import containers as wire_containers
from servin.api.wire import images as wire_images
from servin.api.wire import versions
from servin.api.wire import volumes as wire_volumes
from servin.core.system import DiskUsage

PARTS = ("container", "image", "volume", "build-cache")  # dockerd's DiskUsageObject values


def parts_of(types: Sequence[str]) -> frozenset[str]:
    """The `type` parameters: none is every part; an unknown one is dockerd's 400."""
    for t in types:
        if t not in PARTS:
            raise errors.InvalidArgument(f"unknown object type: {t}")
    return frozenset(types or PARTS)


def _block(items: list[dict[str, Any]], *, active: int, total_size: int, reclaimable: int,
           verbose: bool) -> dict[str, Any]:
    out = {"ActiveCount": active, "TotalCount": len(items), "Reclaimable": reclaimable, "TotalSize": total_size}
    return {**out, "Items": items} if verbose else out


@versions.answer("DiskUsage")
def disk_usage(du: DiskUsage, *, parts: Collection[str] = PARTS, verbose: bool = False) -> dict[str, Any]:
    """The legacy lists unless `verbose` (a client that reads the usage blocks, 1.52 on), and the blocks."""
    images = [{**wire_images.image_summary(u.image, containers=u.containers, oci=u.oci), "SharedSize": 0}
              for u in du.images]
    containers = [{**wire_containers.summary(u.container, du.read_ns), "SizeRw": u.size_rw,
                   "SizeRootFs": u.size_root_fs} for u in du.containers]
    for item in containers:  # dockerd leaves it out of df at every version (moby daemon/disk_usage.go)
        item.pop("ImageManifestDescriptor", None)
    volumes = [wire_volumes.volume(u.volume, size=u.size, ref_count=u.ref_count) for u in du.volumes]
    cache = [wire_buildcache.record(r) for r in du.build_cache]
    out: dict[str, Any] = {}
    if not verbose:
        if "image" in parts:
            out["LayersSize"], out["Images"] = du.layers_size, images
        if "container" in parts:
            out["Containers"] = containers
        if "volume" in parts:
            out["Volumes"] = volumes
        if "build-cache" in parts:
            out["BuildCache"], out["BuilderSize"] = cache, sum(r.size for r in du.build_cache)
    if "image" in parts:
        idle = sum(u.image.size for u in du.images if not u.containers)
        out["ImageUsage"] = _block(images, active=sum(1 for u in du.images if u.containers),
                                   total_size=du.layers_size, reclaimable=min(idle, du.layers_size), verbose=verbose)
    if "container" in parts:
        out["ContainerUsage"] = _block(
            containers, active=sum(1 for u in du.containers if u.container.state.running),
            total_size=sum(u.size_rw for u in du.containers),
            reclaimable=sum(u.size_rw for u in du.containers if not u.container.state.running), verbose=verbose)
    if "volume" in parts:
        sized = [u for u in du.volumes if u.size >= 0]
        out["VolumeUsage"] = _block(volumes, active=sum(1 for u in du.volumes if u.ref_count),
                                    total_size=sum(u.size for u in sized),
                                    reclaimable=sum(u.size for u in sized if not u.ref_count), verbose=verbose)
    if "build-cache" in parts:
        out["BuildCacheUsage"] = _block(cache, active=sum(1 for r in du.build_cache if r.in_use),
                                        total_size=sum(r.size for r in du.build_cache),
                                        reclaimable=sum(r.size for r in du.build_cache if not r.in_use),
                                        verbose=verbose)
    return out
