"""cgroups, what both versions share: the limits, features and readings, the manager interface,
the one cgroupfs write, and small file helpers."""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from servin.errors import InvalidArgument


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """Limits for one container's cgroup. None means "no limit / leave as is"."""

    memory: int | None = None  # bytes; <=0 means unlimited
    memory_swap: int | None = None  # memory+swap (Docker's MemorySwap); -1 = unlimited, 0 = unset
    cpu_shares: int | None = None  # v1 shares (2..262144); converted to cpu.weight on v2
    cpu_quota: int | None = None  # microseconds per period, <=0 = unlimited (NanoCpus: the caller)
    cpu_period: int | None = None  # microseconds
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None  # <=0 means unlimited
    # Device access rules in order, as (allow, "c 1:3 rwm"); None leaves them alone. Enforced on
    # v1 by the devices controller, on v2 by an eBPF program attached to the cgroup (kernel/devfilter).
    device_rules: tuple[tuple[bool, str], ...] | None = None
    oom_kill_disable: bool = False  # v1 only (memory.oom_control); v2 has no such switch
    memory_reservation: int | None = None  # soft limit: v1 memory.soft_limit_in_bytes, v2 memory.low
    memory_swappiness: int | None = None  # 0..100, v1 only (memory.swappiness)
    cpu_rt_period: int | None = None  # µs, v1 only (cpu.rt_period_us)
    cpu_rt_runtime: int | None = None  # µs, v1 only (cpu.rt_runtime_us, granted by the ancestors)
    blkio_weight: int | None = None  # 10..1000: v1 blkio(.bfq).weight, v2 io.bfq.weight or io.weight
    # per device as (major, minor, value): weights, then bytes or operations per second
    blkio_weight_device: tuple[tuple[int, int, int], ...] = ()
    blkio_read_bps: tuple[tuple[int, int, int], ...] = ()
    blkio_write_bps: tuple[tuple[int, int, int], ...] = ()
    blkio_read_iops: tuple[tuple[int, int, int], ...] = ()
    blkio_write_iops: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Features:
    """What this host's cgroups can limit (dockerd's sysinfo), read once from the roots' files."""

    memory: bool = True
    swap: bool = True
    memory_reservation: bool = True
    swappiness: bool = True
    oom_kill_disable: bool = True
    cpu_shares: bool = True
    cpu_cfs: bool = True
    cpu_rt: bool = True
    cpuset: bool = True
    cpus: str = ""  # the CPUs and memory nodes containers may ask for ("0-3")
    mems: str = ""
    pids: bool = True
    blkio_weight: bool = True
    blkio_weight_device: bool = True
    blkio_read_bps: bool = True
    blkio_write_bps: bool = True
    blkio_read_iops: bool = True
    blkio_write_iops: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupStats:
    cpu_usage_ns: int
    memory_usage: int
    memory_limit: int | None  # None when unlimited
    pids_current: int
    oom_kills: int
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    percpu_ns: tuple[int, ...] = ()
    memory_max_usage: int = 0  # v1 only
    memory_detail: dict[str, int] = field(default_factory=dict)  # memory.stat as read
    pids_limit: int | None = None
    throttling: dict[str, int] = field(default_factory=dict)  # nr_periods, nr_throttled, throttled_time
    # block I/O as (major, minor, op, value): bytes and operations; v1 ops "Read", "Write", ... "Total",
    # v2 ops "read" and "write" (io.stat), as runc reports them to dockerd
    io_service_bytes: tuple[tuple[int, int, str, int], ...] = ()
    io_serviced: tuple[tuple[int, int, str, int], ...] = ()


USER_HZ_NS = 1_000_000_000 // 100  # cpuacct.stat counts in USER_HZ ticks


