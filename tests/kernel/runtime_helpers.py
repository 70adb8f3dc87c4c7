"""Helpers for the runtime kernel tests: a busybox rootfs, an OCI config like Docker's, real cgroups.

(Not a conftest.py: other kernel tests share the folder.)
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from servin.kernel.cgroups import CgroupStats, Resources, v1_hierarchy_mounts

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "cat", "sleep", "true", "id", "hostname", "ls", "head", "tr", "grep", "kill", "wc", "yes",
           "tty", "stty", "env", "pwd", "test", "seq", "dd")  # fmt: skip

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip

NOFILE_HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]


requires_root = pytest.mark.skipif(
    os.geteuid() != 0 or not BUSYBOX.exists(), reason="kernel tests need root and /bin/busybox"
)


class MiniV1Cgroups:
    """A minimal cgroup v1 manager for these tests (used when servin.kernel.cgroups.detect is absent)."""

    version = 1
    driver = "cgroupfs"
    root = Path("/sys/fs/cgroup")
    controllers = ("memory", "pids", "cpu", "cpuacct", "freezer")

    @property
    def hierarchy_mounts(self) -> list[tuple[str, str]] | None:
        return v1_hierarchy_mounts(Path("/proc/self/mountinfo").read_text())

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
    terminal: bool = False,
    console_size: tuple[int, int] | None = None,
    annotations: dict[str, str] | None = None,
    mounts: tuple[dict, ...] = (),  # after the defaults
) -> dict:
    upper, wdir = work / "upper", work / "work"
    upper.mkdir(exist_ok=True)
    wdir.mkdir(exist_ok=True)
    (work / "rootfs").mkdir(exist_ok=True)
    extra = dict(annotations or {})
    annotations = {
        "io.servin.overlay.lowerdir": str(lowerdir),
        "io.servin.overlay.upperdir": str(upper),
        "io.servin.overlay.workdir": str(wdir),
    }
    if stdin:
        extra["io.servin.stdin"] = stdin
    resources: dict = {}
    if memory:
        resources["memory"] = {"limit": memory, "swap": memory}
    annotations.update(extra)
    process_extra: dict = {}
    if console_size:
        process_extra["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    return {
        "ociVersion": "1.0.2",
        "process": {
            **process_extra,
            "terminal": terminal,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + hostname],
            "cwd": "/",
            "capabilities": {k: DEFAULT_CAPS for k in ("bounding", "effective", "permitted")},
            # the host's own limit: above it the start fails (no CAP_SYS_RESOURCE on this machine)
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": NOFILE_HARD, "soft": NOFILE_HARD}],
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
            *mounts,
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


class Env:
    """Containers of one test through a real Runtime, each with its own cgroup under a unique
    parent; cleanup() deletes them all (shim, cgroup, state) even when the test failed."""

    def __init__(self, tmp: Path, lowerdir: Path, cgroup_parent: str) -> None:
        from servin.runtime import Runtime

        self.tmp = tmp
        self.lowerdir = lowerdir
        self.parent = cgroup_parent
        self.runtime = Runtime(exec_root=tmp / "exec", cgroups=make_cgroups())
        self.created: list[tuple[str, str]] = []

    async def create(self, args: list[str], *, log: bool = True, **kw):  # noqa: ANN003, ANN201
        cid = uuid.uuid4().hex
        bundle = self.tmp / "bundles" / cid
        bundle.mkdir(parents=True)
        cgpath = f"{self.parent}/{cid[:12]}"
        config = oci_config(args, lowerdir=self.lowerdir, work=bundle, cgroups_path=cgpath, **kw)
        (bundle / "config.json").write_text(json.dumps(config))
        self.created.append((cid, cgpath))
        shim = await self.runtime.spawn(
            cid, bundle=bundle, log_path=bundle / "json.log" if log else None, exit_path=bundle / "exit.json"
        )
        return cid, bundle, shim

    async def cleanup(self) -> None:
        for cid, _cgpath in self.created:
            try:
                await asyncio.wait_for(self.runtime.delete(cid), 20)
            except Exception:  # noqa: BLE001 - keep cleaning
                self.runtime._kill_shim_pid(self.runtime.state_dir(cid))


@pytest.fixture
async def env(tmp_path: Path, lowerdir: Path, cgroup_parent: str):  # noqa: ANN201
    e = Env(tmp_path, lowerdir, cgroup_parent)
    try:
        yield e
    finally:
        await e.cleanup()


async def read_frames(reader: asyncio.StreamReader) -> dict[int, bytes]:
    out: dict[int, bytes] = {1: b"", 2: b""}
    while True:
        try:
            hdr = await reader.readexactly(8)
        except asyncio.IncompleteReadError as e:
            assert e.partial == b""
            return out
        stream, length = hdr[0], struct.unpack(">I", hdr[4:])[0]
        out[stream] = out.get(stream, b"") + await reader.readexactly(length)


async def drive(shim) -> tuple[int, bytes, bytes]:  # noqa: ANN001 - a runtime Shim
    """Start a created container attached, read its output to the end: (exit code, stdout, stderr)."""
    r, w = await shim.attach(stdin=False, stdout=True, stderr=True)
    await shim.start()
    frames = await asyncio.wait_for(read_frames(r), 20)
    status = await asyncio.wait_for(shim.wait(), 20)
    w.close()
    await shim.close()
    return status.exit_code, frames[1], frames[2]


async def run(env: Env, args: list[str], **kw) -> tuple[int, bytes, bytes, Path]:  # noqa: ANN003
    cid, bundle, shim = await env.create(args, **kw)
    return (*await drive(shim), bundle)
