"""OCI `linux.resources` -> the kernel's cgroup limits (what create applies and update changes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from servin.kernel.cgroups import Resources


def resources_from_oci(linux: Mapping[str, Any]) -> Resources:
    res = linux.get("resources") or {}
    mem = res.get("memory") or {}
    cpu = res.get("cpu") or {}
    pids = res.get("pids") or {}
    blkio = res.get("blockIO") or {}

    def per_device(key: str, value: str) -> tuple[tuple[int, int, int], ...]:
        return tuple((int(d["major"]), int(d["minor"]), int(d[value])) for d in blkio.get(key) or ())

    return Resources(
        memory=mem.get("limit"),
        memory_swap=mem.get("swap"),
        cpu_shares=cpu.get("shares"),
        cpu_quota=cpu.get("quota"),
        cpu_period=cpu.get("period"),
        cpuset_cpus=cpu.get("cpus") or None,
        cpuset_mems=cpu.get("mems") or None,
        pids_limit=pids.get("limit"),
        device_rules=_device_rules(res.get("devices")),
        oom_kill_disable=bool(mem.get("disableOOMKiller")),
        memory_reservation=mem.get("reservation"),
        memory_swappiness=mem.get("swappiness"),
        cpu_rt_period=cpu.get("realtimePeriod"),
        cpu_rt_runtime=cpu.get("realtimeRuntime"),
        blkio_weight=blkio.get("weight"),
        blkio_weight_device=per_device("weightDevice", "weight"),
        blkio_read_bps=per_device("throttleReadBpsDevice", "rate"),
        blkio_write_bps=per_device("throttleWriteBpsDevice", "rate"),
        blkio_read_iops=per_device("throttleReadIOPSDevice", "rate"),
        blkio_write_iops=per_device("throttleWriteIOPSDevice", "rate"),
    )


def _device_rules(devices: Any) -> tuple[tuple[bool, str], ...] | None:
    """OCI linux.resources.devices → ordered v1 rules like (False, "a *:* rwm")."""
    if not devices:
        return None
    rules = []
    for d in devices:
        kind = d.get("type") or "a"
        major = "*" if d.get("major") in (None, -1) else str(d["major"])
        minor = "*" if d.get("minor") in (None, -1) else str(d["minor"])
        rules.append((bool(d.get("allow")), f"{kind} {major}:{minor} {d.get('access') or 'rwm'}"))
    return tuple(rules)
