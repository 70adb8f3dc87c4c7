"""cgroups: one manager interface, a v1 and a v2 implementation, chosen at start.

`detect(root)` only reads files, so both implementations run on fake trees in unit tests.
Every write goes through `write_file` (or the `writer` a manager is built with), which turns a
value the kernel refuses into `InvalidArgument`. A fake tree is plain directories: writes create
the files, and reads of files the kernel would have created fall back to defaults.
"""

from __future__ import annotations

import errno
import math
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from servin.errors import InvalidArgument, Unavailable
from servin.kernel import devfilter


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


Writer = Callable[[Path, str], None]

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "blkio", "devices")
# The v1 hierarchies a container joins, as runc: its own cgroup in every one (so /proc/self/cgroup
# and its /sys/fs/cgroup show it), systemd's named one included (so it leaves the daemon's unit).
V1_JOINED = (*V1_CONTROLLERS, "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc", "systemd")
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")
_REFUSED = {errno.EINVAL, errno.ERANGE, errno.EBUSY, errno.EOVERFLOW}
_UNLIMITED = 1 << 62  # v1 reports "no limit" as PAGE_COUNTER_MAX pages (~2^63)
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


def detect(root: Path = Path("/sys/fs/cgroup"), *, writer: Writer = write_file) -> CgroupManager:
    """v2 when `root` is a pure cgroup2 mount; v1 otherwise (a hybrid host counts as v1)."""
    if (root / "cgroup.controllers").exists():
        return CgroupV2(root, writer=writer)
    return CgroupV1(root, writer=writer)