class CgroupManager(Protocol):
    version: int  # 1 or 2
    driver: str  # "cgroupfs"
    features: Features

    def create(self, path: str, resources: Resources) -> list[Path]:
        """Create the cgroup `path` (e.g. "/servin/<id>") in every hierarchy, apply the limits,
        and return the `cgroup.procs` files a process must be written into to join it."""

    def update(self, path: str, resources: Resources) -> None: ...

    def stats(self, path: str) -> CgroupStats: ...

    def oom_killed(self, path: str) -> bool: ...

    def pids(self, path: str) -> list[int]: ...

    def freeze(self, path: str) -> None: ...

    def thaw(self, path: str) -> None: ...

    def destroy(self, path: str) -> None:
        """Kill what is left inside and remove the cgroup from every hierarchy; missing is fine."""

    @property
    def hierarchy_mounts(self) -> Sequence[tuple[str, str]] | None:
        """v1: the hierarchies a container's cgroup filesystem shows, as (directory name, mount
        data), e.g. ("cpu,cpuacct", "cpu,cpuacct"); read once. v2: None (one cgroup2 mount)."""



Writer = Callable[[Path, str], None]

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "blkio", "devices")
# The v1 hierarchies a container joins, as runc: its own cgroup in every one (so /proc/self/cgroup
# and its /sys/fs/cgroup show it), systemd's named one included (so it leaves the daemon's unit).
V1_JOINED = (*V1_CONTROLLERS, "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc", "systemd")
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")
_REFUSED = {errno.EINVAL, errno.ERANGE, errno.EBUSY, errno.EOVERFLOW}
_TIMEOUT_S = 5.0


def write_file(path: Path, value: str) -> None:
    """The one cgroupfs write. A setting the kernel refuses becomes InvalidArgument; the kernel's
    own cgroup.* interface files (subtree_control, procs, kill) keep their OSError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno in _REFUSED and not path.name.startswith("cgroup."):
            raise InvalidArgument(
                f"invalid cgroup setting {path.name}={value!r}: {os.strerror(e.errno or 0)}"
            ) from e
        raise


def cpu_weight(shares: int) -> int:
    """v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000], runc's linear mapping."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight(blkio_weight: int) -> int:
    """v1 blkio weight [10, 1000] → v2 io.weight [1, 10000], linearly (runc's mapping)."""
    return 1 + (min(max(blkio_weight, 10), 1000) - 10) * 9999 // 990


# --- small file helpers -------------------------------------------------------------------------


def _relative(path: str) -> Path:
    """"/servin/<id>" → Path("servin/<id>"); refuses empty and ".." paths."""
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in ("..", ".") for p in parts):
        raise InvalidArgument(f"invalid cgroup path {path!r}")
    return Path(*parts)


def _validate(r: Resources) -> None:
    if r.memory_swap is not None and r.memory_swap > 0:
        if not r.memory or r.memory <= 0:
            raise InvalidArgument(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
            )
        if r.memory_swap < r.memory:
            raise InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )


def _or_max(limit: int) -> str:
    return str(limit) if limit > 0 else "max"


def _or_minus_one(limit: int) -> str:
    return str(limit) if limit > 0 else "-1"


def _read(file: Path) -> str:
    """The file's stripped text, "" when it does not exist."""
    try:
        return file.read_text().strip()
    except FileNotFoundError:
        return ""


def _read_int(file: Path, default: int) -> int:
    text = _read(file)
    return int(text) if text.lstrip("-").isdigit() else default


def _read_keyed(file: Path) -> dict[str, int]:
    """Flat-keyed files: "key value" per line (memory.events, cpu.stat, memory.oom_control)."""
    out: dict[str, int] = {}
    for line in _read(file).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _read_procs(leaf: Path) -> set[int]:
    return {int(x) for x in _read(leaf / "cgroup.procs").split()}


def _kill(pids: Iterable[int]) -> bool:
    """SIGKILL each pid; True if there was any."""
    any_pid = False
    for pid in pids:
        any_pid = True
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return any_pid


def _wait_until(done: Callable[[], bool]) -> bool:
    """Poll `done` with a growing sleep; False after _TIMEOUT_S."""
    deadline, delay = time.monotonic() + _TIMEOUT_S, 0.001
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def _rmdir(leaf: Path) -> None:
    """Remove one cgroup dir (not its parents); a missing dir is fine."""
    try:
        leaf.rmdir()
    except FileNotFoundError:
        pass
    except OSError as e:
        # cgroupfs answers EBUSY, never ENOTEMPTY: this is a plain dir of a fake tree, holding the
        # files our writes created
        if e.errno != errno.ENOTEMPTY:
            raise
        for f in leaf.iterdir():
            if f.is_file():
                f.unlink()
        leaf.rmdir()
