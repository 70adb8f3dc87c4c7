"""The warnings a container create answers from a version on (dockerd's handleVolumeDriverBC, 1.48, and
handlePortBindingsBC, 1.52): what the request asks that a newer version reads otherwise."""

from __future__ import annotations

from typing import Any

from servin.api.wire import versions

VOLUME_DRIVER = ("WARNING: the container-wide volume-driver configuration is ignored for volumes specified via "
                 "'mount'. Use '--mount type=volume,volume-driver=...' instead")


def _get(obj: Any, key: str) -> Any:
    """A field of a JSON object matched as Go does: exactly, else in any case."""
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    return next((v for k, v in obj.items() if k.lower() == key.lower()), None)


def of(body: Any) -> list[str]:
    hc = _get(body, "HostConfig")
    out = []
    if versions.value("volume-driver warning") and _get(hc, "VolumeDriver"):
        for m in _get(hc, "Mounts") or []:
            driver = _get(_get(_get(m, "VolumeOptions"), "DriverConfig"), "Name")
            if _get(m, "Type") == "volume" and not driver:
                out.append(VOLUME_DRIVER)
                break
    bindings = _get(hc, "PortBindings")
    empty = [p if "/" in p else f"{p}/tcp" for p, b in bindings.items() if not b] if isinstance(bindings, dict) else []
    if empty and versions.value("empty port-bindings warning"):
        out.append(f"Following container port(s) have an empty list of port-bindings: {', '.join(empty)}. "
                   "Such bindings will be discarded in a future version.")
    return out
