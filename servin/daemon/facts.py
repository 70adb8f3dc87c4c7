"""Gathers the facts about this host and daemon that /info and /version report."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

from servin.core.host import HostFacts


GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
          "s390x": "s390x", "riscv64": "riscv64"}


def _os_release() -> tuple[str, str]:
    try:
        fields = dict(
            line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
        )
    except OSError:
        return "Linux", ""
    strip = lambda v: v.strip().strip('"')  # noqa: E731
    return strip(fields.get("PRETTY_NAME", "Linux")), strip(fields.get("VERSION_ID", ""))


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def gather(*, daemon_id: str, data_root: Path, cgroup_version: int, debug: bool, swap_limit: bool,
           start_time_ns: int, seccomp_profile: str = "default", no_new_privileges: bool = False,
           labels: tuple[str, ...] = (), experimental: bool = False) -> HostFacts:
    os_name, os_version = _os_release()
    machine = platform.machine()
    return HostFacts(
        id=daemon_id, hostname=socket.gethostname(), kernel_version=platform.release(),
        operating_system=os_name, os_version=os_version, architecture=machine,
        go_arch=GOARCH.get(machine, machine), ncpu=os.cpu_count() or 1, mem_total=_mem_total(),
        data_root=str(data_root), cgroup_version=cgroup_version, cgroup_driver="cgroupfs", debug=debug,
        swap_limit=swap_limit, start_time_ns=start_time_ns, seccomp_profile=seccomp_profile,
        no_new_privileges=no_new_privileges, labels=labels, experimental=experimental,
    )
