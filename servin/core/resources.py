"""A container's resource settings and restart policy checked as dockerd 20.10 checks them, with
its words: runconfig/hostconfig_unix.go validateResources, daemon/daemon_unix.go
verifyPlatformContainerResources, daemon/container.go validateRestartPolicy.

What the host's cgroups cannot do is discarded with dockerd's warning (returned, for the create or
update response); an invalid value is an error. Pure: the host's features are passed in.
"""

from __future__ import annotations

from dataclasses import replace

from servin import errors
from servin.core.model import BlkioDevice, HostConfig, RestartPolicy
from servin.core.names import go_atoi
from servin.runtime.api import ResourceFeatures as Features

MIN_MEMORY = 6 * 1024 * 1024  # linuxMinMemory


def check(hc: HostConfig, features: Features, *, ncpu: int, update: bool = False) -> tuple[HostConfig, list[str]]:
    """`hc` with what the host cannot do discarded, and the warnings saying so; raises on an
    invalid setting (InvalidArgument: 400; SystemError_: the 500 of dockerd's runconfig checks)."""
    warnings: list[str] = []
    changes: dict[str, object] = {}

    def discard(warning: str, **fields: object) -> None:
        warnings.append(warning)
        changes.update(fields)

    def value(name: str):  # noqa: ANN202 - the setting as adjusted so far
        return changes.get(name, getattr(hc, name))

    # dockerd 20.10 answered these with a 500; current moby wraps every verifyContainerSettings error
    # as InvalidParameter (daemon/create.go, daemon/update.go): a 400, input never makes a 5xx
    if (hc.cpu_rt_period or hc.cpu_rt_runtime) and not features.cpu_rt:
        raise errors.InvalidArgument("Your kernel does not support CPU real-time scheduler")
    if hc.cpu_rt_period and hc.cpu_rt_runtime and hc.cpu_rt_runtime > hc.cpu_rt_period:
        raise errors.InvalidArgument("cpu real-time runtime cannot be higher than cpu real-time period")

    # memory
    if hc.memory and hc.memory < MIN_MEMORY:
        raise errors.InvalidArgument("Minimum memory limit allowed is 6MB")
    if hc.memory > 0 and not features.memory:
        discard("Your kernel does not support memory limit capabilities or the cgroup is not mounted. "
                "Limitation discarded.", memory=0, memory_swap=-1)
    memory, swap = value("memory"), value("memory_swap")
    if memory > 0 and swap != -1 and not features.swap:
        discard("Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
                "Memory limited without swap.", memory_swap=-1)
        swap = -1
    if memory > 0 and swap > 0 and swap < memory:
        raise errors.InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and swap > 0 and not update:
        raise errors.InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    # an invalid value is refused before a missing feature discards it (dockerd: the other way round)
    swappiness = hc.memory_swappiness
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise errors.InvalidArgument(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if swappiness is not None and not features.swappiness:
        discard("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
                "Memory swappiness discarded.", memory_swappiness=None)
    if hc.memory_reservation > 0 and not features.memory_reservation:
        discard("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. "
                "Limitation discarded.", memory_reservation=0)
    reservation = value("memory_reservation")
    if 0 < reservation < MIN_MEMORY:
        raise errors.InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise errors.InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage")
    if hc.kernel_memory > 0:  # Servin never sets kmem.limit_in_bytes (deprecated since Linux 5.4)
        warnings.append("Specifying a kernel memory limit is deprecated and will be removed in a future release.")
        discard("Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. "
                "Limitation discarded.", kernel_memory=0)
    if hc.oom_kill_disable and not features.oom_kill_disable:
        discard("Your kernel does not support OomKillDisable. OomKillDisable discarded.", oom_kill_disable=False)
    if value("oom_kill_disable") and value("memory") == 0:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, this can result "
                        "in the system running out of resources.")
    if hc.pids_limit is not None and hc.pids_limit > 0 and not features.pids:
        discard("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. "
                "PIDs limit discarded.", pids_limit=None)

    # cpu
    if hc.nano_cpus > 0 and hc.cpu_period > 0:
        raise errors.InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if hc.nano_cpus > 0 and hc.cpu_quota > 0:
        raise errors.InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if hc.nano_cpus > 0 and not features.cpu_cfs:
        raise errors.InvalidArgument("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler "
                                     "or the cgroup is not mounted")
    # no lower bound but zero, as dockerd: a quota under the kernel's 1 ms per period fails at start
    if hc.nano_cpus and not 0 < hc.nano_cpus <= ncpu * 1_000_000_000:
        raise errors.InvalidArgument(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if hc.cpu_shares > 0 and not features.cpu_shares:
        discard("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.",
                cpu_shares=0)
    if (hc.cpu_period or hc.cpu_quota) and not features.cpu_cfs:
        discard("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.",
                cpu_period=0, cpu_quota=0)
    if value("cpu_period") and not 1000 <= value("cpu_period") <= 1_000_000:
        raise errors.InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < value("cpu_quota") < 1000:
        raise errors.InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if hc.cpu_percent > 0:
        discard("linux does not support CPU percent. Percent discarded.", cpu_percent=0)

    # cpuset
    if (hc.cpuset_cpus or hc.cpuset_mems) and not features.cpuset:
        discard("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
                cpuset_cpus="", cpuset_mems="")
    for name, what, noun, available in (("cpuset_cpus", "cpus", "CPUs", features.cpus),
                                        ("cpuset_mems", "mems", "memory nodes", features.mems)):
        asked = value(name)
        if not _list_available(asked, available, what):
            raise errors.InvalidArgument(
                f"Requested {noun} are not available - requested {asked}, available: {available}")

    # blkio (range first, as for swappiness)
    if hc.blkio_weight and not 10 <= hc.blkio_weight <= 1000:
        raise errors.InvalidArgument("Range of blkio weight is from 10 to 1000")
    if hc.blkio_weight and not features.blkio_weight:
        discard("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
                blkio_weight=0)
    for d in hc.blkio_weight_device:  # the CLI's ValidateWeightDevice, for API clients
        if not 10 <= d.value <= 1000:
            raise errors.InvalidArgument(f"invalid weight for device: {d.path}:{d.value}")
    for name, supported, warning in (
        ("blkio_weight_device", features.blkio_weight_device,
         "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."),
        ("blkio_device_read_bps", features.blkio_read_bps,
         "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. "
         "Block I/O BPS read limit discarded."),
        ("blkio_device_write_bps", features.blkio_write_bps,
         "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. "
         "Block I/O BPS write limit discarded."),
        ("blkio_device_read_iops", features.blkio_read_iops,
         "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. "
         "Block I/O IOPS read limit discarded."),
        ("blkio_device_write_iops", features.blkio_write_iops,
         "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. "
         "Block I/O IOPS write limit discarded."),
    ):
        if getattr(hc, name) and not supported:
            discard(warning, **{name: ()})
    return (replace(hc, **changes) if changes else hc), warnings  # type: ignore[arg-type]


def assumed_features(cgroup_version: int, ncpu: int) -> Features:
    """What an engine without a cgroup manager (tests) assumes: a host with every v1 feature, or v2's."""
    if cgroup_version == 2:
        return Features(swappiness=False, oom_kill_disable=False, cpu_rt=False, cpus=f"0-{ncpu - 1}", mems="0")
    return Features(cpus=f"0-{ncpu - 1}", mems="0")


def block_device_paths(hc: HostConfig) -> list[str]:
    """The device paths of the blkio settings (for their numbers)."""
    entries: tuple[BlkioDevice, ...] = (*hc.blkio_weight_device, *hc.blkio_device_read_bps,
                                        *hc.blkio_device_write_bps, *hc.blkio_device_read_iops,
                                        *hc.blkio_device_write_iops)
    return list(dict.fromkeys(d.path for d in entries))


def check_restart_policy(policy: RestartPolicy) -> None:
    """daemon/container.go validateRestartPolicy (moby >= 25 words these differently)."""
    if policy.name in ("always", "unless-stopped", "no"):
        if policy.maximum_retry_count != 0:
            raise errors.InvalidArgument(
                f"maximum retry count cannot be used with restart policy '{policy.name}'")
    elif policy.name == "on-failure":
        if policy.maximum_retry_count < 0:
            raise errors.InvalidArgument("maximum retry count cannot be negative")
    elif policy.name != "":
        raise errors.InvalidArgument(f"invalid restart policy '{policy.name}'")


def parse_list(text: str, maximum: int = 0) -> set[int]:
    """A cpuset list ("0-2,7"), as moby's parsers.ParseUintList (with its errors)."""
    if text == "":
        return set()
    out: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.partition("-")
        try:
            first = _atoi(low)
            last = _atoi(high) if dash else first
        except ValueError:
            raise ValueError(f"invalid format: {text}") from None
        if last < first:
            raise ValueError(f"invalid format: {text}")
        if maximum and last > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        out.update(range(first, last + 1))
    return out


def _atoi(s: str) -> int:
    """Go's strconv.Atoi, with Go's failure as a ValueError."""
    v = go_atoi(s)
    if v is None:
        raise ValueError(s)
    return v


def _list_available(asked: str, available: str, what: str) -> bool:
    """moby's isCpusetListAvailable: numbers up to 8192 (or the highest available) may be asked."""
    try:
        have = parse_list(available)
    except ValueError:
        have = set()
    try:
        want = parse_list(asked, max([8192, *have]))
    except ValueError as e:
        raise errors.InvalidArgument(f"Invalid value {asked} for cpuset {what}: {e}") from None
    return want <= have
