"""Limits as the container sees them, resource options refused or warned about as dockerd does,
and the exit codes the docker CLI derives from a start error (issue 10, sections 3 and 6)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import ServinDaemon

V1 = Path("/sys/fs/cgroup/memory").is_dir()  # else a pure v2 host
# the cgroup files a container reads its limits from, per cgroup version
MEMORY_LIMIT = "/sys/fs/cgroup/memory/memory.limit_in_bytes" if V1 else "/sys/fs/cgroup/memory.max"
PIDS_MAX = "/sys/fs/cgroup/pids/pids.max" if V1 else "/sys/fs/cgroup/pids.max"


def host_cpus() -> str:
    for f in (Path("/sys/fs/cgroup/cpuset/cpuset.cpus"), Path("/sys/fs/cgroup/cpuset.cpus.effective")):
        if f.exists():
            return f.read_text().strip()
    pytest.skip("no cpuset controller")


def test_memory_and_pids_limits_are_the_containers_own(servin: ServinDaemon) -> None:
    out = servin.docker("run", "--rm", "--memory", "64m", "--pids-limit", "77", "busybox",
                        "cat", MEMORY_LIMIT, PIDS_MAX).stdout.decode()
    assert out.split() == ["67108864", "77"]


@pytest.mark.skipif(not V1, reason="the v1 view")
def test_v1_view_is_read_only_and_every_hierarchy_is_its_own(servin: ServinDaemon) -> None:
    script = ("ls /sys/fs/cgroup; touch /sys/fs/cgroup/memory/x 2>/dev/null || echo ro; "
              "grep -c ':/servin-test' /proc/self/cgroup")
    out = servin.docker("run", "--rm", "busybox", "sh", "-c", script).stdout.decode().split()
    assert {"memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer"} <= set(out)
    assert "ro" in out
    # each v1 hierarchy (systemd's too) is the container's own cgroup under the daemon's parent
    assert int(out[-1]) >= 9


def test_docker_update_shows_inside_at_once(servin: ServinDaemon) -> None:
    servin.docker("run", "-d", "--name", "limview", "--memory", "64m", "busybox", "sleep", "300")
    try:
        assert servin.docker("exec", "limview", "cat", MEMORY_LIMIT).stdout.strip() == b"67108864"
        servin.docker("update", "--memory", "128m", "limview")
        assert servin.docker("exec", "limview", "cat", MEMORY_LIMIT).stdout.strip() == b"134217728"
    finally:
        servin.docker("rm", "-f", "limview", check=False)


def test_cpuset_and_restart_policy_refused_with_dockerds_words(servin: ServinDaemon) -> None:
    res = servin.docker("run", "--rm", "--cpuset-cpus", "999", "busybox", "true", check=False)
    assert res.returncode == 125
    assert f"Requested CPUs are not available - requested 999, available: {host_cpus()}".encode() in res.stderr
    res = servin.docker("run", "--restart", "bogus", "busybox", "true", check=False)
    assert res.returncode == 125 and b"invalid restart policy 'bogus'" in res.stderr
    res = servin.docker("create", "--restart", "always:3", "busybox", "true", check=False)
    assert res.returncode != 0
    assert b"maximum retry count cannot be used with restart policy 'always'" in res.stderr
    res = servin.docker("run", "--rm", "--blkio-weight", "5", "busybox", "true", check=False)
    assert res.returncode == 125 and b"Range of blkio weight is from 10 to 1000" in res.stderr
    res = servin.docker("run", "--rm", "--gpus", "all", "busybox", "true", check=False)
    assert res.returncode == 125
    assert b'could not select device driver "" with capabilities: [[gpu]]' in res.stderr
    assert b"no GPU support yet" in res.stderr
    res = servin.docker("run", "--rm", "--runtime", "bogus", "busybox", "true", check=False)
    assert res.returncode == 125 and b"Unknown runtime specified bogus" in res.stderr
    res = servin.docker("run", "--rm", "--storage-opt", "size=1G", "busybox", "true", check=False)
    assert b"--storage-opt is supported only for overlay over xfs with 'pquota' mount option" in res.stderr
    assert servin.docker("ps", "-aq").stdout == b""  # nothing was created


def test_kernel_memory_is_accepted_with_dockerds_warnings(servin: ServinDaemon) -> None:
    args = ["docker", "run", "--rm", "--kernel-memory", "10m", "busybox", "true"]
    res = subprocess.run(args, env={**servin.env, "DOCKER_API_VERSION": "1.41"}, capture_output=True, check=True)
    assert b"WARNING: Specifying a kernel memory limit is deprecated" in res.stderr
    res = servin.docker(*args[1:])  # the CLI's own version (1.50): ignored from 1.42 on, as dockerd
    assert b"kernel memory" not in res.stderr


@pytest.mark.skipif(not V1, reason="swappiness and rt scheduling are v1 only")
def test_v1_only_settings_are_honoured(servin: ServinDaemon) -> None:
    out = servin.docker("run", "--rm", "--memory-swappiness", "10", "--memory-reservation", "32m",
                        "--cpu-rt-runtime", "10000", "busybox", "cat", "/sys/fs/cgroup/memory/memory.swappiness",
                        "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
                        "/sys/fs/cgroup/cpu/cpu.rt_runtime_us").stdout.decode()
    assert out.split() == ["10", str(32 << 20), "10000"]


def test_block_io_throttle_is_honoured(servin: ServinDaemon) -> None:
    disk = next((d for d in ("/dev/vda", "/dev/sda", "/dev/nvme0n1") if os.path.exists(d)), None)
    if disk is None:
        pytest.skip("no disk device")
    st = os.stat(disk)
    path = "/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device" if V1 else "/sys/fs/cgroup/io.max"
    out = servin.docker("run", "--rm", "--device-read-bps", f"{disk}:1mb", "busybox", "cat", path).stdout.decode()
    assert f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" in out and ("1048576" in out)


def test_exit_codes_of_a_command_that_cannot_start(servin: ServinDaemon) -> None:
    res = servin.docker("run", "--rm", "busybox", "/nonexistent", check=False)
    assert res.returncode == 127
    assert (b'OCI runtime create failed: runc create failed: unable to start container process: '
            b'exec: "/nonexistent": stat /nonexistent: no such file or directory: unknown') in res.stderr
    res = servin.docker("run", "--rm", "busybox", "/etc/passwd", check=False)  # not executable
    assert res.returncode == 126 and b'exec: "/etc/passwd": permission denied' in res.stderr


def test_env_name_unset_in_the_client_is_not_passed(servin: ServinDaemon) -> None:
    env = dict(servin.env)
    env.pop("SERVIN_E2E_UNSET", None)
    res = subprocess.run(["docker", "run", "--rm", "-e", "SERVIN_E2E_UNSET", "-e", "SERVIN_E2E_SET=1", "busybox",
                          "env"], env=env, capture_output=True, timeout=60, check=True)
    lines = res.stdout.decode().splitlines()
    assert "SERVIN_E2E_SET=1" in lines
    assert not any(line.startswith("SERVIN_E2E_UNSET") for line in lines)
