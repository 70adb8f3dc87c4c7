"""Docker JSON for `GET /system/df` (types.DiskUsage)."""

from __future__ import annotations

from typing import Any

from servin.api.wire import buildcache as wire_buildcache
from servin.api.wire import containers as wire_containers
from servin.api.wire import images as wire_images
from servin.api.wire import volumes as wire_volumes
from servin.core.system import DiskUsage


def disk_usage(du: DiskUsage) -> dict[str, Any]:
    return {
        "LayersSize": du.layers_size,
        "Images": [{**wire_images.image_summary(u.image, containers=u.containers), "SharedSize": 0}
                   for u in du.images],
        "Containers": [{**wire_containers.summary(u.container, du.read_ns), "SizeRw": u.size_rw,
                        "SizeRootFs": u.size_root_fs} for u in du.containers],
        "Volumes": [wire_volumes.volume(u.volume, size=u.size, ref_count=u.ref_count) for u in du.volumes],
        "BuildCache": [wire_buildcache.record(r) for r in du.build_cache],
        "BuilderSize": sum(r.size for r in du.build_cache),
    }
