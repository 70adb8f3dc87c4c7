"""The cgroup managers on fake cgroupfs trees: plain directories and files in tmp_path."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from servin.errors import InvalidArgument, Unavailable
from servin.kernel import cgroups
from servin.kernel.cgroups import CgroupV1, CgroupV2, Resources, cpu_weight, detect, write_file

pytestmark = pytest.mark.unit

V1_DIRS = ("memory", "cpu,cpuacct", "cpuset", "pids", "freezer", "blkio", "devices", "systemd")


class Recorder:
    """A writer that records (path relative to the root, value) and writes through."""

    def __init__(self, root: Path, refuse: dict[str, OSError | InvalidArgument] | None = None):
        self.root, self.refuse, self.writes = root, refuse or {}, []

    def __call__(self, path: Path, value: str) -> None:
        if path.name in self.refuse:
            raise self.refuse[path.name]
        self.writes.append((str(path.relative_to(self.root)), value))
        write_file(path, value)

    def names(self) -> list[str]:
        return [Path(p).name for p, _ in self.writes]


def put(file: Path, text: str) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)


@pytest.fixture
def v2_root(tmp_path: Path) -> Path:
    root = tmp_path / "cg2"
    put(root / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    put(root / "cgroup.subtree_control", "memory\n")
    return root


@pytest.fixture
def v1_root(tmp_path: Path) -> Path:
    """A hybrid-style v1 tree: cpu and cpuacct co-mounted with symlinks, plus an empty cgroup2."""
    root = tmp_path / "cg1"
    for d in V1_DIRS:
        (root / d).mkdir(parents=True)
    (root / "cpu").symlink_to("cpu,cpuacct")
    (root / "cpuacct").symlink_to("cpu,cpuacct")
    (root / "unified").mkdir()
    put(root / "cpuset" / "cpuset.cpus", "0-3\n")
    put(root / "cpuset" / "cpuset.mems", "0\n")
    return root


def read(file: Path) -> str:
    return file.read_text().strip()


# --- detection ------------------------------------------------------------------------------------


def test_detect_pure_v2(v2_root: Path) -> None:
    mgr = detect(v2_root)
    assert isinstance(mgr, CgroupV2) and mgr.version == 2 and mgr.driver == "cgroupfs"


def test_detect_hybrid_is_v1(v1_root: Path) -> None:
    mgr = detect(v1_root)
    assert isinstance(mgr, CgroupV1) and mgr.version == 1
    # co-mounted controllers share one hierarchy; systemd and unified are not controllers
    assert mgr.hierarchies["cpu"] == mgr.hierarchies["cpuacct"] == (v1_root / "cpu,cpuacct").resolve()
    assert set(mgr.hierarchies) == set(cgroups.V1_CONTROLLERS)


def test_v1_skips_absent_controllers(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    (tmp_path / "pids").mkdir()
    mgr = CgroupV1(tmp_path)
    assert set(mgr.hierarchies) == {"memory", "pids"}
    procs = mgr.create("/servin/x", Resources(memory=1 << 20, cpu_shares=512, cpuset_cpus="0"))
    assert procs == [tmp_path / "memory/servin/x/cgroup.procs", tmp_path / "pids/servin/x/cgroup.procs"]


# --- v2 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shares", "weight"), [(2, 1), (1024, 39), (512, 20), (262144, 10000), (1, 1), (10**6, 10000)]
)
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert cpu_weight(shares) == weight


def test_v2_create_enables_controllers_and_writes_limits(v2_root: Path) -> None:
    rec = Recorder(v2_root)
    mgr = CgroupV2(v2_root, writer=rec)
    res = Resources(
        memory=256 << 20,
        memory_swap=512 << 20,
        cpu_shares=1024,
        cpu_quota=50000,
        cpu_period=100000,
        cpuset_cpus="0-1",
        cpuset_mems="0",
        pids_limit=100,
    )
    procs = mgr.create("/servin/abc", res)

    leaf = v2_root / "servin/abc"
    assert procs == [leaf / "cgroup.procs"]
    # root already had memory on; the intermediate level gets everything the root offers
    assert ("cgroup.subtree_control", "+cpuset +cpu +io +pids") in rec.writes
    assert ("servin/cgroup.subtree_control", "+cpuset +cpu +io +memory +pids") in rec.writes
    assert not (leaf / "cgroup.subtree_control").exists()  # nothing enabled below the leaf
    assert read(leaf / "memory.max") == str(256 << 20)
    assert read(leaf / "memory.swap.max") == str(256 << 20)  # MemorySwap - Memory
    assert read(leaf / "cpu.weight") == "39"
    assert read(leaf / "cpu.max") == "50000 100000"
    assert read(leaf / "cpuset.cpus") == "0-1"
    assert read(leaf / "cpuset.mems") == "0"
    assert read(leaf / "pids.max") == "100"


def test_v2_unlimited_values(v2_root: Path) -> None:
    mgr = CgroupV2(v2_root)
    mgr.create("/c", Resources(memory=-1, memory_swap=-1, cpu_quota=-1, pids_limit=0))
    leaf = v2_root / "c"
    assert read(leaf / "memory.max") == "max"
    assert read(leaf / "memory.swap.max") == "max"
    assert read(leaf / "cpu.max") == "max 100000"
    assert read(leaf / "pids.max") == "max"


def test_v2_leaves_unset_settings_alone(v2_root: Path) -> None:
    rec = Recorder(v2_root)
    CgroupV2(v2_root, writer=rec).create("/c", Resources())
    assert all(name == "cgroup.subtree_control" for name in rec.names())


def test_v2_update_keeps_the_other_half_of_cpu_max(v2_root: Path) -> None:
    mgr = CgroupV2(v2_root)
    mgr.create("/c", Resources(cpu_quota=20000))
    assert read(v2_root / "c/cpu.max") == "20000 100000"
    mgr.update("/c", Resources(cpu_period=50000))
    assert read(v2_root / "c/cpu.max") == "20000 50000"
    mgr.update("/c", Resources(cpu_quota=-1))
    assert read(v2_root / "c/cpu.max") == "max 50000"


def test_v2_swap_without_accounting_is_skipped(v2_root: Path) -> None:
    # the kernel refuses to create a file that is not there (EACCES on cgroupfs)
    rec = Recorder(v2_root, refuse={"memory.swap.max": PermissionError(errno.EACCES, "denied")})
    CgroupV2(v2_root, writer=rec).create("/c", Resources(memory=1 << 20, memory_swap=2 << 20))
    assert read(v2_root / "c/memory.max") == str(1 << 20)


def test_v2_oom_and_stats(v2_root: Path) -> None:
    mgr = CgroupV2(v2_root)
    mgr.create("/c", Resources(memory=64 << 20))
    leaf = v2_root / "c"
    assert not mgr.oom_killed("/c")  # no memory.events yet
    put(leaf / "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n")
    assert not mgr.oom_killed("/c")
    put(leaf / "memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n")
    assert mgr.oom_killed("/c")
    put(leaf / "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    put(leaf / "memory.current", "4096\n")
    put(leaf / "pids.current", "3\n")
    st = mgr.stats("/c")
    assert (st.cpu_usage_ns, st.memory_usage, st.memory_limit, st.pids_current, st.oom_kills) == (
        1_500_000,
        4096,
        64 << 20,
        3,
        2,
    )
    put(leaf / "memory.max", "max\n")
    assert mgr.stats("/c").memory_limit is None


def test_block_io_readings_v1_and_v2(v1_root: Path, v2_root: Path) -> None:
    v1 = CgroupV1(v1_root)
    v1.create("/c", Resources())
    put(v1_root / "blkio/c/blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n")
    put(v1_root / "blkio/c/blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 2\nTotal 3\n")
    st = v1.stats("/c")
    assert st.io_service_bytes[:2] == ((8, 0, "Read", 4096), (8, 0, "Write", 8192)) and len(st.io_service_bytes) == 6
    assert st.io_serviced == ((8, 0, "Read", 1), (8, 0, "Write", 2))
    put(v1_root / "blkio/c/blkio.bfq.io_service_bytes_recursive", "8:16 Read 1\nTotal 1\n")  # BFQ first, as runc
    assert v1.stats("/c").io_service_bytes == ((8, 16, "Read", 1),)
    v2 = CgroupV2(v2_root)
    v2.create("/c", Resources())
    put(v2_root / "c/io.stat", "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n"
                               "253:1 rbytes=5 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")
    st = v2.stats("/c")
    assert st.io_service_bytes == ((8, 0, "read", 1024), (8, 0, "write", 2048), (253, 1, "read", 5),
                                   (253, 1, "write", 0))
    assert st.io_serviced == ()  # dockerd reports only the bytes on v2


def test_v2_freeze_waits_for_events(v2_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mgr = CgroupV2(v2_root)
    mgr.create("/c", Resources())
    leaf = v2_root / "c"
    put(leaf / "cgroup.events", "populated 1\nfrozen 1\n")
    mgr.freeze("/c")
    assert read(leaf / "cgroup.freeze") == "1"
    # the kernel never reports thawed: time out, and say which state was not reached
    monkeypatch.setattr(cgroups.common, "_TIMEOUT_S", 0.05)
    with pytest.raises(TimeoutError, match="frozen=0"):
        mgr.thaw("/c")
    put(leaf / "cgroup.events", "populated 1\nfrozen 0\n")
    mgr.thaw("/c")
    assert read(leaf / "cgroup.freeze") == "0"


def test_v2_freeze_timeout_thaws_back(v2_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mgr = CgroupV2(v2_root)
    mgr.create("/c", Resources())
    put(v2_root / "c/cgroup.events", "populated 1\nfrozen 0\n")
    monkeypatch.setattr(cgroups.common, "_TIMEOUT_S", 0.05)
    with pytest.raises(TimeoutError):
        mgr.freeze("/c")
    assert read(v2_root / "c/cgroup.freeze") == "0"


def test_v2_destroy_removes_leaf_only_and_is_idempotent(v2_root: Path) -> None:
    mgr = CgroupV2(v2_root)
    mgr.create("/servin/abc", Resources(memory=1 << 20, pids_limit=5))
    assert mgr.pids("/servin/abc") == []
    mgr.destroy("/servin/abc")
    assert not (v2_root / "servin/abc").exists()
    assert (v2_root / "servin").is_dir()
    mgr.destroy("/servin/abc")
    mgr.destroy("/never/created")


def test_v2_refused_setting_removes_the_new_cgroup(v2_root: Path) -> None:
    refused = InvalidArgument("invalid cgroup setting cpuset.cpus='99': Invalid argument")
    mgr = CgroupV2(v2_root, writer=Recorder(v2_root, refuse={"cpuset.cpus": refused}))
    with pytest.raises(InvalidArgument, match="cpuset.cpus='99'"):
        mgr.create("/servin/abc", Resources(memory=1 << 20, cpuset_cpus="99"))
    assert not (v2_root / "servin/abc").exists()


# --- v1 -------------------------------------------------------------------------------------------


def test_v1_create_writes_every_hierarchy(v1_root: Path) -> None:
    rec = Recorder(v1_root)
    mgr = CgroupV1(v1_root, writer=rec)
    res = Resources(
        memory=256 << 20,
        memory_swap=512 << 20,
        cpu_shares=512,
        cpu_quota=50000,
        cpu_period=100000,
        cpuset_cpus="1",
        pids_limit=100,
    )
    procs = mgr.create("/servin/abc", res)

    # every v1 hierarchy, systemd's named one too (as runc: the container leaves the daemon's unit)
    mounts = ("blkio", "cpu,cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd")
    assert procs == [v1_root / m / "servin/abc/cgroup.procs" for m in mounts]
    for m in mounts:
        assert (v1_root / m / "servin/abc").is_dir()
    assert not (v1_root / "unified/servin").exists()  # the cgroup2 mount of a hybrid host is not v1

    mem, cpu, cpuset = (v1_root / d / "servin/abc" for d in ("memory", "cpu,cpuacct", "cpuset"))
    assert read(mem / "memory.limit_in_bytes") == str(256 << 20)
    assert read(mem / "memory.memsw.limit_in_bytes") == str(512 << 20)
    assert read(cpu / "cpu.shares") == "512"
    assert read(cpu / "cpu.cfs_period_us") == "100000"
    assert read(cpu / "cpu.cfs_quota_us") == "50000"
    names = rec.names()
    assert names.index("cpu.cfs_period_us") < names.index("cpu.cfs_quota_us")
    assert read(v1_root / "pids/servin/abc/pids.max") == "100"
    # cpuset: every new level first gets the parent's cpus/mems, then the leaf its own cpus
    assert read(v1_root / "cpuset/servin/cpuset.cpus") == "0-3"
    assert read(v1_root / "cpuset/servin/cpuset.mems") == "0"
    assert read(cpuset / "cpuset.cpus") == "1"
    assert read(cpuset / "cpuset.mems") == "0"
    assert names.index("cpuset.mems") < names.index("memory.limit_in_bytes")


def test_v1_cpuset_keeps_an_existing_parent_value(v1_root: Path) -> None:
    put(v1_root / "cpuset/servin/cpuset.cpus", "2\n")
    put(v1_root / "cpuset/servin/cpuset.mems", "0\n")
    CgroupV1(v1_root).create("/servin/abc", Resources())
    assert read(v1_root / "cpuset/servin/cpuset.cpus") == "2"
    assert read(v1_root / "cpuset/servin/abc/cpuset.cpus") == "2"


def test_v1_unlimited_values(v1_root: Path) -> None:
    rec = Recorder(v1_root)
    CgroupV1(v1_root, writer=rec).create("/c", Resources(memory=-1, cpu_quota=-1, pids_limit=0))
    # unlimited memory also lifts memsw, which must stay >= memory, so memsw goes first
    assert [w for w in rec.writes if w[0].startswith("memory/")] == [
        ("memory/c/memory.memsw.limit_in_bytes", "-1"),
        ("memory/c/memory.limit_in_bytes", "-1"),
    ]
    assert read(v1_root / "cpu/c/cpu.cfs_quota_us") == "-1"
    assert read(v1_root / "pids/c/pids.max") == "max"


def test_v1_lowering_memory_writes_memory_before_memsw(v1_root: Path) -> None:
    rec = Recorder(v1_root)
    mgr = CgroupV1(v1_root, writer=rec)
    mgr.create("/c", Resources(memory=1 << 30, memory_swap=2 << 30))
    rec.writes.clear()
    mgr.update("/c", Resources(memory=256 << 20, memory_swap=512 << 20))
    assert rec.names() == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_v1_memsw_skipped_without_swap_accounting(v1_root: Path) -> None:
    rec = Recorder(v1_root, refuse={"memory.memsw.limit_in_bytes": PermissionError(errno.EACCES, "")})
    CgroupV1(v1_root, writer=rec).create("/c", Resources(memory=1 << 20, memory_swap=2 << 20))
    assert read(v1_root / "memory/c/memory.limit_in_bytes") == str(1 << 20)


def test_v1_oom_stats_and_pids(v1_root: Path) -> None:
    mgr = CgroupV1(v1_root)
    mgr.create("/c", Resources(memory=64 << 20))
    mem = v1_root / "memory/c"
    put(mem / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")  # kernel < 4.13
    assert not mgr.oom_killed("/c")
    put(mem / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert mgr.oom_killed("/c")
    put(v1_root / "cpuacct/c/cpuacct.usage", "123456789\n")
    put(mem / "memory.usage_in_bytes", "8192\n")
    put(v1_root / "pids/c/pids.current", "2\n")
    st = mgr.stats("/c")
    assert (st.cpu_usage_ns, st.memory_usage, st.memory_limit, st.pids_current, st.oom_kills) == (
        123456789,
        8192,
        64 << 20,
        2,
        1,
    )
    put(mem / "memory.limit_in_bytes", "9223372036854771712\n")  # v1's "no limit"
    assert mgr.stats("/c").memory_limit is None
    # pids: the union over hierarchies (numbers that are never signalled here)
    put(mem / "cgroup.procs", "7\n9\n")
    put(v1_root / "pids/c/cgroup.procs", "9\n8\n")
    assert mgr.pids("/c") == [7, 8, 9]


def test_v1_freeze_and_thaw(v1_root: Path) -> None:
    mgr = CgroupV1(v1_root)
    mgr.create("/c", Resources())
    mgr.freeze("/c")
    assert read(v1_root / "freezer/c/freezer.state") == "FROZEN"
    mgr.thaw("/c")
    assert read(v1_root / "freezer/c/freezer.state") == "THAWED"


def test_v1_freeze_without_freezer(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    mgr = CgroupV1(tmp_path)
    mgr.create("/c", Resources())
    with pytest.raises(Unavailable, match="freezer"):
        mgr.freeze("/c")


def test_v1_destroy_removes_leaf_in_every_hierarchy(v1_root: Path) -> None:
    mgr = CgroupV1(v1_root)
    mgr.create("/servin/abc", Resources(memory=1 << 20, cpuset_cpus="0", pids_limit=5))
    mgr.destroy("/servin/abc")
    for d in V1_DIRS:
        assert not (v1_root / d / "servin/abc").exists()
    assert (v1_root / "memory/servin").is_dir()  # the parent stays
    mgr.destroy("/servin/abc")  # idempotent


def test_v1_refused_setting_removes_the_new_cgroup(v1_root: Path) -> None:
    refused = InvalidArgument("invalid cgroup setting pids.max='x'")
    mgr = CgroupV1(v1_root, writer=Recorder(v1_root, refuse={"pids.max": refused}))
    with pytest.raises(InvalidArgument):
        mgr.create("/servin/abc", Resources(pids_limit=3))
    assert not any((v1_root / d / "servin/abc").exists() for d in V1_DIRS)


# --- shared rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [CgroupV1, CgroupV2])
@pytest.mark.parametrize("path", ["", "/", "/servin/../etc", "./x"])
def test_bad_paths(cls: type, path: str, v1_root: Path) -> None:
    with pytest.raises(InvalidArgument, match="cgroup path"):
        cls(v1_root).create(path, Resources())


@pytest.mark.parametrize("cls", [CgroupV1, CgroupV2])
def test_swap_needs_a_memory_limit_below_it(cls: type, v1_root: Path) -> None:
    mgr = cls(v1_root)
    with pytest.raises(InvalidArgument, match="always set the Memory limit"):
        mgr.update("/c", Resources(memory_swap=1 << 20))
    with pytest.raises(InvalidArgument, match="larger than memory limit"):
        mgr.update("/c", Resources(memory=2 << 20, memory_swap=1 << 20))


def test_write_file_turns_a_refused_value_into_invalid_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(fd: int, data: bytes) -> int:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(os, "write", refuse)
    with pytest.raises(InvalidArgument, match=r"cpuset\.cpus='99'.*Invalid argument"):
        write_file(tmp_path / "cpuset.cpus", "99")
    # the cgroup.* interface files are machinery, not settings: their errors stay OSErrors
    with pytest.raises(OSError):
        write_file(tmp_path / "cgroup.subtree_control", "+cpu")


def test_write_file_keeps_other_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_file(tmp_path / "missing-dir" / "pids.max", "5")


def test_v2_device_rules_go_to_the_device_filter(v2_root: Path) -> None:
    attached: list[tuple[Path, tuple]] = []
    mgr = CgroupV2(v2_root, device_filter=lambda leaf, rules: attached.append((leaf, tuple(rules))))
    rules = ((False, "a *:* rwm"), (True, "c 1:3 rwm"))
    mgr.create("/c", Resources(device_rules=rules))
    assert attached == [(v2_root / "c", rules)]
    mgr.update("/c", Resources(memory=1 << 20))  # an update leaves the filter alone
    assert len(attached) == 1


def test_device_rules_encoding() -> None:
    from servin.errors import InvalidArgument
    from servin.kernel.devfilter import encode

    assert encode([(False, "a *:* rwm"), (True, "c 1:3 rwm"), (True, "b 8:* r"), (True, "c 136:* m")]) == [
        0, 0, -1, -1, 7, 1, ord("c"), 1, 3, 7, 1, ord("b"), 8, -1, 2, 1, ord("c"), 136, -1, 1]
    for bad in ("x 1:3 rwm", "c 1:3 rwq", "c one:3 r"):
        with pytest.raises(InvalidArgument):
            encode([(True, bad)])


# --- the other resources, and what the host offers --------------------------------------------------


def test_v1_features_are_read_from_the_hierarchy_roots(v1_root: Path) -> None:
    for f in ("memory/memory.memsw.limit_in_bytes", "memory/memory.soft_limit_in_bytes", "memory/memory.swappiness",
              "cpu,cpuacct/cpu.shares", "cpu,cpuacct/cpu.cfs_quota_us", "blkio/blkio.throttle.read_bps_device"):
        put(v1_root / f, "0\n")
    f = CgroupV1(v1_root).features
    assert (f.memory, f.swap, f.memory_reservation, f.swappiness, f.oom_kill_disable) == (True, True, True, True, False)
    assert (f.cpu_shares, f.cpu_cfs, f.cpu_rt, f.cpuset, f.cpus, f.mems, f.pids) == (
        True, True, False, True, "0-3", "0", True)
    # no CFQ/BFQ weight here (as on this host): weights are not offered, throttles are
    assert (f.blkio_weight, f.blkio_weight_device, f.blkio_read_bps, f.blkio_write_bps) == (False, False, True, False)


def test_v2_features_follow_the_root_controllers(v2_root: Path) -> None:
    put(v2_root / "cpuset.cpus.effective", "0-7\n")
    put(v2_root / "cpuset.mems.effective", "0\n")
    f = CgroupV2(v2_root).features
    assert (f.memory, f.memory_reservation, f.cpu_cfs, f.cpus, f.mems, f.blkio_weight, f.blkio_read_iops) == (
        True, True, True, "0-7", "0", True, True)
    assert not (f.swappiness or f.oom_kill_disable or f.cpu_rt)  # cgroup v2 has none of these


def test_v1_memory_reservation_swappiness_and_blkio(v1_root: Path) -> None:
    mgr = CgroupV1(v1_root)
    mgr.create("/servin/c", Resources(memory_reservation=32 << 20, memory_swappiness=10, blkio_weight=300,
                                      blkio_weight_device=((8, 0, 500),), blkio_read_bps=((8, 0, 1 << 20),),
                                      blkio_write_iops=((8, 16, 100),)))
    mem, blkio = v1_root / "memory/servin/c", v1_root / "blkio/servin/c"
    assert read(mem / "memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(mem / "memory.swappiness") == "10"
    assert read(blkio / "blkio.weight") == "300"
    assert read(blkio / "blkio.weight_device") == "8:0 500"
    assert read(blkio / "blkio.throttle.read_bps_device") == f"8:0 {1 << 20}"
    assert read(blkio / "blkio.throttle.write_iops_device") == "8:16 100"
    # with BFQ the weights go to its files (as runc chooses)
    put(v1_root / "blkio/servin/d/blkio.bfq.weight", "100\n")
    mgr.create("/servin/d", Resources(blkio_weight=200, blkio_weight_device=((8, 0, 700),)))
    assert read(v1_root / "blkio/servin/d/blkio.bfq.weight") == "200"
    assert read(v1_root / "blkio/servin/d/blkio.bfq.weight_device") == "8:0 700"
    assert not (v1_root / "blkio/servin/d/blkio.weight").exists()


def test_v1_realtime_runtime_is_granted_by_the_ancestors(v1_root: Path) -> None:
    cpu = v1_root / "cpu,cpuacct"
    put(cpu / "cpu.rt_runtime_us", "950000\n")  # the root's
    put(cpu / "servin/cpu.rt_runtime_us", "0\n")
    put(cpu / "servin/cpu.rt_period_us", "1000000\n")
    rec = Recorder(v1_root)
    CgroupV1(v1_root, writer=rec).create("/servin/c", Resources(cpu_rt_period=100000, cpu_rt_runtime=10000))
    assert read(cpu / "servin/cpu.rt_runtime_us") == "100000"  # 10% of its own 1 s period
    assert read(cpu / "servin/c/cpu.rt_period_us") == "100000"
    assert read(cpu / "servin/c/cpu.rt_runtime_us") == "10000"
    names = rec.names()
    assert names.index("cpu.rt_runtime_us") < names.index("cpu.rt_period_us")  # the parent's first
    assert read(cpu / "cpu.rt_runtime_us") == "950000"  # the root is never touched
    # a sibling's share adds up: the parent grants both (the kernel checks the sum)
    CgroupV1(v1_root).create("/servin/d", Resources(cpu_rt_period=1_000_000, cpu_rt_runtime=50_000))
    assert read(cpu / "servin/cpu.rt_runtime_us") == "150000"
    # an update of the first replaces its share; the parent is never lowered
    CgroupV1(v1_root).update("/servin/c", Resources(cpu_rt_runtime=5000))
    assert read(cpu / "servin/cpu.rt_runtime_us") == "150000"


def test_v1_realtime_period_that_does_not_fit_goes_after_the_runtime(v1_root: Path) -> None:
    refuse = {"n": 0}

    def writer(path: Path, value: str) -> None:
        # the kernel refuses a period shorter than the runtime already set
        if path.name == "cpu.rt_period_us" and refuse["n"] == 0:
            refuse["n"] += 1
            raise InvalidArgument("invalid cgroup setting cpu.rt_period_us")
        write_file(path, value)

    mgr = CgroupV1(v1_root, writer=writer)
    mgr.create("/c", Resources(cpu_rt_period=10000, cpu_rt_runtime=5000))
    assert read(v1_root / "cpu,cpuacct/c/cpu.rt_period_us") == "10000"
    assert read(v1_root / "cpu,cpuacct/c/cpu.rt_runtime_us") == "5000"


def test_v2_memory_low_and_io(v2_root: Path) -> None:
    mgr = CgroupV2(v2_root)
    mgr.create("/c", Resources(memory_reservation=32 << 20, blkio_weight=500, blkio_weight_device=((8, 0, 1000),),
                               blkio_read_bps=((8, 0, 1 << 20),), blkio_write_iops=((8, 0, 50),)))
    leaf = v2_root / "c"
    assert read(leaf / "memory.low") == str(32 << 20)
    # io.weight 1..10000 from blkio's 10..1000; the device's line is the last written here
    assert cgroups.io_weight(10) == 1 and cgroups.io_weight(500) == 4950 and cgroups.io_weight(1000) == 10000
    assert read(leaf / "io.weight") == "8:0 10000"
    assert read(leaf / "io.max") == "8:0 wiops=50"
    rec = Recorder(v2_root)
    put(v2_root / "d/io.bfq.weight", "default 100\n")
    CgroupV2(v2_root, writer=rec).create("/d", Resources(blkio_weight=300, blkio_read_bps=((8, 0, 4096),)))
    assert ("d/io.bfq.weight", "300") in rec.writes and ("d/io.max", "8:0 rbps=4096") in rec.writes
    with pytest.raises(InvalidArgument, match="memory swappiness is not available on cgroup v2"):
        mgr.update("/c", Resources(memory_swappiness=10))
    with pytest.raises(InvalidArgument, match="real-time scheduling is not available on cgroup v2"):
        mgr.update("/c", Resources(cpu_rt_runtime=1000))
