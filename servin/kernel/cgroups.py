"""cgroups: one manager interface, a v1 and a v2 implementation, chosen at start.

INTERFACE STUB written by the lead; the cgroups helper fills in the implementations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """Limits for one container's cgroup. None means "no limit / leave as is"."""

    memory: int | None = None  # bytes
    memory_swap: int | None = None  # bytes, memory+swap (Docker's MemorySwap; -1 = unlimited)
    cpu_shares: int | None = None  # v1 shares (2..262144); converted to cpu.weight on v2
    cpu_quota: int | None = None  # microseconds per period (NanoCpus are converted by the caller)
    cpu_period: int | None = None  # microseconds
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None  # <=0 means unlimited


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupStats:
    cpu_usage_ns: int
    memory_usage: int
    memory_limit: int | None
    pids_current: int
    oom_kills: int


class CgroupManager(Protocol):
    version: int  # 1 or 2
    driver: str  # "cgroupfs"

    def create(self, path: str, resources: Resources) -> list[Path]:
        """Create the cgroup `path` (e.g. "/servin/<id>") in every hierarchy, apply the limits,
        and return the `cgroup.procs` files a process must be written into to join it."""

    def update(self, path: str, resources: Resources) -> None: ...

    def stats(self, path: str) -> CgroupStats: ...

    def oom_killed(self, path: str) -> bool: ...

    def pids(self, path: str) -> list[int]: ...

    def freeze(self, path: str) -> None: ...

    def thaw(self, path: str) -> None: ...

    def destroy(self, path: str) -> None:
        """Kill what is left inside and remove the cgroup from every hierarchy; missing is fine."""
