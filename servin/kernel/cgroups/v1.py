"""cgroup v1: one hierarchy per controller (or co-mounted group), the container's cgroup in each."""

from __future__ import annotations

import errno
import functools
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from servin.errors import InvalidArgument, Unavailable
from servin.kernel.cgroups.common import (
    USER_HZ_NS,
    V1_CONTROLLERS,
    V1_JOINED,
    CgroupStats,
    Features,
    Resources,
    Writer,
    _kill,
    _or_max,
    _or_minus_one,
    _read,
    _read_int,
    _read_keyed,
    _read_procs,
    _relative,
    _rmdir,
    _validate,
    _wait_until,
    write_file,
)

_UNLIMITED = 1 << 62  # v1 reports "no limit" as PAGE_COUNTER_MAX pages (~2^63)
MOUNTINFO = Path("/proc/self/mountinfo")
V1_ROOT = "/sys/fs/cgroup"  # where the hierarchies are mounted on the host


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

    @functools.cached_property
    def hierarchy_mounts(self) -> Sequence[tuple[str, str]] | None:
        """The hierarchies mounted under /sys/fs/cgroup (the host's mount table, read once)."""
        return v1_hierarchy_mounts(MOUNTINFO.read_text())

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


def _rt_share(cgroup: Path) -> Fraction:
    """The real-time runtime a v1 cpu cgroup holds, as a fraction of a CPU."""
    runtime = _read_int(cgroup / "cpu.rt_runtime_us", 0)
    return Fraction(max(runtime, 0), _read_int(cgroup / "cpu.rt_period_us", 1_000_000) or 1)


def _wants_blkio(r: Resources) -> bool:
    return bool(r.blkio_weight or r.blkio_weight_device or r.blkio_read_bps or r.blkio_write_bps
                or r.blkio_read_iops or r.blkio_write_iops)


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


# the hierarchies v1_hierarchy_mounts reports: those the manager puts a container in (V1_JOINED)
_MOUNTED_CONTROLLERS = frozenset(V1_JOINED) - {"systemd"}


def v1_hierarchy_mounts(mountinfo: str) -> list[tuple[str, str]] | None:
    """The v1 hierarchies of a mount table (/proc/self/mountinfo) mounted under /sys/fs/cgroup, as
    (directory name, mount data); None when there are none (a v2 host)."""
    result: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, pfields = pre.split(), post.split()
        if len(fields) < 5 or len(pfields) < 3 or pfields[0] != "cgroup":
            continue
        mountpoint = fields[4]
        if not mountpoint.startswith(V1_ROOT + "/"):
            continue
        name = mountpoint.rsplit("/", 1)[1]
        opts = [o for o in pfields[2].split(",") if o not in ("rw", "ro")]
        controllers = [o for o in opts if o in _MOUNTED_CONTROLLERS or o == "name=systemd"]
        if not controllers or name in seen:
            continue
        seen.add(name)
        data = ",".join(controllers)
        if not any(c in _MOUNTED_CONTROLLERS for c in controllers):
            data = "none," + data
        result.append((name, data))
    return result or None