def cpu_weight(shares: int) -> int:
    """v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000], runc's linear mapping."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight(blkio_weight: int) -> int:
    """v1 blkio weight [10, 1000] → v2 io.weight [1, 10000], linearly (runc's mapping)."""
    return 1 + (min(max(blkio_weight, 10), 1000) - 10) * 9999 // 990


class CgroupV1:
    version: int = 1
    driver: str = "cgroupfs"

    def __init__(self, root: Path, *, writer: Writer = write_file) -> None:
        self.root = root
        self._write = writer
        # controller → its hierarchy's mount dir ("cpu,cpuacct" and its symlinks: one dir)
        self.hierarchies: dict[str, Path] = {}
        joined: set[Path] = set()
        entries = sorted(root.iterdir()) if root.is_dir() else []
        for entry in entries:
            if entry.is_dir():
                names = entry.name.split(",")
                for name in names:
                    if name in V1_CONTROLLERS:
                        self.hierarchies.setdefault(name, entry.resolve())
                if any(name in V1_JOINED for name in names):
                    joined.add(entry.resolve())
        self.joined = sorted(joined)
        self.features = self._probe()

    def _probe(self) -> Features:
        mem, cpu, cpuset, blkio = (self.hierarchies.get(c) for c in ("memory", "cpu", "cpuset", "blkio"))

        def has(mount: Path | None, *names: str) -> bool:
            return mount is not None and any((mount / n).exists() for n in names)

        return Features(
            memory=mem is not None, swap=has(mem, "memory.memsw.limit_in_bytes"),
            memory_reservation=has(mem, "memory.soft_limit_in_bytes"), swappiness=has(mem, "memory.swappiness"),
            oom_kill_disable=has(mem, "memory.oom_control"), cpu_shares=has(cpu, "cpu.shares"),
            cpu_cfs=has(cpu, "cpu.cfs_quota_us"), cpu_rt=has(cpu, "cpu.rt_period_us") and has(cpu, "cpu.rt_runtime_us"),
            cpuset=cpuset is not None, cpus=_read(cpuset / "cpuset.cpus") if cpuset else "",
            mems=_read(cpuset / "cpuset.mems") if cpuset else "", pids="pids" in self.hierarchies,
            blkio_weight=has(blkio, "blkio.weight", "blkio.bfq.weight"),
            blkio_weight_device=has(blkio, "blkio.weight_device", "blkio.bfq.weight_device"),
            blkio_read_bps=has(blkio, "blkio.throttle.read_bps_device"),
            blkio_write_bps=has(blkio, "blkio.throttle.write_bps_device"),
            blkio_read_iops=has(blkio, "blkio.throttle.read_iops_device"),
            blkio_write_iops=has(blkio, "blkio.throttle.write_iops_device"),
        )  # fmt: skip

    def _leaves(self, path: str) -> list[Path]:
        """The container's dir in every hierarchy it joins."""
        rel = _relative(path)
        return [mount / rel for mount in self.joined]

    def _leaf(self, controller: str, path: str) -> Path | None:
        mount = self.hierarchies.get(controller)
        return mount / _relative(path) if mount else None

    def create(self, path: str, resources: Resources) -> list[Path]:
        rel = _relative(path)
        for leaf in self._leaves(path):
            leaf.mkdir(parents=True, exist_ok=True)
        if cpuset := self.hierarchies.get("cpuset"):
            # a new cpuset cgroup has empty cpus/mems and nothing can join it: copy the parent's
            level = cpuset
            for part in rel.parts:
                parent, level = level, level / part
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not _read(level / name):
                        self._write(level / name, _read(parent / name))
        try:
            self.update(path, resources)
        except BaseException:
            self.destroy(path)
            raise
        return [leaf / "cgroup.procs" for leaf in self._leaves(path)]

    def update(self, path: str, r: Resources) -> None:
        _validate(r)
        if mem := self._leaf("memory", path):
            limit = None if r.memory is None else str(r.memory) if r.memory > 0 else "-1"
            swap = r.memory_swap or None
            if r.memory is not None and r.memory <= 0 and swap is None:
                swap = -1  # memory unlimited needs memsw unlimited too (memsw >= memory)
            swap_value = None if swap is None else str(swap) if swap > 0 else "-1"
            # keep memsw >= memory after each write: raise memsw first when it grows past the limit
            current = _read_int(mem / "memory.limit_in_bytes", 0)
            swap_first = swap is not None and (swap < 0 or current <= swap)
            if swap_value is not None and swap_first:
                self._write_if_supported(mem / "memory.memsw.limit_in_bytes", swap_value)
            if limit is not None:
                self._write(mem / "memory.limit_in_bytes", limit)
            if swap_value is not None and not swap_first:
                self._write_if_supported(mem / "memory.memsw.limit_in_bytes", swap_value)
            if r.oom_kill_disable:
                self._write(mem / "memory.oom_control", "1")
            if r.memory_reservation is not None:
                self._write(mem / "memory.soft_limit_in_bytes", _or_minus_one(r.memory_reservation))
            if r.memory_swappiness is not None:
                self._write(mem / "memory.swappiness", str(r.memory_swappiness))
        if cpu := self._leaf("cpu", path):
            if r.cpu_shares:
                self._write(cpu / "cpu.shares", str(r.cpu_shares))
            quota = None if r.cpu_quota is None else str(r.cpu_quota) if r.cpu_quota > 0 else "-1"
            if r.cpu_period:
                try:
                    self._write(cpu / "cpu.cfs_period_us", str(r.cpu_period))
                except InvalidArgument:
                    if quota is None:
                        raise
                    # the old quota does not fit the new period: set the quota first
                    self._write(cpu / "cpu.cfs_quota_us", quota)
                    self._write(cpu / "cpu.cfs_period_us", str(r.cpu_period))
            if quota is not None:
                self._write(cpu / "cpu.cfs_quota_us", quota)
            if r.cpu_rt_runtime:
                period = r.cpu_rt_period or _read_int(cpu / "cpu.rt_period_us", 1_000_000)
                self._raise_rt_budget(path, r.cpu_rt_runtime, period)
            self._write_both(cpu / "cpu.rt_period_us", r.cpu_rt_period, cpu / "cpu.rt_runtime_us", r.cpu_rt_runtime)
        if cpuset := self._leaf("cpuset", path):
            if r.cpuset_cpus is not None:
                self._write(cpuset / "cpuset.cpus", r.cpuset_cpus)
            if r.cpuset_mems is not None:
                self._write(cpuset / "cpuset.mems", r.cpuset_mems)
        if (pids := self._leaf("pids", path)) and r.pids_limit is not None:
            self._write(pids / "pids.max", _or_max(r.pids_limit))
        if (devices := self._leaf("devices", path)) and r.device_rules is not None:
            for allow, rule in r.device_rules:
                self._write(devices / ("devices.allow" if allow else "devices.deny"), rule)
        if blkio := self._leaf("blkio", path):
            # BFQ's files where the kernel has them, else CFQ's (runc's choice)
            prefix = "blkio.bfq." if (blkio / "blkio.bfq.weight").exists() else "blkio."
            if r.blkio_weight:
                self._write(blkio / f"{prefix}weight", str(r.blkio_weight))
            for major, minor, weight in r.blkio_weight_device:
                self._write(blkio / f"{prefix}weight_device", f"{major}:{minor} {weight}")
            for name, devices_ in (("read_bps", r.blkio_read_bps), ("write_bps", r.blkio_write_bps),
                                   ("read_iops", r.blkio_read_iops), ("write_iops", r.blkio_write_iops)):
                for major, minor, rate in devices_:
                    self._write(blkio / f"blkio.throttle.{name}_device", f"{major}:{minor} {rate}")
        elif _wants_blkio(r):
            raise Unavailable("the blkio cgroup controller is not mounted")

    def _write_both(self, first: Path, a: int | None, second: Path, b: int | None) -> None:
        """Two settings the kernel checks against each other (rt period, then runtime): when the
        first does not fit the current second, the second goes first."""
        try:
            if a:
                self._write(first, str(a))
        except InvalidArgument:
            if not b:
                raise
            self._write(second, str(b))
            self._write(first, str(a))
            return
        if b:
            self._write(second, str(b))

    def _raise_rt_budget(self, path: str, runtime: int, period: int) -> None:
        """Real-time runtime must be granted by every ancestor (each has none by default): raise
        theirs top-down to what their children then hold, as dockerd does for its --cpu-rt-runtime.
        Never lowered; the hierarchy's root is the kernel's."""
        parts = _relative(path).parts
        cpu = self.hierarchies["cpu"]
        share, raises = Fraction(runtime, period), []
        for depth in range(len(parts) - 1, 0, -1):
            level, child = cpu.joinpath(*parts[:depth]), parts[depth]
            siblings = sum((_rt_share(d) for d in level.iterdir() if d.is_dir() and d.name != child), Fraction(0))
            share = max(share + siblings, _rt_share(level))
            raises.append((level, share))
        for level, share in reversed(raises):
            need = math.ceil(share * _read_int(level / "cpu.rt_period_us", 1_000_000))
            if 0 <= _read_int(level / "cpu.rt_runtime_us", 0) < need:
                self._write(level / "cpu.rt_runtime_us", str(need))

    def _write_if_supported(self, file: Path, value: str) -> None:
        """For files that exist only with a kernel feature (memsw: swap accounting)."""
        try:
            self._write(file, value)
        except OSError:
            if file.exists():
                raise

    def stats(self, path: str) -> CgroupStats:
        acct, mem, pids, cpu, blkio = (self._leaf(c, path) for c in ("cpuacct", "memory", "pids", "cpu", "blkio"))
        limit = _read_int(mem / "memory.limit_in_bytes", 0) if mem else 0
        ticks = _read_keyed(acct / "cpuacct.stat") if acct else {}
        pids_max = _read(pids / "pids.max") if pids else ""
        return CgroupStats(
            cpu_usage_ns=_read_int(acct / "cpuacct.usage", 0) if acct else 0,
            memory_usage=_read_int(mem / "memory.usage_in_bytes", 0) if mem else 0,
            memory_limit=limit if 0 < limit < _UNLIMITED else None,
            pids_current=_read_int(pids / "pids.current", 0) if pids else 0,
            oom_kills=self._oom_kills(path),
            cpu_user_ns=ticks.get("user", 0) * USER_HZ_NS,
            cpu_system_ns=ticks.get("system", 0) * USER_HZ_NS,
            percpu_ns=tuple(int(x) for x in _read(acct / "cpuacct.usage_percpu").split()) if acct else (),
            memory_max_usage=_read_int(mem / "memory.max_usage_in_bytes", 0) if mem else 0,
            memory_detail=_read_keyed(mem / "memory.stat") if mem else {},
            pids_limit=int(pids_max) if pids_max.isdigit() else None,
            throttling=_read_keyed(cpu / "cpu.stat") if cpu else {},
            io_service_bytes=_blkio_entries(blkio, "io_service_bytes_recursive") if blkio else (),
            io_serviced=_blkio_entries(blkio, "io_serviced_recursive") if blkio else (),
        )

    def _oom_kills(self, path: str) -> int:
        mem = self._leaf("memory", path)
        return _read_keyed(mem / "memory.oom_control").get("oom_kill", 0) if mem else 0

    def oom_killed(self, path: str) -> bool:
        return self._oom_kills(path) > 0

    def pids(self, path: str) -> list[int]:
        return sorted({pid for leaf in self._leaves(path) for pid in _read_procs(leaf)})

    def freeze(self, path: str) -> None:
        self._set_freezer(path, "FROZEN")

    def thaw(self, path: str) -> None:
        self._set_freezer(path, "THAWED")

    def _set_freezer(self, path: str, state: str) -> None:
        leaf = self._leaf("freezer", path)
        if leaf is None:
            raise Unavailable("the freezer cgroup controller is not mounted")
        file = leaf / "freezer.state"
        self._write(file, state)
        # FREEZING until every task has stopped
        if not _wait_until(lambda: _read(file) == state):
            if state == "FROZEN":
                self._write(file, "THAWED")
            raise TimeoutError(errno.ETIMEDOUT, f"cgroup {path} did not become {state}")

    def destroy(self, path: str) -> None:
        leaves = [leaf for leaf in self._leaves(path) if leaf.is_dir()]
        if pids := self.pids(path):
            _kill(pids)
            # tasks of a frozen cgroup cannot act on SIGKILL until thawed
            freezer = self._leaf("freezer", path)
            if freezer and _read(freezer / "freezer.state") not in ("", "THAWED"):
                self._write(freezer / "freezer.state", "THAWED")
            _wait_until(lambda: not _kill(self.pids(path)))
        for leaf in leaves:
            _rmdir(leaf)


DeviceFilter = Callable[[Path, Sequence[tuple[bool, str]]], None]


class CgroupV2:
    version: int = 2
    driver: str = "cgroupfs"

    def __init__(self, root: Path, *, writer: Writer = write_file,
                 device_filter: DeviceFilter = devfilter.attach) -> None:
        self.root = root
        self._device_filter = device_filter
        self._write = writer
        on = set(_read(root / "cgroup.controllers").split())
        io = "io" in on
        self.features = Features(
            memory="memory" in on, swap="memory" in on, memory_reservation="memory" in on, swappiness=False,
            oom_kill_disable=False, cpu_shares="cpu" in on, cpu_cfs="cpu" in on, cpu_rt=False,
            cpuset="cpuset" in on, cpus=_read(root / "cpuset.cpus.effective"),
            mems=_read(root / "cpuset.mems.effective"),
            pids="pids" in on, blkio_weight=io, blkio_weight_device=io, blkio_read_bps=io, blkio_write_bps=io,
            blkio_read_iops=io, blkio_write_iops=io,
        )  # fmt: skip

    def create(self, path: str, resources: Resources) -> list[Path]:
        rel = _relative(path)
        # enable the controllers in each ancestor's subtree_control, top-down, before each mkdir
        level, available = self.root, set(V2_CONTROLLERS)
        for part in rel.parts:
            if (level / "cgroup.controllers").exists():
                available = set(_read(level / "cgroup.controllers").split())
            enabled = set(_read(level / "cgroup.subtree_control").split())
            wanted = [c for c in V2_CONTROLLERS if c in available and c not in enabled]
            if wanted:
                self._write(level / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
            available = enabled | set(wanted)  # what the child level will see
            level = level / part
            level.mkdir(exist_ok=True)
        try:
            self.update(path, resources)
        except BaseException:
            self.destroy(path)
            raise
        return [level / "cgroup.procs"]

    def update(self, path: str, r: Resources) -> None:
        _validate(r)
        for value, what in ((r.memory_swappiness, "memory swappiness"),
                            (r.cpu_rt_period or r.cpu_rt_runtime, "CPU real-time scheduling")):
            if value is not None and value != 0:
                raise InvalidArgument(f"{what} is not available on cgroup v2")
        leaf = self.root / _relative(path)
        if r.memory_swap:
            if r.memory_swap < 0:
                swap = "max"
            else:  # Docker's MemorySwap is memory+swap; v2 limits the swap alone
                swap = str(r.memory_swap - (r.memory or 0))
            try:
                self._write(leaf / "memory.swap.max", swap)
            except OSError:
                if (leaf / "memory.swap.max").exists():
                    raise  # else: no swap accounting in this kernel
        if r.memory is not None:
            self._write(leaf / "memory.max", str(r.memory) if r.memory > 0 else "max")
        if r.memory_reservation is not None:
            self._write(leaf / "memory.low", str(r.memory_reservation) if r.memory_reservation > 0 else "0")
        if r.cpu_shares:
            self._write(leaf / "cpu.weight", str(cpu_weight(r.cpu_shares)))
        if r.cpu_quota is not None or r.cpu_period:
            # cpu.max is "$QUOTA $PERIOD": keep the current half that is not being changed
            current = (_read(leaf / "cpu.max") or "max 100000").split()
            quota = current[0] if r.cpu_quota is None else _or_max(r.cpu_quota)
            period = str(r.cpu_period) if r.cpu_period else current[1]
            self._write(leaf / "cpu.max", f"{quota} {period}")
        if r.cpuset_cpus is not None:
            self._write(leaf / "cpuset.cpus", r.cpuset_cpus)
        if r.cpuset_mems is not None:
            self._write(leaf / "cpuset.mems", r.cpuset_mems)
        if r.pids_limit is not None:
            self._write(leaf / "pids.max", _or_max(r.pids_limit))
        # BFQ's weights where the kernel has them, else io.weight (the io.cost controller's)
        bfq = (leaf / "io.bfq.weight").exists()
        weights = [("", r.blkio_weight)] if r.blkio_weight else []  # "" = the default weight
        for dev, weight in [*weights, *((f"{ma}:{mi} ", w) for ma, mi, w in r.blkio_weight_device)]:
            value = weight if bfq else io_weight(weight)
            self._write(leaf / ("io.bfq.weight" if bfq else "io.weight"), f"{dev}{value}")
        for key, devices in (("rbps", r.blkio_read_bps), ("wbps", r.blkio_write_bps),
                             ("riops", r.blkio_read_iops), ("wiops", r.blkio_write_iops)):
            for major, minor, rate in devices:
                self._write(leaf / "io.max", f"{major}:{minor} {key}={rate}")
        if r.device_rules is not None:  # set once, at create (update passes None)
            self._device_filter(leaf, r.device_rules)

    def stats(self, path: str) -> CgroupStats:
        leaf = self.root / _relative(path)
        limit = _read(leaf / "memory.max")
        cpu = _read_keyed(leaf / "cpu.stat")
        pids_max = _read(leaf / "pids.max")
        return CgroupStats(
            cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            memory_usage=_read_int(leaf / "memory.current", 0),
            memory_limit=int(limit) if limit.isdigit() else None,
            pids_current=_read_int(leaf / "pids.current", 0),
            oom_kills=_read_keyed(leaf / "memory.events").get("oom_kill", 0),
            cpu_user_ns=cpu.get("user_usec", 0) * 1000,
            cpu_system_ns=cpu.get("system_usec", 0) * 1000,
            memory_detail=_read_keyed(leaf / "memory.stat"),
            pids_limit=int(pids_max) if pids_max.isdigit() else None,
            throttling={"nr_periods": cpu.get("nr_periods", 0), "nr_throttled": cpu.get("nr_throttled", 0),
                        "throttled_time": cpu.get("throttled_usec", 0) * 1000},
            **_io_stat(leaf / "io.stat"),
        )

    def oom_killed(self, path: str) -> bool:
        return self.stats(path).oom_kills > 0

    def pids(self, path: str) -> list[int]:
        return sorted(_read_procs(self.root / _relative(path)))

    def freeze(self, path: str) -> None:
        self._set_frozen(path, 1)

    def thaw(self, path: str) -> None:
        self._set_frozen(path, 0)

    def _set_frozen(self, path: str, frozen: int) -> None:
        leaf = self.root / _relative(path)
        self._write(leaf / "cgroup.freeze", str(frozen))
        events = leaf / "cgroup.events"
        # a fake tree has no cgroup.events: nothing to wait for
        if events.exists() and not _wait_until(
            lambda: _read_keyed(events).get("frozen", frozen) == frozen
        ):
            if frozen:
                self._write(leaf / "cgroup.freeze", "0")
            raise TimeoutError(errno.ETIMEDOUT, f"cgroup {path} did not reach frozen={frozen}")

    def destroy(self, path: str) -> None:
        leaf = self.root / _relative(path)
        if not leaf.is_dir():
            return
        if _read_procs(leaf):
            if (leaf / "cgroup.kill").exists():  # kernel >= 5.14: kills the whole subtree at once
                self._write(leaf / "cgroup.kill", "1")
                _wait_until(lambda: not _read_procs(leaf))
            else:
                _wait_until(lambda: not _kill(_read_procs(leaf)))
        _rmdir(leaf)


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


def _rt_share(cgroup: Path) -> Fraction:
    """The real-time runtime a v1 cpu cgroup holds, as a fraction of a CPU."""
    runtime = _read_int(cgroup / "cpu.rt_runtime_us", 0)
    return Fraction(max(runtime, 0), _read_int(cgroup / "cpu.rt_period_us", 1_000_000) or 1)


def _wants_blkio(r: Resources) -> bool:
    return bool(r.blkio_weight or r.blkio_weight_device or r.blkio_read_bps or r.blkio_write_bps
                or r.blkio_read_iops or r.blkio_write_iops)


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


def _blkio_entries(leaf: Path, name: str) -> tuple[tuple[int, int, str, int], ...]:
    """v1 block I/O from the first of BFQ's, CFQ's and the throttle layer's counters that the kernel
    offers, in runc's order: lines "8:0 Read 4096"; the last "Total N" line names no device."""
    for prefix in ("blkio.bfq.", "blkio.", "blkio.throttle."):
        if (leaf / f"{prefix}{name}").exists():
            text = _read(leaf / f"{prefix}{name}")
            break
    else:
        return ()
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) == 3 and ":" in f[0] and f[2].isdigit():
            major, _, minor = f[0].partition(":")
            out.append((int(major), int(minor), f[1], int(f[2])))
    return tuple(out)


def _io_stat(path: Path) -> dict[str, tuple[tuple[int, int, str, int], ...]]:
    """v2 `io.stat` ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..." per device): the bytes read and
    written, the only block I/O figures dockerd reports on cgroup v2."""
    out = []
    for line in _read(path).splitlines():
        dev, *pairs = line.split()
        if ":" not in dev:
            continue
        major, _, minor = dev.partition(":")
        kv = dict(p.split("=", 1) for p in pairs if "=" in p)
        for op, key in (("read", "rbytes"), ("write", "wbytes")):
            out.append((int(major), int(minor), op, int(kv.get(key, 0))))
    return {"io_service_bytes": tuple(out)}
