"""Docker JSON for volumes."""

from __future__ import annotations

from typing import Any

from servin.api.wire import request_body
from servin.api.wire.schemas import VOLUME_CREATE_OPTIONS
from servin.core.volumes import Volume, VolumePruneReport, VolumeSpec


@request_body(VOLUME_CREATE_OPTIONS)
def parse_create(body: Any) -> VolumeSpec:
    """POST /volumes/create (volume.CreateOptions): an empty name is a generated one, an empty
    driver the default (local)."""
    body = body or {}
    return VolumeSpec(name=body.get("Name") or None, driver=body.get("Driver") or "local",
                      labels=dict(body.get("Labels") or {}), options=dict(body.get("DriverOpts") or {}))


def prune_report(r: VolumePruneReport) -> dict[str, Any]:
    return {"VolumesDeleted": list(r.deleted), "SpaceReclaimed": r.reclaimed}


def volume(v: Volume, *, size: int | None = None, ref_count: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": dict(v.labels) or None,  # null when none were given, as dockerd's nil maps
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": dict(v.options) or None,
        "Scope": "local",
    }
    if size is not None:
        out["UsageData"] = {"Size": size, "RefCount": ref_count or 0}
    return out
