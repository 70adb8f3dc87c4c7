"""cgroup v2: one unified hierarchy; device access through an eBPF program (kernel/devfilter)."""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from pathlib import Path

from servin.errors import InvalidArgument
from servin.kernel import devfilter
from servin.kernel.cgroups.common import (
    V2_CONTROLLERS,
    CgroupStats,
    Features,
    Resources,
    Writer,
    _kill,
    _or_max,
    _read,
    _read_int,
    _read_keyed,
    _read_procs,
    _relative,
    _rmdir,
    _validate,
    _wait_until,
    cpu_weight,
    io_weight,
    write_file,
)

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

    @property
    def hierarchy_mounts(self) -> Sequence[tuple[str, str]] | None:
        return None  # one cgroup2 mount

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
            io_service_bytes=_io_stat(leaf / "io.stat"),
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



def _io_stat(path: Path) -> tuple[tuple[int, int, str, int], ...]:
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
    return tuple(out)
