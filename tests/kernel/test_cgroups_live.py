"""CgroupV1 on this host's real cgroup v1 hierarchies (root only)."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.errors import InvalidArgument
from servin.kernel.cgroups import CgroupV1, Resources

ROOT = Path("/sys/fs/cgroup")

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not (ROOT / "memory").is_dir(), reason="no cgroup v1 memory hierarchy"),
]


@pytest.fixture
def mgr() -> CgroupV1:
    return CgroupV1(ROOT)


@pytest.fixture
def parent(mgr: CgroupV1) -> Iterator[str]:
    """A throwaway parent cgroup; it and its c1 child are removed even when the test fails."""
    name = f"/servin-cgtest-{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        mgr.destroy(f"{name}/c1")
        mgr.destroy(name)
        left = [str(m / name.strip("/")) for m in mgr.joined]
        assert not [d for d in left if os.path.exists(d)], left


def leftover_dirs(mgr: CgroupV1, path: str) -> list[Path]:
    return [m / path.strip("/") for m in mgr.joined if (m / path.strip("/")).exists()]


def test_limits_join_stats_freeze_destroy(mgr: CgroupV1, parent: str) -> None:
    path = f"{parent}/c1"
    res = Resources(
        memory=64 << 20,
        pids_limit=50,
        cpu_shares=512,
        cpu_quota=50000,
        cpu_period=100000,
        cpuset_cpus="0",
    )
    procs = mgr.create(path, res)
    assert len(procs) == len(mgr.joined)  # every v1 hierarchy, systemd's too

    def setting(controller: str, name: str) -> str:
        return (mgr.hierarchies[controller] / path.strip("/") / name).read_text().strip()

    assert setting("memory", "memory.limit_in_bytes") == str(64 << 20)
    assert setting("pids", "pids.max") == "50"
    assert setting("cpu", "cpu.shares") == "512"
    assert setting("cpu", "cpu.cfs_quota_us") == "50000"
    assert setting("cpuset", "cpuset.cpus") == "0"
    assert setting("cpuset", "cpuset.mems") != ""  # copied from the parent chain

    proc = subprocess.Popen(["sleep", "30"])
    try:
        for f in procs:
            f.write_text(str(proc.pid))
        assert mgr.pids(path) == [proc.pid]

        st = mgr.stats(path)
        assert st.memory_limit == 64 << 20
        assert st.pids_current == 1
        assert st.cpu_usage_ns >= 0 and st.memory_usage >= 0
        assert st.oom_kills == 0 and not mgr.oom_killed(path)

        mgr.freeze(path)
        assert setting("freezer", "freezer.state") == "FROZEN"
        mgr.thaw(path)
        assert setting("freezer", "freezer.state") == "THAWED"
        assert proc.poll() is None

        mgr.destroy(path)
        assert proc.wait(timeout=5) == -9
        assert leftover_dirs(mgr, path) == []
        assert leftover_dirs(mgr, parent) != []  # destroy removes the leaf only
    finally:
        proc.kill()
        proc.wait()


def test_destroy_kills_a_frozen_cgroup(mgr: CgroupV1, parent: str) -> None:
    path = f"{parent}/c1"
    procs = mgr.create(path, Resources(pids_limit=10))
    proc = subprocess.Popen(["sleep", "30"])
    try:
        for f in procs:
            f.write_text(str(proc.pid))
        mgr.freeze(path)
        mgr.destroy(path)
        assert proc.wait(timeout=5) == -9
        assert leftover_dirs(mgr, path) == []
    finally:
        proc.kill()
        proc.wait()


def test_oom_kill_is_detected(mgr: CgroupV1, parent: str) -> None:
    path = f"{parent}/c1"
    procs = mgr.create(path, Resources(memory=8 << 20, memory_swap=8 << 20))
    # the shell joins every hierarchy itself, then becomes the allocating program
    hog = shlex.join([sys.executable, "-c", "s = 'x' * (64 << 20)"])
    joins = "; ".join(f"echo $$ > {shlex.quote(str(f))}" for f in procs)
    result = subprocess.run(["sh", "-c", f"{joins}; exec {hog}"], timeout=60, capture_output=True)
    assert result.returncode == -9, result
    assert mgr.oom_killed(path)
    assert mgr.stats(path).oom_kills >= 1
    mgr.destroy(path)
    assert leftover_dirs(mgr, path) == []


def test_kernel_refusal_is_invalid_argument(mgr: CgroupV1, parent: str) -> None:
    path = f"{parent}/c1"
    with pytest.raises(InvalidArgument, match=r"cpuset\.cpus='4096'"):
        mgr.create(path, Resources(cpuset_cpus="4096"))
    assert leftover_dirs(mgr, path) == []  # the half-made cgroup was removed
