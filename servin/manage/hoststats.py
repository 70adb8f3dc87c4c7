"""The host's own readings for /api/v1/system/stats: CPU use from /proc/stat deltas, memory from
/proc/meminfo, network bytes from /proc/net/dev (every interface but loopback), a file system's space."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

FIRST_SAMPLE_SECONDS = 0.1  # the window of the first CPU reading (no earlier sample to compare with)


@dataclass(frozen=True, slots=True, kw_only=True)
class Space:
    total: int
    used: int
    free: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    total: int
    free: int  # MemAvailable: what can be had without swapping

    @property
    def used(self) -> int:
        return self.total - self.free


class HostSampler:
    """Reads under `proc` (a root for tests); CPU use is measured since the previous call."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self._last_cpu: tuple[int, int] | None = None  # (busy, total) jiffies
        self._last_time = 0.0

    async def cpu_percent(self) -> float:
        if self._last_cpu is None or time.monotonic() - self._last_time < FIRST_SAMPLE_SECONDS / 2:
            self._last_cpu = self._cpu_times()
            await asyncio.sleep(FIRST_SAMPLE_SECONDS)
        before, now = self._last_cpu, self._cpu_times()
        self._last_cpu, self._last_time = now, time.monotonic()
        total = now[1] - before[1]
        return round(100.0 * (now[0] - before[0]) / total, 2) if total > 0 else 0.0

    def _cpu_times(self) -> tuple[int, int]:
        with open(self.proc / "stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        total = sum(fields[:8])  # user..steal (guest time is already in user)
        return total - idle, total

    def memory(self) -> Memory:
        values: dict[str, int] = {}
        with open(self.proc / "meminfo") as f:
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    values[name] = int(parts[0]) * 1024
        total = values.get("MemTotal", 0)
        return Memory(total=total, free=values.get("MemAvailable", values.get("MemFree", 0)))

    def network(self) -> tuple[int, int]:
        """(rx_bytes, tx_bytes) summed over the host's interfaces but loopback."""
        rx = tx = 0
        with open(self.proc / "net" / "dev") as f:
            for line in f.readlines()[2:]:
                name, _, counters = line.partition(":")
                fields = counters.split()
                if name.strip() != "lo" and len(fields) >= 9:
                    rx += int(fields[0])
                    tx += int(fields[8])
        return rx, tx


def space(path: Path) -> Space:
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    return Space(total=total, used=total - st.f_bfree * st.f_frsize, free=free)


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole > 0 else 0.0
