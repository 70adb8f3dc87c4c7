"""How a request body of an older API version reads, where a rule of versions.py needs more than
dropping a field: the changes dockerd's router makes below a version (daemon/server/router/container/
container_routes.go, postContainersCreate), as pure functions over the decoded body. Only base modules
are imported here: versions.py names these functions in its tables."""

from __future__ import annotations

from typing import Any

from servin import errors

# HostConfig key set below 1.44 (not a Docker field: dockerd passes it beside the body as
# DefaultReadOnlyNonRecursive): the read-only Binds stay non-recursively read-only, as they were then
BINDS_READ_ONLY_NON_RECURSIVE = "servin.BindsReadOnlyNonRecursive"


def mounts_before_1_42(mounts: Any) -> Any:
    """Below 1.42: BindOptions.CreateMountpoint did not exist, and options of another mount type
    were not refused but ignored."""
    for m in mounts if isinstance(mounts, list) else ():
        if not isinstance(m, dict):
            continue
        if m.get("VolumeOptions") is not None and m.get("Type") != "volume":
            m.pop("VolumeOptions")
        if m.get("TmpfsOptions") is not None and m.get("Type") != "tmpfs":
            m.pop("TmpfsOptions")
        if isinstance(m.get("BindOptions"), dict):
            m["BindOptions"].pop("CreateMountpoint", None)
    return mounts


def no_console_size(_: Any) -> list[int]:
    """Below 1.42 dockerd on Linux ignored HostConfig.ConsoleSize."""
    return [0, 0]


def read_only_non_recursive(hc: Any) -> Any:
    """Below 1.44 every read-only bind is read-only non-recursively (submounts stay writable)."""
    if not isinstance(hc, dict):
        return hc
    for m in hc.get("Mounts") or ():
        if isinstance(m, dict) and m.get("Type") == "bind" and m.get("ReadOnly"):
            m["BindOptions"] = {**(m.get("BindOptions") or {}), "ReadOnlyNonRecursive": True}
    hc[BINDS_READ_ONLY_NON_RECURSIVE] = True
    return hc


def no_image_mounts(mounts: Any) -> Any:
    """Mounts of type image need 1.48 (dockerd's words)."""
    if isinstance(mounts, list) and any(isinstance(m, dict) and m.get("Type") == "image" for m in mounts):
        raise errors.InvalidArgument('Mount type "Image" needs API v1.48 or newer')
    return mounts
