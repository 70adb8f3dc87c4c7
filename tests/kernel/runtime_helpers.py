"""Helpers for the runtime kernel tests: a busybox rootfs, an OCI config like Docker's, real cgroups.

(Not a conftest.py: other kernel tests share the folder.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from servin.kernel.cgroups import CgroupStats, Resources

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "cat", "sleep", "true", "id", "hostname", "ls", "head", "tr", "grep", "kill", "wc", "yes")

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip


requires_root = pytest.mark.skipif(
    os.geteuid() != 0 or not BUSYBOX.exists(), reason="kernel tests need root and /bin/busybox"
)


class MiniV1Cgroups:
    """A minimal cgroup v1 manager for these tests (used when servin.kernel.cgroups.detect is absent)."""

    version = 1
    driver = "cgroupfs"
    root = Path("/sys/fs/cgroup")
    controllers = ("memory", "pids", "cpu", "cpuacct", "freezer")

    def _dirs(self, path: str) -> list[Path]:
        return [self.root / c / path.strip("/") for c in self.controllers if (self.root / c).is_dir()]

    def create(self, path: str, resources: Resources) -> list[Path]:
        procs = []
        for d in self._dirs(path):
            d.mkdir(parents=True, exist_ok=True)
            procs.append(d / "cgroup.procs")
        mem = self.root / "memory" / path.strip("/")
        if resources.memory:
            (mem / "memory.limit_in_bytes").write_text(str(resources.memory))
            if (mem / "memory.memsw.limit_in_bytes").exists():
                swap = resources.memory_swap or resources.memory
                (mem / "memory.memsw.limit_in_bytes").write_text(str(swap if swap > 0 else -1))
        if resources.pids_limit and resources.pids_limit > 0:
            (self.root / "pids" / path.strip("/") / "pids.max").write_text(str(resources.pids_limit))
        return procs

    def oom_killed(self, path: str) -> bool:
        f = self.root / "memory" / path.strip("/") / "memory.oom_control"
        try:
            for line in f.read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v) > 0
        except FileNotFoundError:
            pass
        return False

    def pids(self, path: str) -> list[int]:
        f = self.root / "pids" / path.strip("/") / "cgroup.procs"
        try:
            return [int(x) for x in f.read_text().split()]
        except FileNotFoundError:
            return []

    def update(self, path: str, resources: Resources) -> None:  # pragma: no cover
        raise NotImplementedError

    def stats(self, path: str) -> CgroupStats:  # pragma: no cover
        raise NotImplementedError

    def freeze(self, path: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def thaw(self, path: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def destroy(self, path: str) -> None:
        for pid in self.pids(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for d in self._dirs(path):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def make_cgroups():  # noqa: ANN201
    if os.environ.get("SERVIN_TEST_MINI_CGROUPS"):
        return MiniV1Cgroups()
    try:
        from servin.kernel.cgroups import detect  # type: ignore[attr-defined]
    except ImportError:
        return MiniV1Cgroups()
    return detect()


@pytest.fixture(scope="session")
def lowerdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lower = tmp_path_factory.mktemp("lower")
    (lower / "bin").mkdir()
    shutil.copy2(BUSYBOX, lower / "bin" / "busybox")
    for a in APPLETS:
        (lower / "bin" / a).symlink_to("busybox")
    for d in ("etc", "proc", "sys", "dev", "tmp", "root", "usr/bin"):
        (lower / d).mkdir(parents=True, exist_ok=True)
    (lower / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    (lower / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return lower


def oci_config(
    args: list[str],
    *,
    lowerdir: Path,
    work: Path,
    cgroups_path: str,
    hostname: str = "servintest",
    namespaces: tuple[str, ...] = ("pid", "mount", "uts", "ipc", "network"),
    stdin: str | None = None,
    memory: int | None = None,
    uid: int = 0,
    gid: int = 0,
) -> dict:
    upper, wdir = work / "upper", work / "work"
    upper.mkdir(exist_ok=True)
    wdir.mkdir(exist_ok=True)
    (work / "rootfs").mkdir(exist_ok=True)
    annotations = {
        "io.servin.overlay.lowerdir": str(lowerdir),
        "io.servin.overlay.upperdir": str(upper),
        "io.servin.overlay.workdir": str(wdir),
    }
    if stdin:
        annotations["io.servin.stdin"] = stdin
    resources: dict = {}
    if memory:
        resources["memory"] = {"limit": memory, "swap": memory}
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + hostname],
            "cwd": "/",
            "capabilities": {k: DEFAULT_CAPS for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}],
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources,
            "namespaces": [{"type": t} for t in namespaces],
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list",
                            "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
        "annotations": annotations,
    }  # fmt: skip


@pytest.fixture
def cgroup_parent():  # noqa: ANN201
    """A unique parent cgroup path for one test; removed afterwards."""
    parent = f"/servin-test-{uuid.uuid4().hex[:10]}"
    yield parent
    for ctrl in Path("/sys/fs/cgroup").iterdir():
        d = ctrl / parent.strip("/")
        if d.is_dir():
            subprocess.run(
                ["find", str(d), "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"],
                check=False,
                stderr=subprocess.DEVNULL,
            )
