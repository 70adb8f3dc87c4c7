"""The CPU and memory limits a container runs with: part of the engine's HostConfig (core/model.py) and of
the host settings a build gives its step containers (build/options.py), which may not import the core."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuMemoryLimits:
    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""

    def limits(self) -> dict[str, Any]:
        """These fields alone, as keywords for another CpuMemoryLimits (a HostConfig of a StepHost's)."""
        return {f.name: getattr(self, f.name) for f in fields(CpuMemoryLimits)}
