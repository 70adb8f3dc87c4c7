"""The daemon looks at itself for /api/v1/monitoring/troubleshoot/connection: are its listeners there and
answering (a unix socket's mode and group), has its data root room, are cgroups and overlay there, are the
supervisor binaries installed. Each finding comes with Servin's own advice (manage/findings.py)."""

from __future__ import annotations

import grp
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from servin.daemon import config as daemon_config
from servin.daemon.config import DaemonConfig
from servin.kernel import cgroups
from servin.manage.findings import Finding
from servin.runtime.plan import default_init_binary
from servin.runtime.shim import shim_binary

LOW_SPACE_BYTES = 1 << 30  # the data root is short of space under 1 GiB free ...
LOW_SPACE_PERCENT = 5.0  # ... or under 5 % of its file system
PROBE_SECONDS = 1.0
SOCKET_MODE = 0o660
START = "sudo systemctl start servin"
RESTART = "sudo systemctl restart servin"
CONTROLLERS = ("cpu", "memory", "pids", "io", "cpuset")  # what container limits need


@dataclass(frozen=True, slots=True, kw_only=True)
class SelfCheck:
    hosts: tuple[str, ...]  # the Docker API's listeners (the management API answers on them too)
    management_hosts: tuple[str, ...]
    group: str  # the unix sockets' group ("": root's)
    tls: bool = False
    data_root: Path
    cgroup_root: Path = Path("/sys/fs/cgroup")
    proc: Path = Path("/proc")
    modules: Path = Path("/lib/modules")
    binaries: tuple[Path, ...] = field(default_factory=lambda: (shim_binary(), default_init_binary()))
    space: Callable[[Path], tuple[int, int]] = field(default=lambda p: _statvfs(p))  # (free, total) bytes

    @classmethod
    def of(cls, config: DaemonConfig) -> SelfCheck:
        return cls(hosts=config.hosts, management_hosts=config.management_hosts, group=config.group,
                   data_root=config.data_root, tls=config.tls_on)

    def __call__(self) -> list[Finding]:
        return [*self.listeners(), *self.disk(), *self.cgroups(), *self.overlay(), *self.binaries_present()]

    def listeners(self) -> list[Finding]:
        found, answering = [], 0
        for host in self.hosts + self.management_hosts:
            problems = self._unix(host) if host.startswith("unix://") else self._tcp(host)
            answering += not any(f.blocking for f in problems)
            found += problems
        if answering:  # another listener answers: what is wrong with one does not keep clients out
            found = [Finding(issue=f.issue, fixes=f.fixes, blocking=False) for f in found]
        return found

    def _unix(self, host: str) -> list[Finding]:
        path = Path(host.removeprefix("unix://"))
        try:
            st = path.stat()
        except OSError:
            return [Finding(issue=f"the socket {path} does not exist: Servin is not listening there",
                            fixes=(START, f"check that {host!r} is among the daemon's hosts (-H, \"hosts\")"),
                            blocking=True)]
        if not stat.S_ISSOCK(st.st_mode):
            return [Finding(issue=f"{path} is not a socket", fixes=(f"sudo rm {path}", RESTART), blocking=True)]
        found = []
        if not _connects(socket.AF_UNIX, str(path)):
            found.append(Finding(issue=f"nothing answers on the socket {path} (a leftover of a stopped daemon)",
                                 fixes=(RESTART,), blocking=True))
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o007:
            found.append(Finding(issue=f"the socket {path} has mode {mode:04o}: every local user may call the daemon",
                                 fixes=(f"sudo chmod {SOCKET_MODE:04o} {path}", RESTART), blocking=False))
        found += self._group(path, st.st_gid)
        return found

    def _group(self, path: Path, gid: int) -> list[Finding]:
        if not self.group:
            return []
        join = (f"sudo usermod -aG {self.group} $USER, then log out and back in",)
        try:
            wanted = grp.getgrnam(self.group).gr_gid
        except KeyError:
            return [Finding(issue=f"the socket group {self.group!r} (the daemon's -G / \"group\" option) does not "
                                  f"exist: {path} stays root's",
                            fixes=(f"sudo groupadd {self.group}", *join, RESTART), blocking=False)]
        if gid != wanted:
            return [Finding(issue=f"the socket {path} belongs to group {_group_name(gid)}, not {self.group!r}",
                            fixes=(f"sudo chgrp {self.group} {path}", RESTART), blocking=False)]
        return []

    def _tcp(self, host: str) -> list[Finding]:
        if not host.startswith("tcp://"):  # fd:// (socket activation): systemd holds the socket
            return []
        ip, port = daemon_config.tcp_address(daemon_config.with_port(host, self.tls))
        probe = {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(ip, ip)
        family = socket.AF_INET6 if ":" in probe else socket.AF_INET
        if _connects(family, (probe, port)):
            return []
        return [Finding(issue=f"nothing answers on {host}",
                        fixes=(START, f"check that port {port} is free: sudo ss -ltnp 'sport = :{port}'"),
                        blocking=True)]

    def disk(self) -> list[Finding]:
        root = self.data_root
        while not root.exists() and root != root.parent:
            root = root.parent
        free, total = self.space(root)
        percent = 100.0 * free / total if total else 0.0
        if free >= LOW_SPACE_BYTES and percent >= LOW_SPACE_PERCENT:
            return []
        return [Finding(issue=f"the data root {self.data_root} has {free >> 20} MiB free ({percent:.1f}%)",
                        fixes=("docker system prune (unused containers, images, networks and build cache)",
                               "move the data root to a larger file system (--data-root, \"data-root\")"),
                        blocking=free == 0)]

    def cgroups(self) -> list[Finding]:
        if not self.cgroup_root.is_dir() or not any(self.cgroup_root.iterdir()):
            return [Finding(issue=f"no cgroup file system at {self.cgroup_root}: containers cannot start",
                            fixes=(f"sudo mount -t cgroup2 none {self.cgroup_root}",), blocking=True)]
        manager = cgroups.detect(self.cgroup_root)
        f = manager.features
        present = {"cpu": f.cpu_cfs, "memory": f.memory, "pids": f.pids, "io": f.blkio_weight or f.blkio_read_bps,
                   "cpuset": f.cpuset}
        missing = [c for c in CONTROLLERS if not present[c]]
        if not missing:
            return []
        kernel = "cgroup_enable=memory swapaccount=1" if "memory" in missing else "the controllers' kernel options"
        return [Finding(issue=f"cgroup v{manager.version} lacks the controller(s) {', '.join(missing)}: "
                              "those container limits are refused",
                        fixes=(f"enable them on the kernel command line ({kernel}) and reboot",), blocking=False)]

    def overlay(self) -> list[Finding]:
        try:
            listed = any(line.split()[-1] == "overlay" for line in (self.proc / "filesystems").read_text().splitlines()
                         if line.split())
        except OSError:
            listed = False
        release = os.uname().release
        if listed or any((self.modules / release).glob("kernel/fs/overlayfs/overlay.ko*")):
            return []  # there, or loaded on the first mount
        return [Finding(issue="the kernel has no overlay file system: images cannot be mounted",
                        fixes=("sudo modprobe overlay", "use a kernel built with CONFIG_OVERLAY_FS"), blocking=True)]

    def binaries_present(self) -> list[Finding]:
        return [Finding(issue=f"{path.name} is missing or not executable at {path}: containers cannot start",
                        fixes=("reinstall Servin (pip install --force-reinstall servin), or build it in place: "
                               "python3 setup.py build_ext --inplace",), blocking=True)
                for path in self.binaries if not os.access(path, os.X_OK)]


def _connects(family: int, address: str | tuple[str, int]) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(PROBE_SECONDS)
        try:
            s.connect(address)
        except OSError:
            return False
    return True


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _statvfs(path: Path) -> tuple[int, int]:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
