"""The resource fields of a create or update body beyond the basic ones (memory reservation and
swappiness, kernel memory, real-time CPU, blkio), and the fields Servin does not implement: a
value other than the default is refused, with dockerd's words where dockerd refuses it too."""

from __future__ import annotations

from typing import Any

from servin import errors
from servin.api.wire.schemas import RESOURCES
from servin.core.model import BlkioDevice, HostConfig

# dockerd updates these (container/container_unix.go UpdateContainer) and so does Servin
UPDATABLE = {"Memory", "MemorySwap", "MemoryReservation", "KernelMemory", "CpuShares", "CpuPeriod", "CpuQuota",
             "NanoCpus", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "BlkioWeight",
             "PidsLimit", "RestartPolicy"}
_RESOURCE_FIELDS = {f.json for f in RESOURCES.fields}
# what an update body may carry but docker update cannot change (the swagger's Resources also lists Init)
NOT_UPDATABLE = (_RESOURCE_FIELDS | {"Init"}) - UPDATABLE
_DEVICES = (("BlkioWeightDevice", "blkio_weight_device", "Weight"),
            ("BlkioDeviceReadBps", "blkio_device_read_bps", "Rate"),
            ("BlkioDeviceWriteBps", "blkio_device_write_bps", "Rate"),
            ("BlkioDeviceReadIOps", "blkio_device_read_iops", "Rate"),
            ("BlkioDeviceWriteIOps", "blkio_device_write_iops", "Rate"))


def host_config_fields(hc: dict[str, Any]) -> dict[str, Any]:
    """HostConfig fields of a create body (type-checked by its schema) for model.HostConfig."""
    refuse_unsupported(hc)
    fields: dict[str, Any] = {
        "memory_reservation": hc.get("MemoryReservation") or 0,
        "memory_swappiness": swappiness(hc.get("MemorySwappiness")),
        "kernel_memory": hc.get("KernelMemory") or 0,
        "cpu_percent": hc.get("CpuPercent") or 0,
        "cpu_rt_period": hc.get("CpuRealtimePeriod") or 0,
        "cpu_rt_runtime": hc.get("CpuRealtimeRuntime") or 0,
        "blkio_weight": hc.get("BlkioWeight") or 0,
    }
    for key, attr, value in _DEVICES:
        fields[attr] = tuple(BlkioDevice(path=str(d.get("Path") or ""), value=int(d.get(value) or 0))
                             for d in hc.get(key) or () if d)
    return fields


def update_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields above that `docker update` changes (those given non-zero); any other resource
    field with a value is refused: dockerd ignores them, Servin says so."""
    for key in NOT_UPDATABLE:  # (unknown fields are ignored, as Go's decoder does)
        if body.get(key) not in (None, 0, "", [], {}, False):
            raise errors.InvalidArgument(f"{key} cannot be changed by docker update; create a new container")
    changes = {}
    for key, attr in (("MemoryReservation", "memory_reservation"), ("KernelMemory", "kernel_memory"),
                      ("CpuRealtimePeriod", "cpu_rt_period"), ("CpuRealtimeRuntime", "cpu_rt_runtime"),
                      ("BlkioWeight", "blkio_weight")):
        if body.get(key):
            changes[attr] = body[key]
    return changes


def swappiness(value: int | None) -> int | None:
    """MemorySwappiness: null or -1 leave the kernel's (moby's fixMemorySwappiness)."""
    return None if value is None or value == -1 else value


def refuse_unsupported(hc: dict[str, Any]) -> None:
    """Create-time fields Servin does not implement, non-default only (the CLI sends zeros)."""
    # validateQoS: a 500 in dockerd 20.10, a 400 in current moby (create wraps it as InvalidParameter)
    if hc.get("IOMaximumBandwidth"):
        raise errors.InvalidArgument("Invalid QoS settings: linux does not support configuration of maximum bandwidth")
    if hc.get("IOMaximumIOps"):
        raise errors.InvalidArgument("Invalid QoS settings: linux does not support configuration of maximum IOPs")
    runtime = hc.get("Runtime") or ""
    if runtime not in ("", "runc"):  # daemon/daemon_unix.go verifyPlatformContainerSettings
        raise errors.InvalidArgument(f"Unknown runtime specified {runtime}")
    for request in hc.get("DeviceRequests") or ():
        # dockerd (daemon/errors.go incompatibleDeviceRequest) says this at start; Servin at create
        caps = "[" + " ".join("[" + " ".join(c) + "]" for c in request.get("Capabilities") or ()) + "]"
        raise errors.InvalidArgument(f'could not select device driver "{request.get("Driver") or ""}" with '
                                     f"capabilities: {caps}: Servin has no device drivers (no GPU support yet)")
    storage = {str(k).lower(): v for k, v in (hc.get("StorageOpt") or {}).items()}
    if storage:  # daemon/graphdriver/overlay2: no xfs project quotas under Servin's layers (a 500 in dockerd)
        if "size" in storage:
            raise errors.SystemError_("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")
        raise errors.SystemError_(f"Unknown option {sorted(storage)[0]}")
    for key, what in (("CgroupParent", "a cgroup parent per container (the daemon's --cgroup-parent applies)"),
                      ("KernelMemoryTCP", "a kernel TCP memory limit"),
                      ("CpuCount", "a CPU count (Windows only; use --cpus)")):
        if hc.get(key):
            raise errors.InvalidArgument(f"{key} is not supported by Servin: {what}")


def inspect_fields(hc: HostConfig) -> dict[str, Any]:
    """These fields as `docker inspect` shows them under HostConfig."""

    def devices(entries: tuple[BlkioDevice, ...], value: str) -> list[dict[str, Any]]:
        return [{"Path": d.path, value: d.value} for d in entries]

    return {
        "BlkioWeight": hc.blkio_weight,
        "BlkioWeightDevice": devices(hc.blkio_weight_device, "Weight"),
        "BlkioDeviceReadBps": devices(hc.blkio_device_read_bps, "Rate") or None,
        "BlkioDeviceWriteBps": devices(hc.blkio_device_write_bps, "Rate") or None,
        "BlkioDeviceReadIOps": devices(hc.blkio_device_read_iops, "Rate") or None,
        "BlkioDeviceWriteIOps": devices(hc.blkio_device_write_iops, "Rate") or None,
        "CpuRealtimePeriod": hc.cpu_rt_period,
        "CpuRealtimeRuntime": hc.cpu_rt_runtime,
        "KernelMemory": hc.kernel_memory,
        "MemoryReservation": hc.memory_reservation,
        "MemorySwappiness": hc.memory_swappiness,
        "CpuPercent": hc.cpu_percent,
    }
