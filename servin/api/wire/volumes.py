"""Docker JSON for volumes."""

from __future__ import annotations

from typing import Any

from servin.core.volumes import Volume


def volume(v: Volume, *, size: int | None = None, ref_count: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": dict(v.labels),
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": dict(v.options),
        "Scope": "local",
    }
    if size is not None:
        out["UsageData"] = {"Size": size, "RefCount": ref_count or 0}
    return out
