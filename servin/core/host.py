"""The host the engine runs on, as /info and /version report it: facts the daemon gathers at start
(`daemon/facts.py`) and the API renders (`api/wire/system.py`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class HostFacts:
    id: str
    hostname: str
    kernel_version: str
    operating_system: str
    os_version: str
    architecture: str  # uname -m, e.g. x86_64
    go_arch: str  # Docker's name, e.g. amd64
    ncpu: int
    mem_total: int
    data_root: str
    cgroup_version: int
    cgroup_driver: str
    debug: bool
    swap_limit: bool
    start_time_ns: int
    seccomp_profile: str = "default"  # what /info names: default, unconfined or the profile's path
    no_new_privileges: bool = False  # the daemon's --no-new-privileges
    labels: tuple[str, ...] = ()  # the daemon's labels (key=value)
    experimental: bool = False  # the daemon's --experimental (not reloadable, as dockerd)
